//! The sorted set commands: ZADD and ZINCRBY, ZREM, scores, ranks and counts, the ZRANGE family
//! (by rank, score and lex, reversed, limited, stored), the ZREMRANGE family, ZPOPMIN/ZPOPMAX and
//! ZMPOP, ZRANDMEMBER, the algebra (ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD) and
//! ZSCAN, with Redis 7.0's replies, errors and encodings.
//!
//! Encodings follow Redis 7.0: a sorted set is a `listpack` until adding a member makes it hold
//! more than 128 members or the member is longer than 64 bytes, and a `skiplist` for good then
//! ([`Dict::big`] of the members). A listpack stores a whole score as an integer, so it keeps no
//! negative zero (`-0` is stored as `0`); a skiplist keeps the double as given.
//!
//! Scores print as Redis 7.0 prints doubles ([`format_score`], C's `%.17g`). Arguments that are
//! floats are read with C's `strtod`, as Redis reads them (hexadecimal floats included).
//!
//! ZRANDMEMBER draws its randomness from the request's seed only, so every replica picks the
//! same members.

use super::notify::{notify, GENERIC, ZSET};
use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::args::{c_str, eq, int, parse_cursor, redis_float, scan_args, strtod, timeout_millis, Rng};
use super::meta::*;
use super::sets::MAX_REPEATED;
use super::{Ctx, DataCommand, Error, Op, Result};
use crate::data;
use crate::resp::{parse_i64, Reply};
use crate::sm::{glob_matches, Dict, KeySpace, Score, ShortBytes, Value, ZSet};

const ZRF: &[&str] = &["@read", "@sortedset", "@fast"];
const ZRS: &[&str] = &["@read", "@sortedset", "@slow"];
const ZWF: &[&str] = &["@write", "@sortedset", "@fast"];
const ZWS: &[&str] = &["@write", "@sortedset", "@slow"];
const ZWFB: &[&str] = &["@write", "@sortedset", "@fast", "@blocking"];
const ZWSB: &[&str] = &["@write", "@sortedset", "@slow", "@blocking"];
/// Flags of the commands that take `numkeys` keys.
const RM: &[&str] = &["readonly", "movablekeys"];
const WM: &[&str] = &["write", "denyoom", "movablekeys"];
const WDM: &[&str] = &["write", "movablekeys"];

/// The sorted set commands, sorted by name.
#[rustfmt::skip]
pub const COMMANDS: &[DataCommand] = &[
    data!("bzmpop", -5, BLOCKING_MOVABLE, 0, 0, 0, ZWSB, "sorted-set", "7.0.0", parse::bzmpop, "Remove and return members with scores in a sorted set or block until one is available").keynum(2, 3).blocking(1, false, true),
    data!("bzpopmax", -3, BLOCKING_FAST, 1, -2, 1, ZWFB, "sorted-set", "5.0.0", parse::bzpopmax, "Remove and return the member with the highest score from one or more sorted sets, or block until one is available").blocking(-1, false, true),
    data!("bzpopmin", -3, BLOCKING_FAST, 1, -2, 1, ZWFB, "sorted-set", "5.0.0", parse::bzpopmin, "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available").blocking(-1, false, true),
    data!("zadd", -4, WF, 1, 1, 1, ZWF, "sorted-set", "1.2.0", parse::zadd, "Add one or more members to a sorted set, or update its score if it already exists"),
    data!("zcard", 2, R, 1, 1, 1, ZRF, "sorted-set", "1.2.0", parse::zcard, "Get the number of members in a sorted set"),
    data!("zcount", 4, R, 1, 1, 1, ZRF, "sorted-set", "2.0.0", parse::zcount, "Count the members in a sorted set with scores within the given values"),
    data!("zdiff", -3, RM, 0, 0, 0, ZRS, "sorted-set", "6.2.0", parse::zdiff, "Subtract multiple sorted sets").keynum(1, 2),
    data!("zdiffstore", -4, WM, 1, 1, 1, ZWS, "sorted-set", "6.2.0", parse::zdiffstore, "Subtract multiple sorted sets and store the resulting sorted set in a new key").keynum(2, 3),
    data!("zincrby", 4, WF, 1, 1, 1, ZWF, "sorted-set", "1.2.0", parse::zincrby, "Increment the score of a member in a sorted set"),
    data!("zinter", -3, RM, 0, 0, 0, ZRS, "sorted-set", "6.2.0", parse::zinter, "Intersect multiple sorted sets").keynum(1, 2),
    data!("zintercard", -3, RM, 0, 0, 0, ZRS, "sorted-set", "7.0.0", parse::zintercard, "Intersect multiple sorted sets and return the cardinality of the result").keynum(1, 2),
    data!("zinterstore", -4, WM, 1, 1, 1, ZWS, "sorted-set", "2.0.0", parse::zinterstore, "Intersect multiple sorted sets and store the resulting sorted set in a new key").keynum(2, 3),
    data!("zlexcount", 4, R, 1, 1, 1, ZRF, "sorted-set", "2.8.9", parse::zlexcount, "Count the number of members in a sorted set between a given lexicographical range"),
    data!("zmpop", -4, WDM, 0, 0, 0, ZWS, "sorted-set", "7.0.0", parse::zmpop, "Remove and return members with scores in a sorted set").keynum(1, 2),
    data!("zmscore", -3, R, 1, 1, 1, ZRF, "sorted-set", "6.2.0", parse::zmscore, "Get the score associated with the given members in a sorted set"),
    data!("zpopmax", -2, WD, 1, 1, 1, ZWF, "sorted-set", "5.0.0", parse::zpopmax, "Remove and return members with the highest scores in a sorted set"),
    data!("zpopmin", -2, WD, 1, 1, 1, ZWF, "sorted-set", "5.0.0", parse::zpopmin, "Remove and return members with the lowest scores in a sorted set"),
    data!("zrandmember", -2, RS, 1, 1, 1, ZRS, "sorted-set", "6.2.0", parse::zrandmember, "Get one or multiple random elements from a sorted set"),
    data!("zrange", -4, RS, 1, 1, 1, ZRS, "sorted-set", "1.2.0", parse::zrange, "Return a range of members in a sorted set"),
    data!("zrangebylex", -4, RS, 1, 1, 1, ZRS, "sorted-set", "2.8.9", parse::zrangebylex, "Return a range of members in a sorted set, by lexicographical range"),
    data!("zrangebyscore", -4, RS, 1, 1, 1, ZRS, "sorted-set", "1.0.5", parse::zrangebyscore, "Return a range of members in a sorted set, by score"),
    data!("zrangestore", -5, W, 1, 2, 1, ZWS, "sorted-set", "6.2.0", parse::zrangestore, "Store a range of members from sorted set into another key"),
    data!("zrank", 3, R, 1, 1, 1, ZRF, "sorted-set", "2.0.0", parse::zrank, "Determine the index of a member in a sorted set"),
    data!("zrem", -3, WD, 1, 1, 1, ZWF, "sorted-set", "1.2.0", parse::zrem, "Remove one or more members from a sorted set"),
    data!("zremrangebylex", 4, WS, 1, 1, 1, ZWS, "sorted-set", "2.8.9", parse::zremrangebylex, "Remove all members in a sorted set between the given lexicographical range"),
    data!("zremrangebyrank", 4, WS, 1, 1, 1, ZWS, "sorted-set", "2.0.0", parse::zremrangebyrank, "Remove all members in a sorted set within the given indexes"),
    data!("zremrangebyscore", 4, WS, 1, 1, 1, ZWS, "sorted-set", "1.2.0", parse::zremrangebyscore, "Remove all members in a sorted set within the given scores"),
    data!("zrevrange", -4, RS, 1, 1, 1, ZRS, "sorted-set", "1.2.0", parse::zrevrange, "Return a range of members in a sorted set, by index, with scores ordered from high to low"),
    data!("zrevrangebylex", -4, RS, 1, 1, 1, ZRS, "sorted-set", "2.8.9", parse::zrevrangebylex, "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings."),
    data!("zrevrangebyscore", -4, RS, 1, 1, 1, ZRS, "sorted-set", "2.2.0", parse::zrevrangebyscore, "Return a range of members in a sorted set, by score, with scores ordered from high to low"),
    data!("zrevrank", 3, R, 1, 1, 1, ZRF, "sorted-set", "2.0.0", parse::zrevrank, "Determine the index of a member in a sorted set, with scores ordered from high to low"),
    data!("zscan", -3, RS, 1, 1, 1, ZRS, "sorted-set", "2.8.0", parse::zscan, "Incrementally iterate sorted sets elements and associated scores"),
    data!("zscore", 3, R, 1, 1, 1, ZRF, "sorted-set", "1.2.0", parse::zscore, "Get the score associated with the given member in a sorted set"),
    data!("zunion", -3, RM, 0, 0, 0, ZRS, "sorted-set", "6.2.0", parse::zunion, "Add multiple sorted sets").keynum(1, 2),
    data!("zunionstore", -4, WM, 1, 1, 1, ZWS, "sorted-set", "2.0.0", parse::zunionstore, "Add multiple sorted sets and store the resulting sorted set in a new key").keynum(2, 3),
];

/// Which algebra: ZUNION, ZINTER or ZDIFF (and their STORE forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algebra {
    Union,
    Inter,
    Diff,
}

impl Algebra {
    fn name(self, store: bool) -> &'static str {
        match (self, store) {
            (Algebra::Union, false) => "zunion",
            (Algebra::Union, true) => "zunionstore",
            (Algebra::Inter, false) => "zinter",
            (Algebra::Inter, true) => "zinterstore",
            (Algebra::Diff, false) => "zdiff",
            (Algebra::Diff, true) => "zdiffstore",
        }
    }
}

/// A score interval as ZRANGEBYSCORE reads it: `(` makes a bound exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreRange {
    pub min: f64,
    pub minex: bool,
    pub max: f64,
    pub maxex: bool,
}

impl ScoreRange {
    fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }

    fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }
}

/// One end of a lexicographical interval: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LexBound {
    /// `-`: before every string.
    Min,
    /// `+`: after every string.
    Max,
    /// `[value` (inclusive) or `(value` (exclusive).
    Value { value: Bytes, exclusive: bool },
}

impl LexBound {
    fn exclusive(&self) -> bool {
        match self {
            LexBound::Min | LexBound::Max => true,
            LexBound::Value { exclusive, .. } => *exclusive,
        }
    }
}

/// A lexicographical interval, as ZRANGEBYLEX reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    fn gte_min(&self, v: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Value { value, exclusive: true } => v > &value[..],
            LexBound::Value { value, exclusive: false } => v >= &value[..],
        }
    }

    fn lte_max(&self, v: &[u8]) -> bool {
        match &self.max {
            LexBound::Max => true,
            LexBound::Min => false,
            LexBound::Value { value, exclusive: true } => v < &value[..],
            LexBound::Value { value, exclusive: false } => v <= &value[..],
        }
    }

    /// Whether no string can be in the interval (Redis's `sdscmplex` test).
    fn always_empty(&self) -> bool {
        use std::cmp::Ordering::*;
        let cmp = match (&self.min, &self.max) {
            (LexBound::Min, LexBound::Min) | (LexBound::Max, LexBound::Max) => Equal,
            (LexBound::Min, _) | (_, LexBound::Max) => Less,
            (LexBound::Max, _) | (_, LexBound::Min) => Greater,
            (LexBound::Value { value: a, .. }, LexBound::Value { value: b, .. }) => a.cmp(b),
        };
        cmp == Greater || (cmp == Equal && (self.min.exclusive() || self.max.exclusive()))
    }
}

/// What a range selects by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RangeBy {
    /// Indexes (negative ones count from the end).
    Rank {
        start: i64,
        end: i64,
    },
    Score(ScoreRange),
    Lex(LexRange),
}

