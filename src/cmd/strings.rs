//! The string commands: GET, SET and its variants, counters, ranges, APPEND, LCS.

use super::notify::{notify, GENERIC, STRING};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::args::{eq, expire_millis, int};
use super::meta::*;
use super::{Ctx, DataCommand, Error, Op, Result};
use crate::data;
use crate::resp::{Reply, MAX_BULK_LEN};
use crate::sm::{KeySpace, Value};

/// The string commands, sorted by name.
#[rustfmt::skip]
pub const COMMANDS: &[DataCommand] = &[
    data!("append", 3, W, 1, 1, 1, AWF, "string", "2.0.0", parse::append, "Appends a string to the value of a key. Creates the key if it doesn't exist"),
    data!("decr", 2, WF, 1, 1, 1, AWF, "string", "1.0.0", parse::decr, "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist"),
    data!("decrby", 3, WF, 1, 1, 1, AWF, "string", "1.0.0", parse::decrby, "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist"),
    data!("get", 2, R, 1, 1, 1, AR, "string", "1.0.0", parse::get, "Returns the string value of a key"),
    data!("getdel", 2, WD, 1, 1, 1, AWF, "string", "6.2.0", parse::getdel, "Returns the string value of a key after deleting the key"),
    data!("getex", -2, WD, 1, 1, 1, AWF, "string", "6.2.0", parse::getex, "Returns the string value of a key after setting its expiration time"),
    data!("getrange", 4, RS, 1, 1, 1, ARS, "string", "2.4.0", parse::getrange, "Returns a substring of the string stored at a key"),
    data!("getset", 3, WF, 1, 1, 1, AWF, "string", "1.0.0", parse::getset, "Returns the previous string value of a key after setting it to a new value"),
    data!("incr", 2, WF, 1, 1, 1, AWF, "string", "1.0.0", parse::incr, "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist"),
    data!("incrby", 3, WF, 1, 1, 1, AWF, "string", "1.0.0", parse::incrby, "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist"),
    data!("incrbyfloat", 3, WF, 1, 1, 1, AWF, "string", "2.6.0", parse::incrbyfloat, "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist"),
    data!("lcs", -3, RS, 1, 2, 1, ARS, "string", "7.0.0", parse::lcs, "Finds the longest common substring"),
    data!("mget", -2, R, 1, -1, 1, AR, "string", "1.0.0", parse::mget, "Atomically returns the string values of one or more keys"),
    data!("mset", -3, W, 1, -1, 2, AW, "string", "1.0.1", parse::mset, "Atomically creates or modifies the string values of one or more keys"),
    data!("msetnx", -3, W, 1, -1, 2, AW, "string", "1.0.1", parse::msetnx, "Atomically modifies the string values of one or more keys only when all keys don't exist"),
    data!("psetex", 4, W, 1, 1, 1, AW, "string", "2.6.0", parse::psetex, "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist"),
    data!("set", -3, W, 1, 1, 1, AW, "string", "1.0.0", parse::set, "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist"),
    data!("setex", 4, W, 1, 1, 1, AW, "string", "2.0.0", parse::setex, "Sets the string value and expiration time of a key. Creates the key if it doesn't exist"),
    data!("setnx", 3, WF, 1, 1, 1, AWF, "string", "1.0.0", parse::setnx, "Set the string value of a key only when the key doesn't exist"),
    data!("setrange", 4, W, 1, 1, 1, AW, "string", "2.2.0", parse::setrange, "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist"),
    data!("strlen", 2, R, 1, 1, 1, AR, "string", "2.2.0", parse::strlen, "Returns the length of a string value"),
    data!("substr", 4, RS, 1, 1, 1, ARS, "string", "1.0.0", parse::substr, "Returns a substring from a string value"),
    data!("upd", 3, W, 1, 1, 1, AW, "string", "raftis", parse::upd, "raftis extension: updates the value of an existing key only (OK, or nil when the key does not exist)"),
];

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
    /// missing key answers nil).
    NotInteger,
}

/// LCS's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LcsOptions {
    pub len: bool,
    pub idx: bool,
    pub min_match_len: i64,
    pub with_match_len: bool,
}

