//! Parsing a keyspace command's arguments into an [`Op`], with Redis's exact syntax errors.
//!
//! Relative times (EX, PX, EXPIRE) become absolute here, with the accepting node's `now`, so
//! that the operation means the same on every replica.

use bytes::Bytes;

use crate::resp::{parse_i64, Reply};
use crate::sm::{ExpireCond, Expiry, GetExExpiry, LcsOptions, Op, SetCond, TtlQuery};

const ERR_SYNTAX: &str = "ERR syntax error";
const ERR_NOT_INTEGER: &str = "ERR value is not an integer or out of range";

/// Whether `arg` is the option `word`. Redis compares options as C strings (`strcasecmp`), so
/// the argument ends at its first NUL byte: `nx\0anything` is NX.
fn eq(arg: &[u8], word: &str) -> bool {
    c_str(arg).eq_ignore_ascii_case(word.as_bytes())
}

/// The argument as C code sees it: up to its first NUL byte.
fn c_str(arg: &[u8]) -> &[u8] {
    arg.split(|&b| b == 0).next().unwrap_or_default()
}

fn int(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(|| Reply::err(ERR_NOT_INTEGER))
}

fn invalid_expire(cmd: &str) -> Reply {
    Reply::err(format!("ERR invalid expire time in '{cmd}' command"))
}

/// Parses `args` (the command name first) of the keyspace command `name` (lower case).
pub fn parse_op(name: &str, args: &[Bytes], now: u64) -> Result<Op, Reply> {
    let a = |i: usize| args[i].clone();
    let keys = |from: usize| args[from..].to_vec();
    Ok(match name {
        "get" => Op::Get(a(1)),
        "mget" => Op::MGet(keys(1)),
        "strlen" => Op::StrLen(a(1)),
        "getrange" | "substr" => Op::GetRange { key: a(1), start: int(&args[2])?, end: int(&args[3])? },
        "lcs" => lcs(args)?,
        "exists" => Op::Exists(keys(1)),
        "touch" => Op::Touch(keys(1)),
        "type" => Op::Type(a(1)),
        "ttl" => Op::Ttl { key: a(1), query: TtlQuery { millis: false, absolute: false } },
        "pttl" => Op::Ttl { key: a(1), query: TtlQuery { millis: true, absolute: false } },
        "expiretime" => Op::Ttl { key: a(1), query: TtlQuery { millis: false, absolute: true } },
        "pexpiretime" => Op::Ttl { key: a(1), query: TtlQuery { millis: true, absolute: true } },
        "keys" => Op::Keys(a(1)),
        "scan" => scan(args)?,
        "randomkey" => Op::RandomKey,
        "dbsize" => Op::DbSize,
        "set" => set(args, now)?,
        "setnx" => Op::SetNx { key: a(1), value: a(2) },
        "upd" => Op::Upd { key: a(1), value: a(2) },
        "setex" | "psetex" => {
            let millis = name == "psetex";
            let at = expire_millis(&args[2], millis, true, now).ok_or_else(|| invalid_expire(name))??;
            Op::Set { key: a(1), value: a(3), cond: SetCond::Always, expiry: Expiry::At(at), get: false }
        }
        "getset" => Op::Set { key: a(1), value: a(2), cond: SetCond::Always, expiry: Expiry::Clear, get: true },
        "getdel" => Op::GetDel(a(1)),
        "getex" => getex(args, now)?,
        "mset" | "msetnx" => {
            if args.len().is_multiple_of(2) {
                return Err(Reply::err(format!("ERR wrong number of arguments for '{name}' command")));
            }
            let pairs = args[1..].chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
            if name == "mset" {
                Op::MSet(pairs)
            } else {
                Op::MSetNx(pairs)
            }
        }
        "incr" => Op::IncrBy { key: a(1), by: 1 },
        "decr" => Op::IncrBy { key: a(1), by: -1 },
        "incrby" => Op::IncrBy { key: a(1), by: int(&args[2])? },
        "decrby" => {
            let by = int(&args[2])?;
            if by == i64::MIN {
                return Err(Reply::err("ERR decrement would overflow"));
            }
            Op::IncrBy { key: a(1), by: -by }
        }
        "incrbyfloat" => {
            if !crate::sm::is_long_double(&args[2]) {
                return Err(Reply::err("ERR value is not a valid float"));
            }
            Op::IncrByFloat { key: a(1), by: a(2) }
        }
        "append" => Op::Append { key: a(1), value: a(2) },
        "setrange" => {
            let offset = int(&args[2])?;
            if offset < 0 {
                return Err(Reply::err("ERR offset is out of range"));
            }
            Op::SetRange { key: a(1), offset: offset as u64, value: a(3) }
        }
        "del" | "unlink" => Op::Del(keys(1)),
        "expire" | "pexpire" | "expireat" | "pexpireat" => expire(name, args, now)?,
        "persist" => Op::Persist(a(1)),
        "rename" => Op::Rename { from: a(1), to: a(2), nx: false },
        "renamenx" => Op::Rename { from: a(1), to: a(2), nx: true },
        "copy" => copy(args)?,
        "flushall" | "flushdb" => {
            match args.len() {
                1 => {}
                2 if eq(&args[1], "sync") || eq(&args[1], "async") => {}
                _ => return Err(Reply::err(ERR_SYNTAX)),
            }
            Op::FlushAll
        }
        other => unreachable!("{other} is not a keyspace command"),
    })
}

