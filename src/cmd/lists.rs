//! The list commands: pushes and pops at both ends (LPUSH, RPUSH, their X forms, LPOP, RPOP,
//! LMPOP), moves between lists (LMOVE, RPOPLPUSH), reads by index and range (LLEN, LRANGE,
//! LINDEX, LPOS) and edits in the middle (LSET, LINSERT, LREM, LTRIM), with Redis 7.0's replies
//! and errors.
//!
//! A list is a deque, so pushes and pops at either end are O(1) however long it is. Redis 7.0
//! reports every list as a `quicklist` (a small one is one listpack node inside it). A list is
//! never empty: the command that takes its last element deletes the key, as in Redis.

use super::notify::{notify, GENERIC, LIST};
use std::collections::VecDeque;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::args::{eq, int, timeout_millis};
use super::meta::*;
use super::{Ctx, DataCommand, Error, Op, Result};
use crate::data;
use crate::resp::{parse_i64, Reply};
use crate::sm::{KeySpace, List, ShortBytes, Value};

const LRF: &[&str] = &["@read", "@list", "@fast"];
const LRS: &[&str] = &["@read", "@list", "@slow"];
const LWF: &[&str] = &["@write", "@list", "@fast"];
const LWS: &[&str] = &["@write", "@list", "@slow"];
const LWB: &[&str] = &["@write", "@list", "@slow", "@blocking"];

/// The list commands, sorted by name.
#[rustfmt::skip]
pub const COMMANDS: &[DataCommand] = &[
    data!("blmove", 6, BLOCKING_OOM, 1, 2, 1, LWB, "list", "6.2.0", parse::blmove, "Pop an element from a list, push it to another list and return it; or block until one is available").blocking(5, true, false),
    data!("blmpop", -5, BLOCKING_MOVABLE, 0, 0, 0, LWB, "list", "7.0.0", parse::blmpop, "Pop elements from a list, or block until one is available").keynum(2, 3).blocking(1, false, true),
    data!("blpop", -3, BLOCKING, 1, -2, 1, LWB, "list", "2.0.0", parse::blpop, "Remove and get the first element in a list, or block until one is available").blocking(-1, false, true),
    data!("brpop", -3, BLOCKING, 1, -2, 1, LWB, "list", "2.0.0", parse::brpop, "Remove and get the last element in a list, or block until one is available").blocking(-1, false, true),
    data!("brpoplpush", 4, BLOCKING_OOM, 1, 2, 1, LWB, "list", "2.2.0", parse::brpoplpush, "Pop an element from a list, push it to another list and return it; or block until one is available").blocking(3, true, false),
    data!("lindex", 3, RS, 1, 1, 1, LRS, "list", "1.0.0", parse::lindex, "Get an element from a list by its index"),
    data!("linsert", 5, W, 1, 1, 1, LWS, "list", "2.2.0", parse::linsert, "Insert an element before or after another element in a list"),
    data!("llen", 2, R, 1, 1, 1, LRF, "list", "1.0.0", parse::llen, "Get the length of a list"),
    data!("lmove", 5, W, 1, 2, 1, LWS, "list", "6.2.0", parse::lmove, "Pop an element from a list, push it to another list and return it"),
    data!("lmpop", -4, &["write", "movablekeys"], 0, 0, 0, LWS, "list", "7.0.0", parse::lmpop, "Pop elements from a list").keynum(1, 2),
    data!("lpop", -2, WD, 1, 1, 1, LWF, "list", "1.0.0", parse::lpop, "Remove and get the first elements in a list"),
    data!("lpos", -3, RS, 1, 1, 1, LRS, "list", "6.0.6", parse::lpos, "Return the index of matching elements on a list"),
    data!("lpush", -3, WF, 1, 1, 1, LWF, "list", "1.0.0", parse::lpush, "Prepend one or multiple elements to a list"),
    data!("lpushx", -3, WF, 1, 1, 1, LWF, "list", "2.2.0", parse::lpushx, "Prepend an element to a list, only if the list exists"),
    data!("lrange", 4, RS, 1, 1, 1, LRS, "list", "1.0.0", parse::lrange, "Get a range of elements from a list"),
    data!("lrem", 4, WS, 1, 1, 1, LWS, "list", "1.0.0", parse::lrem, "Remove elements from a list"),
    data!("lset", 4, W, 1, 1, 1, LWS, "list", "1.0.0", parse::lset, "Set the value of an element in a list by its index"),
    data!("ltrim", 4, WS, 1, 1, 1, LWS, "list", "1.0.0", parse::ltrim, "Trim a list to the specified range"),
    data!("rpop", -2, WD, 1, 1, 1, LWF, "list", "1.0.0", parse::rpop, "Remove and get the last elements in a list"),
    data!("rpoplpush", 3, W, 1, 2, 1, LWS, "list", "1.2.0", parse::rpoplpush, "Remove the last element in a list, prepend it to another list and return it"),
    data!("rpush", -3, WF, 1, 1, 1, LWF, "list", "1.0.0", parse::rpush, "Append one or multiple elements to a list"),
    data!("rpushx", -3, WF, 1, 1, 1, LWF, "list", "2.2.0", parse::rpushx, "Append an element to a list, only if the list exists"),
];

