//! Request parsing with Redis's rules: `*` starts a multibulk request, anything else is inline.

use bytes::{Bytes, BytesMut};

use super::inline::split_args;

/// Longest inline request, and longest count line, Redis reads before it gives up (64 KiB).
pub const MAX_INLINE_LEN: usize = 64 * 1024;
/// Longest bulk argument (Redis's `proto-max-bulk-len`, 512 MB).
pub const MAX_BULK_LEN: i64 = 512 * 1024 * 1024;
/// Arguments reserved up front; a larger multibulk grows as its arguments actually arrive, so a
/// header that announces millions of arguments allocates nothing.
const ARGV_PREALLOC: usize = 1024;

/// Input that is not RESP: the client gets `-ERR Protocol error: <text>` and is disconnected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooBig,
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    #[error("Protocol error: expected '$', got '{}'", *.0 as char)]
    ExpectedDollar(u8),
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
}

/// Takes one request off the front of `buf`.
///
/// `Ok(None)` means more bytes are needed (nothing was consumed). `Ok(Some(args))` may hold an
/// empty vector: Redis silently skips empty inline lines and `*0`/`*-1` headers.
pub fn parse_request(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] == b'*' {
        parse_multibulk(buf)
    } else {
        parse_inline(buf)
    }
}

fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > MAX_INLINE_LEN {
            return Err(ProtocolError::InlineTooBig);
        }
        return Ok(None);
    };
    let end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    let args = split_args(&buf[..end]).ok_or(ProtocolError::UnbalancedQuotes)?;
    let _ = buf.split_to(nl + 1);
    Ok(Some(args.into_iter().map(Bytes::from).collect()))
}

/// Reads a `<prefix><integer>\r\n` line at `pos`, returning the integer text's bounds and the
/// position after the line. Like Redis, only the `\r` is searched for; the byte after it is skipped.
fn line_at(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
    let cr = memchr(b'\r', &buf[pos..])? + pos;
    if cr + 2 > buf.len() {
        return None;
    }
    Some((cr, cr + 2))
}

fn parse_multibulk(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some((cr, mut pos)) = line_at(buf, 0) else {
        if buf.len() > MAX_INLINE_LEN {
            return Err(ProtocolError::MultibulkCountTooBig);
        }
        return Ok(None);
    };
    let count = match parse_i64(&buf[1..cr]) {
        Some(n) if n <= i32::MAX as i64 => n,
        _ => return Err(ProtocolError::InvalidMultibulkLength),
    };
    if count <= 0 {
        let _ = buf.split_to(pos);
        return Ok(Some(Vec::new()));
    }
    // Find every argument's bounds first, so that an incomplete request consumes nothing.
    let mut bounds = Vec::with_capacity((count as usize).min(ARGV_PREALLOC));
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(None);
        }
        let Some((cr, next)) = line_at(buf, pos) else {
            if buf.len() - pos > MAX_INLINE_LEN {
                return Err(ProtocolError::BulkCountTooBig);
            }
            return Ok(None);
        };
        if buf[pos] != b'$' {
            return Err(ProtocolError::ExpectedDollar(buf[pos]));
        }
        let len = match parse_i64(&buf[pos + 1..cr]) {
            Some(n) if (0..=MAX_BULK_LEN).contains(&n) => n as usize,
            _ => return Err(ProtocolError::InvalidBulkLength),
        };
        if buf.len() < next + len + 2 {
            return Ok(None);
        }
        bounds.push((next, next + len));
        pos = next + len + 2;
    }
    let frame = buf.split_to(pos).freeze();
    Ok(Some(bounds.into_iter().map(|(a, b)| frame.slice(a..b)).collect()))
}

/// Redis's `string2ll`: optional `-`, digits, no leading zeros (except "0"), no spaces or `+`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        parse_request(&mut BytesMut::from(input))
    }

    fn args(v: &[&str]) -> Option<Vec<Bytes>> {
        Some(v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect())
    }

    #[test]
    fn multibulk() {
        assert_eq!(parse(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), Ok(args(&["GET", "k"])));
        assert_eq!(parse(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r"), Ok(None));
        assert_eq!(parse(b"*2\r\n$3\r\nGET\r\n"), Ok(None));
        assert_eq!(parse(b"*0\r\n"), Ok(Some(vec![])));
        assert_eq!(parse(b"*-1\r\n"), Ok(Some(vec![])));
    }

    #[test]
    fn multibulk_errors() {
        assert_eq!(parse(b"*x\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse(b"*3000000000\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(parse(b"*1\r\n+PING\r\n"), Err(ProtocolError::ExpectedDollar(b'+')));
        assert_eq!(parse(b"*1\r\n$-1\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(parse(b"*1\r\n$600000000\r\n"), Err(ProtocolError::InvalidBulkLength));
        let big = [b"*1\r\n$".as_slice(), &vec![b'1'; 70_000]].concat();
        assert_eq!(parse(&big), Err(ProtocolError::BulkCountTooBig));
    }

    #[test]
    fn a_huge_count_allocates_nothing_up_front() {
        assert_eq!(parse(b"*2147483647\r\n$4\r\nPING\r\n"), Ok(None));
    }

    #[test]
    fn inline() {
        assert_eq!(parse(b"PING\r\n"), Ok(args(&["PING"])));
        assert_eq!(parse(b"SET a 'b c'\n"), Ok(args(&["SET", "a", "b c"])));
        assert_eq!(parse(b"\r\n"), Ok(Some(vec![])));
        assert_eq!(parse(b"SET \"a\r\n"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(parse(b"PING"), Ok(None));
    }

    #[test]
    fn consumes_exactly_one_request() {
        let mut buf = BytesMut::from(&b"PING\r\n*1\r\n$4\r\nPING\r\n"[..]);
        assert_eq!(parse_request(&mut buf), Ok(args(&["PING"])));
        assert_eq!(parse_request(&mut buf), Ok(args(&["PING"])));
        assert!(buf.is_empty());
    }

    #[test]
    fn integers_like_redis() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [&b"9223372036854775808"[..], b"01", b"-0", b"+1", b" 1", b"", b"-"] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let mut buf = BytesMut::from(&input[..]);
            while let Ok(Some(_)) = parse_request(&mut buf) {}
        }

        #[test]
        fn never_panics_on_resp_like_input(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b"*".to_vec()),
                    proptest::strategy::Just(b"$".to_vec()),
                    proptest::strategy::Just(b"\r\n".to_vec()),
                    proptest::strategy::Just(b"\"".to_vec()),
                    proptest::strategy::Just(b"'".to_vec()),
                    proptest::strategy::Just(b"\\x".to_vec()),
                    proptest::collection::vec(b'0'..=b'9', 1..4),
                    proptest::collection::vec(proptest::num::u8::ANY, 1..4),
                ],
                0..64,
            )
        ) {
            let input = parts.concat();
            let mut buf = BytesMut::from(&input[..]);
            while let Ok(Some(_)) = parse_request(&mut buf) {}
        }
    }
}
