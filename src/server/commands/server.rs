//! Server commands: COMMAND, CONFIG, DEBUG, INFO, ROLE, TIME.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::{all, container, eq, help, lookup, node, resolve, text, Command, NodeCommand, ReplyFuture, Run};
use crate::base::unix_millis;
use crate::cmd::keys::{KeyOp, ENCODING_PARAMS};
use crate::cmd::meta::*;
use crate::cmd::{Meta, Op};
use crate::resp::Reply;
use crate::server::conn::Session;
use crate::sm::glob_matches;

/// The Redis version raftis speaks and reports, so clients enable the same features.
pub use crate::base::REDIS_VERSION;

const COMMAND_SUBS: &[NodeCommand] = &[
    node!(
        "command|count",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "2.8.13",
        Run::Sync(command_count),
        "Returns a count of commands"
    ),
    node!(
        "command|info",
        -2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "2.8.13",
        Run::Sync(command_info),
        "Returns information about one, multiple or all commands"
    ),
    node!(
        "command|docs",
        -2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "7.0.0",
        Run::Sync(command_docs),
        "Returns documentary information about one, multiple or all commands"
    ),
    node!(
        "command|list",
        -2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "7.0.0",
        Run::Sync(command_list),
        "Returns a list of command names"
    ),
    node!(
        "command|getkeys",
        -4,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "2.8.13",
        Run::Sync(command_getkeys),
        "Extracts the key names from an arbitrary command"
    ),
    node!(
        "command|help",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "5.0.0",
        Run::Sync(command_help),
        "Returns helpful text about the different subcommands"
    ),
];

const CONFIG_SUBS: &[NodeCommand] = &[
    node!(
        "config|get",
        -3,
        ADMIN,
        0,
        0,
        0,
        ADM,
        "server",
        "2.0.0",
        Run::Sync(config_get),
        "Returns the effective values of configuration parameters"
    ),
    node!(
        "config|set",
        -4,
        &["admin", "noscript", "loading", "stale"],
        0,
        0,
        0,
        ADM,
        "server",
        "2.0.0",
        Run::Async(config_set),
        "Sets configuration parameters in-flight"
    ),
    node!(
        "config|resetstat",
        2,
        ADMIN,
        0,
        0,
        0,
        ADM,
        "server",
        "2.0.0",
        Run::Sync(config_resetstat),
        "Resets the server's statistics"
    ),
    node!(
        "config|help",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "5.0.0",
        Run::Sync(config_help),
        "Returns helpful text about the different subcommands"
    ),
];

/// The commands of this family, sorted by name.
#[rustfmt::skip]
pub(super) const COMMANDS: &[NodeCommand] = &[
    node!("command", -1, &["loading", "stale"], 0, 0, 0, ASC, "server", "2.8.13", Run::Sync(command), "Returns detailed information about all commands", COMMAND_SUBS),
    node!("config", -2, &[], 0, 0, 0, &["@slow"], "server", "2.0.0", Run::Sync(config), "A container for server configuration commands", CONFIG_SUBS),
    node!("debug", -2, &["admin", "noscript", "loading", "stale"], 0, 0, 0, ADM, "server", "1.0.0", Run::Async(debug), "A container for debugging commands"),
    node!("bgsave", -1, &["admin", "noscript", "no_async_loading"], 0, 0, 0, ADM, "server", "1.0.0", Run::Async(bgsave), "Asynchronously save the dataset to disk"),
    node!("info", -1, &["loading", "stale"], 0, 0, 0, &["@slow", "@dangerous"], "server", "1.0.0", Run::Sync(info), "Returns information and statistics about the server"),
    node!("lastsave", 1, &["loading", "stale", "fast"], 0, 0, 0, &["@admin", "@fast", "@dangerous"], "server", "1.0.0", Run::Sync(lastsave), "Get the UNIX time stamp of the last successful save to disk"),
    node!("role", 1, &["noscript", "loading", "stale", "fast"], 0, 0, 0, &["@admin", "@fast", "@dangerous"], "server", "2.8.12", Run::Sync(role), "Returns the replication role"),
    node!("save", 1, &["admin", "noscript", "no_async_loading", "no_multi"], 0, 0, 0, ADM, "server", "1.0.0", Run::Async(save), "Synchronously save the dataset to disk"),
    node!("time", 1, &["loading", "stale", "fast"], 0, 0, 0, &["@fast"], "server", "2.6.0", Run::Sync(time), "Returns the server time"),
];

