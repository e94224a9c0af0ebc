//! The generic key commands: existence, type, expiry, renaming and copying, deletion, and the
//! keyspace-wide ones (KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHALL, OBJECT).

use super::notify::{notify, EXPIRED, GENERIC};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::args::{c_str, eq, int, parse_cursor, Rng};
use super::meta::*;
use super::{Ctx, DataCommand, Error, Op, Result};
use crate::data;
use crate::resp::{parse_i64, Reply};
use crate::sm::{glob_matches, KeySpace, Value};

const NONDET: &[&str] = &["@keyspace", "@read", "@slow"];

/// OBJECT's subcommands.
#[rustfmt::skip]
const MEMORY_SUBS: &[DataCommand] = &[
    data!("memory|help", 2, &["loading", "stale"], 0, 0, 0, &["@slow"], "server", "4.0.0", parse::memory_help, "Returns helpful text about the different subcommands"),
    data!("memory|usage", -3, R, 2, 2, 1, &["@read", "@slow"], "server", "4.0.0", parse::memory_usage, "Estimates the memory usage of a key"),
];

const OBJECT_SUBS: &[DataCommand] = &[
    data!(
        "object|encoding",
        3,
        RS,
        2,
        2,
        1,
        NONDET,
        "generic",
        "2.2.3",
        parse::object_encoding,
        "Returns the internal encoding of a Redis object"
    ),
    data!(
        "object|refcount",
        3,
        RS,
        2,
        2,
        1,
        NONDET,
        "generic",
        "2.2.3",
        parse::object_refcount,
        "Returns the reference count of a value of a key"
    ),
    data!(
        "object|help",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@keyspace", "@slow"],
        "generic",
        "6.2.0",
        parse::object_help,
        "Returns helpful text about the different subcommands"
    ),
];

/// The key commands, sorted by name.
#[rustfmt::skip]
pub const COMMANDS: &[DataCommand] = &[
    data!("copy", -3, W, 1, 2, 1, KWS, "generic", "6.2.0", parse::copy, "Copies the value of a key to a new key"),
    data!("dbsize", 1, R, 0, 0, 0, KR, "server", "1.0.0", parse::dbsize, "Returns the number of keys in the database"),
    data!("del", -2, WS, 1, -1, 1, KWS, "generic", "1.0.0", parse::del, "Deletes one or more keys"),
    data!("exists", -2, R, 1, -1, 1, KR, "generic", "1.0.0", parse::exists, "Determines whether one or more keys exist"),
    data!("expire", -3, WD, 1, 1, 1, KW, "generic", "1.0.0", parse::expire, "Sets the expiration time of a key in seconds"),
    data!("expireat", -3, WD, 1, 1, 1, KW, "generic", "1.2.0", parse::expireat, "Sets the expiration time of a key to a Unix timestamp"),
    data!("expiretime", 2, R, 1, 1, 1, KR, "generic", "7.0.0", parse::expiretime, "Returns the expiration time of a key as a Unix timestamp"),
    data!("flushall", -1, WS, 0, 0, 0, KWD, "server", "1.0.0", parse::flushall, "Removes all keys from all databases"),
    data!("flushdb", -1, WS, 0, 0, 0, KWD, "server", "1.0.0", parse::flushdb, "Remove all keys from the current database"),
    data!("keys", 2, RS, 0, 0, 0, KRS, "generic", "1.0.0", parse::keys, "Returns all key names that match a pattern"),
    data!("memory", -2, &[], 0, 0, 0, &["@slow"], "server", "4.0.0", parse::memory, "A container for memory diagnostics commands", MEMORY_SUBS),
    data!("object", -2, &[], 0, 0, 0, &["@slow"], "generic", "2.2.3", parse::object, "A container for object introspection commands", OBJECT_SUBS),
    data!("persist", 2, WD, 1, 1, 1, KW, "generic", "2.2.0", parse::persist, "Removes the expiration time of a key"),
    data!("pexpire", -3, WD, 1, 1, 1, KW, "generic", "2.6.0", parse::pexpire, "Sets the expiration time of a key in milliseconds"),
    data!("pexpireat", -3, WD, 1, 1, 1, KW, "generic", "2.6.0", parse::pexpireat, "Sets the expiration time of a key to a Unix milliseconds timestamp"),
    data!("pexpiretime", 2, R, 1, 1, 1, KR, "generic", "7.0.0", parse::pexpiretime, "Returns the expiration time of a key as a Unix milliseconds timestamp"),
    data!("pttl", 2, R, 1, 1, 1, KR, "generic", "2.6.0", parse::pttl, "Returns the expiration time in milliseconds of a key"),
    data!("randomkey", 1, RS, 0, 0, 0, &["@keyspace", "@read", "@slow"], "generic", "1.0.0", parse::randomkey, "Returns a random key name from the database"),
    data!("rename", 3, WS, 1, 2, 1, KWS, "generic", "1.0.0", parse::rename, "Renames a key and overwrites the destination"),
    data!("renamenx", 3, WD, 1, 2, 1, KW, "generic", "1.0.0", parse::renamenx, "Renames a key only when the target key name doesn't exist"),
    data!("scan", -2, RS, 0, 0, 0, &["@keyspace", "@read", "@slow"], "generic", "2.8.0", parse::scan, "Iterates over the key names in the database"),
    data!("touch", -2, R, 1, -1, 1, KR, "generic", "3.2.1", parse::touch, "Returns the number of existing keys out of those specified after updating the time they were last accessed"),
    data!("ttl", 2, R, 1, 1, 1, KR, "generic", "1.0.0", parse::ttl, "Returns the expiration time in seconds of a key"),
    data!("type", 2, R, 1, 1, 1, KR, "generic", "1.0.0", parse::type_, "Determines the type of value stored at a key"),
    data!("unlink", -2, WD, 1, -1, 1, KW, "generic", "4.0.0", parse::unlink, "Asynchronously deletes one or more keys"),
];

