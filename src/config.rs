//! Server configuration: command-line flags, each also readable from a `RAFTIS_*` variable, and
//! their validation into the cluster a node belongs to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::base::NodeId;

/// Tunables with their defaults in one place.
pub mod defaults {
    /// Client port (Redis's).
    pub const PORT: u16 = 6379;
    /// The bus port is the client port plus this, as in Redis Cluster.
    pub const BUS_PORT_OFFSET: u16 = 10000;
    /// Address to listen on.
    pub const BIND: &str = "127.0.0.1";
    /// Data directory.
    pub const DIR: &str = "./data";
    /// Most clients connected at once (Redis's `maxclients`).
    pub const MAXCLIENTS: usize = 10_000;
    /// Raft entries between snapshots.
    pub const SNAPSHOT_EVERY: u64 = 10_000;
    /// Log bytes (MiB) since the last snapshot that trigger one, whatever the entry count.
    pub const SNAPSHOT_LOG_MB: u64 = 16;
    /// Most log bytes (MiB) kept behind a snapshot for lagging followers.
    pub const LOG_KEEP_MB: u64 = 8;
    /// sled's page cache, MiB.
    pub const SLED_CACHE_MB: u64 = 64;
    /// Election timeout (the minimum; the maximum is 1.5 × it), ms.
    pub const ELECTION_TIMEOUT_MS: u64 = 250;
    /// Leader heartbeat period, ms. openraft also uses it as the AppendEntries timeout, so it
    /// must cover a follower's append and flush under load.
    pub const HEARTBEAT_MS: u64 = 100;
    /// How long a client request waits for its commit before getting an indeterminate error, ms.
    pub const COMMIT_TIMEOUT_MS: u64 = 5_000;
}

