//! A hash's fields and values, stored as Redis stores them: a small hash is one packed buffer
//! in insertion order (Redis's listpack), a big one a [`Dict`] in hash order (Redis's
//! hashtable). The owner (the hash commands) decides when to convert, following Redis's
//! thresholds; a hash never converts back.
//!
//! The packed buffer holds, for each field in order, the field and then its value, each as a
//! LEB128 length followed by its bytes. Lookups walk it, as Redis walks a listpack: the
//! thresholds keep it short (128 fields of at most 64 bytes by default).
//!
//! A big hash keeps each pair in one allocation (see [`Slot`]): the field's [`element_hash`],
//! the field, and the value. It is ordered as a [`Dict`] orders its elements (by hash, then
//! bytes), so iteration order and scan cursors are those of a `Dict`; one allocation per pair
//! instead of a field and a value costs a third less memory for the small fields and values
//! hashes usually hold.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::value::element_hash;
#[cfg(test)]
use super::value::Dict;

/// A field and its value.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// A hash value.
#[derive(Debug, Clone, PartialEq)]
pub enum Hash {
    /// Fields and values packed in insertion order.
    Compact(Vec<u8>),
    /// Pairs by (hash of the field, field) (boxed: a key holding a small hash or a string stays
    /// small).
    Big(Box<BTreeSet<Slot>>),
}

/// One pair of a big hash in one allocation: the field's hash (8 bytes, big-endian), the field's
/// length (LEB128), the field, the value. Ordered by (hash, field), which is the byte order of
/// a [`Dict`]'s stored elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot(Box<[u8]>);

impl Slot {
    fn new(field: &[u8], value: &[u8]) -> Slot {
        let mut buf = Vec::with_capacity(8 + 10 + field.len() + value.len());
        buf.extend_from_slice(&element_hash(field).to_be_bytes());
        push_item(&mut buf, field);
        buf.extend_from_slice(value);
        Slot(buf.into_boxed_slice())
    }

    /// The field and the value.
    fn pair(&self) -> (&[u8], &[u8]) {
        let (field, end) = item(&self.0, 8);
        (field, &self.0[end..])
    }

    fn hash(&self) -> [u8; 8] {
        self.0[..8].try_into().expect("8-byte hash prefix")
    }

    /// Bytes held (MEMORY USAGE).
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// What orders slots, and lets a lookup compare a field against them without building a slot.
pub trait SlotKey {
    fn hash(&self) -> [u8; 8];
    fn field(&self) -> &[u8];
}

impl SlotKey for Slot {
    fn hash(&self) -> [u8; 8] {
        Slot::hash(self)
    }
    fn field(&self) -> &[u8] {
        self.pair().0
    }
}

/// A field to look up (or, with an empty field, the first position of a hash value: a scan
/// cursor).
struct Probe<'a> {
    hash: [u8; 8],
    field: &'a [u8],
}

impl SlotKey for Probe<'_> {
    fn hash(&self) -> [u8; 8] {
        self.hash
    }
    fn field(&self) -> &[u8] {
        self.field
    }
}

impl<'a> Probe<'a> {
    fn of(field: &'a [u8]) -> Probe<'a> {
        Probe { hash: element_hash(field).to_be_bytes(), field }
    }
}

impl PartialEq for dyn SlotKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.hash() == other.hash() && self.field() == other.field()
    }
}
impl Eq for dyn SlotKey + '_ {}
impl PartialOrd for dyn SlotKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for dyn SlotKey + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.hash().cmp(&other.hash()).then_with(|| self.field().cmp(other.field()))
    }
}
impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Slot {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self as &dyn SlotKey).cmp(other as &dyn SlotKey)
    }
}
impl<'a> Borrow<dyn SlotKey + 'a> for Slot {
    fn borrow(&self) -> &(dyn SlotKey + 'a) {
        self
    }
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
            let set = packed(buf).map(|(f, v, _, _)| Slot::new(f, v)).collect();
            *self = Hash::Big(Box::new(set));
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
            Hash::Big(d) => d.get(&Probe::of(field) as &dyn SlotKey).map(|s| s.pair().1),
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
            Hash::Big(d) => d.replace(Slot::new(field, value)).is_none(),
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
            Hash::Big(d) => d.remove(&Probe::of(field) as &dyn SlotKey),
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
            Hash::Big(d) => d.iter().nth(i).map(Slot::pair),
        }
    }

    /// One step of a scan (see [`Dict::scan`]); a compact hash is scanned in one step.
    pub fn scan(&self, cursor: u64, count: usize) -> (Vec<Pair<'_>>, u64) {
        match self {
            Hash::Compact(_) => (self.iter().collect(), 0),
            Hash::Big(d) => {
                // As `Dict::scan`: from the first slot whose hash is the cursor on, and never
                // between two slots of one hash.
                let start = Probe { hash: cursor.to_be_bytes(), field: &[] };
                let mut out = Vec::new();
                let mut last_hash = None;
                for slot in d.range::<dyn SlotKey, _>((Bound::Included(&start as &dyn SlotKey), Bound::Unbounded)) {
                    let h = slot.hash();
                    if out.len() >= count.max(1) && last_hash != Some(h) {
                        return (out, u64::from_be_bytes(h));
                    }
                    last_hash = Some(h);
                    out.push(slot.pair());
                }
                (out, 0)
            }
        }
    }
}

/// The pairs of a [`Hash`] in its order.
pub enum Iter<'a> {
    Compact(Packed<'a>),
    Big(std::collections::btree_set::Iter<'a, Slot>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Compact(it) => it.next().map(|(f, v, ..)| (f, v)),
            Iter::Big(it) => it.next().map(Slot::pair),
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
        // Same order and scan cursors as a big Dict (what big hashes were before one allocation
        // per pair): HGETALL order and HSCAN cursors do not change across the upgrade.
        let mut d: Dict<Box<[u8]>> = Dict::new();
        d.make_big();
        for i in 0..50u32 {
            d.insert(format!("f{i}").as_bytes(), Box::from(format!("v{i}").as_bytes()));
        }
        let dict_pairs: Vec<(Vec<u8>, Vec<u8>)> = d.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(pairs(&h), dict_pairs);
        let (mut cursor, mut steps) = (0, 0);
        loop {
            let (mine, next) = h.scan(cursor, 7);
            let (theirs, their_next) = d.scan(cursor, 7);
            assert_eq!(next, their_next);
            assert!(mine
                .iter()
                .map(|(f, v)| (f.to_vec(), v.to_vec()))
                .eq(theirs.iter().map(|(f, v)| (f.to_vec(), v.to_vec()))));
            steps += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert!(steps > 5);
        assert!(!h.insert(b"f7", b"new") && h.get(b"f7") == Some(&b"new"[..]));
        assert!(h.remove(b"f7") && h.get(b"f7").is_none() && h.len() == 49);
        // The shape of a Dict<Box<[u8]>>: snapshots written before this type read back.
        let mut d: Dict<Box<[u8]>> = Dict::new();
        d.insert(b"x", Box::from(&b"y"[..]));
        let h: Hash = bincode::deserialize(&bincode::serialize(&d).unwrap()).unwrap();
        assert_eq!(h.get(b"x"), Some(&b"y"[..]));
    }
}