/// A range of a sorted set: what it selects by, the direction, and LIMIT's offset and count
/// (a negative count: no limit; they only apply to score and lex ranges).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub by: RangeBy,
    pub rev: bool,
    pub offset: i64,
    pub limit: i64,
}

impl Range {
    fn forward(by: RangeBy) -> Range {
        Range { by, rev: false, offset: 0, limit: -1 }
    }
}

/// ZADD's options (ZINCRBY is ZADD INCR).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

/// One sorted set operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ZSetOp {
    // Reads.
    Card(Bytes),
    Score {
        key: Bytes,
        member: Bytes,
    },
    MScore {
        key: Bytes,
        members: Vec<Bytes>,
    },
    Rank {
        key: Bytes,
        member: Bytes,
        rev: bool,
    },
    Count {
        key: Bytes,
        range: ScoreRange,
    },
    LexCount {
        key: Bytes,
        range: LexRange,
    },
    /// ZRANGE and its older forms.
    Range {
        key: Bytes,
        range: Range,
        withscores: bool,
    },
    /// ZRANDMEMBER, with its count if given.
    RandMember {
        key: Bytes,
        count: Option<i64>,
        withscores: bool,
    },
    /// ZUNION, ZINTER, ZDIFF: the keys, and the options after them, which Redis reads only once
    /// every key is found to be a set or a sorted set.
    Combine {
        algebra: Algebra,
        keys: Vec<Bytes>,
        opts: Vec<Bytes>,
    },
    /// ZINTERCARD (options read as for Combine).
    InterCard {
        keys: Vec<Bytes>,
        opts: Vec<Bytes>,
    },
    /// ZSCAN: the cursor (already checked) and the options, read once the key is found.
    Scan {
        key: Bytes,
        args: Vec<Bytes>,
    },
    // Writes.
    /// ZADD and ZINCRBY: the options and the (score, member) pairs.
    Add {
        key: Bytes,
        flags: AddFlags,
        pairs: Vec<(f64, Bytes)>,
    },
    Rem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    /// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
    RemRange {
        key: Bytes,
        by: RangeBy,
    },
    /// ZPOPMIN, ZPOPMAX, with the count if given.
    Pop {
        key: Bytes,
        max: bool,
        count: Option<u64>,
    },
    MPop {
        keys: Vec<Bytes>,
        max: bool,
        count: u64,
    },
    RangeStore {
        dst: Bytes,
        key: Bytes,
        range: Range,
    },
    /// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE.
    Store {
        algebra: Algebra,
        dst: Bytes,
        keys: Vec<Bytes>,
        opts: Vec<Bytes>,
    },
    /// BZPOPMIN and BZPOPMAX once they pop: one member from the first non-empty sorted set of
    /// `keys`.
    PopFirst {
        keys: Vec<Bytes>,
        max: bool,
    },
}

impl ZSetOp {
    /// Whether the operation may change the keyspace.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            ZSetOp::Add { .. }
                | ZSetOp::Rem { .. }
                | ZSetOp::RemRange { .. }
                | ZSetOp::Pop { .. }
                | ZSetOp::MPop { .. }
                | ZSetOp::PopFirst { .. }
                | ZSetOp::RangeStore { .. }
                | ZSetOp::Store { .. }
        )
    }
}

/// Prints a score as Redis 7.0 does (`addReplyDouble`: C's `%.17g`, and `inf`/`-inf`):
/// `0.1` is `0.10000000000000001`, `1e20` is `1e+20`, `3.0` is `3`, a negative zero `-0`.
pub fn format_score(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // 17 significant digits, correctly rounded (ties to even, as glibc's printf).
    let sci = format!("{:.16e}", v);
    let (mantissa, exp) = sci.split_once('e').expect("an exponent");
    let exp: i32 = exp.parse().expect("a decimal exponent");
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let trim = |d: &[u8]| -> String {
        let end = d.iter().rposition(|&c| c != b'0').map_or(0, |i| i + 1);
        String::from_utf8_lossy(&d[..end]).into_owned()
    };
    let mut out = String::with_capacity(24);
    if v < 0.0 {
        out.push('-');
    }
    if !(-4..17).contains(&exp) {
        out.push(digits[0] as char);
        let frac = trim(&digits[1..]);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(&frac);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        out.push_str(std::str::from_utf8(&digits[..int_len]).expect("digits"));
        let frac = trim(&digits[int_len..]);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(&frac);
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&trim(&digits));
    }
    out
}

/// A score as a listpack stores it and ZSCAN of a listpack prints it: a whole number in Redis's
/// safe range as an integer (`1e17` is `100000000000000000`), anything else as [`format_score`].
fn listpack_score_text(v: f64) -> String {
    let lim = (i64::MAX / 2) as f64;
    if v >= -lim && v <= lim && v == v.trunc() {
        (v as i64).to_string()
    } else {
        format_score(v)
    }
}

fn double(v: f64) -> Reply {
    Reply::Double(format_score(v))
}

/// One end of a score interval as Redis's `zslParseRange` reads it: `(` for an exclusive end,
/// then `strtod` up to the end of the C string (which may be empty: 0), not NaN.
fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let s = c_str(arg);
    let (exclusive, body) = match s.first() {
        Some(b'(') => (true, &s[1..]),
        _ => (false, s),
    };
    let (v, read) = strtod(body);
    (read == body.len() && !v.is_nan()).then_some((v, exclusive))
}

fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange> {
    match (score_bound(min), score_bound(max)) {
        (Some((min, minex)), Some((max, maxex))) => Ok(ScoreRange { min, minex, max, maxex }),
        _ => Err(Error::msg("ERR min or max is not a float")),
    }
}

/// One end of a lexicographical interval as Redis's `zslParseLexRangeItem` reads it.
fn lex_bound(arg: &[u8]) -> Option<LexBound> {
    let alone = arg.len() == 1 || arg.get(1) == Some(&0);
    match arg.first() {
        Some(b'+') if alone => Some(LexBound::Max),
        Some(b'-') if alone => Some(LexBound::Min),
        Some(b'(') => Some(LexBound::Value { value: Bytes::copy_from_slice(&arg[1..]), exclusive: true }),
        Some(b'[') => Some(LexBound::Value { value: Bytes::copy_from_slice(&arg[1..]), exclusive: false }),
        _ => None,
    }
}

