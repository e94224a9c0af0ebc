//! The values a key holds: a string, a hash, a set, a sorted set, a list or a stream, with
//! Redis's type names, encoding names and WRONGTYPE rule.
//!
//! Collections keep their elements in an order that is a function of the log (see [`Dict`]):
//! every replica, including one rebuilt from a snapshot, iterates a collection in the same
//! order, so HGETALL and SMEMBERS agree across nodes and an HSCAN/SSCAN/ZSCAN cursor from one
//! node is valid on another.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

/// A value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Hash,
    Set,
    ZSet,
    List,
    Stream,
}

impl Kind {
    /// The name TYPE answers and SCAN's TYPE option takes.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::List => "list",
            Kind::Stream => "stream",
        }
    }
}

/// A key's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A string (also integers and floats, which Redis stores as strings).
    Str(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A hash: field -> value.
    Hash(super::hash::Hash),
    /// A set of members (boxed, as every collection: a key holding a string stays small).
    Set(Box<Dict<()>>),
    /// A sorted set: member -> score, ordered by (score, member). Boxed, as the largest
    /// variant, so that a key holding a string stays small.
    ZSet(Box<ZSet>),
    /// A list of elements (variants are appended, never reordered: the index is in snapshots).
    List(List),
    /// A stream (boxed: rare, and a key holding a string stays small).
    Stream(Box<super::Stream>),
}

/// The error of using a key of another type: Redis's WRONGTYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
pub struct WrongType;

impl Value {
    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Str(_) => Kind::Str,
            Value::Hash(_) => Kind::Hash,
            Value::Set(_) => Kind::Set,
            Value::ZSet(_) => Kind::ZSet,
            Value::List(_) => Kind::List,
            Value::Stream(_) => Kind::Stream,
        }
    }

    /// The string, or WRONGTYPE.
    pub fn as_str(&self) -> Result<&Vec<u8>, WrongType> {
        match self {
            Value::Str(s) => Ok(s),
            _ => Err(WrongType),
        }
    }

    /// The string, mutably, or WRONGTYPE.
    pub fn as_str_mut(&mut self) -> Result<&mut Vec<u8>, WrongType> {
        match self {
            Value::Str(s) => Ok(s),
            _ => Err(WrongType),
        }
    }

    /// The name OBJECT ENCODING answers, following Redis 7.0's rules: strings are `int` (a
    /// 64-bit integer without leading zeros or sign quirks), `embstr` (up to 44 bytes) or `raw`;
    /// collections are compact (`listpack`, `intset`) until they grow past Redis's default
    /// thresholds, and stay converted once converted, as in Redis.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => {
                if s.len() <= 20 && crate::resp::parse_i64(s).is_some_and(|n| n.to_string().as_bytes() == &s[..]) {
                    "int"
                } else if s.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            Value::Hash(h) => {
                if h.is_big() {
                    "hashtable"
                } else {
                    "listpack"
                }
            }
            Value::Set(s) => {
                if s.is_big() {
                    "hashtable"
                } else {
                    "intset"
                }
            }
            Value::ZSet(z) => {
                if z.members.is_big() {
                    "skiplist"
                } else {
                    "listpack"
                }
            }
            // Redis 7.0 keeps every list in a quicklist (listpack lists came with 7.2).
            Value::List(_) => "quicklist",
            Value::Stream(_) => "stream",
        }
    }

    /// An estimate of the heap bytes the value holds (MEMORY USAGE): element bytes plus the
    /// per-element overhead of the structures holding them.
    pub fn heap_bytes(&self) -> usize {
        const BOX: usize = 16; // a boxed slice's pointer and length
        const NODE: usize = 24; // share of a B-tree node per element, roughly
                                // A `ShortBytes` of n bytes.
        let short = |n: usize| 24 + if n > ShortBytes::INLINE { n } else { 0 };
        match self {
            Value::Str(s) => s.capacity(),
            Value::Hash(h) => match h {
                super::hash::Hash::Compact(buf) => buf.capacity(),
                super::hash::Hash::Big(d) => d.iter().map(|slot| BOX + NODE + slot.len()).sum(),
            },
            Value::Set(d) => d.iter().map(|(m, _)| short(8 + m.len()) + NODE).sum(),
            Value::ZSet(z) => z.members.iter().map(|(m, _)| short(8 + m.len()) + short(m.len()) + 2 * NODE + 16).sum(),
            Value::List(l) => l.0.iter().map(|e| 24 + e.heap_len()).sum(),
            Value::Stream(st) => {
                st.entries.values().map(|fv| NODE + 16 + fv.iter().map(|b| BOX + b.len()).sum::<usize>()).sum()
            }
        }
    }

    /// Whether the value is an empty collection (Redis deletes a key whose collection empties).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
            Value::List(l) => l.is_empty(),
            // An empty stream stays, as in Redis.
            Value::Stream(_) => false,
        }
    }
}

