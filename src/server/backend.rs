//! Where requests go: the boundary between the front end and the replicated state.
//!
//! A write is proposed to Raft and answered with the reply its own entry produced when it was
//! applied. A read first makes sure this node is still the leader and has applied everything
//! committed before the read arrived (under the leader lease, see [`Lease`], or else with one
//! `ensure_linearizable` shared by every read waiting for it), then reads the local state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::ServerState;
use tokio::sync::{mpsc, oneshot};

use crate::cluster::{ClusterView, NodeView, Role, Topology};
use crate::cmd::{Ctx, Op};
use crate::raft::catchup::Catchup;
use crate::raft::lease::Lease;
use crate::raft::state_machine::{Applied, StateStore};
use crate::raft::types::{Batch, NodeId, Raft};
use crate::resp::Reply;
use crate::sm::Request;

/// Why a request was not answered with its result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// This node is not the leader (the leader's id when known). Nothing was applied.
    #[error("not the leader")]
    NotLeader(Option<NodeId>),
    /// The request certainly did not take effect: no quorum, or shutting down before proposing.
    #[error("{0}")]
    Unavailable(String),
    /// A write was proposed but its outcome is unknown: it may or may not be applied.
    #[error("{0}")]
    Uncertain(String),
}

/// The replicated state a node serves.
pub struct Backend {
    raft: Raft,
    state: StateStore,
    gate: Arc<ReadGate>,
    topology: Arc<Topology>,
    my_id: NodeId,
    commit_timeout: Duration,
    log: Option<crate::raft::log_store::LogStore>,
    proposals: mpsc::UnboundedSender<Proposal>,
    /// Set while this node is Raft's leader but has not heard from a quorum for longer than an
    /// election timeout: the majority has most likely elected another leader, so this node answers
    /// CLUSTERDOWN (as a Redis Cluster master in the minority does) instead of leaving clients
    /// with writes that can never commit. openraft 0.9 itself never steps such a leader down.
    quorum_lost: Arc<AtomicBool>,
    /// How far this node is behind its leader, for INFO.
    catchup: Arc<Catchup>,
    /// When each peer last answered this node, for INFO (none in tests without a bus).
    bus: Option<crate::net::BusNetwork>,
    /// A peer that has not answered for this long counts as disconnected.
    peer_timeout: Duration,
    /// What went into each log entry this node proposed.
    batches: Arc<Batches>,
    /// Membership changes through this node, and its standing.
    membership: Option<Arc<crate::raft::membership::Membership>>,
}

/// What went into each log entry this node proposed.
#[derive(Debug, Default)]
pub struct Batches {
    /// Proposals (a client's write, a pipeline's worth, an EXEC) per entry.
    pub proposals: crate::latency::Sizes,
    /// Requests per entry.
    pub requests: crate::latency::Sizes,
}

/// Most requests in one log entry.
const MAX_BATCH: usize = 4096;

/// Requests waiting to be proposed, and where their replies go.
struct Proposal {
    reqs: Vec<Request>,
    reply: oneshot::Sender<Result<Vec<Reply>, BackendError>>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("id", &self.my_id).finish()
    }
}

impl Backend {
    /// A backend over a running Raft node and its state machine.
    pub fn new(
        raft: Raft,
        state: StateStore,
        topology: Arc<Topology>,
        my_id: NodeId,
        commit_timeout: Duration,
        lease_timeout: Duration,
    ) -> Backend {
        let (proposals, queue) = mpsc::unbounded_channel();
        let batches = Arc::new(Batches::default());
        tokio::spawn(propose_loop(raft.clone(), queue, commit_timeout, batches.clone()));
        let quorum_lost = Arc::new(AtomicBool::new(false));
        tokio::spawn(watch_quorum(raft.clone(), quorum_lost.clone(), lease_timeout));
        Backend {
            raft,
            state,
            gate: Arc::new(ReadGate::default()),
            topology,
            my_id,
            commit_timeout,
            log: None,
            proposals,
            quorum_lost,
            catchup: Arc::new(Catchup::default()),
            bus: None,
            peer_timeout: lease_timeout,
            batches,
            membership: None,
        }
    }

