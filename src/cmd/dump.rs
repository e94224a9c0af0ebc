//! DUMP and RESTORE: a key's value in Redis's serialization format (an RDB object, the RDB
//! version as two bytes, a CRC64 of both), so that tools that move keys with DUMP/RESTORE work.
//!
//! raftis writes the plain RDB types (string, list, set, sorted set as binary doubles, hash),
//! which Redis 7.0 loads too. It reads those and the compact types Redis 7.0 writes: intsets,
//! listpack hashes and sorted sets, quicklists of listpacks, and integer or LZF-compressed
//! strings. A payload is decoded when RESTORE is parsed; its elements travel through the log and
//! the value is built when the entry is applied, by the same rules as commands build values (so
//! every replica picks the same encoding).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::args::{eq, int};
use super::meta::*;
use super::notify::{notify, GENERIC};
use super::{Ctx, DataCommand, Error, Op, Result};
use crate::data;
use crate::resp::Reply;
use crate::sm::{Hash, KeySpace, List, ShortBytes, Value, ZSet};

/// The RDB version this release writes and the newest it reads (Redis 7.0's).
const RDB_VERSION: u16 = 10;

const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;

/// The commands of this family, sorted by name.
#[rustfmt::skip]
pub const COMMANDS: &[DataCommand] = &[
    data!("dump", 2, RS, 1, 1, 1, &["@keyspace", "@read", "@slow"], "generic", "2.6.0", parse::dump, "Returns a serialized representation of the value stored at a key"),
    data!("restore", -4, W, 1, 1, 1, &["@keyspace", "@write", "@slow", "@dangerous"], "generic", "2.6.0", parse::restore, "Creates a key from the serialized representation of a value"),
];

/// A DUMP or RESTORE. Variants are appended, never reordered (log format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DumpOp {
    Dump(Bytes),
    /// RESTORE: the decoded value, or the error its payload gives (answered after the
    /// BUSYKEY check, as Redis orders them); `expire_at` 0 for none, in the past to delete.
    Restore {
        key: Bytes,
        value: std::result::Result<Decoded, String>,
        expire_at: u64,
        replace: bool,
    },
}

/// A decoded payload's elements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Decoded {
    Str(Bytes),
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    ZSet(Vec<(Bytes, f64)>),
    Hash(Vec<(Bytes, Bytes)>),
}

impl DumpOp {
    pub fn is_write(&self) -> bool {
        matches!(self, DumpOp::Restore { .. })
    }
}

mod parse {
    use super::*;

    fn op(o: DumpOp) -> Result<Op> {
        Ok(Op::Dump(o))
    }

    pub fn dump(args: &[Bytes], _: u64) -> Result<Op> {
        op(DumpOp::Dump(args[1].clone()))
    }

    /// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], checked in Redis's
    /// order: the options, the TTL; the payload last (its error is kept for apply time).
    pub fn restore(args: &[Bytes], now: u64) -> Result<Op> {
        let (mut replace, mut absttl, mut idle, mut freq) = (false, false, false, false);
        let mut j = 4;
        while j < args.len() {
            let more = j + 1 < args.len();
            if eq(&args[j], "replace") {
                replace = true;
            } else if eq(&args[j], "absttl") {
                absttl = true;
            } else if eq(&args[j], "idletime") && more && !freq {
                j += 1;
                if int(&args[j])? < 0 {
                    return Err(Error::msg("ERR Invalid IDLETIME value, must be >= 0"));
                }
                idle = true;
            } else if eq(&args[j], "freq") && more && !idle {
                j += 1;
                if !(0..=255).contains(&int(&args[j])?) {
                    return Err(Error::msg("ERR Invalid FREQ value, must be >= 0 and <= 255"));
                }
                freq = true;
            } else {
                return Err(Error::Syntax);
            }
            j += 1;
        }
        let ttl = int(&args[2])?;
        if ttl < 0 {
            return Err(Error::msg("ERR Invalid TTL value, must be >= 0"));
        }
        let expire_at = match (ttl, absttl) {
            (0, _) => 0,
            (t, true) => t as u64,
            (t, false) => now.saturating_add(t as u64),
        };
        let value = decode(&args[3]).map_err(|e| e.to_string());
        op(DumpOp::Restore { key: args[1].clone(), value, expire_at, replace })
    }
}

