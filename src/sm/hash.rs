//! A hash's fields and values, stored as Redis stores them: a small hash is one packed buffer
//! in insertion order (Redis's listpack), a big one a [`Dict`] in hash order (Redis's
//! hashtable). The owner (the hash commands) decides when to convert, following Redis's
//! thresholds; a hash never converts back.
//!
//! The packed buffer holds, for each field in order, the field and then its value, each as a
//! LEB128 length followed by its bytes. Lookups walk it, as Redis walks a listpack: the
//! thresholds keep it short (128 fields of at most 64 bytes by default).

use serde::{Deserialize, Serialize};

use super::value::Dict;

/// A field and its value.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// A hash value.
#[derive(Debug, Clone, PartialEq)]
pub enum Hash {
    /// Fields and values packed in insertion order.
    Compact(Vec<u8>),
    /// Fields by hash (boxed: a key holding a small hash or a string stays small).
    Big(Box<Dict<Box<[u8]>>>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Compact(Vec::new())
    }
}

/// Reads one length-prefixed item at `at`: the item and the offset after it.
fn item(buf: &[u8], at: usize) -> (&[u8], usize) {
    let (mut len, mut shift, mut i) = (0usize, 0, at);
    loop {
        let b = buf[i];
        i += 1;
        len |= ((b & 0x7f) as usize) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (&buf[i..i + len], i + len)
}

fn push_item(buf: &mut Vec<u8>, bytes: &[u8]) {
    let mut len = bytes.len();
    let mut prefix = [0u8; 10];
    let mut n = 0;
    loop {
        let b = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            prefix[n] = b;
            n += 1;
            break;
        }
        prefix[n] = b | 0x80;
        n += 1;
    }
    buf.reserve_exact(n + bytes.len());
    buf.extend_from_slice(&prefix[..n]);
    buf.extend_from_slice(bytes);
}

/// The (field, value) pairs of a packed buffer, with each pair's byte range.
pub struct Packed<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Packed<'a> {
    /// Field, value, start of the pair, end of the pair.
    type Item = (&'a [u8], &'a [u8], usize, usize);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.buf.len() {
            return None;
        }
        let start = self.at;
        let (field, after) = item(self.buf, start);
        let (value, end) = item(self.buf, after);
        self.at = end;
        Some((field, value, start, end))
    }
}

fn packed(buf: &[u8]) -> Packed<'_> {
    Packed { buf, at: 0 }
}

impl Hash {
    /// An empty compact hash.
    pub fn new() -> Hash {
        Hash::default()
    }

    /// Whether the hash was converted to the big form (OBJECT ENCODING `hashtable`).
    pub fn is_big(&self) -> bool {
        matches!(self, Hash::Big(_))
    }

    /// Converts to the big form (no-op when already big).
    pub fn make_big(&mut self) {
        if let Hash::Compact(buf) = self {
            let mut dict = Dict::new();
            dict.make_big();
            for (f, v, _, _) in packed(buf) {
                dict.insert(f, Box::from(v));
            }
            *self = Hash::Big(Box::new(dict));
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match self {
            Hash::Compact(buf) => packed(buf).count(),
            Hash::Big(d) => d.len(),
        }
    }

    /// Whether there is no field.
    pub fn is_empty(&self) -> bool {
        match self {
            Hash::Compact(buf) => buf.is_empty(),
            Hash::Big(d) => d.is_empty(),
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Compact(buf) => packed(buf).find(|(f, ..)| *f == field).map(|(_, v, ..)| v),
            Hash::Big(d) => d.get(field).map(|v| &v[..]),
        }
    }

    /// Whether `field` exists.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` (a new field goes last in the compact form; an existing one keeps its
    /// place); whether the field is new.
    pub fn insert(&mut self, field: &[u8], value: impl AsRef<[u8]>) -> bool {
        let value = value.as_ref();
        match self {
            Hash::Compact(buf) => {
                let found = packed(buf).find(|(f, ..)| *f == field).map(|(_, _, start, end)| (start, end));
                match found {
                    Some((start, end)) => {
                        let mut pair = Vec::with_capacity(field.len() + value.len() + 4);
                        push_item(&mut pair, field);
                        push_item(&mut pair, value);
                        buf.splice(start..end, pair);
                        buf.shrink_to_fit();
                        false
                    }
                    None => {
                        push_item(buf, field);
                        push_item(buf, value);
                        true
                    }
                }
            }
            Hash::Big(d) => d.insert(field, Box::from(value)).is_none(),
        }
    }

    /// Removes `field`; whether it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Compact(buf) => {
                let Some((start, end)) = packed(buf).find(|(f, ..)| *f == field).map(|(_, _, s, e)| (s, e)) else {
                    return false;
                };
                buf.drain(start..end);
                buf.shrink_to_fit();
                true
            }
            Hash::Big(d) => d.remove(field).is_some(),
        }
    }

    /// Every (field, value) in the hash's order.
    pub fn iter(&self) -> Iter<'_> {
        match self {
            Hash::Compact(buf) => Iter::Compact(packed(buf)),
            Hash::Big(d) => Iter::Big(d.iter()),
        }
    }

    /// The pair at position `i` in iteration order (O(i)).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Compact(buf) => packed(buf).nth(i).map(|(f, v, ..)| (f, v)),
            Hash::Big(d) => d.nth(i).map(|(f, v)| (f, &v[..])),
        }
    }

    /// One step of a scan (see [`Dict::scan`]); a compact hash is scanned in one step.
    pub fn scan(&self, cursor: u64, count: usize) -> (Vec<Pair<'_>>, u64) {
        match self {
            Hash::Compact(_) => (self.iter().collect(), 0),
            Hash::Big(d) => {
                let (items, next) = d.scan(cursor, count);
                (items.into_iter().map(|(f, v)| (f, &v[..])).collect(), next)
            }
        }
    }
}

