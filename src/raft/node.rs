//! Starting a Raft node: the data directory's identity, the log store, the state machine, the
//! bus (node-to-node transport), and forming the cluster from `--peers` without an init step.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use openraft::{Config, ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use super::catchup::Catchup;
use super::lease::Lease;
use super::log_store::LogStore;
use super::state_machine::StateStore;
use super::types::{NodeAddr, NodeId, Raft};
use crate::cluster::Topology;
use crate::config::NodeConfig;
use crate::net::message::{RpcRequest, RpcResponse};
use crate::net::{self, BusConfig, BusHandler, BusNetwork};

/// File in the data directory that says which node of which cluster the directory belongs to.
const IDENTITY_FILE: &str = "node.identity";
/// Written once the node's Raft state exists (a vote, log entries): from then on an empty log
/// means the log was lost or damaged, never that the node is new.
const INITIALIZED_FILE: &str = "raft.initialized";

/// Refuses to start when the directory once held Raft state but the log store now reads as
/// empty: starting afresh would forget votes and acknowledged entries (sled may recover a
/// damaged file as an empty database after a crash).
async fn check_not_lost(dir: &Path, log: &LogStore, state: &StateStore) -> anyhow::Result<()> {
    use openraft::storage::RaftLogStorage;
    if !dir.join(INITIALIZED_FILE).exists() {
        return Ok(());
    }
    let mut log = log.clone();
    let vote = log.read_vote().await.context("reading the vote")?;
    let log_state = log.get_log_state().await.context("reading the log state")?;
    let has_snapshot = state.read().last_applied.is_some();
    if vote.is_none() && log_state.last_log_id.is_none() && !has_snapshot {
        bail!(
            "the Raft log in {} is empty, but this node had joined its cluster ({INITIALIZED_FILE} exists):              the log was deleted or damaged. Starting afresh could lose acknowledged writes; to rejoin as a              new node, wipe the whole directory",
            dir.join("raft-log").display()
        );
    }
    Ok(())
}

/// Records, durably, that this node's Raft state exists.
fn mark_initialized(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(INITIALIZED_FILE);
    if path.exists() {
        return Ok(());
    }
    let f = std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
    f.sync_all()?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// A running Raft node.
pub struct Node {
    pub raft: Raft,
    pub state: StateStore,
    pub log: LogStore,
    /// The leader lease its reads use; its bus refuses votes while it runs.
    pub lease: Arc<Lease>,
    /// The term of the vote and the last log index found at start-up: while it leads in that term,
    /// no read is served before that index is applied. A node restarted as the leader of its old
    /// term has no new term's first entry to wait for, and the committed index it replayed up to
    /// may be older than what it had acknowledged.
    pub read_floor: (u64, u64),
    /// How far this node is behind its leader (INFO raft, progress lines).
    pub catchup: Arc<Catchup>,
    /// The bus client side, shared with Raft: when each peer last answered.
    pub bus: BusNetwork,
    /// Membership changes through this node, and its standing.
    pub membership: Arc<super::membership::Membership>,
}

/// The bus handler: the Raft node, except that a vote request is refused (with this node's
/// current vote, not granted) while the lease forbids granting one.
struct RaftBus {
    raft: Raft,
    lease: Arc<Lease>,
    catchup: Arc<Catchup>,
}

impl BusHandler for RaftBus {
    async fn handle(&self, req: RpcRequest) -> RpcResponse {
        if let RpcRequest::Vote(rpc) = &req {
            if self.lease.refuses_votes(std::time::Instant::now()) {
                let vote = self.raft.metrics().borrow().vote;
                tracing::debug!(candidate = %rpc.vote, "vote refused: leader lease");
                return RpcResponse::Vote(Ok(openraft::raft::VoteResponse::new(vote, None, false)));
            }
        }
        match &req {
            RpcRequest::AppendEntries(rpc) => self.catchup.saw_append(rpc.leader_commit.map(|l| l.index)),
            RpcRequest::InstallSnapshot(rpc) => {
                let index = rpc.meta.last_log_id.map_or(0, |l| l.index);
                self.catchup.saw_snapshot_chunk(index, rpc.offset + rpc.data.len() as u64, rpc.done);
            }
            RpcRequest::Vote(_) => {}
        }
        self.raft.handle(req).await
    }
}

/// What a data directory's identity file says: whose directory it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub node_id: NodeId,
    pub cluster_id: String,
    /// The node entered its cluster with --join: it never forms a cluster from --peers.
    pub joined: bool,
    /// For a joined node: the log index of the membership that added it.
    pub joined_at: u64,
}