    /// Changes the membership through `membership` (RAFT.NODE) and reports this node's standing.
    pub fn with_membership(mut self, membership: Arc<crate::raft::membership::Membership>) -> Backend {
        self.membership = Some(membership);
        self
    }

    /// Membership changes through this node (none in tests without Raft's node).
    pub fn membership(&self) -> Option<&Arc<crate::raft::membership::Membership>> {
        self.membership.as_ref()
    }

    /// Reports, for each peer, when it last answered (INFO, CLUSTER NODES).
    pub fn with_bus(mut self, bus: crate::net::BusNetwork) -> Backend {
        self.bus = Some(bus);
        self
    }

    /// Reports this node's catching up (the node's own tracker) in INFO.
    pub fn with_catchup(mut self, catchup: Arc<Catchup>) -> Backend {
        self.catchup = catchup;
        self
    }

    /// Serves reads under `lease` while it runs (see [`Lease`]), instead of a heartbeat round each,
    /// and, while leading in the start-up term, none before the start-up log is applied (`floor`:
    /// that term and the last log index then; see `Node::read_floor`).
    pub fn with_lease(mut self, lease: Arc<Lease>, floor: (u64, u64)) -> Backend {
        self.gate = Arc::new(ReadGate { lease: Some(lease), floor, ..ReadGate::default() });
        self
    }

    /// Reports the log store's flush statistics in INFO.
    pub fn with_log(mut self, log: crate::raft::log_store::LogStore) -> Backend {
        self.log = Some(log);
        self
    }

    /// The log store's (flushes, total flush µs, waiters served), if known.
    pub fn flush_stats(&self) -> Option<(u64, u64, u64)> {
        self.log.as_ref().map(|l| l.flush_stats())
    }

    /// How long each Raft log flush took (none in tests without a log store).
    pub fn flush_latency(&self) -> Option<crate::latency::LatencySnapshot> {
        self.log.as_ref().map(|l| l.flush_latency())
    }

    /// How long each apply of committed entries took.
    pub fn apply_latency(&self) -> crate::latency::LatencySnapshot {
        self.state.apply_latency()
    }

    /// What went into each log entry this node proposed.
    pub fn batches(&self) -> &Batches {
        &self.batches
    }

    /// Failed bus calls to each peer, by kind.
    pub fn bus_errors(&self) -> Vec<(NodeId, &'static str, u64)> {
        self.bus.as_ref().map(|b| b.rpc_errors()).unwrap_or_default()
    }

    /// The snapshots this node built and installed.
    pub fn snapshot_stats(&self) -> &crate::raft::state_machine::SnapshotStats {
        self.state.snapshot_stats()
    }

    /// The changes applied entries made (the HTTP watch).
    pub fn feed(&self) -> &Arc<crate::raft::feed::Feed> {
        self.state.feed()
    }

    /// Hands the messages applied entries publish to `sink` (the node's subscribers).
    pub fn set_message_sink(&self, sink: crate::raft::state_machine::MessageSink) {
        self.state.set_message_sink(sink);
    }

    /// Hands the older-term pops each new term's first entry commits to `sink`.
    pub fn set_requeue_sink(&self, sink: crate::raft::state_machine::RequeueSink) {
        self.state.set_requeue_sink(sink);
    }

    /// Whether this node leads term `term` (and still hears from a quorum).
    pub fn leads_term(&self, term: u64) -> bool {
        self.is_leader() && self.raft.metrics().borrow().current_term == term
    }

