//! The keyspace's storage: keys in a slab (stable slot numbers, which SCAN cursors point into),
//! an index from key to slot, an index of expiry times, and the bookkeeping WATCH needs.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher;

use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

use super::value::Value;

/// How many recent deletions are remembered for WATCH; older ones make a WATCH that predates
/// them fail safe (EXEC aborts) rather than miss a change.
const TOMBSTONES_KEPT: usize = 65_536;

/// One key and its value. Keys serialize as byte strings: bincode writes them exactly as a
/// sequence of bytes (a length, then the bytes), but in one copy instead of a call per byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(with = "serde_bytes")]
    pub key: Box<[u8]>,
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; 0 means no expiry.
    pub expire_at: u64,
    /// The keyspace's modification counter when this entry was last changed (for WATCH).
    pub seq: u64,
}

impl Entry {
    /// Whether the entry has logically expired at `now` (milliseconds).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now
    }
}

/// A deleted key, remembered for WATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Tombstone {
    /// Counter value of the deletion.
    deleted: u64,
    /// The `seq` of the entry that was deleted.
    entry_seq: u64,
}

/// What WATCH saw of a key; checked again when the transaction is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub key: bytes::Bytes,
    /// The entry's `seq` at WATCH time, 0 if the key was physically absent.
    pub entry_seq: u64,
    /// Whether the key was logically present (not expired) at WATCH time.
    pub live: bool,
    /// The keyspace's counter at WATCH time.
    pub seen: u64,
}

/// The keyspace. Every mutation goes through methods that keep the indexes consistent.
#[derive(Debug, Default)]
pub struct KeySpace {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    len: usize,
    /// (expire_at, slot) of every key with an expiry.
    expires: BTreeSet<(u64, u32)>,
    /// Modification counter: bumped by every change to any key.
    seq: u64,
    tombstones: HashMap<Box<[u8]>, Tombstone>,
    tombstone_order: VecDeque<(u64, Box<[u8]>)>,
    /// Deletions at or below this counter may have been forgotten.
    tombstone_horizon: u64,
    /// The encoding thresholds (CONFIG SET), replicated: every replica converts a collection
    /// at the same command.
    pub encodings: Encodings,
    /// CONFIG SET notify-keyspace-events, as Redis's flag bits (see `cmd::notify`): replicated
    /// and kept in snapshots, so every node publishes the same keyspace events.
    pub notify_flags: u32,
    /// CONFIG SET maxmemory, in bytes (0: no limit), replicated and kept in snapshots, so
    /// whichever node leads enforces the same limit (against its own memory, see
    /// `server::memory`). Never read while applying: apply stays the same on every node.
    pub maxmemory: u64,
    /// The script cache (EVAL, SCRIPT LOAD): SHA1 -> body. Replicated and kept in snapshots,
    /// so EVALSHA finds a script on every node, after failovers and restarts.
    pub scripts: std::collections::BTreeMap<String, bytes::Bytes>,
    /// Function libraries (FUNCTION LOAD) by name. Replicated and kept in snapshots (as code:
    /// what a library registers is learnt again by running it, which gives the same answer).
    pub functions: std::collections::BTreeMap<String, crate::cmd::scripting::Library>,
    /// Messages published by the operations applied since the node last took them (see
    /// [`super::Message`]); not part of the state, its image or its digest.
    pub outbox: Vec<super::Message>,
    /// Whether operations record their changes in `changes` (set by the node before applying;
    /// not part of the state: it changes nothing an operation does or answers).
    pub record_changes: bool,
    /// The changes made by the operations applied since the node last took them.
    pub changes: super::ChangeLog,
}

/// Redis's size thresholds for compact encodings, settable with CONFIG SET. They decide when a
/// collection converts, which replicas must agree on, so they change through the log and are
/// part of snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encodings {
    pub hash_max_listpack_entries: u64,
    pub hash_max_listpack_value: u64,
    pub set_max_intset_entries: u64,
    pub zset_max_listpack_entries: u64,
    pub zset_max_listpack_value: u64,
    /// Stored and reported only: Redis 7.0 keeps every list in a quicklist.
    pub list_max_listpack_size: i64,
    /// Stored and reported only (raftis does not compress lists).
    pub list_compress_depth: i64,
}

impl Default for Encodings {
    fn default() -> Self {
        Encodings {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            list_compress_depth: 0,
        }
    }
}

