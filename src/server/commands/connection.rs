//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, READONLY/READWRITE and
//! CLIENT.

use std::time::Instant;

use bytes::Bytes;

use super::{container, eq, help, node, text, NodeCommand, Run, REDIS_VERSION};
use crate::cmd::meta::*;
use crate::cmd::Error;
use crate::resp::{parse_i64, Protocol, Reply};
use crate::server::clients::lock;
use crate::server::conn::Session;

const CLIENT_SUBS: &[NodeCommand] = &[
    node!(
        "client|id",
        2,
        CONN,
        0,
        0,
        0,
        ASC,
        "connection",
        "5.0.0",
        Run::Sync(client_id),
        "Returns the client ID for the current connection"
    ),
    node!(
        "client|setname",
        3,
        CONN,
        0,
        0,
        0,
        ASC,
        "connection",
        "2.6.9",
        Run::Sync(client_setname),
        "Sets the current connection name"
    ),
    node!(
        "client|getname",
        2,
        CONN,
        0,
        0,
        0,
        ASC,
        "connection",
        "2.6.9",
        Run::Sync(client_getname),
        "Returns the name of the current connection"
    ),
    node!(
        "client|setinfo",
        4,
        CONN,
        0,
        0,
        0,
        ASC,
        "connection",
        "7.2.0",
        Run::Sync(client_setinfo),
        "Sets information specific to the client or connection"
    ),
    node!(
        "client|info",
        2,
        CONN,
        0,
        0,
        0,
        ASC,
        "connection",
        "6.2.0",
        Run::Sync(client_info),
        "Returns information about the connection"
    ),
    node!(
        "client|list",
        -2,
        ADMIN,
        0,
        0,
        0,
        ADM,
        "connection",
        "2.4.0",
        Run::Sync(client_list),
        "Lists open connections"
    ),
    node!(
        "client|reply",
        3,
        &["noscript", "loading", "stale"],
        0,
        0,
        0,
        ASC,
        "connection",
        "3.2.0",
        Run::Sync(client_reply),
        "Instructs the server whether to reply to commands"
    ),
    node!(
        "client|unblock",
        -3,
        ADMIN,
        0,
        0,
        0,
        &["@admin", "@slow", "@dangerous", "@connection"],
        "connection",
        "5.0.0",
        Run::Sync(client_unblock),
        "Unblocks a client blocked by a blocking command from a different connection"
    ),
    node!(
        "client|help",
        2,
        CONN,
        0,
        0,
        0,
        ASC,
        "connection",
        "5.0.0",
        Run::Sync(client_help),
        "Returns helpful text about the different subcommands"
    ),
];

/// The commands of this family, sorted by name.
#[rustfmt::skip]
pub(super) const COMMANDS: &[NodeCommand] = &[
    node!("auth", -2, &["noscript", "loading", "stale", "fast", "no_auth"], 0, 0, 0, AC, "connection", "1.0.0", Run::Sync(auth), "Authenticates the connection"),
    node!("client", -2, &[], 0, 0, 0, &["@slow"], "connection", "2.4.0", Run::Sync(client), "A container for client connection commands", CLIENT_SUBS),
    node!("echo", 2, &["fast"], 0, 0, 0, AC, "connection", "1.0.0", Run::Sync(echo), "Returns the given string"),
    node!("hello", -1, &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, AC, "connection", "6.0.0", Run::Sync(hello), "Handshakes with the Redis server"),
    node!("ping", -1, &["fast"], 0, 0, 0, AC, "connection", "1.0.0", Run::Sync(ping), "Returns the server's liveliness response"),
    node!("quit", -1, &["allow_busy", "noscript", "loading", "stale", "fast", "no_auth"], 0, 0, 0, AC, "connection", "1.0.0", Run::Sync(quit), "Closes the connection"),
    node!("readonly", 1, &["loading", "stale", "fast"], 0, 0, 0, AC, "cluster", "3.0.0", Run::Sync(readonly), "Enables read-only queries for a connection to a Redis Cluster replica node"),
    node!("readwrite", 1, &["loading", "stale", "fast"], 0, 0, 0, AC, "cluster", "3.0.0", Run::Sync(readwrite), "Enables read-write queries for a connection to a Reids Cluster replica node"),
    node!("reset", 1, &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, AC, "connection", "6.2.0", Run::Sync(reset), "Resets the connection"),
    node!("select", 2, &["loading", "stale", "fast"], 0, 0, 0, AC, "connection", "1.0.0", Run::Sync(select), "Changes the selected database"),
];

fn ping(s: &mut Session, args: &[Bytes]) -> Reply {
    if s.proto == Protocol::Resp2 && s.subs.active() && args.len() <= 2 {
        // Subscribed mode (RESP2): a pong a subscriber can tell from its messages.
        let arg = args.get(1).cloned().unwrap_or_default();
        return Reply::Array(vec![Reply::bulk("pong"), Reply::Bulk(arg)]);
    }
    match args.len() {
        1 => Reply::status("PONG"),
        2 => Reply::Bulk(args[1].clone()),
        _ => Error::WrongArity("ping".into()).into(),
    }
}

fn echo(_: &mut Session, args: &[Bytes]) -> Reply {
    Reply::Bulk(args[1].clone())
}