/// One string operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StrOp {
    // Reads.
    Get(Bytes),
    MGet(Vec<Bytes>),
    StrLen(Bytes),
    GetRange { key: Bytes, start: i64, end: i64 },
    Lcs { a: Bytes, b: Bytes, opts: LcsOptions },
    // Writes.
    Set { key: Bytes, value: Bytes, cond: SetCond, expiry: Expiry, get: bool },
    SetNx { key: Bytes, value: Bytes },
    Upd { key: Bytes, value: Bytes },
    GetDel(Bytes),
    GetEx { key: Bytes, expiry: GetExExpiry },
    MSet(Vec<(Bytes, Bytes)>),
    MSetNx(Vec<(Bytes, Bytes)>),
    IncrBy { key: Bytes, by: i64 },
    IncrByFloat { key: Bytes, by: Bytes },
    Append { key: Bytes, value: Bytes },
    SetRange { key: Bytes, offset: u64, value: Bytes },
}

impl StrOp {
    /// Whether the operation may change the keyspace.
    pub fn is_write(&self) -> bool {
        !matches!(
            self,
            StrOp::Get(_)
                | StrOp::MGet(_)
                | StrOp::StrLen(_)
                | StrOp::GetRange { .. }
                | StrOp::Lcs { .. }
                | StrOp::GetEx { expiry: GetExExpiry::Unchanged, .. }
        )
    }
}

/// The argument parsers, one per command, named after it.
mod parse {
    use super::*;

    fn op(op: StrOp) -> Result<Op> {
        Ok(Op::Str(op))
    }

    fn a(args: &[Bytes], i: usize) -> Bytes {
        args[i].clone()
    }