/// A list: elements in order, with O(1) pushes and pops at both ends. An element of up to
/// [`ShortBytes::INLINE`] bytes (ids, small job references) is stored in the deque itself, 24
/// bytes with no allocation of its own; a longer one is one allocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct List(pub Box<VecDeque<ShortBytes>>);

impl List {
    /// An empty list.
    pub fn new() -> List {
        List::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no element.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for List {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|e| serde_bytes::Bytes::new(e)))
    }
}

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items: Vec<serde_bytes::ByteBuf> = Deserialize::deserialize(d)?;
        Ok(List(Box::new(items.into_iter().map(|b| ShortBytes::from(b.into_vec())).collect())))
    }
}

/// The fixed hash that orders a collection's elements: FNV-1a (64 bit) followed by a
/// SplitMix64 finalizer. It is part of the data format (it decides iteration order and scan
/// cursors on every replica), so it must never change. It need not resist collisions: elements
/// with equal hashes are still told apart (ordered) by their bytes.
pub fn element_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Bytes kept inline when they fit in [`ShortBytes::INLINE`] bytes, else on the heap: 24 bytes
/// either way, where a `Box<[u8]>` takes 16 plus an allocation (at least 32 bytes with glibc's
/// malloc). The elements of big sets and sorted sets (with their 8-byte hash prefix) are mostly
/// this short. Compares, hashes and borrows as its bytes.
#[derive(Clone)]
pub enum ShortBytes {
    Inline(u8, [u8; ShortBytes::INLINE]),
    Heap(Box<[u8]>),
}

impl ShortBytes {
    /// The longest content kept inline.
    pub const INLINE: usize = 22;

    /// The bytes, as a vector.
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            ShortBytes::Inline(..) => self.to_vec(),
            ShortBytes::Heap(b) => b.into_vec(),
        }
    }

    /// Heap bytes held besides the value itself.
    pub fn heap_len(&self) -> usize {
        match self {
            ShortBytes::Inline(..) => 0,
            ShortBytes::Heap(b) => b.len(),
        }
    }
}

impl From<&[u8]> for ShortBytes {
    fn from(b: &[u8]) -> ShortBytes {
        if b.len() <= ShortBytes::INLINE {
            let mut buf = [0; ShortBytes::INLINE];
            buf[..b.len()].copy_from_slice(b);
            ShortBytes::Inline(b.len() as u8, buf)
        } else {
            ShortBytes::Heap(b.into())
        }
    }
}

impl From<Vec<u8>> for ShortBytes {
    fn from(v: Vec<u8>) -> ShortBytes {
        if v.len() <= ShortBytes::INLINE {
            ShortBytes::from(&v[..])
        } else {
            ShortBytes::Heap(v.into_boxed_slice())
        }
    }
}

impl From<ShortBytes> for bytes::Bytes {
    fn from(s: ShortBytes) -> bytes::Bytes {
        match s {
            ShortBytes::Inline(..) => bytes::Bytes::copy_from_slice(&s),
            ShortBytes::Heap(b) => bytes::Bytes::from(b),
        }
    }
}

impl std::ops::Deref for ShortBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ShortBytes::Inline(n, buf) => &buf[..*n as usize],
            ShortBytes::Heap(b) => b,
        }
    }
}

impl std::borrow::Borrow<[u8]> for ShortBytes {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for ShortBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}
impl Eq for ShortBytes {}
impl PartialOrd for ShortBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ShortBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (**self).cmp(&**other)
    }
}
impl std::hash::Hash for ShortBytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}
impl std::fmt::Debug for ShortBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self))
    }
}