/// EXPIRE's NX / XX / GT / LT condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExpireCond {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
}

/// Which of TTL, PTTL, EXPIRETIME, PEXPIRETIME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtlQuery {
    pub millis: bool,
    pub absolute: bool,
}

/// One key operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyOp {
    // Reads.
    Exists(Vec<Bytes>),
    Touch(Vec<Bytes>),
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
    DbSize,
    ObjectEncoding(Bytes),
    ObjectHelp,
    // Writes.
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
    /// CONFIG SET of encoding thresholds: (canonical parameter name, value), already checked.
    SetEncodings(Vec<(String, i64)>),
    /// The encoding thresholds, as (name, value) pairs under every name CONFIG GET knows.
    GetEncodings,
    /// MEMORY USAGE: an estimate of the bytes a key and its value hold.
    MemoryUsage(Bytes),
    MemoryHelp,
    /// OBJECT REFCOUNT.
    ObjectRefcount(Bytes),
}

/// The encoding parameters CONFIG SET and GET know: canonical name, Redis 7.0's alias, and the
/// range of values (checked before the value reaches the log).
pub const ENCODING_PARAMS: &[(&str, Option<&str>, i64, i64)] = &[
    ("hash-max-listpack-entries", Some("hash-max-ziplist-entries"), 0, i64::MAX),
    ("hash-max-listpack-value", Some("hash-max-ziplist-value"), 0, i64::MAX),
    ("set-max-intset-entries", None, 0, i64::MAX),
    ("zset-max-listpack-entries", Some("zset-max-ziplist-entries"), 0, i64::MAX),
    ("zset-max-listpack-value", Some("zset-max-ziplist-value"), 0, i64::MAX),
    ("list-max-listpack-size", Some("list-max-ziplist-size"), i32::MIN as i64, i32::MAX as i64),
    ("list-compress-depth", None, 0, i32::MAX as i64),
];

fn set_encoding(e: &mut crate::sm::Encodings, name: &str, v: i64) {
    match name {
        "hash-max-listpack-entries" => e.hash_max_listpack_entries = v as u64,
        "hash-max-listpack-value" => e.hash_max_listpack_value = v as u64,
        "set-max-intset-entries" => e.set_max_intset_entries = v as u64,
        "zset-max-listpack-entries" => e.zset_max_listpack_entries = v as u64,
        "zset-max-listpack-value" => e.zset_max_listpack_value = v as u64,
        "list-max-listpack-size" => e.list_max_listpack_size = v,
        "list-compress-depth" => e.list_compress_depth = v,
        _ => {} // names are checked before they reach the log
    }
}