    /// The Raft handle.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.my_id
    }

    /// Proposes one request and returns its reply once applied.
    pub async fn write(&self, req: Request) -> Result<Reply, BackendError> {
        let mut replies = self.write_batch(vec![req]).await?;
        Ok(replies.pop().unwrap_or(Reply::Nil))
    }

    /// Proposes requests as one log entry; returns their replies in order.
    pub async fn write_batch(&self, reqs: Vec<Request>) -> Result<Vec<Reply>, BackendError> {
        if crate::broken::is(crate::broken::Mode::EarlyAck) {
            return self.ack_before_commit(reqs).await;
        }
        if crate::broken::is(crate::broken::Mode::UncommittedPop) && self.is_leader() && reqs.iter().all(is_pop) {
            // Broken on purpose: the pop's reply comes from a copy of the state; nothing is
            // proposed, so the element stays in the list.
            let mut scratch = crate::sm::StateMachine {
                keyspace: crate::sm::KeySpace::from_image(self.state.read().sm.keyspace.to_image()),
            };
            return Ok(reqs.iter().map(|r| scratch.apply(r)).collect());
        }
        if self.quorum_lost.load(Ordering::Relaxed) {
            return Err(BackendError::Unavailable("CLUSTERDOWN The cluster is down".into()));
        }
        // Redirect with certainty only before proposing: once proposed, openraft's
        // ForwardToLeader (sent when a leader steps down and truncates its log) does not prove the
        // entry is lost, since another node may hold it and commit it later.
        let (state, leader) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.state, m.current_leader)
        };
        if state != ServerState::Leader {
            return Err(BackendError::NotLeader(leader.filter(|_| !self.removed())));
        }
        let (reply, rx) = oneshot::channel();
        if self.proposals.send(Proposal { reqs, reply }).is_err() {
            return Err(BackendError::Unavailable("ERR the node is shutting down".into()));
        }
        rx.await.unwrap_or_else(|_| {
            Err(BackendError::Uncertain("ERR the node stopped: the write may or may not have been applied".into()))
        })
    }

    /// Broken on purpose (`broken` feature): replies computed on a copy of the local state and
    /// sent as soon as the entry is proposed, without waiting for its commit.
    async fn ack_before_commit(&self, reqs: Vec<Request>) -> Result<Vec<Reply>, BackendError> {
        if !self.is_leader() {
            return Err(BackendError::NotLeader(self.leader()));
        }
        let mut scratch = crate::sm::StateMachine {
            keyspace: crate::sm::KeySpace::from_image(self.state.read().sm.keyspace.to_image()),
        };
        let replies = reqs.iter().map(|r| scratch.apply(r)).collect();
        let _ = self.raft.client_write_ff(Batch(reqs)).await;
        Ok(replies)
    }

    /// Waits until a read started now may be answered from the local state: this node is the
    /// leader, and has applied everything committed before now.
    pub async fn linearize(&self) -> Result<(), BackendError> {
        self.gate.pass(&self.raft, self.commit_timeout).await
    }

    /// Answers a read-only operation from the local state (call `linearize` first unless stale
    /// reads are wanted).
    pub fn read_local(&self, op: &Op, ctx: Ctx) -> Reply {
        self.state.read().sm.query(op, ctx)
    }

    /// Runs `f` on the applied state (WATCH, the expiry cycle, INFO, DEBUG DIGEST).
    pub fn inspect<R>(&self, f: impl FnOnce(&Applied) -> R) -> R {
        f(&self.state.read())
    }

    /// Whether this node currently believes it is the leader (and still hears from a quorum).
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader && !self.quorum_lost.load(Ordering::Relaxed)
    }

    /// The log index this node's latest snapshot covers (0: none yet).
    pub fn snapshot_index(&self) -> u64 {
        self.raft.metrics().borrow().snapshot.map_or(0, |l| l.index)
    }

    /// Asks Raft for a snapshot of this node's state now (SAVE, BGSAVE). With `wait`, returns
    /// once a snapshot covers everything this node had applied when asked.
    pub async fn snapshot_now(&self, wait: bool) -> Result<(), String> {
        let applied = self.raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
        self.raft.trigger().snapshot().await.map_err(|e| e.to_string())?;
        if !wait {
            return Ok(());
        }
        let mut metrics = self.raft.metrics();
        let covered = async { metrics.wait_for(|m| m.snapshot.map_or(0, |l| l.index) >= applied).await.is_ok() };
        match tokio::time::timeout(Duration::from_secs(300), covered).await {
            Ok(true) => Ok(()),
            Ok(false) => Err("raft stopped".into()),
            Err(_) => Err("the snapshot did not finish within 300 seconds".into()),
        }
    }

    /// Whether this node was removed from the cluster: it then knows of no leader (its last one
    /// may be long gone), and sends clients elsewhere.
    pub fn removed(&self) -> bool {
        self.membership.as_ref().is_some_and(|m| m.standing() == crate::raft::membership::Standing::Removed)
    }

    /// The leader this node knows of (none while it leads without a quorum, or once removed).
    pub fn leader(&self) -> Option<NodeId> {
        if self.removed() {
            return None;
        }
        let leader = self.raft.metrics().borrow().current_leader;
        leader.filter(|&l| !(l == self.my_id && self.quorum_lost.load(Ordering::Relaxed)))
    }

    /// The client address the membership holds for node `id` (the cluster's own network).
    pub fn member_addr(&self, id: NodeId) -> Option<String> {
        self.raft.metrics().borrow().membership_config.membership().get_node(&id).map(|n| n.client.clone())
    }

    /// The client address of node `id`.
    pub fn addr_of(&self, id: NodeId) -> Option<String> {
        self.topology.addr(id)
    }

    /// The cluster as this node sees it now.
    pub fn view(&self) -> ClusterView {
        let m = self.raft.metrics().borrow().clone();
        let lost = self.quorum_lost.load(Ordering::Relaxed);
        let role = match m.state {
            // Like etcd's CheckQuorum: a leader that lost its quorum counts as a follower.
            ServerState::Leader if lost => Role::Follower,
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        };
        let applied = m.last_applied.map_or(0, |l| l.index);
        let voters: std::collections::BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
        let nodes = m
            .membership_config
            .membership()
            .nodes()
            .map(|(&id, node)| {
                let matched = m.replication.as_ref().and_then(|r| r.get(&id).cloned().flatten());
                let offset = if id == self.my_id { applied } else { matched.map_or(0, |l| l.index) };
                let last_ack = self.bus.as_ref().filter(|_| id != self.my_id).and_then(|b| b.since_last_reply(id));
                let connected = match &self.bus {
                    // Only a leader sends to every peer all the time.
                    Some(_) if m.replication.is_some() && id != self.my_id => {
                        last_ack.is_some_and(|t| t < self.peer_timeout)
                    }
                    _ => id == self.my_id || m.replication.is_none() || matched.is_some(),
                };
                let addr = self.topology.addr(id).unwrap_or_else(|| node.client.clone());
                let bus_port = crate::cluster::split_addr(&node.bus).1;
                let last_ack_ms = last_ack.map(|t| t.as_millis() as u64);
                NodeView { id, addr, bus_port, offset, connected, last_ack_ms, voter: voters.contains(&id) }
            })
            .collect();
        ClusterView {
            my_id: self.my_id,
            role,
            leader: m.current_leader.filter(|&l| !(l == self.my_id && lost)),
            term: m.current_term,
            commit_index: applied,
            applied_index: applied,
            last_log_index: m.last_log_index.unwrap_or(0),
            snapshot_index: m.snapshot.map_or(0, |l| l.index),
            nodes,
            catchup: self.catchup.view(role == Role::Leader, applied),
            standing: self.membership.as_ref().map_or("voter", |m| m.standing().name()),
            joint: m.membership_config.membership().get_joint_config().len() > 1,
        }
    }
}