fn lex_range(min: &[u8], max: &[u8]) -> Result<LexRange> {
    match (lex_bound(min), lex_bound(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(Error::msg("ERR min or max not valid string range item")),
    }
}

/// The argument parsers, one per command, named after it.
mod parse {
    use super::*;

    fn op(op: ZSetOp) -> Result<Op> {
        Ok(Op::ZSet(op))
    }

    fn a(args: &[Bytes], i: usize) -> Bytes {
        args[i].clone()
    }

    /// ZADD and ZINCRBY, checked in Redis's order: the options, the pair count, the options'
    /// compatibility, then every score.
    fn add(args: &[Bytes], incr: bool) -> Result<Op> {
        let mut flags = AddFlags { incr, ..AddFlags::default() };
        let mut i = 2;
        while i < args.len() {
            let o = &args[i];
            if eq(o, "nx") {
                flags.nx = true;
            } else if eq(o, "xx") {
                flags.xx = true;
            } else if eq(o, "ch") {
                flags.ch = true;
            } else if eq(o, "incr") {
                flags.incr = true;
            } else if eq(o, "gt") {
                flags.gt = true;
            } else if eq(o, "lt") {
                flags.lt = true;
            } else {
                break;
            }
            i += 1;
        }
        let elements = args.len() - i;
        if elements == 0 || !elements.is_multiple_of(2) {
            return Err(Error::Syntax);
        }
        let AddFlags { nx, xx, gt, lt, .. } = flags;
        if nx && xx {
            return Err(Error::msg("ERR XX and NX options at the same time are not compatible"));
        }
        if [gt, lt, nx].into_iter().filter(|&o| o).count() > 1 {
            return Err(Error::msg("ERR GT, LT, and/or NX options at the same time are not compatible"));
        }
        if flags.incr && elements > 2 {
            return Err(Error::msg("ERR INCR option supports a single increment-element pair"));
        }
        let pairs = args[i..]
            .chunks(2)
            .map(|p| Ok((redis_float(&p[0]).ok_or(Error::NotFloat)?, p[1].clone())))
            .collect::<Result<Vec<_>>>()?;
        op(ZSetOp::Add { key: a(args, 1), flags, pairs })
    }

    pub fn zadd(args: &[Bytes], _: u64) -> Result<Op> {
        add(args, false)
    }

    pub fn zincrby(args: &[Bytes], _: u64) -> Result<Op> {
        add(args, true)
    }

    pub fn zrem(args: &[Bytes], _: u64) -> Result<Op> {
        op(ZSetOp::Rem { key: a(args, 1), members: args[2..].to_vec() })
    }

    pub fn zcard(args: &[Bytes], _: u64) -> Result<Op> {
        op(ZSetOp::Card(a(args, 1)))
    }

    pub fn zscore(args: &[Bytes], _: u64) -> Result<Op> {
        op(ZSetOp::Score { key: a(args, 1), member: a(args, 2) })
    }

    pub fn zmscore(args: &[Bytes], _: u64) -> Result<Op> {
        op(ZSetOp::MScore { key: a(args, 1), members: args[2..].to_vec() })
    }

    pub fn zrank(args: &[Bytes], _: u64) -> Result<Op> {
        op(ZSetOp::Rank { key: a(args, 1), member: a(args, 2), rev: false })
    }

    pub fn zrevrank(args: &[Bytes], _: u64) -> Result<Op> {
        op(ZSetOp::Rank { key: a(args, 1), member: a(args, 2), rev: true })
    }

    pub fn zcount(args: &[Bytes], _: u64) -> Result<Op> {
        op(ZSetOp::Count { key: a(args, 1), range: score_range(&args[2], &args[3])? })
    }

    pub fn zlexcount(args: &[Bytes], _: u64) -> Result<Op> {
        op(ZSetOp::LexCount { key: a(args, 1), range: lex_range(&args[2], &args[3])? })
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum By {
        Rank,
        Score,
        Lex,
    }

    /// `<src> <min> <max> [BYSCORE | BYLEX] [REV] [WITHSCORES] [LIMIT offset count]` from
    /// `args[src]` on, as Redis's `zrangeGenericCommand` reads it; `by` and `rev` are fixed by
    /// the older commands (ZRANGEBYSCORE, ZREVRANGE...), which then refuse those options.
    fn range(args: &[Bytes], src: usize, store: bool, by: Option<By>, rev: Option<bool>) -> Result<(Range, bool)> {
        let (mut by, mut rev) = (by, rev);
        let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
        let mut j = src + 3;
        while j < args.len() {
            let left = args.len() - j - 1;
            let o = &args[j];
            if !store && eq(o, "withscores") {
                withscores = true;
            } else if eq(o, "limit") && left >= 2 {
                offset = int(&args[j + 1])?;
                limit = int(&args[j + 2])?;
                j += 2;
            } else if rev.is_none() && eq(o, "rev") {
                rev = Some(true);
            } else if by.is_none() && eq(o, "bylex") {
                by = Some(By::Lex);
            } else if by.is_none() && eq(o, "byscore") {
                by = Some(By::Score);
            } else {
                return Err(Error::Syntax);
            }
            j += 1;
        }
        let rev = rev.unwrap_or(false);
        let by = by.unwrap_or(By::Rank);
        if limit != -1 && by == By::Rank {
            return Err(Error::msg(
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if withscores && by == By::Lex {
            return Err(Error::msg("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
        }
        let (mut min, mut max) = (&args[src + 1], &args[src + 2]);
        if rev && by != By::Rank {
            std::mem::swap(&mut min, &mut max);
        }
        let by = match by {
            By::Rank => RangeBy::Rank { start: int(min)?, end: int(max)? },
            By::Score => RangeBy::Score(score_range(min, max)?),
            By::Lex => RangeBy::Lex(lex_range(min, max)?),
        };
        Ok((Range { by, rev, offset, limit }, withscores))
    }

    fn read_range(args: &[Bytes], by: Option<By>, rev: Option<bool>) -> Result<Op> {
        let (range, withscores) = range(args, 1, false, by, rev)?;
        op(ZSetOp::Range { key: a(args, 1), range, withscores })
    }

    pub fn zrange(args: &[Bytes], _: u64) -> Result<Op> {
        read_range(args, None, None)
    }

    pub fn zrevrange(args: &[Bytes], _: u64) -> Result<Op> {
        read_range(args, Some(By::Rank), Some(true))
    }

    pub fn zrangebyscore(args: &[Bytes], _: u64) -> Result<Op> {
        read_range(args, Some(By::Score), Some(false))
    }

    pub fn zrevrangebyscore(args: &[Bytes], _: u64) -> Result<Op> {
        read_range(args, Some(By::Score), Some(true))
    }

    pub fn zrangebylex(args: &[Bytes], _: u64) -> Result<Op> {
        read_range(args, Some(By::Lex), Some(false))
    }

    pub fn zrevrangebylex(args: &[Bytes], _: u64) -> Result<Op> {
        read_range(args, Some(By::Lex), Some(true))
    }

    pub fn zrangestore(args: &[Bytes], _: u64) -> Result<Op> {
        let (range, _) = range(args, 2, true, None, None)?;
        op(ZSetOp::RangeStore { dst: a(args, 1), key: a(args, 2), range })
    }

    fn remrange(args: &[Bytes], by: By) -> Result<Op> {
        let by = match by {
            By::Rank => RangeBy::Rank { start: int(&args[2])?, end: int(&args[3])? },
            By::Score => RangeBy::Score(score_range(&args[2], &args[3])?),
            By::Lex => RangeBy::Lex(lex_range(&args[2], &args[3])?),
        };
        op(ZSetOp::RemRange { key: a(args, 1), by })
    }

    pub fn zremrangebyrank(args: &[Bytes], _: u64) -> Result<Op> {
        remrange(args, By::Rank)
    }

    pub fn zremrangebyscore(args: &[Bytes], _: u64) -> Result<Op> {
        remrange(args, By::Score)
    }

    pub fn zremrangebylex(args: &[Bytes], _: u64) -> Result<Op> {
        remrange(args, By::Lex)
    }

    /// `ZPOPMIN key [count]`: more arguments are a syntax error, then any count that is not a
    /// non-negative integer "must be positive".
    fn pop(args: &[Bytes], max: bool) -> Result<Op> {
        if args.len() > 3 {
            return Err(Error::Syntax);
        }
        let count = match args.get(2) {
            None => None,
            Some(c) => match parse_i64(c) {
                Some(n) if n >= 0 => Some(n as u64),
                _ => return Err(Error::NotPositive),
            },
        };
        op(ZSetOp::Pop { key: a(args, 1), max, count })
    }

    pub fn zpopmin(args: &[Bytes], _: u64) -> Result<Op> {
        pop(args, false)
    }

    pub fn zpopmax(args: &[Bytes], _: u64) -> Result<Op> {
        pop(args, true)
    }

    /// `BZPOPMIN key [key ...] timeout`: the timeout is checked first.
    fn bzpop(args: &[Bytes], max: bool) -> Result<Op> {
        timeout_millis(&args[args.len() - 1])?;
        op(ZSetOp::PopFirst { keys: args[1..args.len() - 1].to_vec(), max })
    }

    pub fn bzpopmin(args: &[Bytes], _: u64) -> Result<Op> {
        bzpop(args, false)
    }

    pub fn bzpopmax(args: &[Bytes], _: u64) -> Result<Op> {
        bzpop(args, true)
    }

    /// `BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]`: ZMPOP's checks, then the
    /// timeout's.
    pub fn bzmpop(args: &[Bytes], now: u64) -> Result<Op> {
        let mut rest = Vec::with_capacity(args.len() - 1);
        rest.push(args[0].clone());
        rest.extend_from_slice(&args[2..]);
        let op = zmpop(&rest, now)?;
        timeout_millis(&args[1])?;
        Ok(op)
    }

    /// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`, checked in Redis's order.
    pub fn zmpop(args: &[Bytes], _: u64) -> Result<Op> {
        let numkeys = match parse_i64(&args[1]) {
            Some(n) if n >= 1 => n as u64,
            _ => return Err(Error::msg("ERR numkeys should be greater than 0")),
        };
        let where_idx = match usize::try_from(numkeys).ok().and_then(|n| n.checked_add(2)) {
            Some(w) if w < args.len() => w,
            _ => return Err(Error::Syntax),
        };
        let max = if eq(&args[where_idx], "min") {
            false
        } else if eq(&args[where_idx], "max") {
            true
        } else {
            return Err(Error::Syntax);
        };
        let mut count = None;
        let mut j = where_idx + 1;
        while j < args.len() {
            if count.is_none() && eq(&args[j], "count") && j + 1 < args.len() {
                j += 1;
                count = match parse_i64(&args[j]) {
                    Some(n) if n >= 1 => Some(n as u64),
                    _ => return Err(Error::msg("ERR count should be greater than 0")),
                };
            } else {
                return Err(Error::Syntax);
            }
            j += 1;
        }
        op(ZSetOp::MPop { keys: args[2..where_idx].to_vec(), max, count: count.unwrap_or(1) })
    }

    /// The count (bounded below as SRANDMEMBER's, with Redis's wording for an out-of-range
    /// count) and the syntax are checked before the key is looked up.
    pub fn zrandmember(args: &[Bytes], _: u64) -> Result<Op> {
        if args.len() == 2 {
            return op(ZSetOp::RandMember { key: a(args, 1), count: None, withscores: false });
        }
        let n = int(&args[2])?;
        if n < -MAX_REPEATED {
            return Err(Error::msg(format!(
                "ERR value is out of range, value must between -{MAX_REPEATED} and {}",
                i64::MAX
            )));
        }
        if args.len() > 4 || (args.len() == 4 && !eq(&args[3], "withscores")) {
            return Err(Error::Syntax);
        }
        let withscores = args.len() == 4;
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
            return Err(Error::msg("ERR value is out of range"));
        }
        op(ZSetOp::RandMember { key: a(args, 1), count: Some(n), withscores })
    }

    /// `numkeys key [key ...] options...` from `args[idx]`: the keys and the options, which are
    /// read once the keys are looked up.
    fn keys_and_options(args: &[Bytes], idx: usize, name: &str) -> Result<(Vec<Bytes>, Vec<Bytes>)> {
        let n = int(&args[idx])?;
        if n < 1 {
            return Err(Error::msg(format!("ERR at least 1 input key is needed for '{name}' command")));
        }
        let first = idx + 1;
        if n > (args.len() - first) as i64 {
            return Err(Error::Syntax);
        }
        let n = n as usize;
        Ok((args[first..first + n].to_vec(), args[first + n..].to_vec()))
    }

    fn combine(args: &[Bytes], algebra: Algebra) -> Result<Op> {
        let (keys, opts) = keys_and_options(args, 1, algebra.name(false))?;
        op(ZSetOp::Combine { algebra, keys, opts })
    }

    fn store(args: &[Bytes], algebra: Algebra) -> Result<Op> {
        let (keys, opts) = keys_and_options(args, 2, algebra.name(true))?;
        op(ZSetOp::Store { algebra, dst: a(args, 1), keys, opts })
    }

    pub fn zunion(args: &[Bytes], _: u64) -> Result<Op> {
        combine(args, Algebra::Union)
    }

    pub fn zinter(args: &[Bytes], _: u64) -> Result<Op> {
        combine(args, Algebra::Inter)
    }

    pub fn zdiff(args: &[Bytes], _: u64) -> Result<Op> {
        combine(args, Algebra::Diff)
    }

    pub fn zunionstore(args: &[Bytes], _: u64) -> Result<Op> {
        store(args, Algebra::Union)
    }

    pub fn zinterstore(args: &[Bytes], _: u64) -> Result<Op> {
        store(args, Algebra::Inter)
    }

    pub fn zdiffstore(args: &[Bytes], _: u64) -> Result<Op> {
        store(args, Algebra::Diff)
    }

    pub fn zintercard(args: &[Bytes], _: u64) -> Result<Op> {
        let (keys, opts) = keys_and_options(args, 1, "zintercard")?;
        op(ZSetOp::InterCard { keys, opts })
    }

    /// The cursor is checked first; MATCH and COUNT only once the key is found.
    pub fn zscan(args: &[Bytes], _: u64) -> Result<Op> {
        parse_cursor(&args[2]).ok_or(Error::InvalidCursor)?;
        op(ZSetOp::Scan { key: a(args, 1), args: args[2..].to_vec() })
    }
}

/// The sorted set, or WRONGTYPE.
fn as_zset(value: &Value) -> Result<&ZSet> {
    match value {
        Value::ZSet(z) => Ok(z),
        _ => Err(Error::WrongType),
    }
}

/// The sorted set of an entry already checked to be one.
fn zset_mut(value: &mut Value) -> &mut ZSet {
    match value {
        Value::ZSet(z) => z,
        _ => unreachable!("checked a sorted set"),
    }
}

/// The sorted set at `key`, `None` when missing, or WRONGTYPE.
fn read_zset<'a>(ks: &'a KeySpace, key: &[u8], now: u64) -> Result<Option<&'a ZSet>> {
    ks.get(key, now).map(|e| as_zset(&e.value)).transpose()
}

/// Sets `member`'s score as Redis's `zsetAdd` does: a new member that a listpack cannot hold
/// (one too many, or too long) converts the set to a skiplist first; a listpack stores a
/// negative zero as 0.
pub(super) fn put(z: &mut ZSet, member: &[u8], score: f64) {
    if !z.members.is_big()
        && !z.members.contains(member)
        && (z.len() >= (super::encodings().zset_max_listpack_entries as usize)
            || member.len() > (super::encodings().zset_max_listpack_value as usize))
    {
        z.members.make_big();
    }
    let score = if !z.members.is_big() && score == 0.0 { 0.0 } else { score };
    z.insert(member, score);
}

/// A member and its score.
type Elem<'a> = (&'a [u8], f64);

fn elem(e: &(Score, ShortBytes)) -> Elem<'_> {
    (&e.1, e.0 .0)
}

fn key_at(score: f64, member: &[u8]) -> (Score, ShortBytes) {
    (Score(score), member.into())
}

/// The smallest double above `x` (for an inclusive upper bound).
fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        x
    } else if x == 0.0 {
        f64::from_bits(1)
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() + 1)
    } else {
        f64::from_bits(x.to_bits() - 1)
    }
}

