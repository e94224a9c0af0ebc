//! Deliberately broken modes, compiled in only with the test-only `broken` cargo feature, so that
//! the chaos harness can prove it catches each class of bug (issue: "proof that it can fail").
//! The mode is chosen at start-up with `RAFTIS_BROKEN`:
//! - `stale-reads`: any node answers reads from its local state, without the leader's check;
//! - `early-ack`: a write is acknowledged once proposed, before it is committed;
//! - `lossy-snapshot`: snapshots leave out the most recently changed keys;
//! - `eternal-lease`: a leader's read lease never runs out (a leader cut off from the others keeps
//!   answering reads from its own state);
//! - `uncommitted-pop`: a pop (LPOP/RPOP) is answered from the leader's state without a log entry,
//!   so the element stays in the list and can be popped again;
//! - `one-step-membership`: a leader counts the voters a membership change removes as gone at
//!   once: while its configuration is joint, a failed AppendEntries to a voter of the old half
//!   only is taken as accepted, so the leader commits with a majority of the new voters alone, as
//!   a change made in one step (without joint consensus) would.

#[cfg(all(feature = "broken", not(debug_assertions)))]
compile_error!("the `broken` feature makes raftis unsafe on purpose: it is for debug test builds only");

/// One deliberate bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    StaleReads,
    EarlyAck,
    LossySnapshot,
    EternalLease,
    UncommittedPop,
    OneStepMembership,
}

/// The broken mode this process runs in, if any (always `None` without the feature).
pub fn mode() -> Option<Mode> {
    #[cfg(feature = "broken")]
    {
        static MODE: std::sync::OnceLock<Option<Mode>> = std::sync::OnceLock::new();
        *MODE.get_or_init(|| {
            let mode = match std::env::var("RAFTIS_BROKEN").as_deref() {
                Ok("stale-reads") => Some(Mode::StaleReads),
                Ok("early-ack") => Some(Mode::EarlyAck),
                Ok("lossy-snapshot") => Some(Mode::LossySnapshot),
                Ok("eternal-lease") => Some(Mode::EternalLease),
                Ok("uncommitted-pop") => Some(Mode::UncommittedPop),
                Ok("one-step-membership") => Some(Mode::OneStepMembership),
                _ => None,
            };
            if let Some(m) = mode {
                tracing::warn!(?m, "RUNNING A DELIBERATELY BROKEN MODE (test builds only)");
            }
            mode
        })
    }
    #[cfg(not(feature = "broken"))]
    {
        None
    }
}

/// Whether `m` is the active broken mode.
pub fn is(m: Mode) -> bool {
    mode() == Some(m)
}

/// `one-step-membership`: the voters the leader's joint configuration is removing.
static LEAVING: std::sync::Mutex<std::collections::BTreeSet<u64>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Records the membership this node holds, as its voter sets (two while it is joint): in
/// `one-step-membership`, the voters of the old set only then count as gone.
pub fn membership_is(voter_sets: &[std::collections::BTreeSet<u64>]) {
    if is(Mode::OneStepMembership) {
        let leaving = match voter_sets {
            [old, .., new] => old.difference(new).copied().collect(),
            _ => Default::default(),
        };
        *LEAVING.lock().unwrap_or_else(|e| e.into_inner()) = leaving;
    }
}

/// In `one-step-membership`: whether voter `id` is being removed, and so no longer waited for.
pub fn counts_as_gone(id: u64) -> bool {
    is(Mode::OneStepMembership) && LEAVING.lock().unwrap_or_else(|e| e.into_inner()).contains(&id)
}