/// Turns an EX/PX-style argument into absolute milliseconds. The outer `None` is an invalid
/// time (Redis's "invalid expire time"); the inner error is a non-integer.
fn expire_millis(arg: &[u8], millis: bool, relative: bool, now: u64) -> Option<Result<u64, Reply>> {
    let v = match int(arg) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    if v <= 0 || (!millis && v > i64::MAX / 1000) {
        return None;
    }
    let ms = if millis { v } else { v * 1000 };
    let at = if relative { ms.checked_add(now as i64)? } else { ms };
    (at > 0).then_some(Ok(at as u64))
}

/// Which command's options `string_options` parses (Redis's `COMMAND_SET` / `COMMAND_GET`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum StringCommand {
    Set,
    GetEx,
}

/// SET's and GETEX's options, parsed with Redis's `parseExtendedStringArgumentsOrReply` rules:
/// an option may repeat, but NX/XX, KEEPTTL/PERSIST and the expiry kinds exclude each other.
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

fn string_options(args: &[Bytes], from: usize, command: StringCommand) -> Result<StringOptions<'_>, Reply> {
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
                return Err(Reply::err(ERR_SYNTAX));
            }
            o.expire = Some((millis, relative, next));
            j += 1;
        } else {
            return Err(Reply::err(ERR_SYNTAX));
        }
        j += 1;
    }
    Ok(o)
}

fn set(args: &[Bytes], now: u64) -> Result<Op, Reply> {
    let o = string_options(args, 3, StringCommand::Set)?;
    let expiry = match o.expire {
        Some((millis, relative, arg)) => {
            Expiry::At(expire_millis(arg, millis, relative, now).ok_or_else(|| invalid_expire("set"))??)
        }
        None if o.keepttl => Expiry::Keep,
        None => Expiry::Clear,
    };
    let cond = match (o.nx, o.xx) {
        (true, _) => SetCond::IfAbsent,
        (_, true) => SetCond::IfPresent,
        _ => SetCond::Always,
    };
    Ok(Op::Set { key: args[1].clone(), value: args[2].clone(), cond, expiry, get: o.get })
}

/// EX, PX, EXAT, PXAT → (milliseconds, relative).
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

/// GETEX checks its options' syntax here, but like Redis 7.0 (`getexCommand`) it validates the
/// time only once the key is found: `GETEX missing PX abc` answers nil, not an error.
fn getex(args: &[Bytes], now: u64) -> Result<Op, Reply> {
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
    Ok(Op::GetEx { key: args[1].clone(), expiry })
}