/// A collection's elements, in one of two forms, as Redis keeps them:
///
/// - compact (Redis's listpack): a vector in insertion order, where a replaced element keeps its
///   place and a removed one closes the gap. Small hashes answer HGETALL in this order, as Redis's
///   do. Lookups are linear, as in a listpack; the owning type converts before it grows past
///   Redis's thresholds.
/// - big (Redis's hashtable): elements by (hash of the element, element), so the order is a
///   function of the contents alone. A scan cursor is the hash of the next element to visit:
///   elements present for a whole scan are visited exactly once however others come and go
///   (elements sharing a hash are visited in one step). Each element is stored once, as its hash
///   (8 bytes, big-endian) followed by its bytes: byte order on that is (hash, element) order,
///   and a lookup borrows a `[u8]`.
///
/// Both forms are functions of the log, so every replica iterates in the same order. A
/// collection never goes back from big to compact, as in Redis.
#[derive(Debug, Clone, PartialEq)]
pub struct Dict<V> {
    repr: Repr<V>,
}

#[derive(Debug, Clone, PartialEq)]
enum Repr<V> {
    Compact(Vec<(Box<[u8]>, V)>),
    Big(BTreeMap<ShortBytes, V>),
}

/// The stored form of an element in a big collection: its hash, then its bytes.
fn dict_key(element: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + element.len());
    k.extend_from_slice(&element_hash(element).to_be_bytes());
    k.extend_from_slice(element);
    k
}

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Dict { repr: Repr::Compact(Vec::new()) }
    }
}

impl<V> Dict<V> {
    /// An empty compact collection.
    pub fn new() -> Dict<V> {
        Dict::default()
    }

    /// Whether the collection was converted to the big form (reported by OBJECT ENCODING).
    pub fn is_big(&self) -> bool {
        matches!(self.repr, Repr::Big(_))
    }

    /// Converts to the big form (no-op when already big); the order becomes hash order.
    pub fn make_big(&mut self) {
        if let Repr::Compact(items) = &mut self.repr {
            let map = std::mem::take(items).into_iter().map(|(k, v)| (ShortBytes::from(dict_key(&k)), v)).collect();
            self.repr = Repr::Big(map);
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Compact(items) => items.len(),
            Repr::Big(map) => map.len(),
        }
    }

    /// Whether there is no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        match &self.repr {
            Repr::Compact(items) => items.iter().find(|(k, _)| &k[..] == key).map(|(_, v)| v),
            Repr::Big(map) => map.get(&dict_key(key)[..]),
        }
    }

    /// The value of `key`, mutably.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        match &mut self.repr {
            Repr::Compact(items) => items.iter_mut().find(|(k, _)| &k[..] == key).map(|(_, v)| v),
            Repr::Big(map) => map.get_mut(&dict_key(key)[..]),
        }
    }

    /// Whether `key` is an element.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Inserts (at the end, in the compact form) or replaces in place; returns the previous
    /// value.
    pub fn insert(&mut self, key: &[u8], value: V) -> Option<V> {
        match &mut self.repr {
            Repr::Compact(items) => match items.iter_mut().find(|(k, _)| &k[..] == key) {
                Some((_, v)) => Some(std::mem::replace(v, value)),
                None => {
                    items.push((key.into(), value));
                    None
                }
            },
            Repr::Big(map) => map.insert(ShortBytes::from(dict_key(key)), value),
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        match &mut self.repr {
            Repr::Compact(items) => {
                let i = items.iter().position(|(k, _)| &k[..] == key)?;
                Some(items.remove(i).1)
            }
            Repr::Big(map) => map.remove(&dict_key(key)[..]),
        }
    }

    /// Every element in the collection's order.
    pub fn iter(&self) -> Iter<'_, V> {
        match &self.repr {
            Repr::Compact(items) => Iter::Compact(items.iter()),
            Repr::Big(map) => Iter::Big(map.iter()),
        }
    }

    /// The element at position `i` in iteration order (O(1) compact, O(i) big).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &V)> {
        match &self.repr {
            Repr::Compact(items) => items.get(i).map(|(k, v)| (&k[..], v)),
            Repr::Big(_) => self.iter().nth(i),
        }
    }

    /// One step of a scan: up to about `count` elements from `cursor` on (more when elements
    /// share a hash), and the cursor to continue from (0 when the scan is complete). A compact
    /// collection is scanned in one step, as Redis scans a listpack.
    pub fn scan(&self, cursor: u64, count: usize) -> (Vec<(&[u8], &V)>, u64) {
        let map = match &self.repr {
            Repr::Compact(_) => return (self.iter().collect(), 0),
            Repr::Big(map) => map,
        };
        let mut out = Vec::new();
        let mut last_hash = None;
        let start = cursor.to_be_bytes();
        for (k, v) in map.range::<[u8], _>((std::ops::Bound::Included(&start[..]), std::ops::Bound::Unbounded)) {
            let h = u64::from_be_bytes(k[..8].try_into().expect("8-byte hash prefix"));
            if out.len() >= count.max(1) && last_hash != Some(h) {
                return (out, h);
            }
            last_hash = Some(h);
            out.push((&k[8..], v));
        }
        (out, 0)
    }
}