fn select(_: &mut Session, args: &[Bytes]) -> Reply {
    match parse_i64(&args[1]) {
        Some(0) => Reply::Ok,
        Some(db) if (i32::MIN as i64..=i32::MAX as i64).contains(&db) => Reply::err("ERR DB index is out of range"),
        Some(_) => Reply::err(format!("ERR value is out of range, value must between {} and {}", i32::MIN, i32::MAX)),
        None => Error::NotInteger.into(),
    }
}

fn auth(_: &mut Session, args: &[Bytes]) -> Reply {
    match args.len() {
        2 => Reply::err(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ),
        3 => check_user(&args[1]),
        _ => Error::Syntax.into(),
    }
}

fn quit(s: &mut Session, _: &[Bytes]) -> Reply {
    s.close = true;
    Reply::Ok
}

fn readonly(s: &mut Session, _: &[Bytes]) -> Reply {
    s.readonly = true;
    lock(&s.client).readonly = true;
    Reply::Ok
}

fn readwrite(s: &mut Session, _: &[Bytes]) -> Reply {
    s.readonly = false;
    lock(&s.client).readonly = false;
    Reply::Ok
}

fn reset(s: &mut Session, _: &[Bytes]) -> Reply {
    s.end_multi();
    s.unsubscribe_all();
    s.readonly = false;
    s.proto = Protocol::Resp2;
    let mut info = lock(&s.client);
    info.readonly = false;
    info.name.clear();
    info.resp = 2;
    Reply::status("RESET")
}

fn client(s: &mut Session, args: &[Bytes]) -> Reply {
    container(s, args)
}

fn client_id(s: &mut Session, _: &[Bytes]) -> Reply {
    Reply::Int(s.id as i64)
}

fn client_setname(s: &mut Session, args: &[Bytes]) -> Reply {
    match valid_name(&args[2]) {
        Ok(name) => {
            if name == crate::server::forward::FORWARDER_NAME {
                s.forwarder = true;
            }
            lock(&s.client).name = name;
            Reply::Ok
        }
        Err(e) => e,
    }
}

fn client_reply(s: &mut Session, args: &[Bytes]) -> Reply {
    if eq(&args[2], "on") {
        s.reply_off = false;
        s.reply_skip = 0;
        Reply::Ok
    } else if eq(&args[2], "off") {
        s.reply_off = true;
        Reply::Ok
    } else if eq(&args[2], "skip") {
        // This command's reply and the next one's.
        if !s.reply_off {
            s.reply_skip = 2;
        }
        Reply::Ok
    } else {
        Reply::err("ERR syntax error")
    }
}

fn client_unblock(s: &mut Session, args: &[Bytes]) -> Reply {
    if args.len() > 4 {
        return Reply::err("ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP.");
    }
    let Some(id) = parse_i64(&args[2]) else {
        return Error::NotInteger.into();
    };
    let how = match args.get(3) {
        None => crate::server::blocked::Unblock::Timeout,
        Some(a) if eq(a, "timeout") => crate::server::blocked::Unblock::Timeout,
        Some(a) if eq(a, "error") => crate::server::blocked::Unblock::Error,
        Some(_) => return Reply::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let released = u64::try_from(id).is_ok_and(|id| s.shared.blocked.unblock(id, how));
    Reply::Int(released as i64)
}

fn client_getname(s: &mut Session, _: &[Bytes]) -> Reply {
    let name = lock(&s.client).name.clone();
    if name.is_empty() {
        Reply::Nil
    } else {
        Reply::bulk(name)
    }
}

fn client_info(s: &mut Session, _: &[Bytes]) -> Reply {
    Reply::Verbatim(format!("{}\n", lock(&s.client).line(Instant::now())))
}

fn client_help(_: &mut Session, _: &[Bytes]) -> Reply {
    help(&[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "LIST [options ...]",
        "    Return information about client connections.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETINFO <option> <value>",
        "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "HELP",
        "    Print this help.",
    ])
}

/// AUTH's and HELLO AUTH's check: without ACLs only the default user exists.
fn check_user(user: &[u8]) -> Reply {
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
fn client_setinfo(s: &mut Session, args: &[Bytes]) -> Reply {
    let (attr, value) = (&args[2][..], &args[3][..]);
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
fn client_list(s: &mut Session, args: &[Bytes]) -> Reply {
    // As Redis 7.0: `TYPE t` alone, or `ID id...` (any integer; ids no client has match
    // nothing), or no filter at all.
    let mut ids: Option<Vec<u64>> = None;
    // TYPE: whether to list pub/sub clients (true) or normal ones (false).
    let mut pubsub = None;
    if args.len() == 4 && eq(&args[2], "type") {
        let t = &args[3];
        if !["normal", "master", "replica", "slave", "pubsub"].iter().any(|n| eq(t, n)) {
            return Reply::err(format!("ERR Unknown client type '{}'", text(t)));
        }
        if !eq(t, "normal") && !eq(t, "pubsub") {
            return Reply::Verbatim(String::new());
        }
        pubsub = Some(eq(t, "pubsub"));
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
        if ids.as_ref().is_none_or(|ids| ids.contains(&c.id)) && pubsub.is_none_or(|p| p == c.is_pubsub()) {
            out.push_str(&c.line(now));
            out.push('\n');
        }
    }
    Reply::Verbatim(out)
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
            let r = check_user(&args[j + 1]);
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
