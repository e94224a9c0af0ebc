//! The hash commands: HSET and its variants, field reads, counters, HRANDFIELD and HSCAN, with
//! Redis 7.0's replies, errors and encodings (a hash is a `listpack` until it holds more than 512
//! fields or a field or value longer than 64 bytes, then a `hashtable` for good).

use super::notify::{notify, GENERIC, HASH};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::args::{eq, int, parse_cursor, scan_args, Rng};
use super::meta::*;
use super::strings::{is_long_double, long_double_add};
use super::{Ctx, DataCommand, Error, Op, Result};
use crate::data;
use crate::resp::Reply;
use crate::sm::{glob_matches, Entry, KeySpace, Value};

// ACL categories of the hash commands.
const HW: &[&str] = &["@write", "@hash", "@fast"];
const HR: &[&str] = &["@read", "@hash", "@fast"];
const HRS: &[&str] = &["@read", "@hash", "@slow"];

/// The hash commands, sorted by name.
#[rustfmt::skip]
pub const COMMANDS: &[DataCommand] = &[
    data!("hdel", -3, WD, 1, 1, 1, HW, "hash", "2.0.0", parse::hdel, "Delete one or more hash fields"),
    data!("hexists", 3, R, 1, 1, 1, HR, "hash", "2.0.0", parse::hexists, "Determine if a hash field exists"),
    data!("hget", 3, R, 1, 1, 1, HR, "hash", "2.0.0", parse::hget, "Get the value of a hash field"),
    data!("hgetall", 2, RS, 1, 1, 1, HRS, "hash", "2.0.0", parse::hgetall, "Get all the fields and values in a hash"),
    data!("hincrby", 4, WF, 1, 1, 1, HW, "hash", "2.0.0", parse::hincrby, "Increment the integer value of a hash field by the given number"),
    data!("hincrbyfloat", 4, WF, 1, 1, 1, HW, "hash", "2.6.0", parse::hincrbyfloat, "Increment the float value of a hash field by the given amount"),
    data!("hkeys", 2, RS, 1, 1, 1, HRS, "hash", "2.0.0", parse::hkeys, "Get all the fields in a hash"),
    data!("hlen", 2, R, 1, 1, 1, HR, "hash", "2.0.0", parse::hlen, "Get the number of fields in a hash"),
    data!("hmget", -3, R, 1, 1, 1, HR, "hash", "2.0.0", parse::hmget, "Get the values of all the given hash fields"),
    data!("hmset", -4, WF, 1, 1, 1, HW, "hash", "2.0.0", parse::hmset, "Set multiple hash fields to multiple values"),
    data!("hrandfield", -2, RS, 1, 1, 1, HRS, "hash", "6.2.0", parse::hrandfield, "Get one or multiple random fields from a hash"),
    data!("hscan", -3, RS, 1, 1, 1, HRS, "hash", "2.8.0", parse::hscan, "Incrementally iterate hash fields and associated values"),
    data!("hset", -4, WF, 1, 1, 1, HW, "hash", "2.0.0", parse::hset, "Set the string value of a hash field"),
    data!("hsetnx", 4, WF, 1, 1, 1, HW, "hash", "2.0.0", parse::hsetnx, "Set the value of a hash field, only if the field does not exist"),
    data!("hstrlen", 3, R, 1, 1, 1, HR, "hash", "3.2.0", parse::hstrlen, "Get the length of the value of a hash field"),
    data!("hvals", 2, RS, 1, 1, 1, HRS, "hash", "2.0.0", parse::hvals, "Get all the values in a hash"),
];

/// One hash operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HashOp {
    // Reads.
    Get {
        key: Bytes,
        field: Bytes,
    },
    MGet {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    Len(Bytes),
    StrLen {
        key: Bytes,
        field: Bytes,
    },
    Exists {
        key: Bytes,
        field: Bytes,
    },
    Keys(Bytes),
    Vals(Bytes),
    GetAll(Bytes),
    /// HRANDFIELD: without a count one field (or nil), with one an array.
    RandField {
        key: Bytes,
        count: Option<i64>,
        with_values: bool,
    },
    /// HSCAN: `args` are the arguments from the cursor on (already a valid cursor). The options
    /// are read only once the key is found to be a hash, as Redis does (`HSCAN missing 0 COUNT
    /// 0` is an empty scan, `HSCAN string 0 FOO` is WRONGTYPE).
    Scan {
        key: Bytes,
        args: Vec<Bytes>,
    },
    // Writes.
    /// HSET, or HMSET when `ok` (which answers +OK instead of the number of new fields).
    Set {
        key: Bytes,
        pairs: Vec<(Bytes, Bytes)>,
        ok: bool,
    },
    SetNx {
        key: Bytes,
        field: Bytes,
        value: Bytes,
    },
    Del {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    IncrBy {
        key: Bytes,
        field: Bytes,
        by: i64,
    },
    /// HINCRBYFLOAT; `by` is a finite long double as Redis's `string2ld` reads it.
    IncrByFloat {
        key: Bytes,
        field: Bytes,
        by: Bytes,
    },
}

impl HashOp {
    /// Whether the operation may change the keyspace.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            HashOp::Set { .. }
                | HashOp::SetNx { .. }
                | HashOp::Del { .. }
                | HashOp::IncrBy { .. }
                | HashOp::IncrByFloat { .. }
        )
    }
}