impl Identity {
    fn text(&self) -> String {
        let joined = if self.joined { format!("joined=1\njoined_at={}\n", self.joined_at) } else { String::new() };
        format!("node_id={}\ncluster_id={}\n{joined}", self.node_id, self.cluster_id)
    }

    fn parse(text: &str) -> Option<Identity> {
        let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name));
        Some(Identity {
            node_id: field("node_id=")?.parse().ok()?,
            cluster_id: field("cluster_id=")?.to_string(),
            joined: field("joined=") == Some("1"),
            joined_at: field("joined_at=").and_then(|v| v.parse().ok()).unwrap_or(0),
        })
    }
}

/// The directory's identity; `None` for a new (empty or missing) directory. A directory with
/// files but no identity is refused: whose files they are cannot be told.
pub fn read_identity(dir: &Path) -> anyhow::Result<Option<Identity>> {
    let path = dir.join(IDENTITY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            Identity::parse(&text).map(Some).with_context(|| format!("{} is damaged: {text:?}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let has_data = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
            if has_data {
                bail!(
                    "data directory {} has files but no {IDENTITY_FILE}: refusing to guess whose they are",
                    dir.display()
                );
            }
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes a new directory's identity, durably.
pub fn write_identity(dir: &Path, identity: &Identity) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    let path = dir.join(IDENTITY_FILE);
    let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    let f = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    std::io::Write::write_all(&mut &f, identity.text().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Settles which node of which cluster `cfg` runs as, from the directory's identity: a directory
/// that has one keeps it (its node id must match --id, when given; the cluster must be the one
/// --peers describes, when given: --peers only forms a cluster at its first start, after that the
/// membership lives in the log). A new directory gets the identity --id and --peers give, except
/// with --join: then the node must first ask the cluster (see `admin::join`). Writes nothing.
pub fn adopt_identity(cfg: &mut NodeConfig, peers_given: bool) -> anyhow::Result<Adopted> {
    match read_identity(&cfg.dir)? {
        Some(found) => {
            let differs = found.node_id != cfg.id && (cfg.id != 0 || cfg.join.is_none());
            if differs || (peers_given && found.cluster_id != cfg.cluster_id) {
                bail!(
                    "data directory {} belongs to node {} of cluster {}, but this is node {} of cluster {} \
                     (check --id, --peers and --dir; --peers must be the list the cluster was first started \
                     with, or left out: after the first start the membership lives in the log)",
                    cfg.dir.display(),
                    found.node_id,
                    found.cluster_id,
                    cfg.id,
                    if peers_given { &cfg.cluster_id } else { "(any)" },
                );
            }
            if !peers_given && found.cluster_id != cfg.cluster_id && !found.joined {
                info!(cluster = %found.cluster_id, "no --peers: resuming the cluster this directory belongs to");
            }
            let was = cfg.id;
            cfg.id = found.node_id;
            for p in cfg.peers.iter_mut().filter(|p| p.id == was) {
                p.id = found.node_id;
            }
            cfg.joined = found.joined;
            cfg.joined_at = found.joined_at;
            if found.cluster_id != cfg.cluster_id {
                // Its membership (in the log) may hold other nodes: listen on the bus.
                cfg.open_bus = true;
                cfg.cluster_id = found.cluster_id;
            }
            Ok(Adopted::Resumed)
        }
        None if cfg.join.is_some() => Ok(Adopted::Join),
        None => Ok(Adopted::New(Identity {
            node_id: cfg.id,
            cluster_id: cfg.cluster_id.clone(),
            joined: false,
            joined_at: 0,
        })),
    }
}

/// What [`adopt_identity`] found.
#[derive(Debug)]
pub enum Adopted {
    /// The directory's own identity.
    Resumed,
    /// A new directory, to get this identity once the node's ports are bound.
    New(Identity),
    /// A new directory of a node that must ask its cluster to join.
    Join,
}

/// The upper end of the randomized election timeout.
fn election_max(cfg: &NodeConfig) -> std::time::Duration {
    cfg.election_timeout * 3 / 2
}

/// openraft's configuration from ours.
fn raft_config(cfg: &NodeConfig) -> anyhow::Result<Config> {
    let election = cfg.election_timeout.as_millis() as u64;
    let config = Config {
        cluster_name: cfg.cluster_id.clone(),
        election_timeout_min: election,
        // openraft's followers refuse votes for `election_timeout_max` after a heartbeat and
        // campaign `election_timeout_max + [min, max)` after it: 1.5 × min (not the usual 2 ×)
        // keeps a failover under one second with the default 250 ms (a follower campaigns
        // 625-750 ms after the leader's last heartbeat, plus up to a tick of 1.5 heartbeats).
        // `Lease` relies on this value.
        election_timeout_max: election_max(cfg).as_millis() as u64,
        heartbeat_interval: cfg.heartbeat.as_millis() as u64,
        install_snapshot_timeout: 2_000,
        // Snapshots are triggered by `snapshots::schedule`, at a phase of each node's own.
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: cfg.snapshot_every,
        purge_batch_size: 256,
        // Entries are batches of client writes (up to thousands of requests each): keep one
        // AppendEntries well under a heartbeat. This is also what a new leader reads, decodes and
        // sends at each step of its search for a follower's last matching entry (see
        // `net::client::BusClient::probe`): 64 large entries cost ~40 ms a step, 16 about a
        // quarter, and a new leader's first commit on a loaded cluster went from ~230 to ~100 ms.
        max_payload_entries: 16,
        ..Default::default()
    };
    config.validate().context("raft configuration")
}

impl Node {
    /// Opens the data directory, starts Raft and the bus listener, and forms the cluster when
    /// the directory is new. `bus` must already be bound (so a port in use fails early); a
    /// single-node cluster has none.
    pub async fn start(
        cfg: &NodeConfig,
        bus: Option<TcpListener>,
        topology: Arc<Topology>,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Node> {
        anyhow::ensure!(cfg.id != 0 && !cfg.cluster_id.is_empty(), "the node's identity is not settled");
        let was_member = !cfg.joined || cfg.dir.join(INITIALIZED_FILE).exists();
        let log = LogStore::open(&cfg.dir.join("raft-log"), cfg.sled_cache_bytes)?;
        let state = StateStore::open(&cfg.dir)?;
        let committed_at_open = {
            use openraft::storage::RaftLogStorage;
            log.clone().read_committed().await.context("reading the committed index")?.map_or(0, |c| c.index)
        };
        log.set_vote_hook({
            let (state, me) = (state.clone(), cfg.id);
            Arc::new(move |vote| {
                if vote.leader_id.voted_for() == Some(me) {
                    state.note_candidacy(vote.leader_id.term, committed_at_open);
                }
            })
        });
        check_not_lost(&cfg.dir, &log, &state).await?;
        let (read_floor, restored_leader_term) = {
            use openraft::storage::RaftLogStorage;
            let mut log = log.clone();
            let vote = log.read_vote().await.context("reading the vote")?;
            let term = vote.map_or(0, |v| v.leader_id.term);
            let state = log.get_log_state().await.context("reading the log state")?;
            // openraft restarts a node whose stored vote is its own committed one as that term's
            // leader at once, before any other node has confirmed it.
            let restored = vote.filter(|v| v.is_committed() && v.leader_id.voted_for() == Some(cfg.id));
            ((term, state.last_log_id.map_or(0, |l| l.index)), restored.map(|v| v.leader_id.term))
        };
        // The bus name carries the data format: nodes of different formats refuse each other's
        // requests (a log entry of one format must never be decoded as another).
        let bus_name = format!("{}/f{}", cfg.cluster_id, super::format::FORMAT);
        let mut network = BusNetwork::new(cfg.id, bus_name.clone());
        if let Ok(ip) = cfg.bind.parse::<std::net::IpAddr>() {
            network = network.with_source(ip);
        }
        let network = network.with_topology(topology.clone());
        let bus_client = network.clone();
        let raft = Raft::new(cfg.id, Arc::new(raft_config(cfg)?), network, log.clone(), state.clone())
            .await
            .context("starting raft")?;
        if !was_member {
            // A joining node replays memberships of before its time, which may name its id as a
            // voter (a removed node's): no campaign until the one that added it (`Membership::follow`).
            raft.runtime_config().elect(false);
        }
        let lease = Arc::new(Lease::new(cfg.election_timeout, election_max(cfg)));
        let catchup = Arc::new(Catchup::default());
        let mut bus_config = BusConfig::new(cfg.id, bus_name, cfg.peer_ids());
        bus_config.topology = Some(topology);
        // The bus accepts the members the log holds (a joining node: anyone of the cluster until
        // the membership that added it arrives).
        let members: std::collections::BTreeSet<NodeId> =
            raft.metrics().borrow().membership_config.membership().nodes().map(|(&id, _)| id).collect();
        if !was_member {
            bus_config.allowed = Arc::new(net::Allowed::default());
        } else if !members.is_empty() {
            bus_config.allowed.set(members);
        }
        let allowed = bus_config.allowed.clone();
        if let Some(bus) = bus {
            tokio::spawn(net::serve(
                bus,
                bus_config,
                Arc::new(RaftBus { raft: raft.clone(), lease: lease.clone(), catchup: catchup.clone() }),
                shutdown,
            ));
        }

        if cfg.joined {
            info!("joined node: waiting for the leader's log or snapshot");
        } else if !raft.is_initialized().await.context("reading raft state")? {
            // Every node of a new cluster proposes the same membership, derived from --peers:
            // openraft makes this safe, whatever the start order.
            let members: BTreeMap<NodeId, NodeAddr> =
                cfg.peers.iter().map(|p| (p.id, NodeAddr { client: p.client_addr(), bus: p.bus_addr() })).collect();
            match raft.initialize(members).await {
                Ok(()) => info!(nodes = cfg.peers.len(), "initialized a new cluster"),
                Err(e) => warn!(error = %e, "cluster initialization skipped"),
            }
        } else {
            info!("resuming from the data directory");
        }
        // A joined node is marked once the membership names it (see `Membership::follow`).
        if !cfg.joined && raft.is_initialized().await.context("reading raft state")? {
            mark_initialized(&cfg.dir)?;
        }
        tokio::spawn(log_changes(raft.clone(), restored_leader_term));
        let membership =
            Arc::new(super::membership::Membership::new(raft.clone(), cfg.id, cfg.promote_lag, cfg.joined_at));
        tokio::spawn(membership.clone().finish_interrupted());
        tokio::spawn(membership.clone().follow(allowed, was_member, {
            let dir = cfg.dir.clone();
            move || {
                if let Err(e) = mark_initialized(&dir) {
                    warn!(error = %e, "cannot record that this node joined");
                }
            }
        }));
        tokio::spawn(catchup.clone().run(raft.clone(), cfg.id));
        let policy = super::snapshots::Policy {
            every: cfg.snapshot_every,
            log_bytes: cfg.snapshot_log_bytes,
            keep_bytes: cfg.log_keep_bytes,
        };
        tokio::spawn(super::snapshots::schedule(raft.clone(), policy, log.sizes(), cfg.id));
        let voters: Vec<NodeId> = raft.metrics().borrow().membership_config.membership().voter_ids().collect();
        if voters == [cfg.id] {
            // A single-node cluster is always its own leader, a tick after start: wait for it, so
            // that its first clients are not told CLUSTERDOWN.
            let wait = raft.wait(Some(std::time::Duration::from_secs(5)));
            if let Err(e) = wait.state(ServerState::Leader, "single node").await {
                warn!(error = %e, "this single-node cluster did not become its own leader yet");
            }
        }
        Ok(Node { raft, state, log, lease, read_floor, catchup, bus: bus_client, membership })
    }
}

/// Logs what a person watching the cluster wants to see: elections and terms, who leads, and
/// snapshots (catching up is logged by [`Catchup`]). openraft's own logs are off by default.
///
/// `restored_leader_term`: the term this node led when it stopped, if its stored vote says so.
/// openraft makes it that term's leader again at start-up, before anyone confirmed it; it is
/// logged as resuming, and as the leader only once a quorum has acknowledged it (usually the other
/// nodes have moved on to a newer term and it just steps down).
async fn log_changes(raft: Raft, restored_leader_term: Option<u64>) {
    let mut metrics = raft.metrics();
    let mut last: Option<(openraft::ServerState, Option<NodeId>, u64, bool)> = None;
    let mut last_snapshot = None;
    loop {
        let m = metrics.borrow_and_update().clone();
        let leads = m.state == openraft::ServerState::Leader;
        let unconfirmed = leads && restored_leader_term == Some(m.current_term) && m.millis_since_quorum_ack.is_none();
        let now = (m.state, m.current_leader, m.current_term, unconfirmed);
        if last != Some(now) {
            match (m.state, m.current_leader) {
                _ if unconfirmed => info!(
                    term = m.current_term,
                    "resuming as the leader of term {} restored from disk: not serving until a quorum confirms it",
                    m.current_term
                ),
                (openraft::ServerState::Shutdown, _) => info!(term = m.current_term, "raft stopped"),
                (openraft::ServerState::Leader, _) => info!(term = m.current_term, "this node is now the leader"),
                (openraft::ServerState::Candidate, _) => {
                    info!(term = m.current_term, "election: this node is a candidate")
                }
                (_, Some(leader)) => info!(term = m.current_term, leader, "following the leader"),
                (state, None) => info!(term = m.current_term, ?state, "no leader known"),
            }
            last = Some(now);
        }
        if m.snapshot != last_snapshot {
            if let Some(s) = m.snapshot {
                info!(index = s.index, term = s.leader_id.term, "snapshot now covers the log up to this index");
            }
            last_snapshot = m.snapshot;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