fn encoding_values(e: &crate::sm::Encodings) -> [i64; 7] {
    [
        e.hash_max_listpack_entries as i64,
        e.hash_max_listpack_value as i64,
        e.set_max_intset_entries as i64,
        e.zset_max_listpack_entries as i64,
        e.zset_max_listpack_value as i64,
        e.list_max_listpack_size,
        e.list_compress_depth,
    ]
}

impl KeyOp {
    /// Whether the operation may change the keyspace.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            KeyOp::Del(_)
                | KeyOp::Expire { .. }
                | KeyOp::Persist(_)
                | KeyOp::Rename { .. }
                | KeyOp::Copy { .. }
                | KeyOp::FlushAll
                | KeyOp::DeleteExpired(_)
                | KeyOp::SetEncodings(_)
        )
    }
}

/// The argument parsers, one per command, named after it.
mod parse {
    use super::*;

    fn op(op: KeyOp) -> Result<Op> {
        Ok(Op::Key(op))
    }

    fn ttl_query(args: &[Bytes], millis: bool, absolute: bool) -> Result<Op> {
        op(KeyOp::Ttl { key: args[1].clone(), query: TtlQuery { millis, absolute } })
    }

    pub fn exists(args: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::Exists(args[1..].to_vec()))
    }

    pub fn touch(args: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::Touch(args[1..].to_vec()))
    }

    pub fn type_(args: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::Type(args[1].clone()))
    }

    pub fn ttl(args: &[Bytes], _: u64) -> Result<Op> {
        ttl_query(args, false, false)
    }

    pub fn pttl(args: &[Bytes], _: u64) -> Result<Op> {
        ttl_query(args, true, false)
    }

    pub fn expiretime(args: &[Bytes], _: u64) -> Result<Op> {
        ttl_query(args, false, true)
    }

    pub fn pexpiretime(args: &[Bytes], _: u64) -> Result<Op> {
        ttl_query(args, true, true)
    }

    pub fn keys(args: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::Keys(args[1].clone()))
    }

    pub fn scan(args: &[Bytes], _: u64) -> Result<Op> {
        let cursor = parse_cursor(&args[1]).ok_or(Error::InvalidCursor)?;
        let (mut pattern, mut count, mut type_name) = (None, 10u64, None);
        let mut i = 2;
        while i < args.len() {
            let more = i + 1 < args.len();
            if eq(&args[i], "count") && more {
                let c = int(&args[i + 1])?;
                if c < 1 {
                    return Err(Error::Syntax);
                }
                count = c as u64;
            } else if eq(&args[i], "match") && more {
                pattern = Some(args[i + 1].clone());
            } else if eq(&args[i], "type") && more {
                // Compared with the type's name by strcasecmp: up to the first NUL byte.
                type_name = Some(args[i + 1].slice(..c_str(&args[i + 1]).len()));
            } else {
                return Err(Error::Syntax);
            }
            i += 2;
        }
        op(KeyOp::Scan { cursor, pattern, count, type_name })
    }

    pub fn randomkey(_: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::RandomKey)
    }

    pub fn dbsize(_: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::DbSize)
    }

    pub fn object(args: &[Bytes], _: u64) -> Result<Op> {
        // Only reached without a subcommand (the table resolves `OBJECT <sub>`).
        Err(Error::WrongArity(String::from_utf8_lossy(&args[0]).to_lowercase()))
    }

    pub fn object_encoding(args: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::ObjectEncoding(args[2].clone()))
    }

    pub fn object_refcount(args: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::ObjectRefcount(args[2].clone()))
    }

    pub fn object_help(_: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::ObjectHelp)
    }

    pub fn memory(args: &[Bytes], now: u64) -> Result<Op> {
        object(args, now)
    }

    pub fn memory_help(_: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::MemoryHelp)
    }

    /// MEMORY USAGE key [SAMPLES count]: the count is checked (raftis always counts every
    /// element, as SAMPLES 0 does).
    pub fn memory_usage(args: &[Bytes], _: u64) -> Result<Op> {
        match args.len() {
            3 => {}
            5 if eq(&args[3], "samples") => {
                int(&args[4])?;
            }
            _ => return Err(Error::Syntax),
        }
        op(KeyOp::MemoryUsage(args[2].clone()))
    }

    pub fn del(args: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::Del(args[1..].to_vec()))
    }

    pub fn unlink(args: &[Bytes], now: u64) -> Result<Op> {
        del(args, now)
    }

    pub fn expire(args: &[Bytes], now: u64) -> Result<Op> {
        expire_command("expire", args, now)
    }

    pub fn pexpire(args: &[Bytes], now: u64) -> Result<Op> {
        expire_command("pexpire", args, now)
    }

    pub fn expireat(args: &[Bytes], now: u64) -> Result<Op> {
        expire_command("expireat", args, now)
    }

    pub fn pexpireat(args: &[Bytes], now: u64) -> Result<Op> {
        expire_command("pexpireat", args, now)
    }

    fn expire_command(name: &str, args: &[Bytes], now: u64) -> Result<Op> {
        let mut cond = ExpireCond::default();
        for opt in &args[3..] {
            if eq(opt, "nx") {
                cond.nx = true;
            } else if eq(opt, "xx") {
                cond.xx = true;
            } else if eq(opt, "gt") {
                cond.gt = true;
            } else if eq(opt, "lt") {
                cond.lt = true;
            } else {
                // Redis formats the option with %s: it ends at the first NUL byte.
                return Err(Error::msg(format!("ERR Unsupported option {}", String::from_utf8_lossy(c_str(opt)))));
            }
        }
        if cond.nx && (cond.xx || cond.gt || cond.lt) {
            return Err(Error::msg("ERR NX and XX, GT or LT options at the same time are not compatible"));
        }
        if cond.gt && cond.lt {
            return Err(Error::msg("ERR GT and LT options at the same time are not compatible"));
        }
        let mut when = int(&args[2])?;
        if !name.starts_with('p') {
            if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
                return Err(Error::InvalidExpire(name.into()));
            }
            when *= 1000;
        }
        let base = if name.ends_with("at") { 0 } else { now as i64 };
        if when > i64::MAX - base {
            return Err(Error::InvalidExpire(name.into()));
        }
        op(KeyOp::Expire { key: args[1].clone(), at: when + base, cond })
    }

    pub fn persist(args: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::Persist(args[1].clone()))
    }

    pub fn rename(args: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::Rename { from: args[1].clone(), to: args[2].clone(), nx: false })
    }

    pub fn renamenx(args: &[Bytes], _: u64) -> Result<Op> {
        op(KeyOp::Rename { from: args[1].clone(), to: args[2].clone(), nx: true })
    }

    pub fn copy(args: &[Bytes], _: u64) -> Result<Op> {
        let mut replace = false;
        let mut j = 3;
        while j < args.len() {
            if eq(&args[j], "replace") {
                replace = true;
            } else if eq(&args[j], "db") && j + 1 < args.len() {
                // Redis's getIntFromObjectOrReply: a long long first, then the range of an int.
                let db = int(&args[j + 1])?;
                if !(i32::MIN as i64..=i32::MAX as i64).contains(&db) {
                    return Err(Error::msg(format!(
                        "ERR value is out of range, value must between {} and {}",
                        i32::MIN,
                        i32::MAX
                    )));
                }
                if db != 0 {
                    return Err(Error::msg("ERR DB index is out of range"));
                }
                j += 1;
            } else {
                return Err(Error::Syntax);
            }
            j += 1;
        }
        op(KeyOp::Copy { from: args[1].clone(), to: args[2].clone(), replace })
    }

    pub fn flushall(args: &[Bytes], _: u64) -> Result<Op> {
        match args.len() {
            1 => {}
            2 if eq(&args[1], "sync") || eq(&args[1], "async") => {}
            _ => return Err(Error::Syntax),
        }
        op(KeyOp::FlushAll)
    }

    pub fn flushdb(args: &[Bytes], now: u64) -> Result<Op> {
        flushall(args, now)
    }
}