/// The argument parsers, one per command, named after it.
mod parse {
    use super::*;

    fn op(op: HashOp) -> Result<Op> {
        Ok(Op::Hash(op))
    }

    fn a(args: &[Bytes], i: usize) -> Bytes {
        args[i].clone()
    }

    fn pairs(name: &str, args: &[Bytes]) -> Result<Vec<(Bytes, Bytes)>> {
        if !args.len().is_multiple_of(2) {
            return Err(Error::WrongArity(name.into()));
        }
        Ok(args[2..].chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect())
    }

    pub fn hset(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::Set { key: a(args, 1), pairs: pairs("hset", args)?, ok: false })
    }

    pub fn hmset(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::Set { key: a(args, 1), pairs: pairs("hmset", args)?, ok: true })
    }

    pub fn hsetnx(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::SetNx { key: a(args, 1), field: a(args, 2), value: a(args, 3) })
    }

    pub fn hget(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::Get { key: a(args, 1), field: a(args, 2) })
    }

    pub fn hmget(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::MGet { key: a(args, 1), fields: args[2..].to_vec() })
    }

    pub fn hdel(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::Del { key: a(args, 1), fields: args[2..].to_vec() })
    }

    pub fn hlen(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::Len(a(args, 1)))
    }

    pub fn hstrlen(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::StrLen { key: a(args, 1), field: a(args, 2) })
    }

    pub fn hexists(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::Exists { key: a(args, 1), field: a(args, 2) })
    }

    pub fn hkeys(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::Keys(a(args, 1)))
    }

    pub fn hvals(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::Vals(a(args, 1)))
    }

    pub fn hgetall(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::GetAll(a(args, 1)))
    }

    /// The increment is read before the key is looked up, as in Redis.
    pub fn hincrby(args: &[Bytes], _: u64) -> Result<Op> {
        op(HashOp::IncrBy { key: a(args, 1), field: a(args, 2), by: int(&args[3])? })
    }

    /// `string2ld` first ("nan" is not a float), then the increment alone must be finite:
    /// `0 + by` in long double is infinite exactly when `by` is (1e400 is a finite long double).
    pub fn hincrbyfloat(args: &[Bytes], _: u64) -> Result<Op> {
        let by = &args[3];
        if !is_long_double(by) {
            return Err(Error::NotFloat);
        }
        if long_double_add(None, by).is_err() {
            return Err(Error::msg("ERR value is NaN or Infinity"));
        }
        op(HashOp::IncrByFloat { key: a(args, 1), field: a(args, 2), by: by.clone() })
    }

    /// Redis's `hrandfieldWithCountCommand` checks the count (a long in `-LONG_MAX..=LONG_MAX`,
    /// half that with WITHVALUES) and the syntax before it looks the key up.
    pub fn hrandfield(args: &[Bytes], _: u64) -> Result<Op> {
        let key = a(args, 1);
        if args.len() == 2 {
            return op(HashOp::RandField { key, count: None, with_values: false });
        }
        let count = int(&args[2])?;
        if count == i64::MIN {
            return Err(Error::msg(format!(
                "ERR value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            )));
        }
        let with_values = match args.len() {
            3 => false,
            4 if eq(&args[3], "withvalues") => true,
            _ => return Err(Error::Syntax),
        };
        if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
            return Err(Error::msg("ERR value is out of range"));
        }
        op(HashOp::RandField { key, count: Some(count), with_values })
    }

    /// The cursor is checked before the key lookup; the options after it (see [`HashOp::Scan`]).
    pub fn hscan(args: &[Bytes], _: u64) -> Result<Op> {
        parse_cursor(&args[2]).ok_or(Error::InvalidCursor)?;
        op(HashOp::Scan { key: a(args, 1), args: args[2..].to_vec() })
    }
}

/// A hash's fields.
use crate::sm::Hash;

/// The entry's hash, or WRONGTYPE.
fn hash_of(e: &Entry) -> Result<&Hash> {
    match &e.value {
        Value::Hash(h) => Ok(h),
        _ => Err(Error::WrongType),
    }
}

/// The entry's hash, mutably (its type already checked).
fn hash_mut(e: &mut Entry) -> &mut Hash {
    match &mut e.value {
        Value::Hash(h) => h,
        _ => unreachable!("the type was checked before the update"),
    }
}

/// The hash at `key` for a read at `now`: `None` when the key is missing, WRONGTYPE when it
/// holds another type.
fn read<'a>(ks: &'a KeySpace, key: &[u8], now: u64) -> Result<Option<&'a Hash>> {
    ks.get(key, now).map(hash_of).transpose()
}

/// The live slot of the hash at `key` for a write at `now` (an expired key is deleted first):
/// `None` when the key is missing, WRONGTYPE when it holds another type.
fn write_slot(ks: &mut KeySpace, key: &[u8], now: u64) -> Result<Option<u32>> {
    let slot = ks.live_slot(key, now);
    if let Some(slot) = slot {
        hash_of(ks.at(slot).expect("live slot"))?;
    }
    Ok(slot)
}

/// The hash at `slot` (a live slot holding a hash).
fn at(ks: &KeySpace, slot: u32) -> &Hash {
    hash_of(ks.at(slot).expect("live slot")).expect("checked a hash")
}