    pub fn get(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::Get(a(args, 1)))
    }

    pub fn mget(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::MGet(args[1..].to_vec()))
    }

    pub fn strlen(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::StrLen(a(args, 1)))
    }

    pub fn getrange(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::GetRange { key: a(args, 1), start: int(&args[2])?, end: int(&args[3])? })
    }

    pub fn substr(args: &[Bytes], now: u64) -> Result<Op> {
        getrange(args, now)
    }

    pub fn lcs(args: &[Bytes], _: u64) -> Result<Op> {
        let mut opts = LcsOptions::default();
        let mut j = 3;
        while j < args.len() {
            let more = j + 1 < args.len();
            if eq(&args[j], "idx") {
                opts.idx = true;
            } else if eq(&args[j], "len") {
                opts.len = true;
            } else if eq(&args[j], "withmatchlen") {
                opts.with_match_len = true;
            } else if eq(&args[j], "minmatchlen") && more {
                opts.min_match_len = int(&args[j + 1])?.max(0);
                j += 1;
            } else {
                return Err(Error::Syntax);
            }
            j += 1;
        }
        op(StrOp::Lcs { a: a(args, 1), b: a(args, 2), opts })
    }

    pub fn set(args: &[Bytes], now: u64) -> Result<Op> {
        let o = string_options(args, 3, StringCommand::Set)?;
        let expiry = match o.expire {
            Some((millis, relative, arg)) => Expiry::At(
                expire_millis(arg, millis, relative, now).ok_or_else(|| Error::InvalidExpire("set".into()))??,
            ),
            None if o.keepttl => Expiry::Keep,
            None => Expiry::Clear,
        };
        let cond = match (o.nx, o.xx) {
            (true, _) => SetCond::IfAbsent,
            (_, true) => SetCond::IfPresent,
            _ => SetCond::Always,
        };
        op(StrOp::Set { key: a(args, 1), value: a(args, 2), cond, expiry, get: o.get })
    }

    pub fn setnx(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::SetNx { key: a(args, 1), value: a(args, 2) })
    }

    pub fn upd(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::Upd { key: a(args, 1), value: a(args, 2) })
    }

    fn set_with_expiry(name: &str, millis: bool, args: &[Bytes], now: u64) -> Result<Op> {
        let at = expire_millis(&args[2], millis, true, now).ok_or_else(|| Error::InvalidExpire(name.into()))??;
        op(StrOp::Set { key: a(args, 1), value: a(args, 3), cond: SetCond::Always, expiry: Expiry::At(at), get: false })
    }

    pub fn setex(args: &[Bytes], now: u64) -> Result<Op> {
        set_with_expiry("setex", false, args, now)
    }

    pub fn psetex(args: &[Bytes], now: u64) -> Result<Op> {
        set_with_expiry("psetex", true, args, now)
    }

    pub fn getset(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::Set { key: a(args, 1), value: a(args, 2), cond: SetCond::Always, expiry: Expiry::Clear, get: true })
    }

    pub fn getdel(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::GetDel(a(args, 1)))
    }

    /// GETEX checks its options' syntax here, but like Redis 7.0 (`getexCommand`) it validates
    /// the time only once the key is found: `GETEX missing PX abc` answers nil, not an error.
    pub fn getex(args: &[Bytes], now: u64) -> Result<Op> {
        let o = string_options(args, 2, StringCommand::GetEx)?;
        let expiry = match o.expire {
            Some((millis, relative, arg)) => match expire_millis(arg, millis, relative, now) {
                None => GetExExpiry::Invalid,
                Some(Err(_)) => GetExExpiry::NotInteger,
                Some(Ok(at)) if relative => GetExExpiry::In(at),
                Some(Ok(at)) => GetExExpiry::At(at),
            },
            None if o.persist => GetExExpiry::Persist,
            None => GetExExpiry::Unchanged,
        };
        op(StrOp::GetEx { key: a(args, 1), expiry })
    }

    fn pairs(name: &str, args: &[Bytes]) -> Result<Vec<(Bytes, Bytes)>> {
        if args.len().is_multiple_of(2) {
            return Err(Error::WrongArity(name.into()));
        }
        Ok(args[1..].chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect())
    }

    pub fn mset(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::MSet(pairs("mset", args)?))
    }

    pub fn msetnx(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::MSetNx(pairs("msetnx", args)?))
    }

    pub fn incr(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::IncrBy { key: a(args, 1), by: 1 })
    }

    pub fn decr(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::IncrBy { key: a(args, 1), by: -1 })
    }

    pub fn incrby(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::IncrBy { key: a(args, 1), by: int(&args[2])? })
    }

    pub fn decrby(args: &[Bytes], _: u64) -> Result<Op> {
        let by = int(&args[2])?;
        if by == i64::MIN {
            return Err(Error::msg("ERR decrement would overflow"));
        }
        op(StrOp::IncrBy { key: a(args, 1), by: -by })
    }

    pub fn incrbyfloat(args: &[Bytes], _: u64) -> Result<Op> {
        if !is_long_double(&args[2]) {
            return Err(Error::NotFloat);
        }
        op(StrOp::IncrByFloat { key: a(args, 1), by: a(args, 2) })
    }

    pub fn append(args: &[Bytes], _: u64) -> Result<Op> {
        op(StrOp::Append { key: a(args, 1), value: a(args, 2) })
    }

    pub fn setrange(args: &[Bytes], _: u64) -> Result<Op> {
        let offset = int(&args[2])?;
        if offset < 0 {
            return Err(Error::msg("ERR offset is out of range"));
        }
        op(StrOp::SetRange { key: a(args, 1), offset: offset as u64, value: a(args, 3) })
    }

    /// Which command's options `string_options` parses (Redis's `COMMAND_SET` / `COMMAND_GET`).
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum StringCommand {
        Set,
        GetEx,
    }

    /// SET's and GETEX's options, parsed with Redis's `parseExtendedStringArgumentsOrReply`
    /// rules: an option may repeat, but NX/XX, KEEPTTL/PERSIST and the expiry kinds exclude
    /// each other.
    #[derive(Default)]
    struct StringOptions<'a> {
        nx: bool,
        xx: bool,
        get: bool,
        keepttl: bool,
        persist: bool,
        /// (unit is milliseconds, relative, argument)
        expire: Option<(bool, bool, &'a Bytes)>,
    }

    fn string_options(args: &[Bytes], from: usize, command: StringCommand) -> Result<StringOptions<'_>> {
        let set = command == StringCommand::Set;
        let mut o = StringOptions::default();
        let mut j = from;
        while j < args.len() {
            let opt = &args[j];
            if set && eq(opt, "nx") && !o.xx {
                o.nx = true;
            } else if set && eq(opt, "xx") && !o.nx {
                o.xx = true;
            } else if set && eq(opt, "get") {
                o.get = true;
            } else if set && eq(opt, "keepttl") && o.expire.is_none() {
                o.keepttl = true;
            } else if !set && eq(opt, "persist") && o.expire.is_none() {
                o.persist = true;
            } else if let (Some(next), Some((millis, relative))) = (args.get(j + 1), expire_option(opt)) {
                let other_kind = o.expire.is_some_and(|(m, r, _)| (m, r) != (millis, relative));
                if o.keepttl || o.persist || other_kind {
                    return Err(Error::Syntax);
                }
                o.expire = Some((millis, relative, next));
                j += 1;
            } else {
                return Err(Error::Syntax);
            }
            j += 1;
        }
        Ok(o)
    }

    /// EX, PX, EXAT, PXAT -> (milliseconds, relative).
    fn expire_option(opt: &[u8]) -> Option<(bool, bool)> {
        if eq(opt, "ex") {
            Some((false, true))
        } else if eq(opt, "px") {
            Some((true, true))
        } else if eq(opt, "exat") {
            Some((false, false))
        } else if eq(opt, "pxat") {
            Some((true, false))
        } else {
            None
        }
    }
}

