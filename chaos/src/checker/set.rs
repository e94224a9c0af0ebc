//! The set workload's checks (Jepsen's "set"). Clients SADD unique elements to a few keys and
//! read whole sets with SMEMBERS; nothing is ever removed, so a set only grows. For every key:
//! - every element read was added to that key by some SADD, ok or info (`phantom`), and not by
//!   one that failed (`failed-write-visible`: a `fail` is certainly not applied), nor by one
//!   invoked only after the read ended (`future-read`);
//! - an element is *known present* from the moment its SADD was acknowledged, or a read that
//!   returned it ended, whichever comes first; every read invoked after that moment must contain
//!   it. When the key's last read (the final read after healing, normally) misses it, it is gone
//!   for good: `lost-write`; when only some read in between misses it, `stale-read` (this covers
//!   both "an acknowledged SADD is visible to every later read" and "a read never goes back on an
//!   earlier read's elements");
//! - a unique element is new when its SADD applies, so an acknowledged SADD answers 1, and a read
//!   lists each member once (`duplicate`: a write applied twice, or a broken reply).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{anomaly, Anomaly, Verdict};
use crate::history::{Call, Op, Outcome, Ret};

/// The name of the workload this checker reads.
pub const WORKLOAD: &str = "set";

/// Checks every key of the set workload in `history`.
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

struct Read<'a> {
    op: &'a Op,
    /// The members as returned (sorted by the client; duplicates kept).
    list: &'a [String],
    members: HashSet<&'a str>,
}

/// Why an element is known present, for the reports.
fn proof(o: &Op) -> String {
    match o.call {
        Call::SetAdd { .. } => format!("SADD #{} was acknowledged", o.index),
        _ => format!("read #{} that returned it ended", o.index),
    }
}

/// Sorts a group of missed elements (element, known present since, proof) by that time and
/// returns the first as the example: the element known present the longest before the read.
fn example<'a>(group: &mut [(&'a str, u64, &'a Op)]) -> (&'a str, u64, &'a Op) {
    group.sort_by_key(|&(e, t, _)| (t, e));
    group[0]
}

/// `n` elements named, the first few of `elements`.
fn some(elements: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut s = elements.iter().take(SHOWN).map(|e| format!("{e:?}")).collect::<Vec<_>>().join(", ");
    if elements.len() > SHOWN {
        s.push_str(&format!(" and {} more", elements.len() - SHOWN));
    }
    s
}

