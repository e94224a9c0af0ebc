//! When this node takes its snapshots. openraft's own policy snapshots every N entries at the
//! same log index on every node, so every replica paid the copy, serialization and fsync at the
//! same moment, and one routine snapshot could stall a quorum at once. Here each node snapshots
//! every N entries too, but at its own phase: node of rank r among k snapshots at the indexes
//! `j * N + r * N / k`, so the nodes take turns.

use std::time::Duration;

use tracing::{debug, warn};

use super::types::{NodeId, Raft};

/// The first index above `after` at which the node of rank `rank` among `nodes` snapshots,
/// with a snapshot every `every` entries.
pub fn next_point(after: u64, every: u64, rank: u64, nodes: u64) -> u64 {
    let phase = every * rank / nodes.max(1);
    // The smallest j * every + phase greater than `after`, with j >= 1.
    let j = (after.saturating_sub(phase) / every + 1).max(1);
    j * every + phase
}

/// How often the scheduler looks at the applied index.
const POLL: Duration = Duration::from_millis(50);

/// Triggers a snapshot whenever the applied index passes this node's next point (see
/// [`next_point`]); returns when Raft shuts down.
pub async fn schedule(raft: Raft, every: u64, my_id: NodeId, peers: Vec<NodeId>) {
    let rank = peers.iter().position(|&p| p == my_id).unwrap_or(0) as u64;
    let nodes = peers.len() as u64;
    let mut metrics = raft.metrics();
    // The point of the snapshot last asked for: openraft builds one at a time, and the metrics
    // only show it once it is written.
    let mut asked: Option<u64> = None;
    loop {
        tokio::time::sleep(POLL).await;
        if metrics.has_changed().is_err() {
            return;
        }
        let m = metrics.borrow_and_update().clone();
        let applied = m.last_applied.map_or(0, |l| l.index);
        let snapshot = m.snapshot.map_or(0, |l| l.index);
        let base = snapshot.max(asked.unwrap_or(0));
        let point = next_point(base, every, rank, nodes);
        if applied >= point {
            debug!(applied, point, snapshot, "snapshot point reached");
            if let Err(e) = raft.trigger().snapshot().await {
                warn!(error = %e, "could not trigger a snapshot");
                return;
            }
            asked = Some(applied);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_take_turns() {
        let points = |rank| {
            (0..3).scan(0, move |after, _| {
                *after = next_point(*after, 9000, rank, 3);
                Some(*after)
            })
        };
        assert_eq!(points(0).collect::<Vec<_>>(), [9000, 18000, 27000]);
        assert_eq!(points(1).collect::<Vec<_>>(), [12000, 21000, 30000]);
        assert_eq!(points(2).collect::<Vec<_>>(), [15000, 24000, 33000]);
        // A single node snapshots every N entries, as openraft's policy would.
        assert_eq!(next_point(0, 100, 0, 1), 100);
        assert_eq!(next_point(250, 100, 0, 1), 300);
        // After a snapshot installed at an odd index, the next point of the node's own phase.
        assert_eq!(next_point(12_345, 9000, 1, 3), 21000);
        assert_eq!(next_point(11_999, 9000, 1, 3), 12000);
    }
}