/// An end of a list: LEFT is the head (index 0), RIGHT the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum End {
    Left,
    Right,
}

/// One list operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListOp {
    // Reads.
    Len(Bytes),
    Range {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    /// LINDEX: the index is read once the key is found to be a list (Redis's order), so it
    /// travels as given.
    Index {
        key: Bytes,
        index: Bytes,
    },
    /// LPOS: `rank` is never 0 (negative: from the tail); `count` `None` is a single answer,
    /// `Some(0)` every match; `maxlen` 0 is no limit.
    Pos {
        key: Bytes,
        element: Bytes,
        rank: i64,
        count: Option<u64>,
        maxlen: u64,
    },
    // Writes.
    /// LPUSH, RPUSH and (`existing`) LPUSHX, RPUSHX.
    Push {
        key: Bytes,
        end: End,
        elements: Vec<Bytes>,
        existing: bool,
    },
    /// LPOP, RPOP, with their count if given.
    Pop {
        key: Bytes,
        end: End,
        count: Option<u64>,
    },
    /// LSET: the index is read once the key is found (Redis's order).
    Set {
        key: Bytes,
        index: Bytes,
        element: Bytes,
    },
    Insert {
        key: Bytes,
        after: bool,
        pivot: Bytes,
        element: Bytes,
    },
    Rem {
        key: Bytes,
        count: i64,
        element: Bytes,
    },
    Trim {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    /// LMOVE and RPOPLPUSH.
    Move {
        src: Bytes,
        dst: Bytes,
        from: End,
        to: End,
    },
    /// LMPOP: pops from the first non-empty list of `keys`.
    MPop {
        keys: Vec<Bytes>,
        end: End,
        count: u64,
    },
    /// BLPOP and BRPOP once they pop: one element from the first non-empty list of `keys`.
    PopFirst {
        keys: Vec<Bytes>,
        end: End,
    },
}

impl ListOp {
    /// Whether the operation may change the keyspace.
    pub fn is_write(&self) -> bool {
        !matches!(self, ListOp::Len(_) | ListOp::Range { .. } | ListOp::Index { .. } | ListOp::Pos { .. })
    }
}

/// What a list pop took, read back from the operation and its reply: the key, the end, and
/// the elements in the order they came off (`--pop-delivery at-least-once` puts them back when
/// a leader change may have cut the pop's reply off; see `crate::server::requeue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Popped {
    pub key: Bytes,
    pub end: End,
    pub elements: Vec<Bytes>,
}

impl Popped {
    /// The elements an applied LPOP, RPOP, LMPOP (and BLPOP, BRPOP, BLMPOP, which propose
    /// those) took, if it took any. Moves (LMOVE, BLMOVE) keep their element in the destination
    /// and are not pops here; neither are errors and nils.
    pub fn from_reply(op: &Op, reply: &Reply) -> Option<Popped> {
        let Op::List(op) = op else { return None };
        let bulks = |items: &[Reply]| {
            items
                .iter()
                .map(|r| if let Reply::Bulk(b) = r { Some(b.clone()) } else { None })
                .collect::<Option<Vec<_>>>()
        };
        let (key, end, elements) = match (op, reply) {
            (ListOp::Pop { key, end, .. }, Reply::Bulk(b)) => (key.clone(), *end, vec![b.clone()]),
            (ListOp::Pop { key, end, .. }, Reply::Array(items)) => (key.clone(), *end, bulks(items)?),
            (ListOp::PopFirst { end, .. }, Reply::Array(items)) => match items.as_slice() {
                [Reply::Bulk(key), Reply::Bulk(b)] => (key.clone(), *end, vec![b.clone()]),
                _ => return None,
            },
            (ListOp::MPop { end, .. }, Reply::Array(items)) => match items.as_slice() {
                [Reply::Bulk(key), Reply::Array(popped)] => (key.clone(), *end, bulks(popped)?),
                _ => return None,
            },
            _ => return None,
        };
        (!elements.is_empty()).then_some(Popped { key, end, elements })
    }

