//! Redis Sentinel's view of a raftis cluster: every node answers the SENTINEL commands for one
//! monitored "master" (the Raft leader, under `--sentinel-name`) with the followers as its
//! replicas and the other nodes as the other sentinels. A plain (non-cluster) client that
//! supports Sentinel (redis-py's `Sentinel`, kombu's `sentinel://`, Jedis, ioredis...) finds the
//! leader this way and asks again after a failover.
//!
//! Each node is its own sentinel: it watches which leader it follows and, when that changes,
//! publishes `+switch-master <name> <old-ip> <old-port> <new-ip> <new-port>` to its own
//! subscribers, as a Redis sentinel does on its pub/sub. The message is local (not through the
//! log): a client subscribes to one sentinel and hears that sentinel's view.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;
use tracing::info;

use super::Shared;
use crate::base::NodeId;
use crate::cluster::{node_name, split_addr, ClusterView, NodeView};
use crate::resp::Reply;
use crate::sm::Message;

/// How often a node looks at which leader it follows.
const WATCH_PERIOD: Duration = Duration::from_millis(50);

/// The channel failovers are announced on.
pub const SWITCH_MASTER: &str = "+switch-master";

/// What this node's sentinel remembers between looks.
#[derive(Debug)]
pub struct Sentinel {
    seen: Mutex<Seen>,
}

#[derive(Debug, Clone)]
struct Seen {
    /// The last leader known, and its client address: the master a sentinel keeps reporting
    /// (flagged down) while an election runs.
    leader: Option<(NodeId, String)>,
    /// When the current leader was first seen.
    since: Instant,
    /// Since when no leader is known.
    down_since: Option<Instant>,
}

impl Default for Sentinel {
    fn default() -> Self {
        Sentinel { seen: Mutex::new(Seen { leader: None, since: Instant::now(), down_since: Some(Instant::now()) }) }
    }
}

impl Sentinel {
    fn seen(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the leader `view` shows; returns the `+switch-master` payload when it replaced
    /// another known leader.
    fn observe(&self, view: &ClusterView, name: &str) -> Option<String> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let current = view.leader.zip(view.leader_addr().map(str::to_string));
        let Some((id, addr)) = current else {
            seen.down_since.get_or_insert_with(Instant::now);
            return None;
        };
        seen.down_since = None;
        if seen.leader.as_ref().is_some_and(|(known, a)| *known == id && *a == addr) {
            return None;
        }
        let previous = seen.leader.replace((id, addr.clone()));
        seen.since = Instant::now();
        let (old, _) = previous?;
        let old_addr = view.nodes.iter().find(|n| n.id == old).map_or_else(|| addr.clone(), |n| n.addr.clone());
        let ((oh, op), (nh, np)) = (split_addr(&old_addr), split_addr(&addr));
        Some(format!("{name} {oh} {op} {nh} {np}"))
    }
}

/// Watches the leader this node follows and announces each change on `+switch-master`.
pub async fn watch_leader(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(WATCH_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        look(&shared);
    }
}

/// The cluster as this node sees it now, after recording its leader (and announcing a switch).
fn look(shared: &Shared) -> ClusterView {
    let view = shared.backend.view();
    if let Some(payload) = shared.sentinel.observe(&view, &shared.config.sentinel_name) {
        info!(%payload, "sentinel: +switch-master");
        shared.pubsub.deliver(vec![Message {
            channel: Bytes::from_static(SWITCH_MASTER.as_bytes()),
            payload: Bytes::from(payload),
            shard: false,
        }]);
    }
    view
}

fn ms(d: Duration) -> Reply {
    Reply::bulk(d.as_millis().to_string())
}

fn num(n: impl ToString) -> Reply {
    Reply::bulk(n.to_string())
}

/// What the SENTINEL replies are built from: the node's view of the cluster and its memory.
pub struct Picture<'a> {
    pub view: ClusterView,
    pub name: &'a str,
    pub down_after: Duration,
    seen: Seen,
    now: Instant,
}

