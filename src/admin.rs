//! Talking to a running cluster from outside its Raft group, over RESP: a new node asking to
//! join (`--join`), a joined learner asking to be promoted once caught up, and the operator's
//! `raftis cluster add|remove|promote|members`. All of it is `RAFT.NODE` on some node, which
//! forwards it to the leader.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use tracing::{debug, info, warn};

use crate::base::NodeId;
use crate::config::NodeConfig;
use crate::raft::membership::{Membership, Standing};
use crate::raft::node::{write_identity, Identity};
use crate::resp::Reply;
use crate::server::forward::Forwarder;
use crate::server::Backend;

/// How long a joining node keeps asking (the cluster may be electing, or still starting).
const JOIN_PATIENCE: Duration = Duration::from_secs(60);

/// How long one RAFT.NODE call may take (a membership change commits within its own timeout).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends one command to `addr` and returns its reply.
pub async fn call(addr: &str, args: &[&str]) -> anyhow::Result<Reply> {
    let forwarder = Forwarder::admin();
    let command: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    let mut replies = forwarder.call_many(addr, &[command], CALL_TIMEOUT).await?;
    Ok(replies.pop().unwrap_or(Reply::Nil))
}

/// Whether an error reply says to try again later (no leader yet, a leader change, a change in
/// progress) rather than that the request is wrong.
fn transient(error: &str) -> bool {
    error.starts_with("TRYAGAIN") || error.starts_with("CLUSTERDOWN") || error.starts_with("LOADING")
}