/// Applies RESTORE (DUMP is a read).
pub fn apply(ks: &mut KeySpace, op: &DumpOp, ctx: Ctx) -> Result<Reply> {
    let DumpOp::Restore { key, value, expire_at, replace } = op else {
        return query(ks, op, ctx);
    };
    let exists = ks.live_slot(key, ctx.now).is_some();
    if exists && !replace {
        return Err(Error::msg("BUSYKEY Target key name already exists."));
    }
    let decoded = value.as_ref().map_err(|e| Error::msg(e.clone()))?;
    if exists {
        ks.remove(key);
    }
    // An expiry already past: the key is only deleted (if REPLACE found one), as in Redis.
    if *expire_at != 0 && *expire_at <= ctx.now {
        if exists {
            notify(ks, GENERIC, "del", key);
        }
        return Ok(Reply::Ok);
    }
    ks.set(key, build(decoded), *expire_at);
    notify(ks, GENERIC, "restore", key);
    Ok(Reply::Ok)
}

/// Answers DUMP.
pub fn query(ks: &KeySpace, op: &DumpOp, ctx: Ctx) -> Result<Reply> {
    match op {
        DumpOp::Dump(key) => Ok(match ks.get(key, ctx.now) {
            // Redis's RDB stream encoding (listpacks of delta-coded entries) is not written yet.
            Some(e) => match encode(&e.value) {
                Some(payload) => Reply::Bulk(Bytes::from(payload)),
                None => return Err(Error::msg("ERR DUMP of a stream is not supported by raftis yet")),
            },
            None => Reply::Nil,
        }),
        DumpOp::Restore { .. } => unreachable!("RESTORE is a write"),
    }
}

/// The value a payload describes, encoded as commands adding its elements would encode it.
fn build(d: &Decoded) -> Value {
    match d {
        Decoded::Str(s) => Value::Str(s.to_vec()),
        Decoded::List(items) => Value::List(List(Box::new(items.iter().map(|i| ShortBytes::from(&i[..])).collect()))),
        Decoded::Set(members) => Value::Set(Box::new(super::sets::build(members.iter().map(|m| &m[..])))),
        Decoded::ZSet(pairs) => {
            let mut z = ZSet::new();
            for (m, s) in pairs {
                super::zsets::put(&mut z, m, *s);
            }
            Value::ZSet(Box::new(z))
        }
        Decoded::Hash(pairs) => {
            let mut h = Hash::new();
            for (f, v) in pairs {
                super::hashes::put(&mut h, f, v);
            }
            Value::Hash(h)
        }
    }
}

// --- writing ---------------------------------------------------------------------------------

fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A value's DUMP payload; `None` for a stream (not written yet).
pub fn encode(value: &Value) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match value {
        Value::Stream(_) => return None,
        Value::Str(s) => {
            out.push(TYPE_STRING);
            put_str(&mut out, s);
        }
        Value::List(list) => {
            out.push(TYPE_LIST);
            put_len(&mut out, list.len() as u64);
            for e in list.0.iter() {
                put_str(&mut out, e);
            }
        }
        Value::Set(set) => {
            out.push(TYPE_SET);
            put_len(&mut out, set.len() as u64);
            for (m, _) in set.iter() {
                put_str(&mut out, m);
            }
        }
        Value::ZSet(z) => {
            out.push(TYPE_ZSET_2);
            put_len(&mut out, z.len() as u64);
            for (score, member) in z.by_score.iter() {
                put_str(&mut out, member);
                out.extend_from_slice(&score.0.to_le_bytes());
            }
        }
        Value::Hash(h) => {
            out.push(TYPE_HASH);
            put_len(&mut out, h.len() as u64);
            for (f, v) in h.iter() {
                put_str(&mut out, f);
                put_str(&mut out, v);
            }
        }
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// RDB's opcode for a function library (FUNCTION DUMP: one per library, then its code).
const OPCODE_FUNCTION2: u8 = 0xf5;

/// FUNCTION DUMP's payload: each library's code, the RDB version and the CRC64, as Redis 7.0
/// writes it.
pub fn dump_functions<'a>(codes: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        put_str(&mut out, code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The library codes of a FUNCTION RESTORE payload, or Redis's error text.
pub fn decode_functions(payload: &[u8]) -> std::result::Result<Vec<Vec<u8>>, &'static str> {
    if payload.len() < 10 {
        return Err("ERR DUMP payload version or checksum are wrong");
    }
    let (body, footer) = payload.split_at(payload.len() - 8);
    let version = u16::from_le_bytes([body[body.len() - 2], body[body.len() - 1]]);
    if version > RDB_VERSION || crc64(0, body) != u64::from_le_bytes(footer.try_into().expect("8 bytes")) {
        return Err("ERR DUMP payload version or checksum are wrong");
    }
    let mut r = Reader { data: &body[..body.len() - 2], at: 0 };
    let mut codes = Vec::new();
    while r.at < r.data.len() {
        if r.byte() != Some(OPCODE_FUNCTION2) {
            return Err("ERR given type is not a function");
        }
        codes.push(r.string().ok_or("ERR Bad data format")?);
    }
    Ok(codes)
}

