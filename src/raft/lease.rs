//! Leader lease: lets a leader answer linearizable reads without a round of heartbeats.
//!
//! When a quorum acknowledges this node's leadership of term `T` at some instant `t` (a read
//! check whose heartbeats were all sent after `t`), no other node can become leader before
//! `t + duration`:
//!
//! - every follower that acknowledged refuses votes for openraft's own lease
//!   (`election_timeout_max`, measured from when it received the heartbeat, so after `t`);
//! - this node refuses votes while its lease runs ([`Lease::refuses_votes`]; openraft's leader
//!   does not, so the bus answers vote requests itself then);
//! - a node that restarted has forgotten whom it acknowledged, so it refuses votes for
//!   `election_timeout_max` after it starts.
//!
//! A new leader needs a vote from at least one node of that quorum, so until `t + duration`
//! (with `duration = election_timeout_min`, half of what the followers promise) this node's
//! applied state holds every acknowledged write and a read may be served from it. Every
//! instant here is the monotonic clock, which keeps running while a process is paused.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One node's leader lease, shared by its read path and its bus listener.
#[derive(Debug)]
pub struct Lease {
    duration: Duration,
    /// Votes are refused until then: see the module docs (restart).
    quiet_until: Instant,
    /// The term of the leadership a quorum last acknowledged, and when that lease ends.
    held: Mutex<Option<(u64, Instant)>>,
}

impl Lease {
    /// A lease of `duration` (at most the followers' `election_timeout_max`, `vote_quiet` here).
    pub fn new(duration: Duration, vote_quiet: Duration) -> Lease {
        assert!(duration <= vote_quiet, "a leader's lease must not outlast the followers' promise");
        Lease { duration, quiet_until: Instant::now() + vote_quiet, held: Mutex::new(None) }
    }

    /// Records that a quorum acknowledged this node as leader of `term` at or after `since`.
    pub fn confirm(&self, term: u64, since: Instant) {
        let until = since + self.duration;
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match *held {
            Some((t, u)) if t == term && u >= until => {}
            _ => *held = Some((term, until)),
        }
    }

    /// How long the lease for `term` still runs at `now` (`None`: no valid lease).
    pub fn remaining(&self, term: u64, now: Instant) -> Option<Duration> {
        match *self.held.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((t, until)) if t == term && now < until => Some(until - now),
            // Broken on purpose (`broken` feature): the lease never runs out.
            Some((t, _)) if t == term && crate::broken::is(crate::broken::Mode::EternalLease) => Some(self.duration),
            _ => None,
        }
    }

    /// The lease's full length.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Whether this node must refuse a vote request at `now`: it recently started, or it holds a
    /// lease (of any term) that has not run out.
    pub fn refuses_votes(&self, now: Instant) -> bool {
        if now < self.quiet_until {
            return true;
        }
        matches!(*self.held.lock().unwrap_or_else(|e| e.into_inner()), Some((_, until)) if now < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_runs_for_its_term_only_and_only_for_its_duration() {
        let lease = Lease::new(Duration::from_millis(300), Duration::from_millis(600));
        let t = Instant::now();
        assert_eq!(lease.remaining(1, t), None);
        lease.confirm(3, t);
        assert_eq!(lease.remaining(3, t + Duration::from_millis(100)), Some(Duration::from_millis(200)));
        assert_eq!(lease.remaining(2, t), None, "another term's lease");
        assert_eq!(lease.remaining(3, t + Duration::from_millis(300)), None, "expired");
        // An older confirmation never shortens a newer one of the same term.
        lease.confirm(3, t - Duration::from_millis(50));
        assert_eq!(lease.remaining(3, t + Duration::from_millis(250)), Some(Duration::from_millis(50)));
        // A new term replaces it.
        lease.confirm(4, t - Duration::from_millis(50));
        assert_eq!(lease.remaining(3, t), None);
        assert!(lease.remaining(4, t).is_some());
    }

    #[test]
    fn votes_are_refused_after_start_and_while_a_lease_runs() {
        let lease = Lease::new(Duration::from_millis(300), Duration::from_millis(600));
        let start = Instant::now();
        assert!(lease.refuses_votes(start), "just started: may have acknowledged a leader before a crash");
        let later = start + Duration::from_secs(5);
        assert!(!lease.refuses_votes(later));
        lease.confirm(7, later);
        assert!(lease.refuses_votes(later + Duration::from_millis(299)));
        assert!(!lease.refuses_votes(later + Duration::from_millis(300)));
    }

    #[test]
    #[should_panic(expected = "must not outlast")]
    fn a_lease_longer_than_the_followers_promise_is_refused() {
        let _ = Lease::new(Duration::from_millis(700), Duration::from_millis(600));
    }
}
