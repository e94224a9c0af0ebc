//! Per-key linearizability of the register workload (GET, SET, INCR, compare-and-set), and the
//! shrinking of a failing key's history to a small window that still fails on its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::linear::{self, Event, Linearizable, Model, NEVER};
use super::{Anomaly, Verdict};
use crate::history::{Call, Op, Outcome, Ret};

/// The name of the workload this checker reads.
pub const WORKLOAD: &str = "register";

/// A register holding an integer or nil. The state is `None` when unknown: a window cut out of
/// the middle of a history starts from any state, so a window that fails proves a violation.
#[derive(Debug, Clone, Copy)]
pub struct Register {
    /// Start from an unknown state instead of nil.
    pub any_start: bool,
}

impl Model for Register {
    type State = Option<Option<i64>>;
    type Input = Call;
    type Output = Ret;

    fn init(&self) -> Self::State {
        if self.any_start {
            None
        } else {
            Some(None)
        }
    }

    fn step(&self, state: &Self::State, input: &Call, output: Option<&Ret>) -> Option<Self::State> {
        let known = |v: Option<i64>| Some(Some(v));
        match (input, output) {
            (Call::Read, Some(Ret::Value(v))) => match state {
                None => known(*v),
                Some(s) => (s == v).then_some(*state),
            },
            (Call::Read, _) => Some(*state),
            (Call::Write { value }, _) => known(Some(*value)),
            (Call::Incr, Some(Ret::Value(Some(n)))) => match state {
                None => known(Some(*n)),
                Some(s) => (s.unwrap_or(0) + 1 == *n).then_some(Some(Some(*n))),
            },
            (Call::Incr, Some(_)) => None,
            (Call::Incr, None) => Some(state.map(|s| Some(s.unwrap_or(0) + 1))),
            (Call::Cas { expect, known: k, new }, Some(_)) => match state {
                None => known(Some(*new)),
                Some(s) => (*k && s == expect).then_some(Some(Some(*new))),
            },
            // Indeterminate: applied if it could apply here; "not applied" is the same as being
            // linearized last, which the search also tries.
            (Call::Cas { expect, known: k, new }, None) => match state {
                None => Some(None),
                Some(s) if !*k || s == expect => known(Some(*new)),
                Some(_) => Some(*state),
            },
            _ => None,
        }
    }
}

/// The events the linearizability search sees for one key's operations: acknowledged ones, and
/// indeterminate writes (returning at infinity). Failed operations did not happen; an
/// indeterminate read says nothing.
pub fn events(ops: &[&Op]) -> Vec<Event<Call, Ret>> {
    ops.iter()
        .filter(|o| match o.outcome {
            Outcome::Ok => true,
            Outcome::Info => o.call != Call::Read,
            Outcome::Fail => false,
        })
        .map(|o| Event {
            input: o.call.clone(),
            output: if o.outcome == Outcome::Ok { o.ret.clone() } else { None },
            call: o.invoke,
            ret: if o.outcome == Outcome::Ok { o.complete } else { NEVER },
            id: o.index,
        })
        .collect()
}

/// Failing keys whose history is shrunk to a window (shrinking costs many searches).
const MAX_SHRUNK: usize = 5;