/// Redis's CRC64 (Jones polynomial, reflected, no final xor).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
        }
    }
    crc
}

// --- reading ---------------------------------------------------------------------------------

/// Why a payload could not be restored (Redis's two errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("ERR DUMP payload version or checksum are wrong")]
    Checksum,
    #[error("ERR Bad data format")]
    BadData,
}

/// Decodes a DUMP payload.
pub fn decode(payload: &[u8]) -> std::result::Result<Decoded, DecodeError> {
    if payload.len() < 10 {
        return Err(DecodeError::Checksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 8);
    let version = u16::from_le_bytes([body[body.len() - 2], body[body.len() - 1]]);
    if version > RDB_VERSION || crc64(0, body) != u64::from_le_bytes(footer.try_into().expect("8 bytes")) {
        return Err(DecodeError::Checksum);
    }
    let mut r = Reader { data: &body[..body.len() - 2], at: 0 };
    let decoded = r.object().ok_or(DecodeError::BadData)?;
    if r.at != r.data.len() {
        return Err(DecodeError::BadData);
    }
    Ok(decoded)
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

/// A string or an integer, as a length field can announce.
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let bytes = self.data.get(self.at..end)?;
        self.at = end;
        Some(bytes)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn len_field(&mut self) -> Option<Len> {
        let first = self.byte()?;
        Some(match first >> 6 {
            0 => Len::Plain((first & 0x3f) as u64),
            1 => Len::Plain((((first & 0x3f) as u64) << 8) | self.byte()? as u64),
            2 if first == 0x80 => Len::Plain(u32::from_be_bytes(self.take(4)?.try_into().ok()?) as u64),
            2 if first == 0x81 => Len::Plain(u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
            2 => return None,
            _ => Len::Encoded(first & 0x3f),
        })
    }

    fn len(&mut self) -> Option<u64> {
        match self.len_field()? {
            Len::Plain(n) => Some(n),
            Len::Encoded(_) => None,
        }
    }

    /// A count of elements, bounded by the bytes left (each element takes at least one).
    fn count(&mut self) -> Option<usize> {
        let n = self.len()?;
        (n <= (self.data.len() - self.at) as u64).then_some(n as usize)
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        match self.len_field()? {
            Len::Plain(n) => Some(self.take(usize::try_from(n).ok()?)?.to_vec()),
            Len::Encoded(0) => Some((self.byte()? as i8).to_string().into_bytes()),
            Len::Encoded(1) => Some(i16::from_le_bytes(self.take(2)?.try_into().ok()?).to_string().into_bytes()),
            Len::Encoded(2) => Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?).to_string().into_bytes()),
            Len::Encoded(3) => {
                let clen = usize::try_from(self.len()?).ok()?;
                let len = usize::try_from(self.len()?).ok()?;
                lzf_decompress(self.take(clen)?, len)
            }
            Len::Encoded(_) => None,
        }
    }

    fn object(&mut self) -> Option<Decoded> {
        let kind = self.byte()?;
        Some(match kind {
            TYPE_STRING => Decoded::Str(self.string()?.into()),
            TYPE_LIST | TYPE_SET => {
                let n = self.count()?;
                let items = (0..n).map(|_| self.string().map(Bytes::from)).collect::<Option<Vec<_>>>()?;
                if kind == TYPE_LIST {
                    Decoded::List(items)
                } else {
                    Decoded::Set(items)
                }
            }
            TYPE_ZSET | TYPE_ZSET_2 => {
                let n = self.count()?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let member = Bytes::from(self.string()?);
                    let score = if kind == TYPE_ZSET_2 {
                        f64::from_le_bytes(self.take(8)?.try_into().ok()?)
                    } else {
                        match self.byte()? {
                            253 => f64::NAN,
                            254 => f64::INFINITY,
                            255 => f64::NEG_INFINITY,
                            n => std::str::from_utf8(self.take(n as usize)?).ok()?.parse().ok()?,
                        }
                    };
                    if score.is_nan() {
                        return None;
                    }
                    pairs.push((member, score));
                }
                Decoded::ZSet(pairs)
            }
            TYPE_HASH => {
                let n = self.count()?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    pairs.push((Bytes::from(self.string()?), Bytes::from(self.string()?)));
                }
                Decoded::Hash(pairs)
            }
            TYPE_SET_INTSET => Decoded::Set(intset(&self.string()?)?),
            TYPE_HASH_LISTPACK | TYPE_ZSET_LISTPACK => {
                let items = listpack(&self.string()?)?;
                if items.len() % 2 != 0 {
                    return None;
                }
                let mut pairs = items.chunks(2).map(|p| (p[0].clone(), p[1].clone()));
                if kind == TYPE_HASH_LISTPACK {
                    Decoded::Hash(pairs.collect())
                } else {
                    let mut out = Vec::with_capacity(items.len() / 2);
                    for (m, s) in pairs.by_ref() {
                        let score: f64 = std::str::from_utf8(&s).ok()?.parse().ok()?;
                        out.push((m, score));
                    }
                    Decoded::ZSet(out)
                }
            }
            TYPE_LIST_QUICKLIST_2 => {
                let nodes = self.count()?;
                let mut items = Vec::new();
                for _ in 0..nodes {
                    let container = self.len()?;
                    let blob = self.string()?;
                    match container {
                        1 => items.push(Bytes::from(blob)),
                        2 => items.extend(listpack(&blob)?),
                        _ => return None,
                    }
                }
                Decoded::List(items)
            }
            _ => return None,
        })
    }
}

