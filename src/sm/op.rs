//! The operations the state machine applies: one per keyspace command, already parsed and
//! validated, with every relative time turned into an absolute one by the node that accepted it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

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

impl Op {
    /// Whether the operation may change the keyspace (and so must go through the log).
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            Op::Get(_)
                | Op::MGet(_)
                | Op::StrLen(_)
                | Op::GetRange { .. }
                | Op::Lcs { .. }
                | Op::Exists(_)
                | Op::Type(_)
                | Op::Ttl { .. }
                | Op::Keys(_)
                | Op::Scan { .. }
                | Op::RandomKey
                | Op::Touch(_)
                | Op::DbSize
                | Op::Digest
                | Op::GetEx { expiry: GetExExpiry::Unchanged, .. }
        )
    }
}
