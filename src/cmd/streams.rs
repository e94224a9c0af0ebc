//! The stream commands every stream user needs: XADD (with NOMKSTREAM, MAXLEN/MINID trimming
//! and `*`, `<ms>-*` or explicit IDs), XRANGE, XREVRANGE, XLEN, XDEL, XTRIM and XREAD (with
//! BLOCK: the connection waits, see `server::conn`), with Redis 7.0's replies and errors.
//! Consumer groups are not here yet.
//!
//! An ID XADD generates from `*` uses the request's stamped time, so every replica gives the
//! entry the same ID. Approximate trimming (`~`) removes whole nodes from the head, as Redis
//! removes whole listpack nodes: a stream groups its entries into nodes as Redis would (100
//! entries, or about 4 KiB, each), so `MAXLEN ~` keeps about what Redis keeps; `=` (the
//! default) trims exactly.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::args::{eq, int, timeout_millis_exact};
use super::meta::*;
use super::notify::{notify, STREAM};
use super::{Ctx, DataCommand, Error, Op, Result};
use crate::data;
use crate::resp::Reply;
use crate::sm::{KeySpace, Stream, StreamId, Value};

const XRF: &[&str] = &["@read", "@stream", "@fast"];
const XRS: &[&str] = &["@read", "@stream", "@slow"];
const XRB: &[&str] = &["@read", "@stream", "@slow", "@blocking"];
const XWF: &[&str] = &["@write", "@stream", "@fast"];
const XWS: &[&str] = &["@write", "@stream", "@slow"];

/// The stream commands, sorted by name.
#[rustfmt::skip]
pub const COMMANDS: &[DataCommand] = &[
    data!("xadd", -5, WF, 1, 1, 1, XWF, "stream", "5.0.0", parse::xadd, "Appends a new entry to a stream"),
    data!("xdel", -3, WD, 1, 1, 1, XWF, "stream", "5.0.0", parse::xdel, "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist."),
    data!("xlen", 2, R, 1, 1, 1, XRF, "stream", "5.0.0", parse::xlen, "Return the number of entries in a stream"),
    data!("xread", -4, &["readonly", "blocking", "movablekeys"], 0, 0, 0, XRB, "stream", "5.0.0", parse::xread, "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.").keyword("streams"),
    data!("xrange", -4, RS, 1, 1, 1, XRS, "stream", "5.0.0", parse::xrange, "Return a range of elements in a stream, with IDs matching the specified IDs interval"),
    data!("xrevrange", -4, RS, 1, 1, 1, XRS, "stream", "5.0.0", parse::xrevrange, "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE"),
    data!("xtrim", -4, WS, 1, 1, 1, XWS, "stream", "5.0.0", parse::xtrim, "Trims the stream to (approximately if '~' is passed) a certain size"),
];

/// The ID XADD is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NewId {
    /// `*`: the entry's time, or one more than the last ID.
    Auto,
    /// `<ms>-*`: the sequence is chosen.
    Ms(u64),
    Exact(StreamId),
}

/// A trimming rule (XADD's options, XTRIM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trim {
    pub rule: Rule,
    pub approx: bool,
    /// Most entries an approximate trim removes (0: no limit).
    pub limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    MaxLen(u64),
    MinId(StreamId),
}

/// Where XREAD reads one stream from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadFrom {
    /// `$`: after the stream's last ID when the command runs.
    Last,
    /// After this ID.
    After(StreamId),
    /// Not an ID: an error, reported after the key's type check, as Redis orders them.
    Invalid,
    /// `>`, which only XREADGROUP takes.
    Undelivered,
}

/// One stream operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamOp {
    // Reads.
    Len(Bytes),
    /// XRANGE (and XREVRANGE, `rev`): inclusive bounds (an exclusive bound was moved by one);
    /// `count` `None` is no limit.
    Range {
        key: Bytes,
        start: StreamId,
        end: StreamId,
        count: Option<u64>,
        rev: bool,
    },
    /// XREAD: each stream's entries after its ID, at most `count` a stream (0: all).
    /// `block` (milliseconds, 0: forever) is what the connection waits for when nothing is
    /// there; the operation itself never waits (inside MULTI or a script it answers at once).
    Read {
        streams: Vec<(Bytes, ReadFrom)>,
        count: u64,
        block: Option<u64>,
    },
    // Writes.
    Add {
        key: Bytes,
        no_mkstream: bool,
        trim: Option<Trim>,
        id: NewId,
        fields: Vec<Bytes>,
    },
    Del {
        key: Bytes,
        ids: Vec<StreamId>,
    },
    Trim {
        key: Bytes,
        trim: Trim,
    },
}

