//! Redis Cluster's view of a raftis group: one shard holding all 16384 slots, served by the Raft
//! leader, with the followers as its replicas. Hash slots, MOVED redirects, and the CLUSTER,
//! ROLE and INFO replies that let cluster-aware clients route to the leader by themselves.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::RwLock;

use crate::base::NodeId;
use crate::resp::Reply;

/// Number of hash slots.
pub const SLOTS: u16 = 16384;

/// The hash slot of `key` (CRC16/XMODEM of the key or its hash tag, mod 16384).
pub fn key_slot(key: &[u8]) -> u16 {
    redis_protocol::redis_keyslot(key) % SLOTS
}

/// `-MOVED <slot> <host>:<port>`.
pub fn moved(slot: u16, addr: &str) -> Reply {
    Reply::err(format!("MOVED {slot} {addr}"))
}

/// `-CLUSTERDOWN The cluster is down`.
pub fn cluster_down() -> Reply {
    Reply::err("CLUSTERDOWN The cluster is down")
}

/// The 40-character node id clients see for a Raft node id.
pub fn node_name(id: NodeId) -> String {
    format!("{id:040x}")
}

/// One node's announced client address, with a version (the announcing process's start time in
/// ms) so that a newer announcement always wins over a stale copy relayed by another node.
pub type Announce = (NodeId, String, u64);

/// The client addresses of the nodes: from `--peers` at first, then as each node announces
/// itself (`--announce`) in every bus message, which also relays what the sender knows.
#[derive(Debug, Default)]
pub struct Topology {
    addrs: RwLock<BTreeMap<NodeId, (String, u64)>>,
}

impl Topology {
    /// A topology with the given initial client addresses (version 0).
    pub fn new(addrs: BTreeMap<NodeId, String>) -> Topology {
        Topology { addrs: RwLock::new(addrs.into_iter().map(|(id, a)| (id, (a, 0))).collect()) }
    }

    /// The client address of `id`, if known.
    pub fn addr(&self, id: NodeId) -> Option<String> {
        self.addrs.read().unwrap_or_else(|e| e.into_inner()).get(&id).map(|(a, _)| a.clone())
    }

    /// Records an announcement if it is newer than what is known; returns whether it was.
    pub fn learn(&self, id: NodeId, addr: &str, version: u64) -> bool {
        let mut addrs = self.addrs.write().unwrap_or_else(|e| e.into_inner());
        match addrs.get(&id) {
            Some((known, v)) if *v > version || (*v == version && known == addr) => false,
            _ => {
                addrs.insert(id, (addr.to_string(), version));
                true
            }
        }
    }

    /// Records every announcement of a relayed list.
    pub fn merge(&self, list: &[Announce]) {
        for (id, addr, version) in list {
            self.learn(*id, addr, *version);
        }
    }

    /// Everything known, to relay.
    pub fn announcements(&self) -> Vec<Announce> {
        let addrs = self.addrs.read().unwrap_or_else(|e| e.into_inner());
        addrs.iter().map(|(id, (a, v))| (*id, a.clone(), *v)).collect()
    }
}

/// Raft's role of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

impl Role {
    /// The name INFO's `raft_role` shows.
    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Shutdown => "shutdown",
        }
    }
}

/// One node as the cluster replies show it.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub id: NodeId,
    /// `host:port` for clients.
    pub addr: String,
    pub bus_port: u16,
    /// Last log index known replicated to it (leader's view), or its own applied index.
    pub offset: u64,
    /// Whether the leader currently hears from it (always true for the node itself).
    pub connected: bool,
    /// Milliseconds since it last answered this node over the bus, if it ever did.
    pub last_ack_ms: Option<u64>,
    /// A voter (else a learner: it replicates and serves READONLY reads, but does not vote).
    pub voter: bool,
}

/// A consistent picture of the cluster at one moment, from Raft's metrics and the topology.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub my_id: NodeId,
    pub role: Role,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub snapshot_index: u64,
    /// Voters and learners, by id.
    pub nodes: Vec<NodeView>,
    /// How far this node is behind its leader.
    pub catchup: crate::raft::catchup::CatchupView,
    /// This node's place in the membership: `voter`, `learner`, `joining` or `removed`.
    pub standing: &'static str,
    /// The membership this node holds is a joint configuration (a change under way).
    pub joint: bool,
}

