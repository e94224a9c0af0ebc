//! Talking to the server under test: blocking connections that send a payload and read whole
//! replies (framed with redis-protocol's decoders), and the comparison of replies (`s`, `t` flags).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How the bytes read for one command ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum End {
    /// Every expected reply arrived.
    #[default]
    Complete,
    /// The server closed (or reset) the connection.
    Closed,
    /// Nothing (more) arrived within the timeout.
    Timeout,
    /// Something went wrong on our side or the server sent bytes no decoder accepts. Never equal to
    /// an expectation, since the file format cannot write it.
    Error(String),
}

/// The bytes one command produced and how reading them ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The raw reply bytes, every reply concatenated.
    pub bytes: Vec<u8>,
    /// Why reading stopped.
    pub end: End,
}

/// The protocol a connection speaks, switched by `HELLO 2|3` and `RESET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Resp2,
    Resp3,
}

/// One client connection of a case.
pub struct Conn {
    /// `None` once the server closed it: every later command reads `(closed)`.
    stream: Option<TcpStream>,
    /// Bytes read but not yet consumed as a reply (pipelined replies).
    buf: Vec<u8>,
    proto: Proto,
    timeout: Duration,
}

/// Opens a TCP connection with read and write timeouts.
fn connect(addr: &str, timeout: Duration) -> Result<TcpStream> {
    let sock = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))?;
    let stream = TcpStream::connect_timeout(&sock, timeout).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Conn {
    /// Connects to `addr`.
    pub fn open(addr: &str, timeout: Duration) -> Result<Conn> {
        Ok(Conn { stream: Some(connect(addr, timeout)?), buf: Vec::new(), proto: Proto::Resp2, timeout })
    }

    /// Sends `payload` and reads `replies` whole replies. `args` (empty for raw payloads) lets the
    /// connection follow protocol switches made by `HELLO` and `RESET`.
    pub fn exchange(&mut self, payload: &[u8], args: &[Vec<u8>], replies: usize) -> Outcome {
        let before = self.proto;
        let name = args.first().map(|a| a.to_ascii_uppercase());
        // HELLO answers in the protocol it asks for, so switch before reading its reply.
        if name.as_deref() == Some(b"HELLO") {
            match args.get(1).map(Vec::as_slice) {
                Some(b"2") => self.proto = Proto::Resp2,
                Some(b"3") => self.proto = Proto::Resp3,
                _ => {}
            }
        }
        let outcome = self.exchange_raw(payload, replies);
        if outcome.bytes.first() == Some(&b'-') {
            self.proto = before;
        } else if name.as_deref() == Some(b"RESET") {
            self.proto = Proto::Resp2;
        }
        outcome
    }

    fn exchange_raw(&mut self, payload: &[u8], replies: usize) -> Outcome {
        let mut outcome = Outcome::default();
        let Some(stream) = self.stream.as_mut() else {
            outcome.end = End::Closed;
            return outcome;
        };
        if let Err(e) = stream.write_all(payload) {
            // The server may have answered and closed before reading everything: keep what it sent.
            if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut {
                outcome.end = End::Timeout;
                return outcome;
            }
        }
        for _ in 0..replies {
            match self.read_reply() {
                Ok(reply) => outcome.bytes.extend(reply),
                Err(end) => {
                    outcome.bytes.append(&mut self.buf);
                    outcome.end = end;
                    break;
                }
            }
        }
        outcome
    }

    /// Reads until one whole reply is buffered and returns its bytes.
    fn read_reply(&mut self) -> Result<Vec<u8>, End> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match frame_len(&self.buf, self.proto) {
                Ok(Some(n)) => return Ok(self.buf.drain(..n).collect()),
                Ok(None) => {}
                Err(e) => {
                    self.stream = None;
                    return Err(End::Error(format!("undecodable reply: {e}")));
                }
            }
            let Some(stream) = self.stream.as_mut() else {
                return Err(End::Closed);
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(End::Timeout);
            }
            let _ = stream.set_read_timeout(Some(left));
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk) {
                Ok(0) => {
                    self.stream = None;
                    return Err(End::Closed);
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    return Err(End::Timeout);
                }
                Err(_) => {
                    // Reset, aborted, broken pipe: the server is gone.
                    self.stream = None;
                    return Err(End::Closed);
                }
            }
        }
    }

    /// Bytes the server sent beyond the replies that were read (empty when all is well).
    pub fn leftover(&mut self) -> Vec<u8> {
        let mut extra = std::mem::take(&mut self.buf);
        if let Some(stream) = self.stream.as_mut() {
            if stream.set_nonblocking(true).is_ok() {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut chunk) {
                    extra.extend_from_slice(&chunk[..n]);
                }
                let _ = stream.set_nonblocking(false);
            }
        }
        extra
    }
}