impl StreamOp {
    /// Whether the operation may change the keyspace.
    pub fn is_write(&self) -> bool {
        !matches!(self, StreamOp::Len(_) | StreamOp::Range { .. } | StreamOp::Read { .. })
    }

    /// XREAD with BLOCK: its streams, with `$` replaced by each stream's last ID now (0-0 for a
    /// missing key), so that waiting for "what comes after" keeps its meaning; the keys.
    pub fn pin_last(&mut self, ks: &KeySpace, now: u64) -> Vec<Bytes> {
        let StreamOp::Read { streams, .. } = self else { return Vec::new() };
        for (key, from) in streams.iter_mut() {
            if *from == ReadFrom::Last {
                if let Ok(s) = read_stream(ks, key, now) {
                    *from = ReadFrom::After(s.map_or(StreamId::default(), |s| s.last_id));
                }
            }
        }
        streams.iter().map(|(k, _)| k.clone()).collect()
    }
}

fn invalid_id() -> Error {
    Error::msg("ERR Invalid stream ID specified as stream command argument")
}

/// Parses an ID: `-`, `+` (unless `strict`), `<ms>`, `<ms>-<seq>`; a missing sequence is
/// `missing_seq`. With `auto_seq`, `<ms>-*` answers `(ms, None)`.
fn parse_id(arg: &[u8], missing_seq: u64, strict: bool) -> Result<StreamId> {
    match parse_id_or_auto(arg, missing_seq, strict, false)? {
        (id, Some(seq)) => Ok(StreamId { ms: id, seq }),
        (_, None) => Err(invalid_id()),
    }
}

fn parse_id_or_auto(arg: &[u8], missing_seq: u64, strict: bool, auto_seq: bool) -> Result<(u64, Option<u64>)> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    match arg {
        b"-" if !strict => return Ok((0, Some(0))),
        b"+" if !strict => return Ok((u64::MAX, Some(u64::MAX))),
        _ => {}
    }
    let number = |s: &[u8]| -> Result<u64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return Err(invalid_id());
        }
        std::str::from_utf8(s).ok().and_then(|t| t.parse().ok()).ok_or_else(invalid_id)
    };
    match arg.iter().position(|&b| b == b'-') {
        None => Ok((number(arg)?, Some(missing_seq))),
        Some(dash) => {
            let ms = number(&arg[..dash])?;
            let seq = &arg[dash + 1..];
            if auto_seq && seq == b"*" {
                Ok((ms, None))
            } else {
                Ok((ms, Some(number(seq)?)))
            }
        }
    }
}

