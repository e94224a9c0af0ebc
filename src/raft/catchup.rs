//! How far this node is behind its leader, for people: what the bus sees of the leader's commit
//! index and of incoming snapshots, turned into progress lines while the node catches up (at most
//! one a second, with the closing rate and an ETA), one line once it has, and INFO's figures.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use openraft::ServerState;
use tracing::info;

use super::types::{NodeId, Raft};

/// A follower at most this many entries behind the leader's commit index counts as caught up:
/// a healthy follower under load trails by the one or two entries in flight.
pub const CAUGHT_UP_ENTRIES: u64 = 64;

/// How often the monitor looks at the node's progress.
const POLL: Duration = Duration::from_millis(200);

/// How often, at most, a progress line is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Where a node stands relative to its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchupState {
    /// No leader heard from yet (just started, or between leaders).
    Unknown,
    /// At most [`CAUGHT_UP_ENTRIES`] behind the leader's commit index (or the leader itself).
    CaughtUp,
    /// Further behind: replaying the leader's log.
    CatchingUp,
    /// Receiving a snapshot from the leader.
    ReceivingSnapshot,
}

impl CatchupState {
    /// The name INFO's `raft_catchup_state` shows.
    pub fn name(self) -> &'static str {
        match self {
            CatchupState::Unknown => "unknown",
            CatchupState::CaughtUp => "caught_up",
            CatchupState::CatchingUp => "catching_up",
            CatchupState::ReceivingSnapshot => "receiving_snapshot",
        }
    }
}

/// What INFO shows of this node's catching up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchupView {
    pub state: CatchupState,
    /// The leader's commit index as last heard (this node's own applied index on the leader).
    pub leader_commit: u64,
    /// Entries between what this node applied and the leader's commit index.
    pub entries_behind: u64,
    /// Seconds since this node was last caught up (0 while it is; `None`: never yet).
    pub secs_since_caught_up: Option<u64>,
}

/// A snapshot being received.
#[derive(Debug, Clone, Copy)]
struct Incoming {
    /// Last log index the snapshot covers.
    index: u64,
    /// Bytes received so far.
    bytes: u64,
}

/// One stretch of catching up, from the moment the node was seen behind.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    since: Instant,
    applied_at_start: u64,
    /// Snapshot bytes received during this stretch.
    snapshot_bytes: u64,
    /// Lag and time of the last progress line (for the closing rate).
    last_line: Option<(Instant, u64)>,
}

#[derive(Debug)]
struct Inner {
    /// The leader's commit index from the latest AppendEntries.
    leader_commit: Option<u64>,
    incoming: Option<Incoming>,
    /// Snapshot bytes received before a stretch began (the first chunk can come before the
    /// monitor sees the node behind); the stretch takes them over.
    received_bytes: u64,
    state: CatchupState,
    stretch: Option<Stretch>,
    caught_up_at: Option<Instant>,
    entries_behind: u64,
}

/// A node's catch-up progress: fed by the bus (see [`Catchup::saw_append`],
/// [`Catchup::saw_snapshot_chunk`]) and by Raft's metrics (see [`Catchup::run`]).
#[derive(Debug)]
pub struct Catchup {
    inner: Mutex<Inner>,
}

impl Default for Catchup {
    fn default() -> Self {
        Catchup {
            inner: Mutex::new(Inner {
                leader_commit: None,
                incoming: None,
                received_bytes: 0,
                state: CatchupState::Unknown,
                stretch: None,
                caught_up_at: None,
                entries_behind: 0,
            }),
        }
    }
}

impl Catchup {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An AppendEntries from the leader carried its commit index.
    pub fn saw_append(&self, leader_commit: Option<u64>) {
        if let Some(c) = leader_commit {
            self.lock().leader_commit = Some(c);
        }
    }

    /// A snapshot chunk arrived: `index` is the snapshot's last log index, `end` the chunk's end
    /// offset, `done` whether it was the last chunk.
    pub fn saw_snapshot_chunk(&self, index: u64, end: u64, done: bool) {
        let mut inner = self.lock();
        let prev = inner.incoming.filter(|i| i.index == index).map_or(0, |i| i.bytes);
        let bytes = end.max(prev);
        match inner.stretch.as_mut() {
            Some(s) => s.snapshot_bytes += bytes - prev,
            None => inner.received_bytes += bytes - prev,
        }
        inner.incoming = if done { None } else { Some(Incoming { index, bytes }) };
        if inner.leader_commit.is_none_or(|c| c < index) {
            inner.leader_commit = Some(index);
        }
    }

    /// The figures INFO shows, for a node in `role` that applied up to `applied`.
    pub fn view(&self, leader: bool, applied: u64) -> CatchupView {
        let inner = self.lock();
        let now = Instant::now();
        if leader {
            return CatchupView {
                state: CatchupState::CaughtUp,
                leader_commit: applied,
                entries_behind: 0,
                secs_since_caught_up: Some(0),
            };
        }
        let leader_commit = inner.leader_commit.unwrap_or(0);
        CatchupView {
            state: inner.state,
            leader_commit,
            entries_behind: leader_commit.saturating_sub(applied),
            secs_since_caught_up: match inner.state {
                CatchupState::CaughtUp => Some(0),
                _ => inner.caught_up_at.map(|t| now.duration_since(t).as_secs()),
            },
        }
    }

