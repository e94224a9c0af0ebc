//! Connection and server commands that never touch the keyspace through the log: PING, ECHO,
//! HELLO, SELECT, AUTH, CLIENT, COMMAND, CONFIG, INFO, TIME, DEBUG.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::clients::lock;
use super::conn::Session;
use crate::base::unix_millis;
use crate::cluster;
use crate::cmd::{self, CommandSpec, COMMANDS};
use crate::resp::{parse_i64, Protocol, Reply};
use crate::sm::glob_matches;

/// The Redis version raftis speaks and reports, so clients enable the same features.
pub const REDIS_VERSION: &str = "7.0.15";

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// Runs a server command other than the MULTI family, QUIT and RESET.
pub(super) async fn command(s: &mut Session, name: &str, args: &[Bytes]) -> Reply {
    match name {
        "ping" => match args.len() {
            1 => Reply::status("PONG"),
            2 => Reply::Bulk(args[1].clone()),
            _ => cmd::wrong_arity("ping"),
        },
        "echo" => Reply::Bulk(args[1].clone()),
        "hello" => hello(s, args),
        "select" => match parse_i64(&args[1]) {
            Some(0) => Reply::Ok,
            Some(db) if (i32::MIN as i64..=i32::MAX as i64).contains(&db) => Reply::err("ERR DB index is out of range"),
            Some(_) => {
                Reply::err(format!("ERR value is out of range, value must between {} and {}", i32::MIN, i32::MAX))
            }
            None => Reply::err("ERR value is not an integer or out of range"),
        },
        "auth" => match args.len() {
            2 => Reply::err(
                "ERR AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?",
            ),
            3 => auth(&args[1]),
            _ => Reply::err("ERR syntax error"),
        },
        "time" => {
            let micros =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
            Reply::Array(vec![
                Reply::bulk((micros / 1_000_000).to_string()),
                Reply::bulk((micros % 1_000_000).to_string()),
            ])
        }
        "info" => Reply::Verbatim(info(s, &args[1..])),
        "role" => s.shared.backend.view().role_reply(),
        "cluster|info" => Reply::Verbatim(s.shared.backend.view().info_text()),
        "cluster|nodes" => Reply::Verbatim(s.shared.backend.view().nodes_text()),
        // Without a leader, say so: a cluster client then asks another node for the topology.
        "cluster|slots" | "cluster|shards" => {
            let view = s.shared.backend.view();
            match (view.leader, name) {
                (None, _) => cluster::cluster_down(),
                (_, "cluster|slots") => view.slots(),
                _ => view.shards(),
            }
        }
        "cluster|myid" => Reply::bulk(cluster::node_name(s.shared.backend.id())),
        "cluster|keyslot" => Reply::Int(cluster::key_slot(&args[2]) as i64),
        "cluster|help" => help(&[
            "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "INFO",
            "    Return information about the cluster.",
            "KEYSLOT <key>",
            "    Return the hash slot for <key>.",
            "MYID",
            "    Return the node id.",
            "NODES",
            "    Return cluster configuration seen by node. Output format:",
            "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
            "SHARDS",
            "    Return information about slot range mappings and the nodes associated with them.",
            "SLOTS",
            "    Return information about slots range mappings. Each range is made of:",
            "    start, end, master and replicas IP addresses, ports and ids",
            "HELP",
            "    Print this help.",
        ]),
        "debug" => debug(s, args).await,
        "client|id" => Reply::Int(s.id as i64),
        "client|setname" => match valid_name(&args[2]) {
            Ok(name) => {
                lock(&s.client).name = name;
                Reply::Ok
            }
            Err(e) => e,
        },
        "client|getname" => {
            let name = lock(&s.client).name.clone();
            if name.is_empty() {
                Reply::Nil
            } else {
                Reply::bulk(name)
            }
        }
        "client|setinfo" => client_setinfo(s, &args[2], &args[3]),
        "client|info" => Reply::Verbatim(format!("{}\n", lock(&s.client).line(Instant::now()))),
        "client|list" => client_list(s, args),
        "client|help" => help(&[
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "LIST [options ...]",
            "    Return information about client connections.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "HELP",
            "    Print this help.",
        ]),
        "command" => Reply::Array(COMMANDS.iter().map(command_info).collect()),
        "command|count" => Reply::Int(COMMANDS.len() as i64),
        "command|list" => command_list(args),
        "command|info" => {
            if args.len() == 2 {
                return Reply::Array(COMMANDS.iter().map(command_info).collect());
            }
            Reply::Array(args[2..].iter().map(|n| cmd::lookup(n).map_or(Reply::NilArray, command_info)).collect())
        }
        "command|docs" => {
            let specs: Vec<&CommandSpec> = if args.len() == 2 {
                COMMANDS.iter().collect()
            } else {
                args[2..].iter().filter_map(|n| cmd::lookup(n)).collect()
            };
            Reply::Map(specs.into_iter().map(|c| (Reply::bulk(c.name), command_docs(c))).collect())
        }
        "command|getkeys" => command_getkeys(&args[2..]),
        "command|help" => help(&[
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
        ]),
        "config|get" => config_get(s, &args[2..]),
        "config|resetstat" => {
            s.shared.stats.reset();
            Reply::Ok
        }
        "config|help" => help(&[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "HELP",
            "    Print this help.",
        ]),
        other => Reply::err(format!("ERR unknown command '{other}'")),
    }
}

