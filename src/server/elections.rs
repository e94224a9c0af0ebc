//! What this node saw of elections: how many it started and won, and the recent leader changes
//! (term, leader, when), for INFO, `/metrics` and the dashboard.
//!
//! Read from openraft's metrics as they change: a vote for itself in a new term is an election
//! this node started, becoming leader in a new term one it won. Metrics are a watch channel, so a
//! state that lasts less than one update may be missed (an election started and lost within
//! microseconds); the counts are what this node observed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::ServerState;
use tokio::sync::watch;

use super::Shared;

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
    let mut metrics = shared.backend.raft().metrics();
    let (mut started_term, mut won_term, mut seen) = {
        let m = metrics.borrow();
        (m.vote.leader_id.term, 0, None)
    };
    loop {
        {
            let m = metrics.borrow_and_update().clone();
            let term = m.current_term;
            if m.vote.leader_id.node_id == me && m.vote.leader_id.term > started_term {
                started_term = m.vote.leader_id.term;
                shared.elections.started.fetch_add(1, Ordering::Relaxed);
            }
            if m.state == ServerState::Leader && term > won_term {
                won_term = term;
                shared.elections.won.fetch_add(1, Ordering::Relaxed);
            }
            let now = (term, m.current_leader);
            if seen != Some(now) {
                seen = Some(now);
                shared.elections.note(LeaderChange { at_ms: super::unix_millis(), term, leader: m.current_leader });
            }
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}