    /// The push that puts the elements back where they were: at the same end, the first one
    /// taken outermost again.
    pub fn restore(&self) -> Op {
        let elements = self.elements.iter().rev().cloned().collect();
        Op::List(ListOp::Push { key: self.key.clone(), end: self.end, elements, existing: false })
    }

    /// The pushes that undo `pops` (in the order they were applied): the last one first, so
    /// that several pops from one end come back in their order.
    pub fn undo(pops: &[Popped]) -> Vec<Op> {
        pops.iter().rev().map(Popped::restore).collect()
    }
}

/// The argument parsers, one per command, named after it.
mod parse {
    use super::*;

    fn op(op: ListOp) -> Result<Op> {
        Ok(Op::List(op))
    }

    fn a(args: &[Bytes], i: usize) -> Bytes {
        args[i].clone()
    }

    /// LEFT or RIGHT, else a syntax error.
    pub(super) fn end(arg: &[u8]) -> Result<End> {
        if eq(arg, "left") {
            Ok(End::Left)
        } else if eq(arg, "right") {
            Ok(End::Right)
        } else {
            Err(Error::Syntax)
        }
    }

    fn push(args: &[Bytes], end: End, existing: bool) -> Result<Op> {
        op(ListOp::Push { key: a(args, 1), end, elements: args[2..].to_vec(), existing })
    }

    pub fn lpush(args: &[Bytes], _: u64) -> Result<Op> {
        push(args, End::Left, false)
    }

    pub fn rpush(args: &[Bytes], _: u64) -> Result<Op> {
        push(args, End::Right, false)
    }

    pub fn lpushx(args: &[Bytes], _: u64) -> Result<Op> {
        push(args, End::Left, true)
    }

    pub fn rpushx(args: &[Bytes], _: u64) -> Result<Op> {
        push(args, End::Right, true)
    }

    /// The count is read before the key is looked up.
    fn pop(args: &[Bytes], end: End) -> Result<Op> {
        let count = match args.len() {
            2 => None,
            3 => match parse_i64(&args[2]) {
                Some(n) if n >= 0 => Some(n as u64),
                _ => return Err(Error::NotPositive),
            },
            _ => return Err(Error::WrongArity(if end == End::Left { "lpop" } else { "rpop" }.into())),
        };
        op(ListOp::Pop { key: a(args, 1), end, count })
    }

    pub fn lpop(args: &[Bytes], _: u64) -> Result<Op> {
        pop(args, End::Left)
    }

    pub fn rpop(args: &[Bytes], _: u64) -> Result<Op> {
        pop(args, End::Right)
    }

    pub fn llen(args: &[Bytes], _: u64) -> Result<Op> {
        op(ListOp::Len(a(args, 1)))
    }

    pub fn lrange(args: &[Bytes], _: u64) -> Result<Op> {
        op(ListOp::Range { key: a(args, 1), start: int(&args[2])?, stop: int(&args[3])? })
    }

    pub fn lindex(args: &[Bytes], _: u64) -> Result<Op> {
        op(ListOp::Index { key: a(args, 1), index: a(args, 2) })
    }

    pub fn lset(args: &[Bytes], _: u64) -> Result<Op> {
        op(ListOp::Set { key: a(args, 1), index: a(args, 2), element: a(args, 3) })
    }