/// Checks every key of the register workload in `history`, spending at most `budget` in all
/// (a key not decided in time is reported as unknown).
pub fn check(history: &[Op], budget: Duration) -> Verdict {
    let ops: Vec<&Op> = history.iter().filter(|o| o.workload == WORKLOAD).collect();
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for o in &ops {
        by_key.entry(o.key.as_str()).or_default().push(o);
    }
    let deadline = Instant::now() + budget;
    let mut anomalies = Vec::new();
    let mut undecided = Vec::new();
    for (key, key_ops) in &by_key {
        let evs = events(key_ops);
        match linear::check(&Register { any_start: false }, &evs, deadline) {
            Linearizable::Yes => {}
            Linearizable::Unknown => undecided.push(key.to_string()),
            Linearizable::No { .. } if anomalies.len() >= MAX_SHRUNK => anomalies.push(Anomaly {
                kind: "nonlinearizable".into(),
                key: key.to_string(),
                detail: format!("key {key}: no linearization of its {} operations (not shrunk)", evs.len()),
                ops: Vec::new(),
            }),
            Linearizable::No { .. } => {
                let window = shrink(&evs, Instant::now() + Duration::from_secs(20));
                let ids: std::collections::BTreeSet<usize> = window.events.iter().map(|e| e.id).collect();
                let window_ops: Vec<Op> =
                    key_ops.iter().filter(|o| ids.contains(&o.index)).map(|o| (*o).clone()).collect();
                anomalies.push(Anomaly {
                    kind: "nonlinearizable".into(),
                    key: key.to_string(),
                    detail: format!(
                        "key {key}: no linearization of its {} operations; these {} alone (starting from {}) \
                         already have none",
                        evs.len(),
                        window_ops.len(),
                        if window.any_start { "any value" } else { "nil" }
                    ),
                    ops: window_ops,
                });
            }
        }
    }
    let notes = if undecided.is_empty() {
        Vec::new()
    } else {
        vec![format!("{} key(s) not decided within the time bound: {}", undecided.len(), undecided.join(" "))]
    };
    Verdict::new(WORKLOAD, &ops, anomalies, !undecided.is_empty(), notes)
}

/// A part of a failing history that fails by itself.
pub struct Window {
    pub events: Vec<Event<Call, Ret>>,
    /// Whether it fails from any initial value (else from nil, the start of the key).
    pub any_start: bool,
}

fn fails(events: &[Event<Call, Ret>], any_start: bool, deadline: Instant) -> bool {
    matches!(linear::check(&Register { any_start }, events, deadline), Linearizable::No { .. })
}

