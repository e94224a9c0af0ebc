//! The sending side of the bus: openraft's [`RaftNetworkFactory`] and [`RaftNetwork`] over
//! persistent TCP connections, with per-peer fail-fast backoff and a deadline on every RPC.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{RPCTypes, RaftNetwork, RaftNetworkFactory};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use super::codec::{encode_frame, read_frame, FrameError};
use super::defaults;
use super::message::{Envelope, Refusal, Reply, RpcRequest, RpcResponse};
use crate::base::{NodeAddr, NodeId};
use crate::raft::types::TypeConfig;

/// An open bus connection to a peer.
type Conn = BufReader<TcpStream>;

/// The error type openraft expects from `append_entries` and `vote`.
type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, NodeAddr, RaftError<NodeId, E>>;

/// Creates a [`BusClient`] per target for openraft. Clients to the same peer share that
/// peer's idle connections and its fail-fast state, so the short-lived clients openraft makes
/// for each election reuse connections too. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct BusNetwork {
    /// This node's id, sent as [`Envelope::from`].
    my_id: NodeId,
    /// The cluster name, sent as [`Envelope::cluster`].
    cluster: Arc<str>,
    /// Largest frame sent or accepted.
    max_frame: usize,
    /// Per-target connection state.
    peers: Arc<Mutex<HashMap<NodeId, Arc<Peer>>>>,
    /// Source of request ids, unique per sending node.
    next_id: Arc<AtomicU64>,
    /// Local address outgoing connections are bound to (this node's bind address), so that a
    /// peer, or a test's fault-injecting proxy, can tell which node a connection comes from.
    source: Option<std::net::IpAddr>,
    /// Where announced client addresses are learned and relayed from, if anywhere.
    topology: Option<Arc<crate::cluster::Topology>>,
}

impl BusNetwork {
    /// A network for node `my_id` of cluster `cluster`, with the default frame limit.
    pub fn new(my_id: NodeId, cluster: impl Into<String>) -> Self {
        Self {
            my_id,
            cluster: Arc::from(cluster.into()),
            max_frame: defaults::MAX_FRAME,
            peers: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            source: None,
            topology: None,
        }
    }

    /// Relays and learns announced client addresses through `topology`.
    pub fn with_topology(mut self, topology: Arc<crate::cluster::Topology>) -> Self {
        self.topology = Some(topology);
        self
    }

    /// Binds outgoing connections to `ip` (unspecified addresses are ignored).
    pub fn with_source(mut self, ip: std::net::IpAddr) -> Self {
        self.source = (!ip.is_unspecified()).then_some(ip);
        self
    }

    /// Overrides the largest frame this node sends or accepts in a reply.
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// A client for `target` at `node`, sharing this network's state for that peer.
    pub fn client(&self, target: NodeId, node: &NodeAddr) -> BusClient {
        let peer = {
            // A std mutex: held for a map lookup only, never across an await.
            let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            match peers.get(&target) {
                Some(p) if p.addr == node.bus => p.clone(),
                // New peer, or the peer moved: forget the old address's connections.
                _ => {
                    let p = Arc::new(Peer::new(node.bus.clone()));
                    peers.insert(target, p.clone());
                    p
                }
            }
        };
        BusClient {
            my_id: self.my_id,
            target,
            node: node.clone(),
            cluster: self.cluster.clone(),
            max_frame: self.max_frame,
            source: self.source,
            topology: self.topology.clone(),
            peer,
            next_id: self.next_id.clone(),
            probe_first: true,
        }
    }
}

impl BusNetwork {
    /// How long ago `target` last answered one of this node's requests (`None`: never).
    pub fn since_last_reply(&self, target: NodeId) -> Option<Duration> {
        let peer = self.peers.lock().unwrap_or_else(|e| e.into_inner()).get(&target).cloned()?;
        let at = *peer.last_reply.lock().unwrap_or_else(|e| e.into_inner());
        at.map(|t| t.elapsed())
    }
}

