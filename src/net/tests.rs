//! Client/server tests of the bus over real 127.0.0.1 sockets, with a fake handler.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{Fatal, RPCError, RaftError};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{
    CommittedLeaderId, EntryPayload, LogId, Membership, RaftNetwork, RaftNetworkFactory, SnapshotMeta,
    StoredMembership, Vote,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;
use crate::raft::types::{Batch, Entry, NodeAddr, TypeConfig};

const CLUSTER: &str = "test-cluster";
/// The server's node id in these tests; the client is node 1.
const SERVER: NodeId = 2;

/// Answers every RPC by echoing the request's vote; the first `slow` calls sleep for a second.
/// As a follower it holds the log up to index `holds` (0: nothing): an AppendEntries whose
/// `prev_log_id` is beyond that conflicts, any other succeeds (and extends what it holds).
#[derive(Default)]
struct Fake {
    calls: AtomicUsize,
    slow: AtomicUsize,
    fail_votes: bool,
    holds: std::sync::atomic::AtomicU64,
    /// How many entries each AppendEntries carried, in order.
    appends: std::sync::Mutex<Vec<usize>>,
}

impl BusHandler for Fake {
    async fn handle(&self, req: RpcRequest) -> RpcResponse {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let slow = self.slow.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if slow {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        match req {
            RpcRequest::Vote(_) if self.fail_votes => RpcResponse::Vote(Err(RaftError::Fatal(Fatal::Stopped))),
            RpcRequest::Vote(r) => {
                RpcResponse::Vote(Ok(VoteResponse { vote: r.vote, vote_granted: true, last_log_id: r.last_log_id }))
            }
            RpcRequest::AppendEntries(r) => {
                self.appends.lock().unwrap().push(r.entries.len());
                let prev = r.prev_log_id.map_or(0, |l| l.index);
                RpcResponse::AppendEntries(Ok(if prev > self.holds.load(Ordering::SeqCst) {
                    AppendEntriesResponse::Conflict
                } else {
                    let last = r.entries.last().map_or(prev, |e| e.log_id.index);
                    self.holds.fetch_max(last, Ordering::SeqCst);
                    AppendEntriesResponse::Success
                }))
            }
            RpcRequest::InstallSnapshot(r) => {
                RpcResponse::InstallSnapshot(Ok(InstallSnapshotResponse { vote: r.vote }))
            }
        }
    }
}

/// A running bus server.
struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// Serves `handler` on `addr` (port 0: any) as node [`SERVER`], accepting nodes 1 and 3.
    async fn start(addr: &str, handler: Arc<Fake>) -> Server {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let config = BusConfig::new(SERVER, CLUSTER, [1, SERVER, 3]);
        let task = tokio::spawn(serve(listener, config, handler, stopped));
        Server { addr, stop, task }
    }

    /// Stops the server and waits until its listener and connections are closed.
    async fn stop(self) -> SocketAddr {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task).await.expect("serve did not stop").unwrap();
        self.addr
    }
}

fn node(addr: SocketAddr) -> NodeAddr {
    NodeAddr { client: "127.0.0.1:6379".into(), bus: addr.to_string() }
}

async fn client(my_id: NodeId, cluster: &str, target: NodeId, addr: SocketAddr) -> BusClient {
    BusNetwork::new(my_id, cluster).new_client(target, &node(addr)).await
}

fn opt(ms: u64) -> RPCOption {
    RPCOption::new(Duration::from_millis(ms))
}

fn vote_req(term: u64) -> VoteRequest<NodeId> {
    VoteRequest::new(Vote::new(term, 1), Some(LogId::new(CommittedLeaderId::new(term - 1, 1), 10)))
}

/// An AppendEntries with a normal and a membership entry (carrying node addresses).
fn append_req() -> AppendEntriesRequest<TypeConfig> {
    let lid = |i| LogId::new(CommittedLeaderId::new(1, 1), i);
    let nodes: BTreeMap<NodeId, NodeAddr> = [(1, node("127.0.0.1:1".parse().unwrap()))].into();
    AppendEntriesRequest {
        vote: Vote::new_committed(1, 1),
        prev_log_id: Some(lid(1)),
        entries: vec![
            Entry { log_id: lid(2), payload: EntryPayload::Normal(Batch(vec![])) },
            Entry {
                log_id: lid(3),
                payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1])], nodes)),
            },
        ],
        leader_commit: Some(lid(2)),
    }
}