    /// BEFORE or AFTER is checked before the key is looked up.
    pub fn linsert(args: &[Bytes], _: u64) -> Result<Op> {
        let after = if eq(&args[2], "after") {
            true
        } else if eq(&args[2], "before") {
            false
        } else {
            return Err(Error::Syntax);
        };
        op(ListOp::Insert { key: a(args, 1), after, pivot: a(args, 3), element: a(args, 4) })
    }

    pub fn lrem(args: &[Bytes], _: u64) -> Result<Op> {
        op(ListOp::Rem { key: a(args, 1), count: int(&args[2])?, element: a(args, 3) })
    }

    pub fn ltrim(args: &[Bytes], _: u64) -> Result<Op> {
        op(ListOp::Trim { key: a(args, 1), start: int(&args[2])?, stop: int(&args[3])? })
    }

    /// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`, every option checked
    /// (in order, a later one overriding an earlier one) before the key is looked up.
    pub fn lpos(args: &[Bytes], _: u64) -> Result<Op> {
        let (mut rank, mut count, mut maxlen) = (1i64, None, 0u64);
        let mut j = 3;
        while j < args.len() {
            let more = j + 1 < args.len();
            if eq(&args[j], "rank") && more {
                j += 1;
                rank = match parse_i64(&args[j]) {
                    None => return Err(Error::NotInteger),
                    // Redis 7.0 negates the rank in a C long: the lowest one stays negative
                    // and every match reaches it, so it finds the last match, as -1 does.
                    Some(i64::MIN) => -1,
                    Some(0) => {
                        return Err(Error::msg(
                            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
                             or use negative to start from the end of the list",
                        ))
                    }
                    Some(r) => r,
                };
            } else if eq(&args[j], "count") && more {
                j += 1;
                count = Some(positive(&args[j], "COUNT")?);
            } else if eq(&args[j], "maxlen") && more {
                j += 1;
                maxlen = positive(&args[j], "MAXLEN")?;
            } else {
                return Err(Error::Syntax);
            }
            j += 1;
        }
        op(ListOp::Pos { key: a(args, 1), element: a(args, 2), rank, count, maxlen })
    }

    /// A non-negative integer option, with Redis's "`name` can't be negative".
    fn positive(arg: &[u8], name: &str) -> Result<u64> {
        match parse_i64(arg) {
            None => Err(Error::NotInteger),
            Some(n) if n < 0 => Err(Error::msg(format!("ERR {name} can't be negative"))),
            Some(n) => Ok(n as u64),
        }
    }

    pub fn lmove(args: &[Bytes], _: u64) -> Result<Op> {
        let (from, to) = (end(&args[3])?, end(&args[4])?);
        op(ListOp::Move { src: a(args, 1), dst: a(args, 2), from, to })
    }

    pub fn rpoplpush(args: &[Bytes], _: u64) -> Result<Op> {
        op(ListOp::Move { src: a(args, 1), dst: a(args, 2), from: End::Right, to: End::Left })
    }

    /// `BLPOP key [key ...] timeout`: the timeout is checked first.
    fn bpop(args: &[Bytes], end: End) -> Result<Op> {
        timeout_millis(&args[args.len() - 1])?;
        op(ListOp::PopFirst { keys: args[1..args.len() - 1].to_vec(), end })
    }

    pub fn blpop(args: &[Bytes], _: u64) -> Result<Op> {
        bpop(args, End::Left)
    }

    pub fn brpop(args: &[Bytes], _: u64) -> Result<Op> {
        bpop(args, End::Right)
    }

    /// The directions are checked before the timeout.
    pub fn blmove(args: &[Bytes], now: u64) -> Result<Op> {
        let op = lmove(&args[..5], now)?;
        timeout_millis(&args[5])?;
        Ok(op)
    }

    pub fn brpoplpush(args: &[Bytes], now: u64) -> Result<Op> {
        timeout_millis(&args[3])?;
        rpoplpush(&args[..3], now)
    }

    /// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`: LMPOP's checks, then
    /// the timeout's.
    pub fn blmpop(args: &[Bytes], now: u64) -> Result<Op> {
        let mut rest = Vec::with_capacity(args.len() - 1);
        rest.push(args[0].clone());
        rest.extend_from_slice(&args[2..]);
        let op = lmpop(&rest, now)?;
        timeout_millis(&args[1])?;
        Ok(op)
    }

