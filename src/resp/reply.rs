//! Replies, and their encoding in RESP2 or RESP3.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// The protocol a connection speaks (`HELLO 3` switches to RESP3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// A reply to one command. It is produced by the state machine on every replica, so it is
/// serializable and carries no protocol choice: `encode` picks the wire form per connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// `+OK`
    Ok,
    /// `+<text>`
    Status(String),
    /// `-<text>`; the text starts with its code (`ERR ...`, `WRONGTYPE ...`).
    Error(String),
    /// `:<n>`
    Int(i64),
    /// `$<len>` and the bytes.
    Bulk(Bytes),
    /// A missing value: `$-1` (RESP2) or `_` (RESP3).
    Nil,
    /// A missing array: `*-1` (RESP2) or `_` (RESP3).
    NilArray,
    /// `*<n>` and the elements.
    Array(Vec<Reply>),
    /// `%<n>` in RESP3; a flat array of keys and values in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// `~<n>` in RESP3; an array in RESP2.
    Set(Vec<Reply>),
    /// `=<len>` with a `txt:` prefix in RESP3; a bulk string in RESP2.
    Verbatim(String),
    /// A double, already printed as Redis prints it (`1.5`, `inf`, `0.10000000000000001`):
    /// `,<text>` in RESP3; a bulk string in RESP2.
    Double(String),
    /// Pairs (a member and its score, a field and its value) that RESP3 sends as an array of
    /// two-element arrays and RESP2 as one flat array (ZRANGE WITHSCORES, HRANDFIELD WITHVALUES).
    Pairs(Vec<(Reply, Reply)>),
    /// Keys with their values (XREAD's streams and their entries): a map in RESP3, an array of
    /// two-element arrays in RESP2.
    Keyed(Vec<(Reply, Reply)>),
    /// An out-of-band message (pub/sub): `><n>` in RESP3, an array in RESP2.
    Push(Vec<Reply>),
    /// Several replies to one command, one after the other (SUBSCRIBE a b: one confirmation
    /// per channel).
    Several(Vec<Reply>),
    /// `#t`/`#f` in RESP3; `:1`/`:0` in RESP2 (a script's boolean under `redis.setresp(3)`).
    Bool(bool),
    /// `(<digits>` in RESP3; a bulk string in RESP2.
    BigNumber(String),
}

impl Reply {
    /// An error reply; `text` starts with its code, e.g. `ERR syntax error`.
    pub fn err(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }

    /// A status reply such as `+PONG`.
    pub fn status(text: impl Into<String>) -> Reply {
        Reply::Status(text.into())
    }