/// Applies a key operation (reads included, as inside EXEC).
pub fn apply(ks: &mut KeySpace, op: &KeyOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        KeyOp::Del(keys) => {
            let mut n = 0;
            for k in keys {
                if ks.live_slot(k, now).is_some() {
                    ks.remove(k);
                    notify(ks, GENERIC, "del", k);
                    n += 1;
                }
            }
            Reply::Int(n)
        }
        KeyOp::Expire { key, at, cond } => expire(ks, key, *at, *cond, now),
        KeyOp::Persist(key) => match ks.live_slot(key, now) {
            Some(slot) if ks.at(slot).is_some_and(|e| e.expire_at != 0) => {
                ks.set_expire(slot, 0);
                notify(ks, GENERIC, "persist", key);
                Reply::Int(1)
            }
            _ => Reply::Int(0),
        },
        KeyOp::Rename { from, to, nx } => rename(ks, from, to, *nx, now)?,
        KeyOp::Copy { from, to, replace } => {
            if from == to {
                return Err(Error::msg("ERR source and destination objects are the same"));
            }
            let Some(src) = ks.get(from, now).cloned() else {
                return Ok(Reply::Int(0));
            };
            if ks.live_slot(to, now).is_some() && !replace {
                return Ok(Reply::Int(0));
            }
            ks.remove(to);
            ks.set(to, src.value, src.expire_at);
            notify(ks, GENERIC, "copy_to", to);
            Reply::Int(1)
        }
        KeyOp::FlushAll => {
            ks.clear();
            // Not a keyspace event in Redis; the watch feed says every key went.
            ks.record_change("flushall", b"");
            Reply::Ok
        }
        KeyOp::SetEncodings(params) => {
            for (name, v) in params {
                if name == "notify-keyspace-events" {
                    ks.notify_flags = *v as u32;
                } else if name == "maxmemory" {
                    ks.maxmemory = *v as u64;
                } else {
                    set_encoding(&mut ks.encodings, name, *v);
                }
            }
            Reply::Ok
        }
        KeyOp::DeleteExpired(keys) => {
            let mut n = 0;
            for k in keys {
                if ks.get_raw(k).is_some_and(|e| e.is_expired(now)) {
                    ks.remove(k);
                    notify(ks, EXPIRED, "expired", k);
                    n += 1;
                }
            }
            Reply::Int(n)
        }
        read => query(ks, read, ctx)?,
    })
}