impl<'a> Picture<'a> {
    /// The picture of `shared` now.
    pub fn of(shared: &'a Shared) -> Picture<'a> {
        // Look first, so the replies never lag behind the view they are built from.
        let view = look(shared);
        Picture {
            view,
            name: &shared.config.sentinel_name,
            down_after: shared.config.election_timeout,
            seen: shared.sentinel.seen(),
            now: Instant::now(),
        }
    }

    /// Whether `name` is the monitored master's name.
    pub fn names(&self, name: &[u8]) -> bool {
        name == self.name.as_bytes()
    }

    /// The master's id and address: the current leader, else the last one known, else (never
    /// any leader yet) this node, flagged down.
    fn master(&self) -> (NodeId, String) {
        match (&self.view.leader, self.view.leader_addr()) {
            (Some(id), Some(addr)) => (*id, addr.to_string()),
            _ => self.seen.leader.clone().unwrap_or_else(|| {
                let me = self.view.nodes.iter().find(|n| n.id == self.view.my_id);
                (self.view.my_id, me.map_or_else(String::new, |n| n.addr.clone()))
            }),
        }
    }

    fn master_down(&self) -> Option<Duration> {
        match self.view.leader {
            Some(_) => None,
            None => Some(self.seen.down_since.map_or(Duration::ZERO, |t| self.now - t)),
        }
    }

    /// A quorum of the nodes: Sentinel's `quorum`, and what a failover needs.
    fn quorum(&self) -> usize {
        self.view.nodes.len() / 2 + 1
    }

    /// Nodes other than the master.
    fn replicas(&self) -> impl Iterator<Item = &NodeView> {
        let (master, _) = self.master();
        self.view.nodes.iter().filter(move |n| n.id != master)
    }

    /// The fields every instance starts with (Redis 7.0's `addReplySentinelRedisInstance`).
    fn common(
        &self,
        name: String,
        addr: &str,
        id: NodeId,
        flags: &[&str],
        down: Option<Duration>,
    ) -> Vec<(Reply, Reply)> {
        let (host, port) = split_addr(addr);
        let mut fields = vec![
            (Reply::bulk("name"), Reply::bulk(name)),
            (Reply::bulk("ip"), Reply::bulk(host)),
            (Reply::bulk("port"), num(port)),
            (Reply::bulk("runid"), Reply::bulk(node_name(id))),
            (Reply::bulk("flags"), Reply::bulk(flags.join(","))),
            (Reply::bulk("link-pending-commands"), num(0)),
            (Reply::bulk("link-refcount"), num(1)),
            (Reply::bulk("last-ping-sent"), num(0)),
        ];
        let last_reply = match down {
            Some(d) => ms(d),
            None => num(0),
        };
        fields.push((Reply::bulk("last-ok-ping-reply"), last_reply.clone()));
        fields.push((Reply::bulk("last-ping-reply"), last_reply));
        if let Some(d) = down {
            fields.push((Reply::bulk("s-down-time"), ms(d)));
        }
        fields.push((Reply::bulk("down-after-milliseconds"), ms(self.down_after)));
        fields
    }

    /// The master's state (SENTINEL MASTER, and the one entry of SENTINEL MASTERS).
    pub fn master_state(&self) -> Reply {
        let (id, addr) = self.master();
        let down = self.master_down();
        // A down master is also objectively down: the nodes agree on it through Raft.
        let flags: &[&str] = if down.is_some() { &["s_down", "o_down", "master"] } else { &["master"] };
        let mut fields = self.common(self.name.to_string(), &addr, id, flags, down);
        if let Some(d) = down {
            let at = fields.iter().position(|(k, _)| *k == Reply::bulk("down-after-milliseconds")).unwrap_or(0);
            fields.insert(at, (Reply::bulk("o-down-time"), ms(d)));
        }
        let others = self.view.nodes.iter().filter(|n| n.id != self.view.my_id).count();
        fields.extend([
            (Reply::bulk("info-refresh"), num(0)),
            (Reply::bulk("role-reported"), Reply::bulk("master")),
            (Reply::bulk("role-reported-time"), ms(self.now - self.seen.since)),
            (Reply::bulk("config-epoch"), num(self.view.term)),
            (Reply::bulk("num-slaves"), num(self.replicas().count())),
            (Reply::bulk("num-other-sentinels"), num(others)),
            (Reply::bulk("quorum"), num(self.quorum())),
            (Reply::bulk("failover-timeout"), ms(self.down_after * 2)),
            (Reply::bulk("parallel-syncs"), num(1)),
        ]);
        Reply::Map(fields)
    }

    /// SENTINEL REPLICAS: every node but the master.
    pub fn replicas_state(&self) -> Reply {
        let (_, master_addr) = self.master();
        let (mh, mp) = split_addr(&master_addr);
        let master_up = self.view.leader.is_some();
        Reply::Array(
            self.replicas()
                .map(|n| {
                    let flags: &[&str] = if n.connected { &["slave"] } else { &["s_down", "slave"] };
                    let down = (!n.connected).then(|| Duration::from_millis(n.last_ack_ms.unwrap_or(0)));
                    let mut fields = self.common(n.addr.clone(), &n.addr, n.id, flags, down);
                    fields.extend([
                        (Reply::bulk("info-refresh"), num(0)),
                        (Reply::bulk("role-reported"), Reply::bulk("slave")),
                        (Reply::bulk("role-reported-time"), ms(self.now - self.seen.since)),
                        (Reply::bulk("master-link-down-time"), num(0)),
                        (Reply::bulk("master-link-status"), Reply::bulk(if master_up { "ok" } else { "err" })),
                        (Reply::bulk("master-host"), Reply::bulk(mh)),
                        (Reply::bulk("master-port"), num(mp)),
                        (Reply::bulk("slave-priority"), num(100)),
                        (Reply::bulk("slave-repl-offset"), num(n.offset)),
                        (Reply::bulk("replica-announced"), num(1)),
                    ]);
                    Reply::Map(fields)
                })
                .collect(),
        )
    }

    /// SENTINEL SENTINELS: every other node (each one is a sentinel too).
    pub fn sentinels_state(&self) -> Reply {
        Reply::Array(
            self.view
                .nodes
                .iter()
                .filter(|n| n.id != self.view.my_id)
                .map(|n| {
                    let flags: &[&str] = if n.connected { &["sentinel"] } else { &["s_down", "sentinel"] };
                    let down = (!n.connected).then(|| Duration::from_millis(n.last_ack_ms.unwrap_or(0)));
                    let mut fields = self.common(node_name(n.id), &n.addr, n.id, flags, down);
                    fields.extend([
                        (Reply::bulk("last-hello-message"), num(n.last_ack_ms.unwrap_or(0))),
                        (Reply::bulk("voted-leader"), Reply::bulk("?")),
                        (Reply::bulk("voted-leader-epoch"), num(0)),
                    ]);
                    Reply::Map(fields)
                })
                .collect(),
        )
    }

    /// SENTINEL GET-MASTER-ADDR-BY-NAME.
    pub fn master_addr(&self) -> Reply {
        let (_, addr) = self.master();
        let (host, port) = split_addr(&addr);
        Reply::Array(vec![Reply::bulk(host), num(port)])
    }

    /// SENTINEL CKQUORUM: the nodes this one believes reachable (itself included) against the
    /// majority a Raft election needs.
    pub fn ckquorum(&self) -> Reply {
        let usable =
            if self.view.leader.is_some() { self.view.nodes.iter().filter(|n| n.connected).count() } else { 1 };
        if usable >= self.quorum() {
            Reply::status(format!("OK {usable} usable Sentinels. Quorum and failover authorization can be reached"))
        } else {
            Reply::err(format!(
                "NOQUORUM {usable} usable Sentinels. Not enough available Sentinels to reach the specified quorum \
                 for this master. Not enough available Sentinels to reach the majority and authorize a failover"
            ))
        }
    }

    /// Whether this node is the master (its own INFO is the master's cached INFO).
    pub fn is_master(&self, id: NodeId) -> bool {
        self.master().0 == id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Role;

    fn view(leader: Option<NodeId>) -> ClusterView {
        let node = |id: NodeId| NodeView {
            id,
            addr: format!("10.0.0.{id}:700{id}"),
            bus_port: 0,
            offset: 10,
            connected: true,
            last_ack_ms: Some(5),
            voter: true,
        };
        ClusterView {
            my_id: 2,
            role: if leader == Some(2) { Role::Leader } else { Role::Follower },
            leader,
            term: 3,
            commit_index: 10,
            applied_index: 10,
            last_log_index: 10,
            snapshot_index: 0,
            nodes: vec![node(1), node(2), node(3)],
            catchup: crate::raft::catchup::CatchupView {
                state: crate::raft::catchup::CatchupState::CaughtUp,
                leader_commit: 10,
                entries_behind: 0,
                secs_since_caught_up: Some(0),
            },
            standing: "voter",
            joint: false,
        }
    }

    #[test]
    fn a_new_leader_is_announced_once_and_an_election_is_not() {
        let s = Sentinel::default();
        assert_eq!(s.observe(&view(Some(1)), "raftis"), None, "the first leader replaces nothing");
        assert_eq!(s.observe(&view(Some(1)), "raftis"), None);
        assert_eq!(s.observe(&view(None), "raftis"), None);
        assert!(s.seen().down_since.is_some());
        assert_eq!(s.observe(&view(Some(3)), "raftis").as_deref(), Some("raftis 10.0.0.1 7001 10.0.0.3 7003"));
        assert_eq!(s.observe(&view(Some(3)), "raftis"), None);
        assert!(s.seen().down_since.is_none());
    }
}
