//! Follower proxy mode (`--follower-proxy`, on by default): a follower relays the session of a
//! client that is not cluster-aware to the leader, as etcd's members and RedisRaft's
//! follower-proxy do, so that a plain client pointed at any node just works.
//!
//! The whole session moves, not single commands: at the first command this node cannot answer
//! as the leader would, the connection is joined to a connection of its own to the leader, and
//! from then on bytes flow both ways untouched. So pipelines, MULTI/EXEC, WATCH, blocking
//! commands and scripts behave exactly as on the leader (pub/sub stays: see `is_local`), and each round trip costs one
//! more hop. Before it joins, the tunnel replays what the client set up here (its name, RESP3)
//! and names itself a forwarder, so the leader never relays it again (one hop at most, even
//! while nodes disagree about who leads). When this node learns of another leader the tunnel is
//! closed: the client sees a broken connection, as when a Redis primary dies, and reconnects.
//! A session that must move while no leader can be reached (an election, a dead leader still
//! believed to lead) waits up to the commit timeout, then its connection is closed too: a plain
//! client cannot follow MOVED, but it retries after a connection error.
//!
//! A client is cluster-aware once it sends CLUSTER, READONLY, READWRITE or ASKING: it keeps
//! getting MOVED, which it follows by itself.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::forward::FORWARDER_NAME;
use super::Shared;
use crate::base::NodeId;
use crate::resp::{Protocol, Reply};

/// How long one attempt at opening a tunnel may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a tunnel checks that its far end still leads.
const LEADER_CHECK: Duration = Duration::from_millis(100);

/// Whether a command is answered by whichever node receives it (connection state, this node's
/// view): it never opens a tunnel. Pub/sub stays too: messages go through the log and reach
/// subscribers on every node, and a follower relays PUBLISH by itself, so subscriptions stay
/// on the node the client chose, as in Redis Cluster.
pub fn is_local(name: &str) -> bool {
    let family = name.split('|').next().unwrap_or(name);
    matches!(
        family,
        "ping"
            | "echo"
            | "hello"
            | "auth"
            | "select"
            | "quit"
            | "reset"
            | "client"
            | "command"
            | "info"
            | "time"
            | "role"
            | "cluster"
            | "readonly"
            | "readwrite"
            | "asking"
            | "sentinel"
            | "debug"
            | "lastsave"
            | "save"
            | "bgsave"
            | "pubsub"
            | "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "publish"
            | "spublish"
            | "unwatch"
            | "discard"
            | "raft.node"
    ) || matches!(name, "config|get" | "config|help" | "config|resetstat")
}

/// Whether a command marks its client cluster-aware.
pub fn marks_cluster_aware(name: &str) -> bool {
    name.starts_with("cluster") || matches!(name, "readonly" | "readwrite" | "asking")
}

/// What a session takes to the leader: the leader and its address (if known yet), and the
/// commands already read that it must run there, in order.
pub struct Tunnel {
    pub target: Option<(NodeId, String)>,
    pub pending: Vec<Vec<Bytes>>,
}

/// The leader this node knows of (not itself) and the client address to reach it at: the one
/// in the membership (`--peers`, or what a joining node gave: the cluster's own network; inside
/// Docker, the announced address is the host's published port, which a container cannot reach),
/// else the announced one.
pub fn known_leader(shared: &Shared) -> Option<(NodeId, String)> {
    let backend = &shared.backend;
    let leader = backend.leader().filter(|&l| l != backend.id())?;
    Some((leader, backend.member_addr(leader).or_else(|| backend.addr_of(leader))?))
}

/// Where a session that must move ends up.
pub enum Reached {
    /// A set-up connection to the leader.
    Tunnel(NodeId, TcpStream),
    /// This node became the leader meanwhile, or learned that it was removed from the cluster
    /// (it then refuses the commands itself, with CLUSTERDOWN, rather than keep the client
    /// waiting for a leader it will never know).
    Here,
    /// No leader could be reached within the commit timeout (an election that does not end, a
    /// leader that died and is still believed to lead).
    Nobody,
}