/// SAVE: a Raft snapshot of this node's state, now; answers once it covers everything the
/// node had applied. (Every acknowledged write is already on disk in the log: a snapshot only
/// lets the node purge its log and restart faster.)
fn save<'a>(s: &'a mut Session, _: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(async move {
        match s.shared.backend.snapshot_now(true).await {
            Ok(()) => Reply::Ok,
            Err(e) => Reply::Error(format!("ERR snapshot failed: {e}")),
        }
    })
}

/// BGSAVE [SCHEDULE]: asks for a snapshot and answers at once.
fn bgsave<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(async move {
        if args.len() > 2 || (args.len() == 2 && !args[1].eq_ignore_ascii_case(b"schedule")) {
            return Reply::err("ERR syntax error");
        }
        match s.shared.backend.snapshot_now(false).await {
            Ok(()) => Reply::status("Background saving started"),
            Err(e) => Reply::Error(format!("ERR snapshot failed: {e}")),
        }
    })
}

/// LASTSAVE: when this node's latest snapshot was taken (its start, before any), in Unix seconds.
fn lastsave(s: &mut Session, _: &[Bytes]) -> Reply {
    Reply::Int(s.shared.last_save.load(std::sync::atomic::Ordering::Relaxed) as i64)
}

fn time(_: &mut Session, _: &[Bytes]) -> Reply {
    let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    Reply::Array(vec![Reply::bulk((micros / 1_000_000).to_string()), Reply::bulk((micros % 1_000_000).to_string())])
}

fn info(s: &mut Session, args: &[Bytes]) -> Reply {
    Reply::Verbatim(info_text(s, &args[1..]))
}

fn role(s: &mut Session, _: &[Bytes]) -> Reply {
    s.shared.backend.view().role_reply()
}

fn config(s: &mut Session, args: &[Bytes]) -> Reply {
    container(s, args)
}

fn config_get(s: &mut Session, args: &[Bytes]) -> Reply {
    config_values(s, &args[2..])
}

fn config_set<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(config_set_command(s, args))
}

/// CONFIG SET: raftis's settable parameters are the encoding thresholds, which decide how every
/// replica stores collections, so they change through the log (on the leader; a follower
/// answers MOVED). Each value is checked here, with Redis's errors, before it is proposed.
async fn config_set_command(s: &mut Session, args: &[Bytes]) -> Reply {
    let pairs = &args[2..];
    if pairs.len() % 2 == 1 {
        return Reply::err("ERR syntax error");
    }
    let mut params = Vec::new();
    for pair in pairs.chunks(2) {
        let given = String::from_utf8_lossy(&pair[0]);
        let name = given.to_ascii_lowercase();
        if let Some(&(_, fixed)) = FIXED_PARAMS.iter().find(|(n, _)| *n == name) {
            if !pair[1].eq_ignore_ascii_case(fixed.as_bytes()) {
                return Reply::err(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{given}') - raftis only runs with \
                     {name} '{fixed}'"
                ));
            }
            continue;
        }
        if name == "maxmemory" {
            match memory_value(&pair[1]) {
                Some(v) if v <= i64::MAX as i128 => params.push((name, v as i64)),
                _ => {
                    return Reply::err(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{given}') - argument must be a memory \
                         value"
                    ))
                }
            }
            continue;
        }
        if name == "notify-keyspace-events" {
            match crate::cmd::notify::parse_flags(&pair[1]) {
                Some(flags) => params.push((name, flags as i64)),
                None => {
                    return Reply::err(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{given}') - Invalid event class \
                         character. Use 'Ag$lshzxeKEtmdn'."
                    ))
                }
            }
            continue;
        }
        let Some(&(canonical, _, min, max)) =
            ENCODING_PARAMS.iter().find(|(n, alias, ..)| *n == name || *alias == Some(name.as_str()))
        else {
            return Reply::err(format!("ERR Unknown option or number of arguments for CONFIG SET - '{given}'"));
        };
        let failed =
            |why: &str| Reply::err(format!("ERR CONFIG SET failed (possibly related to argument '{given}') - {why}"));
        let value = if canonical.ends_with("-value") {
            match memory_value(&pair[1]) {
                Some(v) => v,
                None => return failed("argument must be a memory value"),
            }
        } else {
            match crate::resp::parse_i64(&pair[1]) {
                Some(v) => v as i128,
                None => return failed("argument couldn't be parsed into an integer"),
            }
        };
        if value < min as i128 || value > max as i128 {
            return failed(&format!("argument must be between {min} and {max} inclusive"));
        }
        params.push((canonical.to_string(), value as i64));
    }
    if params.is_empty() {
        return Reply::Ok;
    }
    let reply = s.write_op(Op::Key(KeyOp::SetEncodings(params))).await;
    // This node's out-of-memory state follows at once (others within their next check).
    s.shared.memory.refresh(&s.shared.backend);
    reply
}