/// The elements of a [`Dict`] in its order.
pub enum Iter<'a, V> {
    Compact(std::slice::Iter<'a, (Box<[u8]>, V)>),
    Big(std::collections::btree_map::Iter<'a, ShortBytes, V>),
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a [u8], &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Compact(it) => it.next().map(|(k, v)| (&k[..], v)),
            Iter::Big(it) => it.next().map(|(k, v)| (&k[8..], v)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Compact(it) => it.size_hint(),
            Iter::Big(it) => it.size_hint(),
        }
    }
}

impl<V> DoubleEndedIterator for Iter<'_, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Compact(it) => it.next_back().map(|(k, v)| (&k[..], v)),
            Iter::Big(it) => it.next_back().map(|(k, v)| (&k[8..], v)),
        }
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

impl<V: Serialize> Serialize for Dict<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Elements<'a, V>(&'a Dict<V>);
        impl<V: Serialize> Serialize for Elements<'_, V> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|(k, v)| (serde_bytes::Bytes::new(k), v)))
            }
        }
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.is_big())?;
        t.serialize_element(&Elements(self))?;
        t.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Dict<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (big, elements): (bool, Vec<(serde_bytes::ByteBuf, V)>) = Deserialize::deserialize(d)?;
        let mut dict = Dict::new();
        if big {
            dict.make_big();
        }
        for (k, v) in elements {
            dict.insert(&k, v);
        }
        Ok(dict)
    }
}

/// A score, ordered as Redis orders them: by `<` on doubles, so -0 and 0 are equal (scores are
/// never NaN: the commands refuse it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score(pub f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.0 == other.0 {
            std::cmp::Ordering::Equal
        } else {
            self.0.total_cmp(&other.0)
        }
    }
}

/// A sorted set: each member's score, and the members in (score, member) order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZSet {
    pub members: Dict<f64>,
    pub by_score: BTreeSet<(Score, ShortBytes)>,
}

impl ZSet {
    /// An empty sorted set.
    pub fn new() -> ZSet {
        ZSet::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.members.get(member).copied()
    }

    /// Sets `member`'s score; returns the previous one.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let old = self.members.insert(member, score);
        if let Some(old) = old {
            self.by_score.remove(&(Score(old), member.into()));
        }
        self.by_score.insert((Score(score), member.into()));
        old
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let old = self.members.remove(member)?;
        self.by_score.remove(&(Score(old), member.into()));
        Some(old)
    }
}