/// `host:port` split (a missing or bad port reads as 0).
pub fn split_addr(addr: &str) -> (&str, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(0)),
        None => (addr, 0),
    }
}

impl ClusterView {
    fn node(&self, id: NodeId) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The leader's client address, if a leader is known.
    pub fn leader_addr(&self) -> Option<&str> {
        self.leader.and_then(|id| self.node(id)).map(|n| n.addr.as_str())
    }

    /// The nodes with the leader first (or this node first when there is no leader).
    fn ordered(&self) -> Vec<&NodeView> {
        let first = self.leader.unwrap_or(self.my_id);
        let mut v: Vec<&NodeView> = self.nodes.iter().filter(|n| n.id == first).collect();
        v.extend(self.nodes.iter().filter(|n| n.id != first));
        v
    }

    /// CLUSTER SLOTS.
    pub fn slots(&self) -> Reply {
        let mut range = vec![Reply::Int(0), Reply::Int(SLOTS as i64 - 1)];
        for n in self.ordered() {
            let (host, port) = split_addr(&n.addr);
            range.push(Reply::Array(vec![Reply::bulk(host), Reply::Int(port as i64), Reply::bulk(node_name(n.id))]));
        }
        Reply::Array(vec![Reply::Array(range)])
    }

    /// CLUSTER SHARDS.
    pub fn shards(&self) -> Reply {
        let nodes = self
            .ordered()
            .into_iter()
            .map(|n| {
                let (host, port) = split_addr(&n.addr);
                let role = if Some(n.id) == self.leader { "master" } else { "replica" };
                let health = if n.connected { "online" } else { "failed" };
                Reply::Map(vec![
                    (Reply::bulk("id"), Reply::bulk(node_name(n.id))),
                    (Reply::bulk("port"), Reply::Int(port as i64)),
                    (Reply::bulk("ip"), Reply::bulk(host)),
                    (Reply::bulk("endpoint"), Reply::bulk(host)),
                    (Reply::bulk("role"), Reply::bulk(role)),
                    (Reply::bulk("replication-offset"), Reply::Int(n.offset as i64)),
                    (Reply::bulk("health"), Reply::bulk(health)),
                ])
            })
            .collect();
        Reply::Array(vec![Reply::Map(vec![
            (Reply::bulk("slots"), Reply::Array(vec![Reply::Int(0), Reply::Int(SLOTS as i64 - 1)])),
            (Reply::bulk("nodes"), Reply::Array(nodes)),
        ])])
    }

    /// CLUSTER NODES.
    pub fn nodes_text(&self) -> String {
        let mut out = String::new();
        for n in self.ordered() {
            let mut flags = Vec::new();
            if n.id == self.my_id {
                flags.push("myself");
            }
            let is_leader = Some(n.id) == self.leader;
            flags.push(if is_leader { "master" } else { "slave" });
            if !n.connected {
                flags.push("fail?");
            }
            let master = match (is_leader, self.leader) {
                (false, Some(l)) => node_name(l),
                _ => "-".to_string(),
            };
            let link = if n.connected { "connected" } else { "disconnected" };
            let slots = if is_leader { " 0-16383" } else { "" };
            let _ = writeln!(
                out,
                "{} {}@{} {} {} 0 0 {} {}{}",
                node_name(n.id),
                n.addr,
                n.bus_port,
                flags.join(","),
                master,
                self.term,
                link,
                slots
            );
        }
        out
    }

    /// CLUSTER INFO.
    pub fn info_text(&self) -> String {
        let ok = self.leader.is_some();
        format!(
            "cluster_state:{}\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:{}\r\ncluster_slots_pfail:0\r\n\
             cluster_slots_fail:{}\r\ncluster_known_nodes:{}\r\ncluster_size:1\r\ncluster_current_epoch:{}\r\n\
             cluster_my_epoch:{}\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
             total_cluster_links_buffer_limit_exceeded:0\r\n",
            if ok { "ok" } else { "fail" },
            if ok { 16384 } else { 0 },
            if ok { 0 } else { 16384 },
            self.nodes.len(),
            self.term,
            self.term,
        )
    }

