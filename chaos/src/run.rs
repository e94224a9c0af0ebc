//! One run: start a cluster behind the proxies, run the workloads' clients while the nemesis
//! injects faults, heal, read everything once more, check that every node holds the same data
//! and none panicked, then check the histories.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::checker::{append, bank, cycle, queue, register, set, Anomaly, Validity, Verdict};
use crate::client::CutSwitch;
use crate::cluster::{self, Cluster, State};
use crate::history::{elections, Clock, Counts, LeaderSample, Recorder};
use crate::nemesis::{self, FaultKind, MemberStats, Members, Nemesis, Timing};
use crate::workload::{self, KeyPool, BANK_ACCOUNTS, BANK_INITIAL};

/// What one run does.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Names the run in reports and on the command line (`--only`).
    pub name: String,
    pub nodes: u64,
    /// How long the clients run (faults included).
    pub duration: Duration,
    pub register_clients: usize,
    pub append_clients: usize,
    pub bank_clients: usize,
    pub set_clients: usize,
    pub queue_clients: usize,
    pub list_append_clients: usize,
    pub faults: Vec<FaultKind>,
    pub timing: Timing,
    /// Flags for every node (timeouts, --snapshot-every).
    pub flags: Vec<String>,
    /// Environment for every node (`RAFTIS_BROKEN`).
    pub env: Vec<(String, String)>,
    /// Time bound of the linearizability search, for the whole run.
    pub check_budget: Duration,
}

/// Where a run's files go and what it runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub raftis: PathBuf,
    pub out: PathBuf,
    pub seed: u64,
    /// The command that replays these runs (`--only NAME` is added per run).
    pub replay: String,
}

/// Everything a run found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub name: String,
    pub seed: u64,
    pub nodes: u64,
    pub verdicts: Vec<Verdict>,
    /// Problems of the cluster as a whole: different data on different nodes, panics, nodes
    /// that exited by themselves, no leader after healing.
    pub cluster_anomalies: Vec<Anomaly>,
    pub ops: Counts,
    pub faults: usize,
    pub fault_kinds: Vec<String>,
    pub elections: usize,
    /// What the membership nemesis did (all zero without `member` faults).
    #[serde(default)]
    pub member: MemberStats,
    pub seconds: f64,
    pub dir: PathBuf,
    /// The command that replays this run.
    pub replay: String,
}

impl RunResult {
    /// No invalid verdict and no cluster anomaly (an undecided check is not a failure).
    pub fn passed(&self) -> bool {
        self.cluster_anomalies.is_empty() && self.verdicts.iter().all(|v| v.validity != Validity::Invalid)
    }

    /// The classes of every anomaly found.
    pub fn kinds(&self) -> BTreeSet<String> {
        self.verdicts
            .iter()
            .flat_map(|v| v.anomalies.iter())
            .chain(self.cluster_anomalies.iter())
            .map(|a| a.kind.clone())
            .collect()
    }
}