/// `raftis server` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// This node's id (a positive integer; must appear in --peers when they are given).
    #[arg(long, env = "RAFTIS_ID")]
    pub id: Option<NodeId>,
    /// Address to listen on for clients and for the bus.
    #[arg(long, env = "RAFTIS_BIND", default_value = defaults::BIND)]
    pub bind: String,
    /// Port to listen on for clients (default: this node's port in --peers, else 6379).
    #[arg(long, env = "RAFTIS_PORT")]
    pub port: Option<u16>,
    /// Port to listen on for node-to-node traffic (default: this node's bus port in --peers,
    /// i.e. client port + 10000). It may differ from the advertised one, behind NAT or a proxy.
    #[arg(long, env = "RAFTIS_BUS_PORT")]
    pub bus_port: Option<u16>,
    /// Directory for the node's data (Raft log, snapshots).
    #[arg(long, env = "RAFTIS_DIR", default_value = defaults::DIR)]
    pub dir: PathBuf,
    /// Every node of the cluster: `ID@HOST:PORT` or `ID@HOST:PORT@BUSPORT`, comma-separated.
    /// Without it the node is a single-node cluster.
    #[arg(long, env = "RAFTIS_PEERS")]
    pub peers: Option<String>,
    /// The `host:port` other nodes and clients are told for this node (MOVED, CLUSTER SLOTS);
    /// default: its address in --peers.
    #[arg(long, env = "RAFTIS_ANNOUNCE")]
    pub announce: Option<String>,
    /// Most clients connected at once; further connections get `-ERR max number of clients reached`.
    #[arg(long, env = "RAFTIS_MAXCLIENTS", default_value_t = defaults::MAXCLIENTS)]
    pub maxclients: usize,
    /// Port of the HTTP listener (`/metrics`, `/health`, `/ready`); 0 turns it off. Default: the
    /// client port + 1000 (if that port is taken, the node runs without it and says so).
    #[arg(long, env = "RAFTIS_HTTP_PORT")]
    pub http_port: Option<u16>,
    /// Changes the HTTP watch feed keeps for watchers to resume from (0: no feed).
    #[arg(long, env = "RAFTIS_WATCH_HISTORY", default_value_t = crate::raft::feed::DEFAULT_HISTORY)]
    pub watch_history: usize,
    /// Address the HTTP listener binds (default: --bind).
    #[arg(long, env = "RAFTIS_HTTP_BIND")]
    pub http_bind: Option<String>,
    /// Raft entries between snapshots; the log behind a snapshot is purged.
    #[arg(long, env = "RAFTIS_SNAPSHOT_EVERY", default_value_t = defaults::SNAPSHOT_EVERY)]
    pub snapshot_every: u64,
    /// Also snapshot once the log holds this many MiB since the last snapshot (entries can be
    /// batches of many commands: the bytes are what the log costs in memory).
    #[arg(long, env = "RAFTIS_SNAPSHOT_LOG_MB", default_value_t = defaults::SNAPSHOT_LOG_MB)]
    pub snapshot_log_mb: u64,
    /// Keep at most this many MiB of log behind a snapshot (and at most --snapshot-every
    /// entries), for followers that lag; one further behind receives the snapshot.
    #[arg(long, env = "RAFTIS_LOG_KEEP_MB", default_value_t = defaults::LOG_KEEP_MB)]
    pub log_keep_mb: u64,
    /// sled's page cache in MiB.
    #[arg(long, env = "RAFTIS_SLED_CACHE_MB", default_value_t = defaults::SLED_CACHE_MB)]
    pub sled_cache_mb: u64,
    /// Minimum election timeout in ms (the maximum is 1.5 × it).
    #[arg(long, env = "RAFTIS_ELECTION_TIMEOUT_MS", default_value_t = defaults::ELECTION_TIMEOUT_MS)]
    pub election_timeout_ms: u64,
    /// Leader heartbeat period in ms.
    #[arg(long, env = "RAFTIS_HEARTBEAT_MS", default_value_t = defaults::HEARTBEAT_MS)]
    pub heartbeat_ms: u64,
    /// How long a write waits for its commit before the client gets an indeterminate error (ms).
    #[arg(long, env = "RAFTIS_COMMIT_TIMEOUT_MS", default_value_t = defaults::COMMIT_TIMEOUT_MS)]
    pub commit_timeout_ms: u64,
    /// Lua instructions one script may run before it is stopped with an error. The node that
    /// accepts a script stamps its value into the request, so every replica stops it at the
    /// same instruction.
    #[arg(long, env = "RAFTIS_LUA_MAX_INSTRUCTIONS", default_value_t = crate::script::defaults::MAX_INSTRUCTIONS,
          value_parser = clap::value_parser!(u64).range(1000..))]
    pub lua_max_instructions: u64,
    /// Memory in MiB one script may allocate in the Lua VM.
    #[arg(long, env = "RAFTIS_LUA_MAX_MEMORY_MB", default_value_t = (crate::script::defaults::MAX_MEMORY >> 20) as u64,
          value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub lua_max_memory_mb: u64,
    /// Refuse a script's `redis.call` on a key it did not declare in KEYS (as RedisRaft's
    /// option of the same name). Off by default: one Raft group holds every slot, so any key is
    /// local. Stamped into each script request like the Lua limits.
    #[arg(long, env = "RAFTIS_CLUSTER_STRICT_KEYS")]
    pub cluster_strict_keys: bool,
    /// On a follower, relay the whole session of a client that is not cluster-aware (it never
    /// sent CLUSTER, READONLY, READWRITE or ASKING) to the leader instead of answering MOVED,
    /// which plain clients cannot follow. `--follower-proxy false` answers MOVED to everyone.
    #[arg(long, env = "RAFTIS_FOLLOWER_PROXY", default_value_t = true, action = clap::ArgAction::Set)]
    pub follower_proxy: bool,
    /// What a list pop (LPOP, RPOP, LMPOP, BLPOP, BRPOP, BLMPOP) whose answer a leader's death
    /// may have cut off becomes: `at-most-once` (Redis's rule: never given twice, possibly lost)
    /// or `at-least-once` (a new leader puts back the pops its election committed: possibly
    /// given twice, for queues whose consumers take with BRPOP, such as Celery's). Set the same
    /// on every node.
    #[arg(long, env = "RAFTIS_POP_DELIVERY", value_enum, default_value_t = PopDelivery::AtMostOnce)]
    pub pop_delivery: PopDelivery,
    /// The master name under which the SENTINEL commands present the cluster (its leader).
    #[arg(long, env = "RAFTIS_SENTINEL_NAME", default_value = "raftis")]
    pub sentinel_name: String,
    /// Join a running cluster through any of its nodes (`HOST:PORT`, a client address) instead of
    /// forming one with --peers: a node with an empty --dir asks to be added as a learner, receives
    /// the data, and is promoted to voter once caught up. Without --id, the cluster assigns one.
    /// Once the directory holds the node's state, it restarts from it and --join is not used.
    #[arg(long, env = "RAFTIS_JOIN", conflicts_with = "peers")]
    pub join: Option<String>,
    /// With --join: stay a learner (replicates and serves READONLY reads, never votes) instead of
    /// asking to be promoted to voter.
    #[arg(long, env = "RAFTIS_LEARNER", requires = "join")]
    pub learner: bool,
    /// With --join: this node's address as the other nodes reach it, `HOST:PORT[@BUSPORT]` (what
    /// --peers would list for it). Default: --bind (127.0.0.1 when binding every interface) and
    /// --port, bus port + 10000.
    #[arg(long, env = "RAFTIS_CLUSTER_ADDR", requires = "join")]
    pub cluster_addr: Option<String>,
    /// On the leader: how many entries behind its log a learner may be when it is promoted.
    #[arg(long, env = "RAFTIS_PROMOTE_LAG", default_value_t = crate::raft::membership::DEFAULT_PROMOTE_LAG)]
    pub promote_lag: u64,
}