/// Asks the cluster at `cfg.join` to add this node as a learner, then records the identity the
/// cluster gave (its node id, the cluster id) in the new data directory.
pub async fn join(cfg: &mut NodeConfig) -> anyhow::Result<()> {
    let through = cfg.join.clone().context("no --join address")?;
    let me = cfg.peers.first().context("no address for this node")?.clone();
    let (id, bus) = (cfg.id.to_string(), me.bus_addr());
    let args = ["RAFT.NODE", "ADD", &id, &me.client_addr(), &bus];
    let deadline = tokio::time::Instant::now() + JOIN_PATIENCE;
    info!(through = %through, client = %me.client_addr(), bus = %bus, "asking to join the cluster");
    let (id, cluster, at) = loop {
        let outcome = match call(&through, &args).await {
            Ok(Reply::Array(v)) => match v.as_slice() {
                [Reply::Int(id), Reply::Bulk(cluster), Reply::Int(at)] if *id > 0 && !cluster.is_empty() => {
                    break (*id as NodeId, String::from_utf8_lossy(cluster).into_owned(), *at as u64)
                }
                _ => bail!("{through} answered RAFT.NODE ADD with {v:?}"),
            },
            Ok(Reply::Error(e)) if transient(&e) => e,
            Ok(Reply::Error(e)) => bail!("{through} refused to add this node: {e}"),
            Ok(other) => bail!("{through} answered RAFT.NODE ADD with {other:?}"),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("could not join the cluster through {through} within {} s: {outcome}", JOIN_PATIENCE.as_secs());
        }
        debug!(reason = %outcome, "joining: trying again");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    write_identity(&cfg.dir, &Identity { node_id: id, cluster_id: cluster.clone(), joined: true, joined_at: at })?;
    for p in cfg.peers.iter_mut() {
        p.id = id;
    }
    cfg.id = id;
    cfg.cluster_id = cluster;
    cfg.joined = true;
    cfg.joined_at = at;
    info!(node = id, cluster = %cfg.cluster_id, "added to the cluster as a learner");
    Ok(())
}

/// How often a node that may have been removed without being told asks the leader.
const REMOVAL_CHECK: Duration = Duration::from_secs(2);

/// Looks after this node's membership from outside Raft, until it is removed:
/// - a joined node that is to be a voter (`promote`), once a learner, asks the leader to promote
///   it (the leader agrees once it is within `--promote-lag` entries of the log), until it has been
///   a voter (a voter later demoted on its way out is not promoted again);
/// - a learner, or a voter that hears from no leader, asks the leader's RAFT.NODE LIST every
///   couple of seconds whether it is still a member: openraft never sends a dropped node the
///   configuration without it, so that is how it learns it was removed (and stops campaigning).
pub async fn look_after_membership(backend: Arc<Backend>, membership: Arc<Membership>, me: NodeId, promote: bool) {
    let forwarder = Forwarder::admin();
    let mut been_voter = false;
    let mut last_said = tokio::time::Instant::now();
    let mut last_check = tokio::time::Instant::now();
    let mut leaderless_since: Option<tokio::time::Instant> = None;
    let promote_cmd =
        vec![Bytes::from_static(b"RAFT.NODE"), Bytes::from_static(b"PROMOTE"), Bytes::from(me.to_string())];
    let list_cmd = vec![Bytes::from_static(b"RAFT.NODE"), Bytes::from_static(b"LIST")];
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let standing = membership.standing();
        let leader = backend.leader().filter(|&l| l != me);
        leaderless_since = match (leader, backend.leader()) {
            (None, None) => leaderless_since.or(Some(tokio::time::Instant::now())),
            _ => None,
        };
        let check_removal = match standing {
            Standing::Removed => return,
            Standing::Joining => continue,
            Standing::Learner => true,
            Standing::Voter => {
                been_voter = true;
                leaderless_since.is_some_and(|t| t.elapsed() >= REMOVAL_CHECK)
            }
        };
        if check_removal && last_check.elapsed() >= REMOVAL_CHECK {
            last_check = tokio::time::Instant::now();
            // Ask the leader, then (it may be stale) every other member: a member forwards LIST to
            // its leader, and only the leader's own answer names a leader, the one trusted.
            let mut asked: Vec<String> = leader.and_then(|l| backend.member_addr(l)).into_iter().collect();
            asked.extend(membership.members().into_iter().filter(|m| m.id != me).map(|m| m.addr.client));
            for addr in asked {
                let Ok(replies) = forwarder.call_many(&addr, std::slice::from_ref(&list_cmd), CALL_TIMEOUT).await
                else {
                    continue;
                };
                if let Some(Reply::Array(members)) = replies.first() {
                    if let Some(listed) = listed_with_a_leader(members) {
                        if !listed.contains(&me) {
                            membership.mark_removed();
                            return;
                        }
                        break;
                    }
                }
            }
        }
        if !promote || been_voter || standing != Standing::Learner {
            continue;
        }
        let Some(addr) = leader.and_then(|l| backend.member_addr(l)) else {
            continue;
        };
        let said = match forwarder.call_many(&addr, std::slice::from_ref(&promote_cmd), CALL_TIMEOUT).await {
            Ok(replies) => match replies.first() {
                Some(Reply::Ok) => {
                    info!("promoted to voter");
                    continue;
                }
                Some(Reply::Error(e)) if e.contains("already a voter") => continue,
                Some(other) => format!("{other:?}"),
                None => continue,
            },
            Err(e) => e.to_string(),
        };
        if last_said.elapsed() >= Duration::from_secs(5) {
            info!(answer = %said, "waiting to be promoted to voter");
            last_said = tokio::time::Instant::now();
        }
    }
}

/// The ids a RAFT.NODE LIST reply (RESP2: each member a flat field/value array) names, if one of
/// them is the leader (an answer from a node without a leader is only that node's view).
pub fn listed_with_a_leader(members: &[Reply]) -> Option<Vec<NodeId>> {
    let mut ids = Vec::new();
    let mut leader = false;
    for m in members {
        let Reply::Array(fields) = m else { return None };
        for pair in fields.chunks(2) {
            match pair {
                [Reply::Bulk(k), Reply::Int(id)] if k.as_ref() == b"id" => ids.push(*id as NodeId),
                [Reply::Bulk(k), Reply::Bulk(v)] if k.as_ref() == b"role" && v.as_ref() == b"leader" => leader = true,
                _ => {}
            }
        }
    }
    leader.then_some(ids)
}