/// Shrinks a non-linearizable history to a small window that is non-linearizable by itself.
///
/// Both cuts keep the verdict sound. The end: the history of the operations invoked before some
/// time is a prefix, and a non-linearizable prefix makes the whole history non-linearizable.
/// The start: at a quiescent point (every determinate operation invoked before it has returned)
/// the operations before it precede all later ones, so if the rest fails from *any* state the
/// whole fails; indeterminate operations invoked earlier are kept, since they may land later.
pub fn shrink(events: &[Event<Call, Ret>], deadline: Instant) -> Window {
    let mut sorted: Vec<Event<Call, Ret>> = events.to_vec();
    sorted.sort_by_key(|e| (e.call, e.id));
    // Shortest failing prefix (failing is monotone in the prefix length).
    let (mut lo, mut hi) = (1, sorted.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails(&sorted[..mid], false, deadline) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    sorted.truncate(hi);
    // Latest quiescent start that still fails from any state.
    let mut max_ret = 0;
    let mut cuts = Vec::new();
    for (j, e) in sorted.iter().enumerate() {
        if j > 0 && max_ret < e.call {
            cuts.push(j);
        }
        if e.ret != NEVER {
            max_ret = max_ret.max(e.ret);
        }
    }
    for &j in cuts.iter().rev().take(200) {
        let window: Vec<Event<Call, Ret>> =
            sorted.iter().enumerate().filter(|(i, e)| *i >= j || e.ret == NEVER).map(|(_, e)| e.clone()).collect();
        if fails(&window, true, deadline) {
            return Window { events: window, any_start: true };
        }
    }
    Window { events: sorted, any_start: false }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testing::{indexed, op};
    use crate::checker::Validity;

    fn reg(process: usize, call: Call, outcome: Outcome, ret: Option<Ret>, invoke: u64, complete: u64) -> Op {
        op(WORKLOAD, process, "k", call, outcome, ret, invoke, complete)
    }
    fn read(p: usize, v: Option<i64>, t0: u64, t1: u64) -> Op {
        reg(p, Call::Read, Outcome::Ok, Some(Ret::Value(v)), t0, t1)
    }
    fn write(p: usize, v: i64, outcome: Outcome, t0: u64, t1: u64) -> Op {
        let ret = (outcome == Outcome::Ok).then_some(Ret::Done);
        reg(p, Call::Write { value: v }, outcome, ret, t0, t1)
    }
    fn verdict(ops: Vec<Op>) -> Verdict {
        check(&indexed(ops), Duration::from_secs(10))
    }

    #[test]
    fn a_good_history_passes() {
        let v = verdict(vec![
            write(0, 1, Outcome::Ok, 0, 10),
            read(1, None, 1, 2),
            read(2, Some(1), 5, 6),
            reg(3, Call::Incr, Outcome::Ok, Some(Ret::Value(Some(2))), 11, 14),
            reg(1, Call::Cas { expect: Some(2), known: true, new: 9 }, Outcome::Ok, Some(Ret::Done), 15, 20),
            read(0, Some(9), 21, 22),
            // An indeterminate write seen later, and a failed one never seen.
            write(2, 5, Outcome::Info, 23, 24),
            write(3, 6, Outcome::Fail, 23, 24),
            read(0, Some(9), 25, 26),
            read(1, Some(5), 30, 31),
        ]);
        assert_eq!(v.validity, Validity::Valid, "{v:?}");
        assert_eq!((v.counts.ok, v.counts.fail, v.counts.info), (8, 1, 1));
    }

    #[test]
    fn a_stale_read_is_caught_and_shrunk() {
        let mut ops = Vec::new();
        let mut t = 0;
        // A long good prefix on the key...
        for v in 1..30 {
            ops.push(write(0, v, Outcome::Ok, t, t + 2));
            ops.push(read(1, Some(v), t + 3, t + 4));
            t += 5;
        }
        // ...then a write completes and a later read returns the old value.
        ops.push(write(0, 100, Outcome::Ok, t, t + 2));
        ops.push(read(1, Some(29), t + 3, t + 4));
        ops.push(read(2, Some(100), t + 5, t + 6));
        let v = verdict(ops);
        assert_eq!(v.validity, Validity::Invalid);
        assert!(v.has("nonlinearizable"));
        // The window is just the write and the stale read (from any start).
        let window = &v.anomalies[0].ops;
        assert_eq!(window.len(), 2, "{window:?}");
        assert_eq!(window[0].call, Call::Write { value: 100 });
    }

    #[test]
    fn a_lost_write_is_caught() {
        let v = verdict(vec![
            write(0, 1, Outcome::Ok, 0, 1),
            write(1, 2, Outcome::Ok, 2, 3),
            // The acknowledged write of 2 vanished.
            read(2, Some(1), 10, 11),
        ]);
        assert!(v.has("nonlinearizable"), "{v:?}");
    }

    #[test]
    fn a_write_applied_twice_is_caught() {
        // INCR acknowledged once with 1, but a later read sees 2: it was applied twice.
        let v = verdict(vec![reg(0, Call::Incr, Outcome::Ok, Some(Ret::Value(Some(1))), 0, 1), read(1, Some(2), 5, 6)]);
        assert!(v.has("nonlinearizable"), "{v:?}");
    }

    #[test]
    fn a_failed_write_that_took_effect_is_caught() {
        let v = verdict(vec![write(0, 1, Outcome::Fail, 0, 1), read(1, Some(1), 5, 6)]);
        assert!(v.has("nonlinearizable"), "{v:?}");
    }

    #[test]
    fn cas_only_applies_on_a_match() {
        let cas = |expect, new| Call::Cas { expect, known: true, new };
        let good = verdict(vec![
            write(0, 1, Outcome::Ok, 0, 1),
            reg(1, cas(Some(1), 2), Outcome::Ok, Some(Ret::Done), 2, 3),
            read(2, Some(2), 4, 5),
        ]);
        assert_eq!(good.validity, Validity::Valid);
        let bad =
            verdict(vec![write(0, 1, Outcome::Ok, 0, 1), reg(1, cas(Some(7), 2), Outcome::Ok, Some(Ret::Done), 2, 3)]);
        assert!(bad.has("nonlinearizable"));
        // An indeterminate CAS whose GET never answered may have set its value.
        let unknown = verdict(vec![
            write(0, 1, Outcome::Ok, 0, 1),
            reg(1, Call::Cas { expect: None, known: false, new: 3 }, Outcome::Info, None, 2, 3),
            read(2, Some(3), 4, 5),
        ]);
        assert_eq!(unknown.validity, Validity::Valid);
    }
}
