//! The set commands: SADD, SREM, membership and cardinality, SPOP and SRANDMEMBER, SMOVE, the
//! set algebra (SINTER, SUNION, SDIFF, their STORE forms, SINTERCARD) and SSCAN, with Redis
//! 7.0's replies, errors and encodings.
//!
//! Encodings follow Redis 7.0 (no listpack for sets): a set is an `intset` while every member
//! is an integer `string2ll` reads back as itself and it has at most 512 members, and becomes a
//! `hashtable` for good otherwise ([`Dict::is_big`]). An intset lists its members in increasing
//! numeric order, as Redis's does; a hashtable in the dict's order.
//!
//! SPOP and SRANDMEMBER draw their randomness from the request's seed only, so every replica
//! picks the same members.

use super::notify::{notify, GENERIC, SET};
use std::collections::HashSet;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::args::{eq, int, numkeys, parse_cursor, scan_args, Rng};
use super::meta::*;
use super::{Ctx, DataCommand, Error, Op, Result};
use crate::data;
use crate::resp::{parse_i64, Reply};
use crate::sm::{glob_matches, Dict, KeySpace, Value};

const SRF: &[&str] = &["@read", "@set", "@fast"];
const SRS: &[&str] = &["@read", "@set", "@slow"];
const SWF: &[&str] = &["@write", "@set", "@fast"];
const SWS: &[&str] = &["@write", "@set", "@slow"];

/// The set commands, sorted by name.
#[rustfmt::skip]
pub const COMMANDS: &[DataCommand] = &[
    data!("sadd", -3, WF, 1, 1, 1, SWF, "set", "1.0.0", parse::sadd, "Add one or more members to a set"),
    data!("scard", 2, R, 1, 1, 1, SRF, "set", "1.0.0", parse::scard, "Get the number of members in a set"),
    data!("sdiff", -2, RS, 1, -1, 1, SRS, "set", "1.0.0", parse::sdiff, "Subtract multiple sets"),
    data!("sdiffstore", -3, W, 1, -1, 1, SWS, "set", "1.0.0", parse::sdiffstore, "Subtract multiple sets and store the resulting set in a key"),
    data!("sinter", -2, RS, 1, -1, 1, SRS, "set", "1.0.0", parse::sinter, "Intersect multiple sets"),
    data!("sintercard", -3, &["readonly", "movablekeys"], 0, 0, 0, SRS, "set", "7.0.0", parse::sintercard, "Intersect multiple sets and return the cardinality of the result").keynum(1, 2),
    data!("sinterstore", -3, W, 1, -1, 1, SWS, "set", "1.0.0", parse::sinterstore, "Intersect multiple sets and store the resulting set in a key"),
    data!("sismember", 3, R, 1, 1, 1, SRF, "set", "1.0.0", parse::sismember, "Determine if a given value is a member of a set"),
    data!("smembers", 2, RS, 1, 1, 1, SRS, "set", "1.0.0", parse::smembers, "Get all the members in a set"),
    data!("smismember", -3, R, 1, 1, 1, SRF, "set", "6.2.0", parse::smismember, "Returns the membership associated with the given elements for a set"),
    data!("smove", 4, WD, 1, 2, 1, SWF, "set", "1.0.0", parse::smove, "Move a member from one set to another"),
    data!("spop", -2, WD, 1, 1, 1, SWF, "set", "1.0.0", parse::spop, "Remove and return one or multiple random members from a set"),
    data!("srandmember", -2, RS, 1, 1, 1, SRS, "set", "1.0.0", parse::srandmember, "Get one or multiple random members from a set"),
    data!("srem", -3, WD, 1, 1, 1, SWF, "set", "1.0.0", parse::srem, "Remove one or more members from a set"),
    data!("sscan", -3, RS, 1, 1, 1, SRS, "set", "2.8.0", parse::sscan, "Incrementally iterate Set elements"),
    data!("sunion", -2, RS, 1, -1, 1, SRS, "set", "1.0.0", parse::sunion, "Add multiple sets"),
    data!("sunionstore", -3, W, 1, -1, 1, SWS, "set", "1.0.0", parse::sunionstore, "Add multiple sets and store the resulting set in a key"),
];

/// The most members SRANDMEMBER with a negative count may repeat. Redis has no bound and tries
/// to build any reply (`SRANDMEMBER s -9223372036854775807` exhausts its memory); here the
/// reply is built on every replica when inside EXEC, so the count is bounded (with Redis's
/// wording for an out-of-range count).
pub const MAX_REPEATED: i64 = 1_000_000;

/// Which set algebra: SINTER, SUNION or SDIFF (SMEMBERS is SINTER of one key, as in Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algebra {
    Inter,
    Union,
    Diff,
}

/// One set operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetOp {
    // Reads.
    /// SINTER, SUNION, SDIFF, SMEMBERS.
    Combine {
        algebra: Algebra,
        keys: Vec<Bytes>,
    },
    /// SINTERCARD (`limit` 0: none).
    InterCard {
        keys: Vec<Bytes>,
        limit: u64,
    },
    IsMember {
        key: Bytes,
        member: Bytes,
    },
    MIsMember {
        key: Bytes,
        members: Vec<Bytes>,
    },
    Card(Bytes),
    /// SRANDMEMBER, with its count if given.
    RandMember {
        key: Bytes,
        count: Option<i64>,
    },
    /// SSCAN: the cursor (already checked) and the options, which Redis only reads once the key
    /// is found to be a set.
    Scan {
        key: Bytes,
        args: Vec<Bytes>,
    },
    // Writes.
    Add {
        key: Bytes,
        members: Vec<Bytes>,
    },
    Rem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    /// SPOP, with its count if given.
    Pop {
        key: Bytes,
        count: Option<u64>,
    },
    Move {
        src: Bytes,
        dst: Bytes,
        member: Bytes,
    },
    /// SINTERSTORE, SUNIONSTORE, SDIFFSTORE.
    Store {
        algebra: Algebra,
        dst: Bytes,
        keys: Vec<Bytes>,
    },
}

impl SetOp {
    /// Whether the operation may change the keyspace.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            SetOp::Add { .. } | SetOp::Rem { .. } | SetOp::Pop { .. } | SetOp::Move { .. } | SetOp::Store { .. }
        )
    }
}

/// The argument parsers, one per command, named after it.
mod parse {
    use super::*;

    fn op(op: SetOp) -> Result<Op> {
        Ok(Op::Set(op))
    }

    fn a(args: &[Bytes], i: usize) -> Bytes {
        args[i].clone()
    }

    fn combine(algebra: Algebra, keys: &[Bytes]) -> Result<Op> {
        op(SetOp::Combine { algebra, keys: keys.to_vec() })
    }

    fn store(algebra: Algebra, args: &[Bytes]) -> Result<Op> {
        op(SetOp::Store { algebra, dst: a(args, 1), keys: args[2..].to_vec() })
    }

    pub fn sadd(args: &[Bytes], _: u64) -> Result<Op> {
        op(SetOp::Add { key: a(args, 1), members: args[2..].to_vec() })
    }