/// The seed of the run named `name`: the base seed mixed with the name, so that runs of one
/// profile differ and `--seed S --only NAME` replays exactly one of them.
fn run_seed(seed: u64, name: &str) -> u64 {
    name.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// A seed for one client, derived from the run's seed.
fn client_seed(seed: u64, workload: u64, i: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(workload << 32).wrapping_add(i as u64)
}

/// How long the harness waits, after the workload time, for the fault in progress to end.
const NEMESIS_GRACE: Duration = Duration::from_secs(90);

fn cluster_anomaly(kind: &str, detail: String) -> Anomaly {
    Anomaly { kind: kind.into(), key: String::new(), detail, ops: Vec::new() }
}

/// Runs `spec` with `cfg`; writes the history and reports under `cfg.out`.
pub async fn run(spec: &RunSpec, cfg: &RunConfig) -> anyhow::Result<RunResult> {
    let began = Instant::now();
    let seed = run_seed(cfg.seed, &spec.name);
    let dir = cfg.out.join(format!("{}-seed{}", spec.name, cfg.seed));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clear {}", dir.display()))?;
    }
    let cluster = Arc::new(
        Cluster::start(cluster::Options {
            raftis: cfg.raftis.clone(),
            nodes: spec.nodes,
            flags: spec.flags.clone(),
            env: spec.env.clone(),
            dir: dir.join("cluster"),
            seed,
        })
        .await?,
    );
    let mut cluster_anomalies = Vec::new();
    cluster.wait_leader(Duration::from_secs(30)).await.context("no leader within 30 s of starting the cluster")?;
    if spec.bank_clients > 0 {
        workload::bank_setup(cluster.addrs(), Duration::from_secs(20)).await?;
    }

    let clock = Clock::start();
    let recorder = Recorder::default();
    let cut = CutSwitch::default();
    let stop = Arc::new(AtomicBool::new(false));
    let ctx = workload::Ctx {
        clock,
        recorder: recorder.clone(),
        addrs: cluster.addrs(),
        stop: stop.clone(),
        cut: cut.clone(),
        values: Arc::new(AtomicI64::new(1)),
    };

    // Leaders over time.
    let monitor_stop = Arc::new(AtomicBool::new(false));
    let monitor = tokio::spawn(monitor(cluster.clone(), recorder.clone(), clock, monitor_stop.clone()));

    let registers = Arc::new(KeyPool::new("reg:", 4, 120));
    let lists = Arc::new(KeyPool::new("list:", 3, 300));
    let sets = Arc::new(KeyPool::new("set:", 3, 300));
    let queues = Arc::new(KeyPool::new("queue:", 2, 400));
    let list_appends = Arc::new(KeyPool::new("lappend:", 3, 300));
    let mut clients = Vec::new();
    let mut process = 0;
    for i in 0..spec.register_clients {
        let seed = client_seed(seed, 1, i);
        clients.push(tokio::spawn(workload::register_client(ctx.clone(), process, seed, registers.clone())));
        process += 1;
    }
    for i in 0..spec.append_clients {
        let seed = client_seed(seed, 2, i);
        clients.push(tokio::spawn(workload::append_client(ctx.clone(), process, seed, lists.clone())));
        process += 1;
    }
    for i in 0..spec.bank_clients {
        let seed = client_seed(seed, 3, i);
        clients.push(tokio::spawn(workload::bank_client(ctx.clone(), process, seed)));
        process += 1;
    }
    for i in 0..spec.set_clients {
        let seed = client_seed(seed, 4, i);
        clients.push(tokio::spawn(workload::set_client(ctx.clone(), process, seed, sets.clone())));
        process += 1;
    }
    for i in 0..spec.list_append_clients {
        let seed = client_seed(seed, 6, i);
        clients.push(tokio::spawn(workload::list_append_client(ctx.clone(), process, seed, list_appends.clone())));
        process += 1;
    }
    for i in 0..spec.queue_clients {
        let seed = client_seed(seed, 5, i);
        clients.push(tokio::spawn(workload::queue_client(ctx.clone(), process, seed, queues.clone())));
        process += 1;
    }

    let steps = nemesis::schedule(seed, &spec.faults, spec.duration, spec.timing);
    let start = tokio::time::Instant::now();
    let nemesis_stop = Arc::new(AtomicBool::new(false));
    let members = Members::default();
    let mut nemesis = {
        let n = Nemesis {
            cluster: cluster.clone(),
            recorder: recorder.clone(),
            clock,
            cut: cut.clone(),
            members: members.clone(),
        };
        let stop = nemesis_stop.clone();
        tokio::spawn(async move { n.run(&steps, start, stop).await })
    };
    tokio::time::sleep_until(start + spec.duration).await;
    let phase = |what: &str| eprintln!("chaos: {}: {:.0} s: {what}", spec.name, began.elapsed().as_secs_f64());
    phase("workload time over; waiting for the fault in progress to end");
    nemesis_stop.store(true, Ordering::Relaxed);
    // A fault ends within its hold plus its own bounded waits; one that does not (a harness bug)
    // is abandoned, not waited for.
    let injected = match tokio::time::timeout(NEMESIS_GRACE, &mut nemesis).await {
        Ok(n) => n.unwrap_or(0),
        Err(_) => {
            nemesis.abort();
            cluster_anomalies.push(cluster_anomaly(
                "harness-stuck",
                format!("the fault in progress did not end within {NEMESIS_GRACE:?} of the workload's end"),
            ));
            recorder.faults().len()
        }
    };
    stop.store(true, Ordering::Relaxed);
    phase("waiting for the clients' last operations");
    // One deadline for all the clients (each operation is bounded). A client still running then
    // is not waited for but not aborted either: it records its last operation when that ends
    // (an aborted one would drop an operation that may have taken effect from the history).
    let clients_deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for c in clients {
        let _ = tokio::time::timeout_at(clients_deadline, c).await;
    }
    phase("healing");

    // Heal, then read everything once more.
    cluster.heal_all()?;
    cut.set(0.0);
    if cluster.wait_leader(Duration::from_secs(30)).await.is_none() {
        cluster_anomalies.push(cluster_anomaly("no-leader", "no leader within 30 s after healing".into()));
    }
    if spec.faults.iter().any(|k| matches!(k, FaultKind::Member | FaultKind::MemberSplit | FaultKind::MemberKill)) {
        // Every node a member again (nodes that are out rejoin), so that the final reads and the
        // digest check cover all of them.
        match members.restore(&cluster, Duration::from_secs(60)).await {
            Ok(how) => eprintln!("chaos: {}: membership restored: {how}", spec.name),
            Err(what) => cluster_anomalies.push(cluster_anomaly(
                "membership-not-restored",
                format!("60 s after healing, not every node is a voter: {what}"),
            )),
        }
    }
    let final_process = 1000;
    let keys = workload::FinalKeys {
        registers: if spec.register_clients > 0 { registers.all() } else { Vec::new() },
        lists: if spec.append_clients > 0 { lists.all() } else { Vec::new() },
        list_appends: if spec.list_append_clients > 0 { list_appends.all() } else { Vec::new() },
        sets: if spec.set_clients > 0 { sets.all() } else { Vec::new() },
        queues: if spec.queue_clients > 0 { queues.all() } else { Vec::new() },
        bank: spec.bank_clients > 0,
    };
    phase("final reads");
    let budget = Duration::from_secs(60);
    let unread = workload::final_reads(&ctx, final_process, &keys, Duration::from_secs(15), budget).await;
    if unread > 0 {
        cluster_anomalies.push(cluster_anomaly(
            "final-reads-incomplete",
            format!("{unread} final reads not sent: the {budget:?} for all of them ran out"),
        ));
    }
    phase("waiting for equal digests");

    if let Some(a) = converge(&cluster, Duration::from_secs(30)).await {
        cluster_anomalies.push(a);
    }
    monitor_stop.store(true, Ordering::Relaxed);
    let _ = monitor.await;
    for (id, status) in cluster.crashes() {
        cluster_anomalies.push(cluster_anomaly("node-exited", format!("node {id} exited by itself: {status}")));
    }
    cluster.stop_all().await;
    for (id, line) in cluster.panics().into_iter().take(5) {
        cluster_anomalies.push(cluster_anomaly("panic", format!("node {id}: {line}")));
    }

    phase("checking the history");
    let ops = recorder.ops();
    let verdicts = vec![
        register::check(&ops, spec.check_budget),
        append::check(&ops),
        append::check_workload(&ops, append::LIST_WORKLOAD),
        cycle::check(&ops, append::LIST_WORKLOAD),
        bank::check(&ops, BANK_ACCOUNTS, BANK_INITIAL * BANK_ACCOUNTS as i64),
        set::check(&ops),
        queue::check(&ops),
    ]
    .into_iter()
    .filter(|v| v.counts.total() > 0)
    .collect();
    let faults = recorder.faults();
    let leaders = recorder.leaders();
    let result = RunResult {
        name: spec.name.clone(),
        seed: cfg.seed,
        nodes: spec.nodes,
        verdicts,
        cluster_anomalies,
        ops: Counts::of(&ops),
        faults: injected,
        fault_kinds: faults.iter().map(|f| f.name.clone()).collect::<BTreeSet<_>>().into_iter().collect(),
        elections: elections(&leaders),
        member: members.stats(),
        seconds: began.elapsed().as_secs_f64(),
        dir: dir.clone(),
        replay: format!("{} --only {}", cfg.replay, spec.name),
    };
    crate::report::write_run(&result, &ops, &faults, &leaders, spec)?;
    Ok(result)
}

