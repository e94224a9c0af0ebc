//! Format 0: the log and snapshot types of the releases before format versions (up to commit
//! a701ce4), frozen here so that their data directories can still be read, and converted to the
//! current types. Never change these types: their bincode layout is what those releases wrote.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::raft::types::{NodeAddr, NodeId};

openraft::declare_raft_types!(
    /// The type configuration whose log entries format 0 stored.
    pub Config:
        D = Batch,
        R = (),
        NodeId = NodeId,
        Node = NodeAddr,
        Entry = openraft::Entry<Config>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A log entry as format 0 stored it: bincode, no version byte.
pub type Entry = openraft::Entry<Config>;

/// A log entry's payload: the requests proposed together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch(pub Vec<Request>);

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub now: u64,
    pub seed: u64,
    pub body: Body,
}

/// One command, or a whole EXEC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    Op(Op),
    Exec { watches: Vec<Watch>, ops: Vec<Op> },
}

/// What WATCH saw of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub key: Bytes,
    pub entry_seq: u64,
    pub live: bool,
    pub seen: u64,
}

/// A snapshot file (and a snapshot sent to a follower): bincode, no header.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotPayload {
    pub meta: openraft::SnapshotMeta<NodeId, NodeAddr>,
    pub image: KeySpaceImage,
}

/// The keyspace of a snapshot: string values only.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeySpaceImage {
    pub entries: Vec<KeyEntry>,
    pub seq: u64,
    pub tombstones: Vec<(u64, u64, Box<[u8]>)>,
    pub tombstone_horizon: u64,
}

/// One key of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    #[serde(with = "serde_bytes")]
    pub key: Box<[u8]>,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    pub expire_at: u64,
    pub seq: u64,
}

/// SET's NX / XX condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetCond {
    Always,
    IfAbsent,
    IfPresent,
}

/// What a write does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiry {
    /// Drop any expiry (plain SET).
    Clear,
    /// Keep the current expiry (KEEPTTL).
    Keep,
    /// Expire at this Unix time in milliseconds.
    At(u64),
}

/// GETEX's option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GetExExpiry {
    /// No option: a plain read.
    Unchanged,
    Persist,
    /// EX / PX: relative, already made absolute.
    In(u64),
    /// EXAT / PXAT: absolute; a time already past deletes the key.
    At(u64),
    /// An invalid time (zero, negative, overflowing): the error is only reported when the key
    /// exists, as Redis 7.0 does (it looks the key up before validating the time).
    Invalid,
    /// A time that is not an integer: like `Invalid`, reported only when the key exists (a
    /// missing key answers nil). Last, so that older log entries keep their encoding.
    NotInteger,
}

/// EXPIRE's NX / XX / GT / LT condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExpireCond {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

/// LCS's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LcsOptions {
    pub len: bool,
    pub idx: bool,
    pub min_match_len: i64,
    pub with_match_len: bool,
}

/// Which of TTL, PTTL, EXPIRETIME, PEXPIRETIME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtlQuery {
    pub millis: bool,
    pub absolute: bool,
}

/// One keyspace operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    // Reads.
    Get(Bytes),
    MGet(Vec<Bytes>),
    StrLen(Bytes),
    GetRange {
        key: Bytes,
        start: i64,
        end: i64,
    },
    Lcs {
        a: Bytes,
        b: Bytes,
        opts: LcsOptions,
    },
    Exists(Vec<Bytes>),
    Type(Bytes),
    Ttl {
        key: Bytes,
        query: TtlQuery,
    },
    Keys(Bytes),
    Scan {
        cursor: u64,
        pattern: Option<Bytes>,
        count: u64,
        type_name: Option<Bytes>,
    },
    RandomKey,
    Touch(Vec<Bytes>),
    DbSize,
    Digest,
    // Writes.
    Set {
        key: Bytes,
        value: Bytes,
        cond: SetCond,
        expiry: Expiry,
        get: bool,
    },
    SetNx {
        key: Bytes,
        value: Bytes,
    },
    Upd {
        key: Bytes,
        value: Bytes,
    },
    GetDel(Bytes),
    GetEx {
        key: Bytes,
        expiry: GetExExpiry,
    },
    MSet(Vec<(Bytes, Bytes)>),
    MSetNx(Vec<(Bytes, Bytes)>),
    IncrBy {
        key: Bytes,
        by: i64,
    },
    IncrByFloat {
        key: Bytes,
        by: Bytes,
    },
    Append {
        key: Bytes,
        value: Bytes,
    },
    SetRange {
        key: Bytes,
        offset: u64,
        value: Bytes,
    },
    Del(Vec<Bytes>),
    Expire {
        key: Bytes,
        at: i64,
        cond: ExpireCond,
    },
    Persist(Bytes),
    Rename {
        from: Bytes,
        to: Bytes,
        nx: bool,
    },
    Copy {
        from: Bytes,
        to: Bytes,
        replace: bool,
    },
    FlushAll,
    /// Deletes the keys that have expired by the request's time (the leader's expiry cycle).
    DeleteExpired(Vec<Bytes>),
}