/// The members of an intset blob (encoding width, count, little-endian integers).
fn intset(blob: &[u8]) -> Option<Vec<Bytes>> {
    let width = u32::from_le_bytes(blob.get(0..4)?.try_into().ok()?) as usize;
    let n = u32::from_le_bytes(blob.get(4..8)?.try_into().ok()?) as usize;
    if !matches!(width, 2 | 4 | 8) || blob.len() != 8 + width * n {
        return None;
    }
    Some(
        blob[8..]
            .chunks(width)
            .map(|c| {
                let v = match width {
                    2 => i16::from_le_bytes([c[0], c[1]]) as i64,
                    4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
                    _ => i64::from_le_bytes(c.try_into().expect("8 bytes")),
                };
                Bytes::from(v.to_string())
            })
            .collect(),
    )
}

/// The elements of a listpack (integers as their decimal text).
fn listpack(lp: &[u8]) -> Option<Vec<Bytes>> {
    let total = u32::from_le_bytes(lp.get(0..4)?.try_into().ok()?) as usize;
    if total != lp.len() || lp.last() != Some(&0xff) {
        return None;
    }
    let mut at = 6;
    let mut out = Vec::new();
    let int = |bytes: &[u8], bits: u32| -> i64 {
        let mut v: u64 = 0;
        for (i, b) in bytes.iter().enumerate() {
            v |= (*b as u64) << (8 * i);
        }
        let shift = 64 - bits;
        ((v << shift) as i64) >> shift
    };
    while *lp.get(at)? != 0xff {
        let b = lp[at];
        let (element, size): (Bytes, usize) = if b & 0x80 == 0 {
            (Bytes::from((b & 0x7f).to_string()), 1)
        } else if b & 0xc0 == 0x80 {
            let n = (b & 0x3f) as usize;
            (Bytes::copy_from_slice(lp.get(at + 1..at + 1 + n)?), 1 + n)
        } else if b & 0xe0 == 0xc0 {
            let v = ((((b & 0x1f) as u64) << 8) | *lp.get(at + 1)? as u64) as i64;
            let v = if v >= 1 << 12 { v - (1 << 13) } else { v };
            (Bytes::from(v.to_string()), 2)
        } else if b & 0xf0 == 0xe0 {
            let n = (((b & 0x0f) as usize) << 8) | *lp.get(at + 1)? as usize;
            (Bytes::copy_from_slice(lp.get(at + 2..at + 2 + n)?), 2 + n)
        } else {
            match b {
                0xf0 => {
                    let n = u32::from_le_bytes(lp.get(at + 1..at + 5)?.try_into().ok()?) as usize;
                    (Bytes::copy_from_slice(lp.get(at + 5..at.checked_add(5 + n)?)?), 5 + n)
                }
                0xf1 => (Bytes::from(int(lp.get(at + 1..at + 3)?, 16).to_string()), 3),
                0xf2 => (Bytes::from(int(lp.get(at + 1..at + 4)?, 24).to_string()), 4),
                0xf3 => (Bytes::from(int(lp.get(at + 1..at + 5)?, 32).to_string()), 5),
                0xf4 => (Bytes::from(int(lp.get(at + 1..at + 9)?, 64).to_string()), 9),
                _ => return None,
            }
        };
        let backlen = match size {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2097150 => 3,
            2097151..=268435454 => 4,
            _ => 5,
        };
        at += size + backlen;
        if at >= lp.len() {
            return None;
        }
        out.push(element);
    }
    Some(out)
}