    /// ROLE.
    pub fn role_reply(&self) -> Reply {
        if self.role == Role::Leader {
            let replicas = self
                .nodes
                .iter()
                .filter(|n| n.id != self.my_id)
                .map(|n| {
                    let (host, port) = split_addr(&n.addr);
                    Reply::Array(vec![
                        Reply::bulk(host),
                        Reply::bulk(port.to_string()),
                        Reply::bulk(n.offset.to_string()),
                    ])
                })
                .collect();
            return Reply::Array(vec![
                Reply::bulk("master"),
                Reply::Int(self.applied_index as i64),
                Reply::Array(replicas),
            ]);
        }
        let (host, port) = self.leader_addr().map_or(("", 0), split_addr);
        let state = if self.leader.is_some() { "connected" } else { "connect" };
        Reply::Array(vec![
            Reply::bulk("slave"),
            Reply::bulk(host),
            Reply::Int(port as i64),
            Reply::bulk(state),
            Reply::Int(self.applied_index as i64),
        ])
    }

    /// The snapshot's last index and the last log index.
    pub fn snapshot_and_log(&self) -> (u64, u64) {
        (self.snapshot_index, self.last_log_index)
    }

    /// INFO's `# Replication` and `# Raft` sections.
    pub fn info_sections(&self, want_replication: bool, want_raft: bool) -> Vec<String> {
        let mut parts = Vec::new();
        if want_replication {
            let mut s = String::from("# Replication\r\n");
            if self.role == Role::Leader {
                let followers: Vec<&NodeView> = self.nodes.iter().filter(|n| n.id != self.my_id).collect();
                let _ = write!(
                    s,
                    "role:master\r\nconnected_slaves:{}\r\n",
                    followers.iter().filter(|n| n.connected).count()
                );
                for (i, n) in followers.iter().enumerate() {
                    let (host, port) = split_addr(&n.addr);
                    let state = if n.connected { "online" } else { "wait_bgsave" };
                    let lag = n.last_ack_ms.map_or(0, |t| t / 1000);
                    let _ = write!(s, "slave{i}:ip={host},port={port},state={state},offset={},lag={lag}\r\n", n.offset);
                }
            } else {
                let (host, port) = self.leader_addr().map_or(("", 0), split_addr);
                let link = if self.leader.is_some() { "up" } else { "down" };
                let _ = write!(
                    s,
                    "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{link}\r\n\
                     master_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\n\
                     slave_repl_offset:{}\r\n",
                    if self.leader.is_some() { 0 } else { -1 },
                    u8::from(self.catchup.state == crate::raft::catchup::CatchupState::ReceivingSnapshot),
                    self.applied_index,
                    self.applied_index,
                );
                if self.leader.is_none() {
                    let _ = write!(
                        s,
                        "master_link_down_since_seconds:{}\r\n",
                        self.catchup.secs_since_caught_up.unwrap_or(0)
                    );
                }
                s.push_str("slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\nconnected_slaves:0\r\n");
            }
            // The replication id changes with each leader, as a Redis primary's does on failover.
            let _ = write!(
                s,
                "master_failover_state:no-failover\r\nmaster_replid:{:040x}\r\n\
                 master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:{}\r\n\
                 second_repl_offset:-1\r\nrepl_backlog_active:1\r\nrepl_backlog_size:1048576\r\n\
                 repl_backlog_first_byte_offset:{}\r\nrepl_backlog_histlen:{}\r\n",
                (self.term as u128) << 64 | self.leader.unwrap_or(0) as u128,
                self.applied_index,
                self.snapshot_index + 1,
                self.applied_index.saturating_sub(self.snapshot_index),
            );
            parts.push(s);
        }
        if want_raft {
            let ids: Vec<String> = self.nodes.iter().map(|n| n.id.to_string()).collect();
            let learners: Vec<String> = self.nodes.iter().filter(|n| !n.voter).map(|n| n.id.to_string()).collect();
            parts.push(format!(
                "# Raft\r\nraft_node_id:{}\r\nraft_role:{}\r\nraft_leader_id:{}\r\nraft_term:{}\r\nraft_commit_index:{}\r\n\
                 raft_applied_index:{}\r\nraft_last_log_index:{}\r\nraft_snapshot_index:{}\r\nraft_nodes:{}\r\n\
                 raft_learners:{}\r\nraft_membership:{}\r\nraft_membership_joint:{}\r\n",
                self.my_id,
                self.role.name(),
                self.leader.map_or("-".to_string(), |l| l.to_string()),
                self.term,
                self.commit_index,
                self.applied_index,
                self.last_log_index,
                self.snapshot_index,
                ids.join(","),
                learners.join(","),
                self.standing,
                u8::from(self.joint),
            ));
            let s = parts.last_mut().expect("just pushed");
            let c = &self.catchup;
            let _ = write!(
                s,
                "raft_catchup_state:{}\r\nraft_leader_commit_index:{}\r\nraft_entries_behind:{}\r\n\
                 raft_seconds_since_caught_up:{}\r\n",
                c.state.name(),
                c.leader_commit,
                c.entries_behind,
                c.secs_since_caught_up.map_or(-1, |s| s as i64),
            );
            if self.role == Role::Leader {
                // Like INFO replication's slaveN lines: each follower's matched index and lag.
                for (i, n) in self.nodes.iter().filter(|n| n.id != self.my_id).enumerate() {
                    let state = if n.connected { "online" } else { "unreachable" };
                    let _ = write!(
                        s,
                        "raft_follower{i}:id={},addr={},state={state},matched={},lag={},last_ack_ms={}\r\n",
                        n.id,
                        n.addr,
                        n.offset,
                        self.last_log_index.saturating_sub(n.offset),
                        n.last_ack_ms.map_or(-1, |t| t as i64),
                    );
                }
            }
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), redis_protocol::redis_keyslot(b"foo{}{bar}"));
        assert_eq!(key_slot(b""), 0);
        assert_eq!(moved(3999, "127.0.0.1:6381"), Reply::err("MOVED 3999 127.0.0.1:6381"));
    }

    #[test]
    fn newer_announcements_win() {
        let t = Topology::new([(1, "a:1".to_string()), (2, "b:2".to_string())].into());
        assert!(t.learn(2, "docker:7002", 100));
        assert!(!t.learn(2, "b:2", 50), "a stale relayed copy loses");
        t.merge(&[(1, "x:1".into(), 7), (2, "old:2".into(), 99)]);
        assert_eq!(t.addr(1).as_deref(), Some("x:1"));
        assert_eq!(t.addr(2).as_deref(), Some("docker:7002"));
    }

    fn view(role: Role) -> ClusterView {
        let node = |id, port: u16| NodeView {
            id,
            addr: format!("127.0.0.1:{port}"),
            bus_port: port + 10000,
            offset: 5,
            connected: true,
            last_ack_ms: Some(20),
            voter: true,
        };
        ClusterView {
            my_id: 2,
            role,
            leader: Some(1),
            term: 3,
            commit_index: 5,
            applied_index: 5,
            last_log_index: 5,
            snapshot_index: 0,
            nodes: vec![node(1, 7001), node(2, 7002), node(3, 7003)],
            catchup: crate::raft::catchup::CatchupView {
                state: crate::raft::catchup::CatchupState::CaughtUp,
                leader_commit: 5,
                entries_behind: 0,
                secs_since_caught_up: Some(0),
            },
            standing: "voter",
            joint: false,
        }
    }

    #[test]
    fn info_raft_lists_each_followers_lag_on_the_leader() {
        let mut v = view(Role::Leader);
        v.my_id = 1;
        v.last_log_index = 9;
        let raft = v.info_sections(false, true).join("");
        assert!(
            raft.contains("raft_catchup_state:caught_up\r\nraft_leader_commit_index:5\r\nraft_entries_behind:0\r\n")
        );
        assert!(
            raft.contains("raft_follower0:id=2,addr=127.0.0.1:7002,state=online,matched=5,lag=4,last_ack_ms=20\r\n")
        );
        assert!(
            raft.contains("raft_follower1:id=3,addr=127.0.0.1:7003,state=online,matched=5,lag=4,last_ack_ms=20\r\n")
        );
        assert!(!view(Role::Follower).info_sections(false, true).join("").contains("raft_follower"));
    }

    #[test]
    fn cluster_replies_put_the_leader_first() {
        let v = view(Role::Follower);
        let Reply::Array(ranges) = v.slots() else { panic!() };
        let Reply::Array(range) = &ranges[0] else { panic!() };
        assert_eq!(range.len(), 5);
        assert_eq!(range[2], Reply::Array(vec![Reply::bulk("127.0.0.1"), Reply::Int(7001), Reply::bulk(node_name(1))]));
        let nodes = v.nodes_text();
        assert!(nodes.lines().next().unwrap().contains("master - 0 0 3 connected 0-16383"));
        assert!(nodes.contains("myself,slave"));
        assert!(v.info_text().starts_with("cluster_state:ok\r\n"));
    }
}