/// Applies a string operation (reads included, as inside EXEC).
pub fn apply(ks: &mut KeySpace, op: &StrOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        StrOp::Set { key, value, cond, expiry, get } => set(ks, key, value, *cond, *expiry, *get, now)?,
        StrOp::SetNx { key, value } => match set(ks, key, value, SetCond::IfAbsent, Expiry::Clear, false, now)? {
            Reply::Ok => Reply::Int(1),
            _ => Reply::Int(0),
        },
        StrOp::Upd { key, value } => set(ks, key, value, SetCond::IfPresent, Expiry::Clear, false, now)?,
        StrOp::GetDel(key) => match ks.live_slot(key, now) {
            Some(slot) => {
                ks.at(slot).expect("live slot").value.as_str()?;
                let Value::Str(s) = ks.remove_slot(slot).value else { unreachable!("checked a string") };
                notify(ks, GENERIC, "del", key);
                Reply::Bulk(s.into())
            }
            None => Reply::Nil,
        },
        StrOp::GetEx { key, expiry } => getex(ks, key, *expiry, now)?,
        StrOp::MSet(pairs) => {
            for (k, v) in pairs {
                ks.set(k, Value::Str(v.to_vec()), 0);
                notify(ks, STRING, "set", k);
            }
            Reply::Ok
        }
        StrOp::MSetNx(pairs) => {
            if pairs.iter().any(|(k, _)| ks.get(k, now).is_some()) {
                return Ok(Reply::Int(0));
            }
            for (k, v) in pairs {
                ks.set(k, Value::Str(v.to_vec()), 0);
                notify(ks, STRING, "set", k);
            }
            Reply::Int(1)
        }
        StrOp::IncrBy { key, by } => incr_by(ks, key, *by, now)?,
        StrOp::IncrByFloat { key, by } => incr_by_float(ks, key, by, now)?,
        StrOp::Append { key, value } => append(ks, key, value, now)?,
        StrOp::SetRange { key, offset, value } => setrange(ks, key, *offset, value, now)?,
        read => query(ks, read, ctx)?,
    })
}

fn append(ks: &mut KeySpace, key: &Bytes, value: &Bytes, now: u64) -> Result {
    let reply = match ks.live_slot(key, now) {
        Some(slot) => {
            let len = ks.at(slot).expect("live slot").value.as_str()?.len();
            if (len + value.len()) as i64 > MAX_BULK_LEN {
                return Err(Error::TooBig);
            }
            Reply::Int(ks.update(slot, |e| {
                let s = e.value.as_str_mut().expect("checked a string");
                s.extend_from_slice(value);
                s.len()
            }) as i64)
        }
        None => {
            ks.set(key, Value::Str(value.to_vec()), 0);
            Reply::Int(value.len() as i64)
        }
    };
    notify(ks, STRING, "append", key);
    Ok(reply)
}

/// The string at `key` (empty when missing), or WRONGTYPE.
fn string_or_empty<'a>(ks: &'a KeySpace, key: &[u8], now: u64) -> Result<&'a [u8]> {
    Ok(match ks.get(key, now) {
        Some(e) => e.value.as_str()?,
        None => &[],
    })
}