    pub fn srem(args: &[Bytes], _: u64) -> Result<Op> {
        op(SetOp::Rem { key: a(args, 1), members: args[2..].to_vec() })
    }

    pub fn smembers(args: &[Bytes], _: u64) -> Result<Op> {
        combine(Algebra::Inter, &args[1..])
    }

    pub fn sismember(args: &[Bytes], _: u64) -> Result<Op> {
        op(SetOp::IsMember { key: a(args, 1), member: a(args, 2) })
    }

    pub fn smismember(args: &[Bytes], _: u64) -> Result<Op> {
        op(SetOp::MIsMember { key: a(args, 1), members: args[2..].to_vec() })
    }

    pub fn scard(args: &[Bytes], _: u64) -> Result<Op> {
        op(SetOp::Card(a(args, 1)))
    }

    /// The count is read before the key is looked up: any count that is not a non-negative
    /// integer answers "must be positive", whatever the key.
    pub fn spop(args: &[Bytes], _: u64) -> Result<Op> {
        let count = match args.len() {
            2 => None,
            3 => match parse_i64(&args[2]) {
                Some(n) if n >= 0 => Some(n as u64),
                _ => return Err(Error::NotPositive),
            },
            _ => return Err(Error::Syntax),
        };
        op(SetOp::Pop { key: a(args, 1), count })
    }

    pub fn srandmember(args: &[Bytes], _: u64) -> Result<Op> {
        let count = match args.len() {
            2 => None,
            3 => {
                let n = int(&args[2])?;
                if n < -MAX_REPEATED {
                    return Err(Error::msg(format!(
                        "ERR value is out of range, value must between -{MAX_REPEATED} and {}",
                        i64::MAX
                    )));
                }
                Some(n)
            }
            _ => return Err(Error::Syntax),
        };
        op(SetOp::RandMember { key: a(args, 1), count })
    }

    pub fn smove(args: &[Bytes], _: u64) -> Result<Op> {
        op(SetOp::Move { src: a(args, 1), dst: a(args, 2), member: a(args, 3) })
    }

    pub fn sinter(args: &[Bytes], _: u64) -> Result<Op> {
        combine(Algebra::Inter, &args[1..])
    }

    pub fn sunion(args: &[Bytes], _: u64) -> Result<Op> {
        combine(Algebra::Union, &args[1..])
    }

    pub fn sdiff(args: &[Bytes], _: u64) -> Result<Op> {
        combine(Algebra::Diff, &args[1..])
    }

    pub fn sinterstore(args: &[Bytes], _: u64) -> Result<Op> {
        store(Algebra::Inter, args)
    }

    pub fn sunionstore(args: &[Bytes], _: u64) -> Result<Op> {
        store(Algebra::Union, args)
    }

    pub fn sdiffstore(args: &[Bytes], _: u64) -> Result<Op> {
        store(Algebra::Diff, args)
    }

    /// `SINTERCARD numkeys key [key ...] [LIMIT limit]`, checked in Redis's order.
    pub fn sintercard(args: &[Bytes], _: u64) -> Result<Op> {
        let n = numkeys(&args[1])?;
        if n > args.len() - 2 {
            return Err(Error::msg("ERR Number of keys can't be greater than number of args"));
        }
        let mut limit = 0u64;
        let mut j = 2 + n;
        while j < args.len() {
            if eq(&args[j], "limit") && j + 1 < args.len() {
                j += 1;
                limit = match parse_i64(&args[j]) {
                    Some(l) if l >= 0 => l as u64,
                    _ => return Err(Error::msg("ERR LIMIT can't be negative")),
                };
            } else {
                return Err(Error::Syntax);
            }
            j += 1;
        }
        op(SetOp::InterCard { keys: args[2..2 + n].to_vec(), limit })
    }

    /// The cursor is checked first; MATCH and COUNT only once the key is found (as Redis's
    /// `scanGenericCommand` does): `SSCAN missing 0 COUNT 0` is an empty scan.
    pub fn sscan(args: &[Bytes], _: u64) -> Result<Op> {
        parse_cursor(&args[2]).ok_or(Error::InvalidCursor)?;
        op(SetOp::Scan { key: a(args, 1), args: args[2..].to_vec() })
    }
}

/// The set, or WRONGTYPE.
fn as_set(value: &Value) -> Result<&Dict<()>> {
    match value {
        Value::Set(s) => Ok(s),
        _ => Err(Error::WrongType),
    }
}

/// The set of an entry already checked to be one.
fn set_mut(value: &mut Value) -> &mut Dict<()> {
    match value {
        Value::Set(s) => s,
        _ => unreachable!("checked a set"),
    }
}

/// The set at `key`, `None` when missing, or WRONGTYPE.
fn read_set<'a>(ks: &'a KeySpace, key: &[u8], now: u64) -> Result<Option<&'a Dict<()>>> {
    ks.get(key, now).map(|e| as_set(&e.value)).transpose()
}

/// The sets at `keys` (`None` for a missing key); WRONGTYPE if any key holds another type, even
/// after a missing one.
fn read_sets<'a>(ks: &'a KeySpace, keys: &[Bytes], now: u64) -> Result<Vec<Option<&'a Dict<()>>>> {
    keys.iter().map(|k| read_set(ks, k, now)).collect()
}

/// Whether an intset can hold `member`: an integer Redis's `string2ll` accepts and that prints
/// back as the same text ("01", " 1", "+1" and out-of-range numbers cannot).
fn intset_member(member: &[u8]) -> bool {
    member.len() <= 20 && parse_i64(member).is_some_and(|n| n.to_string().as_bytes() == member)
}

/// Whether a set with these members cannot be an intset.
fn needs_hashtable(set: &Dict<()>) -> bool {
    set.len() as u64 > super::encodings().set_max_intset_entries || set.iter().any(|(m, _)| !intset_member(m))
}

/// Adds `member` as Redis's `setTypeAdd` does, converting the set to a hashtable when an
/// intset cannot hold it; whether it was new.
fn add(set: &mut Dict<()>, member: &[u8]) -> bool {
    if set.insert(member, ()).is_some() {
        return false;
    }
    if !set.is_big() && (!intset_member(member) || set.len() as u64 > super::encodings().set_max_intset_entries) {
        set.make_big();
    }
    true
}

/// A new set holding `members`, encoded as Redis encodes a set built by adding them one by one.
pub(super) fn build<'a>(members: impl IntoIterator<Item = &'a [u8]>) -> Dict<()> {
    let mut set = Dict::new();
    for m in members {
        add(&mut set, m);
    }
    set
}

/// The members in the order Redis lists them: an intset in increasing numeric order, a
/// hashtable in the dict's order.
pub(super) fn ordered(set: &Dict<()>) -> Vec<&[u8]> {
    let mut members: Vec<&[u8]> = set.iter().map(|(m, _)| m).collect();
    if !set.is_big() {
        members.sort_by_key(|m| parse_i64(m));
    }
    members
}