/// Polls every node's INFO and records which node leads in which term.
async fn monitor(cluster: Arc<Cluster>, recorder: Recorder, clock: Clock, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        for id in cluster.in_state(State::Running) {
            if let Some(info) = cluster.info_raft(id, Duration::from_millis(200)).await {
                if info.get("raft_role").map(String::as_str) == Some("leader") {
                    let term = info.get("raft_term").and_then(|t| t.parse().ok()).unwrap_or(0);
                    recorder.leader_sample(LeaderSample { at: clock.now(), node: id, term });
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every node answers with the same digest; returns what differs if that does not
/// happen within `timeout` (or if the applied indexes are equal and the digests still differ
/// three times in a row).
async fn converge(cluster: &Cluster, timeout: Duration) -> Option<Anomaly> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut same_index_differs = 0;
    loop {
        let d = cluster.digests().await;
        let answered: Vec<&(String, u64)> = d.values().flatten().collect();
        let all = answered.len() == d.len();
        if all && answered.iter().all(|(dg, _)| *dg == answered[0].0) {
            return None;
        }
        if all && answered.iter().all(|(_, i)| *i == answered[0].1) {
            same_index_differs += 1;
        } else {
            same_index_differs = 0;
        }
        if same_index_differs >= 3 || tokio::time::Instant::now() >= deadline {
            let per_node: Vec<String> = d
                .iter()
                .map(|(id, v)| match v {
                    Some((dg, i)) => format!("node {id}: digest {dg} at applied index {i}"),
                    None => format!("node {id}: no answer"),
                })
                .collect();
            let kind = if all { "digest-mismatch" } else { "no-convergence" };
            return Some(cluster_anomaly(kind, format!("after healing, the nodes differ: {}", per_node.join("; "))));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