/// LZF decompression (the format Redis compresses long strings with).
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            out.extend_from_slice(input.get(i..i + n)?);
            i += n;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += *input.get(i)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            for k in 0..n + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sm::Dict;

    #[test]
    fn crc64_is_redis_s() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn payloads_redis_7_wrote_are_read() {
        // DUMP of SET n 123 (an int-encoded string) and of RPUSH l a b (a quicklist of one
        // listpack), from redis-server 7.0.15.
        let n = b"\x00\xc0{\n\x00H\xe2S\xe1\x00zg\xb9";
        assert_eq!(decode(n), Ok(Decoded::Str(Bytes::from("123"))));
        let l = b"\x12\x01\x02\r\r\x00\x00\x00\x02\x00\x81a\x02\x81b\x02\xff\n\x00h\xeb\n\x89\x13A\xbb\xb1";
        assert_eq!(decode(l), Ok(Decoded::List(vec![Bytes::from("a"), Bytes::from("b")])));
        let mut bad = l.to_vec();
        bad[3] ^= 1;
        assert_eq!(decode(&bad), Err(DecodeError::Checksum));
        assert_eq!(decode(b"x"), Err(DecodeError::Checksum));
    }

    #[test]
    fn every_type_round_trips() {
        let mut h = Hash::new();
        h.insert(b"f", b"v");
        let mut z = ZSet::new();
        z.insert(b"m", 1.5);
        let mut s = Dict::new();
        s.insert(b"a", ());
        for (value, decoded) in [
            (Value::Str(b"hello".to_vec()), Decoded::Str(Bytes::from("hello"))),
            (
                Value::List(List(Box::new([ShortBytes::from(&b"x"[..]), ShortBytes::from(&[0u8; 100][..])].into()))),
                Decoded::List(vec![Bytes::from("x"), Bytes::from(vec![0u8; 100])]),
            ),
            (Value::Set(Box::new(s)), Decoded::Set(vec![Bytes::from("a")])),
            (Value::ZSet(Box::new(z)), Decoded::ZSet(vec![(Bytes::from("m"), 1.5)])),
            (Value::Hash(h), Decoded::Hash(vec![(Bytes::from("f"), Bytes::from("v"))])),
        ] {
            assert_eq!(decode(&encode(&value).unwrap()), Ok(decoded));
        }
    }

    #[test]
    fn garbage_never_panics() {
        let base = encode(&Value::Str(b"abc".to_vec())).unwrap();
        for i in 0..base.len() {
            for b in [0u8, 0x3f, 0x80, 0xc3, 0xff] {
                let mut p = base.clone();
                p[i] = b;
                let _ = decode(&p);
            }
        }
        for blob in [&b""[..], b"\x06\x00\x00\x00\x00\x00", b"\x07\x00\x00\x00\x01\x00\xf0"] {
            let _ = listpack(blob);
        }
        assert_eq!(lzf_decompress(b"\x20\x00", 10), None);
    }
}
