//! The shared vocabulary every layer uses: node ids and addresses, and the clock. It imports
//! nothing of the crate, so the Raft glue, the transport and the command layer can all depend
//! on it without depending on each other (or on the server).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The Redis version raftis answers as (INFO, HELLO, `redis.REDIS_VERSION` in scripts).
pub const REDIS_VERSION: &str = "7.0.15";

/// A node's id (`--id`).
pub type NodeId = u64;

/// Where a node is reached: its client address (as announced to clients, for MOVED and CLUSTER
/// replies) and its bus address (node-to-node Raft traffic).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeAddr {
    /// `host:port` clients are told to use.
    pub client: String,
    /// `host:port` of the node's bus listener.
    pub bus: String,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.client, self.bus)
    }
}

/// Unix time in milliseconds: the `now` a node stamps on the requests it accepts. The state
/// machine never reads the clock; it uses the stamped time.
pub fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