/// Whether a request is a single LPOP/RPOP (the `uncommitted-pop` broken mode's target).
fn is_pop(req: &Request) -> bool {
    matches!(&req.body, crate::sm::Body::Op(Op::List(crate::cmd::lists::ListOp::Pop { .. })))
}

/// Checks, every quarter of `lease`, that a leader still hears from a quorum, and sets
/// `lost` once it has not for longer than `lease`.
async fn watch_quorum(raft: Raft, lost: Arc<AtomicBool>, lease: Duration) {
    let period = lease / 4;
    let mut last_ok = std::time::Instant::now();
    loop {
        tokio::time::sleep(period).await;
        if raft.metrics().borrow().state != ServerState::Leader {
            last_ok = std::time::Instant::now();
            lost.store(false, Ordering::Relaxed);
            continue;
        }
        match tokio::time::timeout(lease, raft.get_read_log_id()).await {
            Ok(Ok(_)) => {
                last_ok = std::time::Instant::now();
                if lost.swap(false, Ordering::Relaxed) {
                    tracing::info!("a quorum answers again: serving as leader");
                }
            }
            Ok(Err(openraft::error::RaftError::Fatal(_))) => return,
            _ => {
                if last_ok.elapsed() > lease && !lost.swap(true, Ordering::Relaxed) {
                    tracing::warn!(?lease, "no quorum: this leader is cut off, answering CLUSTERDOWN");
                }
            }
        }
    }
}