/// Parameters whose value is fixed in raftis (it persists through its Raft log, never through
/// RDB or AOF, and evicts nothing: `maxmemory` refuses writes, see `server::memory`): CONFIG SET accepts their one value, so that setups
/// (and Redis's own test suite) that set them to it run unchanged, and refuses any other.
const FIXED_PARAMS: &[(&str, &str)] =
    &[("appendfsync", "always"), ("appendonly", "no"), ("maxmemory-policy", "noeviction"), ("save", "")];

/// A memory amount as Redis's `memtoull` reads it: digits and an optional unit (b, k, kb, m,
/// mb, g, gb, in any case; k is 1000, kb 1024).
fn memory_value(arg: &[u8]) -> Option<i128> {
    let digits = arg.iter().position(|b| !b.is_ascii_digit()).unwrap_or(arg.len());
    if digits == 0 || digits > 20 {
        return None;
    }
    let n: u64 = std::str::from_utf8(&arg[..digits]).ok()?.parse().ok()?;
    let unit: u64 = match arg[digits..].to_ascii_lowercase().as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(unit).map(|v| v as i128)
}

fn config_resetstat(s: &mut Session, _: &[Bytes]) -> Reply {
    s.shared.stats.reset();
    Reply::Ok
}

fn config_help(_: &mut Session, _: &[Bytes]) -> Reply {
    help(&[
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "HELP",
        "    Prints this help.",
    ])
}

fn command(_: &mut Session, _: &[Bytes]) -> Reply {
    Reply::Array(all().iter().map(|c| info_of(*c)).collect())
}

fn command_count(_: &mut Session, _: &[Bytes]) -> Reply {
    Reply::Int(all().len() as i64)
}

fn command_info(_: &mut Session, args: &[Bytes]) -> Reply {
    if args.len() == 2 {
        return Reply::Array(all().iter().map(|c| info_of(*c)).collect());
    }
    Reply::Array(args[2..].iter().map(|n| lookup(n).map_or(Reply::NilArray, info_of)).collect())
}

fn command_docs(_: &mut Session, args: &[Bytes]) -> Reply {
    let commands: Vec<Command> =
        if args.len() == 2 { all().to_vec() } else { args[2..].iter().filter_map(|n| lookup(n)).collect() };
    Reply::Map(commands.into_iter().map(|c| (Reply::bulk(c.name()), docs_of(c))).collect())
}

fn command_help(_: &mut Session, _: &[Bytes]) -> Reply {
    help(&[
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "HELP",
        "    Print this help.",
    ])
}

fn debug<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(debug_command(s, args))
}

