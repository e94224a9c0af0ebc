//! A small RESP2 client: request encoding, an incremental reply parser, and one async connection.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Resp>),
}

impl Resp {
    /// The error text, if this is an error.
    pub fn err(&self) -> Option<&str> {
        match self {
            Resp::Error(e) => Some(e),
            _ => None,
        }
    }

    /// A simple or bulk string as text.
    pub fn text(&self) -> Option<String> {
        match self {
            Resp::Simple(s) => Some(s.clone()),
            Resp::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// Whether this is `+OK`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Resp::Simple(s) if s == "OK")
    }

    /// A bulk string holding an integer (`None` for nil or anything else).
    pub fn int_value(&self) -> Option<i64> {
        match self {
            Resp::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            Resp::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl std::fmt::Display for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resp::Simple(s) => write!(f, "+{s}"),
            Resp::Error(e) => write!(f, "-{e}"),
            Resp::Int(i) => write!(f, ":{i}"),
            Resp::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Resp::Nil => write!(f, "(nil)"),
            Resp::Array(items) => {
                write!(f, "[")?;
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{it}")?;
                }
                write!(f, "]")
            }
        }
    }
}

/// Encodes one command as a RESP array of bulk strings.
pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses one reply from the front of `buf`: `Ok(None)` if it is not complete yet, else the
/// reply and how many bytes it took.
pub fn parse(buf: &[u8]) -> io::Result<Option<(Resp, usize)>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    if eol == 0 {
        return Err(bad("empty reply line"));
    }
    let line = std::str::from_utf8(&buf[1..eol]).map_err(|_| bad("reply line is not UTF-8"))?;
    let after = eol + 2;
    let int = |s: &str| s.parse::<i64>().map_err(|_| bad(&format!("bad integer {s:?}")));
    match buf[0] {
        b'+' => Ok(Some((Resp::Simple(line.to_string()), after))),
        b'-' => Ok(Some((Resp::Error(line.to_string()), after))),
        b':' => Ok(Some((Resp::Int(int(line)?), after))),
        b'$' => {
            let n = int(line)?;
            if n < 0 {
                return Ok(Some((Resp::Nil, after)));
            }
            let n = n as usize;
            if buf.len() < after + n + 2 {
                return Ok(None);
            }
            Ok(Some((Resp::Bulk(buf[after..after + n].to_vec()), after + n + 2)))
        }
        b'*' => {
            let n = int(line)?;
            if n < 0 {
                return Ok(Some((Resp::Nil, after)));
            }
            let mut items = Vec::with_capacity(n as usize);
            let mut at = after;
            for _ in 0..n {
                match parse(&buf[at..])? {
                    Some((item, used)) => {
                        items.push(item);
                        at += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Resp::Array(items), at)))
        }
        other => Err(bad(&format!("unknown reply type {:?}", other as char))),
    }
}

/// One client connection. Every read is bounded by `timeout`.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    pub addr: String,
    pub timeout: Duration,
}

impl Conn {
    /// Connects to `addr` (`host:port`) within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> io::Result<Conn> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(4096), addr: addr.to_string(), timeout })
    }

    /// Writes the commands, pipelined.
    pub async fn send(&mut self, cmds: &[Vec<String>]) -> io::Result<()> {
        let mut out = Vec::new();
        for c in cmds {
            let args: Vec<&str> = c.iter().map(|s| s.as_str()).collect();
            out.extend(encode(&args));
        }
        tokio::time::timeout(self.timeout, self.stream.write_all(&out))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
    }

    /// Reads one reply.
    pub async fn read(&mut self) -> io::Result<Resp> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some((reply, used)) = parse(&self.buf)? {
                self.buf.drain(..used);
                return Ok(reply);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "reply timed out"))??;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends the commands and reads one reply per command.
    pub async fn call_many(&mut self, cmds: &[Vec<String>]) -> io::Result<Vec<Resp>> {
        self.send(cmds).await?;
        let mut out = Vec::with_capacity(cmds.len());
        for _ in cmds {
            out.push(self.read().await?);
        }
        Ok(out)
    }

    /// Sends one command and reads its reply.
    pub async fn call(&mut self, args: &[&str]) -> io::Result<Resp> {
        let cmd: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Ok(self.call_many(&[cmd]).await?.remove(0))
    }
}

/// Parses an INFO reply into its `field:value` lines.
pub fn parse_info(text: &str) -> std::collections::HashMap<String, String> {
    text.lines().filter_map(|l| l.trim_end().split_once(':')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_reply_type_and_waits_for_complete_frames() {
        let wire = b"*5\r\n+OK\r\n-ERR x\r\n:42\r\n$3\r\nabc\r\n$-1\r\n";
        let (r, used) = parse(wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(
            r,
            Resp::Array(vec![
                Resp::Simple("OK".into()),
                Resp::Error("ERR x".into()),
                Resp::Int(42),
                Resp::Bulk(b"abc".to_vec()),
                Resp::Nil
            ])
        );
        for cut in 0..wire.len() {
            assert_eq!(parse(&wire[..cut]).unwrap(), None, "prefix of {cut} bytes");
        }
        assert!(parse(b"?x\r\n").is_err());
    }

    #[test]
    fn encodes_commands() {
        assert_eq!(encode(&["SET", "k", ""]), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n".to_vec());
    }
}