/// XADD's and XTRIM's options from `args[i..]`; for XADD, stops at the ID and returns its index.
fn parse_trim_options(args: &[Bytes], xadd: bool) -> Result<(Option<Trim>, bool, usize)> {
    let mut rule = None;
    let mut approx = false;
    let mut limit: Option<i64> = None;
    let mut no_mkstream = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (eq(opt, "maxlen") || eq(opt, "minid")) && more > 0 {
            if rule.is_some() {
                return Err(Error::msg(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            approx = false;
            if more >= 2 && (args[i + 1].as_ref() == b"~" || args[i + 1].as_ref() == b"=") {
                approx = args[i + 1].as_ref() == b"~";
                i += 1;
            }
            rule = Some(if eq(opt, "maxlen") {
                let n = int(&args[i + 1])?;
                if n < 0 {
                    return Err(Error::msg("ERR The MAXLEN argument must be >= 0."));
                }
                Rule::MaxLen(n as u64)
            } else {
                Rule::MinId(parse_id(&args[i + 1], 0, true)?)
            });
            i += 2;
            continue;
        } else if eq(opt, "limit") && more > 0 {
            let n = int(&args[i + 1])?;
            if n < 0 {
                return Err(Error::msg("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(n);
            i += 2;
            continue;
        } else if xadd && eq(opt, "nomkstream") {
            no_mkstream = true;
        } else if xadd {
            break;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if limit.is_some_and(|l| l != 0) && rule.is_none() {
        return Err(Error::msg("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && rule.is_none() {
        return Err(Error::msg("ERR syntax error, XTRIM must be called with a trimming strategy"));
    }
    if limit.is_some() && !approx {
        return Err(Error::msg("ERR syntax error, LIMIT cannot be used without the special ~ option"));
    }
    let limit = match limit {
        Some(l) => l as u64,
        // As Redis: an approximate trim removes at most 100 nodes' worth unless told otherwise.
        None if approx => 100 * crate::sm::NODE_MAX_ENTRIES as u64,
        None => 0,
    };
    Ok((rule.map(|rule| Trim { rule, approx, limit }), no_mkstream, i))
}

/// The argument parsers, one per command, named after it.
mod parse {
    use super::*;

    fn op(op: StreamOp) -> Result<Op> {
        Ok(Op::Stream(op))
    }

    pub fn xadd(args: &[Bytes], _: u64) -> Result<Op> {
        let (trim, no_mkstream, idpos) = parse_trim_options(args, true)?;
        let id = match args.get(idpos) {
            Some(a) if a.as_ref() == b"*" => NewId::Auto,
            Some(a) => match parse_id_or_auto(a, 0, true, true)? {
                (ms, None) => NewId::Ms(ms),
                (ms, Some(seq)) => NewId::Exact(StreamId { ms, seq }),
            },
            None => return Err(Error::WrongArity("xadd".into())),
        };
        let fields = &args[(idpos + 1).min(args.len())..];
        if fields.len() < 2 || fields.len() % 2 == 1 {
            return Err(Error::WrongArity("xadd".into()));
        }
        if id == NewId::Exact(StreamId::MIN) {
            return Err(Error::msg("ERR The ID specified in XADD must be greater than 0-0"));
        }
        op(StreamOp::Add { key: args[1].clone(), no_mkstream, trim, id, fields: fields.to_vec() })
    }

    fn range(args: &[Bytes], rev: bool) -> Result<Op> {
        let (start_arg, end_arg) = if rev { (&args[3], &args[2]) } else { (&args[2], &args[3]) };
        let bound = |arg: &Bytes, missing_seq: u64| -> Result<(StreamId, bool)> {
            if arg.len() > 1 && arg[0] == b'(' {
                Ok((parse_id(&arg[1..], missing_seq, true)?, true))
            } else {
                Ok((parse_id(arg, missing_seq, false)?, false))
            }
        };
        let (mut start, start_ex) = bound(start_arg, 0)?;
        if start_ex {
            start = start.next().ok_or_else(|| Error::msg("ERR invalid start ID for the interval"))?;
        }
        let (mut end, end_ex) = bound(end_arg, u64::MAX)?;
        if end_ex {
            end = end.prev().ok_or_else(|| Error::msg("ERR invalid end ID for the interval"))?;
        }
        let mut count = None;
        let mut j = 4;
        while j < args.len() {
            if eq(&args[j], "count") && j + 1 < args.len() {
                count = Some(int(&args[j + 1])?.max(0) as u64);
                j += 2;
            } else {
                return Err(Error::Syntax);
            }
        }
        op(StreamOp::Range { key: args[1].clone(), start, end, count, rev })
    }

    pub fn xrange(args: &[Bytes], _: u64) -> Result<Op> {
        range(args, false)
    }

    pub fn xrevrange(args: &[Bytes], _: u64) -> Result<Op> {
        range(args, true)
    }

    pub fn xlen(args: &[Bytes], _: u64) -> Result<Op> {
        op(StreamOp::Len(args[1].clone()))
    }

    /// XREAD [COUNT n] [BLOCK ms] STREAMS key... id...
    pub fn xread(args: &[Bytes], _: u64) -> Result<Op> {
        let mut count = 0;
        let mut block = None;
        let mut i = 1;
        let first = loop {
            let more = args.len() - i - 1;
            let opt = &args[i];
            if eq(opt, "block") && more > 0 {
                block = Some(timeout_millis_exact(&args[i + 1])?);
                i += 2;
            } else if eq(opt, "count") && more > 0 {
                count = int(&args[i + 1])?.max(0) as u64;
                i += 2;
            } else if eq(opt, "streams") && more > 0 {
                break i + 1;
            } else {
                return Err(Error::Syntax);
            }
            if i >= args.len() {
                return Err(Error::Syntax);
            }
        };
        let rest = &args[first..];
        if !rest.len().is_multiple_of(2) {
            return Err(Error::msg(
                "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
            ));
        }
        let (keys, ids) = rest.split_at(rest.len() / 2);
        let streams = keys
            .iter()
            .zip(ids)
            .map(|(key, id)| {
                let from = match &id[..] {
                    b"$" => ReadFrom::Last,
                    b">" => ReadFrom::Undelivered,
                    arg => parse_id(arg, 0, true).map_or(ReadFrom::Invalid, ReadFrom::After),
                };
                (key.clone(), from)
            })
            .collect();
        op(StreamOp::Read { streams, count, block })
    }

    pub fn xdel(args: &[Bytes], _: u64) -> Result<Op> {
        let ids = args[2..].iter().map(|a| parse_id(a, 0, true)).collect::<Result<Vec<_>>>()?;
        op(StreamOp::Del { key: args[1].clone(), ids })
    }

    pub fn xtrim(args: &[Bytes], _: u64) -> Result<Op> {
        let (trim, _, _) = parse_trim_options(args, false)?;
        op(StreamOp::Trim { key: args[1].clone(), trim: trim.ok_or(Error::Syntax)? })
    }
}

/// The stream at `key` for a read, `None` when missing, or WRONGTYPE.
fn read_stream<'a>(ks: &'a KeySpace, key: &[u8], now: u64) -> Result<Option<&'a Stream>> {
    match ks.get(key, now) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(Error::WrongType),
        },
    }
}

/// The live slot of the stream at `key` for a write, `None` when missing, or WRONGTYPE.
fn stream_slot(ks: &mut KeySpace, key: &[u8], now: u64) -> Result<Option<u32>> {
    match ks.live_slot(key, now) {
        None => Ok(None),
        Some(slot) => match ks.at(slot).map(|e| &e.value) {
            Some(Value::Stream(_)) => Ok(Some(slot)),
            _ => Err(Error::WrongType),
        },
    }
}

fn stream_mut(value: &mut Value) -> &mut Stream {
    match value {
        Value::Stream(s) => s,
        _ => unreachable!("checked a stream"),
    }
}

/// Removes head entries as the rule says, as Redis's `streamTrim` does: whole nodes while the
/// rule allows (within the limit), then, unless approximate, entry by entry; returns how many.
fn trim(s: &mut Stream, t: &Trim) -> u64 {
    let mut removed = 0u64;
    while let Some(node) = s.nodes.front().copied() {
        if let Rule::MaxLen(max) = t.rule {
            if s.len() as u64 <= max {
                break;
            }
        }
        let entries = node.live as u64;
        if t.limit != 0 && removed + entries > t.limit {
            break;
        }
        let whole = match t.rule {
            Rule::MaxLen(max) => s.len() as u64 - entries >= max,
            Rule::MinId(min) => s.first_node_last_id().is_some_and(|last| last < min),
        };
        if whole {
            removed += s.pop_node() as u64;
            continue;
        }
        if t.approx {
            break;
        }
        // Entry by entry within this node, then stop (the rule holds after it).
        while let Some((&id, _)) = s.entries.first_key_value() {
            let over = match t.rule {
                Rule::MaxLen(max) => s.len() as u64 > max,
                Rule::MinId(min) => id < min,
            };
            if !over {
                break;
            }
            s.delete(id);
            removed += 1;
        }
        break;
    }
    removed
}

fn entry_reply(id: &StreamId, fields: &[serde_bytes::ByteBuf]) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(id.to_string())),
        Reply::Array(fields.iter().map(|f| Reply::Bulk(Bytes::copy_from_slice(f))).collect()),
    ])
}

/// Applies a stream operation that may write.
pub fn apply(ks: &mut KeySpace, op: &StreamOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        StreamOp::Add { key, no_mkstream, trim: rule, id, fields } => {
            let slot = match stream_slot(ks, key, now)? {
                Some(slot) => slot,
                None if *no_mkstream => return Ok(Reply::Nil),
                None => ks.set(key, Value::Stream(Box::default()), 0),
            };
            let added = ks.update(slot, |e| {
                let s = stream_mut(&mut e.value);
                let last = s.last_id;
                if last == StreamId::MAX {
                    return Err(Error::msg(
                        "ERR The stream has exhausted the last possible ID, unable to add more items",
                    ));
                }
                let new = match *id {
                    NewId::Auto if now > last.ms => StreamId { ms: now, seq: 0 },
                    NewId::Auto => last.next().expect("not the last possible ID"),
                    NewId::Ms(ms) if ms == last.ms => match last.seq.checked_add(1) {
                        Some(seq) => StreamId { ms, seq },
                        None => StreamId { ms, seq: 0 },
                    },
                    NewId::Ms(ms) => StreamId { ms, seq: 0 },
                    NewId::Exact(id) => id,
                };
                if new <= last {
                    return Err(Error::msg(
                        "ERR The ID specified in XADD is equal or smaller than the target stream top item",
                    ));
                }
                s.append(new, fields.iter().map(|f| serde_bytes::ByteBuf::from(f.to_vec())).collect());
                let trimmed = rule.as_ref().map_or(0, |t| trim(s, t));
                Ok((new, trimmed))
            });
            // A stream this command just created has last ID 0-0 (and 0-0 itself is refused by
            // the parser), so an error here leaves no empty key behind.
            let (new, trimmed) = added?;
            notify(ks, STREAM, "xadd", key);
            if trimmed > 0 {
                notify(ks, STREAM, "xtrim", key);
            }
            Reply::Bulk(Bytes::from(new.to_string()))
        }
        StreamOp::Del { key, ids } => {
            let Some(slot) = stream_slot(ks, key, now)? else {
                return Ok(Reply::Int(0));
            };
            let deleted = ks.update(slot, |e| {
                let s = stream_mut(&mut e.value);
                ids.iter().filter(|&&id| s.delete(id)).count()
            });
            if deleted > 0 {
                notify(ks, STREAM, "xdel", key);
            }
            Reply::Int(deleted as i64)
        }
        StreamOp::Trim { key, trim: rule } => {
            let Some(slot) = stream_slot(ks, key, now)? else {
                return Ok(Reply::Int(0));
            };
            let removed = ks.update(slot, |e| trim(stream_mut(&mut e.value), rule));
            if removed > 0 {
                notify(ks, STREAM, "xtrim", key);
            }
            Reply::Int(removed as i64)
        }
        StreamOp::Len(_) | StreamOp::Range { .. } | StreamOp::Read { .. } => return query(ks, op, ctx),
    })
}