fn help(lines: &[&str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::status(*l)).collect())
}

fn auth(user: &[u8]) -> Reply {
    if user == b"default" {
        Reply::Ok
    } else {
        Reply::err("WRONGPASS invalid username-password pair or user is disabled.")
    }
}

/// Client names and SETINFO values: printable ASCII without spaces.
fn valid_attr(v: &[u8]) -> bool {
    v.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn valid_name(name: &[u8]) -> Result<String, Reply> {
    if valid_attr(name) {
        Ok(text(name))
    } else {
        Err(Reply::err("ERR Client names cannot contain spaces, newlines or special characters."))
    }
}

fn client_setinfo(s: &Session, attr: &[u8], value: &[u8]) -> Reply {
    let lib_name = if eq(attr, "lib-name") {
        true
    } else if eq(attr, "lib-ver") {
        false
    } else {
        return Reply::err(format!("ERR Unrecognized option '{}'", text(attr)));
    };
    if !valid_attr(value) {
        return Reply::err(format!("ERR {} cannot contain spaces, newlines or special characters.", text(attr)));
    }
    let mut info = lock(&s.client);
    if lib_name {
        info.lib_name = text(value);
    } else {
        info.lib_ver = text(value);
    }
    Reply::Ok
}

fn client_list(s: &Session, args: &[Bytes]) -> Reply {
    // As Redis 7.0: `TYPE t` alone, or `ID id...` (any integer; ids no client has match
    // nothing), or no filter at all.
    let mut ids: Option<Vec<u64>> = None;
    if args.len() == 4 && eq(&args[2], "type") {
        let t = &args[3];
        if !["normal", "master", "replica", "slave", "pubsub"].iter().any(|n| eq(t, n)) {
            return Reply::err(format!("ERR Unknown client type '{}'", text(t)));
        }
        if !eq(t, "normal") {
            return Reply::Verbatim(String::new());
        }
    } else if args.len() > 3 && eq(&args[2], "id") {
        let mut list = Vec::new();
        for a in &args[3..] {
            match parse_i64(a) {
                Some(id) => list.extend(u64::try_from(id).ok()),
                None => return Reply::err("ERR Invalid client ID"),
            }
        }
        ids = Some(list);
    } else if args.len() != 2 {
        return Reply::err("ERR syntax error");
    }
    let now = Instant::now();
    let mut out = String::new();
    for c in s.shared.clients.all() {
        if ids.as_ref().is_none_or(|ids| ids.contains(&c.id)) {
            out.push_str(&c.line(now));
            out.push('\n');
        }
    }
    Reply::Verbatim(out)
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
fn command_list(args: &[Bytes]) -> Reply {
    let names = |keep: &dyn Fn(&CommandSpec) -> bool| {
        Reply::Array(COMMANDS.iter().filter(|c| keep(c)).map(|c| Reply::bulk(c.name)).collect())
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

fn hello(s: &mut Session, args: &[Bytes]) -> Reply {
    let mut next = 1;
    let mut version = None;
    if args.len() >= 2 {
        match parse_i64(&args[1]) {
            Some(v) if (2..=3).contains(&v) => version = Some(v),
            Some(_) => return Reply::err("NOPROTO unsupported protocol version"),
            None => return Reply::err("ERR Protocol version is not an integer or out of range"),
        }
        next = 2;
    }
    // Each option is checked as it is read, as Redis 7.0 does: a bad credential or client name
    // answers before a syntax error further on.
    let mut name = None;
    let mut j = next;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if eq(&args[j], "auth") && more >= 2 {
            let r = auth(&args[j + 1]);
            if r.is_error() {
                return r;
            }
            j += 3;
        } else if eq(&args[j], "setname") && more >= 1 {
            match valid_name(&args[j + 1]) {
                Ok(n) => name = Some(n),
                Err(e) => return e,
            }
            j += 2;
        } else {
            return Reply::err(format!("ERR Syntax error in HELLO option '{}'", text(&args[j])));
        }
    }
    let mut info = lock(&s.client);
    if let Some(name) = name {
        info.name = name;
    }
    if let Some(v) = version {
        s.proto = if v == 3 { Protocol::Resp3 } else { Protocol::Resp2 };
        info.resp = v as u8;
    }
    Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(REDIS_VERSION)),
        (Reply::bulk("proto"), Reply::Int(info.resp as i64)),
        (Reply::bulk("id"), Reply::Int(s.id as i64)),
        (Reply::bulk("mode"), Reply::bulk("cluster")),
        (Reply::bulk("role"), Reply::bulk("master")),
        (Reply::bulk("modules"), Reply::Array(vec![])),
    ])
}

