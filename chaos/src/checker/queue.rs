//! The queue workload's checks (Jepsen's Redis "queue"). Clients LPUSH unique tokens onto a few
//! keys and RPOP them; after healing, a final LRANGE reads what is left. For every key:
//! - a token comes out at most once: popped by two RPOPs, or popped and still queued at the end
//!   (`duplicate`: a pop that did not remove the element everywhere, or a push applied twice);
//! - every token popped or left was pushed, by an LPUSH that was acknowledged or is
//!   indeterminate (`phantom`), not one that failed (`failed-write-applied`), and not one
//!   invoked after the pop ended (`future-read`);
//! - every acknowledged token came out or is still queued (`lost-write`), except as many as the
//!   RPOPs whose outcome is unknown (each may have taken one token its client never saw);
//!   checked only when the key's final read succeeded.

use std::collections::{BTreeMap, HashMap};

use super::{anomaly, Anomaly, Verdict};
use crate::history::{Call, Op, Outcome, Ret};

/// The name of the workload this checker reads.
pub const WORKLOAD: &str = "queue";

/// Checks every key of the queue workload in `history`.
pub fn check(history: &[Op]) -> Verdict {
    let ops: Vec<&Op> = history.iter().filter(|o| o.workload == WORKLOAD).collect();
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for o in &ops {
        by_key.entry(o.key.as_str()).or_default().push(o);
    }
    let mut anomalies = Vec::new();
    for (key, key_ops) in by_key {
        check_key(key, &key_ops, &mut anomalies);
    }
    Verdict::new(WORKLOAD, &ops, anomalies, false, Vec::new())
}