/// Takes the queued requests and proposes them as one log entry, one entry at a time; every
/// requester gets its own slice of the entry's replies. Requests that arrive while an entry is
/// being committed are merged into the next one: many client writes share one append, one flush
/// on every node and one replication round. openraft's core waits for each append's flush anyway,
/// and on the 2-core bench machine one entry at a time beat 2, 4 and 8 in flight (redis-benchmark
/// -c 50 on 3 nodes, SET P1: 18.5k, 17.2k, 14.0k, 10.5k/s; SET P16: 148k, 142k, 123k/s): fewer,
/// fuller entries cost less CPU per write.
async fn propose_loop(
    raft: Raft,
    mut queue: mpsc::UnboundedReceiver<Proposal>,
    commit_timeout: Duration,
    batches: Arc<Batches>,
) {
    while let Some(first) = queue.recv().await {
        let mut sizes = vec![first.reqs.len()];
        let mut senders = vec![first.reply];
        let mut reqs = first.reqs;
        while reqs.len() < MAX_BATCH {
            let Ok(p) = queue.try_recv() else { break };
            sizes.push(p.reqs.len());
            reqs.extend(p.reqs);
            senders.push(p.reply);
        }
        batches.proposals.observe(senders.len() as u64);
        batches.requests.observe(reqs.len() as u64);
        match propose(&raft, reqs, commit_timeout).await {
            Ok(replies) => {
                let mut replies = replies.into_iter();
                for (n, tx) in sizes.into_iter().zip(senders) {
                    let _ = tx.send(Ok(replies.by_ref().take(n).collect()));
                }
            }
            Err(e) => senders.into_iter().for_each(|tx| {
                let _ = tx.send(Err(e.clone()));
            }),
        }
    }
}

/// Proposes one entry and waits for its replies. The wait ends early, with the indeterminate
/// error, when this node stops leading and is no longer a member: a leader that removed itself
/// steps down once its removal commits and then hears from nobody, so its pending writes would
/// wait for the whole commit timeout (and every write queued behind them). A leader deposed by an
/// election stays a member: it keeps waiting, since openraft 0.9 answers its pending writes with
/// their results when it applies them as a follower (a pop's client then gets its element).
async fn propose(raft: &Raft, reqs: Vec<Request>, commit_timeout: Duration) -> Result<Vec<Reply>, BackendError> {
    let mut metrics = raft.metrics();
    let leading = metrics.borrow().state == ServerState::Leader;
    let deposed = async {
        if !leading {
            return std::future::pending().await;
        }
        let changed = metrics
            .wait_for(|m| m.state != ServerState::Leader && m.membership_config.membership().get_node(&m.id).is_none())
            .await;
        let leader = changed.map(|m| m.current_leader);
        match leader {
            Ok(leader) => leader,
            // Raft stopped: the write itself ends with an error.
            Err(_) => std::future::pending().await,
        }
    };
    let written = tokio::select! {
        biased;
        written = tokio::time::timeout(commit_timeout, raft.client_write(Batch(reqs))) => written,
        leader = deposed => return Err(leadership_changed(leader)),
    };
    match written {
        Err(_) => Err(BackendError::Uncertain(format!(
            "ERR no commit confirmed within {} ms: the write may or may not have been applied",
            commit_timeout.as_millis()
        ))),
        Ok(Ok(resp)) => Ok(resp.data.0),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(leadership_changed(f.leader_id)),
        Ok(Err(e)) => Err(BackendError::Uncertain(format!("ERR the write may or may not have been applied: {e}"))),
    }
}

/// The answer to a write whose leader stopped leading before it was confirmed.
fn leadership_changed(leader: Option<NodeId>) -> BackendError {
    BackendError::Uncertain(format!(
        "ERR leadership changed (leader now {}): the write may or may not have been applied",
        leader.map_or("unknown".to_string(), |l| l.to_string())
    ))
}