fn limit_of(limit: i64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// The elements a range selects, in reply order, as Redis's listpack code walks them: find the
/// first element in range from the start (or the end, reversed), check it, skip `offset`
/// elements unchecked, then take elements while they stay in range, at most `limit` of them.
fn select<'a>(z: &'a ZSet, range: &Range) -> Vec<Elem<'a>> {
    let by_score = &z.by_score;
    match &range.by {
        RangeBy::Rank { start, end } => {
            let llen = z.len() as i64;
            let (mut start, mut end) = (*start, *end);
            if start < 0 {
                start += llen;
            }
            if end < 0 {
                end += llen;
            }
            start = start.max(0);
            if start > end || start >= llen {
                return Vec::new();
            }
            end = end.min(llen - 1);
            let n = (end - start + 1) as usize;
            if range.rev {
                by_score.iter().rev().skip(start as usize).take(n).map(elem).collect()
            } else {
                by_score.iter().skip(start as usize).take(n).map(elem).collect()
            }
        }
        RangeBy::Score(r) => {
            if range.offset < 0 || r.min > r.max || (r.min == r.max && (r.minex || r.maxex)) {
                return Vec::new();
            }
            let (offset, limit) = (range.offset as usize, limit_of(range.limit));
            if !range.rev {
                // Zeros of either sign are equal to a zero bound: start at the lowest zero.
                let from = if r.min == 0.0 { -0.0 } else { r.min };
                let mut it = by_score
                    .range((Bound::Included(key_at(from, b"")), Bound::Unbounded))
                    .map(elem)
                    .skip_while(|e| !r.gte_min(e.1))
                    .peekable();
                if !it.peek().is_some_and(|e| r.lte_max(e.1)) {
                    return Vec::new();
                }
                it.skip(offset).take_while(|e| r.lte_max(e.1)).take(limit).collect()
            } else {
                let to = if r.max == f64::INFINITY {
                    Bound::Unbounded
                } else {
                    Bound::Excluded(key_at(next_up(r.max), b""))
                };
                let mut it =
                    by_score.range((Bound::Unbounded, to)).rev().map(elem).skip_while(|e| !r.lte_max(e.1)).peekable();
                if !it.peek().is_some_and(|e| r.gte_min(e.1)) {
                    return Vec::new();
                }
                it.skip(offset).take_while(|e| r.gte_min(e.1)).take(limit).collect()
            }
        }
        RangeBy::Lex(r) => {
            let (Some(first), Some(last)) = (by_score.first(), by_score.last()) else {
                return Vec::new();
            };
            if range.offset < 0 || r.always_empty() || !r.gte_min(&last.1) || !r.lte_max(&first.1) {
                return Vec::new();
            }
            let (offset, limit) = (range.offset as usize, limit_of(range.limit));
            // With a single score (the intended use), the members are in order: start from the
            // bound; otherwise walk from the end as Redis's listpack code does.
            let uniform = first.0 == last.0;
            let score = first.0 .0;
            if !range.rev {
                let from = match (&r.min, uniform) {
                    (LexBound::Value { value, exclusive: false }, true) => Bound::Included(key_at(score, value)),
                    (LexBound::Value { value, exclusive: true }, true) => Bound::Excluded(key_at(score, value)),
                    _ => Bound::Unbounded,
                };
                let mut it =
                    by_score.range((from, Bound::Unbounded)).map(elem).skip_while(|e| !r.gte_min(e.0)).peekable();
                if !it.peek().is_some_and(|e| r.lte_max(e.0)) {
                    return Vec::new();
                }
                it.skip(offset).take_while(|e| r.lte_max(e.0)).take(limit).collect()
            } else {
                let to = match (&r.max, uniform) {
                    (LexBound::Value { value, exclusive: false }, true) => Bound::Included(key_at(score, value)),
                    (LexBound::Value { value, exclusive: true }, true) => Bound::Excluded(key_at(score, value)),
                    _ => Bound::Unbounded,
                };
                let mut it =
                    by_score.range((Bound::Unbounded, to)).rev().map(elem).skip_while(|e| !r.lte_max(e.0)).peekable();
                if !it.peek().is_some_and(|e| r.gte_min(e.0)) {
                    return Vec::new();
                }
                it.skip(offset).take_while(|e| r.gte_min(e.0)).take(limit).collect()
            }
        }
    }
}

/// Elements as a reply: members only, or (member, score) pairs (flat in RESP2, nested in RESP3).
fn elements_reply(elems: &[Elem], withscores: bool) -> Reply {
    if withscores {
        Reply::Pairs(elems.iter().map(|(m, s)| (Reply::bulk(m), double(*s))).collect())
    } else {
        Reply::Array(elems.iter().map(|(m, _)| Reply::bulk(m)).collect())
    }
}

/// Applies a sorted set operation (reads included, as inside EXEC).
pub fn apply(ks: &mut KeySpace, op: &ZSetOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        ZSetOp::Add { key, flags, pairs } => zadd(ks, key, *flags, pairs, now)?,
        ZSetOp::Rem { key, members } => zrem(ks, key, members, now)?,
        ZSetOp::RemRange { key, by } => zremrange(ks, key, by, now)?,
        ZSetOp::Pop { key, max, count } => {
            let Some(slot) = ks.live_slot(key, now) else {
                return Ok(Reply::Array(vec![]));
            };
            as_zset(&ks.at(slot).expect("live slot").value)?;
            match count {
                Some(0) => Reply::Array(vec![]),
                None => {
                    let popped = pop(ks, slot, key, *max, 1);
                    let (m, s) = &popped[0];
                    Reply::Array(vec![Reply::bulk(m), double(*s)])
                }
                Some(n) => pairs_reply(pop(ks, slot, key, *max, *n)),
            }
        }
        ZSetOp::PopFirst { keys, max } => {
            for key in keys {
                let Some(slot) = ks.live_slot(key, now) else { continue };
                as_zset(&ks.at(slot).expect("live slot").value)?;
                let (member, score) = pop(ks, slot, key, *max, 1).pop().expect("a sorted set is never empty");
                return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(member.into()), double(score)]));
            }
            Reply::NilArray
        }
        ZSetOp::MPop { keys, max, count } => {
            for key in keys {
                let Some(slot) = ks.live_slot(key, now) else { continue };
                as_zset(&ks.at(slot).expect("live slot").value)?;
                // Nested [member, score] arrays in RESP2 as well.
                let popped = pop(ks, slot, key, *max, *count);
                let pairs = popped.into_iter().map(|(m, s)| Reply::Array(vec![Reply::Bulk(m.into()), double(s)]));
                return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(pairs.collect())]));
            }
            Reply::NilArray
        }
        ZSetOp::RangeStore { dst, key, range } => {
            let result = match read_zset(ks, key, now)? {
                None => ZSet::new(),
                Some(z) => {
                    let elems = select(z, range);
                    let mut out = ZSet::new();
                    // Redis creates the destination as a skiplist when a rank range is known to
                    // be longer than a listpack may be, and adds the members one by one.
                    if matches!(range.by, RangeBy::Rank { .. })
                        && elems.len() > (super::encodings().zset_max_listpack_entries as usize)
                    {
                        out.members.make_big();
                    }
                    for (m, s) in elems {
                        put(&mut out, m, s);
                    }
                    out
                }
            };
            store(ks, dst, result, now, "zrangestore")
        }
        ZSetOp::Store { algebra, dst, keys, opts } => {
            let sources = read_sources(ks, keys, now)?;
            let o = combine_options(opts, keys.len(), *algebra, true, false)?;
            let elems = combine(*algebra, keys, &sources, &o);
            // Redis builds a skiplist and converts it to a listpack if the result is small.
            let max_len = elems.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
            let mut z = ZSet::new();
            if elems.len() > (super::encodings().zset_max_listpack_entries as usize)
                || max_len > (super::encodings().zset_max_listpack_value as usize)
            {
                z.members.make_big();
            }
            for (m, s) in elems {
                let s = if !z.members.is_big() && s == 0.0 { 0.0 } else { s };
                z.insert(m, s);
            }
            let event = match algebra {
                Algebra::Union => "zunionstore",
                Algebra::Inter => "zinterstore",
                Algebra::Diff => "zdiffstore",
            };
            store(ks, dst, z, now, event)
        }
        read => query(ks, read, ctx)?,
    })
}

/// Answers a read-only sorted set operation.
pub fn query(ks: &KeySpace, op: &ZSetOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        ZSetOp::Card(key) => Reply::Int(read_zset(ks, key, now)?.map_or(0, ZSet::len) as i64),
        ZSetOp::Score { key, member } => match read_zset(ks, key, now)?.and_then(|z| z.score(member)) {
            Some(s) => double(s),
            None => Reply::Nil,
        },
        ZSetOp::MScore { key, members } => {
            let z = read_zset(ks, key, now)?;
            Reply::Array(members.iter().map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, double)).collect())
        }
        ZSetOp::Rank { key, member, rev } => {
            let Some(z) = read_zset(ks, key, now)? else {
                return Ok(Reply::Nil);
            };
            match z.score(member) {
                None => Reply::Nil,
                Some(s) => {
                    let rank = z.by_score.range(..key_at(s, member)).count();
                    Reply::Int(if *rev { z.len() - 1 - rank } else { rank } as i64)
                }
            }
        }
        ZSetOp::Count { key, range } => {
            let n = read_zset(ks, key, now)?.map_or(0, |z| select(z, &Range::forward(RangeBy::Score(*range))).len());
            Reply::Int(n as i64)
        }
        ZSetOp::LexCount { key, range } => {
            let n =
                read_zset(ks, key, now)?.map_or(0, |z| select(z, &Range::forward(RangeBy::Lex(range.clone()))).len());
            Reply::Int(n as i64)
        }
        ZSetOp::Range { key, range, withscores } => match read_zset(ks, key, now)? {
            None => Reply::Array(vec![]),
            Some(z) => elements_reply(&select(z, range), *withscores),
        },
        ZSetOp::RandMember { key, count, withscores } => {
            zrandmember(read_zset(ks, key, now)?, *count, *withscores, ctx)
        }
        ZSetOp::Combine { algebra, keys, opts } => {
            let sources = read_sources(ks, keys, now)?;
            let o = combine_options(opts, keys.len(), *algebra, false, false)?;
            let mut elems = combine(*algebra, keys, &sources, &o);
            // Redis's skiplist order: by score (a negative zero equal to zero), then member.
            elems.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(b.0)));
            elements_reply(&elems, o.withscores)
        }
        ZSetOp::InterCard { keys, opts } => {
            let sources = read_sources(ks, keys, now)?;
            let o = combine_options(opts, keys.len(), Algebra::Inter, false, true)?;
            Reply::Int(inter(&sources, &o).len() as i64)
        }
        ZSetOp::Scan { key, args } => match read_zset(ks, key, now)? {
            None => Reply::Array(vec![Reply::bulk("0"), Reply::Array(vec![])]),
            Some(z) => zscan(z, args)?,
        },
        write => unreachable!("query of a write operation {write:?}"),
    })
}

/// Replaces `dst` with `z` (no TTL kept), or deletes it when `z` is empty; replies the size.
fn store(ks: &mut KeySpace, dst: &[u8], z: ZSet, now: u64, event: &'static str) -> Reply {
    if z.is_empty() {
        if ks.live_slot(dst, now).is_some() {
            ks.remove(dst);
            notify(ks, GENERIC, "del", dst);
        }
        return Reply::Int(0);
    }
    let len = z.len() as i64;
    ks.set(dst, Value::ZSet(Box::new(z)), 0);
    notify(ks, ZSET, event, dst);
    Reply::Int(len)
}

fn pairs_reply(elems: Vec<(Vec<u8>, f64)>) -> Reply {
    Reply::Pairs(elems.into_iter().map(|(m, s)| (Reply::Bulk(m.into()), double(s))).collect())
}