/// `raftis cluster ...`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Any node of the cluster (its client address).
    #[arg(long, env = "RAFTIS_ADDR", default_value = "127.0.0.1:6379", global = true)]
    pub addr: String,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Lists the members: id, client and bus addresses, role, match index.
    Members,
    /// Adds a node as a learner (then start it with --join, or promote it once caught up).
    Add {
        /// The new node's client address, as the other nodes reach it.
        node: String,
        /// Its id (default: the cluster picks one).
        #[arg(long, default_value_t = 0)]
        id: NodeId,
        /// Its bus address (default: client port + 10000).
        #[arg(long)]
        bus: Option<String>,
    },
    /// Makes a caught-up learner a voter.
    Promote { id: NodeId },
    /// Removes nodes, several in one change (voters are demoted first; a leader removed steps down
    /// once the change commits and the others elect a new one, about a second without writes).
    Remove {
        /// The ids of the nodes to remove.
        #[arg(required = true)]
        ids: Vec<NodeId>,
    },
}

/// One field of a member in a RAFT.NODE LIST reply, as text (`-` for a negative number, empty
/// when absent).
pub fn member_field(member: &Reply, name: &str) -> String {
    match member {
        Reply::Array(kv) => kv
            .chunks(2)
            .find(|p| matches!(&p[0], Reply::Bulk(k) if k.as_ref() == name.as_bytes()))
            .map(|p| match &p[1] {
                Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                Reply::Int(n) if *n >= 0 => n.to_string(),
                Reply::Int(_) => "-".into(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Runs `raftis cluster ...`, printing what the cluster answered.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let addr = &args.addr;
    let reply = match &args.command {
        ClusterCommand::Members => call(addr, &["RAFT.NODE", "LIST"]).await?,
        ClusterCommand::Add { node, id, bus } => {
            let id = id.to_string();
            let mut v = vec!["RAFT.NODE", "ADD", &id, node];
            if let Some(bus) = bus {
                v.push(bus);
            }
            call(addr, &v).await?
        }
        ClusterCommand::Promote { id } => call(addr, &["RAFT.NODE", "PROMOTE", &id.to_string()]).await?,
        ClusterCommand::Remove { ids } => {
            let mut v = vec!["RAFT.NODE".to_string(), "REMOVE".to_string()];
            v.extend(ids.iter().map(|id| id.to_string()));
            call(addr, &v.iter().map(String::as_str).collect::<Vec<_>>()).await?
        }
    };
    match (&args.command, reply) {
        (_, Reply::Error(e)) => bail!("{addr}: {e}"),
        (ClusterCommand::Members, Reply::Array(members)) => {
            println!("ID     ADDR                     BUS                      ROLE     MATCH");
            for m in members {
                let field = |name: &str| member_field(&m, name);
                println!(
                    "{:<6} {:<24} {:<24} {:<8} {}",
                    field("id"),
                    field("addr"),
                    field("bus"),
                    field("role"),
                    field("match_index")
                );
            }
        }
        (ClusterCommand::Add { .. }, Reply::Array(v)) => match v.as_slice() {
            [Reply::Int(id), Reply::Bulk(cluster), _] => {
                println!("added node {id} as a learner of cluster {}", String::from_utf8_lossy(cluster))
            }
            other => bail!("unexpected reply {other:?}"),
        },
        (_, Reply::Ok) => println!("OK"),
        (_, other) => {
            warn!(reply = ?other, "unexpected reply");
            bail!("unexpected reply from {addr}: {other:?}")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: i64, role: &str) -> Reply {
        Reply::Array(vec![Reply::bulk("id"), Reply::Int(id), Reply::bulk("role"), Reply::bulk(role)])
    }

    #[test]
    fn only_a_list_naming_a_leader_is_trusted() {
        assert_eq!(listed_with_a_leader(&[member(1, "leader"), member(3, "voter")]), Some(vec![1, 3]));
        assert_eq!(listed_with_a_leader(&[member(1, "voter"), member(3, "learner")]), None);
        assert_eq!(listed_with_a_leader(&[Reply::Int(1)]), None);
    }

    #[test]
    fn transient_errors_are_retried() {
        assert!(transient("TRYAGAIN this node is not the leader") && transient("CLUSTERDOWN The cluster is down"));
        assert!(!transient("ERR node 1 is already a member, at h:1; remove it first"));
    }
}
