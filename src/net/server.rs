//! The bus listener: accepts peer connections, checks each envelope, hands the RPC to a
//! [`BusHandler`] (Raft, or a fake in tests) and writes the reply back.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::codec::{read_frame, write_frame, FrameError};
use super::message::{Envelope, Refusal, Reply, RpcRequest, RpcResponse};
use super::BusConfig;
use crate::raft::types::TypeConfig;

/// What the bus server hands requests to: the local Raft node in production, a fake in tests.
pub trait BusHandler: Send + Sync + 'static {
    /// Runs one RPC and returns its outcome (a Raft error is an outcome, not a failure).
    fn handle(&self, req: RpcRequest) -> impl Future<Output = RpcResponse> + Send;
}

impl BusHandler for openraft::Raft<TypeConfig> {
    async fn handle(&self, req: RpcRequest) -> RpcResponse {
        match req {
            RpcRequest::AppendEntries(rpc) => RpcResponse::AppendEntries(self.append_entries(rpc).await),
            RpcRequest::Vote(rpc) => RpcResponse::Vote(self.vote(rpc).await),
            RpcRequest::InstallSnapshot(rpc) => RpcResponse::InstallSnapshot(self.install_snapshot(rpc).await),
        }
    }
}

/// Accepts bus connections on `listener` until `shutdown` turns `true` (or its sender is
/// dropped), each connection in its own task; then closes every connection and returns.
///
/// Requests on one connection are handled one after the other, in order. A connection whose
/// envelope is refused gets a [`RpcResponse::Refused`] reply and is closed; a connection that
/// sends a malformed frame is closed. Neither affects other connections.
pub async fn serve<H: BusHandler>(
    listener: TcpListener,
    config: BusConfig,
    handler: Arc<H>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = Arc::new(config);
    let mut conns = JoinSet::new();
    // Handed to each connection task (the loop's own receiver is busy in `wait_for`).
    let conn_shutdown = shutdown.clone();
    tracing::info!(addr = ?listener.local_addr().ok(), node = config.my_id, "bus listening");
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let config = config.clone();
                    let handler = handler.clone();
                    let shutdown = conn_shutdown.clone();
                    conns.spawn(connection(stream, peer, config, handler, shutdown));
                }
                Err(e) => {
                    // Usually EMFILE or a connection reset before accept: keep serving, but
                    // don't spin on a persistent error.
                    tracing::warn!(error = %e, "bus accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    // Every connection task watches `shutdown` too and returns promptly.
    while conns.join_next().await.is_some() {}
    tracing::info!(node = config.my_id, "bus stopped");
}

/// Resolves once `shutdown` is `true`, or its sender is gone (nobody can ask us to stop any
/// more, so stop).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here, not in the caller's future.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Serves one connection until the peer closes it, it misbehaves, or the server shuts down.
async fn connection<H: BusHandler>(
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<BusConfig>,
    handler: Arc<H>,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let mut stream = BufReader::new(stream);
    tokio::select! {
        _ = stopped(&mut shutdown) => {}
        _ = requests(&mut stream, peer, &config, &*handler) => {}
    }
}

/// The request loop of one connection: read, check, handle, reply, in order.
async fn requests<H: BusHandler>(stream: &mut BufReader<TcpStream>, peer: SocketAddr, config: &BusConfig, handler: &H) {
    loop {
        let env: Envelope = match read_frame(stream, config.max_frame).await {
            Ok(env) => env,
            Err(FrameError::Closed) => return,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "bad bus frame, closing connection");
                return;
            }
        };
        if let Err(refusal) = check(config, &env) {
            tracing::warn!(%peer, from = env.from, error = %refusal, "bus envelope refused, closing connection");
            let reply = Reply { id: env.id, addrs: Vec::new(), body: RpcResponse::Refused(refusal) };
            let _ = write_frame(stream, &reply, config.max_frame).await;
            return;
        }
        let addrs = match &config.topology {
            Some(topology) => {
                topology.merge(&env.addrs);
                topology.announcements()
            }
            None => Vec::new(),
        };
        let body = handler.handle(env.body).await;
        let reply = Reply { id: env.id, addrs, body };
        if let Err(e) = write_frame(stream, &reply, config.max_frame).await {
            tracing::debug!(%peer, error = %e, "cannot write bus reply, closing connection");
            return;
        }
    }
}

/// Whether this node accepts `env`: same cluster, addressed to this node, from a known peer.
fn check(config: &BusConfig, env: &Envelope) -> Result<(), Refusal> {
    if env.cluster != config.cluster {
        return Err(Refusal::WrongCluster { expected: config.cluster.clone(), got: env.cluster.clone() });
    }
    if env.to != config.my_id {
        return Err(Refusal::WrongTarget { expected: config.my_id, got: env.to });
    }
    if !config.allowed.contains(env.from) {
        return Err(Refusal::UnknownSender(env.from));
    }
    Ok(())
}
