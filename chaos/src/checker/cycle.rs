//! Strict serializability of the list-append workload's transactions, checked as Elle checks
//! Jepsen's list-append histories: every list's elements, in the order its longest read shows,
//! are the order of the writes to it (a version order recovered from the data, since every token
//! is unique), and from that order the transactions' dependencies follow:
//!
//! - `ww`: T1 appended the element right before one T2 appended to the same list;
//! - `wr`: T2 read a list whose last element T1 appended;
//! - `rw` (anti-dependency): T1 read a list without the element T2 appended right after it;
//! - `rt` (real time): T1 was acknowledged before T2 was sent.
//!
//! A strictly serializable history has an order of its transactions that contains all these
//! edges, so any cycle among them is an anomaly, named after Adya's classes as Elle names them:
//! `G0` (write cycle), `G1c` (write and read dependencies), `G-single` (one anti-dependency),
//! `G2-item` (several), each with `-realtime` when real time closes the cycle. Also checked:
//! `G1b` (a read that ends at an element its transaction did not leave last in that list) and
//! `internal` (a transaction's read that contradicts its own earlier steps). What the per-key
//! append checker finds (lost, duplicated, phantom, failed-yet-applied elements, divergent
//! reads) is not repeated here: a read that is not a prefix of its list's longest read is left
//! out of the graph.
//!
//! Real-time edges are not listed pairwise (quadratic): the acknowledged transactions, in order of
//! acknowledgement, form a chain of barrier nodes; a transaction points at the barrier of its own
//! acknowledgement, and the last barrier before its invocation points at it, so a path from T1 to
//! T2 through barriers exists exactly when T1 was acknowledged before T2 was sent.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::{anomaly, Anomaly, Verdict};
use crate::history::{Call, Op, Outcome, Ret};

/// The verdict's name: the workload's, with this suffix.
pub const SUFFIX: &str = "-cycles";

/// How many cycles are reported (one is proof; the rest are usually the same bug again).
const MAX_CYCLES: usize = 3;

/// One transaction: its steps, as recorded.
struct Txn<'a> {
    steps: Vec<&'a Op>,
    outcome: Outcome,
    invoke: u64,
    complete: u64,
}

/// Why one transaction must precede another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dep {
    Ww,
    Wr,
    Rw,
    Rt,
}

impl Dep {
    fn name(self) -> &'static str {
        match self {
            Dep::Ww => "ww",
            Dep::Wr => "wr",
            Dep::Rw => "rw",
            Dep::Rt => "rt",
        }
    }
}

/// The tokens a read saw, in list order.
fn read_tokens(op: &Op) -> Option<Vec<&str>> {
    match (&op.call, op.outcome, &op.ret) {
        (Call::ReadList, Outcome::Ok, Some(Ret::Text(t))) => Some(t.split_terminator(' ').collect()),
        _ => None,
    }
}