    /// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`, checked in Redis's order.
    pub fn lmpop(args: &[Bytes], _: u64) -> Result<Op> {
        let numkeys = match parse_i64(&args[1]) {
            Some(n) if n >= 1 => n as u64,
            _ => return Err(Error::msg("ERR numkeys should be greater than 0")),
        };
        let where_idx = match usize::try_from(numkeys).ok().and_then(|n| n.checked_add(2)) {
            Some(w) if w < args.len() => w,
            _ => return Err(Error::Syntax),
        };
        let end = end(&args[where_idx])?;
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
        op(ListOp::MPop { keys: args[2..where_idx].to_vec(), end, count: count.unwrap_or(1) })
    }
}

/// The deque of a list value, or WRONGTYPE.
fn as_list(value: &Value) -> Result<&VecDeque<ShortBytes>> {
    match value {
        Value::List(l) => Ok(&l.0),
        _ => Err(Error::WrongType),
    }
}

/// The deque of an entry already checked to be a list.
fn list_mut(value: &mut Value) -> &mut VecDeque<ShortBytes> {
    match value {
        Value::List(l) => &mut l.0,
        _ => unreachable!("checked a list"),
    }
}

/// The list at `key`, `None` when missing, or WRONGTYPE.
fn read_list<'a>(ks: &'a KeySpace, key: &[u8], now: u64) -> Result<Option<&'a VecDeque<ShortBytes>>> {
    ks.get(key, now).map(|e| as_list(&e.value)).transpose()
}

/// The live slot of the list at `key` for a write, `None` when missing, or WRONGTYPE.
fn list_slot(ks: &mut KeySpace, key: &[u8], now: u64) -> Result<Option<u32>> {
    match ks.live_slot(key, now) {
        None => Ok(None),
        Some(slot) => {
            as_list(&ks.at(slot).expect("live slot").value)?;
            Ok(Some(slot))
        }
    }
}

fn bulk(e: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(e))
}

fn bulks<'a>(elements: impl Iterator<Item = &'a ShortBytes>) -> Reply {
    Reply::Array(elements.map(|e| bulk(e)).collect())
}

/// A Redis index (negative: from the tail) into a list of `len`, if inside it.
fn position(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { index.checked_add(len)? } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

/// The inclusive range LRANGE and LTRIM select from `start` and `stop` in a list of `len`, by
/// Redis's clamping rules; `None` when empty.
fn span(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { start.saturating_add(len) } else { start };
    let mut stop = if stop < 0 { stop.saturating_add(len) } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, stop as usize))
}

fn push_at(list: &mut VecDeque<ShortBytes>, end: End, element: ShortBytes) {
    match end {
        End::Left => list.push_front(element),
        End::Right => list.push_back(element),
    }
}

fn pop_at(list: &mut VecDeque<ShortBytes>, end: End) -> Option<ShortBytes> {
    match end {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    }
}

/// Pops up to `count` elements from the list at `slot` (a live, non-empty list), deleting the
/// key when it empties; the elements in pop order.
fn pop_some(ks: &mut KeySpace, slot: u32, key: &[u8], end: End, count: u64) -> Vec<ShortBytes> {
    let (popped, empty) = pop_quietly(ks, slot, end, count);
    notify(ks, LIST, pop_event(end), key);
    if empty {
        notify(ks, GENERIC, "del", key);
    }
    popped
}

/// Pops without publishing events; whether the list emptied (and was removed).
fn pop_quietly(ks: &mut KeySpace, slot: u32, end: End, count: u64) -> (Vec<ShortBytes>, bool) {
    let (popped, empty) = ks.update(slot, |e| {
        let list = list_mut(&mut e.value);
        let n = usize::try_from(count).unwrap_or(usize::MAX).min(list.len());
        let popped: Vec<_> = (0..n).filter_map(|_| pop_at(list, end)).collect();
        (popped, list.is_empty())
    });
    if empty {
        ks.remove_slot(slot);
    }
    (popped, empty)
}

fn pop_event(end: End) -> &'static str {
    match end {
        End::Left => "lpop",
        End::Right => "rpop",
    }
}

