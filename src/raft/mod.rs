//! openraft glue: the type configuration, the log store on sled, the state machine adapter with
//! its snapshots, and the node that wires them to the network.

pub mod catchup;
pub mod feed;
pub mod format;
pub mod lease;
pub mod log_store;
pub mod membership;
pub mod node;
pub mod snapshots;
pub mod state_machine;
pub mod types;