/// Checks the transactions of `workload` (the list-append workload) in `history`.
pub fn check(history: &[Op], workload: &str) -> Verdict {
    let ops: Vec<&Op> = history.iter().filter(|o| o.workload == workload).collect();
    let txns = group(&ops);
    let mut anomalies = Vec::new();
    internal(&txns, &mut anomalies);

    // Who appended each token (transactions that certainly failed are left out: the append
    // checker reports their tokens if they show up).
    let mut writer: HashMap<(&str, &str), usize> = HashMap::new();
    for (t, txn) in txns.iter().enumerate() {
        if txn.outcome == Outcome::Fail {
            continue;
        }
        for s in &txn.steps {
            if let Call::Append { token } = &s.call {
                writer.insert((s.key.as_str(), token.as_str()), t);
            }
        }
    }
    // Each list's version order: its longest read.
    let mut longest: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for txn in &txns {
        for s in &txn.steps {
            if let Some(tokens) = read_tokens(s) {
                let l = longest.entry(s.key.as_str()).or_default();
                if tokens.len() > l.len() {
                    *l = tokens;
                }
            }
        }
    }

    // Graph: transactions are nodes 0..n, barriers n..n+m.
    let n = txns.len();
    let mut acked: Vec<usize> = (0..n).filter(|&t| txns[t].outcome == Outcome::Ok).collect();
    acked.sort_by_key(|&t| txns[t].complete);
    let mut edges: Vec<Vec<(usize, Dep, &str)>> = vec![Vec::new(); n + acked.len()];
    for (key, order) in &longest {
        for pair in order.windows(2) {
            if let (Some(&a), Some(&b)) = (writer.get(&(*key, pair[0])), writer.get(&(*key, pair[1]))) {
                if a != b {
                    edges[a].push((b, Dep::Ww, key));
                }
            }
        }
    }
    let mut g1b = 0;
    for (t, txn) in txns.iter().enumerate() {
        if txn.outcome == Outcome::Fail {
            continue;
        }
        for s in &txn.steps {
            let Some(tokens) = read_tokens(s) else { continue };
            let key = s.key.as_str();
            let order = &longest[key];
            if order[..tokens.len()] != tokens[..] {
                continue; // divergent: the append checker reports it
            }
            if let Some(last) = tokens.last() {
                if let Some(&w) = writer.get(&(key, *last)) {
                    if w != t {
                        edges[w].push((t, Dep::Wr, key));
                        if g1b < MAX_CYCLES && !is_last_append(&txns[w], key, last) {
                            g1b += 1;
                            let mut shown: Vec<&Op> = txns[w].steps.clone();
                            shown.push(s);
                            anomalies.push(anomaly(
                                "G1b",
                                key,
                                format!(
                                    "read #{} of {key} ends at {last:?}, which its transaction followed with another \
                                     append to {key}: an intermediate state was visible",
                                    s.index
                                ),
                                &shown,
                            ));
                        }
                    }
                }
            }
            if let Some(next) = order.get(tokens.len()) {
                if let Some(&w) = writer.get(&(key, *next)) {
                    if w != t {
                        edges[t].push((w, Dep::Rw, key));
                    }
                }
            }
        }
    }
    // Real time, through the barrier chain.
    for (r, &t) in acked.iter().enumerate() {
        edges[t].push((n + r, Dep::Rt, ""));
        if r + 1 < acked.len() {
            edges[n + r].push((n + r + 1, Dep::Rt, ""));
        }
    }
    let completions: Vec<u64> = acked.iter().map(|&t| txns[t].complete).collect();
    for (t, txn) in txns.iter().enumerate() {
        if txn.outcome == Outcome::Fail {
            continue;
        }
        let before = completions.partition_point(|&c| c < txn.invoke);
        if before > 0 {
            edges[n + before - 1].push((t, Dep::Rt, ""));
        }
    }

    let mut cycles = 0;
    for scc in strongly_connected(&edges) {
        if cycles >= MAX_CYCLES {
            break;
        }
        let Some(&start) = scc.iter().find(|&&v| v < n) else { continue };
        if scc.len() < 2 {
            continue;
        }
        if let Some(cycle) = shortest_cycle(&edges, &scc, start) {
            cycles += 1;
            anomalies.push(describe(&txns, n, &cycle));
        }
    }
    let notes = vec![format!("{} transactions, {} acknowledged; {} lists", n, acked.len(), longest.len())];
    Verdict::new(&format!("{workload}{SUFFIX}"), &ops, anomalies, false, notes)
}

/// The operations grouped into transactions (an operation without a transaction number is one
/// on its own), in order of first step.
fn group<'a>(ops: &[&'a Op]) -> Vec<Txn<'a>> {
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut txns: Vec<Txn> = Vec::new();
    for &o in ops {
        let known = o.txn.and_then(|id| index.get(&id).copied());
        let slot = known.unwrap_or_else(|| {
            txns.push(Txn { steps: Vec::new(), outcome: o.outcome, invoke: o.invoke, complete: o.complete });
            if let Some(id) = o.txn {
                index.insert(id, txns.len() - 1);
            }
            txns.len() - 1
        });
        let t = &mut txns[slot];
        t.steps.push(o);
        t.invoke = t.invoke.min(o.invoke);
        t.complete = t.complete.max(o.complete);
        // Acknowledged only if every step was; certainly failed only if every step did.
        t.outcome = match (t.outcome, o.outcome) {
            (a, b) if a == b => a,
            _ => Outcome::Info,
        };
    }
    txns
}

/// Whether `token` is `txn`'s last append to `key`.
fn is_last_append(txn: &Txn, key: &str, token: &str) -> bool {
    let last = txn.steps.iter().rev().find_map(|s| match &s.call {
        Call::Append { token } if s.key == key => Some(token.as_str()),
        _ => None,
    });
    last == Some(token)
}