/// Pops up to `count` members (at least one exists) from the low or high end of the sorted set
/// at `slot`, deleting the key if it empties.
fn pop(ks: &mut KeySpace, slot: u32, key: &[u8], max: bool, count: u64) -> Vec<(Vec<u8>, f64)> {
    let (popped, empty) = ks.update(slot, |e| {
        let z = zset_mut(&mut e.value);
        let n = usize::try_from(count).unwrap_or(usize::MAX).min(z.len());
        let mut popped = Vec::with_capacity(n);
        for _ in 0..n {
            let (score, member) = (if max { z.by_score.pop_last() } else { z.by_score.pop_first() }).expect("n <= len");
            z.members.remove(&member);
            popped.push((member.into_vec(), score.0));
        }
        (popped, z.is_empty())
    });
    if empty {
        ks.remove_slot(slot);
    }
    notify(ks, ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    if empty {
        notify(ks, GENERIC, "del", key);
    }
    popped
}

/// What ZADD will do: the scores to set, in order, and the counts for the reply.
struct AddPlan {
    changes: Vec<(Bytes, f64)>,
    added: i64,
    updated: i64,
    processed: i64,
    score: f64,
}

/// Plans ZADD as Redis's `zsetAdd` runs it pair by pair (a member given twice sees its first
/// score), or the NaN error of an increment.
fn plan_add(z: Option<&ZSet>, flags: AddFlags, pairs: &[(f64, Bytes)]) -> Result<AddPlan> {
    let mut seen: HashMap<&[u8], f64> = HashMap::new();
    let mut plan = AddPlan { changes: Vec::new(), added: 0, updated: 0, processed: 0, score: 0.0 };
    for (score, member) in pairs {
        let mut score = *score;
        let current = seen.get(&member[..]).copied().or_else(|| z.and_then(|z| z.score(member)));
        match current {
            Some(cur) => {
                if flags.nx {
                    continue;
                }
                if flags.incr {
                    score += cur;
                    if score.is_nan() {
                        return Err(Error::msg("ERR resulting score is not a number (NaN)"));
                    }
                }
                if (flags.lt && score >= cur) || (flags.gt && score <= cur) {
                    continue;
                }
                plan.processed += 1;
                plan.score = score;
                if score != cur {
                    plan.updated += 1;
                    plan.changes.push((member.clone(), score));
                    seen.insert(member, score);
                }
            }
            None if !flags.xx => {
                plan.added += 1;
                plan.processed += 1;
                plan.score = score;
                plan.changes.push((member.clone(), score));
                seen.insert(member, score);
            }
            None => {}
        }
    }
    Ok(plan)
}

fn zadd(ks: &mut KeySpace, key: &Bytes, flags: AddFlags, pairs: &[(f64, Bytes)], now: u64) -> Result {
    let slot = ks.live_slot(key, now);
    let current = match slot {
        Some(slot) => Some(as_zset(&ks.at(slot).expect("live slot").value)?),
        None => None,
    };
    let plan = if current.is_none() && flags.xx {
        AddPlan { changes: Vec::new(), added: 0, updated: 0, processed: 0, score: 0.0 }
    } else {
        plan_add(current, flags, pairs)?
    };
    // Nothing changes: the key is left untouched (a WATCH on it stays valid).
    if !plan.changes.is_empty() {
        match slot {
            Some(slot) => ks.update(slot, |e| {
                let z = zset_mut(&mut e.value);
                for (m, s) in &plan.changes {
                    put(z, m, *s);
                }
            }),
            None => {
                let mut z = ZSet::new();
                for (m, s) in &plan.changes {
                    put(&mut z, m, *s);
                }
                ks.set(key, Value::ZSet(Box::new(z)), 0);
            }
        }
        notify(ks, ZSET, if flags.incr { "zincr" } else { "zadd" }, key);
    }
    Ok(if flags.incr {
        if plan.processed > 0 {
            double(plan.score)
        } else {
            Reply::Nil
        }
    } else {
        Reply::Int(if flags.ch { plan.added + plan.updated } else { plan.added })
    })
}

fn zrem(ks: &mut KeySpace, key: &Bytes, members: &[Bytes], now: u64) -> Result {
    let Some(slot) = ks.live_slot(key, now) else {
        return Ok(Reply::Int(0));
    };
    let z = as_zset(&ks.at(slot).expect("live slot").value)?;
    if !members.iter().any(|m| z.members.contains(m)) {
        return Ok(Reply::Int(0));
    }
    let (removed, empty) = ks.update(slot, |e| {
        let z = zset_mut(&mut e.value);
        let removed = members.iter().filter(|m| z.remove(m).is_some()).count();
        (removed, z.is_empty())
    });
    if empty {
        ks.remove_slot(slot);
    }
    notify(ks, ZSET, "zrem", key);
    if empty {
        notify(ks, GENERIC, "del", key);
    }
    Ok(Reply::Int(removed as i64))
}

fn zremrange(ks: &mut KeySpace, key: &Bytes, by: &RangeBy, now: u64) -> Result {
    let Some(slot) = ks.live_slot(key, now) else {
        return Ok(Reply::Int(0));
    };
    let z = as_zset(&ks.at(slot).expect("live slot").value)?;
    let doomed: Vec<Vec<u8>> = select(z, &Range::forward(by.clone())).into_iter().map(|(m, _)| m.to_vec()).collect();
    if doomed.is_empty() {
        return Ok(Reply::Int(0));
    }
    let empty = ks.update(slot, |e| {
        let z = zset_mut(&mut e.value);
        for m in &doomed {
            z.remove(m);
        }
        z.is_empty()
    });
    if empty {
        ks.remove_slot(slot);
    }
    let event = match by {
        RangeBy::Rank { .. } => "zremrangebyrank",
        RangeBy::Score(_) => "zremrangebyscore",
        RangeBy::Lex(_) => "zremrangebylex",
    };
    notify(ks, ZSET, event, key);
    if empty {
        notify(ks, GENERIC, "del", key);
    }
    Ok(Reply::Int(doomed.len() as i64))
}

/// An input of the algebra: a sorted set, or a plain set whose members score 1.
#[derive(Clone, Copy)]
enum Source<'a> {
    ZSet(&'a ZSet),
    Set(&'a Dict<()>),
}

impl<'a> Source<'a> {
    fn len(self) -> usize {
        match self {
            Source::ZSet(z) => z.len(),
            Source::Set(s) => s.len(),
        }
    }

    fn score(self, member: &[u8]) -> Option<f64> {
        match self {
            Source::ZSet(z) => z.score(member),
            Source::Set(s) => s.contains(member).then_some(1.0),
        }
    }

    fn elements(self) -> Vec<Elem<'a>> {
        match self {
            Source::ZSet(z) => z.by_score.iter().map(elem).collect(),
            Source::Set(s) => s.iter().map(|(m, _)| (m, 1.0)).collect(),
        }
    }
}

fn len_of(s: Option<Source>) -> usize {
    s.map_or(0, Source::len)
}

/// The inputs at `keys` (`None` for a missing key); WRONGTYPE if any holds neither a set nor a
/// sorted set.
fn read_sources<'a>(ks: &'a KeySpace, keys: &[Bytes], now: u64) -> Result<Vec<Option<Source<'a>>>> {
    keys.iter()
        .map(|k| match ks.get(k, now).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::ZSet(z)) => Ok(Some(Source::ZSet(z))),
            Some(Value::Set(s)) => Ok(Some(Source::Set(s))),
            Some(_) => Err(Error::WrongType),
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// The options after the keys of the algebra commands.
struct CombineOptions {
    weights: Vec<f64>,
    aggregate: Aggregate,
    withscores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: u64,
}

/// Reads the options as Redis's `zunionInterDiffGenericCommand` does, after the key lookups.
fn combine_options(opts: &[Bytes], setnum: usize, algebra: Algebra, store: bool, card: bool) -> Result<CombineOptions> {
    let mut o = CombineOptions { weights: vec![1.0; setnum], aggregate: Aggregate::Sum, withscores: false, limit: 0 };
    let mut j = 0;
    while j < opts.len() {
        let remaining = opts.len() - j;
        let arg = &opts[j];
        if algebra != Algebra::Diff && !card && remaining > setnum && eq(arg, "weights") {
            j += 1;
            for w in o.weights.iter_mut() {
                *w = redis_float(&opts[j]).ok_or_else(|| Error::msg("ERR weight value is not a float"))?;
                j += 1;
            }
        } else if algebra != Algebra::Diff && !card && remaining >= 2 && eq(arg, "aggregate") {
            let a = &opts[j + 1];
            o.aggregate = if eq(a, "sum") {
                Aggregate::Sum
            } else if eq(a, "min") {
                Aggregate::Min
            } else if eq(a, "max") {
                Aggregate::Max
            } else {
                return Err(Error::Syntax);
            };
            j += 2;
        } else if !store && !card && eq(arg, "withscores") {
            o.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && eq(arg, "limit") {
            o.limit = match parse_i64(&opts[j + 1]) {
                Some(l) if l >= 0 => l as u64,
                _ => return Err(Error::msg("ERR LIMIT can't be negative")),
            };
            j += 2;
        } else {
            return Err(Error::Syntax);
        }
    }
    Ok(o)
}

/// Redis's `zunionInterAggregate`: a sum of infinities of both signs is 0.
fn aggregate(target: &mut f64, val: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// A weighted score, NaN (0 times infinity) counting as 0.
fn weighted(weight: f64, score: f64) -> f64 {
    let v = weight * score;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// The inputs' indexes from the smallest to the largest (a stable sort, as glibc's qsort).
fn by_cardinality(sources: &[Option<Source>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| len_of(sources[i]));
    order
}

/// ZINTER's members and scores, in the order of the smallest input; at most `limit` of them
/// when `limit` is not 0 (ZINTERCARD).
fn inter<'a>(sources: &[Option<Source<'a>>], o: &CombineOptions) -> Vec<Elem<'a>> {
    let order = by_cardinality(sources);
    let Some(first) = sources[order[0]] else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (m, s) in first.elements() {
        let mut score = weighted(o.weights[order[0]], s);
        let all = order[1..].iter().all(|&j| match sources[j].and_then(|src| src.score(m)) {
            Some(v) => {
                aggregate(&mut score, v * o.weights[j], o.aggregate);
                true
            }
            None => false,
        });
        if all {
            out.push((m, score));
            if o.limit != 0 && out.len() as u64 >= o.limit {
                break;
            }
        }
    }
    out
}

/// The result of an algebra, unordered.
fn combine<'a>(algebra: Algebra, keys: &[Bytes], sources: &[Option<Source<'a>>], o: &CombineOptions) -> Vec<Elem<'a>> {
    match algebra {
        Algebra::Inter => inter(sources, o),
        Algebra::Union => {
            let mut index: HashMap<&[u8], usize> = HashMap::new();
            let mut out: Vec<Elem> = Vec::new();
            for i in by_cardinality(sources) {
                let Some(src) = sources[i] else { continue };
                for (m, s) in src.elements() {
                    let score = weighted(o.weights[i], s);
                    match index.get(m) {
                        Some(&at) => aggregate(&mut out[at].1, score, o.aggregate),
                        None => {
                            index.insert(m, out.len());
                            out.push((m, score));
                        }
                    }
                }
            }
            out
        }
        Algebra::Diff => {
            let Some(first) = sources[0] else {
                return Vec::new();
            };
            // The first key given again: everything is subtracted.
            if first.len() == 0 || keys[1..].iter().any(|k| *k == keys[0]) {
                return Vec::new();
            }
            let rest: Vec<Source> = sources[1..].iter().flatten().copied().collect();
            first.elements().into_iter().filter(|(m, _)| !rest.iter().any(|s| s.score(m).is_some())).collect()
        }
    }
}

/// How many consecutive members a random pick in a larger set chooses among.
const WINDOW: usize = 32;

/// A random member of a non-empty sorted set: uniform in a small one; in a larger one, in
/// O(log n), a random point on the ring of member hashes (the members dict's order), then one of
/// the `WINDOW` members from there on, as SRANDMEMBER picks.
fn random_member<'a>(z: &'a ZSet, rng: &mut Rng) -> Elem<'a> {
    let d = &z.members;
    let n = d.len();
    if n <= 2 * WINDOW {
        let (m, s) = d.nth(rng.below(n)).expect("an index below the length");
        return (m, *s);
    }
    let (from, _) = d.scan(rng.next_u64(), WINDOW);
    let window: Vec<(&[u8], &f64)> = from.into_iter().chain(d.iter()).take(WINDOW).collect();
    let (m, s) = window[rng.below(window.len())];
    (m, *s)
}