/// `--pop-delivery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PopDelivery {
    AtMostOnce,
    AtLeastOnce,
}

/// One member of the cluster as `--peers` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: NodeId,
    pub host: String,
    pub port: u16,
    pub bus_port: u16,
}

impl Peer {
    /// `host:port` for clients.
    pub fn client_addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `host:busport` for the bus.
    pub fn bus_addr(&self) -> String {
        format!("{}:{}", self.host, self.bus_port)
    }
}

/// A validated node configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    pub bind: String,
    pub port: u16,
    pub bus_port: u16,
    pub dir: PathBuf,
    pub peers: Vec<Peer>,
    /// What this node tells others and clients it is reached at.
    pub announce: String,
    /// Identifies the cluster: derived from the peer list, stored in the data dir, and sent
    /// with every bus message.
    pub cluster_id: String,
    pub maxclients: usize,
    pub snapshot_every: u64,
    /// `--snapshot-log-mb`, in bytes.
    pub snapshot_log_bytes: u64,
    /// `--log-keep-mb`, in bytes.
    pub log_keep_bytes: u64,
    pub sled_cache_bytes: u64,
    pub election_timeout: Duration,
    pub heartbeat: Duration,
    pub commit_timeout: Duration,
    /// The master name SENTINEL answers for.
    pub sentinel_name: String,
    /// `--follower-proxy`.
    pub follower_proxy: bool,
    /// `--pop-delivery`.
    pub pop_delivery: PopDelivery,
    /// The bounds this node stamps into the scripts it accepts.
    pub lua_limits: crate::script::Limits,
    /// The HTTP listener's address, unless turned off.
    pub http: Option<HttpListen>,
    /// `--watch-history`.
    pub watch_history: usize,
    /// `--join`: the node to ask for membership when the data directory is new.
    pub join: Option<String>,
    /// `--learner`.
    pub learner: bool,
    /// `--promote-lag`.
    pub promote_lag: u64,
    /// The directory's node entered its cluster by joining (it never forms one from --peers).
    /// Set from the directory's identity at start.
    pub joined: bool,
    /// For a joined node: the log index of the membership that added it.
    pub joined_at: u64,
    /// Whether the node listens on its bus: a node started alone without --peers has nobody
    /// to talk to and opens no bus port (it can then never grow).
    pub open_bus: bool,
}

/// Where the HTTP listener binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpListen {
    pub addr: String,
    /// Given with --http-port (a bind failure stops the node) rather than defaulted (the node
    /// then runs without HTTP).
    pub explicit: bool,
}

impl NodeConfig {
    /// The peers' client addresses by id.
    pub fn client_addrs(&self) -> BTreeMap<NodeId, String> {
        self.peers.iter().map(|p| (p.id, p.client_addr())).collect()
    }

    /// The other nodes' ids.
    pub fn peer_ids(&self) -> BTreeSet<NodeId> {
        self.peers.iter().map(|p| p.id).collect()
    }
}

/// Parses `ID@HOST:PORT[@BUSPORT]`.
pub fn parse_peer(s: &str) -> anyhow::Result<Peer> {
    let s = s.trim();
    let mut parts = s.split('@');
    let (Some(id), Some(addr)) = (parts.next(), parts.next()) else {
        bail!("peer '{s}' is not ID@HOST:PORT or ID@HOST:PORT@BUSPORT");
    };
    let id: NodeId =
        id.parse().ok().filter(|&n| n > 0).with_context(|| format!("peer '{s}': the id must be a positive integer"))?;
    let (host, port) = addr.rsplit_once(':').with_context(|| format!("peer '{s}': missing :PORT"))?;
    if host.is_empty() {
        bail!("peer '{s}': empty host");
    }
    let port: u16 = port.parse().ok().filter(|&p| p > 0).with_context(|| format!("peer '{s}': bad port '{port}'"))?;
    let bus_port = match parts.next() {
        Some(b) => b.parse().ok().filter(|&p| p > 0).with_context(|| format!("peer '{s}': bad bus port '{b}'"))?,
        None => port
            .checked_add(defaults::BUS_PORT_OFFSET)
            .with_context(|| format!("peer '{s}': port + 10000 overflows; give @BUSPORT"))?,
    };
    if parts.next().is_some() {
        bail!("peer '{s}' has too many '@'");
    }
    Ok(Peer { id, host: host.to_string(), port, bus_port })
}

