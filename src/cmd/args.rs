//! Reading command arguments the way Redis's C code reads them: options compared as C strings,
//! integers and floats with Redis's rules, cursors with `strtoul`.

use bytes::Bytes;

use super::error::{Error, Result};

/// Whether `arg` is the option `word`. Redis compares options as C strings (`strcasecmp`), so
/// the argument ends at its first NUL byte: `nx\0anything` is NX.
pub fn eq(arg: &[u8], word: &str) -> bool {
    c_str(arg).eq_ignore_ascii_case(word.as_bytes())
}

/// The argument as C code sees it: up to its first NUL byte.
pub fn c_str(arg: &[u8]) -> &[u8] {
    arg.split(|&b| b == 0).next().unwrap_or_default()
}

/// A 64-bit integer as Redis's `string2ll` reads it.
pub fn int(arg: &[u8]) -> Result<i64> {
    crate::resp::parse_i64(arg).ok_or(Error::NotInteger)
}

/// C's `strtod` of the argument as a C string: the value and the number of bytes read.
pub fn strtod(arg: &[u8]) -> (f64, usize) {
    let s = c_str(arg);
    let mut buf = Vec::with_capacity(s.len() + 1);
    buf.extend_from_slice(s);
    buf.push(0);
    let start = buf.as_ptr() as *const libc::c_char;
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `buf` is NUL-terminated and outlives the call; `end` points into it afterwards.
    let v = unsafe { libc::strtod(start, &mut end) };
    // SAFETY: strtod sets `end` within `buf` (at `start` when it read nothing).
    let read = unsafe { end.offset_from(start) };
    (v, read.max(0) as usize)
}

/// C's `strtod` as [`strtod`] reads it, and whether it set `errno` to `ERANGE`: an overflow to
/// infinity, or an inexact result below the normal range (glibc: `1e-310`, `1e-400`; an exact
/// subnormal such as `0x1p-1074` is fine).
pub fn strtod_erange(arg: &[u8]) -> (f64, usize, bool) {
    // SAFETY: errno is the calling thread's; strtod only writes it on a range error.
    unsafe { *errno() = 0 };
    let (v, read) = strtod(arg);
    // SAFETY: as above.
    (v, read, unsafe { *errno() } == libc::ERANGE)
}

/// The calling thread's `errno`.
fn errno() -> *mut libc::c_int {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: returns the calling thread's errno location, always valid.
    unsafe {
        libc::__errno_location()
    }
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    // SAFETY: as above.
    unsafe {
        libc::__error()
    }
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// A float as Redis's `getDoubleFromObject` reads it: `strtod` of the whole argument, no leading
/// space, no NaN, no overflow to infinity nor underflow to zero (`ERANGE`). Hexadecimal floats
/// are accepted (`0x10` is 16).
pub fn redis_float(arg: &[u8]) -> Option<f64> {
    if arg.is_empty() || is_c_space(arg[0]) {
        return None;
    }
    let (v, read) = strtod(arg);
    if read != arg.len() || v.is_nan() {
        return None;
    }
    let body = arg.strip_prefix(b"+").or_else(|| arg.strip_prefix(b"-")).unwrap_or(arg);
    if v.is_infinite() && !body.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(b"inf")) {
        return None; // overflow: ERANGE with HUGE_VAL
    }
    if v == 0.0 {
        let (mantissa, nonzero): (&[u8], fn(&u8) -> bool) = if body.len() > 1 && (body[1] | 0x20) == b'x' {
            (&body[2..body.iter().position(|&c| (c | 0x20) == b'p').unwrap_or(body.len()).max(2)], |c| {
                c.is_ascii_hexdigit() && *c != b'0'
            })
        } else {
            (&body[..body.iter().position(|&c| (c | 0x20) == b'e').unwrap_or(body.len())], |c| {
                (b'1'..=b'9').contains(c)
            })
        };
        if mantissa.iter().any(nonzero) {
            return None; // underflow: ERANGE with zero
        }
    }
    Some(v)
}