impl BusNetwork {
    /// Failed calls to each peer this node has called, by kind (see [`ERROR_KINDS`]).
    pub fn rpc_errors(&self) -> Vec<(NodeId, &'static str, u64)> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = peers
            .iter()
            .flat_map(|(&id, p)| {
                ERROR_KINDS.iter().zip(&p.errors).map(move |(kind, n)| (id, *kind, n.load(Ordering::Relaxed)))
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
impl BusNetwork {
    /// How many idle connections to `target` are pooled.
    pub(super) fn idle_conns(&self, target: NodeId) -> usize {
        let peers = self.peers.lock().unwrap();
        peers.get(&target).map_or(0, |p| p.idle.lock().unwrap().len())
    }
}

impl RaftNetworkFactory<TypeConfig> for BusNetwork {
    type Network = BusClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> BusClient {
        // No connection yet: the first RPC connects.
        self.client(target, node)
    }
}

/// What this node knows about one peer: idle connections and recent connection failures.
struct Peer {
    /// The peer's bus address these connections go to.
    addr: String,
    /// Connections with no request in flight, ready for reuse.
    idle: Mutex<Vec<Conn>>,
    /// The last failure to reach the peer, if it has not been reached since.
    failure: Mutex<Option<Failure>>,
    /// When the peer last answered a request.
    last_reply: Mutex<Option<Instant>>,
    /// Failed calls to the peer, by [`ERROR_KINDS`].
    errors: [AtomicU64; 4],
}

/// The kinds of failed bus calls counted per peer (`/metrics`).
pub const ERROR_KINDS: [&str; 4] = ["unreachable", "network", "timeout", "too_large"];

/// A failure to reach a peer, and how long to fail fast because of it.
struct Failure {
    /// When it happened.
    at: Instant,
    /// How long after `at` calls fail without trying; doubles with each failure in a row.
    wait: Duration,
    /// What went wrong, for the fail-fast error.
    error: String,
}

impl Peer {
    /// A peer at `addr` with no history.
    fn new(addr: String) -> Self {
        Self {
            addr,
            idle: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
            last_reply: Mutex::new(None),
            errors: Default::default(),
        }
    }

    /// An idle connection, if any.
    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Returns a connection whose exchange completed to the pool.
    fn put_idle(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < defaults::IDLE_CONNS_PER_PEER {
            idle.push(conn);
        }
    }

    /// If the peer failed recently: the failure and the time left before the next attempt.
    fn failing(&self) -> Option<(String, Duration)> {
        let failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        let f = failure.as_ref()?;
        let left = (f.at + f.wait).checked_duration_since(Instant::now())?;
        Some((f.error.clone(), left))
    }

    /// Records a failure to reach the peer: fail fast for a while, longer each time in a row.
    /// Idle connections are dropped too: they most likely lead to the same dead peer.
    fn failed(&self, error: &BusError) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        let wait = match failure.as_ref() {
            Some(f) => (f.wait * 2).min(defaults::FAIL_FAST_MAX),
            None => {
                // Once per outage, not once per retry.
                tracing::warn!(addr = %self.addr, %error, "cannot reach peer; retrying");
                defaults::FAIL_FAST_MIN
            }
        };
        *failure = Some(Failure { at: Instant::now(), wait, error: error.to_string() });
        drop(failure);
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Records that the peer answered: no more failing fast.
    fn reached(&self) {
        *self.last_reply.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        if self.failure.lock().unwrap_or_else(|e| e.into_inner()).take().is_some() {
            tracing::info!(addr = %self.addr, "peer reachable again");
        }
    }
}

/// Transport failures, the sources of the [`Unreachable`] and [`NetworkError`] handed to
/// openraft.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to node {target} at {addr}: {source}")]
    Connect {
        /// The peer.
        target: NodeId,
        /// Its bus address.
        addr: String,
        /// The socket error.
        source: io::Error,
    },
    /// The TCP connection was not opened before the RPC's deadline.
    #[error("connecting to node {target} at {addr} timed out")]
    ConnectTimeout {
        /// The peer.
        target: NodeId,
        /// Its bus address.
        addr: String,
    },
    /// The peer failed recently; this call did not try again.
    #[error("node {target} failed recently ({error}); next attempt in {left:?}")]
    FailingFast {
        /// The peer.
        target: NodeId,
        /// The failure that started the wait.
        error: String,
        /// Time left before the next attempt.
        left: Duration,
    },
    /// The connection broke (reset, closed) before the reply arrived.
    #[error("connection to node {target} lost: {source}")]
    Lost {
        /// The peer.
        target: NodeId,
        /// What the connection reported.
        source: FrameError,
    },
    /// The peer refused this node's envelope (unknown sender, other cluster, wrong id).
    #[error("node {target} refused the request: {refusal}")]
    Refused {
        /// The peer.
        target: NodeId,
        /// The peer's reason.
        refusal: Refusal,
    },
    /// The peer's reply could not be understood or does not answer the request.
    #[error("protocol error with node {target}: {reason}")]
    Protocol {
        /// The peer.
        target: NodeId,
        /// What was wrong.
        reason: String,
    },
}

/// How a call failed, before it is shaped into the RPC's own [`RPCError`].
#[derive(Debug)]
enum CallError {
    /// The peer cannot be reached: openraft should back off.
    Unreachable(BusError),
    /// A local failure (the request could not be encoded): openraft may retry at once.
    Network(BusError),
    /// No reply before the deadline.
    Timeout(Duration),
    /// The request does not fit in a frame.
    TooLarge(FrameError),
}

/// openraft's connection to one peer. Each RPC takes a connection from the peer's pool (or
/// opens one), sends one request, reads its reply and returns the connection; a connection is
/// never shared by two requests in flight, and one whose exchange did not complete (error,
/// timeout, or the RPC future dropped by openraft) is closed rather than reused.
pub struct BusClient {
    /// This node's id.
    my_id: NodeId,
    /// The peer's id.
    target: NodeId,
    /// The peer's addresses (for [`RemoteError`]).
    node: NodeAddr,
    /// The cluster name.
    cluster: Arc<str>,
    /// Largest frame sent or accepted.
    max_frame: usize,
    /// The peer's shared state.
    peer: Arc<Peer>,
    /// Source of request ids.
    next_id: Arc<AtomicU64>,
    /// Local address to connect from.
    source: Option<std::net::IpAddr>,
    /// Where announced client addresses are learned and relayed from, if anywhere.
    topology: Option<Arc<crate::cluster::Topology>>,
    /// Whether an AppendEntries is first sent without its entries (see [`Self::probe`]): true for
    /// a new replication stream until the peer turns out to lack what it is sent.
    probe_first: bool,
}

impl BusClient {
    /// Sends `body` and waits, at most `ttl`, for the reply to it (of the same kind).
    async fn call(&self, body: RpcRequest, ttl: Duration) -> Result<RpcResponse, CallError> {
        let deadline = Instant::now() + ttl;
        let kind = body.rpc_type();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let addrs = self.topology.as_ref().map(|t| t.announcements()).unwrap_or_default();
        let envelope =
            Envelope { id, from: self.my_id, to: self.target, cluster: self.cluster.to_string(), addrs, body };
        let frame = encode_frame(&envelope, self.max_frame).map_err(|e| match e {
            FrameError::TooLarge { .. } => CallError::TooLarge(e),
            e => CallError::Network(self.protocol(format!("cannot encode request: {e}"))),
        })?;

        if let Some((error, left)) = self.peer.failing() {
            return Err(CallError::Unreachable(BusError::FailingFast { target: self.target, error, left }));
        }

        // A pooled connection may have died while idle (the peer restarted): on an I/O error
        // before any reply, retry once on a fresh connection. Resending is harmless: Raft RPCs
        // are idempotent.
        if let Some(conn) = self.peer.take_idle() {
            match timeout_at(deadline, exchange(conn, &frame, self.max_frame)).await {
                Err(_) => return Err(CallError::Timeout(ttl)),
                Ok(Ok((conn, reply))) => return self.finish(conn, reply, id, kind),
                Ok(Err(FrameError::Io(_) | FrameError::Closed)) => {
                    tracing::debug!(target = self.target, "stale bus connection, reconnecting");
                }
                Ok(Err(e)) => return Err(self.unreachable(self.protocol(e.to_string()))),
            }
        }

        let conn = match timeout_at(deadline, connect(&self.peer.addr, self.source)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => {
                return Err(self.unreachable(BusError::Connect {
                    target: self.target,
                    addr: self.peer.addr.clone(),
                    source,
                }))
            }
            Err(_) => {
                return Err(
                    self.unreachable(BusError::ConnectTimeout { target: self.target, addr: self.peer.addr.clone() })
                )
            }
        };
        match timeout_at(deadline, exchange(conn, &frame, self.max_frame)).await {
            Err(_) => Err(CallError::Timeout(ttl)),
            Ok(Ok((conn, reply))) => self.finish(conn, reply, id, kind),
            Ok(Err(source @ (FrameError::Io(_) | FrameError::Closed))) => {
                Err(self.unreachable(BusError::Lost { target: self.target, source }))
            }
            Ok(Err(e)) => Err(self.unreachable(self.protocol(e.to_string()))),
        }
    }

    /// Checks that `reply` answers request `id` of kind `kind`; if so the connection goes back
    /// to the pool, otherwise it is dropped (closed).
    fn finish(&self, conn: Conn, reply: Reply, id: u64, kind: RPCTypes) -> Result<RpcResponse, CallError> {
        if reply.id != id {
            return Err(
                self.unreachable(self.protocol(format!("reply to request {} received for request {id}", reply.id)))
            );
        }
        let got = match &reply.body {
            RpcResponse::Refused(refusal) => {
                return Err(self.unreachable(BusError::Refused { target: self.target, refusal: refusal.clone() }));
            }
            RpcResponse::AppendEntries(_) => RPCTypes::AppendEntries,
            RpcResponse::Vote(_) => RPCTypes::Vote,
            RpcResponse::InstallSnapshot(_) => RPCTypes::InstallSnapshot,
        };
        if got != kind {
            return Err(self.unreachable(self.protocol(format!("{got} reply to a {kind} request"))));
        }
        if let Some(topology) = &self.topology {
            topology.merge(&reply.addrs);
        }
        self.peer.reached();
        self.peer.put_idle(conn);
        Ok(reply.body)
    }

    /// Records `error` as a failure to reach the peer. Replies that make no sense count too: a
    /// peer running an incompatible version will not improve by being retried at once.
    fn unreachable(&self, error: BusError) -> CallError {
        self.peer.failed(&error);
        CallError::Unreachable(error)
    }

    /// A protocol error with this peer.
    fn protocol(&self, reason: String) -> BusError {
        BusError::Protocol { target: self.target, reason }
    }

    /// Shapes a failed call into the RPC's error type. `entries` is the AppendEntries batch size,
    /// used to ask openraft for smaller batches when a request does not fit in a frame.
    fn rpc_error<E: std::error::Error>(
        &self,
        err: CallError,
        action: RPCTypes,
        entries: Option<usize>,
    ) -> RPCError<NodeId, NodeAddr, E> {
        let kind = match err {
            CallError::Unreachable(_) => 0,
            CallError::Network(_) => 1,
            CallError::Timeout(_) => 2,
            CallError::TooLarge(_) => 3,
        };
        self.peer.errors[kind].fetch_add(1, Ordering::Relaxed);
        match err {
            CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Network(e) => RPCError::Network(NetworkError::new(&e)),
            // openraft gives AppendEntries one heartbeat to complete, whatever its size: a batch of
            // many (coalesced, large) entries that cannot be sent and flushed in time would be
            // retried unchanged forever. Asking for half as many entries makes it converge.
            CallError::Timeout(_) if entries.is_some_and(|n| n > 1) => {
                RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint((entries.unwrap_or(2) as u64 / 2).max(1)))
            }
            CallError::Timeout(timeout) => {
                RPCError::Timeout(Timeout { action, id: self.my_id, target: self.target, timeout })
            }
            CallError::TooLarge(e) => match entries {
                Some(n) => RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint((n as u64 / 2).max(1)).with_source_error(&e),
                ),
                None => RPCError::Network(NetworkError::new(&e)),
            },
        }
    }

    /// A Raft error returned by the peer.
    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, NodeAddr, E> {
        RPCError::RemoteError(RemoteError::new_with_node(self.target, self.node.clone(), e))
    }

    /// The error for a reply of the wrong kind (already ruled out by [`Self::finish`]).
    fn mismatch<E: std::error::Error>(&self) -> RPCError<NodeId, NodeAddr, E> {
        RPCError::Network(NetworkError::new(&self.protocol("reply of the wrong kind".into())))
    }
}

impl BusClient {
    /// A new leader does not know how much of its log a follower holds: openraft finds out by
    /// sending batches of up to `max_payload_entries` entries at points of a binary search, every
    /// one of which a follower that was in step already has. With large entries (pipelined MSETs)
    /// that is megabytes per step, read, encoded, sent and decoded for nothing: it held up a new
    /// leader's first commit by 300-700 ms after a failover on a loaded cluster. So a new stream
    /// first asks with the entries left out, `prev_log_id` set to the last of them: "do you hold
    /// this entry?". A follower that does accepts it exactly as it would accept the full request
    /// (by Raft's log matching property it then holds every entry before it too, and openraft's
    /// follower skips entries it already holds; what it may commit is bounded by that same last
    /// log id either way), and the answer stands for the full request. A follower that does not
    /// answers `Conflict` (after dropping its entries from that index on, as the full request
    /// would have: they conflict with the leader's log, so none of them is committed); the full
    /// request then follows, and the stream stops probing: from then on the follower is being
    /// sent entries it lacks. `Ok(None)`: send the full request.
    async fn probe(
        &mut self,
        rpc: &AppendEntriesRequest<TypeConfig>,
        deadline: Instant,
    ) -> Result<Option<AppendEntriesResponse<NodeId>>, RpcErr> {
        let probe = AppendEntriesRequest {
            vote: rpc.vote,
            prev_log_id: rpc.entries.last().map(|e| e.log_id),
            leader_commit: rpc.leader_commit,
            entries: Vec::new(),
        };
        match self.send_append(probe, deadline).await? {
            answer @ (AppendEntriesResponse::Success | AppendEntriesResponse::HigherVote(_)) => {
                tracing::debug!(target = self.target, entries = rpc.entries.len(), "probe: the follower holds them");
                Ok(Some(answer))
            }
            AppendEntriesResponse::Conflict | AppendEntriesResponse::PartialSuccess(_) => {
                tracing::debug!(target = self.target, "probe: the follower lacks them; no more probes on this stream");
                self.probe_first = false;
                Ok(None)
            }
        }
    }

