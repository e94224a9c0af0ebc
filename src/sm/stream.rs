//! A stream: entries of field/value pairs ordered by their ID (`<ms>-<seq>`), and the last ID
//! ever given out, which new entries must exceed even after every entry was deleted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A stream entry's ID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    /// The next ID, if any.
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { seq, ..self }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The previous ID, if any.
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { seq, ..self }),
            None => self.ms.checked_sub(1).map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A stream's entries (fields and values alternate), its last ID, and how Redis would group
/// the entries into listpack nodes (which approximate trimming removes whole).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    pub entries: BTreeMap<StreamId, Vec<serde_bytes::ByteBuf>>,
    pub last_id: StreamId,
    /// The nodes in ID order: each one's first ID (it holds the entries up to the next node's
    /// first ID), live entries, entries ever added, and estimated bytes.
    pub nodes: std::collections::VecDeque<Node>,
}

/// One listpack node, as Redis would have filled it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub first: StreamId,
    pub live: u32,
    pub added: u32,
    pub bytes: u32,
}

/// Redis's `stream-node-max-entries` and `stream-node-max-bytes` defaults.
pub const NODE_MAX_ENTRIES: u32 = 100;
pub const NODE_MAX_BYTES: u32 = 4096;

impl Stream {
    /// Appends an entry (its ID above every other), opening a node as Redis would.
    pub fn append(&mut self, id: StreamId, fields: Vec<serde_bytes::ByteBuf>) {
        // A rough listpack size: the elements and a few bytes of header each.
        let size: u32 = fields.iter().map(|f| f.len() as u32 + 2).sum::<u32>() + 8;
        let open = match self.nodes.back() {
            None => true,
            Some(n) => n.bytes + size >= NODE_MAX_BYTES || n.added >= NODE_MAX_ENTRIES,
        };
        if open {
            self.nodes.push_back(Node { first: id, live: 0, added: 0, bytes: 16 });
        }
        let node = self.nodes.back_mut().expect("a node");
        node.live += 1;
        node.added += 1;
        node.bytes += size;
        self.entries.insert(id, fields);
        self.last_id = id;
    }

    /// Deletes one entry; whether it was there.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if self.entries.remove(&id).is_none() {
            return false;
        }
        let at = self.nodes.partition_point(|n| n.first <= id).saturating_sub(1);
        if let Some(node) = self.nodes.get_mut(at) {
            node.live = node.live.saturating_sub(1);
            if node.live == 0 {
                self.nodes.remove(at);
            }
        }
        true
    }

    /// Removes the first node and its entries; how many entries that was.
    pub fn pop_node(&mut self) -> usize {
        let Some(node) = self.nodes.pop_front() else { return 0 };
        let end = self.nodes.front().map(|n| n.first);
        let ids: Vec<StreamId> = match end {
            Some(end) => self.entries.range(..end).map(|(id, _)| *id).collect(),
            None => self.entries.keys().copied().collect(),
        };
        for id in &ids {
            self.entries.remove(id);
        }
        debug_assert_eq!(ids.len(), node.live as usize);
        ids.len()
    }

    /// The last ID of the first node.
    pub fn first_node_last_id(&self) -> Option<StreamId> {
        match self.nodes.get(1) {
            Some(next) => self.entries.range(..next.first).next_back().map(|(id, _)| *id),
            None => self.entries.keys().next_back().copied(),
        }
    }
}

impl Stream {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry (an empty stream still exists: Redis keeps it).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