fn bulks<'a>(members: impl IntoIterator<Item = &'a [u8]>) -> Vec<Reply> {
    members.into_iter().map(Reply::bulk).collect()
}

/// How many consecutive members a random pick in a larger set chooses among.
const WINDOW: usize = 32;

/// A random member of a non-empty set. A small set's is uniform; a larger one's is found in
/// O(log n): a random point on the ring of member hashes (the dict's order), then one of the
/// `WINDOW` members from there on, uniformly, which keeps every member's chance within a few
/// tens of percent of uniform (Redis's own pick is not exactly uniform either).
fn random_member<'a>(set: &'a Dict<()>, rng: &mut Rng) -> &'a [u8] {
    let n = set.len();
    if n <= 2 * WINDOW {
        return set.nth(rng.below(n)).expect("an index below the length").0;
    }
    let (from, _) = set.scan(rng.next_u64(), WINDOW);
    let window: Vec<&[u8]> = from.into_iter().map(|(m, _)| m).chain(set.iter().map(|(m, _)| m)).take(WINDOW).collect();
    window[rng.below(window.len())]
}

/// `n` random members of a non-empty set, repetitions allowed, in the order drawn: from a list
/// of all of them (uniform) when the draws are many for the set's size, one by one with
/// [`random_member`] otherwise.
fn draws<'a>(set: &'a Dict<()>, n: u64, rng: &mut Rng) -> Vec<&'a [u8]> {
    if (set.len() as u64) <= n.saturating_mul(4) {
        let all: Vec<&[u8]> = set.iter().map(|(m, _)| m).collect();
        (0..n).map(|_| all[rng.below(all.len())]).collect()
    } else {
        (0..n).map(|_| random_member(set, rng)).collect()
    }
}

/// `k` distinct indices of `0..n`, drawn uniformly, in the order drawn (partial Fisher-Yates).
fn sample_indices(n: usize, k: usize, rng: &mut Rng) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k.min(n) {
        let j = i + rng.below(n - i);
        idx.swap(i, j);
    }
    idx.truncate(k);
    idx
}

/// SINTER's members, in the order of the smallest set (Redis iterates it and checks the
/// others); at most `limit` of them when `limit` is not 0. A missing key makes it empty.
fn inter<'a>(sets: &[Option<&'a Dict<()>>], limit: usize) -> Vec<&'a [u8]> {
    let Some(mut sets) = sets.iter().copied().collect::<Option<Vec<&Dict<()>>>>() else {
        return Vec::new();
    };
    sets.sort_by_key(|s| s.len());
    let (first, rest) = sets.split_first().expect("at least one key");
    let mut out = Vec::new();
    for m in ordered(first) {
        if rest.iter().all(|s| std::ptr::eq(*s, *first) || s.contains(m)) {
            out.push(m);
            if out.len() == limit {
                break;
            }
        }
    }
    out
}

/// SUNION's result, encoded as Redis builds it (adding every member of every set).
fn union(sets: &[Option<&Dict<()>>]) -> Dict<()> {
    build(sets.iter().flatten().flat_map(|s| s.iter().map(|(m, _)| m)))
}

/// SDIFF's result, encoded as Redis builds it. Redis picks one of two algorithms by the sets'
/// sizes: the first adds only the members that remain, the second adds every member of the
/// first set and then removes the others' (so the result is a hashtable whenever the first set
/// could not be an intset).
fn diff(keys: &[Bytes], sets: &[Option<&Dict<()>>]) -> Dict<()> {
    let Some(first) = sets[0] else {
        return Dict::new();
    };
    if keys[1..].iter().any(|k| *k == keys[0]) {
        return Dict::new();
    }
    let present = sets.iter().flatten().count();
    let algo_one_work = (present * first.len()) / 2;
    let algo_two_work: usize = sets.iter().flatten().map(|s| s.len()).sum();
    let rest: Vec<&Dict<()>> = sets[1..].iter().flatten().copied().collect();
    let mut result = build(ordered(first).into_iter().filter(|m| !rest.iter().any(|s| s.contains(m))));
    if algo_one_work > algo_two_work && needs_hashtable(first) {
        result.make_big();
    }
    result
}

/// The result of an algebra as a new set (for the STORE forms).
fn combined(algebra: Algebra, keys: &[Bytes], sets: &[Option<&Dict<()>>]) -> Dict<()> {
    match algebra {
        Algebra::Inter => build(inter(sets, 0)),
        Algebra::Union => union(sets),
        Algebra::Diff => diff(keys, sets),
    }
}

/// Applies a set operation (reads included, as inside EXEC).
pub fn apply(ks: &mut KeySpace, op: &SetOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        SetOp::Add { key, members } => sadd(ks, key, members, now)?,
        SetOp::Rem { key, members } => srem(ks, key, members, now)?,
        SetOp::Pop { key, count } => spop(ks, key, *count, ctx)?,
        SetOp::Move { src, dst, member } => smove(ks, src, dst, member, now)?,
        SetOp::Store { algebra, dst, keys } => {
            let result = combined(*algebra, keys, &read_sets(ks, keys, now)?);
            if result.is_empty() {
                if ks.live_slot(dst, now).is_some() {
                    ks.remove(dst);
                    notify(ks, GENERIC, "del", dst);
                }
                Reply::Int(0)
            } else {
                let len = result.len() as i64;
                ks.set(dst, Value::Set(Box::new(result)), 0);
                let event = match algebra {
                    Algebra::Inter => "sinterstore",
                    Algebra::Union => "sunionstore",
                    Algebra::Diff => "sdiffstore",
                };
                notify(ks, SET, event, dst);
                Reply::Int(len)
            }
        }
        read => query(ks, read, ctx)?,
    })
}

/// Answers a read-only set operation.
pub fn query(ks: &KeySpace, op: &SetOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        SetOp::Combine { algebra, keys } => {
            let sets = read_sets(ks, keys, now)?;
            Reply::Set(match algebra {
                Algebra::Inter => bulks(inter(&sets, 0)),
                Algebra::Union => bulks(ordered(&union(&sets))),
                Algebra::Diff => bulks(ordered(&diff(keys, &sets))),
            })
        }
        SetOp::InterCard { keys, limit } => {
            let limit = usize::try_from(*limit).unwrap_or(usize::MAX);
            Reply::Int(inter(&read_sets(ks, keys, now)?, limit).len() as i64)
        }
        SetOp::IsMember { key, member } => {
            Reply::Int(read_set(ks, key, now)?.is_some_and(|s| s.contains(member)) as i64)
        }
        SetOp::MIsMember { key, members } => {
            let set = read_set(ks, key, now)?;
            Reply::Array(members.iter().map(|m| Reply::Int(set.is_some_and(|s| s.contains(m)) as i64)).collect())
        }
        SetOp::Card(key) => Reply::Int(read_set(ks, key, now)?.map_or(0, Dict::len) as i64),
        SetOp::RandMember { key, count } => srandmember(read_set(ks, key, now)?, *count, ctx),
        SetOp::Scan { key, args } => match read_set(ks, key, now)? {
            None => Reply::Array(vec![Reply::bulk("0"), Reply::Array(vec![])]),
            Some(set) => sscan(set, args)?,
        },
        write => unreachable!("query of a write operation {write:?}"),
    })
}

