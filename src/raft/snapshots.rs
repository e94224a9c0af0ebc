//! When this node takes its snapshots. openraft's own policy snapshots every N entries at the
//! same log index on every node, so every replica paid the copy, serialization and fsync at the
//! same moment, and one routine snapshot could stall a quorum at once. Here each node snapshots
//! every N entries too, but at its own phase: node of rank r among k snapshots at the indexes
//! `j * N + r * N / k`, so the nodes take turns.
//!
//! Entries are not all alike (one may carry a single SET, another a batch of hundreds of HSETs),
//! and sled keeps the entries it was recently given in memory, so the log is bounded in bytes as
//! well: a node also snapshots once the log since its last snapshot holds `B - r * B / 2k` bytes
//! (its own fraction of `B`, `--snapshot-log-mb`, so that the nodes drift apart rather than
//! snapshot together), and after each snapshot it purges the log behind it down to `--log-keep-mb`
//! (openraft itself keeps at most `--snapshot-every` entries there). After a snapshot or a purge
//! the allocator's free memory goes back to the system.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use super::log_store::LogSizes;
use super::types::{NodeId, Raft};

/// When to snapshot and how much log to keep.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Entries between snapshots.
    pub every: u64,
    /// Log bytes since the last snapshot that trigger one (the node of rank r among k waits
    /// for `log_bytes * (2k - r) / 2k`).
    pub log_bytes: u64,
    /// Most log bytes kept behind a snapshot.
    pub keep_bytes: u64,
}

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
/// [`next_point`]) or the log since the last snapshot outgrows this node's byte budget, and
/// purges the log behind a snapshot down to the bytes to keep; returns when Raft shuts down.
pub async fn schedule(raft: Raft, policy: Policy, sizes: Arc<LogSizes>, my_id: NodeId) {
    let every = policy.every;
    // The purge point last asked for (openraft purges in the background, when no replication
    // needs the entries any more).
    let mut purge_asked = 0;
    let mut metrics = raft.metrics();
    // The point of the snapshot last asked for: openraft builds one at a time, and the metrics
    // only show it once it is written.
    let mut asked: Option<u64> = None;
    // The snapshot and purge points after which free memory was last handed back.
    let mut released = (0, 0);
    loop {
        tokio::time::sleep(POLL).await;
        if metrics.has_changed().is_err() {
            return;
        }
        let m = metrics.borrow_and_update().clone();
        // This node's turn among the members it knows now (the membership can change).
        let (rank, nodes) = {
            let members: Vec<NodeId> = m.membership_config.membership().nodes().map(|(&id, _)| id).collect();
            let rank = members.iter().position(|&p| p == my_id).unwrap_or(0) as u64;
            (rank, members.len().max(1) as u64)
        };
        let byte_budget = policy.log_bytes.saturating_mul(2 * nodes - rank.min(nodes)) / (2 * nodes);
        let applied = m.last_applied.map_or(0, |l| l.index);
        let snapshot = m.snapshot.map_or(0, |l| l.index);
        let purged = m.purged.map_or(0, |l| l.index);
        if (snapshot, purged) != released {
            released = (snapshot, purged);
            tokio::task::spawn_blocking(release_free_memory);
        }
        let base = snapshot.max(asked.unwrap_or(0));
        let point = next_point(base, every, rank, nodes);
        let log_bytes = sizes.between(base, applied);
        if applied >= point || (applied > base && log_bytes >= byte_budget) {
            debug!(applied, point, snapshot, log_bytes, "snapshot point reached");
            if let Err(e) = raft.trigger().snapshot().await {
                warn!(error = %e, "could not trigger a snapshot");
                return;
            }
            asked = Some(applied);
        }
        if let Some(through) = sizes.purge_point(snapshot, policy.keep_bytes) {
            if through > purged && through > purge_asked {
                debug!(through, snapshot, "purging the log behind the snapshot down to its byte budget");
                if let Err(e) = raft.trigger().purge_log(through).await {
                    warn!(error = %e, "could not purge the log");
                    return;
                }
                purge_asked = through;
            }
        }
    }
}

/// Hands the allocator's free memory back to the system. A snapshot's image and the log entries
/// a purge drops are large, short-lived allocations spread through the heap; glibc's malloc keeps
/// such free memory in its arenas (it only returns the top of the heap by itself), so without this
/// a node's resident memory stays at its high-water mark. `malloc_trim` returns every free page.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes the arena locks.
    unsafe {
        libc::malloc_trim(0);
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