/// Answers a read-only string operation.
pub fn query(ks: &KeySpace, op: &StrOp, ctx: Ctx) -> Result {
    let now = ctx.now;
    Ok(match op {
        StrOp::Get(key) | StrOp::GetEx { key, expiry: GetExExpiry::Unchanged } => get(ks, key, now)?,
        // MGET answers nil for a key of another type, as Redis does.
        StrOp::MGet(keys) => Reply::Array(keys.iter().map(|k| get(ks, k, now).unwrap_or(Reply::Nil)).collect()),
        StrOp::StrLen(key) => Reply::Int(string_or_empty(ks, key, now)?.len() as i64),
        StrOp::GetRange { key, start, end } => Reply::bulk(range(string_or_empty(ks, key, now)?, *start, *end)),
        StrOp::Lcs { a, b, opts } => lcs(string_or_empty(ks, a, now)?, string_or_empty(ks, b, now)?, *opts)?,
        write => unreachable!("query of a write operation {write:?}"),
    })
}

fn get(ks: &KeySpace, key: &[u8], now: u64) -> Result {
    Ok(match ks.get(key, now) {
        Some(e) => Reply::bulk(e.value.as_str()?),
        None => Reply::Nil,
    })
}

fn set(ks: &mut KeySpace, key: &Bytes, value: &Bytes, cond: SetCond, expiry: Expiry, get: bool, now: u64) -> Result {
    let slot = ks.live_slot(key, now);
    let old = if get {
        match slot.and_then(|s| ks.at(s)) {
            Some(e) => Reply::bulk(e.value.as_str()?),
            None => Reply::Nil,
        }
    } else {
        Reply::Ok
    };
    let blocked = match cond {
        SetCond::Always => false,
        SetCond::IfAbsent => slot.is_some(),
        SetCond::IfPresent => slot.is_none(),
    };
    if blocked {
        return Ok(if get { old } else { Reply::Nil });
    }
    let expire_at = match expiry {
        Expiry::Clear => 0,
        Expiry::Keep => slot.and_then(|s| ks.at(s)).map_or(0, |e| e.expire_at),
        Expiry::At(at) => at,
    };
    ks.set(key, Value::Str(value.to_vec()), expire_at);
    notify(ks, STRING, "set", key);
    if matches!(expiry, Expiry::At(_)) {
        notify(ks, GENERIC, "expire", key);
    }
    Ok(old)
}

fn getex(ks: &mut KeySpace, key: &Bytes, expiry: GetExExpiry, now: u64) -> Result {
    let Some(slot) = ks.live_slot(key, now) else {
        return Ok(Reply::Nil);
    };
    let value = Reply::bulk(ks.at(slot).expect("live slot").value.as_str()?);
    match expiry {
        GetExExpiry::Unchanged => {}
        GetExExpiry::Invalid => return Err(Error::InvalidExpire("getex".into())),
        GetExExpiry::NotInteger => return Err(Error::NotInteger),
        GetExExpiry::At(at) if at <= now => {
            ks.remove_slot(slot);
            notify(ks, GENERIC, "del", key);
        }
        GetExExpiry::At(at) | GetExExpiry::In(at) => {
            ks.set_expire(slot, at);
            notify(ks, GENERIC, "expire", key);
        }
        GetExExpiry::Persist => {
            if ks.at(slot).is_some_and(|e| e.expire_at != 0) {
                ks.set_expire(slot, 0);
                notify(ks, GENERIC, "persist", key);
            }
        }
    }
    Ok(value)
}

fn incr_by(ks: &mut KeySpace, key: &Bytes, by: i64, now: u64) -> Result {
    let slot = ks.live_slot(key, now);
    let current = match slot.and_then(|s| ks.at(s)) {
        Some(e) => crate::resp::parse_i64(e.value.as_str()?).ok_or(Error::NotInteger)?,
        None => 0,
    };
    let next = current.checked_add(by).ok_or(Error::Overflow)?;
    let text = next.to_string().into_bytes();
    match slot {
        Some(slot) => ks.update(slot, |e| e.value = Value::Str(text)),
        None => {
            ks.set(key, Value::Str(text), 0);
        }
    }
    notify(ks, STRING, "incrby", key);
    Ok(Reply::Int(next))
}