/// The serialized form of a keyspace (snapshots): entries in slot order plus WATCH bookkeeping.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeySpaceImage {
    pub entries: Vec<Entry>,
    pub seq: u64,
    pub tombstones: Vec<(u64, u64, Box<[u8]>)>,
    pub tombstone_horizon: u64,
    pub encodings: Encodings,
    /// Since format 2.
    pub notify_flags: u32,
    /// Since format 3: the script cache's bodies.
    pub scripts: Vec<bytes::Bytes>,
    /// Since format 3: function libraries' code (FUNCTION LOAD).
    pub libraries: Vec<bytes::Bytes>,
    /// Since format 5: CONFIG SET maxmemory.
    pub maxmemory: u64,
}

impl KeySpace {
    /// An empty keyspace.
    pub fn new() -> KeySpace {
        KeySpace::default()
    }

    /// Number of keys physically present (including logically expired ones).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is physically present.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records a change to `key` made by operation `op` (see [`super::Change`]), with what the
    /// key holds now, if changes are being recorded.
    pub fn record_change(&mut self, op: &'static str, key: &[u8]) {
        if !self.record_changes {
            return;
        }
        // Taken out while the entry is read (moving two Vecs, no allocation).
        let mut changes = std::mem::take(&mut self.changes);
        match self.get_raw(key) {
            None => changes.push(op, None, key, None),
            Some(e) => match &e.value {
                Value::Str(v) => changes.push(op, Some(e.value.kind()), key, Some(v)),
                other => changes.push(op, Some(other.kind()), key, None),
            },
        }
        self.changes = changes;
    }

    /// The modification counter.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The slot holding `key`, expired or not.
    pub fn slot_of(&self, key: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(self.hash(key), |&s| slots[s as usize].as_ref().is_some_and(|e| &*e.key == key)).copied()
    }

    /// The entry at `slot`, if occupied.
    pub fn at(&self, slot: u32) -> Option<&Entry> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// Number of slots (occupied or not): SCAN cursors range over `0..slot_count()`.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The entry for `key`, expired or not.
    pub fn get_raw(&self, key: &[u8]) -> Option<&Entry> {
        self.slot_of(key).and_then(|s| self.at(s))
    }

    /// The entry for `key` if it is logically present at `now`.
    pub fn get(&self, key: &[u8], now: u64) -> Option<&Entry> {
        self.get_raw(key).filter(|e| !e.is_expired(now))
    }

    /// The live entry's slot for a write at `now`: an expired entry is deleted first, as Redis's
    /// `expireIfNeeded` does on a write lookup.
    pub fn live_slot(&mut self, key: &[u8], now: u64) -> Option<u32> {
        let slot = self.slot_of(key)?;
        if self.slots[slot as usize].as_ref().is_some_and(|e| e.is_expired(now)) {
            self.remove_slot(slot);
            return None;
        }
        Some(slot)
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Inserts or replaces `key` with `value` and `expire_at` (0: none).
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: u64) -> u32 {
        match self.slot_of(key) {
            Some(slot) => {
                self.update(slot, |e| e.value = value);
                self.set_expire(slot, expire_at);
                slot
            }
            None => {
                let slot = self.insert(key, value, expire_at);
                crate::cmd::notify::notify(self, crate::cmd::notify::NEW, "new", key);
                slot
            }
        }
    }