    /// A bulk string copied from `data`.
    pub fn bulk(data: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(data.as_ref()))
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the reply's bytes to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        match self {
            Reply::Ok => out.put_slice(b"+OK\r\n"),
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::Int(n) => line(out, b':', itoa(*n).as_bytes()),
            Reply::Bulk(b) => bulk(out, b),
            Reply::Nil => match proto {
                Protocol::Resp2 => out.put_slice(b"$-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Reply::NilArray => match proto {
                Protocol::Resp2 => out.put_slice(b"*-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Reply::Array(items) => {
                header(out, b'*', items.len());
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Set(items) => {
                let tag = if proto == Protocol::Resp3 { b'~' } else { b'*' };
                header(out, tag, items.len());
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Map(pairs) => {
                let shape = if proto == Protocol::Resp3 { PairShape::Map } else { PairShape::Flat };
                encode_pairs(pairs, shape, proto, out);
            }
            Reply::Double(text) => match proto {
                Protocol::Resp2 => bulk(out, text.as_bytes()),
                Protocol::Resp3 => line(out, b',', text.as_bytes()),
            },
            Reply::Pairs(pairs) => {
                let shape = if proto == Protocol::Resp3 { PairShape::Nested } else { PairShape::Flat };
                encode_pairs(pairs, shape, proto, out);
            }
            Reply::Keyed(pairs) => {
                let shape = if proto == Protocol::Resp3 { PairShape::Map } else { PairShape::Nested };
                encode_pairs(pairs, shape, proto, out);
            }
            Reply::Push(items) => {
                let tag = if proto == Protocol::Resp3 { b'>' } else { b'*' };
                header(out, tag, items.len());
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Several(replies) => replies.iter().for_each(|r| r.encode(proto, out)),
            Reply::Bool(b) => match proto {
                Protocol::Resp2 => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
                Protocol::Resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            },
            Reply::BigNumber(text) => match proto {
                Protocol::Resp2 => bulk(out, text.as_bytes()),
                Protocol::Resp3 => line(out, b'(', text.as_bytes()),
            },
            Reply::Verbatim(s) => match proto {
                Protocol::Resp2 => bulk(out, s.as_bytes()),
                Protocol::Resp3 => {
                    header(out, b'=', s.len() + 4);
                    out.put_slice(b"txt:");
                    out.put_slice(s.as_bytes());
                    out.put_slice(b"\r\n");
                }
            },
        }
    }

    /// The reply's bytes as a fresh buffer (tests and tools).
    pub fn to_bytes(&self, proto: Protocol) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(proto, &mut out);
        out.freeze()
    }
}

fn line(out: &mut BytesMut, tag: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(tag);
    // A status or error line cannot carry a line break: Redis replaces them with spaces.
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

/// How a list of pairs goes on the wire.
#[derive(Clone, Copy)]
enum PairShape {
    /// One array of keys and values, alternating.
    Flat,
    /// A RESP3 map.
    Map,
    /// An array of two-element arrays.
    Nested,
}

fn encode_pairs(pairs: &[(Reply, Reply)], shape: PairShape, proto: Protocol, out: &mut BytesMut) {
    match shape {
        PairShape::Flat => header(out, b'*', pairs.len() * 2),
        PairShape::Map => header(out, b'%', pairs.len()),
        PairShape::Nested => header(out, b'*', pairs.len()),
    }
    for (k, v) in pairs {
        if let PairShape::Nested = shape {
            header(out, b'*', 2);
        }
        k.encode(proto, out);
        v.encode(proto, out);
    }
}

fn header(out: &mut BytesMut, tag: u8, len: usize) {
    out.put_u8(tag);
    out.put_slice(itoa(len as i64).as_bytes());
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 16);
    header(out, b'$', data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

fn itoa(n: i64) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_and_resp3() {
        let r = Reply::Array(vec![Reply::Int(1), Reply::Nil, Reply::bulk("ab"), Reply::Ok]);
        assert_eq!(&r.to_bytes(Protocol::Resp2)[..], b"*4\r\n:1\r\n$-1\r\n$2\r\nab\r\n+OK\r\n");
        assert_eq!(&r.to_bytes(Protocol::Resp3)[..], b"*4\r\n:1\r\n_\r\n$2\r\nab\r\n+OK\r\n");
        let m = Reply::Map(vec![(Reply::bulk("k"), Reply::Int(2))]);
        assert_eq!(&m.to_bytes(Protocol::Resp2)[..], b"*2\r\n$1\r\nk\r\n:2\r\n");
        assert_eq!(&m.to_bytes(Protocol::Resp3)[..], b"%1\r\n$1\r\nk\r\n:2\r\n");
        assert_eq!(&Reply::err("ERR a\r\nb").to_bytes(Protocol::Resp2)[..], b"-ERR a  b\r\n");
        let d = Reply::Double("1.5".into());
        assert_eq!(&d.to_bytes(Protocol::Resp2)[..], b"$3\r\n1.5\r\n");
        assert_eq!(&d.to_bytes(Protocol::Resp3)[..], b",1.5\r\n");
        let p = Reply::Pairs(vec![(Reply::bulk("m"), Reply::Double("2".into()))]);
        assert_eq!(&p.to_bytes(Protocol::Resp2)[..], b"*2\r\n$1\r\nm\r\n$1\r\n2\r\n");
        assert_eq!(&p.to_bytes(Protocol::Resp3)[..], b"*1\r\n*2\r\n$1\r\nm\r\n,2\r\n");
        let k = Reply::Keyed(vec![(Reply::bulk("s"), Reply::Array(vec![]))]);
        assert_eq!(&k.to_bytes(Protocol::Resp2)[..], b"*1\r\n*2\r\n$1\r\ns\r\n*0\r\n");
        assert_eq!(&k.to_bytes(Protocol::Resp3)[..], b"%1\r\n$1\r\ns\r\n*0\r\n");
        let push = Reply::Push(vec![Reply::bulk("message"), Reply::Nil]);
        assert_eq!(&push.to_bytes(Protocol::Resp2)[..], b"*2\r\n$7\r\nmessage\r\n$-1\r\n");
        assert_eq!(&push.to_bytes(Protocol::Resp3)[..], b">2\r\n$7\r\nmessage\r\n_\r\n");
        let several = Reply::Several(vec![Reply::Int(1), Reply::Ok]);
        assert_eq!(&several.to_bytes(Protocol::Resp2)[..], b":1\r\n+OK\r\n");
    }
}