/// The pairs of a [`Hash`] in its order.
pub enum Iter<'a> {
    Compact(Packed<'a>),
    Big(super::value::Iter<'a, Box<[u8]>>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Compact(it) => it.next().map(|(f, v, ..)| (f, v)),
            Iter::Big(it) => it.next().map(|(f, v)| (f, &v[..])),
        }
    }
}

/// Serialized as `(big, [(field, value)...])` in the hash's order, the shape of a [`Dict`].
impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Pairs<'a>(&'a Hash);
        impl Serialize for Pairs<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for (f, v) in self.0.iter() {
                    seq.serialize_element(&(serde_bytes::Bytes::new(f), serde_bytes::Bytes::new(v)))?;
                }
                seq.end()
            }
        }
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.is_big())?;
        t.serialize_element(&Pairs(self))?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (big, pairs): (bool, Vec<(serde_bytes::ByteBuf, serde_bytes::ByteBuf)>) = Deserialize::deserialize(d)?;
        let mut h = Hash::new();
        if big {
            h.make_big();
        }
        for (f, v) in pairs {
            h.insert(&f, &v[..]);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(h: &Hash) -> Vec<(Vec<u8>, Vec<u8>)> {
        h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()
    }

    #[test]
    fn a_compact_hash_keeps_insertion_order_and_replaces_in_place() {
        let mut h = Hash::new();
        assert!(h.insert(b"c", b"1"));
        assert!(h.insert(b"a", b"2"));
        assert!(h.insert(b"b", vec![b'x'; 300]), "a value longer than one length byte");
        assert!(!h.insert(b"a", b"22222"), "replaced");
        assert_eq!(h.len(), 3);
        assert_eq!(h.get(b"a"), Some(&b"22222"[..]));
        assert_eq!(h.get(b"b").map(<[u8]>::len), Some(300));
        assert_eq!(h.get(b"zz"), None);
        let order: Vec<Vec<u8>> = h.iter().map(|(f, _)| f.to_vec()).collect();
        assert_eq!(order, [b"c".to_vec(), b"a".to_vec(), b"b".to_vec()]);
        assert!(h.remove(b"c"));
        assert!(!h.remove(b"c"));
        assert_eq!(h.nth(0).map(|(f, _)| f), Some(&b"a"[..]));
        assert_eq!(h.scan(0, 1).1, 0);
        let back: Hash = bincode::deserialize(&bincode::serialize(&h).unwrap()).unwrap();
        assert_eq!(pairs(&back), pairs(&h));
        assert!(h.remove(b"a") && h.remove(b"b"));
        assert!(h.is_empty());
    }

    #[test]
    fn converting_keeps_every_pair_and_the_serialized_shape() {
        let mut h = Hash::new();
        for i in 0..50u32 {
            h.insert(format!("f{i}").as_bytes(), format!("v{i}").as_bytes());
        }
        let mut before = pairs(&h);
        h.make_big();
        assert!(h.is_big());
        let mut after = pairs(&h);
        before.sort();
        after.sort();
        assert_eq!(before, after);
        assert_eq!(h.get(b"f7"), Some(&b"v7"[..]));
        let back: Hash = bincode::deserialize(&bincode::serialize(&h).unwrap()).unwrap();
        assert!(back.is_big());
        assert_eq!(back, h);
        // The shape of a Dict<Box<[u8]>>: snapshots written before this type read back.
        let mut d: Dict<Box<[u8]>> = Dict::new();
        d.insert(b"x", Box::from(&b"y"[..]));
        let h: Hash = bincode::deserialize(&bincode::serialize(&d).unwrap()).unwrap();
        assert_eq!(h.get(b"x"), Some(&b"y"[..]));
    }
}