fn check_key(key: &str, ops: &[&Op], out: &mut Vec<Anomaly>) {
    const MAX_PER_KIND: usize = 3;
    let mut found: Vec<Anomaly> = Vec::new();
    let mut report = |a: Anomaly| {
        if found.iter().filter(|f| f.kind == a.kind).count() < MAX_PER_KIND {
            found.push(a);
        }
    };
    let pushes: HashMap<&str, &Op> = ops
        .iter()
        .filter_map(|o| match &o.call {
            Call::Enqueue { token } => Some((token.as_str(), *o)),
            _ => None,
        })
        .collect();
    // Where each token came out: the pops that returned it and the final read that holds it.
    let mut seen: HashMap<&str, Vec<&Op>> = HashMap::new();
    let mut unknown_pops = 0usize;
    let mut final_read = None;
    for o in ops {
        match (&o.call, o.outcome, &o.ret) {
            (Call::Dequeue, Outcome::Ok, Some(Ret::Text(t))) if !t.is_empty() => {
                seen.entry(t.as_str()).or_default().push(o);
            }
            (Call::Dequeue, Outcome::Info, _) => unknown_pops += 1,
            (Call::QueueRead, Outcome::Ok, Some(Ret::Members(items))) => {
                final_read = Some(*o);
                for t in items {
                    seen.entry(t.as_str()).or_default().push(o);
                }
            }
            _ => {}
        }
    }
    let mut tokens: Vec<&&str> = seen.keys().collect();
    tokens.sort();
    for token in tokens {
        let places = &seen[*token];
        if places.len() > 1 {
            report(anomaly(
                "duplicate",
                key,
                format!("{token} came out {} times (pops and the final read)", places.len()),
                places,
            ));
        }
        let first = places.iter().min_by_key(|o| o.complete).expect("seen at least once");
        match pushes.get(*token) {
            None => report(anomaly("phantom", key, format!("{token} came out but was never pushed"), places)),
            Some(p) if p.outcome == Outcome::Fail => report(anomaly(
                "failed-write-applied",
                key,
                format!("{token} came out but its LPUSH #{} failed", p.index),
                &[p, first],
            )),
            Some(p) if p.invoke > first.complete => report(anomaly(
                "future-read",
                key,
                format!("{token} came out (#{}) before its LPUSH #{} was invoked", first.index, p.index),
                &[p, first],
            )),
            Some(_) => {}
        }
    }
    if let Some(read) = final_read {
        let mut lost: Vec<&Op> = pushes
            .values()
            .filter(|p| p.outcome == Outcome::Ok)
            .filter(|p| match &p.call {
                Call::Enqueue { token } => !seen.contains_key(token.as_str()),
                _ => false,
            })
            .copied()
            .collect();
        lost.sort_by_key(|o| o.index);
        if lost.len() > unknown_pops {
            let mut shown: Vec<&Op> = lost.iter().take(3).copied().collect();
            shown.push(read);
            report(anomaly(
                "lost-write",
                key,
                format!(
                    "{} acknowledged pushes never came out and are not queued at the end (only {unknown_pops} pops \
                     have an unknown outcome)",
                    lost.len()
                ),
                &shown,
            ));
        }
    }
    out.extend(found);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(index: usize, call: Call, outcome: Outcome, ret: Option<Ret>, t: (u64, u64)) -> Op {
        Op {
            index,
            workload: WORKLOAD.into(),
            process: 0,
            key: "q".into(),
            call,
            outcome,
            ret,
            invoke: t.0,
            complete: t.1,
            node: String::new(),
            error: String::new(),
            txn: None,
        }
    }

    fn push(i: usize, token: &str, outcome: Outcome, t: (u64, u64)) -> Op {
        op(i, Call::Enqueue { token: token.into() }, outcome, (outcome == Outcome::Ok).then_some(Ret::Len(1)), t)
    }

    fn pop(i: usize, got: &str, t: (u64, u64)) -> Op {
        op(i, Call::Dequeue, Outcome::Ok, Some(Ret::Text(got.into())), t)
    }

    fn left(i: usize, items: &[&str], t: (u64, u64)) -> Op {
        let items = items.iter().map(|s| s.to_string()).collect();
        op(i, Call::QueueRead, Outcome::Ok, Some(Ret::Members(items)), t)
    }

    fn kinds(h: &[Op]) -> Vec<String> {
        check(h).anomalies.into_iter().map(|a| a.kind).collect()
    }

    #[test]
    fn a_clean_history_is_valid() {
        let h = vec![
            push(0, "a", Outcome::Ok, (1, 2)),
            push(1, "b", Outcome::Ok, (3, 4)),
            pop(2, "a", (5, 6)),
            pop(3, "", (0, 1)),
            left(4, &["b"], (10, 11)),
        ];
        assert!(kinds(&h).is_empty(), "{:?}", kinds(&h));
    }

    #[test]
    fn a_token_popped_twice_or_popped_and_left_is_a_duplicate() {
        let h =
            vec![push(0, "a", Outcome::Ok, (1, 2)), pop(1, "a", (3, 4)), pop(2, "a", (5, 6)), left(3, &[], (9, 10))];
        assert_eq!(kinds(&h), vec!["duplicate"]);
        let h = vec![push(0, "a", Outcome::Ok, (1, 2)), pop(1, "a", (3, 4)), left(2, &["a"], (9, 10))];
        assert_eq!(kinds(&h), vec!["duplicate"]);
    }

    #[test]
    fn lost_phantom_and_failed_pushes_are_caught() {
        let h = vec![push(0, "a", Outcome::Ok, (1, 2)), left(1, &[], (9, 10))];
        assert_eq!(kinds(&h), vec!["lost-write"]);
        // An RPOP with an unknown outcome may have taken it.
        let unknown = op(2, Call::Dequeue, Outcome::Info, None, (3, 4));
        let h = vec![push(0, "a", Outcome::Ok, (1, 2)), unknown, left(1, &[], (9, 10))];
        assert!(kinds(&h).is_empty());
        let h = vec![push(0, "a", Outcome::Fail, (1, 2)), pop(1, "a", (3, 4)), pop(2, "z", (3, 4))];
        assert_eq!(kinds(&h), vec!["failed-write-applied", "phantom"]);
    }
}