extern "C" {
    fn raftis_incrbyfloat(
        cur: *const u8,
        curlen: usize,
        incr: *const u8,
        incrlen: usize,
        out: *mut u8,
        outlen: usize,
    ) -> i32;
    fn raftis_is_long_double(s: *const u8, slen: usize) -> i32;
}

/// Whether `s` is a float as Redis's `string2ld` accepts it.
pub fn is_long_double(s: &[u8]) -> bool {
    // SAFETY: the pointer and length describe a live slice; the C side only reads it.
    unsafe { raftis_is_long_double(s.as_ptr(), s.len()) == 1 }
}

/// `current + by` computed in C's long double and printed as Redis prints it (`%.17Lg`-style
/// with trailing zeros removed): `Err(-1/-2)` for an operand that is not a float, `Err(other)`
/// for a NaN or infinite result.
pub fn long_double_add(current: Option<&[u8]>, by: &[u8]) -> std::result::Result<Vec<u8>, i32> {
    let mut out = vec![0u8; 5 * 1024 + 32];
    let (ptr, len) = current.map_or((std::ptr::null(), 0), |c| (c.as_ptr(), c.len()));
    // SAFETY: every pointer/length pair describes a live slice (or is null for a missing
    // value); `out` is writable for its whole length, which is passed along.
    let n = unsafe { raftis_incrbyfloat(ptr, len, by.as_ptr(), by.len(), out.as_mut_ptr(), out.len()) };
    if n < 0 {
        return Err(n);
    }
    out.truncate(n as usize);
    Ok(out)
}

fn incr_by_float(ks: &mut KeySpace, key: &Bytes, by: &Bytes, now: u64) -> Result {
    let slot = ks.live_slot(key, now);
    let current = match slot.and_then(|s| ks.at(s)) {
        Some(e) => Some(e.value.as_str()?.as_slice()),
        None => None,
    };
    match long_double_add(current, by) {
        Err(-1 | -2) => Err(Error::NotFloat),
        Err(_) => Err(Error::msg("ERR increment would produce NaN or Infinity")),
        Ok(out) => {
            let reply = Reply::bulk(&out);
            match slot {
                Some(slot) => ks.update(slot, |e| e.value = Value::Str(out)),
                None => {
                    ks.set(key, Value::Str(out), 0);
                }
            }
            notify(ks, STRING, "incrbyfloat", key);
            Ok(reply)
        }
    }
}

fn setrange(ks: &mut KeySpace, key: &Bytes, offset: u64, value: &Bytes, now: u64) -> Result {
    let slot = ks.live_slot(key, now);
    let old_len = match slot.and_then(|s| ks.at(s)) {
        Some(e) => e.value.as_str()?.len(),
        None => 0,
    };
    if value.is_empty() {
        return Ok(Reply::Int(old_len as i64));
    }
    if offset.saturating_add(value.len() as u64) > MAX_BULK_LEN as u64 {
        return Err(Error::TooBig);
    }
    let offset = offset as usize;
    let write = |v: &mut Vec<u8>| {
        if v.len() < offset + value.len() {
            v.resize(offset + value.len(), 0);
        }
        v[offset..offset + value.len()].copy_from_slice(value);
        v.len()
    };
    let len = match slot {
        Some(slot) => ks.update(slot, |e| write(e.value.as_str_mut().expect("checked a string"))),
        None => {
            let mut v = Vec::new();
            let len = write(&mut v);
            ks.set(key, Value::Str(v), 0);
            len
        }
    };
    notify(ks, STRING, "setrange", key);
    Ok(Reply::Int(len as i64))
}

/// GETRANGE's index arithmetic, as Redis does it.
fn range(value: &[u8], mut start: i64, mut end: i64) -> &[u8] {
    let len = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        return &[];
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return &[];
    }
    &value[start as usize..=end as usize]
}

