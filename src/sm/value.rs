//! The values a key holds: a string, a hash, a set or a sorted set (lists and streams will join
//! them), with Redis's type names, encoding names and WRONGTYPE rule.
//!
//! Collections keep their elements in an order that depends only on their contents (see
//! [`Dict`]), never on the history of inserts and deletes: every replica, including one rebuilt
//! from a snapshot, iterates a collection in the same order, so HGETALL and SMEMBERS agree across
//! nodes and an HSCAN/SSCAN/ZSCAN cursor from one node is valid on another.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Hash,
    Set,
    ZSet,
}

impl Kind {
    /// The name TYPE answers and SCAN's TYPE option takes.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::ZSet => "zset",
        }
    }
}

/// A key's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A string (also integers and floats, which Redis stores as strings).
    Str(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A hash: field -> value.
    Hash(Dict<Box<[u8]>>),
    /// A set of members.
    Set(Dict<()>),
    /// A sorted set: member -> score, ordered by (score, member).
    ZSet(ZSet),
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
                if h.big {
                    "hashtable"
                } else {
                    "listpack"
                }
            }
            Value::Set(s) => {
                if s.big {
                    "hashtable"
                } else {
                    "intset"
                }
            }
            Value::ZSet(z) => {
                if z.members.big {
                    "skiplist"
                } else {
                    "listpack"
                }
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
        }
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

/// A collection's elements by (hash of the element, element): lookups are by that pair, and
/// iteration follows it, so the order is a function of the contents alone. A scan cursor is the
/// hash of the next element to visit: elements present for a whole scan are visited exactly
/// once however others come and go (elements sharing a hash are visited in one step).
///
/// Each element is stored once, as its hash (8 bytes, big-endian) followed by its bytes: byte
/// order on that is (hash, element) order, and a lookup borrows a `[u8]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dict<V> {
    map: BTreeMap<Box<[u8]>, V>,
    /// Converted from Redis's compact encoding (reported by OBJECT ENCODING): set once, never
    /// cleared, as Redis never converts back.
    pub big: bool,
}

/// The stored form of an element: its hash, then its bytes.
fn dict_key(element: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + element.len());
    k.extend_from_slice(&element_hash(element).to_be_bytes());
    k.extend_from_slice(element);
    k
}

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Dict { map: BTreeMap::new(), big: false }
    }
}

impl<V> Dict<V> {
    /// An empty collection.
    pub fn new() -> Dict<V> {
        Dict::default()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is no element.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.map.get(&dict_key(key)[..])
    }

    /// The value of `key`, mutably.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.map.get_mut(&dict_key(key)[..])
    }

    /// Whether `key` is an element.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: &[u8], value: V) -> Option<V> {
        self.map.insert(dict_key(key).into_boxed_slice(), value)
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        self.map.remove(&dict_key(key)[..])
    }

    /// Every element in the collection's order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], &V)> + ExactSizeIterator {
        self.map.iter().map(|(k, v)| (&k[8..], v))
    }

    /// The element at position `i` in iteration order (O(i)).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &V)> {
        self.iter().nth(i)
    }

    /// One step of a scan: up to about `count` elements from `cursor` on (more when elements
    /// share a hash), and the cursor to continue from (0 when the scan is complete).
    pub fn scan(&self, cursor: u64, count: usize) -> (Vec<(&[u8], &V)>, u64) {
        let mut out = Vec::new();
        let mut last_hash = None;
        let start = cursor.to_be_bytes();
        for (k, v) in self.map.range::<[u8], _>((std::ops::Bound::Included(&start[..]), std::ops::Bound::Unbounded)) {
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
        t.serialize_element(&self.big)?;
        t.serialize_element(&Elements(self))?;
        t.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Dict<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (big, elements): (bool, Vec<(serde_bytes::ByteBuf, V)>) = Deserialize::deserialize(d)?;
        let mut dict = Dict { map: BTreeMap::new(), big };
        for (k, v) in elements {
            dict.insert(&k, v);
        }
        Ok(dict)
    }
}

/// A score, ordered as Redis orders them (scores are never NaN: the commands refuse it).
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
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set: each member's score, and the members in (score, member) order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZSet {
    pub members: Dict<f64>,
    pub by_score: BTreeSet<(Score, Box<[u8]>)>,
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
    fn order_depends_on_contents_only() {
        let mut a = Dict::new();
        let mut b = Dict::new();
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
    fn a_scan_visits_every_element_that_stays_exactly_once() {
        let mut d = Dict::new();
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