fn statuses(list: &[&str]) -> Reply {
    Reply::Set(list.iter().map(|f| Reply::status(*f)).collect())
}

fn command_info(c: &CommandSpec) -> Reply {
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
        Reply::Array(c.subcommands.iter().map(command_info).collect()),
    ])
}

/// One key spec covering the command's keys (first key, last key, step), as Redis 7 lists them.
fn key_specs(c: &CommandSpec) -> Reply {
    if c.first_key == 0 {
        return Reply::Array(vec![]);
    }
    let flags = if c.is_write() { ["RW", "update"] } else { ["RO", "access"] };
    let lastkey = if c.last_key < 0 { c.last_key } else { c.last_key - c.first_key };
    let map = |pairs: Vec<(&str, Reply)>| Reply::Map(pairs.into_iter().map(|(k, v)| (Reply::bulk(k), v)).collect());
    Reply::Array(vec![map(vec![
        ("flags", statuses(&flags)),
        (
            "begin_search",
            map(vec![("type", Reply::bulk("index")), ("spec", map(vec![("index", Reply::Int(c.first_key as i64))]))]),
        ),
        (
            "find_keys",
            map(vec![
                ("type", Reply::bulk("range")),
                (
                    "spec",
                    map(vec![
                        ("lastkey", Reply::Int(lastkey as i64)),
                        ("keystep", Reply::Int(c.step as i64)),
                        ("limit", Reply::Int(0)),
                    ]),
                ),
            ]),
        ),
    ])])
}

fn command_docs(c: &CommandSpec) -> Reply {
    let mut doc = vec![
        (Reply::bulk("summary"), Reply::bulk(c.summary)),
        (Reply::bulk("since"), Reply::bulk(c.since)),
        (Reply::bulk("group"), Reply::bulk(c.group)),
    ];
    if !c.subcommands.is_empty() {
        doc.push((
            Reply::bulk("subcommands"),
            Reply::Map(c.subcommands.iter().map(|s| (Reply::bulk(s.name), command_docs(s))).collect()),
        ));
    }
    Reply::Map(doc)
}

fn command_getkeys(args: &[Bytes]) -> Reply {
    let spec = match cmd::resolve(args) {
        Ok(spec) => spec,
        Err(_) if cmd::lookup(&args[0]).is_none() => return Reply::err("ERR Invalid command specified"),
        Err(_) => return Reply::err("ERR Invalid number of arguments specified for command"),
    };
    if spec.first_key == 0 {
        return Reply::err("ERR The command has no key arguments");
    }
    let argc = args.len() as i32;
    let last = if spec.last_key < 0 { argc + spec.last_key } else { spec.last_key };
    let mut keys = Vec::new();
    let mut i = spec.first_key;
    while i <= last && i < argc {
        keys.push(Reply::Bulk(args[i as usize].clone()));
        i += spec.step;
    }
    Reply::Array(keys)
}

fn config_get(s: &Session, patterns: &[Bytes]) -> Reply {
    let cfg = &s.shared.config;
    let params: Vec<(&str, String)> = vec![
        ("appendfsync", "always".into()),
        ("appendonly", "no".into()),
        ("bind", cfg.bind.clone()),
        ("cluster-enabled", "no".into()),
        ("databases", "1".into()),
        ("dir", cfg.dir.display().to_string()),
        ("maxclients", cfg.maxclients.to_string()),
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        ("port", cfg.port.to_string()),
        ("proto-max-bulk-len", crate::resp::MAX_BULK_LEN.to_string()),
        ("save", String::new()),
        ("timeout", "0".into()),
    ];
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

async fn debug(s: &mut Session, args: &[Bytes]) -> Reply {
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

fn info(s: &Session, args: &[Bytes]) -> String {
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
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n",
            shared.clients.count(),
            shared.config.maxclients
        ),
        "memory" => {
            let rss = resident_bytes();
            format!(
                "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\n\
                 maxmemory:0\r\nmaxmemory_policy:noeviction\r\n",
                human_bytes(rss)
            )
        }
        "persistence" => {
            let (snapshot, last_log) = shared.backend.view().snapshot_and_log();
            format!("# Persistence\r\nloading:0\r\naof_enabled:0\r\nraft_snapshot_index:{snapshot}\r\nraft_last_log_index:{last_log}\r\n")
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
