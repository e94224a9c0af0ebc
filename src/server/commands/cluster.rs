//! Cluster commands: the topology a cluster client reads (CLUSTER SLOTS/SHARDS/NODES), in
//! which every slot belongs to the current leader.

use bytes::Bytes;

use super::{container, help, node, NodeCommand, Run};
use crate::cluster;
use crate::resp::Reply;
use crate::server::conn::Session;

const CLUSTER_SUBS: &[NodeCommand] = &[
    node!(
        "cluster|help",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "5.0.0",
        Run::Sync(cluster_help),
        "Returns helpful text about the different subcommands"
    ),
    node!(
        "cluster|info",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "3.0.0",
        Run::Sync(cluster_info),
        "Returns information about the state of a node"
    ),
    node!(
        "cluster|keyslot",
        3,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "3.0.0",
        Run::Sync(cluster_keyslot),
        "Returns the hash slot for a key"
    ),
    node!(
        "cluster|myid",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "3.0.0",
        Run::Sync(cluster_myid),
        "Returns the ID of a node"
    ),
    node!(
        "cluster|nodes",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "3.0.0",
        Run::Sync(cluster_nodes),
        "Returns the cluster configuration for a node"
    ),
    node!(
        "cluster|shards",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "7.0.0",
        Run::Sync(cluster_shards),
        "Returns the mapping of cluster slots to shards"
    ),
    node!(
        "cluster|slots",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "3.0.0",
        Run::Sync(cluster_slots),
        "Returns the mapping of cluster slots to nodes"
    ),
];

/// The commands of this family, sorted by name.
#[rustfmt::skip]
pub(super) const COMMANDS: &[NodeCommand] = &[
    node!("cluster", -2, &[], 0, 0, 0, &["@slow"], "cluster", "3.0.0", Run::Sync(cluster), "A container for Redis Cluster commands", CLUSTER_SUBS),
];

fn cluster(s: &mut Session, args: &[Bytes]) -> Reply {
    container(s, args)
}

fn cluster_info(s: &mut Session, _: &[Bytes]) -> Reply {
    Reply::Verbatim(s.shared.backend.view().info_text())
}

fn cluster_nodes(s: &mut Session, _: &[Bytes]) -> Reply {
    Reply::Verbatim(s.shared.backend.view().nodes_text())
}

// Without a leader, say so: a cluster client then asks another node for the topology.
fn cluster_slots(s: &mut Session, _: &[Bytes]) -> Reply {
    let view = s.shared.backend.view();
    match view.leader {
        None => cluster::cluster_down(),
        Some(_) => view.slots(),
    }
}

fn cluster_shards(s: &mut Session, _: &[Bytes]) -> Reply {
    let view = s.shared.backend.view();
    match view.leader {
        None => cluster::cluster_down(),
        Some(_) => view.shards(),
    }
}

fn cluster_myid(s: &mut Session, _: &[Bytes]) -> Reply {
    Reply::bulk(cluster::node_name(s.shared.backend.id()))
}

fn cluster_keyslot(_: &mut Session, args: &[Bytes]) -> Reply {
    Reply::Int(cluster::key_slot(&args[2]) as i64)
}

fn cluster_help(_: &mut Session, _: &[Bytes]) -> Reply {
    help(&[
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "INFO",
        "    Return information about the cluster.",
        "KEYSLOT <key>",
        "    Return the hash slot for <key>.",
        "MYID",
        "    Return the node id.",
        "NODES",
        "    Return cluster configuration seen by node. Output format:",
        "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
        "SHARDS",
        "    Return information about slot range mappings and the nodes associated with them.",
        "SLOTS",
        "    Return information about slots range mappings. Each range is made of:",
        "    start, end, master and replicas IP addresses, ports and ids",
        "HELP",
        "    Print this help.",
    ])
}