#[tokio::test]
async fn request_response_over_one_persistent_connection() {
    let handler = Arc::new(Fake::default());
    let server = Server::start("127.0.0.1:0", handler.clone()).await;
    let network = BusNetwork::new(1, CLUSTER);
    let mut c = network.client(SERVER, &node(server.addr));

    let resp = c.vote(vote_req(5), opt(1000)).await.unwrap();
    assert_eq!(resp.vote, Vote::new(5, 1));
    assert!(resp.vote_granted);
    assert_eq!(resp.last_log_id, vote_req(5).last_log_id);

    handler.holds.store(1, Ordering::SeqCst);
    let resp = c.append_entries(append_req(), opt(1000)).await.unwrap();
    assert_eq!(resp, AppendEntriesResponse::Success);
    assert_eq!(*handler.appends.lock().unwrap(), [0, 2], "a probe without the entries, then the entries");

    let snap = InstallSnapshotRequest {
        vote: Vote::new_committed(4, 1),
        meta: SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), 3)),
            last_membership: StoredMembership::default(),
            snapshot_id: "snap-1".into(),
        },
        offset: 0,
        data: vec![7; 100_000],
        done: true,
    };
    let resp = c.install_snapshot(snap, opt(1000)).await.unwrap();
    assert_eq!(resp.vote, Vote::new_committed(4, 1));

    assert_eq!(handler.calls.load(Ordering::SeqCst), 4);
    assert_eq!(network.idle_conns(SERVER), 1, "one connection, reused");

    // A second client of the same network (openraft makes one per election) reuses it too.
    let mut c2 = network.client(SERVER, &node(server.addr));
    c2.vote(vote_req(6), opt(1000)).await.unwrap();
    assert_eq!(network.idle_conns(SERVER), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_new_stream_probes_before_sending_entries_the_follower_already_holds() {
    let handler = Arc::new(Fake::default());
    let server = Server::start("127.0.0.1:0", handler.clone()).await;
    let network = BusNetwork::new(1, CLUSTER);
    let appends = || handler.appends.lock().unwrap().clone();

    // A follower in step with the new leader: the probe (no entries, prev = the last of them)
    // is accepted, and its answer stands for the request; the entries are never sent.
    handler.holds.store(3, Ordering::SeqCst);
    let mut c = network.client(SERVER, &node(server.addr));
    assert_eq!(c.append_entries(append_req(), opt(1000)).await.unwrap(), AppendEntriesResponse::Success);
    assert_eq!(c.append_entries(append_req(), opt(1000)).await.unwrap(), AppendEntriesResponse::Success);
    assert_eq!(appends(), [0, 0]);

    // A follower that lacks them: the probe conflicts, the full request follows and its answer is
    // returned; from then on this stream sends requests as they are.
    handler.appends.lock().unwrap().clear();
    handler.holds.store(1, Ordering::SeqCst);
    let mut c = network.client(SERVER, &node(server.addr));
    assert_eq!(c.append_entries(append_req(), opt(1000)).await.unwrap(), AppendEntriesResponse::Success);
    assert_eq!(appends(), [0, 2]);
    assert_eq!(c.append_entries(append_req(), opt(1000)).await.unwrap(), AppendEntriesResponse::Success);
    assert_eq!(appends(), [0, 2, 2], "no more probes on this stream");

    // The full request's own answer is what openraft sees (here a conflict at its prev_log_id).
    handler.appends.lock().unwrap().clear();
    handler.holds.store(0, Ordering::SeqCst);
    let mut c = network.client(SERVER, &node(server.addr));
    assert_eq!(c.append_entries(append_req(), opt(1000)).await.unwrap(), AppendEntriesResponse::Conflict);
    assert_eq!(appends(), [0, 2]);
    // A heartbeat (no entries) is never probed.
    let mut c = network.client(SERVER, &node(server.addr));
    let heartbeat = AppendEntriesRequest { entries: vec![], ..append_req() };
    handler.appends.lock().unwrap().clear();
    c.append_entries(heartbeat, opt(1000)).await.unwrap();
    assert_eq!(appends(), [0]);
    server.stop().await;
}

#[tokio::test]
async fn remote_raft_error_is_a_remote_error() {
    let handler = Arc::new(Fake { fail_votes: true, ..Fake::default() });
    let server = Server::start("127.0.0.1:0", handler).await;
    let mut c = client(1, CLUSTER, SERVER, server.addr).await;
    match c.vote(vote_req(2), opt(1000)).await {
        Err(RPCError::RemoteError(e)) => {
            assert_eq!(e.target, SERVER);
            assert_eq!(e.target_node, Some(node(server.addr)));
            assert_eq!(e.source, RaftError::Fatal(Fatal::Stopped));
        }
        other => panic!("expected RemoteError, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn foreign_envelopes_are_refused() {
    let handler = Arc::new(Fake::default());
    let server = Server::start("127.0.0.1:0", handler.clone()).await;

    let cases = [
        (9, CLUSTER, SERVER, "not a known peer"),
        (1, "other-cluster", SERVER, "cluster name mismatch"),
        (1, CLUSTER, 3, "addressed to node 3"),
    ];
    for (from, cluster, to, why) in cases {
        let mut c = client(from, cluster, to, server.addr).await;
        match c.vote(vote_req(2), opt(1000)).await {
            Err(RPCError::Unreachable(e)) => assert!(e.to_string().contains(why), "{e}"),
            other => panic!("expected Unreachable ({why}), got {other:?}"),
        }
    }
    assert_eq!(handler.calls.load(Ordering::SeqCst), 0, "Raft never saw them");

    // The server still serves well-formed peers.
    let mut c = client(1, CLUSTER, SERVER, server.addr).await;
    c.vote(vote_req(2), opt(1000)).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn slow_reply_is_a_timeout_and_never_answers_a_later_request() {
    let handler = Arc::new(Fake::default());
    let server = Server::start("127.0.0.1:0", handler.clone()).await;
    let mut c = client(1, CLUSTER, SERVER, server.addr).await;
    // Warm the connection so the timed-out request runs on a pooled one.
    c.vote(vote_req(2), opt(1000)).await.unwrap();
    handler.slow.store(1, Ordering::SeqCst);

    let start = Instant::now();
    match c.vote(vote_req(3), opt(200)).await {
        Err(RPCError::Timeout(t)) => {
            assert_eq!((t.id, t.target), (1, SERVER));
            assert_eq!(t.action, openraft::RPCTypes::Vote);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    let took = start.elapsed();
    // soft_ttl (3/4 of 200 ms), comfortably before the handler's 1 s.
    assert!(took >= Duration::from_millis(140) && took < Duration::from_millis(600), "{took:?}");

    // The late reply to term 3 must not be taken as the reply to term 4.
    let resp = c.vote(vote_req(4), opt(2000)).await.unwrap();
    assert_eq!(resp.vote, Vote::new(4, 1));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = c.vote(vote_req(5), opt(2000)).await.unwrap();
    assert_eq!(resp.vote, Vote::new(5, 1));
    server.stop().await;
}

#[tokio::test]
async fn client_reconnects_after_server_restart() {
    let handler = Arc::new(Fake::default());
    let server = Server::start("127.0.0.1:0", handler.clone()).await;
    let network = BusNetwork::new(1, CLUSTER);
    let mut c = network.client(SERVER, &node(server.addr));
    c.vote(vote_req(2), opt(1000)).await.unwrap();
    assert_eq!(network.idle_conns(SERVER), 1);

    let addr = server.stop().await;
    let server = Server::start(&addr.to_string(), handler.clone()).await;
    // The pooled connection is dead; the client notices and reconnects within the same call.
    let resp = c.vote(vote_req(3), opt(1000)).await.unwrap();
    assert_eq!(resp.vote, Vote::new(3, 1));
    server.stop().await;
}

#[tokio::test]
async fn down_peer_is_unreachable_then_fails_fast_then_recovers() {
    let handler = Arc::new(Fake::default());
    let server = Server::start("127.0.0.1:0", handler.clone()).await;
    let mut c = client(1, CLUSTER, SERVER, server.addr).await;
    c.vote(vote_req(2), opt(1000)).await.unwrap();
    let addr = server.stop().await;

    // Stale pooled connection, then connection refused.
    match c.vote(vote_req(3), opt(1000)).await {
        Err(RPCError::Unreachable(e)) => assert!(e.to_string().contains("cannot connect"), "{e}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    // Within the fail-fast window the client does not even try.
    match c.vote(vote_req(3), opt(1000)).await {
        Err(RPCError::Unreachable(e)) => assert!(e.to_string().contains("failed recently"), "{e}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }

    let server = Server::start(&addr.to_string(), handler).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match c.vote(vote_req(4), opt(1000)).await {
            Ok(resp) => {
                assert_eq!(resp.vote, Vote::new(4, 1));
                break;
            }
            Err(RPCError::Unreachable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("peer did not come back: {e}"),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn unreachable_peer_fails_quickly() {
    // A port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let mut c = client(1, CLUSTER, SERVER, addr).await;
    let start = Instant::now();
    for _ in 0..4 {
        match c.append_entries(append_req(), opt(5000)).await {
            Err(RPCError::Unreachable(_)) => {}
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
    assert!(start.elapsed() < Duration::from_millis(500), "{:?}", start.elapsed());
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let handler = Arc::new(Fake::default());
    let server = Server::start("127.0.0.1:0", handler.clone()).await;
    let mut good = client(1, CLUSTER, SERVER, server.addr).await;
    good.vote(vote_req(2), opt(1000)).await.unwrap();

    // A well-framed payload that is not an envelope.
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), raw.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "server closes the connection without a reply");

    // A header announcing more than the limit.
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), raw.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0);

    // The established connection is untouched.
    good.vote(vote_req(3), opt(1000)).await.unwrap();
    assert_eq!(handler.calls.load(Ordering::SeqCst), 2);
    server.stop().await;
}

#[tokio::test]
async fn reply_with_another_id_is_rejected() {
    // A broken peer that answers every request with the id of another one.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let env: Envelope = codec::read_frame(&mut stream, defaults::MAX_FRAME).await.unwrap();
        let RpcRequest::Vote(req) = env.body else { panic!("not a vote") };
        let body = RpcResponse::Vote(Ok(VoteResponse { vote: req.vote, vote_granted: true, last_log_id: None }));
        let reply = Reply { id: env.id + 1, addrs: vec![], body };
        codec::write_frame(&mut stream, &reply, defaults::MAX_FRAME).await.unwrap();
    });
    let mut c = client(1, CLUSTER, SERVER, addr).await;
    match c.vote(vote_req(2), opt(1000)).await {
        Err(RPCError::Unreachable(e)) => assert!(e.to_string().contains("protocol error"), "{e}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    peer.await.unwrap();
}