fn expire(name: &str, args: &[Bytes], now: u64) -> Result<Op, Reply> {
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
            return Err(Reply::err(format!("ERR Unsupported option {}", String::from_utf8_lossy(c_str(opt)))));
        }
    }
    if cond.nx && (cond.xx || cond.gt || cond.lt) {
        return Err(Reply::err("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if cond.gt && cond.lt {
        return Err(Reply::err("ERR GT and LT options at the same time are not compatible"));
    }
    let mut when = int(&args[2])?;
    if !name.starts_with('p') {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(invalid_expire(name));
        }
        when *= 1000;
    }
    let base = if name.ends_with("at") { 0 } else { now as i64 };
    if when > i64::MAX - base {
        return Err(invalid_expire(name));
    }
    Ok(Op::Expire { key: args[1].clone(), at: when + base, cond })
}

fn copy(args: &[Bytes]) -> Result<Op, Reply> {
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if eq(&args[j], "replace") {
            replace = true;
        } else if eq(&args[j], "db") && j + 1 < args.len() {
            // Redis's getIntFromObjectOrReply: a long long first, then the range of an int.
            let db = int(&args[j + 1])?;
            if !(i32::MIN as i64..=i32::MAX as i64).contains(&db) {
                return Err(Reply::err(format!(
                    "ERR value is out of range, value must between {} and {}",
                    i32::MIN,
                    i32::MAX
                )));
            }
            if db != 0 {
                return Err(Reply::err("ERR DB index is out of range"));
            }
            j += 1;
        } else {
            return Err(Reply::err(ERR_SYNTAX));
        }
        j += 1;
    }
    Ok(Op::Copy { from: args[1].clone(), to: args[2].clone(), replace })
}

fn scan(args: &[Bytes]) -> Result<Op, Reply> {
    let cursor = parse_cursor(&args[1]).ok_or_else(|| Reply::err("ERR invalid cursor"))?;
    let (mut pattern, mut count, mut type_name) = (None, 10u64, None);
    let mut i = 2;
    while i < args.len() {
        let more = i + 1 < args.len();
        if eq(&args[i], "count") && more {
            let c = int(&args[i + 1])?;
            if c < 1 {
                return Err(Reply::err(ERR_SYNTAX));
            }
            count = c as u64;
        } else if eq(&args[i], "match") && more {
            pattern = Some(args[i + 1].clone());
        } else if eq(&args[i], "type") && more {
            // Compared with the type's name by strcasecmp: up to the first NUL byte.
            type_name = Some(args[i + 1].slice(..c_str(&args[i + 1]).len()));
        } else {
            return Err(Reply::err(ERR_SYNTAX));
        }
        i += 2;
    }
    Ok(Op::Scan { cursor, pattern, count, type_name })
}

/// C's `strtoul` as Redis's SCAN uses it: optional sign, digits; "-1" wraps around. C sees the
/// argument as a string, so it ends at the first NUL byte ("5\0x" is cursor 5).
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let arg = c_str(arg);
    if arg.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