fn sadd(ks: &mut KeySpace, key: &Bytes, members: &[Bytes], now: u64) -> Result {
    let added = match ks.live_slot(key, now) {
        Some(slot) => {
            let set = as_set(&ks.at(slot).expect("live slot").value)?;
            // Nothing new: the key is left untouched (a WATCH on it stays valid).
            if members.iter().all(|m| set.contains(m)) {
                return Ok(Reply::Int(0));
            }
            ks.update(slot, |e| {
                let set = set_mut(&mut e.value);
                members.iter().fold(0, |n, m| n + add(set, m) as i64)
            })
        }
        None => {
            let mut set = Dict::new();
            let added = members.iter().fold(0, |n, m| n + add(&mut set, m) as i64);
            ks.set(key, Value::Set(Box::new(set)), 0);
            added
        }
    };
    if added > 0 {
        notify(ks, SET, "sadd", key);
    }
    Ok(Reply::Int(added))
}

fn srem(ks: &mut KeySpace, key: &Bytes, members: &[Bytes], now: u64) -> Result {
    let Some(slot) = ks.live_slot(key, now) else {
        return Ok(Reply::Int(0));
    };
    let set = as_set(&ks.at(slot).expect("live slot").value)?;
    if !members.iter().any(|m| set.contains(m)) {
        return Ok(Reply::Int(0));
    }
    let (removed, empty) = ks.update(slot, |e| {
        let set = set_mut(&mut e.value);
        let removed = members.iter().filter(|m| set.remove(m).is_some()).count();
        (removed, set.is_empty())
    });
    if empty {
        ks.remove_slot(slot);
    }
    notify(ks, SET, "srem", key);
    if empty {
        notify(ks, GENERIC, "del", key);
    }
    Ok(Reply::Int(removed as i64))
}

/// How many times the members left must outnumber those popped for SPOP to pop them one by one
/// (Redis's SPOP_MOVE_STRATEGY_MUL); otherwise it draws the members that stay and rebuilds the
/// set from them, which re-encodes it (a hashtable of integers can become an intset again).
const SPOP_MOVE_STRATEGY_MUL: u64 = 5;

fn spop(ks: &mut KeySpace, key: &Bytes, count: Option<u64>, ctx: Ctx) -> Result {
    let Some(slot) = ks.live_slot(key, ctx.now) else {
        return Ok(if count.is_some() { Reply::Set(vec![]) } else { Reply::Nil });
    };
    let size = as_set(&ks.at(slot).expect("live slot").value)?.len() as u64;
    let mut rng = Rng::new(ctx.seed);
    let reply = match count {
        None => {
            let (member, empty) = ks.update(slot, |e| {
                let set = set_mut(&mut e.value);
                let member = random_member(set, &mut rng).to_vec();
                set.remove(&member);
                (member, set.is_empty())
            });
            if empty {
                ks.remove_slot(slot);
            }
            notify(ks, SET, "spop", key);
            if empty {
                notify(ks, GENERIC, "del", key);
            }
            return Ok(Reply::Bulk(member.into()));
        }
        Some(0) => Reply::Set(vec![]),
        Some(n) if n >= size => {
            let entry = ks.remove_slot(slot);
            notify(ks, SET, "spop", key);
            notify(ks, GENERIC, "del", key);
            Reply::Set(bulks(ordered(as_set(&entry.value)?)))
        }
        Some(n) => {
            let remaining = size - n;
            let popped: Vec<Vec<u8>> = ks.update(slot, |e| {
                let set = set_mut(&mut e.value);
                if remaining.saturating_mul(SPOP_MOVE_STRATEGY_MUL) > n {
                    (0..n)
                        .map(|_| {
                            let member = random_member(set, &mut rng).to_vec();
                            set.remove(&member);
                            member
                        })
                        .collect()
                } else {
                    let members = ordered(set);
                    let mut stays = vec![false; members.len()];
                    for i in sample_indices(members.len(), remaining as usize, &mut rng) {
                        stays[i] = true;
                    }
                    let kept = build(members.iter().zip(&stays).filter(|(_, s)| **s).map(|(m, _)| *m));
                    let popped = members.iter().zip(&stays).filter(|(_, s)| !**s).map(|(m, _)| m.to_vec()).collect();
                    *set = kept;
                    popped
                }
            });
            notify(ks, SET, "spop", key);
            Reply::Set(popped.into_iter().map(|m| Reply::Bulk(m.into())).collect())
        }
    };
    Ok(reply)
}

/// How many times the set must outnumber the count for SRANDMEMBER to draw members one by one
/// until it has enough distinct ones (Redis's SRANDMEMBER_SUB_STRATEGY_MUL); otherwise it
/// samples without replacement from the whole set.
const SRANDMEMBER_SUB_STRATEGY_MUL: u64 = 3;

fn srandmember(set: Option<&Dict<()>>, count: Option<i64>, ctx: Ctx) -> Reply {
    let mut rng = Rng::new(ctx.seed);
    let Some(count) = count else {
        return set.map_or(Reply::Nil, |s| Reply::bulk(random_member(s, &mut rng)));
    };
    let Some(set) = set else {
        return Reply::Array(vec![]);
    };
    let size = set.len() as u64;
    let n = count.unsigned_abs();
    if n == 0 {
        return Reply::Array(vec![]);
    }
    if count < 0 || n == 1 {
        // With repetitions, in the order drawn.
        return Reply::Array(bulks(draws(set, n, &mut rng)));
    }
    if n >= size {
        return Reply::Array(bulks(ordered(set)));
    }
    if n * SRANDMEMBER_SUB_STRATEGY_MUL > size {
        let members = ordered(set);
        return Reply::Array(
            sample_indices(members.len(), n as usize, &mut rng).into_iter().map(|i| Reply::bulk(members[i])).collect(),
        );
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n as usize);
    while (out.len() as u64) < n {
        let member = random_member(set, &mut rng);
        if seen.insert(member) {
            out.push(Reply::bulk(member));
        }
    }
    Reply::Array(out)
}

/// SMOVE, in Redis's order: a missing source answers 0 whatever the destination; then both
/// types are checked; the destination is only touched when the member is new to it.
fn smove(ks: &mut KeySpace, src: &Bytes, dst: &Bytes, member: &Bytes, now: u64) -> Result {
    let src_slot = ks.live_slot(src, now);
    let dst_slot = ks.live_slot(dst, now);
    let Some(src_slot) = src_slot else {
        return Ok(Reply::Int(0));
    };
    let in_src = as_set(&ks.at(src_slot).expect("live slot").value)?.contains(member);
    let in_dst = match dst_slot {
        Some(slot) => Some(as_set(&ks.at(slot).expect("live slot").value)?.contains(member)),
        None => None,
    };
    if src == dst {
        return Ok(Reply::Int(in_src as i64));
    }
    if !in_src {
        return Ok(Reply::Int(0));
    }
    let empty = ks.update(src_slot, |e| {
        let set = set_mut(&mut e.value);
        set.remove(member);
        set.is_empty()
    });
    if empty {
        ks.remove_slot(src_slot);
    }
    notify(ks, SET, "srem", src);
    if empty {
        notify(ks, GENERIC, "del", src);
    }
    match (dst_slot, in_dst) {
        (Some(slot), Some(false)) => {
            ks.update(slot, |e| add(set_mut(&mut e.value), member));
        }
        (Some(_), _) => {}
        (None, _) => {
            ks.set(dst, Value::Set(Box::new(build([&member[..]]))), 0);
        }
    }
    if in_dst != Some(true) {
        notify(ks, SET, "sadd", dst);
    }
    Ok(Reply::Int(1))
}