    /// Sends one AppendEntries and waits for its answer until `deadline`.
    async fn send_append(
        &self,
        rpc: AppendEntriesRequest<TypeConfig>,
        deadline: Instant,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let entries = rpc.entries.len();
        let ttl = deadline.saturating_duration_since(Instant::now());
        match self.call(RpcRequest::AppendEntries(rpc), ttl).await {
            Ok(RpcResponse::AppendEntries(Ok(resp))) => Ok(resp),
            Ok(RpcResponse::AppendEntries(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.mismatch()),
            Err(e) => Err(self.rpc_error(e, RPCTypes::AppendEntries, Some(entries))),
        }
    }
}

impl RaftNetwork<TypeConfig> for BusClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        // `soft_ttl`: give up ourselves, with a proper Timeout and a closed connection, before
        // openraft drops the call at `hard_ttl`.
        let deadline = Instant::now() + option.soft_ttl();
        let target = self.target;
        let sent = async {
            if self.probe_first && !rpc.entries.is_empty() {
                if let Some(answer) = self.probe(&rpc, deadline).await? {
                    return Ok(answer);
                }
            }
            self.send_append(rpc, deadline).await
        }
        .await;
        if sent.is_err() && crate::broken::counts_as_gone(target) {
            // Broken on purpose (`broken` feature): a voter on its way out is not waited for.
            return Ok(AppendEntriesResponse::Success);
        }
        sent
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        match self.call(RpcRequest::InstallSnapshot(rpc), option.soft_ttl()).await {
            Ok(RpcResponse::InstallSnapshot(Ok(resp))) => Ok(resp),
            Ok(RpcResponse::InstallSnapshot(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.mismatch()),
            Err(e) => Err(self.rpc_error(e, RPCTypes::InstallSnapshot, None)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        match self.call(RpcRequest::Vote(rpc), option.soft_ttl()).await {
            Ok(RpcResponse::Vote(Ok(resp))) => Ok(resp),
            Ok(RpcResponse::Vote(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.mismatch()),
            Err(e) => Err(self.rpc_error(e, RPCTypes::Vote, None)),
        }
    }

    /// After [`Unreachable`], openraft waits these intervals before trying the peer again:
    /// doubling from [`defaults::FAIL_FAST_MIN`] up to [`defaults::UNREACHABLE_BACKOFF_MAX`],
    /// so a restarted follower is picked up again within half a second or so.
    fn backoff(&self) -> Backoff {
        Backoff::new(backoff_intervals())
    }
}

/// The intervals of [`BusClient::backoff`].
fn backoff_intervals() -> impl Iterator<Item = Duration> + Send + 'static {
    std::iter::successors(Some(defaults::FAIL_FAST_MIN), |d| Some((*d * 2).min(defaults::UNREACHABLE_BACKOFF_MAX)))
}

/// Opens a bus connection to `addr`, from `source` when given.
async fn connect(addr: &str, source: Option<std::net::IpAddr>) -> io::Result<Conn> {
    let stream = match source {
        None => TcpStream::connect(addr).await?,
        Some(ip) => {
            let target = tokio::net::lookup_host(addr)
                .await?
                .find(|a| a.is_ipv4() == ip.is_ipv4())
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for {addr}")))?;
            let socket = if ip.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
            socket.bind(std::net::SocketAddr::new(ip, 0))?;
            socket.connect(target).await?
        }
    };
    // Raft RPCs are small request/reply exchanges: Nagle would only add latency.
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// Sends one encoded request frame on `conn` and reads the reply frame.
///
/// Not cancel-safe by design: `conn` is moved in, so if this future is dropped part-way the
/// connection is dropped (closed) with it, and a late reply can never be read by a later
/// request.
async fn exchange(mut conn: Conn, frame: &[u8], max: usize) -> Result<(Conn, Reply), FrameError> {
    conn.get_mut().write_all(frame).await?;
    let reply = read_frame(&mut conn, max).await?;
    Ok((conn, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let got: Vec<_> = backoff_intervals().take(6).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(got, vec![ms(50), ms(100), ms(200), ms(400), ms(500), ms(500)]);
    }

    #[test]
    fn fail_fast_window_doubles_and_resets() {
        let peer = Peer::new("127.0.0.1:1".into());
        assert!(peer.failing().is_none());
        let err = BusError::Protocol { target: 1, reason: "x".into() };
        peer.failed(&err);
        let (_, left) = peer.failing().unwrap();
        assert!(left <= defaults::FAIL_FAST_MIN);
        for _ in 0..10 {
            peer.failed(&err);
        }
        let (msg, left) = peer.failing().unwrap();
        assert!(left > defaults::FAIL_FAST_MIN && left <= defaults::FAIL_FAST_MAX);
        assert!(msg.contains("protocol error"), "{msg}");
        peer.reached();
        assert!(peer.failing().is_none());
    }
}