async fn debug_command(s: &mut Session, args: &[Bytes]) -> Reply {
    let sub = &args[1];
    if eq(sub, "digest") && args.len() == 2 {
        // Any node answers from its own state: this is how replicas are compared.
        s.shared.backend.inspect(|applied| Reply::Status(crate::sm::digest(&applied.sm.keyspace)))
    } else if eq(sub, "digest-value") {
        let keys = &args[2..];
        Reply::Array(
            s.shared
                .backend
                .inspect(|a| keys.iter().map(|k| Reply::Status(crate::sm::digest_value(&a.sm.keyspace, k))).collect()),
        )
    } else if eq(sub, "sleep") && args.len() == 3 {
        // Redis reads the time with `strtod` and no check: the longest number at the start
        // counts, anything else is 0, and a negative time does not sleep.
        let secs = float_prefix(&args[2]);
        if secs > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(secs.min(3600.0))).await;
        }
        Reply::Ok
    } else if eq(sub, "help") {
        help(&[
            "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
            "HELP",
            "    Print this help.",
        ])
    } else {
        Reply::err(format!("ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.", text(sub)))
    }
}
/// The number `strtod` reads at the start of `arg` after blanks (sign, digits, a fraction, an
/// exponent, or `inf`/`infinity`), or 0 when there is none. One pass over the argument, however
/// long. A hexadecimal float reads as its leading `0` (strtod would read it whole).
fn float_prefix(arg: &[u8]) -> f64 {
    let start = arg.iter().position(|b| !b" \t\n\r\x0b\x0c".contains(b)).unwrap_or(arg.len());
    let s = &arg[start..];
    let digits = |from: usize| s.get(from..).map_or(0, |t| t.iter().take_while(|b| b.is_ascii_digit()).count());
    let mut end = usize::from(matches!(s.first(), Some(b'+' | b'-')));
    if let Some(word) = ["infinity", "inf"]
        .iter()
        .find(|w| s.get(end..end + w.len()).is_some_and(|t| t.eq_ignore_ascii_case(w.as_bytes())))
    {
        end += word.len();
    } else {
        let int = digits(end);
        let frac = if s.get(end + int) == Some(&b'.') { digits(end + int + 1) } else { 0 };
        if int + frac == 0 {
            return 0.0;
        }
        end += int + if s.get(end + int) == Some(&b'.') { 1 + frac } else { 0 };
        if matches!(s.get(end), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(s.get(end + 1), Some(b'+' | b'-')));
            let exp = digits(end + 1 + sign);
            if exp > 0 {
                end += 1 + sign + exp;
            }
        }
    }
    std::str::from_utf8(&s[..end]).ok().and_then(|t| t.parse().ok()).unwrap_or(0.0)
}
/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]`.
fn command_list(_: &mut Session, args: &[Bytes]) -> Reply {
    let names = |keep: &dyn Fn(&Meta) -> bool| {
        Reply::Array(all().iter().filter(|c| keep(c.meta())).map(|c| Reply::bulk(c.name())).collect())
    };
    match args.len() {
        2 => names(&|_| true),
        5 if eq(&args[2], "filterby") => {
            let value = &args[4];
            if eq(&args[3], "module") {
                Reply::Array(vec![])
            } else if eq(&args[3], "aclcat") {
                let cat = format!("@{}", text(value).to_ascii_lowercase());
                names(&|c| c.acl.contains(&cat.as_str()))
            } else if eq(&args[3], "pattern") {
                let lower = value.to_ascii_lowercase();
                names(&|c| glob_matches(&lower, c.name.as_bytes()))
            } else {
                Reply::err("ERR syntax error")
            }
        }
        _ => Reply::err("ERR syntax error"),
    }
}
fn statuses(list: &[&str]) -> Reply {
    Reply::Set(list.iter().map(|f| Reply::status(*f)).collect())
}
fn info_of(command: Command) -> Reply {
    let c = command.meta();
    Reply::Array(vec![
        Reply::bulk(c.name),
        Reply::Int(c.arity as i64),
        statuses(c.flags),
        Reply::Int(c.first_key as i64),
        Reply::Int(c.last_key as i64),
        Reply::Int(c.step as i64),
        statuses(c.acl),
        Reply::Set(vec![]),
        key_specs(c),
        Reply::Array(command.subcommands().into_iter().map(info_of).collect()),
    ])
}
/// One key spec covering the command's keys (first key, last key, step), as Redis 7 lists them.
/// Keys announced by a `numkeys` argument get a second spec, of Redis's `keynum` type; keys after
/// a keyword (XREAD's STREAMS) one that searches for it.
fn key_specs(c: &Meta) -> Reply {
    let flags = if c.is_write() { ["RW", "update"] } else { ["RO", "access"] };
    let map = |pairs: Vec<(&str, Reply)>| Reply::Map(pairs.into_iter().map(|(k, v)| (Reply::bulk(k), v)).collect());
    let search = |begin: Reply, find: Reply| {
        map(vec![("flags", statuses(&flags)), ("begin_search", begin), ("find_keys", find)])
    };
    let spec = |index: i64, find: Reply| {
        let begin = map(vec![("type", Reply::bulk("index")), ("spec", map(vec![("index", Reply::Int(index))]))]);
        search(begin, find)
    };
    let keyword_spec = |word: &str, find: Reply| {
        let at = map(vec![("keyword", Reply::bulk(word.to_ascii_uppercase())), ("startfrom", Reply::Int(1))]);
        search(map(vec![("type", Reply::bulk("keyword")), ("spec", at)]), find)
    };
    let mut specs = Vec::new();
    if c.first_key > 0 {
        let lastkey = if c.last_key < 0 { c.last_key } else { c.last_key - c.first_key };
        let range = map(vec![
            ("lastkey", Reply::Int(lastkey as i64)),
            ("keystep", Reply::Int(c.step as i64)),
            ("limit", Reply::Int(0)),
        ]);
        specs.push(spec(c.first_key as i64, map(vec![("type", Reply::bulk("range")), ("spec", range)])));
    }
    if let Some((at, first)) = c.keynum {
        let keynum = map(vec![
            ("keynumidx", Reply::Int(0)),
            ("firstkey", Reply::Int((first - at) as i64)),
            ("keystep", Reply::Int(1)),
        ]);
        specs.push(spec(at as i64, map(vec![("type", Reply::bulk("keynum")), ("spec", keynum)])));
    }
    if let Some(word) = c.keyword {
        let range = map(vec![("lastkey", Reply::Int(-1)), ("keystep", Reply::Int(1)), ("limit", Reply::Int(2))]);
        specs.push(keyword_spec(word, map(vec![("type", Reply::bulk("range")), ("spec", range)])));
    }
    Reply::Array(specs)
}
fn docs_of(command: Command) -> Reply {
    let c = command.meta();
    let mut doc = vec![
        (Reply::bulk("summary"), Reply::bulk(c.summary)),
        (Reply::bulk("since"), Reply::bulk(c.since)),
        (Reply::bulk("group"), Reply::bulk(c.group)),
    ];
    let subs = command.subcommands();
    if !subs.is_empty() {
        doc.push((
            Reply::bulk("subcommands"),
            Reply::Map(subs.into_iter().map(|s| (Reply::bulk(s.name()), docs_of(s))).collect()),
        ));
    }
    Reply::Map(doc)
}
fn command_getkeys(_: &mut Session, args: &[Bytes]) -> Reply {
    let args = &args[2..];
    let spec = match resolve(args) {
        Ok(command) => command.meta(),
        Err(_) if lookup(&args[0]).is_none() => return Reply::err("ERR Invalid command specified"),
        Err(_) => return Reply::err("ERR Invalid number of arguments specified for command"),
    };
    // Shard channels are key specs flagged `not_key`: they pick a slot but are not keys.
    let not_keys = matches!(spec.name, "ssubscribe" | "sunsubscribe" | "spublish");
    if !spec.has_keys() || not_keys {
        return Reply::err("ERR The command has no key arguments");
    }
    let keys = if spec.name == "sort" { Some(sort_keys(args)) } else { spec.key_indexes(args) };
    match keys {
        None => Reply::err("ERR Invalid arguments specified for command"),
        Some(keys) => Reply::Array(keys.into_iter().map(|i| Reply::Bulk(args[i].clone())).collect()),
    }
}

/// SORT's keys as Redis's `sortGetKeys` finds them: the sorted key, and the last STORE's
/// destination (LIMIT's two arguments and BY's and GET's one are skipped).
fn sort_keys(args: &[Bytes]) -> Vec<usize> {
    let mut keys = vec![1];
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < args.len() {
            store = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    keys.extend(store);
    keys
}
fn config_values(s: &Session, patterns: &[Bytes]) -> Reply {
    let cfg = &s.shared.config;
    let params: Vec<(&str, String)> = vec![
        ("appendfsync", "always".into()),
        ("appendonly", "no".into()),
        ("bind", cfg.bind.clone()),
        ("cluster-enabled", "no".into()),
        ("databases", "1".into()),
        ("dir", cfg.dir.display().to_string()),
        ("maxclients", cfg.maxclients.to_string()),
        ("maxmemory-policy", "noeviction".into()),
        ("port", cfg.port.to_string()),
        ("proto-max-bulk-len", crate::resp::MAX_BULK_LEN.to_string()),
        ("save", String::new()),
        ("timeout", "0".into()),
    ];
    let encodings = s.shared.backend.read_local(&Op::Key(KeyOp::GetEncodings), crate::cmd::Ctx { now: 0, seed: 0 });
    let encodings: Vec<(String, String)> = match encodings {
        Reply::Array(items) => items
            .chunks(2)
            .filter_map(|p| match p {
                [Reply::Bulk(n), Reply::Bulk(v)] => {
                    Some((String::from_utf8_lossy(n).into_owned(), String::from_utf8_lossy(v).into_owned()))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let params: Vec<(&str, String)> =
        params.into_iter().chain(encodings.iter().map(|(n, v)| (n.as_str(), v.clone()))).collect();
    let mut out: Vec<(Reply, Reply)> = Vec::new();
    let mut seen = Vec::new();
    for p in patterns {
        let lower = p.to_ascii_lowercase();
        let is_glob = lower.iter().any(|b| b"*?[".contains(b));
        for (name, value) in &params {
            if seen.contains(name) || !glob_matches(&lower, name.as_bytes()) {
                continue;
            }
            seen.push(name);
            // Redis answers an exact name as it was written, and a pattern's matches by name.
            let shown = if is_glob { Reply::bulk(name) } else { Reply::Bulk(p.clone()) };
            out.push((shown, Reply::bulk(value)));
        }
    }
    Reply::Map(out)
}
/// INFO's sections in Redis's order; `true` when part of the default set.
const INFO_SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("errorstats", true),
    ("cluster", true),
    ("raft", true),
    ("keyspace", true),
    ("commandstats", false),
    ("latencystats", false),
];

pub(super) fn info_text(s: &Session, args: &[Bytes]) -> String {
    let everything = args.iter().any(|a| eq(a, "all") || eq(a, "everything"));
    let defaults = args.is_empty() || args.iter().any(|a| eq(a, "default"));
    let wanted = |name: &str, default: bool| everything || (defaults && default) || args.iter().any(|a| eq(a, name));
    INFO_SECTIONS
        .iter()
        .filter(|(name, default)| wanted(name, *default))
        .map(|(name, _)| info_section(s, name))
        .collect::<Vec<_>>()
        .join("\r\n")
}
fn info_section(s: &Session, name: &str) -> String {
    let shared = &s.shared;
    let stats = &shared.stats;
    match name {
        "server" => {
            let uptime = shared.started.elapsed().as_secs();
            format!(
                "# Server\r\nredis_version:{REDIS_VERSION}\r\nraftis_version:{}\r\nredis_mode:cluster\r\n\
                 os:{} {}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\n\
                 server_time_usec:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nhz:10\r\nexecutable:{}\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                shared.run_id,
                shared.config.port,
                unix_millis() * 1000,
                uptime / 86400,
                std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
            )
        }
        "clients" => format!(
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n",
            shared.clients.count(),
            shared.config.maxclients,
            shared.blocked.len()
        ),
        "memory" => {
            let rss = resident_bytes();
            let limit = shared.backend.inspect(|a| a.sm.keyspace.maxmemory);
            // The script cache and the function libraries: replicated state, the same on every node.
            let (scripts, script_bytes, functions) = shared.backend.inspect(|a| {
                let ks = &a.sm.keyspace;
                let bytes: usize = ks.scripts.values().map(|b| b.len()).sum();
                (ks.scripts.len(), bytes, ks.functions.values().map(|l| l.info.functions.len()).sum::<usize>())
            });
            format!(
                "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\n\
                 used_memory_scripts_eval:{script_bytes}\r\nnumber_of_cached_scripts:{scripts}\r\n\
                 number_of_functions:{functions}\r\nmaxmemory:{limit}\r\nmaxmemory_human:{}\r\n\
                 maxmemory_policy:noeviction\r\n",
                human_bytes(rss),
                human_bytes(limit)
            )
        }
        "persistence" => {
            let (snapshot, last_log) = shared.backend.view().snapshot_and_log();
            // Every change is in the Raft log before it is acknowledged; there is no RDB save,
            // so, as on a redis-server run with `save ""`, the count of changes only grows (the
            // keyspace's modification counter: one per key a command changes).
            let changes = shared.backend.inspect(|a| a.sm.keyspace.seq());
            format!(
                "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:{changes}\r\nrdb_bgsave_in_progress:0\r\n\
                 rdb_last_bgsave_status:ok\r\naof_enabled:0\r\nraft_snapshot_index:{snapshot}\r\n\
                 raft_last_log_index:{last_log}\r\n"
            )
        }
        "stats" => format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
             rejected_connections:{}\r\nexpired_keys:{}\r\ntotal_error_replies:{}\r\n",
            shared.clients.total_connections.load(Ordering::Relaxed),
            stats.commands.load(Ordering::Relaxed),
            shared.clients.rejected_connections.load(Ordering::Relaxed),
            stats.expired_keys.load(Ordering::Relaxed),
            stats.error_replies.load(Ordering::Relaxed),
        ),
        "replication" => shared.backend.view().info_sections(true, false).concat(),
        "raft" => {
            let mut raft = shared.backend.view().info_sections(false, true).concat();
            if let Some((flushes, micros, waiters)) = shared.backend.flush_stats() {
                let _ = write!(
                    raft,
                    "raft_log_flushes:{flushes}\r\nraft_log_flush_avg_us:{}\r\nraft_log_appends_per_flush:{:.2}\r\n",
                    micros.checked_div(flushes).unwrap_or(0),
                    waiters as f64 / flushes.max(1) as f64
                );
            }
            let snapshots = shared.backend.snapshot_stats();
            let _ = write!(
                raft,
                "raft_elections_started:{}\r\nraft_elections_won:{}\r\nraft_snapshots_written:{}\r\n\
                 raft_snapshots_installed:{}\r\nraft_snapshot_last_bytes:{}\r\n",
                shared.elections.started.load(Ordering::Relaxed),
                shared.elections.won.load(Ordering::Relaxed),
                snapshots.written.load(Ordering::Relaxed),
                snapshots.installed.load(Ordering::Relaxed),
                snapshots.last_bytes.load(Ordering::Relaxed),
            );
            raft
        }
        "cpu" => {
            let (user, sys) = cpu_seconds();
            format!(
                "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n\
                 used_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\n"
            )
        }
        "modules" => "# Modules\r\n".to_string(),
        "errorstats" => stats.errorstats(),
        "cluster" => "# Cluster\r\ncluster_enabled:1\r\n".to_string(),
        "keyspace" => {
            let now = unix_millis();
            let (keys, expires) =
                shared.backend.inspect(|a| (a.sm.keyspace.live_len(now), a.sm.keyspace.volatile_len()));
            let mut section = String::from("# Keyspace\r\n");
            if keys > 0 {
                let _ = write!(section, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
            section
        }
        "commandstats" => stats.commandstats(),
        "latencystats" => "# Latencystats\r\n".to_string(),
        _ => String::new(),
    }
}
/// User and system CPU seconds of this process.
fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}
/// The process's resident set size, from /proc (0 where unavailable).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "K", "M", "G"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2}{}", UNITS[unit])
}
#[cfg(test)]
mod tests {
    use super::float_prefix;

    #[test]
    fn float_prefix_reads_like_strtod() {
        assert_eq!(float_prefix(b"1.5"), 1.5);
        assert_eq!(float_prefix(b"  0.25s"), 0.25);
        assert_eq!(float_prefix(b"2e-3x"), 0.002);
        assert_eq!(float_prefix(b"-1"), -1.0);
        assert_eq!(float_prefix(b"abc"), 0.0);
        assert_eq!(float_prefix(b""), 0.0);
        assert_eq!(float_prefix(b"nan"), 0.0);
        assert_eq!(float_prefix(b"\xff1"), 0.0);
        assert_eq!(float_prefix(b"5."), 5.0);
        assert_eq!(float_prefix(b".5e"), 0.5);
        assert_eq!(float_prefix(b"1e1e1"), 10.0);
        assert_eq!(float_prefix(b"-Infinity"), f64::NEG_INFINITY);
        assert_eq!(float_prefix(b"+."), 0.0);
        // One pass: a long argument costs no more than reading it.
        assert_eq!(float_prefix(&b"1e".repeat(1 << 20)), 10.0);
    }
}
