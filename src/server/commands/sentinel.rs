//! SENTINEL: the subset of Redis Sentinel's command that clients use to find the primary, with
//! the raftis cluster as one monitored master (see `server::sentinel`). Subcommands that change
//! a sentinel's configuration or drive a failover are refused: Raft elects the leader.

use bytes::Bytes;

use super::{container, help, node, text, NodeCommand, Run};
use crate::resp::Reply;
use crate::server::conn::Session;
use crate::server::sentinel::Picture;

/// Flags of every SENTINEL subcommand: answered by any node, at any time.
const FLAGS: &[&str] = &["admin", "noscript", "loading", "stale"];
const ACL: &[&str] = &["@admin", "@slow", "@dangerous"];

macro_rules! sub {
    ($name:literal, $arity:expr, $run:expr, $summary:literal) => {
        node!($name, $arity, FLAGS, 0, 0, 0, ACL, "sentinel", "2.8.4", Run::Sync($run), $summary)
    };
}

const SENTINEL_SUBS: &[NodeCommand] = &[
    sub!("sentinel|ckquorum", 3, ckquorum, "Checks for a Redis Sentinel quorum"),
    sub!("sentinel|config", -3, refused, "Configures Redis Sentinel"),
    sub!("sentinel|debug", -2, refused, "Lists or updates the current configurable parameters of Redis Sentinel"),
    sub!("sentinel|failover", 3, refused, "Forces a Redis Sentinel failover"),
    sub!("sentinel|flushconfig", 2, refused, "Rewrites the Redis Sentinel configuration file"),
    sub!(
        "sentinel|get-master-addr-by-name",
        3,
        get_master_addr,
        "Returns the port and address of a master Redis instance"
    ),
    sub!("sentinel|help", 2, sentinel_help, "Returns helpful text about the different subcommands"),
    sub!("sentinel|info-cache", -3, info_cache, "Returns the cached INFO replies from the deployment's instances"),
    sub!("sentinel|is-master-down-by-addr", 6, refused, "Determines whether a master Redis instance is down"),
    sub!("sentinel|master", 3, master, "Returns the state of a master Redis instance"),
    sub!("sentinel|masters", 2, masters, "Returns a list of monitored Redis masters"),
    sub!("sentinel|monitor", 6, refused, "Starts monitoring"),
    sub!("sentinel|myid", 2, myid, "Returns the Redis Sentinel instance ID"),
    sub!(
        "sentinel|pending-scripts",
        2,
        pending_scripts,
        "Returns information about pending scripts for Redis Sentinel"
    ),
    sub!("sentinel|remove", 3, refused, "Stops monitoring"),
    sub!("sentinel|replicas", 3, replicas, "Returns a list of the monitored Redis replicas"),
    sub!("sentinel|reset", 3, refused, "Resets Redis masters by name matching a pattern"),
    sub!("sentinel|sentinels", 3, sentinels, "Returns a list of Sentinel instances"),
    sub!("sentinel|set", -5, refused, "Changes the configuration of a monitored Redis master"),
    sub!("sentinel|simulate-failure", -3, refused, "Simulates failover scenarios"),
    sub!("sentinel|slaves", 3, replicas, "Returns a list of the monitored replicas"),
];

pub const COMMANDS: &[NodeCommand] = &[node!(
    "sentinel",
    -2,
    FLAGS,
    0,
    0,
    0,
    ACL,
    "sentinel",
    "2.8.4",
    Run::Sync(container),
    "A container for Redis Sentinel commands",
    SENTINEL_SUBS
)];

/// The picture, if `name` is the master this node answers for; else Redis's error.
fn named<'a>(s: &'a Session, name: &[u8]) -> Result<Picture<'a>, Reply> {
    let picture = Picture::of(&s.shared);
    if picture.names(name) {
        Ok(picture)
    } else {
        Err(Reply::err("ERR No such master with that name"))
    }
}

fn masters(s: &mut Session, _: &[Bytes]) -> Reply {
    Reply::Array(vec![Picture::of(&s.shared).master_state()])
}

fn master(s: &mut Session, args: &[Bytes]) -> Reply {
    named(s, &args[2]).map_or_else(|e| e, |p| p.master_state())
}

fn replicas(s: &mut Session, args: &[Bytes]) -> Reply {
    named(s, &args[2]).map_or_else(|e| e, |p| p.replicas_state())
}

fn sentinels(s: &mut Session, args: &[Bytes]) -> Reply {
    named(s, &args[2]).map_or_else(|e| e, |p| p.sentinels_state())
}

fn ckquorum(s: &mut Session, args: &[Bytes]) -> Reply {
    named(s, &args[2]).map_or_else(|e| e, |p| p.ckquorum())
}

fn get_master_addr(s: &mut Session, args: &[Bytes]) -> Reply {
    let picture = Picture::of(&s.shared);
    if picture.names(&args[2]) {
        picture.master_addr()
    } else {
        Reply::NilArray
    }
}

fn myid(s: &mut Session, _: &[Bytes]) -> Reply {
    Reply::bulk(crate::cluster::node_name(s.shared.backend.id()))
}

fn pending_scripts(_: &mut Session, _: &[Bytes]) -> Reply {
    Reply::Array(Vec::new())
}

/// INFO-CACHE: a sentinel's last INFO of the master and of each replica. A raftis node holds
/// only its own, fresh (age 0); the other instances' entries are nil.
fn info_cache(s: &mut Session, args: &[Bytes]) -> Reply {
    let picture = Picture::of(&s.shared);
    if !args[2..].iter().any(|name| picture.names(name)) {
        return Reply::Array(Vec::new());
    }
    let me = s.shared.backend.id();
    let own = || Reply::Array(vec![Reply::Int(0), Reply::bulk(super::server::info_text(s, &[]))]);
    let other = || Reply::Array(vec![Reply::Int(0), Reply::Nil]);
    let mut entries = vec![if picture.is_master(me) { own() } else { other() }];
    for id in picture.view.nodes.iter().map(|n| n.id).filter(|&id| !picture.is_master(id)) {
        entries.push(if id == me { own() } else { other() });
    }
    Reply::Array(vec![Reply::bulk(picture.name), Reply::Array(entries)])
}

fn refused(_: &mut Session, args: &[Bytes]) -> Reply {
    Reply::err(format!(
        "ERR SENTINEL {} is not supported: raftis elects its leader with Raft, and its configuration comes from \
         the command line",
        text(&args[1]).to_uppercase()
    ))
}

fn sentinel_help(_: &mut Session, _: &[Bytes]) -> Reply {
    help(&[
        "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CKQUORUM <master-name>",
        "    Check if the current Sentinel configuration is able to reach the quorum",
        "    needed to failover a master and the majority needed to authorize the",
        "    failover.",
        "GET-MASTER-ADDR-BY-NAME <master-name>",
        "    Return the ip and port number of the master with that name.",
        "INFO-CACHE <master-name>",
        "    Return last cached INFO output from masters and all its replicas.",
        "MASTER <master-name>",
        "    Show the state and info of the specified master.",
        "MASTERS",
        "    Show a list of monitored masters and their state.",
        "MYID",
        "    Return the ID of the Sentinel instance.",
        "PENDING-SCRIPTS",
        "    Get pending scripts information.",
        "REPLICAS <master-name>",
        "    Show a list of replicas for this master and their state.",
        "SENTINELS <master-name>",
        "    Show a list of Sentinel instances for this master and their state.",
        "HELP",
        "    Print this help.",
    ])
}