fn lcs(args: &[Bytes]) -> Result<Op, Reply> {
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
            return Err(Reply::err(ERR_SYNTAX));
        }
        j += 1;
    }
    Ok(Op::Lcs { a: args[1].clone(), b: args[2].clone(), opts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Op, Reply> {
        let args: Vec<Bytes> = line.split(' ').map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
        let name = String::from_utf8_lossy(&args[0]).to_lowercase();
        parse_op(&name, &args, 1_000_000)
    }

    #[test]
    fn set_options() {
        let Ok(Op::Set { expiry, cond, get, .. }) = p("set k v EX 10 NX GET") else { panic!() };
        assert_eq!((expiry, cond, get), (Expiry::At(1_010_000), SetCond::IfAbsent, true));
        assert_eq!(p("set k v NX XX"), Err(Reply::err(ERR_SYNTAX)));
        assert_eq!(p("set k v EX 10 PX 10"), Err(Reply::err(ERR_SYNTAX)));
        assert_eq!(p("set k v EX 10 KEEPTTL"), Err(Reply::err(ERR_SYNTAX)));
        assert_eq!(p("set k v EX 0"), Err(invalid_expire("set")));
        assert_eq!(p("set k v EX x"), Err(Reply::err(ERR_NOT_INTEGER)));
        assert_eq!(p("set k v EX"), Err(Reply::err(ERR_SYNTAX)));
        assert!(p("set k v EX 10 EX 20").is_ok());
    }

    #[test]
    fn expire_arithmetic() {
        assert_eq!(
            p("expire k 10"),
            Ok(Op::Expire { key: Bytes::from_static(b"k"), at: 1_010_000, cond: ExpireCond::default() })
        );
        assert_eq!(p("expire k 9223372036854775807"), Err(invalid_expire("expire")));
        assert!(p("expire k 10 NX XX").is_err());
        assert_eq!(p("expire k 10 foo"), Err(Reply::err("ERR Unsupported option foo")));
    }

    #[test]
    fn getex_validates_the_time_after_the_key_lookup() {
        let getex = |line: &str| match p(line) {
            Ok(Op::GetEx { expiry, .. }) => Ok(expiry),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(getex("getex k PX abc"), Ok(GetExExpiry::NotInteger));
        assert_eq!(getex("getex k EX 0"), Ok(GetExExpiry::Invalid));
        assert_eq!(getex("getex k EX 10"), Ok(GetExExpiry::In(1_010_000)));
        // Syntax is still checked first, whatever the key.
        assert_eq!(getex("getex k PX abc PERSIST"), Err(Reply::err(ERR_SYNTAX)));
        assert_eq!(getex("getex k PX abc FOO"), Err(Reply::err(ERR_SYNTAX)));
    }

    #[test]
    fn errors_quoting_or_ranging_arguments() {
        assert_eq!(
            p("copy a b DB 2147483648"),
            Err(Reply::err("ERR value is out of range, value must between -2147483648 and 2147483647"))
        );
        assert_eq!(p("copy a b DB abc"), Err(Reply::err(ERR_NOT_INTEGER)));
        assert_eq!(p("copy a b DB 1"), Err(Reply::err("ERR DB index is out of range")));
        let args: Vec<Bytes> = vec!["expire".into(), "k".into(), "10".into(), Bytes::from_static(b"a\0b")];
        assert_eq!(parse_op("expire", &args, 0), Err(Reply::err("ERR Unsupported option a")));
    }

    #[test]
    fn options_end_at_their_first_nul_byte() {
        let with_nul = |line: &str| {
            let args: Vec<Bytes> = line.split(' ').map(|s| Bytes::from(s.replace("\\0", "\0"))).collect();
            parse_op(&String::from_utf8_lossy(&args[0]), &args, 1_000_000)
        };
        let Ok(Op::Set { cond, expiry, .. }) = with_nul("set k v nx\\0x EX\\0 10") else { panic!() };
        assert_eq!((cond, expiry), (SetCond::IfAbsent, Expiry::At(1_010_000)));
        assert!(matches!(with_nul("copy a b replace\\0"), Ok(Op::Copy { replace: true, .. })));
        let Ok(Op::Scan { type_name, .. }) = with_nul("scan 0 type\\0 string\\0x") else { panic!() };
        assert_eq!(type_name.as_deref(), Some(&b"string"[..]));
        assert_eq!(with_nul("expire k 10 gt\\0x"), p("expire k 10 gt"));
    }

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b"99999999999999999999999"), None);
        assert_eq!(parse_cursor(b"5\0x"), Some(5));
        assert_eq!(parse_cursor(b"\0"), Some(0));
        assert_eq!(parse_cursor(b" 5"), None);
    }
}