impl Serialize for ZSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.members.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ZSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let members: Dict<f64> = Deserialize::deserialize(d)?;
        let by_score = members.iter().map(|(m, &s)| (Score(s), m.into())).collect();
        Ok(ZSet { members, by_score })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_dict_orders_by_contents_only() {
        let mut a = Dict::new();
        let mut b = Dict::new();
        a.make_big();
        b.make_big();
        for i in 0..100u32 {
            a.insert(format!("m{i}").as_bytes(), ());
        }
        for i in (0..150u32).rev() {
            b.insert(format!("m{i}").as_bytes(), ());
        }
        for i in 100..150u32 {
            b.remove(format!("m{i}").as_bytes());
        }
        assert!(a.iter().map(|(k, _)| k).eq(b.iter().map(|(k, _)| k)));
        let bytes = bincode::serialize(&a).unwrap();
        let back: Dict<()> = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn a_compact_dict_keeps_insertion_order_until_made_big() {
        let mut d = Dict::new();
        for k in ["c", "a", "b"] {
            d.insert(k.as_bytes(), 0);
        }
        assert_eq!(d.insert(b"a", 1), Some(0), "a replaced element keeps its place");
        d.remove(b"c");
        d.insert(b"c", 2);
        let keys = |d: &Dict<i32>| d.iter().map(|(k, _)| k.to_vec()).collect::<Vec<_>>();
        assert_eq!(keys(&d), [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(d.nth(2), Some((&b"c"[..], &2)));
        assert_eq!(d.scan(0, 1).1, 0, "a compact dict is scanned in one step");
        let back: Dict<i32> = bincode::deserialize(&bincode::serialize(&d).unwrap()).unwrap();
        assert_eq!(keys(&back), keys(&d), "a snapshot keeps the order");
        d.make_big();
        assert!(d.is_big());
        assert_eq!(d.get(b"a"), Some(&1));
        let back: Dict<i32> = bincode::deserialize(&bincode::serialize(&d).unwrap()).unwrap();
        assert!(back.is_big());
        assert_eq!(back, d);
    }

    #[test]
    fn a_scan_visits_every_element_that_stays_exactly_once() {
        let mut d = Dict::new();
        d.make_big();
        for i in 0..1000u32 {
            d.insert(format!("k{i}").as_bytes(), i);
        }
        let mut seen = std::collections::HashMap::new();
        let mut cursor = 0;
        let mut round = 0u32;
        loop {
            let (items, next) = d.scan(cursor, 10);
            for (k, _) in items {
                *seen.entry(k.to_vec()).or_insert(0) += 1;
            }
            // Churn between steps: add and remove other elements.
            d.insert(format!("new{round}").as_bytes(), 0);
            d.remove(format!("new{}", round / 2).as_bytes());
            round += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..1000u32 {
            assert_eq!(seen.get(format!("k{i}").as_bytes()), Some(&1), "k{i}");
        }
    }

    #[test]
    fn short_bytes_are_their_bytes_inline_or_not() {
        assert_eq!(std::mem::size_of::<ShortBytes>(), 24);
        let short = ShortBytes::from(&b"abc"[..]);
        let edge = ShortBytes::from(vec![b'x'; ShortBytes::INLINE]);
        let long = ShortBytes::from(vec![b'x'; ShortBytes::INLINE + 1]);
        assert!(matches!(short, ShortBytes::Inline(..)) && matches!(edge, ShortBytes::Inline(..)));
        assert!(matches!(long, ShortBytes::Heap(_)));
        assert_eq!(&*short, b"abc");
        assert_eq!(long.len(), ShortBytes::INLINE + 1);
        assert!(edge < long && short < edge, "ordered as their bytes, whatever the form");
        assert_eq!(ShortBytes::from(&b""[..]).into_vec(), Vec::<u8>::new());
        assert_eq!(long.clone().into_vec(), vec![b'x'; ShortBytes::INLINE + 1]);
        let map: BTreeMap<ShortBytes, u8> = [(short, 1), (edge, 2), (long, 3)].into_iter().collect();
        assert_eq!(map.get(&b"abc"[..]), Some(&1));
        assert_eq!(map.get(&vec![b'x'; ShortBytes::INLINE + 1][..]), Some(&3));
    }

    #[test]
    fn zset_orders_by_score_then_member() {
        let mut z = ZSet::new();
        z.insert(b"b", 1.0);
        z.insert(b"a", 1.0);
        z.insert(b"c", -f64::INFINITY);
        z.insert(b"b", 0.5);
        let order: Vec<&[u8]> = z.by_score.iter().map(|(_, m)| &**m).collect();
        assert_eq!(order, vec![&b"c"[..], b"b", b"a"]);
        let back: ZSet = bincode::deserialize(&bincode::serialize(&z).unwrap()).unwrap();
        assert_eq!(back, z);
    }
}