/// A transaction's reads agree with its own earlier steps: a read after a read of the same list
/// sees it plus the appends in between; a read after appends ends with them.
fn internal(txns: &[Txn], out: &mut Vec<Anomaly>) {
    let mut found = 0;
    for txn in txns {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        // Per key: the whole list if read earlier, else the appends since the start.
        let mut known: HashMap<&str, (bool, Vec<&str>)> = HashMap::new();
        for s in &txn.steps {
            let entry = known.entry(s.key.as_str()).or_insert((false, Vec::new()));
            match &s.call {
                Call::Append { token } => entry.1.push(token.as_str()),
                Call::ReadList => {
                    let Some(tokens) = read_tokens(s) else { continue };
                    let (whole, expect) = &*entry;
                    let ok = if *whole { tokens == *expect } else { tokens.ends_with(expect) };
                    if !ok && found < MAX_CYCLES {
                        found += 1;
                        out.push(anomaly(
                            "internal",
                            &s.key,
                            format!(
                                "read #{} of {} saw {:?}, but its own transaction's earlier steps imply {}{:?}",
                                s.index,
                                s.key,
                                tokens,
                                if *whole { "" } else { "a list ending with " },
                                expect
                            ),
                            &txn.steps,
                        ));
                    }
                    *entry = (true, tokens);
                }
                _ => {}
            }
        }
    }
}

/// Tarjan's strongly connected components (iterative), each as its nodes.
fn strongly_connected(edges: &[Vec<(usize, Dep, &str)>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut i)) = work.last_mut() {
            if let Some(&(w, _, _)) = edges[v].get(*i) {
                *i += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut scc = Vec::new();
                loop {
                    let w = stack.pop().expect("the component's nodes are on the stack");
                    on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(scc);
            }
        }
    }
    out
}

/// The shortest cycle through `start` within `scc`, as (node, edge to the next node) steps.
fn shortest_cycle<'a>(
    edges: &[Vec<(usize, Dep, &'a str)>],
    scc: &[usize],
    start: usize,
) -> Option<Vec<(usize, Dep, &'a str)>> {
    let inside: std::collections::HashSet<usize> = scc.iter().copied().collect();
    let mut came: HashMap<usize, (usize, Dep, &str)> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &(w, dep, key) in &edges[v] {
            if !inside.contains(&w) {
                continue;
            }
            if w == start {
                let mut path = vec![(v, dep, key)];
                let mut at = v;
                while at != start {
                    let (from, d, k) = came[&at];
                    path.push((from, d, k));
                    at = from;
                }
                path.reverse();
                return Some(path);
            }
            if w != start && !came.contains_key(&w) {
                came.insert(w, (v, dep, key));
                queue.push_back(w);
            }
        }
    }
    None
}