/// Answers a read-only stream operation.
pub fn query(ks: &KeySpace, op: &StreamOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        StreamOp::Len(key) => Reply::Int(read_stream(ks, key, now)?.map_or(0, Stream::len) as i64),
        StreamOp::Range { key, start, end, count, rev } => {
            let Some(s) = read_stream(ks, key, now)? else {
                return Ok(Reply::Array(vec![]));
            };
            if *count == Some(0) {
                return Ok(Reply::NilArray);
            }
            let take = count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
            if start > end {
                return Ok(Reply::Array(vec![]));
            }
            let range = s.entries.range(*start..=*end);
            let entries: Vec<Reply> = if *rev {
                range.rev().take(take).map(|(id, f)| entry_reply(id, f)).collect()
            } else {
                range.take(take).map(|(id, f)| entry_reply(id, f)).collect()
            };
            Reply::Array(entries)
        }
        StreamOp::Read { streams, count, .. } => {
            // Every key's type and ID first, in order (errors as Redis reports them), then the entries.
            let mut found = Vec::with_capacity(streams.len());
            for (key, from) in streams {
                let s = read_stream(ks, key, now)?;
                let after = match from {
                    ReadFrom::Invalid => return Err(invalid_id()),
                    ReadFrom::Undelivered => {
                        return Err(Error::msg(
                            "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                        ))
                    }
                    ReadFrom::Last => s.map_or(StreamId::default(), |s| s.last_id),
                    ReadFrom::After(id) => *id,
                };
                found.push((key, s, after));
            }
            let take = if *count == 0 { usize::MAX } else { usize::try_from(*count).unwrap_or(usize::MAX) };
            let mut out = Vec::new();
            for (key, s, after) in found {
                let (Some(s), Some(from)) = (s, after.next()) else { continue };
                let entries: Vec<Reply> =
                    s.entries.range(from..).take(take).map(|(id, f)| entry_reply(id, f)).collect();
                if !entries.is_empty() {
                    out.push((Reply::Bulk(key.clone()), Reply::Array(entries)));
                }
            }
            if out.is_empty() {
                Reply::NilArray
            } else {
                Reply::Keyed(out)
            }
        }
        StreamOp::Add { .. } | StreamOp::Del { .. } | StreamOp::Trim { .. } => {
            return Err(Error::msg("ERR this stream operation writes"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    fn run(ks: &mut KeySpace, line: &[&str], now: u64) -> Reply {
        let a = args(line);
        let command = COMMANDS.iter().find(|c| c.meta.name.eq_ignore_ascii_case(line[0])).expect("a stream command");
        match (command.parse)(&a, now) {
            Ok(op) => op.apply(ks, Ctx { now, seed: 0 }),
            Err(e) => e.into(),
        }
    }

    #[test]
    fn ids_follow_the_stamped_time_and_never_go_back() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, &["XADD", "s", "*", "f", "v"], 1000), Reply::bulk("1000-0"));
        assert_eq!(run(&mut ks, &["XADD", "s", "*", "f", "v"], 1000), Reply::bulk("1000-1"));
        // A clock that went back still gives a greater ID.
        assert_eq!(run(&mut ks, &["XADD", "s", "*", "f", "v"], 900), Reply::bulk("1000-2"));
        assert_eq!(run(&mut ks, &["XADD", "s", "1000-*", "f", "v"], 900), Reply::bulk("1000-3"));
        assert_eq!(
            run(&mut ks, &["XADD", "s", "5-1", "f", "v"], 900),
            Reply::err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
        );
        assert_eq!(
            run(&mut ks, &["XADD", "s", "0-0", "f", "v"], 900),
            Reply::err("ERR The ID specified in XADD must be greater than 0-0")
        );
        assert_eq!(run(&mut ks, &["XADD", "n", "NOMKSTREAM", "*", "f", "v"], 900), Reply::Nil);
        assert_eq!(
            run(&mut ks, &["XADD", "s", "*", "f"], 900),
            Reply::err("ERR wrong number of arguments for 'xadd' command")
        );
        assert_eq!(run(&mut ks, &["XLEN", "s"], 900), Reply::Int(4));
    }

    #[test]
    fn ranges_counts_and_trims() {
        let mut ks = KeySpace::new();
        for i in 1..=250u64 {
            run(&mut ks, &["XADD", "s", &format!("{i}-0"), "n", &i.to_string()], 0);
        }
        let first = run(&mut ks, &["XRANGE", "s", "-", "+", "COUNT", "1"], 0);
        assert_eq!(
            first,
            Reply::Array(vec![entry_reply(&StreamId { ms: 1, seq: 0 }, &[b"n".to_vec().into(), b"1".to_vec().into()])])
        );
        let Reply::Array(last) = run(&mut ks, &["XREVRANGE", "s", "+", "(249", "COUNT", "5"], 0) else { panic!() };
        assert_eq!(last.len(), 1, "(249 starts after 249-0: only 250-0");
        assert_eq!(run(&mut ks, &["XRANGE", "s", "-", "+", "COUNT", "0"], 0), Reply::NilArray);
        // ~ removes whole blocks of 100 only: 250 - 200 = 50 >= 10.
        assert_eq!(run(&mut ks, &["XTRIM", "s", "MAXLEN", "~", "10"], 0), Reply::Int(200));
        assert_eq!(run(&mut ks, &["XTRIM", "s", "MAXLEN", "=", "10"], 0), Reply::Int(40));
        assert_eq!(run(&mut ks, &["XDEL", "s", "250-0", "1-0"], 0), Reply::Int(1));
        assert_eq!(run(&mut ks, &["XLEN", "s"], 0), Reply::Int(9));
        assert_eq!(run(&mut ks, &["XTRIM", "missing", "MAXLEN", "1"], 0), Reply::Int(0));
        assert_eq!(
            run(&mut ks, &["XTRIM", "s", "MAXLEN", "10", "LIMIT", "5"], 0),
            Reply::err("ERR syntax error, LIMIT cannot be used without the special ~ option")
        );
        // An emptied stream stays, and its last ID still counts.
        assert_eq!(run(&mut ks, &["XTRIM", "s", "MAXLEN", "0"], 0), Reply::Int(9));
        assert_eq!(run(&mut ks, &["XLEN", "s"], 0), Reply::Int(0));
        assert_eq!(run(&mut ks, &["XADD", "s", "*", "a", "b"], 5), Reply::bulk("250-1"));
    }
}