/// Answers a read-only key operation.
pub fn query(ks: &KeySpace, op: &KeyOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        KeyOp::Exists(keys) | KeyOp::Touch(keys) => {
            Reply::Int(keys.iter().filter(|k| ks.get(k, now).is_some()).count() as i64)
        }
        KeyOp::Type(key) => Reply::status(ks.get(key, now).map_or("none", |e| e.value.kind().name())),
        KeyOp::Ttl { key, query } => ttl(ks, key, *query, now),
        KeyOp::MemoryUsage(key) => match ks.get(key, now) {
            None => Reply::Nil,
            Some(e) => {
                Reply::Int((std::mem::size_of::<crate::sm::Entry>() + e.key.len() + e.value.heap_bytes()) as i64)
            }
        },
        KeyOp::MemoryHelp => Reply::Array(
            [
                "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
                "HELP",
                "    Prints this help.",
            ]
            .into_iter()
            .map(Reply::status)
            .collect(),
        ),
        KeyOp::GetEncodings => {
            let values = encoding_values(&ks.encodings);
            let mut out = Vec::new();
            for ((name, alias, ..), v) in ENCODING_PARAMS.iter().zip(values) {
                for n in std::iter::once(name).chain(alias) {
                    out.push(Reply::bulk(n));
                    out.push(Reply::bulk(v.to_string()));
                }
            }
            out.push(Reply::bulk("notify-keyspace-events"));
            out.push(Reply::bulk(crate::cmd::notify::format_flags(ks.notify_flags)));
            out.push(Reply::bulk("maxmemory"));
            out.push(Reply::bulk(ks.maxmemory.to_string()));
            Reply::Array(out)
        }
        KeyOp::Keys(pattern) => {
            let all = &pattern[..] == b"*";
            Reply::Array(
                ks.entries()
                    .filter(|e| !e.is_expired(now) && (all || glob_matches(pattern, &e.key)))
                    .map(|e| Reply::bulk(&e.key))
                    .collect(),
            )
        }
        KeyOp::Scan { cursor, pattern, count, type_name } => {
            scan(ks, *cursor, pattern.as_deref(), *count, type_name.as_deref(), now)
        }
        KeyOp::RandomKey => random_key(ks, ctx),
        KeyOp::DbSize => Reply::Int(ks.live_len(now) as i64),
        KeyOp::ObjectEncoding(key) => match ks.get(key, now) {
            Some(e) => Reply::bulk(e.value.encoding()),
            None => Reply::Nil,
        },
        // Values are never shared between keys, except that Redis shares the integers 0 to
        // 9999 it stores as strings (and reports them with the largest count).
        KeyOp::ObjectRefcount(key) => match ks.get(key, now) {
            Some(e) => match &e.value {
                Value::Str(s)
                    if e.value.encoding() == "int" && parse_i64(s).is_some_and(|n| (0..10_000).contains(&n)) =>
                {
                    Reply::Int(i32::MAX as i64)
                }
                _ => Reply::Int(1),
            },
            None => Reply::Nil,
        },
        KeyOp::ObjectHelp => Reply::Array(
            [
                "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|l| Reply::status(*l))
            .collect(),
        ),
        write => unreachable!("query of a write operation {write:?}"),
    })
}