    /// Watches Raft's progress every 200 ms and logs the catching up: a line when the node is
    /// found behind, a progress line at most once a second, and a line once it has caught up.
    pub async fn run(self: std::sync::Arc<Self>, raft: Raft, my_id: NodeId) {
        let mut metrics = raft.metrics();
        let mut ticker = tokio::time::interval(POLL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if metrics.has_changed().is_err() {
                return;
            }
            let m = metrics.borrow_and_update().clone();
            let applied = m.last_applied.map_or(0, |l| l.index);
            let leads = m.state == ServerState::Leader;
            let has_leader = m.current_leader.is_some_and(|l| l != my_id);
            self.step(Instant::now(), leads, has_leader, applied);
        }
    }

    /// One look at the node's progress (`applied`), at `now`.
    fn step(&self, now: Instant, leads: bool, has_leader: bool, applied: u64) {
        let mut inner = self.lock();
        if leads {
            inner.state = CatchupState::CaughtUp;
            inner.stretch = None;
            inner.caught_up_at = Some(now);
            inner.entries_behind = 0;
            return;
        }
        let Some(commit) = inner.leader_commit.filter(|_| has_leader) else {
            if inner.state == CatchupState::CaughtUp {
                inner.caught_up_at = Some(now);
            }
            return;
        };
        let behind = commit.saturating_sub(applied);
        inner.entries_behind = behind;
        let receiving = inner.incoming;
        if behind <= CAUGHT_UP_ENTRIES && receiving.is_none() {
            if let Some(s) = inner.stretch.take() {
                let secs = now.duration_since(s.since).as_secs_f64();
                let entries = applied.saturating_sub(s.applied_at_start);
                let snapshot = match s.snapshot_bytes {
                    0 => String::new(),
                    n => format!(" and a snapshot of {}", human_bytes(n)),
                };
                info!(
                    "caught up with the leader: {entries} entries{snapshot} in {secs:.1} s \
                     (applied {applied} / leader commit {commit})"
                );
            }
            inner.state = CatchupState::CaughtUp;
            inner.caught_up_at = Some(now);
            inner.received_bytes = 0;
            return;
        }
        inner.state = if receiving.is_some() { CatchupState::ReceivingSnapshot } else { CatchupState::CatchingUp };
        let stretch = match inner.stretch {
            Some(s) => s,
            None => {
                info!("behind the leader: {behind} entries to catch up (applied {applied} / leader commit {commit})");
                let snapshot_bytes = std::mem::take(&mut inner.received_bytes);
                let s =
                    Stretch { since: now, applied_at_start: applied, snapshot_bytes, last_line: Some((now, behind)) };
                inner.stretch = Some(s);
                return;
            }
        };
        let Some((last_at, last_behind)) = stretch.last_line else { return };
        let dt = now.duration_since(last_at);
        if dt < PROGRESS_EVERY {
            return;
        }
        let rate = (last_behind as f64 - behind as f64) / dt.as_secs_f64();
        let eta = if rate > 0.0 { format!("ETA {:.1} s", behind as f64 / rate) } else { "not closing".into() };
        match receiving {
            Some(snap) => info!(
                "catching up: receiving a snapshot up to index {}, {} so far (applied {applied} / leader commit \
                 {commit})",
                snap.index,
                human_bytes(snap.bytes),
            ),
            None => info!(
                "catching up: applied {applied} / leader commit {commit}, {behind} entries behind, closing at \
                 {rate:.0} entries/s, {eta}"
            ),
        }
        if let Some(s) = inner.stretch.as_mut() {
            s.last_line = Some((now, behind));
        }
    }
}

/// `12.3 MB`, `456 kB`, `789 B`.
fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.0} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_far_behind_catches_up_and_says_so() {
        let c = Catchup::default();
        let t0 = Instant::now();
        c.step(t0, false, true, 10);
        assert_eq!(c.view(false, 10).state, CatchupState::Unknown);
        c.saw_append(Some(10_010));
        c.step(t0, false, true, 10);
        let v = c.view(false, 10);
        assert_eq!((v.state, v.entries_behind, v.leader_commit), (CatchupState::CatchingUp, 10_000, 10_010));
        assert_eq!(v.secs_since_caught_up, None);
        c.step(t0 + Duration::from_secs(1), false, true, 5_010);
        assert_eq!(c.view(false, 5_010).entries_behind, 5_000);
        c.step(t0 + Duration::from_secs(2), false, true, 10_000);
        let v = c.view(false, 10_000);
        assert_eq!((v.state, v.entries_behind, v.secs_since_caught_up), (CatchupState::CaughtUp, 10, Some(0)));
    }

    #[test]
    fn a_snapshot_in_flight_is_catching_up_whatever_the_index() {
        let c = Catchup::default();
        let t0 = Instant::now();
        c.saw_append(Some(100));
        c.step(t0, false, true, 100);
        assert_eq!(c.view(false, 100).state, CatchupState::CaughtUp);
        c.saw_snapshot_chunk(90_000, 3_000_000, false);
        c.step(t0, false, true, 100);
        assert_eq!(c.view(false, 100).state, CatchupState::ReceivingSnapshot);
        assert_eq!(c.lock().stretch.map(|s| s.snapshot_bytes), Some(3_000_000));
        c.saw_snapshot_chunk(90_000, 5_000_000, true);
        c.step(t0 + Duration::from_secs(1), false, true, 90_000);
        assert_eq!(c.view(false, 90_000).state, CatchupState::CaughtUp);
    }

    #[test]
    fn the_leader_is_caught_up_and_counts_its_own_applied_index() {
        let c = Catchup::default();
        c.step(Instant::now(), true, false, 7);
        let v = c.view(true, 7);
        assert_eq!((v.state, v.leader_commit, v.entries_behind), (CatchupState::CaughtUp, 7, 0));
    }
}
