//! What this node saw of elections: how many it started and won, and the recent leader changes
//! (term, leader, when), for INFO, `/metrics` and the dashboard.
//!
//! Read from openraft's metrics every [`PERIOD`] (not at each change: the metrics change with
//! every applied entry): a vote for itself in a term it had not voted for itself in is an
//! election this node started, being leader in a new term one it won. A vote stays until the
//! next term, so only an election superseded within one period can be missed; the counts are
//! what this node observed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::ServerState;
use tokio::sync::watch;

use super::Shared;

/// How often the metrics are read.
const PERIOD: std::time::Duration = std::time::Duration::from_millis(20);

/// Leader changes remembered.
const CHANGES_KEPT: usize = 32;

/// One change of term or leader, as this node saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LeaderChange {
    /// Unix milliseconds.
    pub at_ms: u64,
    pub term: u64,
    /// The leader of that term, once known.
    pub leader: Option<u64>,
}

/// The counters and the recent changes.
#[derive(Debug, Default)]
pub struct Elections {
    pub started: AtomicU64,
    pub won: AtomicU64,
    changes: Mutex<VecDeque<LeaderChange>>,
}

impl Elections {
    /// The recent leader changes, oldest first.
    pub fn changes(&self) -> Vec<LeaderChange> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect()
    }

    fn note(&self, change: LeaderChange) {
        let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        if changes.len() == CHANGES_KEPT {
            changes.pop_front();
        }
        changes.push_back(change);
    }
}

/// Follows the Raft metrics of this node until `shutdown`.
pub async fn watch(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let me = shared.backend.id();
    let metrics = shared.backend.raft().metrics();
    let (mut started_term, mut won_term, mut seen) = (metrics.borrow().vote.leader_id.term, 0, None);
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let (vote, state, term, leader) = {
            let m = metrics.borrow();
            (m.vote.leader_id, m.state, m.current_term, m.current_leader)
        };
        if vote.node_id == me && vote.term > started_term {
            started_term = vote.term;
            shared.elections.started.fetch_add(1, Ordering::Relaxed);
        }
        if state == ServerState::Leader && term > won_term {
            won_term = term;
            shared.elections.won.fetch_add(1, Ordering::Relaxed);
        }
        if seen != Some((term, leader)) {
            seen = Some((term, leader));
            shared.elections.note(LeaderChange { at_ms: super::unix_millis(), term, leader });
        }
    }
}