/// SSCAN of a set: an intset is returned whole with cursor 0 (Redis does not iterate it), a
/// hashtable about COUNT members from the cursor on.
fn sscan(set: &Dict<()>, args: &[Bytes]) -> Result {
    let opts = scan_args(args, 0)?;
    let (members, next) = if set.is_big() {
        let (items, next) = set.scan(opts.cursor, usize::try_from(opts.count).unwrap_or(usize::MAX));
        (items.into_iter().map(|(m, _)| m).collect(), next)
    } else {
        (ordered(set), 0)
    };
    let pattern = opts.pattern.as_deref().filter(|p| *p != b"*");
    let members = members.into_iter().filter(|m| pattern.is_none_or(|p| glob_matches(p, m)));
    Ok(Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(bulks(members))]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// Parses a command line (`\0` stands for a NUL byte) into its operation.
    fn p(line: &str) -> Result<Op> {
        let args: Vec<Bytes> = line.split(' ').map(|s| Bytes::from(s.replace("\\0", "\0"))).collect();
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        let command = COMMANDS.iter().find(|c| c.meta.name == name).expect("a set command");
        assert!(command.meta.arity_ok(args.len()), "arity of {line}");
        (command.parse)(&args, NOW)
    }

    /// Runs a command line against the keyspace, with `seed`.
    fn run_seeded(ks: &mut KeySpace, line: &str, seed: u64) -> Reply {
        match p(line) {
            Ok(op) => op.apply(ks, Ctx { now: NOW, seed }),
            Err(e) => e.into(),
        }
    }

    fn run(ks: &mut KeySpace, line: &str) -> Reply {
        run_seeded(ks, line, 7)
    }

    /// The members of a reply listing bulks, sorted.
    fn sorted(reply: Reply) -> Vec<String> {
        let (Reply::Set(items) | Reply::Array(items)) = reply else { panic!("not a list: {reply:?}") };
        let mut out: Vec<String> = items
            .into_iter()
            .map(|r| match r {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("not a bulk: {other:?}"),
            })
            .collect();
        out.sort();
        out
    }

    fn set_reply(members: &[&str]) -> Reply {
        Reply::Set(members.iter().map(Reply::bulk).collect())
    }

    fn encoding(ks: &KeySpace, key: &str) -> &'static str {
        ks.get(key.as_bytes(), NOW).expect("key exists").value.encoding()
    }

    fn numbers(from: u32, to: u32) -> String {
        (from..=to).map(|i| i.to_string()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn table_is_sorted_and_write_flags_match_the_operations() {
        assert!(COMMANDS.windows(2).all(|w| w[0].meta.name < w[1].meta.name));
        let lines = [
            "sadd k a",
            "srem k a",
            "smembers k",
            "sismember k a",
            "smismember k a",
            "scard k",
            "spop k",
            "spop k 2",
            "srandmember k",
            "srandmember k 2",
            "smove k j a",
            "sinter k",
            "sintercard 1 k",
            "sinterstore d k",
            "sunion k",
            "sunionstore d k",
            "sdiff k",
            "sdiffstore d k",
            "sscan k 0",
        ];
        for line in lines {
            let name = line.split(' ').next().unwrap();
            let meta = &COMMANDS.iter().find(|c| c.meta.name == name).unwrap().meta;
            let Ok(Op::Set(op)) = p(line) else { panic!("{line}") };
            assert_eq!(meta.is_write(), op.is_write(), "{line}");
        }
    }

    #[test]
    fn sadd_srem_scard_and_membership() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, "sadd s a b c"), Reply::Int(3));
        assert_eq!(run(&mut ks, "sadd s a d d e"), Reply::Int(2));
        assert_eq!(run(&mut ks, "scard s"), Reply::Int(5));
        assert_eq!(run(&mut ks, "sismember s d"), Reply::Int(1));
        assert_eq!(run(&mut ks, "sismember s z"), Reply::Int(0));
        assert_eq!(run(&mut ks, "sismember missing a"), Reply::Int(0));
        assert_eq!(
            run(&mut ks, "smismember s a nope b a"),
            Reply::Array(vec![Reply::Int(1), Reply::Int(0), Reply::Int(1), Reply::Int(1)])
        );
        assert_eq!(run(&mut ks, "smismember missing a b"), Reply::Array(vec![Reply::Int(0), Reply::Int(0)]));
        assert_eq!(sorted(run(&mut ks, "smembers s")), ["a", "b", "c", "d", "e"]);
        assert_eq!(run(&mut ks, "smembers missing"), Reply::Set(vec![]));
        assert_eq!(run(&mut ks, "srem s a b nope a"), Reply::Int(2));
        assert_eq!(run(&mut ks, "srem missing a"), Reply::Int(0));
        assert_eq!(run(&mut ks, "srem s c d e"), Reply::Int(3));
        assert!(ks.get(b"s", NOW).is_none(), "an emptied set is deleted");
        assert_eq!(run(&mut ks, "scard s"), Reply::Int(0));
    }

    #[test]
    fn a_write_that_changes_nothing_leaves_the_key_alone_and_the_ttl_is_kept() {
        let mut ks = KeySpace::new();
        run(&mut ks, "sadd s a b");
        let slot = ks.slot_of(b"s").unwrap();
        ks.set_expire(slot, NOW + 100_000);
        let seq = ks.seq();
        assert_eq!(run(&mut ks, "sadd s a b a"), Reply::Int(0));
        assert_eq!(run(&mut ks, "srem s x y"), Reply::Int(0));
        assert_eq!(run(&mut ks, "smove s t nope"), Reply::Int(0));
        assert_eq!(ks.seq(), seq, "no change, no modification for WATCH");
        assert_eq!(run(&mut ks, "sadd s c"), Reply::Int(1));
        assert_eq!(run(&mut ks, "srem s a"), Reply::Int(1));
        let mut copy = KeySpace::from_image(ks.to_image());
        let popped = run_seeded(&mut copy, "spop s", 3);
        assert_eq!(run_seeded(&mut ks, "spop s", 3), popped, "the seed decides");
        assert_eq!(ks.get(b"s", NOW).map(|e| e.expire_at), Some(NOW + 100_000));
        // An expired key is a missing one for a write: the new set has no TTL.
        let mut ks = KeySpace::new();
        ks.set(b"e", Value::Set(Box::new(build([&b"old"[..]]))), NOW - 1);
        assert_eq!(run(&mut ks, "sadd e x"), Reply::Int(1));
        assert_eq!(
            ks.get(b"e", NOW).map(|e| (e.expire_at, e.value.clone())),
            Some((0, Value::Set(Box::new(build([&b"x"[..]])))))
        );
    }

    #[test]
    fn encodings_follow_redis_7_0() {
        let mut ks = KeySpace::new();
        run(&mut ks, "sadd s 1 -5 100");
        assert_eq!(encoding(&ks, "s"), "intset");
        run(&mut ks, "sadd s a");
        assert_eq!(encoding(&ks, "s"), "hashtable");
        run(&mut ks, "srem s a");
        assert_eq!(encoding(&ks, "s"), "hashtable", "never converted back");
        run(&mut ks, "sadd t a b");
        assert_eq!(encoding(&ks, "t"), "hashtable");
        for (member, enc) in [
            ("01", "hashtable"),
            ("9223372036854775808", "hashtable"),
            ("-9223372036854775808", "intset"),
            ("9223372036854775807", "intset"),
            ("-0", "hashtable"),
            ("+1", "hashtable"),
            ("0", "intset"),
        ] {
            let mut ks = KeySpace::new();
            run(&mut ks, &format!("sadd u {member}"));
            assert_eq!(encoding(&ks, "u"), enc, "{member}");
        }
        let mut ks = KeySpace::new();
        ks.set(b"v", Value::Set(Box::new(build([&b" 1"[..]]))), 0);
        assert_eq!(encoding(&ks, "v"), "hashtable");
        run(&mut ks, &format!("sadd n {}", numbers(1, 512)));
        assert_eq!(encoding(&ks, "n"), "intset");
        run(&mut ks, "sadd n 513");
        assert_eq!(encoding(&ks, "n"), "hashtable");
        assert_eq!(run(&mut ks, &format!("sadd m {}", numbers(1, 513))), Reply::Int(513));
        assert_eq!(encoding(&ks, "m"), "hashtable");
    }

    #[test]
    fn an_intset_lists_its_members_in_numeric_order() {
        let mut ks = KeySpace::new();
        run(&mut ks, "sadd s 10 -3 2 100 0");
        assert_eq!(run(&mut ks, "smembers s"), set_reply(&["-3", "0", "2", "10", "100"]));
        assert_eq!(
            run(&mut ks, "sscan s 0"),
            Reply::Array(vec![Reply::bulk("0"), Reply::Array(bulks([&b"-3"[..], b"0", b"2", b"10", b"100"]))])
        );
        assert_eq!(run(&mut ks, "srandmember s 10"), Reply::Array(bulks([&b"-3"[..], b"0", b"2", b"10", b"100"])));
    }

    #[test]
    fn wrongtype_for_every_command_on_another_type() {
        let mut ks = KeySpace::new();
        ks.set(b"k", Value::Str(b"v".to_vec()), 0);
        run(&mut ks, "sadd s a");
        let wrong: Reply = Error::WrongType.into();
        for line in [
            "sadd k a",
            "srem k a",
            "smembers k",
            "sismember k a",
            "smismember k a",
            "scard k",
            "spop k",
            "spop k 2",
            "spop k 0",
            "srandmember k",
            "srandmember k -2",
            "srandmember k 0",
            "sscan k 0",
            "sscan k 0 COUNT 0",
            "sinter s k",
            "sinter missing k",
            "sintercard 2 s k",
            "sinterstore d s k",
            "sunion s k",
            "sunionstore d s k",
            "sdiff s k",
            "sdiff missing k",
            "sdiffstore d s k",
            "smove s k a",
            "smove k s a",
            "smove s k nope",
            "smove k k a",
        ] {
            assert_eq!(run(&mut ks, line), wrong, "{line}");
        }
        assert!(ks.get(b"d", NOW).is_none());
        assert_eq!(run(&mut ks, "smove missing k a"), Reply::Int(0), "a missing source wins");
        assert_eq!(run(&mut ks, "sismember s a"), Reply::Int(1));
    }

    #[test]
    fn spop_forms() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, "spop missing"), Reply::Nil);
        assert_eq!(run(&mut ks, "spop missing 3"), Reply::Set(vec![]));
        run(&mut ks, "sadd s only");
        assert_eq!(run(&mut ks, "spop s 0"), Reply::Set(vec![]));
        assert_eq!(run(&mut ks, "spop s -1"), Error::NotPositive.into());
        assert_eq!(run(&mut ks, "spop s x"), Error::NotPositive.into());
        assert_eq!(run(&mut ks, "spop s 1 2"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "spop s"), Reply::bulk("only"));
        assert!(ks.get(b"s", NOW).is_none());
        run(&mut ks, "sadd s 3 1 2");
        assert_eq!(run(&mut ks, "spop s 10"), set_reply(&["1", "2", "3"]));
        assert!(ks.get(b"s", NOW).is_none());
        // One by one (few popped) and by rebuilding (most popped): the right counts, distinct.
        for (count, left) in [(3u32, 97u32), (90, 10)] {
            let mut ks = KeySpace::new();
            run(&mut ks, &format!("sadd s {}", numbers(1, 100)));
            let popped = sorted(run(&mut ks, &format!("spop s {count}")));
            assert_eq!(popped.len() as u32, count);
            assert!(popped.windows(2).all(|w| w[0] != w[1]));
            assert_eq!(run(&mut ks, "scard s"), Reply::Int(left as i64));
            for m in &popped {
                assert_eq!(run(&mut ks, &format!("sismember s {m}")), Reply::Int(0));
            }
        }
    }

    #[test]
    fn spop_that_rebuilds_the_set_reencodes_it() {
        // Like Redis, SPOP of all but a few members builds a new set from the remaining ones.
        let mut ks = KeySpace::new();
        run(&mut ks, &format!("sadd s a {}", numbers(1, 10)));
        assert_eq!(encoding(&ks, "s"), "hashtable");
        let popped = sorted(run_seeded(&mut ks, "spop s 10", 11));
        assert_eq!(popped.len(), 10);
        let left = sorted(run(&mut ks, "smembers s"));
        assert_eq!(left.len(), 1);
        assert_eq!(encoding(&ks, "s"), if left[0] == "a" { "hashtable" } else { "intset" });
        // Popping a few one by one keeps the encoding.
        let mut ks = KeySpace::new();
        run(&mut ks, &format!("sadd s a {}", numbers(1, 10)));
        run(&mut ks, "spop s 2");
        assert_eq!(encoding(&ks, "s"), "hashtable");
    }

    #[test]
    fn randomness_comes_from_the_seed_only() {
        let build_ks = || {
            let mut ks = KeySpace::new();
            run(&mut ks, &format!("sadd s x {}", numbers(1, 1000)));
            ks
        };
        for line in [
            "spop s",
            "spop s 5",
            "spop s 900",
            "srandmember s",
            "srandmember s 5",
            "srandmember s -50",
            "srandmember s 600",
        ] {
            let (mut a, mut b) = (build_ks(), build_ks());
            // The replica rebuilt from a snapshot picks the same members.
            let mut b = KeySpace::from_image(std::mem::take(&mut b).to_image());
            assert_eq!(run_seeded(&mut a, line, 42), run_seeded(&mut b, line, 42), "{line}");
            assert_eq!(crate::sm::digest(&a), crate::sm::digest(&b), "{line}");
        }
        let mut ks = build_ks();
        assert_ne!(run_seeded(&mut ks, "srandmember s 5", 1), run_seeded(&mut ks, "srandmember s 5", 2));
    }

    #[test]
    fn random_picks_reach_every_member_about_evenly() {
        for size in [10u32, 200, 5000] {
            let mut set = Dict::new();
            for i in 0..size {
                add(&mut set, format!("m{i}").as_bytes());
            }
            let mut counts = std::collections::HashMap::new();
            let draws = size as usize * 200;
            for seed in 0..draws as u64 {
                *counts.entry(random_member(&set, &mut Rng::new(seed)).to_vec()).or_insert(0usize) += 1;
            }
            assert_eq!(counts.len(), size as usize, "every member is picked");
            let (min, max) = (counts.values().min().unwrap(), counts.values().max().unwrap());
            assert!(*min > 200 / 4 && *max < 200 * 3, "size {size}: {min}..{max}");
        }
    }

    #[test]
    fn srandmember_forms() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, "srandmember missing"), Reply::Nil);
        assert_eq!(run(&mut ks, "srandmember missing 3"), Reply::Array(vec![]));
        assert_eq!(run(&mut ks, "srandmember missing -3"), Reply::Array(vec![]));
        run(&mut ks, "sadd s only");
        assert_eq!(run(&mut ks, "srandmember s"), Reply::bulk("only"));
        assert_eq!(run(&mut ks, "srandmember s -3"), Reply::Array(vec![Reply::bulk("only"); 3]));
        assert_eq!(run(&mut ks, "srandmember s 0"), Reply::Array(vec![]));
        assert_eq!(run(&mut ks, "srandmember s 5"), Reply::Array(vec![Reply::bulk("only")]));
        assert_eq!(run(&mut ks, "srandmember s x"), Error::NotInteger.into());
        assert_eq!(run(&mut ks, "srandmember s 1 2"), Error::Syntax.into());
        assert_eq!(
            run(&mut ks, "srandmember s -9223372036854775808"),
            Reply::err("ERR value is out of range, value must between -1000000 and 9223372036854775807")
        );
        assert!(!run(&mut ks, "srandmember s -1000000").is_error());
        run(&mut ks, &format!("sadd n {}", numbers(1, 100)));
        for (count, distinct) in [(10i64, true), (60, true), (-150, false)] {
            let got = sorted(run(&mut ks, &format!("srandmember n {count}")));
            assert_eq!(got.len() as u64, count.unsigned_abs());
            if distinct {
                assert!(got.windows(2).all(|w| w[0] != w[1]), "{count}");
            }
        }
        assert_eq!(run(&mut ks, "scard n"), Reply::Int(100), "a read");
    }

    #[test]
    fn smove_cases() {
        let mut ks = KeySpace::new();
        run(&mut ks, "sadd src a b");
        run(&mut ks, "sadd dst c");
        assert_eq!(run(&mut ks, "smove src dst a"), Reply::Int(1));
        assert_eq!(sorted(run(&mut ks, "smembers src")), ["b"]);
        assert_eq!(sorted(run(&mut ks, "smembers dst")), ["a", "c"]);
        assert_eq!(run(&mut ks, "smove src dst nope"), Reply::Int(0));
        assert_eq!(run(&mut ks, "smove missing dst a"), Reply::Int(0));
        assert_eq!(run(&mut ks, "smove src src b"), Reply::Int(1));
        assert_eq!(run(&mut ks, "smove src src a"), Reply::Int(0));
        assert_eq!(run(&mut ks, "smove missing missing a"), Reply::Int(0));
        // Already in the destination: removed from the source only.
        run(&mut ks, "sadd src c");
        let slot = ks.slot_of(b"dst").unwrap();
        let dst_seq = ks.at(slot).unwrap().seq;
        assert_eq!(run(&mut ks, "smove src dst c"), Reply::Int(1));
        assert_eq!(ks.at(slot).unwrap().seq, dst_seq, "the destination is untouched");
        assert_eq!(sorted(run(&mut ks, "smembers dst")), ["a", "c"]);
        // The last member: the source goes, the destination is created (an intset for "1").
        run(&mut ks, "sadd one 1");
        assert_eq!(run(&mut ks, "smove one new 1"), Reply::Int(1));
        assert!(ks.get(b"one", NOW).is_none());
        assert_eq!(encoding(&ks, "new"), "intset");
        assert_eq!(run(&mut ks, "smove src new b"), Reply::Int(1));
        assert_eq!(encoding(&ks, "new"), "hashtable");
    }

    #[test]
    fn algebra() {
        let mut ks = KeySpace::new();
        run(&mut ks, "sadd a 1 2 3 x");
        run(&mut ks, "sadd b 2 3 4 x");
        run(&mut ks, "sadd c 3 x 9");
        assert_eq!(sorted(run(&mut ks, "sinter a b c")), ["3", "x"]);
        assert_eq!(sorted(run(&mut ks, "sinter a")), ["1", "2", "3", "x"]);
        assert_eq!(run(&mut ks, "sinter a missing"), Reply::Set(vec![]));
        assert_eq!(run(&mut ks, "sinter missing a"), Reply::Set(vec![]));
        assert_eq!(run(&mut ks, "sinter a a"), run(&mut ks, "smembers a"));
        assert_eq!(sorted(run(&mut ks, "sunion a b missing")), ["1", "2", "3", "4", "x"]);
        assert_eq!(run(&mut ks, "sunion missing"), Reply::Set(vec![]));
        assert_eq!(sorted(run(&mut ks, "sdiff a b c")), ["1"]);
        assert_eq!(sorted(run(&mut ks, "sdiff a missing")), ["1", "2", "3", "x"]);
        assert_eq!(run(&mut ks, "sdiff missing a"), Reply::Set(vec![]));
        assert_eq!(run(&mut ks, "sdiff a a"), Reply::Set(vec![]));
        assert_eq!(run(&mut ks, "sintercard 2 a b"), Reply::Int(3));
        assert_eq!(run(&mut ks, "sintercard 2 a b LIMIT 2"), Reply::Int(2));
        assert_eq!(run(&mut ks, "sintercard 2 a b limit\\0x 0"), Reply::Int(3));
        assert_eq!(run(&mut ks, "sintercard 2 a b LIMIT 100"), Reply::Int(3));
        assert_eq!(run(&mut ks, "sintercard 1 a"), Reply::Int(4));
        assert_eq!(run(&mut ks, "sintercard 2 a missing"), Reply::Int(0));
    }

    #[test]
    fn sintercard_argument_errors() {
        let numkeys = Err(Error::msg("ERR numkeys should be greater than 0"));
        assert_eq!(p("sintercard 0 a"), numkeys);
        assert_eq!(p("sintercard -1 a"), numkeys);
        assert_eq!(p("sintercard x a"), numkeys);
        assert_eq!(p("sintercard 3 a b"), Err(Error::msg("ERR Number of keys can't be greater than number of args")));
        assert_eq!(p("sintercard 1 a LIMIT -1"), Err(Error::msg("ERR LIMIT can't be negative")));
        assert_eq!(p("sintercard 1 a LIMIT x"), Err(Error::msg("ERR LIMIT can't be negative")));
        assert_eq!(p("sintercard 1 a LIMIT"), Err(Error::Syntax));
        assert_eq!(p("sintercard 1 a FOO 1"), Err(Error::Syntax));
        assert_eq!(
            p("sintercard 2 a b LIMIT 1 LIMIT 5"),
            Ok(Op::Set(SetOp::InterCard { keys: vec![b("a"), b("b")], limit: 5 }))
        );
    }

    #[test]
    fn store_forms_replace_the_destination() {
        let mut ks = KeySpace::new();
        run(&mut ks, "sadd a 1 2 3");
        run(&mut ks, "sadd b 2 3 4");
        ks.set(b"dst", Value::Str(b"v".to_vec()), NOW + 5000);
        assert_eq!(run(&mut ks, "sinterstore dst a b"), Reply::Int(2));
        assert_eq!(ks.get(b"dst", NOW).map(|e| e.expire_at), Some(0), "no TTL kept");
        assert_eq!(run(&mut ks, "smembers dst"), set_reply(&["2", "3"]));
        assert_eq!(encoding(&ks, "dst"), "intset");
        assert_eq!(run(&mut ks, "sunionstore dst a b"), Reply::Int(4));
        assert_eq!(run(&mut ks, "sdiffstore dst a b"), Reply::Int(1));
        assert_eq!(run(&mut ks, "smembers dst"), set_reply(&["1"]));
        // An empty result deletes the destination.
        assert_eq!(run(&mut ks, "sinterstore dst a missing"), Reply::Int(0));
        assert!(ks.get(b"dst", NOW).is_none());
        run(&mut ks, "sadd dst x");
        assert_eq!(run(&mut ks, "sdiffstore dst missing a"), Reply::Int(0));
        assert!(ks.get(b"dst", NOW).is_none());
        assert_eq!(run(&mut ks, "sunionstore dst missing"), Reply::Int(0));
        // The destination among the sources.
        assert_eq!(run(&mut ks, "sinterstore a a b"), Reply::Int(2));
        assert_eq!(run(&mut ks, "sunionstore a a b"), Reply::Int(3));
        assert_eq!(run(&mut ks, "smembers a"), set_reply(&["2", "3", "4"]));
        assert_eq!(run(&mut ks, "sdiffstore a a b"), Reply::Int(0));
        assert!(ks.get(b"a", NOW).is_none());
    }

    #[test]
    fn store_results_are_encoded_as_redis_builds_them() {
        let mut ks = KeySpace::new();
        // An intersection of integers from hashtables is an intset.
        run(&mut ks, "sadd h a 1 2 3");
        run(&mut ks, "sadd i b 2 3");
        run(&mut ks, "sinterstore d h i");
        assert_eq!(encoding(&ks, "d"), "intset");
        // SDIFF's second algorithm (first set large against the others) adds the whole first
        // set before removing: a hashtable, as in Redis; the first algorithm gives an intset.
        run(&mut ks, &format!("sadd a x {}", numbers(1, 9)));
        run(&mut ks, "sadd b x");
        run(&mut ks, "sadd c 100");
        assert_eq!(run(&mut ks, "sdiffstore d a b c"), Reply::Int(9));
        assert_eq!(encoding(&ks, "d"), "hashtable");
        assert_eq!(run(&mut ks, "sdiffstore d a b"), Reply::Int(9));
        assert_eq!(encoding(&ks, "d"), "intset");
        // A union of more than 512 integers is a hashtable.
        run(&mut ks, &format!("sadd u1 {}", numbers(1, 300)));
        run(&mut ks, &format!("sadd u2 {}", numbers(301, 600)));
        run(&mut ks, "sunionstore d u1 u2");
        assert_eq!(encoding(&ks, "d"), "hashtable");
    }

    #[test]
    fn sscan_of_intsets_and_hashtables() {
        let mut ks = KeySpace::new();
        let empty = Reply::Array(vec![Reply::bulk("0"), Reply::Array(vec![])]);
        assert_eq!(run(&mut ks, "sscan missing 0"), empty);
        assert_eq!(run(&mut ks, "sscan missing 0 COUNT 0"), empty, "options are read after the key");
        assert_eq!(run(&mut ks, "sscan missing x"), Error::InvalidCursor.into());
        run(&mut ks, "sadd s user:1 user:2 admin");
        assert_eq!(run(&mut ks, "sscan s 0 COUNT 0"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "sscan s 0 COUNT x"), Error::NotInteger.into());
        assert_eq!(run(&mut ks, "sscan s 0 foo"), Error::Syntax.into());
        assert_eq!(
            run(&mut ks, "sscan s 0 MATCH adm?n"),
            Reply::Array(vec![Reply::bulk("0"), Reply::Array(vec![Reply::bulk("admin")])])
        );
        // A large hashtable takes several steps; every member is seen exactly once.
        run(&mut ks, &format!("sadd big x {}", numbers(1, 999)));
        let mut cursor = "0".to_string();
        let mut seen = Vec::new();
        let mut steps = 0;
        loop {
            let Reply::Array(parts) = run(&mut ks, &format!("sscan big {cursor} COUNT 50")) else { panic!() };
            let Reply::Bulk(next) = &parts[0] else { panic!() };
            seen.extend(sorted(parts[1].clone()));
            steps += 1;
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert!(steps > 10);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 1000);
        // An intset is returned whole whatever the cursor and COUNT.
        run(&mut ks, &format!("sadd ints {}", numbers(1, 100)));
        let Reply::Array(parts) = run(&mut ks, "sscan ints 12345 COUNT 1") else { panic!() };
        assert_eq!(parts[0], Reply::bulk("0"));
        assert_eq!(sorted(parts[1].clone()).len(), 100);
    }

    #[test]
    fn binary_and_empty_members() {
        let mut ks = KeySpace::new();
        let members = vec![b("a\0b"), b(""), Bytes::from_static(b"\xff\r\n")];
        let add = SetOp::Add { key: b("s"), members: members.clone() };
        assert_eq!(Op::Set(add).apply(&mut ks, Ctx { now: NOW, seed: 0 }), Reply::Int(3));
        for m in &members {
            let q = SetOp::IsMember { key: b("s"), member: m.clone() };
            assert_eq!(Op::Set(q).query(&ks, Ctx { now: NOW, seed: 0 }), Reply::Int(1));
        }
        assert_eq!(encoding(&ks, "s"), "hashtable");
    }
}