fn push_event(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

/// Applies a list operation (reads included, as inside EXEC).
pub fn apply(ks: &mut KeySpace, op: &ListOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        ListOp::Push { key, end, elements, existing } => {
            let len = match list_slot(ks, key, now)? {
                Some(slot) => ks.update(slot, |e| {
                    let list = list_mut(&mut e.value);
                    for el in elements {
                        push_at(list, *end, el.as_ref().into());
                    }
                    list.len()
                }),
                None if *existing => 0,
                None => {
                    let mut list = VecDeque::with_capacity(elements.len());
                    for el in elements {
                        push_at(&mut list, *end, el.as_ref().into());
                    }
                    let len = list.len();
                    ks.set(key, Value::List(List(Box::new(list))), 0);
                    len
                }
            };
            if len > 0 {
                notify(ks, LIST, push_event(*end), key);
            }
            Reply::Int(len as i64)
        }
        ListOp::Pop { key, end, count } => {
            let Some(slot) = list_slot(ks, key, now)? else {
                return Ok(if count.is_some() { Reply::NilArray } else { Reply::Nil });
            };
            match count {
                None => Reply::Bulk(pop_some(ks, slot, key, *end, 1).pop().expect("a list is never empty").into()),
                Some(0) => Reply::Array(vec![]),
                Some(n) => {
                    Reply::Array(pop_some(ks, slot, key, *end, *n).into_iter().map(|e| Reply::Bulk(e.into())).collect())
                }
            }
        }
        ListOp::Set { key, index, element } => {
            let Some(slot) = list_slot(ks, key, now)? else {
                return Err(Error::NoSuchKey);
            };
            let index = int(index)?;
            let len = as_list(&ks.at(slot).expect("live slot").value)?.len();
            let Some(i) = position(index, len) else {
                return Err(Error::msg("ERR index out of range"));
            };
            ks.update(slot, |e| list_mut(&mut e.value)[i] = element.as_ref().into());
            notify(ks, LIST, "lset", key);
            Reply::Ok
        }
        ListOp::Insert { key, after, pivot, element } => {
            let Some(slot) = list_slot(ks, key, now)? else {
                return Ok(Reply::Int(0));
            };
            let list = as_list(&ks.at(slot).expect("live slot").value)?;
            let Some(at) = list.iter().position(|e| **e == **pivot) else {
                return Ok(Reply::Int(-1));
            };
            let at = if *after { at + 1 } else { at };
            let len = ks.update(slot, |e| {
                let list = list_mut(&mut e.value);
                list.insert(at, element.as_ref().into());
                list.len()
            });
            notify(ks, LIST, "linsert", key);
            Reply::Int(len as i64)
        }
        ListOp::Rem { key, count, element } => {
            let Some(slot) = list_slot(ks, key, now)? else {
                return Ok(Reply::Int(0));
            };
            let list = as_list(&ks.at(slot).expect("live slot").value)?;
            let limit =
                if *count == 0 { usize::MAX } else { usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX) };
            // The positions to remove, found before anything changes (a key with nothing to
            // remove is left untouched, as in Redis).
            let matches = |i: &usize| *list[*i] == **element;
            let mut found: Vec<usize> = if *count < 0 {
                (0..list.len()).rev().filter(matches).take(limit).collect()
            } else {
                (0..list.len()).filter(matches).take(limit).collect()
            };
            found.sort_unstable();
            if found.is_empty() {
                return Ok(Reply::Int(0));
            }
            let empty = ks.update(slot, |e| {
                let list = list_mut(&mut e.value);
                let mut doomed = found.iter().copied().peekable();
                let mut i = 0;
                list.retain(|_| {
                    let keep = doomed.peek() != Some(&i);
                    if !keep {
                        doomed.next();
                    }
                    i += 1;
                    keep
                });
                list.is_empty()
            });
            if empty {
                ks.remove_slot(slot);
            }
            notify(ks, LIST, "lrem", key);
            if empty {
                notify(ks, GENERIC, "del", key);
            }
            Reply::Int(found.len() as i64)
        }
        ListOp::Trim { key, start, stop } => {
            let Some(slot) = list_slot(ks, key, now)? else {
                return Ok(Reply::Ok);
            };
            // Redis touches the key even when the trim removes nothing.
            let empty = ks.update(slot, |e| {
                let list = list_mut(&mut e.value);
                match span(*start, *stop, list.len()) {
                    None => list.clear(),
                    Some((first, last)) => {
                        list.truncate(last + 1);
                        list.drain(..first);
                    }
                }
                list.is_empty()
            });
            if empty {
                ks.remove_slot(slot);
            }
            notify(ks, LIST, "ltrim", key);
            if empty {
                notify(ks, GENERIC, "del", key);
            }
            Reply::Ok
        }
        ListOp::Move { src, dst, from, to } => {
            let Some(src_slot) = list_slot(ks, src, now)? else {
                return Ok(Reply::Nil);
            };
            // The destination's type is checked before anything is popped.
            list_slot(ks, dst, now)?;
            if src == dst {
                // A rotation: the element goes back before the list could empty.
                let element = ks.update(src_slot, |e| {
                    let list = list_mut(&mut e.value);
                    let element = pop_at(list, *from).expect("a list is never empty");
                    let reply = bulk(&element);
                    push_at(list, *to, element);
                    reply
                });
                notify(ks, LIST, push_event(*to), dst);
                notify(ks, LIST, pop_event(*from), src);
                return Ok(element);
            }
            let (mut popped, emptied) = pop_quietly(ks, src_slot, *from, 1);
            let element = popped.pop().expect("a list is never empty");
            let reply = Reply::Bulk(Bytes::copy_from_slice(&element));
            match list_slot(ks, dst, now)? {
                Some(slot) => ks.update(slot, |e| push_at(list_mut(&mut e.value), *to, element)),
                None => {
                    ks.set(dst, Value::List(List(Box::new(VecDeque::from([element])))), 0);
                }
            }
            // In Redis's order: the push, the pop, the deletion of an emptied source.
            notify(ks, LIST, push_event(*to), dst);
            notify(ks, LIST, pop_event(*from), src);
            if emptied {
                notify(ks, GENERIC, "del", src);
            }
            reply
        }
        ListOp::MPop { keys, end, count } => {
            for key in keys {
                let Some(slot) = list_slot(ks, key, now)? else { continue };
                let popped = pop_some(ks, slot, key, *end, *count);
                let elements = Reply::Array(popped.into_iter().map(|e| Reply::Bulk(e.into())).collect());
                return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), elements]));
            }
            Reply::NilArray
        }
        ListOp::PopFirst { keys, end } => {
            for key in keys {
                let Some(slot) = list_slot(ks, key, now)? else { continue };
                let element = pop_some(ks, slot, key, *end, 1).pop().expect("a list is never empty");
                return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(element.into())]));
            }
            Reply::NilArray
        }
        read => query(ks, read, ctx)?,
    })
}