/// Opens a tunnel to the leader, waiting out an election or a dead leader for up to the commit
/// timeout.
pub async fn reach_leader(
    shared: &Shared,
    mut target: Option<(NodeId, String)>,
    name: &str,
    proto: Protocol,
) -> Reached {
    let deadline = tokio::time::Instant::now() + shared.config.commit_timeout;
    loop {
        if let Some((leader, addr)) = &target {
            match open(addr, name, proto).await {
                Ok(conn) => return Reached::Tunnel(*leader, conn),
                Err(e) => tracing::debug!(leader, error = %e, "could not open a tunnel to the leader"),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Reached::Nobody;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if shared.backend.is_leader() || shared.backend.removed() {
            return Reached::Here;
        }
        target = known_leader(shared);
    }
}

fn encode(out: &mut BytesMut, args: &[&[u8]]) {
    Reply::Array(args.iter().map(|a| Reply::Bulk(Bytes::copy_from_slice(a))).collect()).encode(Protocol::Resp2, out);
}

/// Connects to the leader and sets the connection up as the client's: a forwarder (never
/// relayed further) with the client's name and protocol. Only the last command of the set-up
/// answers (`CLIENT REPLY ON`'s `+OK`).
pub async fn open(addr: &str, name: &str, proto: Protocol) -> std::io::Result<TcpStream> {
    let setup = async {
        let mut leader = TcpStream::connect(addr).await?;
        leader.set_nodelay(true)?;
        let mut out = BytesMut::new();
        encode(&mut out, &[b"CLIENT", b"REPLY", b"OFF"]);
        encode(&mut out, &[b"CLIENT", b"SETNAME", FORWARDER_NAME.as_bytes()]);
        if !name.is_empty() {
            encode(&mut out, &[b"CLIENT", b"SETNAME", name.as_bytes()]);
        }
        if proto == Protocol::Resp3 {
            encode(&mut out, &[b"HELLO", b"3"]);
        }
        encode(&mut out, &[b"CLIENT", b"REPLY", b"ON"]);
        leader.write_all(&out).await?;
        let mut ok = [0u8; 5];
        leader.read_exact(&mut ok).await?;
        if &ok != b"+OK\r\n" {
            return Err(std::io::Error::other(format!(
                "the leader answered the tunnel's set-up with {:?}",
                String::from_utf8_lossy(&ok)
            )));
        }
        Ok(leader)
    };
    match tokio::time::timeout(OPEN_TIMEOUT, setup).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Sends the commands already read (`pending`, then the unparsed `rest` of the client's
/// input) to the leader, then relays both ways until either side closes, this node learns of
/// another leader, or the server shuts down.
pub async fn relay(
    shared: &Shared,
    client: &mut TcpStream,
    mut conn: TcpStream,
    leader: NodeId,
    pending: Vec<Vec<Bytes>>,
    rest: &[u8],
    mut shutdown: watch::Receiver<bool>,
) {
    let mut out = BytesMut::new();
    for args in &pending {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        encode(&mut out, &args);
    }
    out.extend_from_slice(rest);
    if conn.write_all(&out).await.is_err() {
        return;
    }
    let moved_on = async {
        loop {
            tokio::time::sleep(LEADER_CHECK).await;
            if shared.backend.leader().is_some_and(|l| l != leader) {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(client, &mut conn) => {}
        _ = moved_on => tracing::debug!(leader, "another node leads now: closing a proxied session"),
        _ = shutdown.changed() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_commands_stay_and_the_rest_goes_to_the_leader() {
        for local in [
            "ping",
            "client|setname",
            "cluster|slots",
            "sentinel|masters",
            "config|get",
            "info",
            "hello",
            "subscribe",
            "publish",
        ] {
            assert!(is_local(local), "{local}");
        }
        for remote in ["get", "set", "multi", "exec", "watch", "blpop", "eval", "config|set", "script|load"] {
            assert!(!is_local(remote), "{remote}");
        }
        assert!(marks_cluster_aware("cluster|slots") && marks_cluster_aware("readonly"));
        assert!(!marks_cluster_aware("get"));
    }
}