fn expire(ks: &mut KeySpace, key: &Bytes, at: i64, cond: ExpireCond, now: u64) -> Reply {
    let Some(slot) = ks.live_slot(key, now) else {
        return Reply::Int(0);
    };
    let current = ks.at(slot).map_or(0, |e| e.expire_at);
    let current = if current == 0 { -1 } else { current as i64 };
    let refused = (cond.nx && current != -1)
        || (cond.xx && current == -1)
        || (cond.gt && (at <= current || current == -1))
        || (cond.lt && current != -1 && at >= current);
    if refused {
        return Reply::Int(0);
    }
    if at <= now as i64 {
        ks.remove_slot(slot);
        notify(ks, GENERIC, "del", key);
    } else {
        ks.set_expire(slot, at as u64);
        notify(ks, GENERIC, "expire", key);
    }
    Reply::Int(1)
}

fn rename(ks: &mut KeySpace, from: &Bytes, to: &Bytes, nx: bool, now: u64) -> Result {
    let Some(slot) = ks.live_slot(from, now) else {
        return Err(Error::NoSuchKey);
    };
    if from == to {
        return Ok(if nx { Reply::Int(0) } else { Reply::Ok });
    }
    if ks.live_slot(to, now).is_some() {
        if nx {
            return Ok(Reply::Int(0));
        }
        ks.remove(to);
    }
    let entry = ks.remove_slot(slot);
    ks.set(to, entry.value, entry.expire_at);
    notify(ks, GENERIC, "rename_from", from);
    notify(ks, GENERIC, "rename_to", to);
    Ok(if nx { Reply::Int(1) } else { Reply::Ok })
}

fn ttl(ks: &KeySpace, key: &[u8], q: TtlQuery, now: u64) -> Reply {
    let Some(e) = ks.get(key, now) else {
        return Reply::Int(-2);
    };
    if e.expire_at == 0 {
        return Reply::Int(-1);
    }
    let ms = if q.absolute { e.expire_at as i64 } else { (e.expire_at as i64 - now as i64).max(0) };
    Reply::Int(if q.millis { ms } else { (ms + 500) / 1000 })
}

fn scan(ks: &KeySpace, cursor: u64, pattern: Option<&[u8]>, count: u64, type_name: Option<&[u8]>, now: u64) -> Reply {
    let start = usize::try_from(cursor).unwrap_or(usize::MAX);
    let mut keys = Vec::new();
    let mut next = 0u64;
    for (visited, (slot, e)) in ks.iter_from(start).enumerate() {
        if visited as u64 == count {
            next = slot as u64;
            break;
        }
        let wanted = !e.is_expired(now)
            && pattern.is_none_or(|p| p == b"*" || glob_matches(p, &e.key))
            && type_name.is_none_or(|t| t.eq_ignore_ascii_case(e.value.kind().name().as_bytes()));
        if wanted {
            keys.push(Reply::bulk(&e.key));
        }
    }
    Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(keys)])
}