/// How many times the set must outnumber the count for ZRANDMEMBER to draw members one by one
/// until it has enough distinct ones (Redis's ZRANDMEMBER_SUB_STRATEGY_MUL).
const SUB_STRATEGY_MUL: u64 = 3;

fn zrandmember(z: Option<&ZSet>, count: Option<i64>, withscores: bool, ctx: Ctx) -> Reply {
    let mut rng = Rng::new(ctx.seed);
    let Some(count) = count else {
        return z.map_or(Reply::Nil, |z| Reply::bulk(random_member(z, &mut rng).0));
    };
    let Some(z) = z else {
        return Reply::Array(vec![]);
    };
    let size = z.len() as u64;
    let n = count.unsigned_abs();
    if n == 0 {
        return Reply::Array(vec![]);
    }
    let picked: Vec<Elem> = if count < 0 || n == 1 {
        // With repetitions, in the order drawn.
        if size <= n.saturating_mul(4) {
            let all: Vec<Elem> = z.by_score.iter().map(elem).collect();
            (0..n).map(|_| all[rng.below(all.len())]).collect()
        } else {
            (0..n).map(|_| random_member(z, &mut rng)).collect()
        }
    } else if n >= size {
        z.by_score.iter().map(elem).collect()
    } else if n * SUB_STRATEGY_MUL > size {
        let all: Vec<Elem> = z.by_score.iter().map(elem).collect();
        let mut idx: Vec<usize> = (0..all.len()).collect();
        for i in 0..n as usize {
            let j = i + rng.below(idx.len() - i);
            idx.swap(i, j);
        }
        idx[..n as usize].iter().map(|&i| all[i]).collect()
    } else {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(n as usize);
        while (out.len() as u64) < n {
            let e = random_member(z, &mut rng);
            if seen.insert(e.0) {
                out.push(e);
            }
        }
        out
    };
    elements_reply(&picked, withscores)
}