/// Changes the hash at `slot` (marking the key modified, its expiry kept), or creates the key
/// with a new hash when there is no slot.
fn modify<R>(ks: &mut KeySpace, key: &[u8], slot: Option<u32>, f: impl FnOnce(&mut Hash) -> R) -> R {
    match slot {
        Some(slot) => ks.update(slot, |e| f(hash_mut(e))),
        None => {
            let mut h = Hash::new();
            let r = f(&mut h);
            ks.set(key, Value::Hash(h), 0);
            r
        }
    }
}

/// Sets a field as Redis's `hashTypeSet` does, converting a listpack to a hashtable when the
/// field or the value is too long or there are too many fields; whether the field is new.
pub(super) fn put(h: &mut Hash, field: &[u8], value: &[u8]) -> bool {
    let limits = super::encodings();
    let max_value = limits.hash_max_listpack_value as usize;
    if field.len() > max_value || value.len() > max_value {
        h.make_big();
    }
    let new = h.insert(field, value);
    if !h.is_big() && h.len() as u64 > limits.hash_max_listpack_entries {
        h.make_big();
    }
    new
}

/// Applies a hash operation (reads included, as inside EXEC).
pub fn apply(ks: &mut KeySpace, op: &HashOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    match op {
        HashOp::Set { key, pairs, ok } => {
            let slot = write_slot(ks, key, now)?;
            let added = modify(ks, key, slot, |h| pairs.iter().filter(|(f, v)| put(h, f, v)).count());
            notify(ks, HASH, "hset", key);
            Ok(if *ok { Reply::Ok } else { Reply::Int(added as i64) })
        }
        HashOp::SetNx { key, field, value } => {
            let slot = write_slot(ks, key, now)?;
            if slot.is_some_and(|s| at(ks, s).contains(field)) {
                return Ok(Reply::Int(0));
            }
            modify(ks, key, slot, |h| put(h, field, value));
            notify(ks, HASH, "hset", key);
            Ok(Reply::Int(1))
        }
        HashOp::Del { key, fields } => {
            let Some(slot) = write_slot(ks, key, now)? else {
                return Ok(Reply::Int(0));
            };
            if !fields.iter().any(|f| at(ks, slot).contains(f)) {
                return Ok(Reply::Int(0));
            }
            let (removed, empty) = ks.update(slot, |e| {
                let h = hash_mut(e);
                let removed = fields.iter().filter(|f| h.remove(f)).count();
                (removed, h.is_empty())
            });
            if empty {
                ks.remove_slot(slot);
            }
            notify(ks, HASH, "hdel", key);
            if empty {
                notify(ks, GENERIC, "del", key);
            }
            Ok(Reply::Int(removed as i64))
        }
        HashOp::IncrBy { key, field, by } => {
            let slot = write_slot(ks, key, now)?;
            let current = match slot.and_then(|s| at(ks, s).get(field)) {
                Some(v) => crate::resp::parse_i64(v).ok_or_else(|| Error::msg("ERR hash value is not an integer"))?,
                None => 0,
            };
            let next = current.checked_add(*by).ok_or(Error::Overflow)?;
            modify(ks, key, slot, |h| put(h, field, next.to_string().as_bytes()));
            notify(ks, HASH, "hincrby", key);
            Ok(Reply::Int(next))
        }
        HashOp::IncrByFloat { key, field, by } => {
            let slot = write_slot(ks, key, now)?;
            let current = slot.and_then(|s| at(ks, s).get(field));
            let next = match long_double_add(current, by) {
                Ok(next) => next,
                Err(-1) => return Err(Error::msg("ERR hash value is not a float")),
                Err(-2) => return Err(Error::NotFloat),
                Err(_) => return Err(Error::msg("ERR increment would produce NaN or Infinity")),
            };
            let reply = Reply::bulk(&next);
            modify(ks, key, slot, |h| put(h, field, &next));
            notify(ks, HASH, "hincrbyfloat", key);
            Ok(reply)
        }
        read => query(ks, read, ctx),
    }
}

/// Answers a read-only hash operation.
pub fn query(ks: &KeySpace, op: &HashOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        HashOp::Get { key, field } => match read(ks, key, now)?.and_then(|h| h.get(field)) {
            Some(v) => Reply::bulk(v),
            None => Reply::Nil,
        },
        HashOp::MGet { key, fields } => {
            let h = read(ks, key, now)?;
            Reply::Array(fields.iter().map(|f| h.and_then(|h| h.get(f)).map_or(Reply::Nil, Reply::bulk)).collect())
        }
        HashOp::Len(key) => Reply::Int(read(ks, key, now)?.map_or(0, |h| h.len()) as i64),
        HashOp::StrLen { key, field } => {
            Reply::Int(read(ks, key, now)?.and_then(|h| h.get(field)).map_or(0, |v| v.len()) as i64)
        }
        HashOp::Exists { key, field } => Reply::Int(read(ks, key, now)?.is_some_and(|h| h.contains(field)) as i64),
        HashOp::Keys(key) => {
            Reply::Array(read(ks, key, now)?.into_iter().flat_map(|h| h.iter()).map(|(f, _)| Reply::bulk(f)).collect())
        }
        HashOp::Vals(key) => {
            Reply::Array(read(ks, key, now)?.into_iter().flat_map(|h| h.iter()).map(|(_, v)| Reply::bulk(v)).collect())
        }
        HashOp::GetAll(key) => Reply::Map(
            read(ks, key, now)?
                .into_iter()
                .flat_map(|h| h.iter())
                .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
                .collect(),
        ),
        HashOp::RandField { key, count, with_values } => {
            rand_field(read(ks, key, now)?, *count, *with_values, ctx.seed)?
        }
        HashOp::Scan { key, args } => match read(ks, key, now)? {
            Some(h) => scan(h, args)?,
            None => Reply::Array(vec![Reply::bulk("0"), Reply::Array(vec![])]),
        },
        write => unreachable!("query of a write operation {write:?}"),
    })
}