/// An anomaly for `cycle` (barrier nodes, numbered from `n`, folded into `rt` steps).
fn describe(txns: &[Txn], n: usize, cycle: &[(usize, Dep, &str)]) -> Anomaly {
    let mut steps: Vec<(usize, Dep, &str)> = Vec::new();
    for &(v, dep, key) in cycle {
        if v < n {
            steps.push((v, dep, key));
        }
    }
    let rw = steps.iter().filter(|s| s.1 == Dep::Rw).count();
    let realtime = steps.iter().any(|s| s.1 == Dep::Rt);
    let class = if rw > 1 {
        "G2-item"
    } else if rw == 1 {
        "G-single"
    } else if steps.iter().all(|s| matches!(s.1, Dep::Ww | Dep::Rt)) {
        "G0"
    } else {
        "G1c"
    };
    let kind = if realtime { format!("{class}-realtime") } else { class.to_string() };
    let name = |t: usize| {
        let first = txns[t].steps[0];
        format!("T{}(p{} #{})", t, first.process, first.index)
    };
    let mut text = String::new();
    for &(v, dep, key) in &steps {
        text.push_str(&name(v));
        if dep == Dep::Rt {
            text.push_str(" -rt-> ");
        } else {
            text.push_str(&format!(" -{}({key})-> ", dep.name()));
        }
    }
    text.push_str(&name(steps[0].0));
    let shown: Vec<&Op> = steps.iter().flat_map(|s| txns[s.0].steps.iter().copied()).collect();
    let key = steps.iter().find(|s| !s.2.is_empty()).map(|s| s.2).unwrap_or("");
    anomaly(&kind, key, format!("dependency cycle: {text}"), &shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::append::LIST_WORKLOAD;
    use crate::checker::testing::{indexed, op};
    use crate::checker::Validity;

    /// A step of transaction `txn`: `a:k:tok` appends, `r:k:t1 t2 ` reads.
    fn step(txn: u64, spec: &str, t: (u64, u64)) -> Op {
        let mut parts = spec.splitn(3, ':');
        let (f, key, arg) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let mut o = match f {
            "a" => {
                op(LIST_WORKLOAD, 0, key, Call::Append { token: arg.into() }, Outcome::Ok, Some(Ret::Len(0)), t.0, t.1)
            }
            _ => op(LIST_WORKLOAD, 0, key, Call::ReadList, Outcome::Ok, Some(Ret::Text(arg.into())), t.0, t.1),
        };
        o.txn = Some(txn);
        o
    }

    fn txn(id: u64, specs: &[&str], t: (u64, u64)) -> Vec<Op> {
        specs.iter().map(|s| step(id, s, t)).collect()
    }

    fn run(txns: Vec<Vec<Op>>) -> Verdict {
        check(&indexed(txns.into_iter().flatten().collect()), LIST_WORKLOAD)
    }

    #[test]
    fn a_serial_history_passes() {
        let v = run(vec![
            txn(1, &["a:x:1", "a:y:1"], (0, 10)),
            txn(2, &["r:x:1 ", "a:x:2"], (11, 20)),
            txn(3, &["r:x:1 2 ", "r:y:1 "], (21, 30)),
            // Concurrent with 3, serialized before it: fine.
            txn(4, &["a:y:2", "r:y:1 2 "], (22, 29)),
            txn(5, &["r:y:1 2 "], (31, 40)),
        ]);
        // T3 read y before T4's append, T4 ran concurrently: T3 -rw-> T4, no cycle.
        assert_eq!(v.validity, Validity::Valid, "{:?}", v.anomalies);
    }

    #[test]
    fn a_write_cycle_is_g0() {
        // x: 1 (T1) then 2 (T2); y: 2 (T2) then 1 (T1).
        let v = run(vec![
            txn(1, &["a:x:1", "a:y:1"], (0, 10)),
            txn(2, &["a:x:2", "a:y:2"], (0, 10)),
            txn(3, &["r:x:1 2 ", "r:y:2 1 "], (20, 30)),
        ]);
        assert!(v.has("G0"), "{:?}", v.anomalies);
    }

    #[test]
    fn reading_each_others_writes_is_g1c() {
        // T1 reads y with T2's element, T2 reads x with T1's element.
        let v = run(vec![txn(1, &["a:x:1", "r:y:2 "], (0, 10)), txn(2, &["a:y:2", "r:x:1 "], (0, 10))]);
        assert!(v.has("G1c"), "{:?}", v.anomalies);
    }

    #[test]
    fn write_skew_is_g2_and_a_lost_update_is_g_single() {
        // Write skew: each reads the other's list empty, then appends to its own.
        let skew = run(vec![
            txn(1, &["r:x:", "a:y:1"], (0, 10)),
            txn(2, &["r:y:", "a:x:2"], (0, 10)),
            txn(3, &["r:x:2 ", "r:y:1 "], (20, 30)),
        ]);
        assert!(skew.has("G2-item"), "{:?}", skew.anomalies);
        // T1 read x with T2's element but y without T2's other element: one rw.
        let single = run(vec![
            txn(1, &["r:y:", "r:x:2 "], (0, 10)),
            txn(2, &["a:y:2", "a:x:2"], (0, 10)),
            txn(3, &["r:y:2 "], (20, 30)),
        ]);
        assert!(single.has("G-single"), "{:?}", single.anomalies);
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_a_realtime_cycle() {
        // T1 is acknowledged before T2 starts, yet T2 does not see it.
        let v = run(vec![txn(1, &["a:x:1"], (0, 10)), txn(2, &["r:x:"], (20, 30)), txn(3, &["r:x:1 "], (40, 50))]);
        assert!(v.has("G-single-realtime"), "{:?}", v.anomalies);
        // Concurrent: not an anomaly.
        let ok = run(vec![txn(1, &["a:x:1"], (0, 25)), txn(2, &["r:x:"], (20, 30)), txn(3, &["r:x:1 "], (40, 50))]);
        assert_eq!(ok.validity, Validity::Valid, "{:?}", ok.anomalies);
    }

    #[test]
    fn intermediate_and_internal_reads_are_caught() {
        let g1b = run(vec![txn(1, &["a:x:1", "a:x:2"], (0, 10)), txn(2, &["r:x:1 "], (0, 10))]);
        assert!(g1b.has("G1b"), "{:?}", g1b.anomalies);
        let own = run(vec![txn(1, &["a:x:1", "r:x:"], (0, 10))]);
        assert!(own.has("internal"), "{:?}", own.anomalies);
        let twice = run(vec![txn(0, &["a:x:0"], (0, 1)), txn(1, &["r:x:0 ", "a:x:1", "r:x:1 "], (2, 10))]);
        assert!(twice.has("internal"), "{:?}", twice.anomalies);
    }

    #[test]
    fn failed_and_indeterminate_transactions() {
        // A failed transaction's element is not a node (the append checker reports it if read);
        // an indeterminate one may have happened, whenever after its invocation.
        let mut info = txn(1, &["a:x:1"], (0, 10));
        info[0].outcome = Outcome::Info;
        info[0].ret = None;
        let v = run(vec![info, txn(2, &["r:x:1 "], (100, 110))]);
        assert_eq!(v.validity, Validity::Valid, "{:?}", v.anomalies);
    }
}