/// ZSCAN: a listpack is returned whole with cursor 0 (Redis does not iterate it), its scores
/// as the listpack stores them; a skiplist about COUNT members from the cursor on.
fn zscan(z: &ZSet, args: &[Bytes]) -> Result {
    let opts = scan_args(args, 0)?;
    let (elems, next): (Vec<(&[u8], String)>, u64) = if z.members.is_big() {
        let (items, next) = z.members.scan(opts.cursor, usize::try_from(opts.count).unwrap_or(usize::MAX));
        (items.into_iter().map(|(m, s)| (m, format_score(*s))).collect(), next)
    } else {
        (z.by_score.iter().map(|e| (&*e.1, listpack_score_text(e.0 .0))).collect(), 0)
    };
    let pattern = opts.pattern.as_deref().filter(|p| *p != b"*");
    let mut out = Vec::with_capacity(elems.len() * 2);
    for (m, s) in elems {
        if pattern.is_none_or(|p| glob_matches(p, m)) {
            out.push(Reply::bulk(m));
            out.push(Reply::bulk(s));
        }
    }
    Ok(Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(out)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// Parses a command line (`\0` stands for a NUL byte, `""` for an empty argument).
    fn p(line: &str) -> Result<Op> {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|s| if s == "\"\"" { Bytes::new() } else { Bytes::from(s.replace("\\0", "\0")) })
            .collect();
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        let command = COMMANDS.iter().find(|c| c.meta.name == name).expect("a zset command");
        assert!(command.meta.arity_ok(args.len()), "arity of {line}");
        (command.parse)(&args, NOW)
    }

    fn run_seeded(ks: &mut KeySpace, line: &str, seed: u64) -> Reply {
        if line.starts_with("sadd ") {
            let args: Vec<Bytes> = line.split(' ').map(b).collect();
            let command = super::super::sets::COMMANDS.iter().find(|c| c.meta.name == "sadd").unwrap();
            return (command.parse)(&args, NOW).unwrap().apply(ks, Ctx { now: NOW, seed });
        }
        match p(line) {
            Ok(op) => op.apply(ks, Ctx { now: NOW, seed }),
            Err(e) => e.into(),
        }
    }

    fn run(ks: &mut KeySpace, line: &str) -> Reply {
        run_seeded(ks, line, 7)
    }

    fn bulks_of(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(Reply::bulk).collect())
    }

    fn with_scores(items: &[(&str, &str)]) -> Reply {
        Reply::Pairs(items.iter().map(|(m, s)| (Reply::bulk(m), Reply::Double(s.to_string()))).collect())
    }

    /// ZMPOP's pairs: nested arrays in both protocols.
    fn nested(items: &[(&str, &str)]) -> Reply {
        Reply::Array(
            items.iter().map(|(m, s)| Reply::Array(vec![Reply::bulk(m), Reply::Double(s.to_string())])).collect(),
        )
    }

    fn encoding(ks: &KeySpace, key: &str) -> &'static str {
        ks.get(key.as_bytes(), NOW).expect("key exists").value.encoding()
    }

    fn err(text: &str) -> Reply {
        Reply::err(text)
    }

    fn members(from: u32, to: u32) -> String {
        (from..=to).map(|i| format!("{i} m{i:03}")).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn table_is_sorted_and_write_flags_match_the_operations() {
        assert!(COMMANDS.windows(2).all(|w| w[0].meta.name < w[1].meta.name));
        let lines = [
            "zadd k 1 a",
            "zincrby k 1 a",
            "zrem k a",
            "zcard k",
            "zcount k 0 1",
            "zlexcount k - +",
            "zscore k a",
            "zmscore k a",
            "zrank k a",
            "zrevrank k a",
            "zrange k 0 1",
            "zrangestore d k 0 1",
            "zrangebyscore k 0 1",
            "zrevrangebyscore k 1 0",
            "zrangebylex k - +",
            "zrevrangebylex k + -",
            "zrevrange k 0 1",
            "zremrangebyrank k 0 1",
            "zremrangebyscore k 0 1",
            "zremrangebylex k - +",
            "zpopmin k",
            "zpopmax k",
            "zmpop 1 k MIN",
            "zrandmember k",
            "zunion 1 k",
            "zinter 1 k",
            "zdiff 1 k",
            "zunionstore d 1 k",
            "zinterstore d 1 k",
            "zdiffstore d 1 k",
            "zintercard 1 k",
            "zscan k 0",
            "bzpopmin k 0",
            "bzpopmax k 1.5",
            "bzmpop 0 1 k MIN",
        ];
        let mut seen = HashSet::new();
        for line in lines {
            let name = line.split(' ').next().unwrap();
            seen.insert(name);
            let meta = &COMMANDS.iter().find(|c| c.meta.name == name).unwrap().meta;
            let Ok(Op::ZSet(op)) = p(line) else { panic!("{line}") };
            assert_eq!(meta.is_write(), op.is_write(), "{line}");
            assert_eq!(meta.group, "sorted-set");
        }
        assert_eq!(seen.len(), COMMANDS.len(), "every command is checked");
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the literals show the digits printed
    fn scores_print_as_percent_17g() {
        for (v, s) in [
            (3.0, "3"),
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (1e20, "1e+20"),
            (-0.25, "-0.25"),
            (1e-5, "1.0000000000000001e-05"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1e300, "1.0000000000000001e+300"),
            (2.5e-300, "2.5e-300"),
            (16.0, "16"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (1.6000000000000001, "1.6000000000000001"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (1.00000762939453125, "1.0000076293945312"),
            (-123.456, "-123.456"),
            (5e-324, "4.9406564584124654e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
        ] {
            assert_eq!(format_score(v), s, "{v:e}");
        }
        assert_eq!(listpack_score_text(1e17), "100000000000000000");
        assert_eq!(listpack_score_text(1e19), "1e+19");
        assert_eq!(listpack_score_text(-0.0), "0");
        assert_eq!(listpack_score_text(2.5), "2.5");
    }

    #[test]
    fn scores_print_like_libc() {
        let c = |v: f64| {
            let mut buf = [0u8; 64];
            // SAFETY: a 64-byte buffer, its length, a NUL-terminated format taking one double.
            let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), 64, c"%.17g".as_ptr(), v) };
            String::from_utf8(buf[..n as usize].to_vec()).unwrap()
        };
        let mut rng = Rng::new(1);
        for _ in 0..100_000 {
            let v = f64::from_bits(rng.next_u64());
            if v.is_finite() {
                assert_eq!(format_score(v), c(v), "{v:e}");
            }
            let w = (rng.next_u64() % 2_000_000) as f64 / 64.0 - 10_000.0;
            assert_eq!(format_score(w), c(w), "{w}");
        }
    }

    #[test]
    fn floats_are_read_like_redis() {
        assert_eq!(redis_float(b"0x10"), Some(16.0));
        assert_eq!(redis_float(b"1.5"), Some(1.5));
        assert_eq!(redis_float(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(redis_float(b"Infinity"), Some(f64::INFINITY));
        for bad in ["", " 1", "1 ", "nan", "NaN", "abc", "1.5.2", "1e400", "-1e400", "1e-400", "1\0", "0x"] {
            assert_eq!(redis_float(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(redis_float(b"0e-400"), Some(0.0));
        assert_eq!(redis_float(b"1e-310"), Some(1e-310), "a subnormal is not an underflow to zero");
        assert_eq!(score_bound(b""), Some((0.0, false)));
        assert_eq!(score_bound(b"("), Some((0.0, true)));
        assert_eq!(score_bound(b"(1.5"), Some((1.5, true)));
        assert_eq!(score_bound(b" 2"), Some((2.0, false)));
        assert_eq!(score_bound(b"3\0junk"), Some((3.0, false)));
        assert_eq!(score_bound(b"[2"), None);
        assert_eq!(score_bound(b"(nan"), None);
        assert_eq!(score_bound(b"1x"), None);
    }

    #[test]
    fn zadd_options_and_errors() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, "zadd z 1 a 2 b 3 c"), Reply::Int(3));
        assert_eq!(run(&mut ks, "zadd z 10 a 4 d"), Reply::Int(1));
        assert_eq!(run(&mut ks, "zadd z NX 5 a 2 e"), Reply::Int(1));
        assert_eq!(run(&mut ks, "zscore z a"), Reply::Double("10".into()));
        assert_eq!(run(&mut ks, "zadd z XX 5 a 2 f"), Reply::Int(0));
        assert_eq!(run(&mut ks, "zscore z f"), Reply::Nil);
        assert_eq!(run(&mut ks, "zadd z CH GT 1 a 6 b 7 g"), Reply::Int(2));
        assert_eq!(run(&mut ks, "zadd z CH LT 1 a 6 b"), Reply::Int(1));
        assert_eq!(run(&mut ks, "zadd z INCR 2.5 a"), Reply::Double("3.5".into()));
        assert_eq!(run(&mut ks, "zadd z NX INCR 1 a"), Reply::Nil);
        assert_eq!(run(&mut ks, "zadd missing XX 1 a"), Reply::Int(0));
        assert_eq!(run(&mut ks, "zadd missing XX INCR 1 a"), Reply::Nil);
        assert!(ks.get(b"missing", NOW).is_none());
        assert_eq!(run(&mut ks, "zadd z 1 a 2"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "zadd z FOO 1 a"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "zadd z FOO 1 a 2"), Error::NotFloat.into());
        assert_eq!(run(&mut ks, "zadd z NX XX 1 a"), err("ERR XX and NX options at the same time are not compatible"));
        assert_eq!(
            run(&mut ks, "zadd z GT LT 1 a"),
            err("ERR GT, LT, and/or NX options at the same time are not compatible")
        );
        assert_eq!(
            run(&mut ks, "zadd z INCR 1 a 2 b"),
            err("ERR INCR option supports a single increment-element pair")
        );
        assert_eq!(run(&mut ks, "zincrby z incr a"), Error::Syntax.into(), "ZINCRBY reads ZADD's options");
        run(&mut ks, "zadd i inf a");
        let nan = err("ERR resulting score is not a number (NaN)");
        assert_eq!(run(&mut ks, "zincrby i -inf a"), nan);
        assert_eq!(run(&mut ks, "zscore i a"), Reply::Double("inf".into()));
        // The same member twice: the second sees the first.
        assert_eq!(run(&mut ks, "zadd t 1 a 2 a"), Reply::Int(1));
        assert_eq!(run(&mut ks, "zscore t a"), Reply::Double("2".into()));
        assert_eq!(run(&mut ks, "zadd t CH 3 a 2 a"), Reply::Int(2), "updated twice");
    }

    #[test]
    fn a_write_that_changes_nothing_leaves_the_key_alone_and_the_ttl_is_kept() {
        let mut ks = KeySpace::new();
        run(&mut ks, "zadd z 1 a 2 b 3 c");
        let slot = ks.slot_of(b"z").unwrap();
        ks.set_expire(slot, NOW + 100_000);
        let seq = ks.seq();
        for line in [
            "zadd z 1 a 2 b",
            "zadd z NX 5 a",
            "zadd z XX 5 x",
            "zadd z GT 0 a",
            "zincrby z 0 a",
            "zrem z x y",
            "zremrangebyscore z 10 20",
            "zremrangebylex z [x [y",
            "zremrangebyrank z 5 10",
            "zpopmin z 0",
        ] {
            run(&mut ks, line);
            assert_eq!(ks.seq(), seq, "{line}");
        }
        assert_eq!(run(&mut ks, "zadd z 5 a"), Reply::Int(0));
        assert_eq!(run(&mut ks, "zpopmax z"), Reply::Array(vec![Reply::bulk("a"), Reply::Double("5".into())]));
        assert_eq!(ks.get(b"z", NOW).map(|e| e.expire_at), Some(NOW + 100_000));
    }

    #[test]
    fn encodings_follow_redis_7_0() {
        let mut ks = KeySpace::new();
        run(&mut ks, &format!("zadd z {}", members(1, 128)));
        assert_eq!(encoding(&ks, "z"), "listpack");
        run(&mut ks, "zadd z 129 m129");
        assert_eq!(encoding(&ks, "z"), "skiplist");
        run(&mut ks, "zrem z m129 m128");
        assert_eq!(encoding(&ks, "z"), "skiplist", "never converted back");
        let long = "x".repeat(65);
        run(&mut ks, &format!("zadd l 1 {}", &long[..64]));
        assert_eq!(encoding(&ks, "l"), "listpack");
        run(&mut ks, &format!("zadd l 1 {long}"));
        assert_eq!(encoding(&ks, "l"), "skiplist");
        // -0 is 0 in a listpack, kept in a skiplist.
        run(&mut ks, "zadd n -0 a");
        assert_eq!(run(&mut ks, "zscore n a"), Reply::Double("0".into()));
        run(&mut ks, &format!("zadd s 1 {long} -0 a"));
        assert_eq!(run(&mut ks, "zscore s a"), Reply::Double("-0".into()));
        // Stored results: ZRANGESTORE adds one by one, the algebra converts at the end.
        run(&mut ks, &format!("zadd src 1 a 2 {long}"));
        run(&mut ks, "zrangestore d src 0 0");
        assert_eq!(encoding(&ks, "d"), "listpack");
        run(&mut ks, "zrangestore d src 0 -1");
        assert_eq!(encoding(&ks, "d"), "skiplist");
        run(&mut ks, "zunionstore u 1 src");
        assert_eq!(encoding(&ks, "u"), "skiplist");
        run(&mut ks, "zinterstore u 1 n");
        assert_eq!(encoding(&ks, "u"), "listpack");
        run(&mut ks, &format!("zadd big {}", members(1, 200)));
        run(&mut ks, "zrangestore d big 0 128");
        assert_eq!(encoding(&ks, "d"), "skiplist");
        run(&mut ks, "zrangestore d big 0 127");
        assert_eq!(encoding(&ks, "d"), "listpack");
        run(&mut ks, "zrangestore d big -inf +inf BYSCORE LIMIT 0 129");
        assert_eq!(encoding(&ks, "d"), "skiplist");
    }

    #[test]
    fn ranges_by_rank_score_and_lex() {
        let mut ks = KeySpace::new();
        run(&mut ks, "zadd z 1 a 2 b 3 c 4 d 5 e");
        assert_eq!(run(&mut ks, "zrange z 1 2"), bulks_of(&["b", "c"]));
        assert_eq!(run(&mut ks, "zrange z -2 -1 REV"), bulks_of(&["b", "a"]));
        assert_eq!(run(&mut ks, "zrange z -100 100"), bulks_of(&["a", "b", "c", "d", "e"]));
        assert_eq!(run(&mut ks, "zrange z 3 1"), bulks_of(&[]));
        assert_eq!(run(&mut ks, "zrange z -9223372036854775808 9223372036854775807"), run(&mut ks, "zrange z 0 -1"));
        assert_eq!(run(&mut ks, "zrange z (2 4 BYSCORE WITHSCORES"), with_scores(&[("c", "3"), ("d", "4")]));
        assert_eq!(run(&mut ks, "zrange z 4 (2 BYSCORE REV"), bulks_of(&["d", "c"]));
        assert_eq!(run(&mut ks, "zrange z -inf +inf BYSCORE LIMIT 1 2"), bulks_of(&["b", "c"]));
        assert_eq!(run(&mut ks, "zrange z -inf +inf BYSCORE LIMIT -1 2"), bulks_of(&[]));
        assert_eq!(run(&mut ks, "zrange z -inf +inf BYSCORE LIMIT 4 -5"), bulks_of(&["e"]));
        assert_eq!(run(&mut ks, "zrange z 2 2 BYSCORE"), bulks_of(&["b"]));
        assert_eq!(run(&mut ks, "zrange z (2 2 BYSCORE"), bulks_of(&[]));
        assert_eq!(run(&mut ks, "zrange z +inf +inf BYSCORE"), bulks_of(&[]));
        assert_eq!(run(&mut ks, "zrangebyscore z 5 +inf"), bulks_of(&["e"]));
        assert_eq!(run(&mut ks, "zrevrangebyscore z 5 5"), bulks_of(&["e"]));
        assert_eq!(run(&mut ks, "zrevrangebyscore z (5 (1"), bulks_of(&["d", "c", "b"]));
        assert_eq!(run(&mut ks, "zcount z (1 5"), Reply::Int(4));
        run(&mut ks, "zadd l 0 a 0 b 0 c 0 d 0 e");
        assert_eq!(run(&mut ks, "zrangebylex l (a [c"), bulks_of(&["b", "c"]));
        assert_eq!(run(&mut ks, "zrevrangebylex l [c (a"), bulks_of(&["c", "b"]));
        assert_eq!(run(&mut ks, "zrangebylex l - + LIMIT 1 2"), bulks_of(&["b", "c"]));
        assert_eq!(run(&mut ks, "zrangebylex l [c [c"), bulks_of(&["c"]));
        assert_eq!(run(&mut ks, "zrangebylex l (c [c"), bulks_of(&[]));
        assert_eq!(run(&mut ks, "zrangebylex l - -"), bulks_of(&[]));
        assert_eq!(run(&mut ks, "zrangebylex l + +"), bulks_of(&[]));
        assert_eq!(run(&mut ks, "zlexcount l [b +"), Reply::Int(4));
        assert_eq!(run(&mut ks, "zlexcount l [bb [cc"), Reply::Int(1));
        // Mixed scores: walked as Redis's listpack walks them.
        run(&mut ks, "zadd m 1 b 2 a");
        assert_eq!(run(&mut ks, "zrangebylex m [b [c"), bulks_of(&[]), "the last member is below the minimum");
        run(&mut ks, "zadd m 3 c");
        assert_eq!(run(&mut ks, "zrangebylex m - +"), bulks_of(&["b", "a", "c"]));
        assert_eq!(run(&mut ks, "zrangebylex m [b [c"), bulks_of(&["b", "a", "c"]));
        assert_eq!(run(&mut ks, "zrangebylex m [a [b"), bulks_of(&["b", "a"]));
        assert_eq!(run(&mut ks, "zrevrangebylex m [c [b"), bulks_of(&["c"]));
        assert_eq!(run(&mut ks, "zrangebylex m [b [c LIMIT 1 1"), bulks_of(&["a"]));
        // Zeros of both signs are equal to a zero bound.
        let long = "x".repeat(65);
        run(&mut ks, &format!("zadd s 1 {long} -0 a 0 b -1 c"));
        assert_eq!(run(&mut ks, "zrangebyscore s 0 0"), bulks_of(&["a", "b"]));
        assert_eq!(run(&mut ks, "zrangebyscore s -0 (1"), bulks_of(&["a", "b"]));
        assert_eq!(run(&mut ks, "zrevrangebyscore s 0 0"), bulks_of(&["b", "a"]));
        assert_eq!(run(&mut ks, "zrangebyscore s (-1 (0"), bulks_of(&[]));
        assert_eq!(run(&mut ks, "zcount s (0 +inf"), Reply::Int(1));
    }

    #[test]
    fn range_option_errors() {
        assert_eq!(
            p("zrange z 0 1 LIMIT 0 1").unwrap_err(),
            Error::msg("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        );
        assert!(p("zrange z 0 1 LIMIT 0 -1").is_ok(), "a count of -1 is no LIMIT");
        assert_eq!(
            p("zrange z - + BYLEX WITHSCORES").unwrap_err(),
            Error::msg("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
        );
        assert_eq!(
            p("zrangebylex z - + WITHSCORES").unwrap_err(),
            Error::msg("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
        );
        assert_eq!(p("zrange z 0 1 BYSCORE BYLEX").unwrap_err(), Error::Syntax);
        assert_eq!(p("zrangebyscore z 0 1 REV").unwrap_err(), Error::Syntax);
        assert_eq!(p("zrevrange z 0 1 BYSCORE").unwrap_err(), Error::Syntax);
        assert_eq!(
            p("zrevrange z 0 1 LIMIT 0 1").unwrap_err(),
            Error::msg("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        );
        assert_eq!(p("zrange z 0 1 BYSCORE LIMIT 0").unwrap_err(), Error::Syntax);
        assert_eq!(p("zrange z 0 1 BYSCORE LIMIT a 1").unwrap_err(), Error::NotInteger);
        assert_eq!(p("zrangestore d z 0 1 WITHSCORES").unwrap_err(), Error::Syntax);
        assert_eq!(p("zrange z a 1 BYSCORE").unwrap_err(), Error::msg("ERR min or max is not a float"));
        assert_eq!(p("zrange z a c BYLEX").unwrap_err(), Error::msg("ERR min or max not valid string range item"));
        assert_eq!(p("zrange z 1.5 2").unwrap_err(), Error::NotInteger);
        assert_eq!(p("zlexcount z -a +").unwrap_err(), Error::msg("ERR min or max not valid string range item"));
        assert_eq!(p("zlexcount z \"\" +").unwrap_err(), Error::msg("ERR min or max not valid string range item"));
    }

    #[test]
    fn rank_rem_and_pops() {
        let mut ks = KeySpace::new();
        run(&mut ks, "zadd z 1 a 2 b 3 c 4 d");
        assert_eq!(run(&mut ks, "zrank z c"), Reply::Int(2));
        assert_eq!(run(&mut ks, "zrevrank z c"), Reply::Int(1));
        assert_eq!(run(&mut ks, "zrank z x"), Reply::Nil);
        assert_eq!(run(&mut ks, "zrank missing x"), Reply::Nil);
        assert_eq!(run(&mut ks, "zmscore z a x"), Reply::Array(vec![Reply::Double("1".into()), Reply::Nil]));
        assert_eq!(run(&mut ks, "zremrangebyrank z 1 2"), Reply::Int(2));
        assert_eq!(run(&mut ks, "zrange z 0 -1"), bulks_of(&["a", "d"]));
        assert_eq!(run(&mut ks, "zpopmin z 5"), with_scores(&[("a", "1"), ("d", "4")]));
        assert!(ks.get(b"z", NOW).is_none());
        assert_eq!(run(&mut ks, "zpopmin z"), Reply::Array(vec![]));
        assert_eq!(run(&mut ks, "zpopmin z -1"), Error::NotPositive.into());
        assert_eq!(run(&mut ks, "zpopmin z 1 2"), Error::Syntax.into());
        run(&mut ks, "zadd b 1 x 2 y 3 z");
        assert_eq!(
            run(&mut ks, "zmpop 2 a b MAX COUNT 2"),
            Reply::Array(vec![Reply::bulk("b"), nested(&[("z", "3"), ("y", "2")])])
        );
        assert_eq!(run(&mut ks, "zmpop 1 a MIN"), Reply::NilArray);
        assert_eq!(p("zmpop 0 a MIN").unwrap_err(), Error::msg("ERR numkeys should be greater than 0"));
        assert_eq!(p("zmpop 3 a MIN").unwrap_err(), Error::Syntax);
        assert_eq!(p("zmpop 9223372036854775807 a MIN").unwrap_err(), Error::Syntax);
        assert_eq!(p("zmpop 1 a MIN COUNT 0").unwrap_err(), Error::msg("ERR count should be greater than 0"));
        assert_eq!(p("zmpop 1 a MIN COUNT 1 COUNT 2").unwrap_err(), Error::Syntax);
        assert_eq!(p("zmpop 1 a MIN COUNT").unwrap_err(), Error::Syntax);
    }

    #[test]
    fn algebra() {
        let mut ks = KeySpace::new();
        run(&mut ks, "zadd a 1 x 2 y");
        run(&mut ks, "zadd b 3 y 4 z");
        run(&mut ks, "sadd s x w");
        assert_eq!(run(&mut ks, "zunion 2 a b WITHSCORES"), with_scores(&[("x", "1"), ("z", "4"), ("y", "5")]));
        assert_eq!(
            run(&mut ks, "zunion 2 a b WEIGHTS 2 -1 WITHSCORES"),
            with_scores(&[("z", "-4"), ("y", "1"), ("x", "2")])
        );
        assert_eq!(run(&mut ks, "zunion 2 s a WITHSCORES"), with_scores(&[("w", "1"), ("x", "2"), ("y", "2")]));
        assert_eq!(run(&mut ks, "zinter 2 a b AGGREGATE MAX WITHSCORES"), with_scores(&[("y", "3")]));
        assert_eq!(run(&mut ks, "zinter 2 a a"), bulks_of(&["x", "y"]));
        assert_eq!(run(&mut ks, "zdiff 2 a b WITHSCORES"), with_scores(&[("x", "1")]));
        assert_eq!(run(&mut ks, "zdiff 2 a a"), bulks_of(&[]));
        assert_eq!(run(&mut ks, "zintercard 2 a b"), Reply::Int(1));
        assert_eq!(run(&mut ks, "zintercard 2 a a LIMIT 1"), Reply::Int(1));
        assert_eq!(run(&mut ks, "zintercard 1 a LIMIT -1"), err("ERR LIMIT can't be negative"));
        // Infinities of both signs sum to 0; 0 times infinity is 0.
        run(&mut ks, "zadd p inf x");
        run(&mut ks, "zadd n -inf x");
        assert_eq!(run(&mut ks, "zunion 2 p n WITHSCORES"), with_scores(&[("x", "0")]));
        assert_eq!(run(&mut ks, "zunion 1 p WEIGHTS 0 WITHSCORES"), with_scores(&[("x", "0")]));
        assert_eq!(run(&mut ks, "zunion 1 a WEIGHTS -0 WITHSCORES"), with_scores(&[("x", "-0"), ("y", "-0")]));
        // Options are read after the keys are looked up.
        ks.set(b"str", Value::Str(b"v".to_vec()), 0);
        assert_eq!(run(&mut ks, "zunion 2 a str FOO"), Error::WrongType.into());
        assert_eq!(run(&mut ks, "zunion 2 a b FOO"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "zunion 2 a b WEIGHTS 1"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "zunion 2 a b WEIGHTS 1 x"), err("ERR weight value is not a float"));
        assert_eq!(run(&mut ks, "zunion 2 a b AGGREGATE AVG"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "zdiff 1 a WEIGHTS 1"), Error::Syntax.into());
        assert_eq!(run(&mut ks, "zunionstore d 1 a WITHSCORES"), Error::Syntax.into());
        assert_eq!(p("zunion 0 a").unwrap_err(), Error::msg("ERR at least 1 input key is needed for 'zunion' command"));
        assert_eq!(
            p("zinterstore d 0 a").unwrap_err(),
            Error::msg("ERR at least 1 input key is needed for 'zinterstore' command")
        );
        assert_eq!(p("zunion 3 a").unwrap_err(), Error::Syntax);
        assert_eq!(p("zunion x a").unwrap_err(), Error::NotInteger);
        // Store forms: replace the destination, drop its TTL, delete it on an empty result.
        ks.set(b"d", Value::Str(b"v".to_vec()), NOW + 5000);
        assert_eq!(run(&mut ks, "zinterstore d 2 a b WEIGHTS 1 2"), Reply::Int(1));
        assert_eq!(ks.get(b"d", NOW).map(|e| e.expire_at), Some(0));
        assert_eq!(run(&mut ks, "zrange d 0 -1 WITHSCORES"), with_scores(&[("y", "8")]));
        assert_eq!(run(&mut ks, "zunionstore a 2 a b"), Reply::Int(3));
        assert_eq!(run(&mut ks, "zdiffstore d 2 missing a"), Reply::Int(0));
        assert!(ks.get(b"d", NOW).is_none());
    }

    #[test]
    fn zrandmember_forms_and_seeded_randomness() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, "zrandmember missing"), Reply::Nil);
        assert_eq!(run(&mut ks, "zrandmember missing -3 WITHSCORES"), Reply::Array(vec![]));
        run(&mut ks, "zadd one 1.5 a");
        assert_eq!(run(&mut ks, "zrandmember one"), Reply::bulk("a"));
        assert_eq!(run(&mut ks, "zrandmember one -2 WITHSCORES"), with_scores(&[("a", "1.5"), ("a", "1.5")]));
        assert_eq!(run(&mut ks, "zrandmember one 0"), Reply::Array(vec![]));
        assert_eq!(run(&mut ks, "zrandmember one x"), Error::NotInteger.into());
        assert_eq!(run(&mut ks, "zrandmember one 1 FOO"), Error::Syntax.into());
        assert_eq!(
            run(&mut ks, "zrandmember one -9223372036854775808"),
            err("ERR value is out of range, value must between -1000000 and 9223372036854775807")
        );
        assert_eq!(run(&mut ks, "zrandmember one 9223372036854775807 WITHSCORES"), err("ERR value is out of range"));
        run(&mut ks, &format!("zadd z {}", members(1, 500)));
        for (count, distinct) in [(10i64, true), (300, true), (499, true), (-700, false), (1, true)] {
            let Reply::Array(items) = run(&mut ks, &format!("zrandmember z {count}")) else { panic!() };
            assert_eq!(items.len() as u64, count.unsigned_abs());
            if distinct {
                let set: HashSet<String> = items.iter().map(|r| format!("{r:?}")).collect();
                assert_eq!(set.len(), items.len(), "{count}");
            }
        }
        let copy = KeySpace::from_image(ks.to_image());
        let mut copy = copy;
        for line in ["zrandmember z", "zrandmember z 5", "zrandmember z -50 WITHSCORES", "zrandmember z 300"] {
            assert_eq!(run_seeded(&mut ks, line, 42), run_seeded(&mut copy, line, 42), "{line}");
        }
        assert_ne!(run_seeded(&mut ks, "zrandmember z 5", 1), run_seeded(&mut ks, "zrandmember z 5", 2));
    }

    #[test]
    fn zscan_of_listpacks_and_skiplists() {
        let mut ks = KeySpace::new();
        let empty = Reply::Array(vec![Reply::bulk("0"), Reply::Array(vec![])]);
        assert_eq!(run(&mut ks, "zscan missing 0 COUNT 0"), empty);
        assert_eq!(run(&mut ks, "zscan missing x"), Error::InvalidCursor.into());
        run(&mut ks, "zadd z 1 a 2.5 b 1e17 c");
        assert_eq!(
            run(&mut ks, "zscan z 0"),
            Reply::Array(vec![Reply::bulk("0"), bulks_of(&["a", "1", "b", "2.5", "c", "100000000000000000"])])
        );
        assert_eq!(run(&mut ks, "zscan z 0 COUNT 0"), Error::Syntax.into());
        run(&mut ks, &format!("zadd big {}", members(1, 999)));
        let mut cursor = "0".to_string();
        let mut seen = HashSet::new();
        loop {
            let Reply::Array(parts) = run(&mut ks, &format!("zscan big {cursor} COUNT 50")) else { panic!() };
            let Reply::Bulk(next) = &parts[0] else { panic!() };
            let Reply::Array(items) = &parts[1] else { panic!() };
            for pair in items.chunks(2) {
                assert!(seen.insert(format!("{:?}", pair[0])));
            }
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 999);
    }

    #[test]
    fn wrongtype_for_every_command_on_another_type() {
        let mut ks = KeySpace::new();
        ks.set(b"k", Value::Str(b"v".to_vec()), 0);
        run(&mut ks, "zadd z 1 a");
        let wrong: Reply = Error::WrongType.into();
        for line in [
            "zadd k 1 a",
            "zincrby k 1 a",
            "zrem k a",
            "zcard k",
            "zcount k 0 1",
            "zlexcount k - +",
            "zscore k a",
            "zmscore k a",
            "zrank k a",
            "zrange k 0 -1",
            "zrangestore d k 0 -1",
            "zrangebyscore k 0 1",
            "zremrangebyrank k 0 1",
            "zpopmin k",
            "zpopmin k 0",
            "zmpop 2 missing k MIN",
            "zrandmember k",
            "zrandmember k 0",
            "zunion 2 z k",
            "zinter 2 missing k",
            "zdiff 2 missing k",
            "zunionstore d 2 z k",
            "zintercard 2 z k LIMIT -1",
            "zscan k 0 COUNT 0",
        ] {
            assert_eq!(run(&mut ks, line), wrong, "{line}");
        }
        assert!(ks.get(b"d", NOW).is_none());
        assert_eq!(run(&mut ks, "zmpop 2 z k MIN"), Reply::Array(vec![Reply::bulk("z"), nested(&[("a", "1")])]));
    }

    #[test]
    fn ops_round_trip_through_the_log_format() {
        for line in ["zadd z NX CH 1.5 a -inf b", "zrange z (1 +inf BYSCORE REV LIMIT 1 2", "zrangebylex z [a (c"] {
            let op = p(line).unwrap();
            let back: Op = bincode::deserialize(&bincode::serialize(&op).unwrap()).unwrap();
            assert_eq!(back, op, "{line}");
        }
    }
}
