//! The append workload's checks. Clients APPEND unique tokens (each followed by a space) to a few
//! keys and GET them. For every key:
//! - every read is made of known tokens, each at most once (`duplicate`: a write applied twice;
//!   `phantom`: a token nobody wrote; `failed-write-applied`: a token whose APPEND failed);
//! - all reads are prefixes of the longest one (`divergent-reads`);
//! - a read that starts after another ended is at least as long (`stale-read`);
//! - a read that starts after an acknowledged APPEND ended contains its token (`lost-write` when
//!   the token is in no read at all, `stale-read` when only later reads have it), and no read
//!   contains a token whose APPEND started after the read ended (`future-read`);
//! - the length an APPEND returned is where its token ends in the value (`wrong-position`);
//! - an APPEND that started after another ended comes after it (`real-time-order`).

use std::collections::{BTreeMap, HashMap};

use super::{anomaly, Anomaly, Verdict};
use crate::history::{Call, Op, Outcome, Ret};

/// The name of the workload this checker reads.
pub const WORKLOAD: &str = "append";

/// The list-append workload (RPUSH and LRANGE inside MULTI), checked the same way: a list read
/// is recorded as the text its elements make, each followed by a space.
pub const LIST_WORKLOAD: &str = "list-append";

/// Checks every key of the append workload in `history`.
pub fn check(history: &[Op]) -> Verdict {
    check_workload(history, WORKLOAD)
}

/// Checks every key of `workload` (the append or the list-append workload) in `history`.
pub fn check_workload(history: &[Op], workload: &str) -> Verdict {
    let ops: Vec<&Op> = history.iter().filter(|o| o.workload == workload).collect();
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for o in &ops {
        by_key.entry(o.key.as_str()).or_default().push(o);
    }
    let mut anomalies = Vec::new();
    for (key, key_ops) in by_key {
        check_key(key, &key_ops, &mut anomalies);
    }
    Verdict::new(workload, &ops, anomalies, false, Vec::new())
}

