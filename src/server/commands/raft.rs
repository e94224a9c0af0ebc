//! RAFT.NODE: the cluster's membership, changed and listed over RESP on any node (after
//! RedisRaft's command of the same name, with etcd's `member` verbs). A follower forwards the
//! command to the leader, which alone changes the membership.
//!
//! - `RAFT.NODE ADD <id> <host:port> [<host:busport>]`: adds a learner (`id` 0: the cluster picks
//!   one); replies `[id, cluster-id, index]` (the index of the membership that adds it), what a
//!   joining node needs to start.
//! - `RAFT.NODE PROMOTE <id>`: a learner that is caught up becomes a voter.
//! - `RAFT.NODE REMOVE <id> [<id> ...]`: voters are demoted, then removed; learners are removed;
//!   several ids change the voters in one (joint) change.
//! - `RAFT.NODE LIST`: every member with its addresses, role and match index.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;

use super::{container, help, node, text, NodeCommand, ReplyFuture, Run};
use crate::base::NodeId;
use crate::cluster;
use std::sync::Arc;

use crate::raft::membership::{Member, Membership, MembershipError};
use crate::raft::types::NodeAddr;
use crate::resp::Reply;
use crate::server::conn::Session;
use crate::server::proxy;

const ACL: &[&str] = &["@admin", "@slow", "@dangerous"];
const FLAGS: &[&str] = &["admin", "noscript", "loading", "stale"];

#[rustfmt::skip]
const NODE_SUBS: &[NodeCommand] = &[
    node!("raft.node|add", -4, FLAGS, 0, 0, 0, ACL, "cluster", "7.0.0", Run::Async(add), "Adds a node to the cluster as a learner"),
    node!("raft.node|help", 2, &["loading", "stale"], 0, 0, 0, &["@slow"], "cluster", "7.0.0", Run::Sync(node_help), "Returns helpful text about the different subcommands"),
    node!("raft.node|list", 2, FLAGS, 0, 0, 0, ACL, "cluster", "7.0.0", Run::Async(list), "Lists the cluster's members, their roles and match indexes"),
    node!("raft.node|promote", 3, FLAGS, 0, 0, 0, ACL, "cluster", "7.0.0", Run::Async(promote), "Makes a caught-up learner a voter"),
    node!("raft.node|remove", -3, FLAGS, 0, 0, 0, ACL, "cluster", "7.0.0", Run::Async(remove), "Removes nodes from the cluster, in one change"),
];

/// The commands of this family, sorted by name.
#[rustfmt::skip]
pub(super) const COMMANDS: &[NodeCommand] = &[
    node!("raft.node", -2, &[], 0, 0, 0, &["@slow"], "cluster", "7.0.0", Run::Sync(container), "A container for Raft membership commands", NODE_SUBS),
];

fn node_help(_: &mut Session, _: &[Bytes]) -> Reply {
    help(&[
        "RAFT.NODE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ADD <id> <host:port> [<host:busport>]",
        "    Add a node as a learner (id 0: the cluster assigns one). Replies [id, cluster-id, index].",
        "PROMOTE <id>",
        "    Make a learner that is caught up a voter.",
        "REMOVE <id> [<id> ...]",
        "    Remove nodes, in one change (voters are demoted to learners first; the leader steps down).",
        "LIST",
        "    List the members: id, addr, bus, role, match_index.",
        "HELP",
        "    Print this help.",
    ])
}

/// How long a command waits for a leader to appear (after an election or the leader's own
/// removal) before answering CLUSTERDOWN.
const LEADER_WAIT: Duration = Duration::from_secs(3);