/// Shares one linearizability check among every read that arrives while none is running:
/// a read waits for the first check that *starts* after it arrived. With a leader lease, a read
/// that arrives while the lease runs passes at once (and a check renews the lease in the
/// background once half of it has gone).
#[derive(Default)]
struct ReadGate {
    state: Mutex<GateState>,
    lease: Option<Arc<Lease>>,
    /// While leading in this term, no read before this log index is applied (see `Node::read_floor`).
    floor: (u64, u64),
}

#[derive(Default)]
struct GateState {
    running: bool,
    waiting: Vec<oneshot::Sender<Result<(), BackendError>>>,
}

impl ReadGate {
    async fn pass(self: &Arc<Self>, raft: &Raft, timeout: Duration) -> Result<(), BackendError> {
        if let Some(lease) = &self.lease {
            if let Some(remaining) = lease_remaining(lease, self.floor, raft) {
                if remaining < lease.duration() / 2 {
                    self.start(raft, timeout, None);
                }
                return Ok(());
            }
        }
        let (tx, rx) = oneshot::channel();
        self.start(raft, timeout, Some(tx));
        rx.await.unwrap_or_else(|_| Err(BackendError::Unavailable("CLUSTERDOWN The cluster is down".into())))
    }

    /// Queues `waiter` (if any) and starts a check unless one is running.
    fn start(
        self: &Arc<Self>,
        raft: &Raft,
        timeout: Duration,
        waiter: Option<oneshot::Sender<Result<(), BackendError>>>,
    ) {
        let start = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.waiting.extend(waiter);
            !std::mem::replace(&mut s.running, true)
        };
        if start {
            tokio::spawn(self.clone().drive(raft.clone(), timeout));
        }
    }

    /// Waits until the start-up log has been applied (at once, past start-up).
    async fn reach_floor(&self, raft: &Raft, timeout: Duration) -> Result<(), BackendError> {
        let (term, applied) = {
            let m = raft.metrics();
            let m = m.borrow();
            (m.current_term, m.last_applied.map_or(0, |l| l.index))
        };
        let (floor_term, floor) = self.floor;
        if term != floor_term || applied >= floor {
            return Ok(());
        }
        match raft.wait(Some(timeout)).applied_index_at_least(Some(floor), "start-up log applied").await {
            Ok(_) => Ok(()),
            Err(_) => Err(BackendError::Unavailable("CLUSTERDOWN The cluster is down".into())),
        }
    }

    async fn drive(self: Arc<Self>, raft: Raft, timeout: Duration) {
        // The first round runs even with nobody waiting (a lease renewal).
        let mut first = true;
        loop {
            let batch = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if s.waiting.is_empty() && !first {
                    s.running = false;
                    return;
                }
                std::mem::take(&mut s.waiting)
            };
            first = false;
            let since = std::time::Instant::now();
            let term = raft.metrics().borrow().current_term;
            let result = match tokio::time::timeout(timeout, raft.ensure_linearizable()).await {
                Ok(Ok(_)) => {
                    // The check's heartbeats were sent after `since`; it answered for the current
                    // vote, so if the term moved on meanwhile this records a lease nobody uses.
                    if let Some(lease) = &self.lease {
                        lease.confirm(term, since);
                    }
                    self.reach_floor(&raft, timeout).await
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                    Err(BackendError::NotLeader(f.leader_id))
                }
                Ok(Err(_)) | Err(_) => Err(BackendError::Unavailable("CLUSTERDOWN The cluster is down".into())),
            };
            for tx in batch {
                let _ = tx.send(result.clone());
            }
        }
    }
}

/// How long this node's lease still runs, if it leads, holds a lease for its current term,
/// has applied its term's first entry (so everything committed before its term too) and the log
/// it started with if it still leads in the term it started with (`floor`).
fn lease_remaining(lease: &Lease, floor: (u64, u64), raft: &Raft) -> Option<Duration> {
    let (term, applied) = {
        let m = raft.metrics();
        let m = m.borrow();
        if m.state != ServerState::Leader {
            return None;
        }
        (m.current_term, m.last_applied?)
    };
    if applied.leader_id.term != term || (term == floor.0 && applied.index < floor.1) {
        return None;
    }
    lease.remaining(term, std::time::Instant::now())
}