/// Empties the server with `FLUSHALL` on a connection of its own.
pub fn flushall(addr: &str, timeout: Duration) -> Result<()> {
    let mut conn = Conn::open(addr, timeout)?;
    let args = vec![b"FLUSHALL".to_vec()];
    let outcome = conn.exchange(&crate::case::encode_command(&args), &args, 1);
    if outcome.bytes != b"+OK\r\n" || outcome.end != End::Complete {
        anyhow::bail!("FLUSHALL answered {:?} ({:?})", crate::case::render(&outcome), outcome.end);
    }
    Ok(())
}

/// The length of the first whole reply in `buf`, `None` if more bytes are needed.
///
/// redis-protocol's RESP3 decoder rejects RESP2's `$-1`/`*-1` nulls, so each connection decodes with
/// the protocol it speaks; a reply the expected decoder rejects is retried with the other one (a raw
/// `HELLO` switches protocols without the runner noticing).
fn frame_len(buf: &[u8], proto: Proto) -> Result<Option<usize>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    let resp2 = || redis_protocol::resp2::decode::decode(buf).map(|r| r.map(|(_, n)| n)).map_err(|e| e.to_string());
    let resp3 =
        || redis_protocol::resp3::decode::complete::decode(buf).map(|r| r.map(|(_, n)| n)).map_err(|e| e.to_string());
    match proto {
        Proto::Resp2 => resp2().or_else(|e| resp3().map_err(|_| e)),
        Proto::Resp3 => resp3().or_else(|e| resp2().map_err(|_| e)),
    }
}

/// Splits concatenated replies into their frames, or `None` if they are not well-formed RESP.
fn split_frames(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let end = frame_end(bytes, 0)?;
        frames.push(&bytes[..end]);
        bytes = &bytes[end..];
    }
    Some(frames)
}

/// The header line of the frame at `pos`: (type byte, header text, offset after its CRLF).
fn header(b: &[u8], pos: usize) -> Option<(u8, &[u8], usize)> {
    let kind = *b.get(pos)?;
    let len = b.get(pos + 1..)?.windows(2).position(|w| w == b"\r\n")?;
    Some((kind, &b[pos + 1..pos + 1 + len], pos + 1 + len + 2))
}

/// How many nested frames an aggregate header announces (maps and attributes count keys and values).
fn children(kind: u8, text: &[u8]) -> Option<usize> {
    let n: i64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    let n = usize::try_from(n).unwrap_or(0);
    match kind {
        b'*' | b'~' | b'>' => Some(n),
        b'%' | b'|' => Some(n * 2),
        _ => None,
    }
}

/// Where the frame starting at `pos` ends: a small RESP2/RESP3 walker used to split and sort replies
/// that a decoder has already accepted (redis-protocol's maps and sets do not keep the wire order).
fn frame_end(b: &[u8], pos: usize) -> Option<usize> {
    let (kind, text, after) = header(b, pos)?;
    match kind {
        b'$' | b'!' | b'=' => {
            let n: i64 = std::str::from_utf8(text).ok()?.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + usize::try_from(n).ok()?;
            (b.get(end..end + 2)? == b"\r\n").then_some(end + 2)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let mut at = after;
            for _ in 0..children(kind, text)? {
                at = frame_end(b, at)?;
            }
            // An attribute is followed by the reply it annotates.
            if kind == b'|' {
                at = frame_end(b, at)?;
            }
            Some(at)
        }
        _ => Some(after),
    }
}