/// HRANDFIELD, with randomness from the request's seed only (every replica picks the same).
fn rand_field(h: Option<&Hash>, count: Option<i64>, with_values: bool, seed: u64) -> Result {
    let mut rng = Rng::new(seed);
    let Some(count) = count else {
        return Ok(match h {
            Some(h) if !h.is_empty() => Reply::bulk(h.nth(rng.below(h.len())).expect("in range").0),
            _ => Reply::Nil,
        });
    };
    let h = match h {
        Some(h) if count != 0 && !h.is_empty() => h,
        _ => return Ok(Reply::Array(vec![])),
    };
    let one = |f: &[u8], v: &[u8]| (Reply::bulk(f), Reply::bulk(v));
    let picked: Vec<(Reply, Reply)> = if count < 0 {
        // Repeats allowed: `-count` independent picks. Each field's reply is built once and
        // shared (Bytes clones are cheap).
        let n = count.unsigned_abs();
        // Redis has no limit (it runs out of memory on `HRANDFIELD h -9223372036854775807`);
        // a raftis node must not, and inside EXEC every replica builds the reply: the same cap as
        // SRANDMEMBER and ZRANDMEMBER.
        if n > super::sets::MAX_REPEATED as u64 {
            return Err(Error::msg(format!(
                "ERR value is out of range, value must between -{} and {}",
                super::sets::MAX_REPEATED,
                i64::MAX
            )));
        }
        let all: Vec<(Reply, Reply)> = h.iter().map(|(f, v)| one(f, v)).collect();
        (0..n).map(|_| all[rng.below(all.len())].clone()).collect()
    } else if count as u64 >= h.len() as u64 {
        h.iter().map(|(f, v)| one(f, v)).collect()
    } else {
        // `count` distinct positions (Floyd's sampling), answered in the hash's order.
        let (len, count) = (h.len(), count as usize);
        let mut chosen = std::collections::BTreeSet::new();
        for j in len - count..len {
            let t = rng.below(j + 1);
            if !chosen.insert(t) {
                chosen.insert(j);
            }
        }
        h.iter().enumerate().filter(|(i, _)| chosen.contains(i)).map(|(_, (f, v))| one(f, v)).collect()
    };
    Ok(if with_values { Reply::Pairs(picked) } else { Reply::Array(picked.into_iter().map(|(f, _)| f).collect()) })
}