fn check_key(key: &str, ops: &[&Op], out: &mut Vec<Anomaly>) {
    // Only the first few anomalies of each kind per key: one is proof, hundreds are noise.
    const MAX_PER_KIND: usize = 3;
    let mut found: Vec<Anomaly> = Vec::new();
    let mut report = |a: Anomaly| {
        if found.iter().filter(|f| f.kind == a.kind).count() < MAX_PER_KIND {
            found.push(a);
        }
    };

    let mut adds: HashMap<&str, &Op> = HashMap::new();
    for o in ops {
        if let Call::SetAdd { element } = &o.call {
            adds.entry(element.as_str()).or_insert(o);
        }
    }
    let mut reads: Vec<Read> = ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && o.call == Call::SetRead)
        .map(|o| {
            let list: &[String] = match &o.ret {
                Some(Ret::Members(m)) => m,
                _ => &[],
            };
            Read { op: o, list, members: list.iter().map(String::as_str).collect() }
        })
        .collect();
    reads.sort_by_key(|r| (r.op.invoke, r.op.index));

    // Acknowledged SADDs of a unique element add it.
    let mut acked: Vec<&Op> = adds.values().copied().filter(|a| a.outcome == Outcome::Ok).collect();
    acked.sort_by_key(|a| a.index);
    for a in &acked {
        if let (Call::SetAdd { element }, Some(Ret::Len(n))) = (&a.call, &a.ret) {
            if *n != 1 {
                report(anomaly(
                    "duplicate",
                    key,
                    format!(
                        "SADD #{} of the unique element {element:?} answered {n}, not 1: it was applied twice",
                        a.index
                    ),
                    &[a],
                ));
            }
        }
    }

    // Each read on its own; and when each element is known present (earliest proof).
    let mut known: HashMap<&str, (u64, &Op)> = HashMap::new();
    for a in &acked {
        if let Call::SetAdd { element } = &a.call {
            known.insert(element.as_str(), (a.complete, a));
        }
    }
    for r in &reads {
        if r.members.len() != r.list.len() {
            let mut seen = HashSet::new();
            let twice: Vec<&str> = r.list.iter().map(String::as_str).filter(|e| !seen.insert(*e)).collect();
            report(anomaly(
                "duplicate",
                key,
                format!("read #{} lists {} more than once", r.op.index, some(&twice)),
                &[r.op],
            ));
        }
        let mut phantoms: Vec<&str> = Vec::new();
        for &e in &r.members {
            match adds.get(e) {
                None => phantoms.push(e),
                Some(a) => {
                    if a.outcome == Outcome::Fail {
                        report(anomaly(
                            "failed-write-visible",
                            key,
                            format!(
                                "SADD #{} of {e:?} failed ({}) but read #{} contains it",
                                a.index, a.error, r.op.index
                            ),
                            &[a, r.op],
                        ));
                    }
                    if a.invoke > r.op.complete {
                        report(anomaly(
                            "future-read",
                            key,
                            format!(
                                "read #{} contains {e:?}, added only after the read ended (SADD #{})",
                                r.op.index, a.index
                            ),
                            &[r.op, a],
                        ));
                    }
                }
            }
            let k = known.entry(e).or_insert((r.op.complete, r.op));
            if r.op.complete < k.0 {
                *k = (r.op.complete, r.op);
            }
        }
        if !phantoms.is_empty() {
            phantoms.sort();
            report(anomaly(
                "phantom",
                key,
                format!("read #{} of {key} contains {}, which no client added to it", r.op.index, some(&phantoms)),
                &[r.op],
            ));
        }
    }

    // Known-present elements against the reads invoked after: missed by the last read (gone for
    // good), or by some read in between (stale).
    let Some(last) = reads.last() else {
        out.extend(found);
        return;
    };
    let mut lost: Vec<(&str, u64, &Op)> = Vec::new();
    // read index -> the elements it should have had, with their proofs.
    let mut stale: BTreeMap<usize, Vec<(&str, u64, &Op)>> = BTreeMap::new();
    for (&e, &(t, p)) in &known {
        if last.op.invoke <= t {
            continue;
        }
        if !last.members.contains(e) {
            lost.push((e, t, p));
            continue;
        }
        let first = reads.partition_point(|r| r.op.invoke <= t);
        for i in (first..reads.len()).filter(|&i| !reads[i].members.contains(e)) {
            stale.entry(i).or_default().push((e, t, p));
        }
    }
    if !lost.is_empty() {
        let (e, _, p) = example(&mut lost);
        let names: Vec<&str> = lost.iter().map(|x| x.0).collect();
        report(anomaly(
            "lost-write",
            key,
            format!(
                "the last read #{} of {key} misses {} element(s) known present before it started: {}; e.g. {e:?}, whose {}",
                last.op.index,
                lost.len(),
                some(&names),
                proof(p)
            ),
            &[p, last.op],
        ));
    }
    for (i, mut group) in stale {
        let r = &reads[i];
        let (e, _, p) = example(&mut group);
        let names: Vec<&str> = group.iter().map(|x| x.0).collect();
        report(anomaly(
            "stale-read",
            key,
            format!(
                "read #{} misses {} element(s) known present before it started (a later read has them): {}; e.g. {e:?}, whose {}",
                r.op.index,
                group.len(),
                some(&names),
                proof(p)
            ),
            &[p, r.op],
        ));
    }
    out.extend(found);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testing::{indexed, op};
    use crate::checker::Validity;

    fn add(p: usize, element: &str, outcome: Outcome, t0: u64, t1: u64) -> Op {
        let ret = (outcome == Outcome::Ok).then_some(Ret::Len(1));
        op(WORKLOAD, p, "k", Call::SetAdd { element: element.into() }, outcome, ret, t0, t1)
    }
    fn read(p: usize, members: &[&str], t0: u64, t1: u64) -> Op {
        let mut m: Vec<String> = members.iter().map(|s| s.to_string()).collect();
        m.sort();
        op(WORKLOAD, p, "k", Call::SetRead, Outcome::Ok, Some(Ret::Members(m)), t0, t1)
    }

    #[test]
    fn a_good_history_passes() {
        let v = check(&indexed(vec![
            add(0, "a", Outcome::Ok, 0, 10),
            add(1, "b", Outcome::Ok, 1, 12),
            // Concurrent with both adds: may see either.
            read(2, &["a"], 3, 4),
            add(0, "c", Outcome::Info, 13, 14),
            add(1, "d", Outcome::Fail, 13, 14),
            read(2, &["a", "b"], 13, 15),
            // The indeterminate "c" shows up later (it may take effect at any time).
            read(3, &["a", "b", "c"], 20, 21),
            read(4, &["a", "b", "c"], 22, 23),
            // A read that failed says nothing.
            op(WORKLOAD, 5, "k", Call::SetRead, Outcome::Info, None, 24, 25),
        ]));
        assert_eq!(v.validity, Validity::Valid, "{v:?}");
        assert_eq!(v.counts.total(), 9);
    }

    #[test]
    fn a_lost_write_is_caught() {
        let v = check(&indexed(vec![
            add(0, "a", Outcome::Ok, 0, 1),
            add(1, "b", Outcome::Ok, 2, 3),
            read(2, &["a"], 5, 6),
        ]));
        assert!(v.has("lost-write") && !v.has("stale-read"), "{v:?}");
        let a = &v.anomalies[0];
        assert_eq!(a.ops.len(), 2);
        assert_eq!(a.ops[0].call, Call::SetAdd { element: "b".into() });
    }

    #[test]
    fn an_element_read_and_then_gone_is_a_lost_write() {
        // The indeterminate SADD took effect (a read saw it), then the element vanished.
        let v = check(&indexed(vec![add(0, "a", Outcome::Info, 0, 1), read(1, &["a"], 2, 3), read(2, &[], 4, 5)]));
        assert!(v.has("lost-write"), "{v:?}");
        assert_eq!(v.anomalies[0].ops.iter().map(|o| o.index).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn a_stale_read_is_caught() {
        // Misses an acknowledged SADD, though a later read has it.
        let v = check(&indexed(vec![add(0, "a", Outcome::Ok, 0, 1), read(1, &[], 2, 3), read(2, &["a"], 4, 5)]));
        assert!(v.has("stale-read") && !v.has("lost-write"), "{v:?}");
        assert_eq!(v.anomalies[0].ops.iter().map(|o| o.index).collect::<Vec<_>>(), [0, 1]);
        // Goes back on an earlier read.
        let v = check(&indexed(vec![
            add(0, "a", Outcome::Info, 0, 100),
            read(1, &["a"], 2, 3),
            read(2, &[], 4, 5),
            read(3, &["a"], 6, 7),
        ]));
        assert!(v.has("stale-read") && !v.has("lost-write"), "{v:?}");
        assert_eq!(v.anomalies[0].ops.iter().map(|o| o.index).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn a_read_concurrent_with_an_add_may_miss_it_and_misses_are_grouped_per_read() {
        let v = check(&indexed(vec![
            add(0, "a", Outcome::Ok, 0, 10),
            read(1, &[], 5, 6),
            // Concurrent reads (neither ended before the other started) may disagree.
            read(2, &["a"], 7, 9),
            read(3, &[], 8, 11),
            read(1, &["a"], 12, 13),
        ]));
        assert_eq!(v.validity, Validity::Valid, "{v:?}");
        // Two elements missed by one read: one anomaly, the longest-known element as example.
        let v = check(&indexed(vec![
            add(0, "a", Outcome::Ok, 0, 1),
            add(0, "b", Outcome::Ok, 2, 3),
            read(1, &["a"], 4, 5),
            read(2, &[], 6, 7),
            read(3, &["a", "b"], 8, 9),
        ]));
        let stale: Vec<&Anomaly> = v.anomalies.iter().filter(|a| a.kind == "stale-read").collect();
        assert_eq!(v.anomalies.len(), 2, "{v:?}");
        assert_eq!(stale.len(), 2, "{v:?}");
        assert_eq!(stale[1].ops.iter().map(|o| o.index).collect::<Vec<_>>(), [0, 3]);
        assert!(stale[1].detail.contains("2 element(s)"), "{}", stale[1].detail);
    }

    #[test]
    fn the_history_shapes_are_like_the_others() {
        let a = add(7, "p7.1", Outcome::Ok, 0, 1);
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains(r#""call":{"f":"setadd","element":"p7.1"}"#), "{json}");
        assert!(json.contains(r#""ret":{"len":1}"#), "{json}");
        let r = read(1, &["b", "a"], 2, 3);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""call":{"f":"setread"}"#), "{json}");
        assert!(json.contains(r#""ret":{"members":["a","b"]}"#), "{json}");
        assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), r);
    }

    #[test]
    fn a_phantom_is_caught() {
        let v = check(&indexed(vec![add(0, "a", Outcome::Ok, 0, 1), read(1, &["a", "zz"], 2, 3)]));
        assert!(v.has("phantom"), "{v:?}");
        assert_eq!(v.anomalies.len(), 1, "{v:?}");
        assert_eq!(v.anomalies[0].ops.len(), 1);
    }

    #[test]
    fn a_failed_write_visible_is_caught() {
        let v = check(&indexed(vec![add(0, "a", Outcome::Fail, 0, 1), read(1, &["a"], 2, 3)]));
        assert!(v.has("failed-write-visible"), "{v:?}");
        assert_eq!(v.anomalies[0].ops.len(), 2);
    }

    #[test]
    fn future_reads_and_duplicates_are_caught() {
        let v = check(&indexed(vec![read(1, &["a"], 0, 1), add(0, "a", Outcome::Info, 2, 3)]));
        assert!(v.has("future-read"), "{v:?}");
        let mut twice = add(0, "a", Outcome::Ok, 0, 1);
        twice.ret = Some(Ret::Len(0));
        let v = check(&indexed(vec![twice, read(1, &["a"], 2, 3)]));
        assert!(v.has("duplicate"), "{v:?}");
        let v = check(&indexed(vec![add(0, "a", Outcome::Ok, 0, 1), read(1, &["a", "a"], 2, 3)]));
        assert!(v.has("duplicate"), "{v:?}");
    }

    #[test]
    fn keys_and_workloads_are_checked_apart() {
        // "b" was added to another key, and an append token is no set element.
        let mut other = add(0, "b", Outcome::Ok, 0, 1);
        other.key = "k2".into();
        let token = op("append", 3, "k", Call::Append { token: "c".into() }, Outcome::Ok, Some(Ret::Len(2)), 0, 1);
        let v = check(&indexed(vec![other, token, read(1, &["b"], 2, 3)]));
        assert!(v.has("phantom"), "{v:?}");
        assert_eq!(v.counts.total(), 2);
    }
}