/// The frame at `pos` with every aggregate's elements (map entries as key+value pairs) sorted by
/// their bytes, recursively; and where the frame ends.
fn canonical(b: &[u8], pos: usize) -> Option<(Vec<u8>, usize)> {
    let (kind, text, after) = header(b, pos)?;
    let Some(n) = children(kind, text) else {
        let end = frame_end(b, pos)?;
        return Some((b[pos..end].to_vec(), end));
    };
    let mut items = Vec::new();
    let mut at = after;
    for _ in 0..n {
        let (item, end) = canonical(b, at)?;
        items.push(item);
        at = end;
    }
    if matches!(kind, b'%' | b'|') {
        items = items.chunks(2).map(|pair| pair.concat()).collect();
    }
    items.sort();
    let mut out = b[pos..after].to_vec();
    out.extend(items.concat());
    if kind == b'|' {
        let (annotated, end) = canonical(b, at)?;
        out.extend(annotated);
        at = end;
    }
    Some((out, at))
}

/// `bytes` with every frame canonicalized (see [`canonical`]); unchanged if it is not valid RESP.
pub fn sorted(bytes: &[u8]) -> Vec<u8> {
    let Some(frames) = split_frames(bytes) else {
        return bytes.to_vec();
    };
    let mut out = Vec::with_capacity(bytes.len());
    for frame in frames {
        match canonical(frame, 0) {
            Some((c, _)) => out.extend(c),
            None => out.extend_from_slice(frame),
        }
    }
    out
}

/// Whether `got` satisfies `expected` under the step's flags.
pub fn matches(expected: &Outcome, got: &Outcome, flags: crate::case::Flags) -> bool {
    if expected.end != got.end {
        return false;
    }
    if flags.type_only {
        let kinds = |o: &Outcome| split_frames(&o.bytes).map(|f| f.iter().map(|f| f[0]).collect::<Vec<u8>>());
        return match (kinds(expected), kinds(got)) {
            (Some(e), Some(g)) => e == g,
            _ => expected.bytes == got.bytes,
        };
    }
    if flags.sort {
        return sorted(&expected.bytes) == sorted(&got.bytes);
    }
    expected.bytes == got.bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp3_decoder_rejects_resp2_nulls() {
        assert!(redis_protocol::resp3::decode::complete::decode(b"$-1\r\n").is_err());
        assert_eq!(frame_len(b"$-1\r\n", Proto::Resp3), Ok(Some(5)));
        assert_eq!(frame_len(b"*2\r\n$-1\r\n:1\r\n", Proto::Resp3), Ok(Some(13)));
        assert_eq!(frame_len(b"%1\r\n+a\r\n:1\r\n", Proto::Resp2), Ok(Some(12)));
        assert_eq!(frame_len(b"*2\r\n$-1\r\n", Proto::Resp2), Ok(None));
        assert!(frame_len(b"?x\r\n", Proto::Resp2).is_err());
    }

    #[test]
    fn sorts_recursively() {
        let got = sorted(b"*3\r\n$1\r\nc\r\n*2\r\n:2\r\n:1\r\n$1\r\na\r\n+OK\r\n");
        assert_eq!(got, b"*3\r\n$1\r\na\r\n$1\r\nc\r\n*2\r\n:1\r\n:2\r\n+OK\r\n");
        let map = sorted(b"%2\r\n+b\r\n:1\r\n+a\r\n:2\r\n");
        assert_eq!(map, b"%2\r\n+a\r\n:2\r\n+b\r\n:1\r\n");
    }

    #[test]
    fn type_only_compares_each_frame() {
        let flags = crate::case::Flags { type_only: true, ..Default::default() };
        let o = |b: &[u8]| Outcome { bytes: b.to_vec(), end: End::Complete };
        assert!(matches(&o(b":1\r\n+a\r\n"), &o(b":7\r\n+b\r\n"), flags));
        assert!(!matches(&o(b":1\r\n"), &o(b"$1\r\n7\r\n"), flags));
        assert!(!matches(&o(b":1\r\n"), &o(b":1\r\n:1\r\n"), flags));
    }
}