/// Runs the command on the leader: here if this node leads, else forwarded to it (once: a
/// forwarded command that finds no leader here answers TRYAGAIN).
async fn on_leader(s: &mut Session, args: &[Bytes]) -> Option<Reply> {
    let shared = s.shared.clone();
    let deadline = tokio::time::Instant::now() + LEADER_WAIT;
    loop {
        let view = shared.backend.view();
        if view.role == cluster::Role::Leader {
            return None;
        }
        if s.forwarder {
            return Some(Reply::err("TRYAGAIN this node is not the leader any more; try again"));
        }
        if let Some((_, addr)) = proxy::known_leader(&shared) {
            let timeout = shared.config.commit_timeout * 3;
            return Some(match shared.forwarder.call_many(&addr, &[args.to_vec()], timeout).await {
                Ok(mut replies) => replies.pop().unwrap_or(Reply::Nil),
                Err(e) => Reply::err(format!("TRYAGAIN {e}")),
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Some(cluster::cluster_down());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn error(e: MembershipError) -> Reply {
    match e {
        MembershipError::NotLeader | MembershipError::InProgress => Reply::err(format!("TRYAGAIN {e}")),
        _ => Reply::err(format!("ERR {e}")),
    }
}

fn node_id(arg: &[u8]) -> Result<NodeId, Reply> {
    std::str::from_utf8(arg).ok().and_then(|s| s.parse().ok()).ok_or_else(|| Reply::err("ERR invalid node id"))
}

/// `host:port` with a non-empty host and a non-zero port.
fn address(arg: &[u8]) -> Result<(String, u16), Reply> {
    let s = text(arg);
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok((host.to_string(), p)),
            _ => Err(Reply::err(format!("ERR invalid address '{s}': bad port"))),
        },
        _ => Err(Reply::err(format!("ERR invalid address '{s}': expected host:port"))),
    }
}

fn add<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(async move {
        if args.len() > 5 {
            return Reply::err("ERR syntax error");
        }
        let parsed = (|| {
            let id = node_id(&args[2])?;
            let (host, port) = address(&args[3])?;
            let bus = match args.get(4) {
                Some(b) => {
                    let (bh, bp) = address(b)?;
                    format!("{bh}:{bp}")
                }
                None => match port.checked_add(crate::config::defaults::BUS_PORT_OFFSET) {
                    Some(bp) => format!("{host}:{bp}"),
                    None => return Err(Reply::err("ERR the port + 10000 overflows: give the bus address")),
                },
            };
            Ok((id, NodeAddr { client: format!("{host}:{port}"), bus }))
        })();
        let (id, addr) = match parsed {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let membership = match leader_membership(s, args).await {
            Ok(m) => m,
            Err(reply) => return reply,
        };
        match membership.add((id != 0).then_some(id), addr).await {
            Ok((id, at)) => Reply::Array(vec![
                Reply::Int(id as i64),
                Reply::bulk(s.shared.config.cluster_id.clone()),
                Reply::Int(at as i64),
            ]),
            Err(e) => error(e),
        }
    })
}

/// Runs on the leader (see [`on_leader`]): its membership changes, or the reply to send instead.
async fn leader_membership(s: &mut Session, args: &[Bytes]) -> Result<Arc<Membership>, Reply> {
    if let Some(reply) = on_leader(s, args).await {
        return Err(reply);
    }
    s.shared
        .backend
        .membership()
        .cloned()
        .ok_or_else(|| Reply::err("ERR membership changes are not available on this node"))
}

fn promote<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(async move {
        let id = match node_id(&args[2]) {
            Ok(id) => id,
            Err(reply) => return reply,
        };
        let done = match leader_membership(s, args).await {
            Ok(membership) => membership.promote(id).await,
            Err(reply) => return reply,
        };
        done.map_or_else(error, |()| Reply::Ok)
    })
}

fn remove<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(async move {
        let ids = match args[2..].iter().map(|a| node_id(a)).collect::<Result<BTreeSet<NodeId>, Reply>>() {
            Ok(ids) => ids,
            Err(reply) => return reply,
        };
        let done = match leader_membership(s, args).await {
            Ok(membership) => membership.remove(&ids).await,
            Err(reply) => return reply,
        };
        done.map_or_else(error, |()| Reply::Ok)
    })
}

fn list<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(async move {
        // The leader knows the match indexes; without one, this node answers what it holds.
        if s.shared.backend.view().role != cluster::Role::Leader && !s.forwarder {
            if let Some((_, addr)) = proxy::known_leader(&s.shared) {
                let timeout = s.shared.config.commit_timeout;
                if let Ok(mut replies) = s.shared.forwarder.call_many(&addr, &[args.to_vec()], timeout).await {
                    if let Some(reply @ Reply::Array(_)) = replies.pop() {
                        return reply;
                    }
                }
            }
        }
        let Some(membership) = s.shared.backend.membership().cloned() else {
            return Reply::Array(Vec::new());
        };
        // Only the leader names a leader: a member's own view may be stale.
        let view = s.shared.backend.view();
        let leader = (view.role == cluster::Role::Leader).then_some(view.my_id);
        Reply::Array(membership.members().iter().map(|m| member(m, leader)).collect())
    })
}

/// One member of RAFT.NODE LIST.
fn member(m: &Member, leader: Option<NodeId>) -> Reply {
    let role = if Some(m.id) == leader {
        "leader"
    } else if m.voter {
        "voter"
    } else {
        "learner"
    };
    Reply::Map(vec![
        (Reply::bulk("id"), Reply::Int(m.id as i64)),
        (Reply::bulk("addr"), Reply::bulk(m.addr.client.clone())),
        (Reply::bulk("bus"), Reply::bulk(m.addr.bus.clone())),
        (Reply::bulk("role"), Reply::bulk(role)),
        (Reply::bulk("match_index"), Reply::Int(m.matched.map_or(-1, |i| i as i64))),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert_eq!(address(b"10.0.0.4:7004").unwrap(), ("10.0.0.4".to_string(), 7004));
        for bad in [&b"nohost"[..], b":7004", b"h:0", b"h:x", b"h:70000"] {
            assert!(address(bad).is_err(), "{bad:?}");
        }
        assert!(node_id(b"-1").is_err() && node_id(b"4").unwrap() == 4);
    }

    #[test]
    fn leader_is_listed_as_such() {
        let m =
            Member { id: 2, addr: NodeAddr { client: "h:1".into(), bus: "h:2".into() }, voter: true, matched: None };
        let Reply::Map(fields) = member(&m, Some(2)) else { panic!() };
        assert!(fields.contains(&(Reply::bulk("role"), Reply::bulk("leader"))));
        assert!(fields.contains(&(Reply::bulk("match_index"), Reply::Int(-1))));
    }
}
