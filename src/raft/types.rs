//! The types openraft is instantiated with: what a log entry carries, what applying it returns,
//! and what the cluster knows about each node.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::resp::Reply;
use crate::sm::Request;

pub use crate::base::{NodeAddr, NodeId};

/// One log entry's payload: the requests proposed together (a batch of client writes, or one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch(pub Vec<Request>);

/// The replies of a batch's requests, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchReply(pub Vec<Reply>);

openraft::declare_raft_types!(
    /// raftis's openraft type configuration.
    pub TypeConfig:
        D = Batch,
        R = BatchReply,
        NodeId = NodeId,
        Node = NodeAddr,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// The Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// A vote.
pub type Vote = openraft::Vote<NodeId>;
/// A snapshot.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// A snapshot's metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeAddr>;
/// The membership stored with the state.
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeAddr>;
/// A storage error.
pub type StorageError = openraft::StorageError<NodeId>;
