//! What travels on the bus: request envelopes from the sending node and the replies to them.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};

use crate::base::NodeId;
use crate::raft::types::TypeConfig;

/// One request frame: who sends it, to whom, in which cluster, and the Raft RPC itself.
///
/// The receiver checks `from`, `to` and `cluster` before it hands `body` to Raft, so that a
/// misconfigured node (or one from another cluster) cannot disturb this one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// Chosen by the sender, echoed in the [`Reply`]: a reply is only accepted for the request
    /// with the same id.
    pub id: u64,
    /// The sending node.
    pub from: NodeId,
    /// The node the sender believes it is talking to.
    pub to: NodeId,
    /// The cluster name both nodes must share.
    pub cluster: String,
    /// The client addresses the sender knows (its own included), so that every node learns
    /// what the others announce.
    pub addrs: Vec<crate::cluster::Announce>,
    /// The Raft RPC.
    pub body: RpcRequest,
}

/// A Raft RPC, as openraft hands it to the network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RpcRequest {
    /// Log replication and heartbeats.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// A candidate asking for a vote.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

impl RpcRequest {
    /// The RPC's kind, for errors and logs.
    pub fn rpc_type(&self) -> openraft::RPCTypes {
        match self {
            RpcRequest::AppendEntries(_) => openraft::RPCTypes::AppendEntries,
            RpcRequest::Vote(_) => openraft::RPCTypes::Vote,
            RpcRequest::InstallSnapshot(_) => openraft::RPCTypes::InstallSnapshot,
        }
    }
}

/// One reply frame: the id of the request it answers and the outcome.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    /// The [`Envelope::id`] of the request this answers.
    pub id: u64,
    /// The client addresses the replying node knows.
    pub addrs: Vec<crate::cluster::Announce>,
    /// The outcome.
    pub body: RpcResponse,
}

/// The outcome of a request: Raft's own answer (which may be a Raft error on the receiver), or
/// a refusal of the envelope before Raft saw it.
#[derive(Debug, Serialize, Deserialize)]
pub enum RpcResponse {
    /// Answer to [`RpcRequest::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`RpcRequest::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// Answer to [`RpcRequest::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// The envelope was refused; the receiver closes the connection after sending this.
    Refused(Refusal),
}

/// Why a receiver refused an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The sender's id is not one of the receiver's peers.
    #[error("node {0} is not a known peer")]
    UnknownSender(NodeId),
    /// The envelope names another cluster.
    #[error("cluster name mismatch: this node is in {expected:?}, the sender in {got:?}")]
    WrongCluster {
        /// The receiver's cluster name.
        expected: String,
        /// The sender's.
        got: String,
    },
    /// The envelope is addressed to another node id.
    #[error("envelope addressed to node {got}, but this is node {expected}")]
    WrongTarget {
        /// The receiver's id.
        expected: NodeId,
        /// The id the sender addressed.
        got: NodeId,
    },
}