    fn insert(&mut self, key: &[u8], value: Value, expire_at: u64) -> u32 {
        let seq = self.next_seq();
        let entry = Entry { key: key.into(), value, expire_at, seq };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(entry);
                slot
            }
            None => {
                self.slots.push(Some(entry));
                (self.slots.len() - 1) as u32
            }
        };
        let hash = self.hash(key);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, slot, |&s| {
            hasher.hash_one(&*slots[s as usize].as_ref().expect("indexed slot is occupied").key)
        });
        if expire_at != 0 {
            self.expires.insert((expire_at, slot));
        }
        self.len += 1;
        slot
    }

    /// Changes the entry at `slot` in place and marks it modified.
    pub fn update<R>(&mut self, slot: u32, f: impl FnOnce(&mut Entry) -> R) -> R {
        let seq = self.next_seq();
        let entry = self.slots[slot as usize].as_mut().expect("update of an empty slot");
        entry.seq = seq;
        f(entry)
    }

    /// Changes the entry at `slot` in place; `f` says whether it changed anything, and only then
    /// is the entry marked modified (WATCH, the change count), as Redis does for a write that
    /// leaves the value as it was.
    pub fn update_if_changed<R>(&mut self, slot: u32, f: impl FnOnce(&mut Entry) -> (R, bool)) -> R {
        let entry = self.slots[slot as usize].as_mut().expect("update of an empty slot");
        let (out, changed) = f(entry);
        if changed {
            let seq = self.next_seq();
            self.slots[slot as usize].as_mut().expect("updated slot").seq = seq;
        }
        out
    }

    /// Sets (or with 0 removes) the expiry of the entry at `slot`, marking it modified.
    pub fn set_expire(&mut self, slot: u32, expire_at: u64) {
        let old = self.update(slot, |e| std::mem::replace(&mut e.expire_at, expire_at));
        if old != 0 {
            self.expires.remove(&(old, slot));
        }
        if expire_at != 0 {
            self.expires.insert((expire_at, slot));
        }
    }

    /// Deletes `key` if physically present; returns the entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let slot = self.slot_of(key)?;
        Some(self.remove_slot(slot))
    }

    /// Deletes the entry at `slot` (which must be occupied).
    pub fn remove_slot(&mut self, slot: u32) -> Entry {
        let entry = self.slots[slot as usize].take().expect("remove of an empty slot");
        let hash = self.hash(&entry.key);
        if let Ok(found) = self.index.find_entry(hash, |&s| s == slot) {
            found.remove();
        }
        if entry.expire_at != 0 {
            self.expires.remove(&(entry.expire_at, slot));
        }
        self.free.push(slot);
        self.len -= 1;
        let deleted = self.next_seq();
        self.remember_deletion(&entry.key, deleted, entry.seq);
        entry
    }

    fn remember_deletion(&mut self, key: &[u8], deleted: u64, entry_seq: u64) {
        self.tombstones.insert(key.into(), Tombstone { deleted, entry_seq });
        self.tombstone_order.push_back((deleted, key.into()));
        while self.tombstone_order.len() > TOMBSTONES_KEPT {
            let (seq, key) = self.tombstone_order.pop_front().expect("non-empty");
            if self.tombstones.get(&key).is_some_and(|t| t.deleted == seq) {
                self.tombstones.remove(&key);
            }
            self.tombstone_horizon = seq;
        }
    }

    /// Removes every key. Only entries young enough that a WATCH could have seen them absent
    /// are remembered as deleted (older ones were present for any WATCH that is still valid).
    pub fn clear(&mut self) {
        let horizon = self.tombstone_horizon;
        let young: Vec<(Box<[u8]>, u64)> =
            self.slots.iter().flatten().filter(|e| e.seq > horizon).map(|e| (e.key.clone(), e.seq)).collect();
        self.slots.clear();
        self.free.clear();
        self.index.clear();
        self.expires.clear();
        self.len = 0;
        let deleted = self.next_seq();
        for (key, entry_seq) in young {
            self.remember_deletion(&key, deleted, entry_seq);
        }
    }

    /// What WATCH records for `key` at `now`.
    pub fn watch(&self, key: bytes::Bytes, now: u64) -> Watch {
        let (entry_seq, live) = match self.get_raw(&key) {
            Some(e) => (e.seq, !e.is_expired(now)),
            None => (0, false),
        };
        Watch { key, entry_seq, live, seen: self.seq }
    }

    /// Whether the watched key changed since `w` was taken, judged at `now` (Redis's rules: any
    /// write, a deletion, or the key expiring since WATCH; an already-expired key being reclaimed
    /// is no change).
    pub fn watch_broken(&self, w: &Watch, now: u64) -> bool {
        if let Some(e) = self.get_raw(&w.key) {
            return e.seq != w.entry_seq || (w.live && e.is_expired(now));
        }
        match self.tombstones.get(&*w.key) {
            Some(t) if t.deleted > w.seen => !(w.entry_seq != 0 && !w.live && t.entry_seq == w.entry_seq),
            Some(_) => w.entry_seq != 0,
            None if w.seen < self.tombstone_horizon => true,
            None => w.entry_seq != 0 && w.live,
        }
    }

    /// Keys whose expiry is at or before `now`, oldest first, at most `limit`.
    pub fn expired_keys(&self, now: u64, limit: usize) -> Vec<Box<[u8]>> {
        self.expires
            .range(..=(now, u32::MAX))
            .take(limit)
            .filter_map(|&(_, slot)| self.at(slot).map(|e| e.key.clone()))
            .collect()
    }

    /// Number of keys with an expiry (logically expired ones included).
    pub fn volatile_len(&self) -> usize {
        self.expires.len()
    }

    /// Number of keys logically present at `now`.
    pub fn live_len(&self, now: u64) -> usize {
        self.len - self.expires.range(..=(now, u32::MAX)).count()
    }

    /// Occupied slots from `start` on, in slot order.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = (usize, &Entry)> {
        self.slots.iter().enumerate().skip(start).filter_map(|(i, s)| s.as_ref().map(|e| (i, e)))
    }

    /// Every physically present entry, in slot order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }

    /// The keyspace as a serializable image.
    /// The keyspace serialized exactly as its [`KeySpaceImage`] would be (bincode), written
    /// straight from the live entries: a snapshot holds the state lock only for this (no copy
    /// of a million keys first), and `prefix` (the snapshot's metadata) comes first.
    pub fn serialize_image<P: Serialize>(&self, prefix: &P) -> bincode::Result<Vec<u8>> {
        /// The live entries as a sequence of [`Entry`].
        struct Entries<'a>(&'a KeySpace);
        impl Serialize for Entries<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeSeq;
                let mut seq = s.serialize_seq(Some(self.0.len))?;
                for e in self.0.entries() {
                    seq.serialize_element(e)?;
                }
                seq.end()
            }
        }
        #[derive(Serialize)]
        struct ImageRef<'a> {
            entries: Entries<'a>,
            seq: u64,
            tombstones: Vec<(u64, u64, &'a [u8])>,
            tombstone_horizon: u64,
            encodings: Encodings,
            notify_flags: u32,
            scripts: Vec<&'a bytes::Bytes>,
            libraries: Vec<bytes::Bytes>,
            maxmemory: u64,
        }
        let image = ImageRef {
            entries: Entries(self),
            seq: self.seq,
            tombstones: self.live_tombstones().collect(),
            tombstone_horizon: self.tombstone_horizon,
            encodings: self.encodings,
            notify_flags: self.notify_flags,
            scripts: self.scripts.values().collect(),
            libraries: self.functions.values().map(|l| l.code.clone()).collect(),
            maxmemory: self.maxmemory,
        };
        let size = bincode::serialized_size(prefix)? + bincode::serialized_size(&image)?;
        let mut out = Vec::with_capacity(size as usize);
        bincode::serialize_into(&mut out, prefix)?;
        bincode::serialize_into(&mut out, &image)?;
        Ok(out)
    }

    /// The remembered deletions, oldest first: (deleted, entry seq, key).
    fn live_tombstones(&self) -> impl Iterator<Item = (u64, u64, &[u8])> + '_ {
        self.tombstone_order.iter().filter_map(|(deleted, key)| {
            let t = self.tombstones.get(key)?;
            (t.deleted == *deleted).then_some((t.deleted, t.entry_seq, &key[..]))
        })
    }

    /// A copy of the keyspace, as a snapshot holds it.
    pub fn to_image(&self) -> KeySpaceImage {
        KeySpaceImage {
            entries: self.entries().cloned().collect(),
            seq: self.seq,
            tombstones: self.live_tombstones().map(|(d, s, k)| (d, s, Box::from(k))).collect(),
            tombstone_horizon: self.tombstone_horizon,
            encodings: self.encodings,
            notify_flags: self.notify_flags,
            scripts: self.scripts.values().cloned().collect(),
            libraries: self.functions.values().map(|l| l.code.clone()).collect(),
            maxmemory: self.maxmemory,
        }
    }

    /// Rebuilds a keyspace from an image.
    pub fn from_image(image: KeySpaceImage) -> KeySpace {
        let mut ks = KeySpace::new();
        for e in image.entries {
            let slot = ks.insert(&e.key, e.value, e.expire_at);
            ks.slots[slot as usize].as_mut().expect("just inserted").seq = e.seq;
        }
        for (deleted, entry_seq, key) in image.tombstones {
            ks.tombstones.insert(key.clone(), Tombstone { deleted, entry_seq });
            ks.tombstone_order.push_back((deleted, key));
        }
        ks.seq = image.seq;
        ks.tombstone_horizon = image.tombstone_horizon;
        ks.encodings = image.encodings;
        ks.notify_flags = image.notify_flags;
        ks.maxmemory = image.maxmemory;
        ks.scripts = image.scripts.into_iter().map(|body| (crate::script::sha1_hex(&body), body)).collect();
        for code in image.libraries {
            // A library that loaded before loads again: the VM is the same, and so is the code.
            let limits = crate::script::Limits::default();
            match crate::script::load_library(&code, limits) {
                Ok(info) => {
                    ks.functions.insert(info.name.clone(), crate::cmd::scripting::Library { code, info });
                }
                Err(e) => tracing::error!("a function library in the snapshot does not load: {e}"),
            }
        }
        ks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn serialize_image_writes_what_the_image_would() {
        let mut ks = KeySpace::new();
        for i in 0..50u32 {
            ks.set(
                format!("k{i}").as_bytes(),
                Value::Str(vec![i as u8; i as usize]),
                if i % 3 == 0 { 1000 + i as u64 } else { 0 },
            );
        }
        for i in 0..10u32 {
            let slot = ks.slot_of(format!("k{i}").as_bytes()).unwrap();
            ks.remove_slot(slot);
        }
        let prefix = (7u64, "meta".to_string());
        let expected = bincode::serialize(&(prefix.clone(), ks.to_image())).unwrap();
        assert_eq!(ks.serialize_image(&prefix).unwrap(), expected);
        let (_, image): ((u64, String), KeySpaceImage) = bincode::deserialize(&expected).unwrap();
        let back = KeySpace::from_image(image);
        assert_eq!(back.len(), 40);
        assert_eq!(back.tombstones, ks.tombstones);
    }

    #[test]
    fn set_get_remove() {
        let mut ks = KeySpace::new();
        ks.set(b"a", Value::Str(b"1".to_vec()), 0);
        ks.set(b"b", Value::Str(b"2".to_vec()), 100);
        assert_eq!(ks.get(b"a", 50).unwrap().value, Value::Str(b"1".to_vec()));
        assert!(ks.get(b"b", 100).is_none());
        assert_eq!(ks.live_len(99), 2);
        assert_eq!(ks.live_len(100), 1);
        assert_eq!(ks.expired_keys(100, 10), vec![Box::from(&b"b"[..])]);
        ks.remove(b"a");
        assert!(ks.get_raw(b"a").is_none());
        let slot = ks.set(b"c", Value::Str(vec![]), 0);
        assert_eq!(slot, 0, "freed slots are reused");
    }

    #[test]
    fn watch_rules() {
        let mut ks = KeySpace::new();
        let k = Bytes::from_static(b"k");
        // Absent key: set then deleted again breaks the watch.
        let w = ks.watch(k.clone(), 0);
        assert!(!ks.watch_broken(&w, 0));
        ks.set(b"k", Value::Str(vec![]), 0);
        assert!(ks.watch_broken(&w, 0));
        ks.remove(b"k");
        assert!(ks.watch_broken(&w, 0));
        // A write to another key does not.
        let w = ks.watch(k.clone(), 0);
        ks.set(b"other", Value::Str(vec![]), 0);
        assert!(!ks.watch_broken(&w, 0));
        // A FLUSHALL when the key did not exist does not.
        ks.clear();
        assert!(!ks.watch_broken(&w, 0));
        // Expiry after WATCH does.
        ks.set(b"k", Value::Str(vec![]), 10);
        let w = ks.watch(k.clone(), 5);
        assert!(!ks.watch_broken(&w, 9));
        assert!(ks.watch_broken(&w, 10));
        // An already-expired key being reclaimed does not.
        let w = ks.watch(k.clone(), 20);
        ks.remove(b"k");
        assert!(!ks.watch_broken(&w, 20));
    }

    #[test]
    fn encodings_travel_in_the_image() {
        let mut ks = KeySpace::new();
        ks.encodings.hash_max_listpack_entries = 3;
        let back = KeySpace::from_image(ks.to_image());
        assert_eq!(back.encodings, ks.encodings);
        let bytes = ks.serialize_image(&()).unwrap();
        let ((), image): ((), KeySpaceImage) = bincode::deserialize(&bytes).unwrap();
        assert_eq!(image.encodings.hash_max_listpack_entries, 3);
    }

    #[test]
    fn image_round_trip() {
        let mut ks = KeySpace::new();
        ks.set(b"a", Value::Str(b"1".to_vec()), 0);
        ks.set(b"b", Value::Str(b"2".to_vec()), 7);
        ks.remove(b"a");
        let back = KeySpace::from_image(ks.to_image());
        assert_eq!(back.get_raw(b"b"), ks.get_raw(b"b"));
        assert_eq!(back.seq(), ks.seq());
        assert_eq!(back.tombstones, ks.tombstones);
    }
}
