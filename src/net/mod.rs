//! The node-to-node transport ("bus") that carries openraft's RPCs between nodes.
//!
//! - [`codec`]: frames (a `u32` big-endian length, then a bincode payload) with a size limit.
//! - [`message`]: the request [`Envelope`] (sender, target, cluster, RPC) and the [`Reply`].
//! - [`BusNetwork`] / [`BusClient`]: openraft's `RaftNetworkFactory` / `RaftNetwork`, over
//!   persistent connections with timeouts and fail-fast backoff.
//! - [`serve`]: the listener that checks envelopes and hands RPCs to a [`BusHandler`] (the
//!   `Raft` handle in production).
//!
//! Wiring:
//!
//! ```text
//! let network = BusNetwork::new(my_id, cluster.clone());
//! let raft = Raft::new(my_id, raft_config, network, log_store, state_machine).await?;
//! let bus = BusConfig::new(my_id, cluster, peer_ids);
//! tokio::spawn(serve(bus_listener, bus, Arc::new(RaftBus { raft, lease }), shutdown_rx));
//! ```
//!
//! (`RaftBus`, in `raft::node`, hands RPCs to the `Raft` handle and refuses votes while the
//! leader lease forbids them.)

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::base::NodeId;

mod client;
pub mod codec;
pub mod message;
mod server;

pub use client::{BusClient, BusError, BusNetwork, ERROR_KINDS as BUS_ERROR_KINDS};
pub use message::{Envelope, Refusal, Reply, RpcRequest, RpcResponse};
pub use server::{serve, BusHandler};

/// The bus's tunables in one place.
pub mod defaults {
    use std::time::Duration;

    /// Largest frame payload sent or accepted (256 MiB). openraft's default snapshot chunk
    /// (3 MiB) and AppendEntries batches (300 entries) are far below it.
    pub const MAX_FRAME: usize = 256 * 1024 * 1024;
    /// After a peer cannot be reached, calls to it fail at once for this long; the window
    /// doubles with each failure in a row...
    pub const FAIL_FAST_MIN: Duration = Duration::from_millis(50);
    /// ...up to this.
    pub const FAIL_FAST_MAX: Duration = Duration::from_millis(500);
    /// Longest interval openraft waits between attempts on an unreachable peer.
    pub const UNREACHABLE_BACKOFF_MAX: Duration = Duration::from_millis(500);
    /// Idle connections kept per peer (replication, heartbeats and votes may run at once).
    pub const IDLE_CONNS_PER_PEER: usize = 4;
}

/// What the bus server accepts: envelopes for this node, in this cluster, from known peers.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// This node's id; envelopes addressed to another id are refused.
    pub my_id: NodeId,
    /// The cluster name; envelopes from another cluster are refused.
    pub cluster: String,
    /// Node ids allowed to send to this node (the node keeps it to its cluster's members).
    pub allowed: Arc<Allowed>,
    /// Largest request frame accepted (and reply frame sent).
    pub max_frame: usize,
    /// Where announced client addresses are learned and relayed from, if anywhere.
    pub topology: Option<Arc<crate::cluster::Topology>>,
}

impl BusConfig {
    /// Accepts envelopes addressed to `my_id` in `cluster` from any of `allowed`, with the
    /// default frame limit.
    pub fn new(my_id: NodeId, cluster: impl Into<String>, allowed: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            my_id,
            cluster: cluster.into(),
            allowed: Arc::new(Allowed::only(allowed)),
            max_frame: defaults::MAX_FRAME,
            topology: None,
        }
    }
}

/// The node ids a bus accepts envelopes from: the members this node knows of, or anyone of the
/// cluster while it knows of none (a joining node, before the leader's first message).
#[derive(Debug, Default)]
pub struct Allowed(std::sync::RwLock<Option<BTreeSet<NodeId>>>);

impl Allowed {
    /// Only these ids.
    pub fn only(ids: impl IntoIterator<Item = NodeId>) -> Allowed {
        Allowed(std::sync::RwLock::new(Some(ids.into_iter().collect())))
    }

    /// Whether `id` may send.
    pub fn contains(&self, id: NodeId) -> bool {
        self.0.read().unwrap_or_else(|e| e.into_inner()).as_ref().is_none_or(|ids| ids.contains(&id))
    }

    /// Replaces the accepted ids.
    pub fn set(&self, ids: BTreeSet<NodeId>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(ids);
    }
}

#[cfg(test)]
mod tests;
