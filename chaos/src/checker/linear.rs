//! A linearizability checker: Wing & Gong's search with Lowe's memoization, as porcupine
//! (`checker.go`) does it.
//!
//! The history of one partition (one key) becomes a list of call and return entries sorted by
//! time. The search walks the list: at a call entry it tries to linearize that operation now
//! (the model accepts its input and output in the current state); if the pair (set of linearized
//! operations, state) was already explored, it skips it; at a return entry whose operation was
//! not linearized yet it backtracks. An operation whose outcome is unknown has its return at
//! infinity, so it may be linearized anywhere after its call, including "never" (last).
//! The search gives up with [`Linearizable::Unknown`] past its deadline rather than guessing.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Debug;
    type Output: Debug;
    /// The state before any operation.
    fn init(&self) -> Self::State;
    /// The state after `input` ran in `state` and produced `output` (`None`: unknown output, the
    /// operation's outcome is indeterminate), or `None` if that cannot happen.
    fn step(&self, state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self::State>;
}

/// One operation of a partition.
#[derive(Debug, Clone)]
pub struct Event<I, O> {
    pub input: I,
    /// `None` when the outcome is indeterminate.
    pub output: Option<O>,
    /// When it was invoked.
    pub call: u64,
    /// When it returned; [`NEVER`] for an indeterminate operation.
    pub ret: u64,
    /// The caller's identifier (an index into its history).
    pub id: usize,
}

/// The return time of an operation that may take effect at any time after its call.
pub const NEVER: u64 = u64::MAX;

/// The verdict for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linearizable {
    Yes,
    /// No linearization exists. `longest` is the longest sequence of operation ids the search
    /// could linearize (a hint at where it breaks).
    No {
        longest: Vec<usize>,
    },
    /// The search ran out of time.
    Unknown,
}

const NIL: usize = usize::MAX;