/// The number of keys a `numkeys` argument announces, with the errors of Redis's commands that
/// take one (`what` names it in the message).
pub fn numkeys(arg: &[u8]) -> Result<usize> {
    match crate::resp::parse_i64(arg) {
        Some(n) if n > 0 => Ok(n as usize),
        _ => Err(Error::msg("ERR numkeys should be greater than 0")),
    }
}

/// C's `strtoul` as Redis's SCAN uses it: optional sign, digits; "-1" wraps around. C sees the
/// argument as a string, so it ends at the first NUL byte ("5\0x" is cursor 5).
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let arg = c_str(arg);
    if arg.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// The options of HSCAN, SSCAN and ZSCAN after the key: the cursor, MATCH and COUNT.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScanArgs {
    pub cursor: u64,
    pub pattern: Option<Bytes>,
    pub count: u64,
}

/// Parses `<cursor> [MATCH pattern] [COUNT count]` starting at `args[from]`.
pub fn scan_args(args: &[Bytes], from: usize) -> Result<ScanArgs> {
    let cursor = parse_cursor(&args[from]).ok_or(Error::InvalidCursor)?;
    let (mut pattern, mut count) = (None, 10u64);
    let mut i = from + 1;
    while i < args.len() {
        let more = i + 1 < args.len();
        if eq(&args[i], "count") && more {
            let c = int(&args[i + 1])?;
            if c < 1 {
                return Err(Error::Syntax);
            }
            count = c as u64;
        } else if eq(&args[i], "match") && more {
            pattern = Some(args[i + 1].clone());
        } else {
            return Err(Error::Syntax);
        }
        i += 2;
    }
    Ok(ScanArgs { cursor, pattern, count })
}

/// Turns an EX/PX-style argument into absolute milliseconds. The outer `None` is an invalid
/// time (Redis's "invalid expire time"); the inner error is a non-integer.
pub fn expire_millis(arg: &[u8], millis: bool, relative: bool, now: u64) -> Option<Result<u64>> {
    let v = match int(arg) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    if v <= 0 || (!millis && v > i64::MAX / 1000) {
        return None;
    }
    let ms = if millis { v } else { v * 1000 };
    let at = if relative { ms.checked_add(now as i64)? } else { ms };
    (at > 0).then_some(Ok(at as u64))
}

/// A blocking command's timeout in seconds as Redis 7.0 reads it (a long double, truncated to
/// milliseconds): `None` waits forever (0, or less than a millisecond), `Some(ms)` otherwise.
/// Redis converts an infinite or huge value to a C `long long` that x86 makes negative.
pub fn timeout_millis(arg: &[u8]) -> Result<Option<u64>> {
    if !super::is_long_double(arg) {
        return Err(Error::msg("ERR timeout is not a float or out of range"));
    }
    let ms = strtod(arg).0 * 1000.0;
    if !(ms.is_finite() && ms > -9.2e18 && ms < 9.2e18) || (ms as i64) < 0 {
        return Err(Error::msg("ERR timeout is negative"));
    }
    Ok(match ms as i64 {
        0 => None,
        ms => Some(ms as u64),
    })
}

/// A timeout in whole milliseconds (XREAD's BLOCK), as Redis reads it: 0 waits forever.
pub fn timeout_millis_exact(arg: &[u8]) -> Result<u64> {
    let ms = crate::resp::parse_i64(arg).ok_or_else(|| Error::msg("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(Error::msg("ERR timeout is negative"));
    }
    Ok(ms as u64)
}

/// A pseudo-random sequence from a request's seed (SplitMix64): the same on every replica.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The sequence for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b"99999999999999999999999"), None);
        assert_eq!(parse_cursor(b"5\0x"), Some(5));
        assert_eq!(parse_cursor(b"\0"), Some(0));
        assert_eq!(parse_cursor(b" 5"), None);
    }
}