/// Answers a read-only list operation.
pub fn query(ks: &KeySpace, op: &ListOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        ListOp::Len(key) => Reply::Int(read_list(ks, key, now)?.map_or(0, VecDeque::len) as i64),
        ListOp::Range { key, start, stop } => match read_list(ks, key, now)? {
            None => Reply::Array(vec![]),
            Some(list) => match span(*start, *stop, list.len()) {
                None => Reply::Array(vec![]),
                Some((first, last)) => bulks(list.range(first..=last)),
            },
        },
        ListOp::Index { key, index } => {
            let Some(list) = read_list(ks, key, now)? else {
                return Ok(Reply::Nil);
            };
            match position(int(index)?, list.len()) {
                Some(i) => bulk(&list[i]),
                None => Reply::Nil,
            }
        }
        ListOp::Pos { key, element, rank, count, maxlen } => {
            let Some(list) = read_list(ks, key, now)? else {
                return Ok(if count.is_some() { Reply::Array(vec![]) } else { Reply::Nil });
            };
            let len = list.len();
            let skip = rank.unsigned_abs() - 1;
            let scanned = if *maxlen == 0 { len } else { len.min(usize::try_from(*maxlen).unwrap_or(usize::MAX)) };
            let wanted = match count {
                None => 1,
                Some(0) => usize::MAX,
                Some(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            };
            let indexes: Box<dyn Iterator<Item = usize>> =
                if *rank < 0 { Box::new((0..len).rev().take(scanned)) } else { Box::new((0..len).take(scanned)) };
            let found: Vec<Reply> = indexes
                .filter(|&i| *list[i] == **element)
                .skip(usize::try_from(skip).unwrap_or(usize::MAX))
                .take(wanted)
                .map(|i| Reply::Int(i as i64))
                .collect();
            match count {
                Some(_) => Reply::Array(found),
                None => found.into_iter().next().unwrap_or(Reply::Nil),
            }
        }
        write => unreachable!("query of a write operation {write:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_follow_redis_clamping() {
        assert_eq!(span(0, -1, 5), Some((0, 4)));
        assert_eq!(span(-100, 100, 5), Some((0, 4)));
        assert_eq!(span(3, 1, 5), None);
        assert_eq!(span(5, 10, 5), None);
        assert_eq!(span(i64::MAX, i64::MIN, 5), None);
        assert_eq!(span(i64::MIN, i64::MAX, 5), Some((0, 4)));
        assert_eq!(span(0, 0, 0), None);
    }

    #[test]
    fn a_restored_pop_leaves_the_list_as_it_was() {
        let ctx = Ctx { now: 1, seed: 1 };
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let range =
            |ks: &mut KeySpace| apply(ks, &ListOp::Range { key: b("q"), start: 0, stop: -1 }, ctx).expect("range");
        let pops = [
            ListOp::Pop { key: b("q"), end: End::Right, count: None },
            ListOp::Pop { key: b("q"), end: End::Left, count: Some(3) },
            ListOp::PopFirst { keys: vec![b("none"), b("q")], end: End::Right },
            ListOp::MPop { keys: vec![b("q")], end: End::Left, count: 2 },
        ];
        for pop in pops {
            let mut ks = KeySpace::new();
            let push = ListOp::Push {
                key: b("q"),
                end: End::Right,
                elements: vec![b("a"), b("b"), b("c"), b("d")],
                existing: false,
            };
            apply(&mut ks, &push, ctx).expect("push");
            let before = range(&mut ks);
            let op = Op::List(pop.clone());
            let reply = apply(&mut ks, &pop, ctx).expect("pop");
            let popped = Popped::from_reply(&op, &reply).unwrap_or_else(|| panic!("{pop:?} took nothing: {reply:?}"));
            assert_eq!(popped.key, b("q"));
            assert_ne!(range(&mut ks), before);
            let Op::List(restore) = popped.restore() else { unreachable!() };
            apply(&mut ks, &restore, ctx).expect("restore");
            assert_eq!(range(&mut ks), before, "{pop:?}");
        }
        // Several pops, from both ends, undone together.
        let mut ks = KeySpace::new();
        let push = ListOp::Push {
            key: b("q"),
            end: End::Right,
            elements: vec![b("a"), b("b"), b("c"), b("d"), b("e")],
            existing: false,
        };
        apply(&mut ks, &push, ctx).expect("push");
        let before = range(&mut ks);
        let mut pops = Vec::new();
        for (end, count) in [(End::Left, None), (End::Right, Some(2)), (End::Left, None)] {
            let pop = ListOp::Pop { key: b("q"), end, count };
            let reply = apply(&mut ks, &pop, ctx).expect("pop");
            pops.push(Popped::from_reply(&Op::List(pop), &reply).expect("popped"));
        }
        assert_eq!(range(&mut ks), Reply::Array(vec![Reply::Bulk(b("c"))]));
        for op in Popped::undo(&pops) {
            let Op::List(op) = op else { unreachable!() };
            apply(&mut ks, &op, ctx).expect("undo");
        }
        assert_eq!(range(&mut ks), before);

        let nothing = ListOp::Pop { key: b("missing"), end: End::Left, count: None };
        assert_eq!(Popped::from_reply(&Op::List(nothing), &Reply::Nil), None);
        let moved = ListOp::Move { src: b("q"), dst: b("r"), from: End::Left, to: End::Right };
        assert_eq!(Popped::from_reply(&Op::List(moved), &Reply::Bulk(b("a"))), None);
        let none = ListOp::Pop { key: b("q"), end: End::Left, count: Some(0) };
        assert_eq!(Popped::from_reply(&Op::List(none), &Reply::Array(vec![])), None);
    }

    #[test]
    fn positions() {
        assert_eq!(position(-1, 3), Some(2));
        assert_eq!(position(-4, 3), None);
        assert_eq!(position(i64::MIN, 3), None);
        assert_eq!(position(3, 3), None);
    }
}