fn random_key(ks: &KeySpace, ctx: Ctx) -> Reply {
    if ks.live_len(ctx.now) == 0 {
        return Reply::Nil;
    }
    let slots = ks.slot_count();
    let mut rng = Rng::new(ctx.seed);
    for _ in 0..64 {
        if let Some(e) = ks.at(rng.below(slots) as u32).filter(|e| !e.is_expired(ctx.now)) {
            return Reply::bulk(&e.key);
        }
    }
    // Sparse slab: walk from a random point instead.
    let start = rng.below(slots);
    ks.iter_from(start)
        .chain(ks.iter_from(0))
        .find(|(_, e)| !e.is_expired(ctx.now))
        .map_or(Reply::Nil, |(_, e)| Reply::bulk(&e.key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sm::Value;

    fn p(line: &str) -> Result<Op> {
        let args: Vec<Bytes> = line.split(' ').map(|s| Bytes::from(s.replace("\\0", "\0"))).collect();
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        let command = COMMANDS.iter().find(|c| c.meta.name == name).expect("a key command");
        (command.parse)(&args, 1_000_000)
    }

    #[test]
    fn expire_arithmetic() {
        assert_eq!(
            p("expire k 10"),
            Ok(Op::Key(KeyOp::Expire { key: Bytes::from_static(b"k"), at: 1_010_000, cond: ExpireCond::default() }))
        );
        assert_eq!(p("expire k 9223372036854775807"), Err(Error::InvalidExpire("expire".into())));
        assert!(p("expire k 10 NX XX").is_err());
        assert_eq!(p("expire k 10 foo"), Err(Error::msg("ERR Unsupported option foo")));
        assert_eq!(p("expire k 10 a\\0b"), Err(Error::msg("ERR Unsupported option a")));
        assert_eq!(p("expire k 10 gt\\0x"), p("expire k 10 gt"));
    }

    #[test]
    fn errors_quoting_or_ranging_arguments() {
        assert_eq!(
            p("copy a b DB 2147483648"),
            Err(Error::msg("ERR value is out of range, value must between -2147483648 and 2147483647"))
        );
        assert_eq!(p("copy a b DB abc"), Err(Error::NotInteger));
        assert_eq!(p("copy a b DB 1"), Err(Error::msg("ERR DB index is out of range")));
        assert!(matches!(p("copy a b replace\\0"), Ok(Op::Key(KeyOp::Copy { replace: true, .. }))));
        let Ok(Op::Key(KeyOp::Scan { type_name, .. })) = p("scan 0 type\\0 string\\0x") else { panic!() };
        assert_eq!(type_name.as_deref(), Some(&b"string"[..]));
    }

    #[test]
    fn expired_keys_are_hidden_then_deleted_by_request() {
        let mut ks = KeySpace::new();
        ks.set(b"k", Value::Str(b"v".to_vec()), 1500);
        let late = Ctx { now: 2000, seed: 0 };
        assert_eq!(Op::Key(KeyOp::Exists(vec!["k".into()])).query(&ks, late), Reply::Int(0));
        assert_eq!(ks.len(), 1, "a read never deletes");
        assert_eq!(Op::Key(KeyOp::DeleteExpired(vec!["k".into()])).apply(&mut ks, late), Reply::Int(1));
        assert_eq!(ks.len(), 0);
    }

    #[test]
    fn type_rename_and_copy_keep_the_value_type() {
        let mut ks = KeySpace::new();
        let ctx = Ctx { now: 1000, seed: 0 };
        let mut set = crate::sm::Dict::new();
        set.insert(b"1", ());
        ks.set(b"s", Value::Set(Box::new(set)), 5000);
        assert_eq!(Op::Key(KeyOp::Type("s".into())).query(&ks, ctx), Reply::status("set"));
        let copy = Op::Key(KeyOp::Copy { from: "s".into(), to: "t".into(), replace: false });
        assert_eq!(copy.apply(&mut ks, ctx), Reply::Int(1));
        let rename = Op::Key(KeyOp::Rename { from: "t".into(), to: "u".into(), nx: false });
        assert_eq!(rename.apply(&mut ks, ctx), Reply::Ok);
        assert_eq!(ks.get(b"u", 1000).map(|e| (e.value.kind(), e.expire_at)), Some((crate::sm::Kind::Set, 5000)));
        let scan = Op::Key(KeyOp::Scan { cursor: 0, pattern: None, count: 10, type_name: Some("set".into()) });
        let Reply::Array(parts) = scan.query(&ks, ctx) else { panic!() };
        assert_eq!(parts[1], Reply::Array(vec![Reply::bulk("s"), Reply::bulk("u")]));
        assert_eq!(Op::Key(KeyOp::ObjectEncoding("s".into())).query(&ks, ctx), Reply::bulk("intset"));
    }
}
