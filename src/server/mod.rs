//! The RESP server: the listener, the client limit, the expiry cycle and graceful shutdown.

mod backend;
mod blocked;
mod clients;
pub mod commands;
mod conn;
pub mod elections;
pub mod forward;
pub mod http;
mod memory;
mod proxy;
pub mod pubsub;
mod requeue;
mod sentinel;
mod stats;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

pub use crate::base::unix_millis;
pub use backend::{Backend, BackendError};
pub use commands::{resident_bytes, REDIS_VERSION};

use crate::cmd::keys::KeyOp;
use crate::cmd::Op;
use crate::config::NodeConfig;
use crate::sm::{Body, Request};
use clients::Clients;
pub use stats::Stats;

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    pub backend: Arc<Backend>,
    pub clients: Clients,
    pub stats: Stats,
    pub config: NodeConfig,
    pub started: Instant,
    pub run_id: String,
    /// Clients waiting in a blocking command.
    pub blocked: blocked::Blocked,
    /// This node's pub/sub subscriptions.
    pub pubsub: Arc<pubsub::Hub>,
    /// Connections to the leader for commands a follower relays (PUBLISH).
    pub forwarder: forward::Forwarder,
    /// This node's sentinel: the leader it last followed.
    pub sentinel: sentinel::Sentinel,
    /// Whether this node is over `maxmemory`.
    pub memory: memory::Memory,
    /// LASTSAVE: when this node last took a snapshot (its start before any), in Unix seconds.
    pub last_save: std::sync::atomic::AtomicU64,
    /// The commit index this node knew when it started serving (`/ready` waits to apply it).
    pub start_commit: u64,
    /// The elections this node saw.
    pub elections: elections::Elections,
}

/// How often the expiry cycle looks for expired keys, and how many it deletes per request.
const EXPIRY_PERIOD: Duration = Duration::from_millis(100);
const EXPIRY_BATCH: usize = 256;

/// Binds the HTTP listener `config` asks for, if any: before Raft starts, so that none of the
/// node's own outgoing connections can take its port meanwhile. A default port that is taken
/// leaves the node without HTTP (logged); a port given with --http-port must be free.
pub async fn bind_http(config: &NodeConfig) -> anyhow::Result<Option<TcpListener>> {
    let Some(listen) = &config.http else { return Ok(None) };
    match TcpListener::bind(&listen.addr).await {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if !listen.explicit => {
            warn!(addr = %listen.addr, error = %e, "no HTTP listener: the default HTTP port is taken (set --http-port, 0 for none)");
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("listening for HTTP on {}", listen.addr)),
    }
}

/// Serves clients on `listener` (and HTTP on `http`) until `shutdown` turns true.
pub async fn serve(
    config: NodeConfig,
    listener: TcpListener,
    http: Option<TcpListener>,
    backend: Arc<Backend>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    crate::script::set_limits(config.lua_limits);
    crate::script::set_known_command(|name| commands::lookup(name).is_some());
    let start_commit = backend.view().commit_index;
    let shared = Arc::new(Shared {
        backend,
        clients: Clients::default(),
        stats: Stats::default(),
        config,
        started: Instant::now(),
        run_id: run_id(),
        blocked: blocked::Blocked::default(),
        pubsub: Arc::default(),
        forwarder: forward::Forwarder::default(),
        sentinel: sentinel::Sentinel::default(),
        memory: memory::Memory::default(),
        last_save: (unix_millis() / 1000).into(),
        start_commit,
        elections: elections::Elections::default(),
    });
    shared.backend.feed().set_history(shared.config.watch_history);
    let http = http.map(|listener| tokio::spawn(http::serve(shared.clone(), listener, shutdown.clone())));
    let hub = shared.pubsub.clone();
    shared.backend.set_message_sink(Arc::new(move |messages| hub.deliver(messages)));
    let expiry = tokio::spawn(expiry_cycle(shared.clone(), shutdown.clone()));
    let sentinel = tokio::spawn(sentinel::watch_leader(shared.clone(), shutdown.clone()));
    let memory = tokio::spawn(memory::watch_memory(shared.clone(), shutdown.clone()));
    let saves = tokio::spawn(watch_snapshots(shared.clone(), shutdown.clone()));
    let elections = tokio::spawn(elections::watch(shared.clone(), shutdown.clone()));
    let requeue = (shared.config.pop_delivery == crate::config::PopDelivery::AtLeastOnce)
        .then(|| requeue::start(shared.clone(), shutdown.clone()));
    info!(addr = %listener.local_addr().context("listener address")?, "accepting clients");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (mut stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if shared.clients.count() >= shared.config.maxclients {
                    shared.clients.rejected_connections.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
                    });
                    continue;
                }
                tracing::trace!(%peer, "client connected");
                tokio::spawn(conn::serve(shared.clone(), stream, shutdown.clone()));
            }
            _ = shutdown.changed() => break,
        }
    }
    expiry.abort();
    sentinel.abort();
    memory.abort();
    saves.abort();
    elections.abort();
    if let Some(http) = http {
        http.abort();
    }
    if let Some(requeue) = requeue {
        requeue.abort();
    }
    // Give connections a moment to notice the shutdown and finish their current writes.
    let deadline = Instant::now() + Duration::from_secs(2);
    while shared.clients.count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    info!("server stopped");
    Ok(())
}

/// Notes when this node's snapshot index moves, for LASTSAVE.
async fn watch_snapshots(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut index = shared.backend.snapshot_index();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = shared.backend.snapshot_index();
        if now != index {
            index = now;
            shared.last_save.store(unix_millis() / 1000, Ordering::Relaxed);
        }
    }
}

/// Finds keys whose time has passed and deletes them with ordinary requests, so that expiry
/// travels through the same path as every other write.
async fn expiry_cycle(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(EXPIRY_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        // Only the leader decides that keys expired; followers learn it from the log.
        if !shared.backend.is_leader() {
            continue;
        }
        loop {
            let now = unix_millis();
            let keys = shared.backend.inspect(|a| a.sm.keyspace.expired_keys(now, EXPIRY_BATCH));
            if keys.is_empty() {
                break;
            }
            let full = keys.len() == EXPIRY_BATCH;
            let op =
                Op::Key(KeyOp::DeleteExpired(keys.into_iter().map(|k| bytes::Bytes::from(k.into_vec())).collect()));
            match shared.backend.write(Request { now, seed: 0, body: Body::Op(op) }).await {
                Ok(crate::resp::Reply::Int(n)) => {
                    shared.stats.expired_keys.fetch_add(n as u64, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "expiry request failed");
                    break;
                }
            }
            if !full {
                break;
            }
        }
    }
}

fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(40);
    let state = std::collections::hash_map::RandomState::new();
    while out.len() < 40 {
        let mut h = state.build_hasher();
        h.write_usize(out.len());
        h.write_u128(unix_millis() as u128);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}