impl ServerConfig {
    /// Checks the flags and works out this node's place in the cluster.
    pub fn resolve(&self) -> anyhow::Result<NodeConfig> {
        let (id, peers) = match &self.peers {
            _ if self.join.is_some() => {
                // The id is the one given, or 0 until the cluster assigns one.
                let id = self.id.unwrap_or(0);
                let addr = match &self.cluster_addr {
                    Some(a) => a.clone(),
                    None => {
                        let host = if self.bind == "0.0.0.0" || self.bind == "::" { "127.0.0.1" } else { &self.bind };
                        format!("{host}:{}", self.port.unwrap_or(defaults::PORT))
                    }
                };
                let mut me = parse_peer(&format!("1@{addr}")).with_context(|| format!("--cluster-addr '{addr}'"))?;
                if let (None, Some(bus)) = (&self.cluster_addr, self.bus_port) {
                    me.bus_port = bus;
                }
                me.id = id;
                (id, vec![me])
            }
            Some(list) if !list.trim().is_empty() => {
                let peers = list.split(',').map(parse_peer).collect::<anyhow::Result<Vec<_>>>()?;
                let mut ids = BTreeSet::new();
                let mut addrs = BTreeSet::new();
                for p in &peers {
                    if !ids.insert(p.id) {
                        bail!("--peers names node {} twice", p.id);
                    }
                    if !addrs.insert(p.client_addr()) || !addrs.insert(p.bus_addr()) {
                        bail!("--peers uses address {} or {} twice", p.client_addr(), p.bus_addr());
                    }
                }
                let id = self.id.context("--id is required with --peers (which of the peers is this node?)")?;
                if !ids.contains(&id) {
                    bail!(
                        "--id {id} is not one of the --peers ({})",
                        ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
                    );
                }
                (id, peers)
            }
            _ => {
                let id = self.id.unwrap_or(1);
                if id == 0 {
                    bail!("--id must be a positive integer");
                }
                let port = self.port.unwrap_or(defaults::PORT);
                let host = if self.bind == "0.0.0.0" || self.bind == "::" {
                    "127.0.0.1".to_string()
                } else {
                    self.bind.clone()
                };
                let bus_port = self.bus_port.unwrap_or(port.wrapping_add(defaults::BUS_PORT_OFFSET));
                (id, vec![Peer { id, host, port, bus_port }])
            }
        };
        let me = peers.iter().find(|p| p.id == id).expect("checked above").clone();
        if let Some(port) = self.port {
            if port != me.port {
                let given = if self.join.is_some() { "--cluster-addr" } else { "this node's entry in --peers" };
                bail!("--port {port} disagrees with {given} ({})", me.client_addr());
            }
        }
        if self.election_timeout_ms < 2 * self.heartbeat_ms {
            bail!("--election-timeout-ms must be at least twice --heartbeat-ms");
        }
        if self.snapshot_every == 0 {
            bail!("--snapshot-every must be positive");
        }
        if self.snapshot_log_mb == 0 || self.snapshot_log_mb > 1 << 20 {
            bail!("--snapshot-log-mb must be between 1 and 1048576");
        }
        if self.log_keep_mb > 1 << 20 {
            bail!("--log-keep-mb must be at most 1048576");
        }
        if self.sentinel_name.is_empty() || self.sentinel_name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!("--sentinel-name '{}' must be one word without spaces", self.sentinel_name);
        }
        let announce = match &self.announce {
            Some(a) => {
                let (h, p) = a.rsplit_once(':').with_context(|| format!("--announce '{a}' is not HOST:PORT"))?;
                if h.is_empty() || p.parse::<u16>().is_err() {
                    bail!("--announce '{a}' is not HOST:PORT");
                }
                a.clone()
            }
            None => me.client_addr(),
        };
        let mut members: Vec<String> = peers.iter().map(|p| format!("{}@{}", p.id, p.bus_addr())).collect();
        members.sort();
        // A joining node learns its cluster's id from the cluster.
        let cluster_id = if self.join.is_some() {
            String::new()
        } else {
            let mut h = sha1_smol::Sha1::new();
            h.update(members.join(",").as_bytes());
            h.digest().to_string()[..16].to_string()
        };
        let open_bus = self.join.is_some() || peers.len() > 1 || self.peers.is_some();
        Ok(NodeConfig {
            id,
            bind: self.bind.clone(),
            port: me.port,
            bus_port: self.bus_port.unwrap_or(me.bus_port),
            dir: self.dir.clone(),
            peers,
            announce,
            cluster_id,
            maxclients: self.maxclients,
            snapshot_every: self.snapshot_every,
            snapshot_log_bytes: self.snapshot_log_mb << 20,
            log_keep_bytes: self.log_keep_mb << 20,
            sled_cache_bytes: self.sled_cache_mb.max(1) * 1024 * 1024,
            election_timeout: Duration::from_millis(self.election_timeout_ms),
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            commit_timeout: Duration::from_millis(self.commit_timeout_ms),
            sentinel_name: self.sentinel_name.clone(),
            follower_proxy: self.follower_proxy,
            pop_delivery: self.pop_delivery,
            lua_limits: crate::script::Limits {
                max_instructions: self.lua_max_instructions,
                max_memory: self.lua_max_memory_mb << 20,
                strict_keys: self.cluster_strict_keys,
            },
            watch_history: self.watch_history,
            join: self.join.clone(),
            learner: self.learner,
            promote_lag: self.promote_lag,
            joined: false,
            joined_at: 0,
            open_bus,
            http: match self.http_port {
                Some(0) => None,
                Some(port) => Some(HttpListen {
                    addr: format!("{}:{port}", self.http_bind.as_deref().unwrap_or(&self.bind)),
                    explicit: true,
                }),
                None => me.port.checked_add(1000).map(|port| HttpListen {
                    addr: format!("{}:{port}", self.http_bind.as_deref().unwrap_or(&self.bind)),
                    explicit: false,
                }),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerConfig,
    }

    fn resolve(args: &[&str]) -> anyhow::Result<NodeConfig> {
        let mut v = vec!["raftis"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v)?.server.resolve()
    }

    const PEERS: &str = "1@127.0.0.1:7001,2@127.0.0.1:7002,3@127.0.0.1:7003@27003";

    #[test]
    fn peers() {
        let c = resolve(&["--id", "3", "--peers", PEERS]).unwrap();
        assert_eq!((c.port, c.bus_port), (7003, 27003));
        assert_eq!(c.announce, "127.0.0.1:7003");
        let other = resolve(&["--id", "1", "--peers", PEERS]).unwrap();
        assert_eq!(c.cluster_id, other.cluster_id);
        assert_eq!(parse_peer("2@h:7002").unwrap().bus_port, 17002);
    }

    #[test]
    fn bad_configurations_are_refused() {
        for args in [
            vec!["--peers", PEERS],
            vec!["--id", "4", "--peers", PEERS],
            vec!["--id", "1", "--peers", "1@a:1,1@b:2"],
            vec!["--id", "1", "--peers", "1@a:1,2@a:1"],
            vec!["--id", "1", "--port", "7005", "--peers", PEERS],
            vec!["--id", "1", "--peers", "1@a"],
            vec!["--id", "1", "--peers", "x@a:1"],
            vec!["--announce", "nope"],
        ] {
            assert!(resolve(&args).is_err(), "{args:?} accepted");
        }
    }

    #[test]
    fn joining() {
        let c = resolve(&["--join", "10.0.0.1:6379", "--cluster-addr", "10.0.0.4:7004@27004"]).unwrap();
        assert_eq!((c.id, c.cluster_id.as_str(), c.port, c.open_bus), (0, "", 7004, true));
        assert_eq!(c.peers[0].bus_addr(), "10.0.0.4:27004");
        let c = resolve(&["--join", "h:1", "--id", "7", "--port", "7007", "--learner"]).unwrap();
        assert_eq!((c.id, c.peers[0].client_addr(), c.learner), (7, "127.0.0.1:7007".to_string(), true));
        for args in [
            vec!["--join", "h:1", "--peers", PEERS, "--id", "1"],
            vec!["--learner"],
            vec!["--join", "h:1", "--cluster-addr", "nope"],
            vec!["--join", "h:1", "--cluster-addr", "h:7004", "--port", "7005"],
        ] {
            assert!(resolve(&args).is_err(), "{args:?} accepted");
        }
    }

    #[test]
    fn single_node_defaults() {
        let c = resolve(&[]).unwrap();
        assert_eq!((c.id, c.port, c.bus_port), (1, 6379, 16379));
    }
}