/// LCS, ported from Redis's `lcsCommand` so that ranges come out in the same order.
fn lcs(a: &[u8], b: &[u8], opts: LcsOptions) -> Result {
    if opts.idx && opts.len {
        return Err(Error::msg("ERR If you want both the length and indexes, please just use IDX."));
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u128 + 1) * (blen as u128 + 1);
    if cells * 4 > MAX_BULK_LEN as u128 {
        return Err(Error::msg("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    let w = blen + 1;
    let mut dp = vec![0u32; cells as usize];
    for i in 1..=alen {
        for j in 1..=blen {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[alen * w + blen];
    if opts.len && !opts.idx {
        return Ok(Reply::Int(total as i64));
    }
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    let mut matches = Vec::new();
    let (mut i, mut j) = (alen, blen);
    // `alen` as a start signals "no range in progress", as in Redis.
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if a_start == alen {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        let match_len = (a_end as i64 - a_start as i64 + 1) as u32;
        if emit {
            if (opts.min_match_len == 0 || match_len as i64 >= opts.min_match_len) && opts.idx {
                let mut m = vec![
                    Reply::Array(vec![Reply::Int(a_start as i64), Reply::Int(a_end as i64)]),
                    Reply::Array(vec![Reply::Int(b_start as i64), Reply::Int(b_end as i64)]),
                ];
                if opts.with_match_len {
                    m.push(Reply::Int(match_len as i64));
                }
                matches.push(Reply::Array(m));
            }
            a_start = alen;
        }
    }
    Ok(if opts.idx {
        Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(matches)),
            (Reply::bulk("len"), Reply::Int(total as i64)),
        ])
    } else {
        Reply::Bulk(result.into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ks: &mut KeySpace, op: StrOp) -> Reply {
        Op::Str(op).apply(ks, Ctx { now: 1000, seed: 1 })
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn p(line: &str) -> Result<Op> {
        let args: Vec<Bytes> = line.split(' ').map(|s| Bytes::from(s.replace("\\0", "\0"))).collect();
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        let command = COMMANDS.iter().find(|c| c.meta.name == name).expect("a string command");
        (command.parse)(&args, 1_000_000)
    }

    fn set_op(key: &str, value: &str, expiry: Expiry) -> StrOp {
        StrOp::Set { key: b(key), value: b(value), cond: SetCond::Always, expiry, get: false }
    }

    #[test]
    fn incr_and_overflow() {
        let mut ks = KeySpace::new();
        assert_eq!(run(&mut ks, StrOp::IncrBy { key: b("n"), by: 5 }), Reply::Int(5));
        assert_eq!(run(&mut ks, StrOp::IncrBy { key: b("n"), by: i64::MAX }), Error::Overflow.into());
        assert_eq!(run(&mut ks, StrOp::Get(b("n"))), Reply::bulk("5"));
    }

    #[test]
    fn incr_by_float_uses_long_double() {
        let mut ks = KeySpace::new();
        run(&mut ks, set_op("f", "1.1", Expiry::Clear));
        assert_eq!(run(&mut ks, StrOp::IncrByFloat { key: b("f"), by: b("2.2") }), Reply::bulk("3.3"));
        assert_eq!(
            run(&mut ks, StrOp::IncrByFloat { key: b("f"), by: b("5.0e3") }),
            Reply::bulk("5003.29999999999999982"),
            "as Redis prints it"
        );
        assert!(run(&mut ks, StrOp::IncrByFloat { key: b("f"), by: b("x") }).is_error());
    }

    #[test]
    fn string_commands_on_another_type_are_wrongtype() {
        let mut ks = KeySpace::new();
        let mut h = crate::sm::Hash::new();
        h.insert(b"f", b"v");
        ks.set(b"h", Value::Hash(h), 0);
        let wrong: Reply = Error::WrongType.into();
        for op in [
            StrOp::Get(b("h")),
            StrOp::StrLen(b("h")),
            StrOp::Append { key: b("h"), value: b("x") },
            StrOp::IncrBy { key: b("h"), by: 1 },
            StrOp::IncrByFloat { key: b("h"), by: b("1") },
            StrOp::SetRange { key: b("h"), offset: 0, value: b("x") },
            StrOp::GetDel(b("h")),
            StrOp::GetRange { key: b("h"), start: 0, end: -1 },
        ] {
            assert_eq!(run(&mut ks, op.clone()), wrong, "{op:?}");
        }
        assert_eq!(run(&mut ks, StrOp::MGet(vec![b("h")])), Reply::Array(vec![Reply::Nil]));
        assert_eq!(run(&mut ks, set_op("h", "s", Expiry::Clear)), Reply::Ok, "SET replaces any type");
    }

    #[test]
    fn lcs_like_redis() {
        let opts = LcsOptions { idx: true, with_match_len: true, ..Default::default() };
        let r = lcs(b"ohmytext", b"mynewtext", opts).unwrap();
        let expect = Reply::Map(vec![
            (
                Reply::bulk("matches"),
                Reply::Array(vec![
                    Reply::Array(vec![
                        Reply::Array(vec![Reply::Int(4), Reply::Int(7)]),
                        Reply::Array(vec![Reply::Int(5), Reply::Int(8)]),
                        Reply::Int(4),
                    ]),
                    Reply::Array(vec![
                        Reply::Array(vec![Reply::Int(2), Reply::Int(3)]),
                        Reply::Array(vec![Reply::Int(0), Reply::Int(1)]),
                        Reply::Int(2),
                    ]),
                ]),
            ),
            (Reply::bulk("len"), Reply::Int(6)),
        ]);
        assert_eq!(r, expect);
        assert_eq!(lcs(b"ohmytext", b"mynewtext", LcsOptions::default()).unwrap(), Reply::bulk("mytext"));
    }

    #[test]
    fn getex_reports_a_bad_time_only_for_an_existing_key() {
        let mut ks = KeySpace::new();
        for expiry in [GetExExpiry::NotInteger, GetExExpiry::Invalid] {
            assert_eq!(run(&mut ks, StrOp::GetEx { key: b("k"), expiry }), Reply::Nil);
        }
        run(&mut ks, set_op("k", "v", Expiry::At(5000)));
        assert_eq!(
            run(&mut ks, StrOp::GetEx { key: b("k"), expiry: GetExExpiry::NotInteger }),
            Error::NotInteger.into()
        );
        assert_eq!(
            run(&mut ks, StrOp::GetEx { key: b("k"), expiry: GetExExpiry::Invalid }),
            Reply::err("ERR invalid expire time in 'getex' command")
        );
        assert_eq!(ks.get(b"k", 1000).map(|e| e.expire_at), Some(5000), "the key is left alone");
    }

    #[test]
    fn getrange_edges() {
        assert_eq!(range(b"Hello World", 0, 3), b"Hell");
        assert_eq!(range(b"Hello World", -3, -1), b"rld");
        assert_eq!(range(b"Hello World", 5, 3), b"");
        assert_eq!(range(b"Hello World", 0, -100), b"H");
        assert_eq!(range(b"", 0, -1), b"");
    }

    #[test]
    fn set_options() {
        let Ok(Op::Str(StrOp::Set { expiry, cond, get, .. })) = p("set k v EX 10 NX GET") else { panic!() };
        assert_eq!((expiry, cond, get), (Expiry::At(1_010_000), SetCond::IfAbsent, true));
        assert_eq!(p("set k v NX XX"), Err(Error::Syntax));
        assert_eq!(p("set k v EX 10 PX 10"), Err(Error::Syntax));
        assert_eq!(p("set k v EX 10 KEEPTTL"), Err(Error::Syntax));
        assert_eq!(p("set k v EX 0"), Err(Error::InvalidExpire("set".into())));
        assert_eq!(p("set k v EX x"), Err(Error::NotInteger));
        assert_eq!(p("set k v EX"), Err(Error::Syntax));
        assert!(p("set k v EX 10 EX 20").is_ok());
        // Options end at their first NUL byte, as Redis compares them as C strings.
        let Ok(Op::Str(StrOp::Set { cond, expiry, .. })) = p("set k v nx\\0x EX\\0 10") else { panic!() };
        assert_eq!((cond, expiry), (SetCond::IfAbsent, Expiry::At(1_010_000)));
    }

    #[test]
    fn getex_validates_the_time_after_the_key_lookup() {
        let getex = |line: &str| match p(line) {
            Ok(Op::Str(StrOp::GetEx { expiry, .. })) => Ok(expiry),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(getex("getex k PX abc"), Ok(GetExExpiry::NotInteger));
        assert_eq!(getex("getex k EX 0"), Ok(GetExExpiry::Invalid));
        assert_eq!(getex("getex k EX 10"), Ok(GetExExpiry::In(1_010_000)));
        // Syntax is still checked first, whatever the key.
        assert_eq!(getex("getex k PX abc PERSIST"), Err(Error::Syntax));
        assert_eq!(getex("getex k PX abc FOO"), Err(Error::Syntax));
    }
}
