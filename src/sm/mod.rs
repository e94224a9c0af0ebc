//! The deterministic state machine: the keyspace, the values keys hold, and the requests that
//! change them.
//!
//! A [`Request`] is what a node proposes: one operation, or a whole EXEC, stamped with the
//! accepting node's clock and a random seed. [`StateMachine::apply`] is a pure function of the
//! state and the request, so every replica that applies the same sequence ends identical. What
//! each operation does is the command layer's (`crate::cmd`): the state machine only runs it.

mod digest;
mod glob;
mod hash;
mod keyspace;
mod stream;
mod value;

use serde::{Deserialize, Serialize};

pub use digest::{digest, digest_value};
pub use glob::matches as glob_matches;
pub use hash::Hash;
pub use keyspace::{Encodings, Entry, KeySpace, KeySpaceImage, Watch};
pub use stream::{Stream, StreamId, NODE_MAX_ENTRIES};
pub use value::{element_hash, Dict, Kind, List, Score, ShortBytes, Value, WrongType, ZSet};

use crate::cmd::{Ctx, Op};
use crate::resp::Reply;

/// A pub/sub message published by an applied operation (PUBLISH, SPUBLISH). It is not part of
/// the state: the node takes it from [`KeySpace::outbox`] after each entry and hands it to the
/// subscribers connected to it, so every node delivers the same messages in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub channel: bytes::Bytes,
    pub payload: bytes::Bytes,
    /// A shard message (SPUBLISH): for SSUBSCRIBE'd clients only.
    pub shard: bool,
}

/// A change an applied operation made to a key, for the HTTP watch feed (`server::http`): the
/// key, the operation (the keyspace event Redis would publish: `set`, `del`, `lpush`,
/// `expired`...), and what the key holds just after it. Like [`Message`], not part of the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: bytes::Bytes,
    pub op: &'static str,
    /// The key's type after the change (`None`: it no longer exists).
    pub kind: Option<Kind>,
    /// The new value when the key holds a string.
    pub value: Option<bytes::Bytes>,
}

/// One recorded change, its key and value kept in a [`ChangeLog`]'s bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeMeta {
    /// The log index of the entry that made it (0 until the node marks it).
    pub index: u64,
    pub op: &'static str,
    pub kind: Option<Kind>,
    pub key_len: u32,
    /// The value's length when the key holds a string.
    pub value_len: Option<u32>,
}

impl ChangeMeta {
    /// Bytes of key and value.
    pub fn len(&self) -> usize {
        self.key_len as usize + self.value_len.unwrap_or(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Changes recorded while applying (see [`KeySpace::changes`]): their keys and values go into
/// one byte buffer, so recording allocates nothing once the buffers have grown (per-change
/// allocations, freed long after, cost the allocator more than the rest of a SET's apply).
#[derive(Debug, Default)]
pub struct ChangeLog {
    pub metas: Vec<ChangeMeta>,
    /// Each change's key then value, in order.
    pub data: Vec<u8>,
    /// Changes before this one have their index.
    marked: usize,
}

impl ChangeLog {
    pub fn push(&mut self, op: &'static str, kind: Option<Kind>, key: &[u8], value: Option<&[u8]>) {
        self.data.extend_from_slice(key);
        if let Some(v) = value {
            self.data.extend_from_slice(v);
        }
        self.metas.push(ChangeMeta {
            index: 0,
            op,
            kind,
            key_len: key.len() as u32,
            value_len: value.map(|v| v.len() as u32),
        });
    }

    /// Gives the changes recorded since the last mark the log index `index`.
    pub fn mark(&mut self, index: u64) {
        for m in &mut self.metas[self.marked..] {
            m.index = index;
        }
        self.marked = self.metas.len();
    }

    pub fn clear(&mut self) {
        self.metas.clear();
        self.data.clear();
        self.marked = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    /// Each change with its key and value.
    pub fn iter(&self) -> impl Iterator<Item = (&ChangeMeta, &[u8], Option<&[u8]>)> {
        let mut at = 0;
        self.metas.iter().map(move |m| {
            let key = &self.data[at..at + m.key_len as usize];
            at += m.key_len as usize;
            let value = m.value_len.map(|n| {
                let v = &self.data[at..at + n as usize];
                at += n as usize;
                v
            });
            (m, key, value)
        })
    }
}

/// One unit of the replicated log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The accepting node's Unix time in milliseconds: the "now" of every operation inside.
    pub now: u64,
    /// Randomness for the operations inside (RANDOMKEY, SPOP...), chosen by the accepting node.
    pub seed: u64,
    pub body: Body,
}

/// What a request does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// One command.
    Op(Op),
    /// MULTI/EXEC: runs every operation atomically, unless a watched key changed.
    Exec { watches: Vec<Watch>, ops: Vec<Op> },
}

/// The keyspace plus the apply function.
#[derive(Debug, Default)]
pub struct StateMachine {
    pub keyspace: KeySpace,
}

impl StateMachine {
    /// An empty state machine.
    pub fn new() -> StateMachine {
        StateMachine::default()
    }

    /// Applies one request and returns its reply: for EXEC an array of each operation's reply,
    /// or a nil array when a watched key had changed.
    pub fn apply(&mut self, req: &Request) -> Reply {
        let ctx = Ctx { now: req.now, seed: req.seed };
        match &req.body {
            Body::Op(op) => guarded(|| op.apply(&mut self.keyspace, ctx)),
            Body::Exec { watches, ops } => {
                if watches.iter().any(|w| self.keyspace.watch_broken(w, req.now)) {
                    return Reply::NilArray;
                }
                let mut replies = Vec::with_capacity(ops.len());
                for (i, op) in ops.iter().enumerate() {
                    let seed = req.seed.wrapping_add(i as u64);
                    replies.push(guarded(|| op.apply(&mut self.keyspace, Ctx { seed, ..ctx })));
                }
                Reply::Array(replies)
            }
        }
    }

    /// Answers a read-only operation at `ctx.now` without changing anything.
    pub fn query(&self, op: &Op, ctx: Ctx) -> Reply {
        op.query(&self.keyspace, ctx)
    }
}

/// Runs one operation, turning a panic (a bug) into an error reply. Applying is deterministic,
/// so every replica fails the same way at the same entry and they stay identical; the node
/// keeps serving instead of dying with a poisoned lock or crash-looping on replay.
fn guarded(f: impl FnOnce() -> Reply) -> Reply {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("applying an operation panicked; replied with an error");
        Reply::err("ERR internal error while applying the command")
    })
}