struct Read<'a> {
    op: &'a Op,
    text: &'a str,
    tokens: Vec<&'a str>,
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

    let appends: HashMap<&str, &Op> = ops
        .iter()
        .filter_map(|o| match &o.call {
            Call::Append { token } => Some((token.as_str(), *o)),
            _ => None,
        })
        .collect();
    let mut reads: Vec<Read> = ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && o.call == Call::ReadList)
        .map(|o| {
            let text = match &o.ret {
                Some(Ret::Text(t)) => t.as_str(),
                _ => "",
            };
            Read { op: o, text, tokens: text.split_terminator(' ').collect() }
        })
        .collect();
    reads.sort_by_key(|r| r.op.invoke);

    // Each read on its own.
    for r in &reads {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for t in &r.tokens {
            *seen.entry(t).or_default() += 1;
        }
        for (t, n) in seen {
            match appends.get(t) {
                None => report(anomaly(
                    "phantom",
                    key,
                    format!("read #{} of {key} contains {t:?}, which no client appended", r.op.index),
                    &[r.op],
                )),
                Some(a) => {
                    if n > 1 {
                        report(anomaly(
                            "duplicate",
                            key,
                            format!(
                                "token {t:?} appears {n} times in read #{}: the APPEND was applied twice",
                                r.op.index
                            ),
                            &[a, r.op],
                        ));
                    }
                    if a.outcome == Outcome::Fail {
                        report(anomaly(
                            "failed-write-applied",
                            key,
                            format!(
                                "APPEND #{} of {t:?} failed ({}) but read #{} contains it",
                                a.index, a.error, r.op.index
                            ),
                            &[a, r.op],
                        ));
                    }
                    if a.invoke > r.op.complete {
                        report(anomaly(
                            "future-read",
                            key,
                            format!("read #{} contains {t:?}, appended only after the read ended", r.op.index),
                            &[r.op, a],
                        ));
                    }
                }
            }
        }
    }

    // The reads against the longest one, and against each other in real time.
    let Some(longest) = reads.iter().max_by_key(|r| r.text.len()) else {
        out.extend(found);
        return;
    };
    for r in &reads {
        if !longest.text.starts_with(r.text) {
            report(anomaly(
                "divergent-reads",
                key,
                format!("read #{} is not a prefix of read #{}", r.op.index, longest.op.index),
                &[r.op, longest.op],
            ));
        }
    }
    let mut by_end: Vec<&Read> = reads.iter().collect();
    by_end.sort_by_key(|r| r.op.complete);
    for r2 in &reads {
        // The longest read that ended before r2 started.
        if let Some(r1) = by_end
            .iter()
            .take_while(|r1| r1.op.complete < r2.op.invoke)
            .max_by_key(|r1| r1.text.len())
            .filter(|r1| r1.text.len() > r2.text.len())
        {
            report(anomaly(
                "stale-read",
                key,
                format!(
                    "read #{} ({} tokens) started after read #{} ({} tokens) ended, yet is shorter",
                    r2.op.index,
                    r2.tokens.len(),
                    r1.op.index,
                    r1.tokens.len()
                ),
                &[r1.op, r2.op],
            ));
        }
    }

    // Acknowledged appends against the reads.
    let end_of: HashMap<&str, usize> = {
        let mut at = 0;
        longest
            .tokens
            .iter()
            .map(|t| {
                at += t.len() + 1;
                (*t, at)
            })
            .collect()
    };
    // min_len_from[i]: the shortest read among reads[i..] (sorted by invocation).
    let mut min_len_from = vec![usize::MAX; reads.len() + 1];
    for i in (0..reads.len()).rev() {
        min_len_from[i] = min_len_from[i + 1].min(reads[i].text.len());
    }
    let mut acked: Vec<(&str, &Op)> =
        appends.iter().filter(|(_, a)| a.outcome == Outcome::Ok).map(|(t, a)| (*t, *a)).collect();
    acked.sort_by_key(|(_, a)| a.invoke);
    for &(t, a) in &acked {
        let first_after = reads.partition_point(|r| r.op.invoke <= a.complete);
        let needed = end_of.get(t).copied();
        if first_after < reads.len() && min_len_from[first_after] < needed.unwrap_or(usize::MAX) {
            let r = reads[first_after..].iter().find(|r| r.text.len() < needed.unwrap_or(usize::MAX)).expect("a read");
            match needed {
                None => report(anomaly(
                    "lost-write",
                    key,
                    format!(
                        "APPEND #{} of {t:?} was acknowledged, but no read has it (read #{} started after)",
                        a.index, r.op.index
                    ),
                    &[a, r.op],
                )),
                Some(_) => report(anomaly(
                    "stale-read",
                    key,
                    format!(
                        "read #{} started after APPEND #{} of {t:?} was acknowledged but misses it",
                        r.op.index, a.index
                    ),
                    &[a, r.op],
                )),
            }
        }
        if let (Some(end), Some(Ret::Len(len))) = (needed, &a.ret) {
            if end as i64 != *len {
                report(anomaly(
                    "wrong-position",
                    key,
                    format!(
                        "APPEND #{} of {t:?} returned length {len}, but the token ends at {end} in read #{}",
                        a.index, longest.op.index
                    ),
                    &[a, longest.op],
                ));
            }
        }
    }
    // Real-time order of appends that landed: an APPEND that started after another ended
    // must come after it.
    let mut landed: Vec<(&Op, usize)> = appends.iter().filter_map(|(t, a)| end_of.get(t).map(|&e| (*a, e))).collect();
    landed.sort_by_key(|(a, _)| a.complete);
    let mut by_invoke = landed.clone();
    by_invoke.sort_by_key(|(a, _)| a.invoke);
    let mut i = 0;
    let mut latest: Option<(&Op, usize)> = None;
    for &(a2, e2) in &by_invoke {
        while i < landed.len() && landed[i].0.complete < a2.invoke {
            if landed[i].0.outcome == Outcome::Ok && latest.is_none_or(|(_, e)| landed[i].1 > e) {
                latest = Some(landed[i]);
            }
            i += 1;
        }
        if let Some((a1, e1)) = latest {
            if e1 > e2 {
                report(anomaly(
                    "real-time-order",
                    key,
                    format!(
                        "APPEND #{} started after APPEND #{} was acknowledged, yet comes before it in read #{}",
                        a2.index, a1.index, longest.op.index
                    ),
                    &[a1, a2, longest.op],
                ));
            }
        }
    }
    out.extend(found);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::testing::{indexed, op};
    use crate::checker::Validity;

    fn append(p: usize, token: &str, outcome: Outcome, len: i64, t0: u64, t1: u64) -> Op {
        let ret = (outcome == Outcome::Ok).then_some(Ret::Len(len));
        op(WORKLOAD, p, "k", Call::Append { token: token.into() }, outcome, ret, t0, t1)
    }
    fn read(p: usize, text: &str, t0: u64, t1: u64) -> Op {
        op(WORKLOAD, p, "k", Call::ReadList, Outcome::Ok, Some(Ret::Text(text.into())), t0, t1)
    }

    #[test]
    fn a_good_history_passes() {
        let v = check(&indexed(vec![
            append(0, "a", Outcome::Ok, 2, 0, 10),
            append(1, "b", Outcome::Ok, 4, 1, 12),
            read(2, "a ", 3, 4),
            append(0, "c", Outcome::Info, 0, 13, 14),
            append(1, "d", Outcome::Fail, 0, 13, 14),
            read(2, "a b ", 13, 15),
            read(3, "a b c ", 20, 21),
        ]));
        assert_eq!(v.validity, Validity::Valid, "{v:?}");
    }

    #[test]
    fn a_lost_write_is_caught() {
        let v = check(&indexed(vec![
            append(0, "a", Outcome::Ok, 2, 0, 1),
            append(1, "b", Outcome::Ok, 4, 2, 3),
            read(2, "a ", 5, 6),
        ]));
        assert!(v.has("lost-write"), "{v:?}");
        assert_eq!(v.anomalies[0].ops.len(), 2);
    }

    #[test]
    fn a_write_applied_twice_is_caught() {
        let v = check(&indexed(vec![append(0, "a", Outcome::Info, 0, 0, 1), read(2, "a a ", 5, 6)]));
        assert!(v.has("duplicate"), "{v:?}");
    }

    #[test]
    fn a_stale_read_is_caught() {
        let v = check(&indexed(vec![append(0, "a", Outcome::Ok, 2, 0, 1), read(1, "a ", 2, 3), read(2, "", 4, 5)]));
        assert!(v.has("stale-read"), "{v:?}");
    }

    #[test]
    fn divergent_reads_failed_writes_and_wrong_positions_are_caught() {
        let v = check(&indexed(vec![
            append(0, "a", Outcome::Ok, 2, 0, 1),
            append(1, "b", Outcome::Fail, 0, 0, 1),
            read(2, "a b ", 4, 5),
            read(3, "b ", 6, 7),
        ]));
        assert!(v.has("failed-write-applied") && v.has("divergent-reads"), "{v:?}");
        let v = check(&indexed(vec![
            append(0, "a", Outcome::Ok, 4, 0, 1),
            append(1, "b", Outcome::Info, 0, 0, 1),
            read(2, "a b ", 4, 5),
        ]));
        assert!(v.has("wrong-position"), "{v:?}");
    }

    #[test]
    fn real_time_order_of_appends_is_checked() {
        let v = check(&indexed(vec![
            append(0, "a", Outcome::Ok, 4, 0, 1),
            append(1, "b", Outcome::Ok, 2, 2, 3),
            read(2, "b a ", 4, 5),
        ]));
        assert!(v.has("real-time-order"), "{v:?}");
    }
}