/// HSCAN of an existing hash: a listpack-sized hash is answered whole with cursor 0, as Redis
/// does; a bigger one a step at a time ([`Dict::scan`]'s cursors).
fn scan(h: &Hash, args: &[Bytes]) -> Result {
    let sa = scan_args(args, 0)?;
    let (items, next) = if h.is_big() {
        h.scan(sa.cursor, usize::try_from(sa.count).unwrap_or(usize::MAX))
    } else {
        (h.iter().collect(), 0)
    };
    let pattern = sa.pattern.as_deref().filter(|p| *p != b"*");
    let mut out = Vec::with_capacity(items.len() * 2);
    for (f, v) in items {
        if pattern.is_none_or(|p| glob_matches(p, f)) {
            out.push(Reply::bulk(f));
            out.push(Reply::bulk(v));
        }
    }
    Ok(Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(out)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    /// Parses a command line (space-separated, `\0` for a NUL byte).
    fn p(line: &str) -> Result<Op> {
        let args: Vec<Bytes> = line.split(' ').map(|s| Bytes::from(s.replace("\\0", "\0"))).collect();
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        let command = COMMANDS.iter().find(|c| c.meta.name == name).expect("a hash command");
        assert!(command.meta.arity_ok(args.len()), "arity of {line}");
        (command.parse)(&args, NOW)
    }

    /// Runs a command line through `apply` with seed 1.
    fn run(ks: &mut KeySpace, line: &str) -> Reply {
        run_seeded(ks, line, 1)
    }

    fn run_seeded(ks: &mut KeySpace, line: &str, seed: u64) -> Reply {
        match p(line) {
            Ok(op) => op.apply(ks, Ctx { now: NOW, seed }),
            Err(e) => e.into(),
        }
    }

    /// Runs a read-only command line through `query`.
    fn q(ks: &KeySpace, line: &str) -> Reply {
        let op = p(line).expect("parses");
        assert!(!op.is_write(), "{line} is a read");
        op.query(ks, Ctx { now: NOW, seed: 1 })
    }

    fn bulks(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(Reply::bulk).collect())
    }

    fn encoding(ks: &KeySpace, key: &str) -> &'static str {
        ks.get(key.as_bytes(), NOW).expect("present").value.encoding()
    }

    fn err(text: &str) -> Reply {
        Reply::err(text)
    }

    /// The fields of an array reply, sorted.
    fn sorted(r: Reply) -> Vec<Reply> {
        let Reply::Array(mut v) = r else { panic!("not an array: {r:?}") };
        v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        v
    }

    #[test]
    fn table_is_sorted_and_metadata_is_redis() {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.meta.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 16);
        for c in COMMANDS {
            let m = &c.meta;
            assert_eq!((m.first_key, m.last_key, m.step, m.group), (1, 1, 1, "hash"), "{}", m.name);
            assert!(m.acl.contains(&"@hash"));
            let write = matches!(m.name, "hset" | "hsetnx" | "hmset" | "hdel" | "hincrby" | "hincrbyfloat");
            assert_eq!(m.is_write(), write, "{}", m.name);
        }
    }

    #[test]
    fn hset_hget_hmset_hsetnx() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, "HSET h a 1 b 2 c 3"), Reply::Int(3));
        assert_eq!(run(&mut ks, "HSET h a 10 d 4"), Reply::Int(1));
        assert_eq!(q(&ks, "HGET h a"), Reply::bulk("10"));
        assert_eq!(q(&ks, "HGET h nope"), Reply::Nil);
        assert_eq!(q(&ks, "HGET missing a"), Reply::Nil);
        assert_eq!(q(&ks, "HLEN h"), Reply::Int(4));
        assert_eq!(run(&mut ks, "HSET x a 1 a 2"), Reply::Int(1));
        assert_eq!(q(&ks, "HGET x a"), Reply::bulk("2"));
        assert_eq!(run(&mut ks, "HSET y a 1 b"), err("ERR wrong number of arguments for 'hset' command"));
        assert_eq!(run(&mut ks, "HMSET y a 1 b"), err("ERR wrong number of arguments for 'hmset' command"));
        assert!(ks.get(b"y", NOW).is_none());
        assert_eq!(run(&mut ks, "HMSET m a 1 b 2"), Reply::Ok);
        assert_eq!(run(&mut ks, "HSETNX n a 1"), Reply::Int(1));
        assert_eq!(run(&mut ks, "HSETNX n a 2"), Reply::Int(0));
        assert_eq!(q(&ks, "HGET n a"), Reply::bulk("1"));
        assert_eq!(q(&ks, "HMGET h a nope b"), Reply::Array(vec![Reply::bulk("10"), Reply::Nil, Reply::bulk("2")]));
        assert_eq!(q(&ks, "HMGET missing a b"), Reply::Array(vec![Reply::Nil, Reply::Nil]));
        assert_eq!(q(&ks, "HSTRLEN h a"), Reply::Int(2));
        assert_eq!(q(&ks, "HSTRLEN h nope"), Reply::Int(0));
        assert_eq!(q(&ks, "HEXISTS h a"), Reply::Int(1));
        assert_eq!(q(&ks, "HEXISTS h z"), Reply::Int(0));
        assert_eq!(q(&ks, "HEXISTS missing z"), Reply::Int(0));
    }

    #[test]
    fn empty_and_binary_fields() {
        let mut ks = KeySpace::new();
        let key = Bytes::from_static(b"h");
        let field = Bytes::from_static(b"f\0\xff");
        let set =
            HashOp::Set { key: key.clone(), pairs: vec![(field.clone(), Bytes::from_static(b"a\0b\r\nc"))], ok: false };
        assert_eq!(Op::Hash(set).apply(&mut ks, Ctx { now: NOW, seed: 0 }), Reply::Int(1));
        let get = HashOp::Get { key: key.clone(), field };
        assert_eq!(Op::Hash(get).query(&ks, Ctx { now: NOW, seed: 0 }), Reply::bulk(b"a\0b\r\nc"));
        let empty = Bytes::new();
        let set = HashOp::Set { key: key.clone(), pairs: vec![(empty.clone(), empty.clone())], ok: false };
        assert_eq!(Op::Hash(set).apply(&mut ks, Ctx { now: NOW, seed: 0 }), Reply::Int(1));
        let strlen = HashOp::StrLen { key, field: empty };
        assert_eq!(Op::Hash(strlen).query(&ks, Ctx { now: NOW, seed: 0 }), Reply::Int(0));
    }

    #[test]
    fn hdel_counts_and_deletes_the_emptied_key() {
        let mut ks = KeySpace::new();
        run(&mut ks, "HSET h a 1 b 2 c 3 d 4");
        assert_eq!(run(&mut ks, "HDEL h a b nope a"), Reply::Int(2));
        assert_eq!(q(&ks, "HLEN h"), Reply::Int(2));
        assert_eq!(sorted(q(&ks, "HKEYS h")), vec![Reply::bulk("c"), Reply::bulk("d")]);
        let seq = ks.seq();
        assert_eq!(run(&mut ks, "HDEL h nope"), Reply::Int(0));
        assert_eq!(ks.seq(), seq, "nothing deleted, nothing modified");
        assert_eq!(run(&mut ks, "HDEL h c d"), Reply::Int(2));
        assert!(ks.get_raw(b"h").is_none(), "the key is gone");
        assert_eq!(run(&mut ks, "HDEL h a"), Reply::Int(0));
        assert_eq!(q(&ks, "HLEN h"), Reply::Int(0));
    }

    #[test]
    fn whole_hash_reads() {
        let mut ks = KeySpace::new();
        run(&mut ks, "HSET h z 1 a 2 m 3");
        let keys = q(&ks, "HKEYS h");
        let vals = q(&ks, "HVALS h");
        let Reply::Map(all) = q(&ks, "HGETALL h") else { panic!() };
        // The three agree on the order.
        let (Reply::Array(k), Reply::Array(v)) = (keys, vals) else { panic!() };
        assert_eq!(all, k.into_iter().zip(v).collect::<Vec<_>>());
        assert_eq!(all.len(), 3);
        assert_eq!(q(&ks, "HKEYS missing"), bulks(&[]));
        assert_eq!(q(&ks, "HVALS missing"), bulks(&[]));
        assert_eq!(q(&ks, "HGETALL missing"), Reply::Map(vec![]));
    }

    #[test]
    fn wrongtype_both_ways() {
        let mut ks = KeySpace::new();
        ks.set(b"k", Value::Str(b"v".to_vec()), 0);
        let wrong: Reply = Error::WrongType.into();
        for line in [
            "HGET k a",
            "HMGET k a",
            "HLEN k",
            "HSTRLEN k a",
            "HEXISTS k a",
            "HKEYS k",
            "HVALS k",
            "HGETALL k",
            "HRANDFIELD k",
            "HRANDFIELD k 0",
            "HRANDFIELD k -3 WITHVALUES",
            "HSCAN k 0",
            "HSCAN k 0 FOO",
            "HSET k a 1",
            "HSETNX k a 1",
            "HMSET k a 1",
            "HDEL k a",
            "HINCRBY k a 1",
            "HINCRBYFLOAT k a 1",
        ] {
            assert_eq!(run(&mut ks, line), wrong, "{line}");
        }
        assert_eq!(ks.get(b"k", NOW).unwrap().value, Value::Str(b"v".to_vec()));
        // Argument errors come before the key lookup.
        assert_eq!(run(&mut ks, "HINCRBY k a x"), Error::NotInteger.into());
        assert_eq!(run(&mut ks, "HINCRBYFLOAT k a x"), Error::NotFloat.into());
        assert_eq!(run(&mut ks, "HRANDFIELD k x"), Error::NotInteger.into());
        assert_eq!(run(&mut ks, "HRANDFIELD k 1 foo"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "HSCAN k x"), Error::InvalidCursor.into());
    }

    #[test]
    fn hincrby() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, "HINCRBY h n 5"), Reply::Int(5));
        assert_eq!(run(&mut ks, "HINCRBY h n -12"), Reply::Int(-7));
        assert_eq!(q(&ks, "HGET h n"), Reply::bulk("-7"));
        run(&mut ks, "HSET h max 9223372036854775807 min -9223372036854775808 s abc f 1.5 z -0");
        assert_eq!(run(&mut ks, "HINCRBY h max 1"), Error::Overflow.into());
        assert_eq!(run(&mut ks, "HINCRBY h min -1"), Error::Overflow.into());
        assert_eq!(run(&mut ks, "HINCRBY h max -1"), Reply::Int(9223372036854775806));
        for field in ["s", "f", "z"] {
            assert_eq!(run(&mut ks, &format!("HINCRBY h {field} 1")), err("ERR hash value is not an integer"));
        }
        assert_eq!(run(&mut ks, "HINCRBY h n 1.5"), Error::NotInteger.into());
        assert_eq!(run(&mut ks, "HINCRBY h n 9223372036854775808"), Error::NotInteger.into());
    }

    #[test]
    fn hincrbyfloat() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, "HINCRBYFLOAT h f 10.5"), Reply::bulk("10.5"));
        assert_eq!(run(&mut ks, "HINCRBYFLOAT h f 0.1"), Reply::bulk("10.6"));
        assert_eq!(run(&mut ks, "HINCRBYFLOAT h f -0.6"), Reply::bulk("10"));
        run(&mut ks, "HSET h e 5.0e3 s abc i inf");
        assert_eq!(run(&mut ks, "HINCRBYFLOAT h e 0"), Reply::bulk("5000"));
        assert_eq!(q(&ks, "HGET h e"), Reply::bulk("5000"));
        assert_eq!(run(&mut ks, "HINCRBYFLOAT h s 1"), err("ERR hash value is not a float"));
        assert_eq!(run(&mut ks, "HINCRBYFLOAT h n abc"), err("ERR value is not a valid float"));
        assert_eq!(run(&mut ks, "HINCRBYFLOAT h n nan"), err("ERR value is not a valid float"));
        assert_eq!(run(&mut ks, "HINCRBYFLOAT h n inf"), err("ERR value is NaN or Infinity"));
        assert_eq!(run(&mut ks, "HINCRBYFLOAT h n -INF"), err("ERR value is NaN or Infinity"));
        assert_eq!(run(&mut ks, "HINCRBYFLOAT h i 1"), err("ERR increment would produce NaN or Infinity"));
        assert_eq!(run(&mut ks, "HINCRBYFLOAT h b 0x10"), Reply::bulk("16"));
        assert_eq!(q(&ks, "HEXISTS h n"), Reply::Int(0));
        // 1e400 is a finite long double: accepted, and its 400-digit result makes a hashtable.
        let Reply::Bulk(big) = run(&mut ks, "HINCRBYFLOAT g f 1e400") else { panic!() };
        assert_eq!(big.len(), 401);
        assert_eq!(encoding(&ks, "g"), "hashtable");
    }

    #[test]
    fn encodings_follow_redis_thresholds() {
        let mut ks = KeySpace::new();
        let long64 = "x".repeat(64);
        let long65 = "x".repeat(65);
        run(&mut ks, &format!("HSET h a 1 b {long64}"));
        assert_eq!(encoding(&ks, "h"), "listpack");
        run(&mut ks, &format!("HSET h c {long65}"));
        assert_eq!(encoding(&ks, "h"), "hashtable");
        run(&mut ks, "HDEL h c");
        assert_eq!(encoding(&ks, "h"), "hashtable", "never back");
        run(&mut ks, &format!("HSET f {long65} 1"));
        assert_eq!(encoding(&ks, "f"), "hashtable");
        // HSETNX converts only when it sets.
        run(&mut ks, "HSET n f 1");
        assert_eq!(run(&mut ks, &format!("HSETNX n f {long65}")), Reply::Int(0));
        assert_eq!(encoding(&ks, "n"), "listpack");
        run(&mut ks, &format!("HINCRBY i {long65} 1"));
        assert_eq!(encoding(&ks, "i"), "hashtable");
        let fields: String = (1..=512).map(|i| format!(" f{i} v{i}")).collect();
        run(&mut ks, &format!("HSET big{fields}"));
        assert_eq!(encoding(&ks, "big"), "listpack");
        run(&mut ks, "HSET big f513 v513");
        assert_eq!(encoding(&ks, "big"), "hashtable");
        run(&mut ks, &format!("HSET big2{fields} f513 v513"));
        assert_eq!(encoding(&ks, "big2"), "hashtable");
        assert_eq!(q(&ks, "HLEN big2"), Reply::Int(513));
    }

    #[test]
    fn writes_keep_the_ttl_and_expired_keys_are_missing() {
        let mut ks = KeySpace::new();
        ks.set(b"h", Value::Hash(Hash::new()), NOW + 100_000);
        run(&mut ks, "HSET h a 1");
        run(&mut ks, "HINCRBY h n 1");
        run(&mut ks, "HINCRBYFLOAT h x 1");
        run(&mut ks, "HSETNX h b 1");
        run(&mut ks, "HDEL h a");
        assert_eq!(ks.get(b"h", NOW).unwrap().expire_at, NOW + 100_000);
        let mut h = Hash::new();
        h.insert(b"old", Box::from(&b"v"[..]));
        ks.set(b"e", Value::Hash(h), NOW - 1);
        assert_eq!(q(&ks, "HGET e old"), Reply::Nil);
        assert_eq!(q(&ks, "HLEN e"), Reply::Int(0));
        assert_eq!(run(&mut ks, "HSET e a 1"), Reply::Int(1));
        assert_eq!(q(&ks, "HGETALL e"), Reply::Map(vec![(Reply::bulk("a"), Reply::bulk("1"))]));
        assert_eq!(ks.get(b"e", NOW).unwrap().expire_at, 0, "a new key");
    }

    #[test]
    fn watch_sees_only_real_changes() {
        let mut ks = KeySpace::new();
        run(&mut ks, "HSET h a 1");
        let seq = ks.seq();
        run(&mut ks, "HSETNX h a 2");
        run(&mut ks, "HINCRBY h a x");
        run(&mut ks, "HINCRBYFLOAT h a inf");
        assert_eq!(ks.seq(), seq);
        run(&mut ks, "HSET h a 1");
        assert!(ks.seq() > seq, "HSET always modifies, as in Redis");
    }

    #[test]
    fn hrandfield_forms() {
        let mut ks = KeySpace::new();
        run(&mut ks, "HSET one only v");
        assert_eq!(q(&ks, "HRANDFIELD one"), Reply::bulk("only"));
        assert_eq!(q(&ks, "HRANDFIELD missing"), Reply::Nil);
        assert_eq!(q(&ks, "HRANDFIELD one -3"), bulks(&["only", "only", "only"]));
        let pair = || (Reply::bulk("only"), Reply::bulk("v"));
        assert_eq!(q(&ks, "HRANDFIELD one -2 WITHVALUES"), Reply::Pairs(vec![pair(), pair()]));
        assert_eq!(q(&ks, "HRANDFIELD one 5 WITHVALUES"), Reply::Pairs(vec![pair()]));
        assert_eq!(q(&ks, "HRANDFIELD one 0"), bulks(&[]));
        assert_eq!(q(&ks, "HRANDFIELD missing 3 WITHVALUES"), bulks(&[]));
        assert_eq!(q(&ks, "HRANDFIELD missing -3"), bulks(&[]));
        run(&mut ks, "HSET h a 1 b 2 c 3 d 4 e 5 f 6 g 7 h 8");
        let all = sorted(q(&ks, "HKEYS h"));
        assert_eq!(sorted(q(&ks, "HRANDFIELD h 100")), all);
        for seed in 0..50 {
            for count in 1..8 {
                let r = run_seeded(&mut ks, &format!("HRANDFIELD h {count}"), seed);
                let mut got = sorted(r.clone());
                got.dedup();
                assert_eq!(got.len(), count, "distinct fields");
                assert!(got.iter().all(|f| all.contains(f)));
                assert_eq!(run_seeded(&mut ks, &format!("HRANDFIELD h {count}"), seed), r, "same seed, same pick");
            }
            let Reply::Pairs(pairs) = run_seeded(&mut ks, "HRANDFIELD h -5 WITHVALUES", seed) else { panic!() };
            assert_eq!(pairs.len(), 5);
            for pair in &pairs {
                let (Reply::Bulk(f), Reply::Bulk(v)) = pair else { panic!() };
                assert_eq!(q(&ks, &format!("HGET h {}", String::from_utf8_lossy(f))), Reply::Bulk(v.clone()));
            }
        }
        // Different seeds pick differently at least sometimes.
        let picks: std::collections::BTreeSet<String> =
            (0..50).map(|s| format!("{:?}", run_seeded(&mut ks, "HRANDFIELD h", s))).collect();
        assert!(picks.len() > 1);
    }

    #[test]
    fn hrandfield_argument_errors() {
        assert_eq!(p("HRANDFIELD h x"), Err(Error::NotInteger));
        assert_eq!(p("HRANDFIELD h 1.5"), Err(Error::NotInteger));
        assert_eq!(p("HRANDFIELD h WITHVALUES"), Err(Error::NotInteger));
        assert_eq!(p("HRANDFIELD h 1 WITHVALUE"), Err(Error::Syntax));
        assert_eq!(p("HRANDFIELD h 1 WITHVALUES x"), Err(Error::Syntax));
        assert!(p("HRANDFIELD h 1 withvalues\\0x").is_ok());
        assert_eq!(
            p("HRANDFIELD h -9223372036854775808"),
            Err(Error::msg(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
            ))
        );
        assert!(p("HRANDFIELD h 4611686018427387903 WITHVALUES").is_ok());
        assert!(p("HRANDFIELD h -4611686018427387903 WITHVALUES").is_ok());
        assert_eq!(p("HRANDFIELD h 4611686018427387904 WITHVALUES"), Err(Error::msg("ERR value is out of range")));
        assert_eq!(p("HRANDFIELD h -4611686018427387904 WITHVALUES"), Err(Error::msg("ERR value is out of range")));
        let mut ks = KeySpace::new();
        run(&mut ks, "HSET h a 1");
        assert!(q(&ks, "HRANDFIELD h -9223372036854775807").is_error(), "refused, not built");
        assert!(!q(&ks, "HRANDFIELD h 9223372036854775807").is_error());
    }

    #[test]
    fn hscan_small_and_big() {
        let mut ks = KeySpace::new();
        run(&mut ks, "HSET h user:1 a user:2 b admin c");
        let whole = |r: Reply| {
            let Reply::Array(parts) = r else { panic!() };
            assert_eq!(parts[0], Reply::bulk("0"));
            parts[1].clone()
        };
        let Reply::Array(all) = whole(q(&ks, "HSCAN h 0 COUNT 1")) else { panic!() };
        assert_eq!(all.len(), 6);
        let Reply::Array(users) = whole(q(&ks, "HSCAN h 0 MATCH user:*")) else { panic!() };
        assert_eq!(users.len(), 4);
        assert_eq!(whole(q(&ks, "HSCAN h 123 MATCH adm?n COUNT 100")), bulks(&["admin", "c"]));
        assert_eq!(whole(q(&ks, "HSCAN h 0 MATCH nothing*")), bulks(&[]));
        assert_eq!(whole(q(&ks, "HSCAN missing 0 COUNT 0")), bulks(&[]), "options unread for a missing key");
        assert_eq!(q(&ks, "HSCAN h 0 COUNT 0"), Error::Syntax.into());
        assert_eq!(q(&ks, "HSCAN h 0 MATCH"), Error::Syntax.into());
        assert_eq!(q(&ks, "HSCAN h 0 FOO bar"), Error::Syntax.into());
        assert_eq!(q(&ks, "HSCAN h 0 COUNT x"), Error::NotInteger.into());
        assert_eq!(p("HSCAN h x"), Err(Error::InvalidCursor));
        assert_eq!(p("HSCAN h 18446744073709551616"), Err(Error::InvalidCursor));

        let fields: String = (0..1000).map(|i| format!(" f{i} v{i}")).collect();
        run(&mut ks, &format!("HSET big{fields}"));
        let mut seen = std::collections::BTreeMap::new();
        let mut cursor = "0".to_string();
        let mut steps = 0;
        loop {
            let Reply::Array(parts) = q(&ks, &format!("HSCAN big {cursor} COUNT 50")) else { panic!() };
            let (Reply::Bulk(next), Reply::Array(items)) = (&parts[0], &parts[1]) else { panic!() };
            assert!(items.len() <= 2 * 60);
            for pair in items.chunks(2) {
                *seen.entry(format!("{:?}{:?}", pair[0], pair[1])).or_insert(0) += 1;
            }
            steps += 1;
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert!(steps > 10);
        assert_eq!(seen.len(), 1000);
        assert!(seen.values().all(|&n| n == 1));
    }

    #[test]
    fn ops_survive_the_log_format() {
        let op = p("HRANDFIELD h -3 WITHVALUES").unwrap();
        let back: Op = bincode::deserialize(&bincode::serialize(&op).unwrap()).unwrap();
        assert_eq!(back, op);
        let op = p("HSET h a 1 b 2").unwrap();
        let back: Op = bincode::deserialize(&bincode::serialize(&op).unwrap()).unwrap();
        assert_eq!(back, op);
    }
}