/// Checks one partition's history against `model`, giving up at `deadline`.
pub fn check<M: Model>(model: &M, events: &[Event<M::Input, M::Output>], deadline: Instant) -> Linearizable {
    let n = events.len();
    if n == 0 {
        return Linearizable::Yes;
    }
    // Entries 0..n are calls (entry i = call of event i), n..2n returns; 2n is the list head.
    let mut order: Vec<usize> = (0..2 * n).collect();
    let time = |e: usize| if e < n { events[e].call } else { events[e - n].ret };
    // At equal times calls come first: the operations are then taken as concurrent.
    order.sort_by_key(|&e| (time(e), e >= n, e));
    let head = 2 * n;
    let mut next = vec![NIL; 2 * n + 1];
    let mut prev = vec![NIL; 2 * n + 1];
    let mut last = head;
    for &e in &order {
        next[last] = e;
        prev[e] = last;
        last = e;
    }

    let words = n.div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut calls: Vec<(usize, M::State)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut state = model.init();
    let mut entry = next[head];
    let mut steps: u64 = 0;

    while next[head] != NIL {
        steps += 1;
        if steps.is_multiple_of(1024) && Instant::now() >= deadline {
            return Linearizable::Unknown;
        }
        if entry < n {
            let ev = &events[entry];
            if let Some(new_state) = model.step(&state, &ev.input, ev.output.as_ref()) {
                let mut bits = linearized.clone();
                bits[entry / 64] |= 1 << (entry % 64);
                let key = (bits, new_state);
                if !cache.contains(&key) {
                    let (bits, new_state) = key.clone();
                    cache.insert(key);
                    calls.push((entry, std::mem::replace(&mut state, new_state)));
                    linearized = bits;
                    if calls.len() > longest.len() {
                        longest = calls.iter().map(|&(e, _)| events[e].id).collect();
                    }
                    // Lift the call and its return out of the list.
                    let ret = entry + n;
                    next[prev[entry]] = next[entry];
                    prev[next[entry]] = prev[entry];
                    next[prev[ret]] = next[ret];
                    if next[ret] != NIL {
                        prev[next[ret]] = prev[ret];
                    }
                    entry = next[head];
                    continue;
                }
            }
            entry = next[entry];
        } else {
            // A return whose call is not linearized: undo the last choice.
            let Some((call, old_state)) = calls.pop() else {
                return Linearizable::No { longest };
            };
            state = old_state;
            linearized[call / 64] &= !(1 << (call % 64));
            let ret = call + n;
            next[prev[ret]] = ret;
            if next[ret] != NIL {
                prev[next[ret]] = ret;
            }
            next[prev[call]] = call;
            prev[next[call]] = call;
            entry = next[call];
        }
    }
    Linearizable::Yes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A register of integers, 0 at first.
    struct Reg;
    #[derive(Debug)]
    enum In {
        R,
        W(i64),
    }
    impl Model for Reg {
        type State = i64;
        type Input = In;
        type Output = i64;
        fn init(&self) -> i64 {
            0
        }
        fn step(&self, s: &i64, i: &In, o: Option<&i64>) -> Option<i64> {
            match (i, o) {
                (In::R, Some(v)) => (v == s).then_some(*s),
                (In::R, None) => Some(*s),
                (In::W(v), _) => Some(*v),
            }
        }
    }

    fn ev(input: In, output: Option<i64>, call: u64, ret: u64, id: usize) -> Event<In, i64> {
        Event { input, output, call, ret, id }
    }

    fn run(h: &[Event<In, i64>]) -> Linearizable {
        check(&Reg, h, Instant::now() + Duration::from_secs(5))
    }

    #[test]
    fn concurrent_write_may_be_seen_or_not() {
        // w1 [0,10] ; r [2,3] sees 0 ; r [4,5] sees 1 ; r [11,12] sees 1
        let h = vec![
            ev(In::W(1), Some(0), 0, 10, 0),
            ev(In::R, Some(0), 2, 3, 1),
            ev(In::R, Some(1), 4, 5, 2),
            ev(In::R, Some(1), 11, 12, 3),
        ];
        assert_eq!(run(&h), Linearizable::Yes);
    }

    #[test]
    fn stale_read_after_a_completed_write_is_caught() {
        let h = vec![ev(In::W(1), Some(0), 0, 1, 0), ev(In::R, Some(0), 2, 3, 1)];
        assert!(matches!(run(&h), Linearizable::No { .. }));
    }

    #[test]
    fn reads_cannot_flip_back() {
        // Two concurrent writes; a reader sees 1 then 2 then 1 again.
        let h = vec![
            ev(In::W(1), Some(0), 0, 100, 0),
            ev(In::W(2), Some(0), 0, 100, 1),
            ev(In::R, Some(1), 10, 11, 2),
            ev(In::R, Some(2), 12, 13, 3),
            ev(In::R, Some(1), 14, 15, 4),
        ];
        assert!(matches!(run(&h), Linearizable::No { .. }));
    }

    #[test]
    fn indeterminate_write_may_happen_late_or_never() {
        let late = vec![ev(In::W(7), None, 0, NEVER, 0), ev(In::R, Some(0), 5, 6, 1), ev(In::R, Some(7), 50, 60, 2)];
        assert_eq!(run(&late), Linearizable::Yes);
        let never = vec![ev(In::W(7), None, 0, NEVER, 0), ev(In::R, Some(0), 50, 60, 1)];
        assert_eq!(run(&never), Linearizable::Yes);
        // But not before it was invoked.
        let early = vec![ev(In::R, Some(7), 0, 1, 0), ev(In::W(7), None, 5, NEVER, 1)];
        assert!(matches!(run(&early), Linearizable::No { .. }));
    }

    #[test]
    fn gives_up_with_unknown_at_the_deadline() {
        // Many concurrent indeterminate writes and contradicting reads make a big search space.
        let mut h = Vec::new();
        for i in 0..40 {
            h.push(ev(In::W(i), None, 0, NEVER, i as usize));
        }
        for i in 0..40 {
            h.push(ev(In::R, Some(100 + i), 10 + 2 * i as u64, 11 + 2 * i as u64, 40 + i as usize));
        }
        assert_eq!(check(&Reg, &h, Instant::now()), Linearizable::Unknown);
    }
}
