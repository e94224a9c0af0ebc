//! The nemesis: faults on a schedule drawn from a seed. Each fault is injected, held for a while,
//! then healed, one after another: kills (a random node, the leader, a majority) with restarts,
//! pauses (SIGSTOP/SIGCONT), partitions through the bus proxies (leader isolated, majority and
//! minority, a bridge, one-way), delays and connection drops on links, resets of every bus
//! connection, client connections cut right after a request was sent, and membership changes
//! (Jepsen etcd's "member" nemesis: a node removed, stopped and wiped, then joining again; alone,
//! with another node killed, or across a partition).
//!
//! The schedule (times, kinds, durations, random choices) depends only on the seed; which node
//! is "the leader" is whatever the cluster says at that moment.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::client::CutSwitch;
use crate::cluster::{Cluster, Member, State};
use crate::history::{Clock, Recorder};
use crate::resp::{Conn, Resp};

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    KillRandom,
    KillLeader,
    KillMajority,
    PauseRandom,
    PauseLeader,
    PartitionLeader,
    PartitionHalves,
    PartitionBridge,
    PartitionOneWay,
    LinkDelay,
    LinkDrop,
    LinkReset,
    ClientCut,
    Member,
    MemberSplit,
    MemberKill,
}

impl FaultKind {
    /// Every kind but [`FaultKind::Member`] (which wants five nodes: see [`FaultKind::WITH_MEMBER`]).
    pub const ALL: [FaultKind; 13] = [
        FaultKind::KillRandom,
        FaultKind::KillLeader,
        FaultKind::KillMajority,
        FaultKind::PauseRandom,
        FaultKind::PauseLeader,
        FaultKind::PartitionLeader,
        FaultKind::PartitionHalves,
        FaultKind::PartitionBridge,
        FaultKind::PartitionOneWay,
        FaultKind::LinkDelay,
        FaultKind::LinkDrop,
        FaultKind::LinkReset,
        FaultKind::ClientCut,
    ];

    /// Every kind, membership changes included.
    pub const WITH_MEMBER: [FaultKind; 16] = [
        FaultKind::KillRandom,
        FaultKind::KillLeader,
        FaultKind::KillMajority,
        FaultKind::PauseRandom,
        FaultKind::PauseLeader,
        FaultKind::PartitionLeader,
        FaultKind::PartitionHalves,
        FaultKind::PartitionBridge,
        FaultKind::PartitionOneWay,
        FaultKind::LinkDelay,
        FaultKind::LinkDrop,
        FaultKind::LinkReset,
        FaultKind::ClientCut,
        FaultKind::Member,
        FaultKind::MemberSplit,
        FaultKind::MemberKill,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillRandom => "kill-random",
            FaultKind::KillLeader => "kill-leader",
            FaultKind::KillMajority => "kill-majority",
            FaultKind::PauseRandom => "pause-random",
            FaultKind::PauseLeader => "pause-leader",
            FaultKind::PartitionLeader => "partition-leader",
            FaultKind::PartitionHalves => "partition-halves",
            FaultKind::PartitionBridge => "partition-bridge",
            FaultKind::PartitionOneWay => "partition-one-way",
            FaultKind::LinkDelay => "link-delay",
            FaultKind::LinkDrop => "link-drop",
            FaultKind::LinkReset => "link-reset",
            FaultKind::ClientCut => "client-cut",
            FaultKind::Member => "member",
            FaultKind::MemberSplit => "member-split",
            FaultKind::MemberKill => "member-kill",
        }
    }
}

/// One scheduled fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// When to inject it, from the start of the workload.
    pub at: Duration,
    pub kind: FaultKind,
    /// How long to hold it before healing.
    pub hold: Duration,
    /// Seeds the fault's own random choices (which node, which links).
    pub pick: u64,
}

/// Timing of a schedule.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// No fault before this.
    pub warmup: Duration,
    /// Quiet time between two faults (uniform in the range, ms).
    pub gap_ms: (u64, u64),
    /// How long a fault lasts (uniform in the range, ms).
    pub hold_ms: (u64, u64),
}

/// The faults for a run of `duration`, drawn from `seed` among `kinds`; every fault is healed
/// before `duration` ends.
pub fn schedule(seed: u64, kinds: &[FaultKind], duration: Duration, timing: Timing) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6e656d65736973);
    let mut steps = Vec::new();
    let mut t = timing.warmup;
    if kinds.is_empty() {
        return steps;
    }
    loop {
        let kind = kinds[rng.random_range(0..kinds.len())];
        let hold = match kind {
            FaultKind::LinkReset => Duration::ZERO,
            _ => Duration::from_millis(rng.random_range(timing.hold_ms.0..=timing.hold_ms.1)),
        };
        if t + hold + Duration::from_millis(500) > duration {
            break;
        }
        steps.push(Step { at: t, kind, hold, pick: rng.random() });
        t += hold + Duration::from_millis(rng.random_range(timing.gap_ms.0..=timing.gap_ms.1));
    }
    steps
}

/// What is needed to inject faults.
pub struct Nemesis {
    pub cluster: Arc<Cluster>,
    pub recorder: Recorder,
    pub clock: Clock,
    pub cut: CutSwitch,
    /// The membership nemesis's state, shared with the final heal ([`Members::restore`]).
    pub members: Members,
}

/// How to undo an injected fault.
enum Undo {
    Restart(Vec<u64>),
    Resume(Vec<u64>),
    HealNet,
    ClientsWhole,
    /// Start a node that was removed again, with `--join`.
    Rejoin(u64),
    /// One, then the other.
    Both(Box<Undo>, Box<Undo>),
    Nothing,
}

/// What the membership nemesis did in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStats {
    /// `RAFT.NODE REMOVE` acknowledged (or answered "not a member" to a retry); the node was then
    /// stopped and its directory wiped.
    pub removed: usize,
    /// Removals not confirmed within the fault's time (recorded, and the node left as it was).
    pub remove_failed: usize,
    /// Nodes found missing from the membership without an acknowledged removal (a REMOVE that
    /// completed after the harness had given up on it): taken out as if removed.
    pub found_removed: usize,
    /// Nodes started again with `--join` during the run.
    pub rejoined: usize,
    /// Joins seen through to voter during the run.
    pub became_voter: usize,
    /// Member faults that changed nothing (a change still in progress, no leader to ask, too
    /// few voters).
    pub skipped: usize,
    /// Nodes the final heal started again with `--join`.
    pub heal_rejoined: usize,
    /// How long the final heal took until every node was a voter and no change was half done.
    pub heal_ms: u64,
    /// `member-split` faults that asked for a removal (across a partition that joint consensus
    /// cannot commit it through).
    #[serde(default)]
    pub split_asked: usize,
    /// Of those, removals the leader acknowledged while the partition held (a broken build).
    #[serde(default)]
    pub split_removed: usize,
}

impl MemberStats {
    /// Membership operations that happened (removals, rejoins).
    pub fn ops(&self) -> usize {
        self.removed + self.found_removed + self.rejoined + self.heal_rejoined
    }
}

#[derive(Default)]
struct MemberState {
    /// Nodes started with `--join` that were not yet seen as voters.
    joining: BTreeSet<u64>,
    stats: MemberStats,
}

/// The membership nemesis's state: which nodes are on their way back in, what it did.
#[derive(Clone, Default)]
pub struct Members(Arc<Mutex<MemberState>>);

/// `RAFT.NODE` errors worth sending again: no leader now, another change in progress, or a
/// change that did not commit in time (a retry finishes it or finds it done).
fn transient(e: &str) -> bool {
    e.starts_with("TRYAGAIN")
        || e.starts_with("CLUSTERDOWN")
        || e.starts_with("LOADING")
        || e.contains("did not complete")
        || e.contains("not the leader")
}

/// How long one `RAFT.NODE` call may take (the leader waits up to 10 s per configuration change).
const MEMBER_CALL_TIMEOUT: Duration = Duration::from_secs(25);

impl Members {
    pub fn stats(&self) -> MemberStats {
        self.0.lock().unwrap().stats.clone()
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemberState) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }

    /// A running node that is in the cluster, the leader if there is one, to send a command to.
    async fn target(cluster: &Cluster) -> Option<u64> {
        if let Some(l) = cluster.leader().await {
            return Some(l);
        }
        cluster.in_state(State::Running).into_iter().find(|&id| !cluster.is_out(id))
    }

    /// Sends `args` to the leader (or any running member, which forwards it) until the answer is
    /// not a transient error or `deadline` passes; `Err` holds the last transient error. A lost
    /// reply is sent again: a change that happened answers so (REMOVE: "not a member").
    async fn command(cluster: &Cluster, args: &[&str], deadline: tokio::time::Instant) -> Result<Resp, String> {
        loop {
            let last = match Self::target(cluster).await {
                None => "no running node to ask".to_string(),
                Some(t) => match Conn::connect(&cluster.node(t).addr, Duration::from_secs(2)).await {
                    Err(e) => format!("node {t}: {e}"),
                    Ok(mut conn) => {
                        conn.timeout = MEMBER_CALL_TIMEOUT;
                        match conn.call(args).await {
                            Ok(Resp::Error(e)) if transient(&e) => format!("node {t}: -{e}"),
                            Ok(r) => return Ok(r),
                            Err(e) => format!("node {t}: {e}"),
                        }
                    }
                },
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(last);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `RAFT.NODE REMOVE id`, retried until `deadline`: `Ok` once the node is out of the membership.
    async fn remove(cluster: &Cluster, id: u64, deadline: tokio::time::Instant) -> Result<&'static str, String> {
        match Self::command(cluster, &["RAFT.NODE", "REMOVE", &id.to_string()], deadline).await {
            Ok(r) if r.is_ok() => Ok("acknowledged"),
            Ok(Resp::Error(e)) if e.contains("not a member") => Ok("not a member any more"),
            Ok(r) => Err(format!("answered {r}")),
            Err(e) => Err(e),
        }
    }

    /// Starts node `id`, which is out, again with `--join` through the leader (or any running
    /// member).
    async fn rejoin(&self, cluster: &Cluster, id: u64) -> anyhow::Result<u64> {
        let via = match cluster.leader().await.filter(|&l| l != id && !cluster.is_out(l)) {
            Some(l) => l,
            None => cluster
                .in_state(State::Running)
                .into_iter()
                .find(|&v| v != id && !cluster.is_out(v))
                .unwrap_or(if id == 1 { 2 } else { 1 }),
        };
        cluster.rejoin(id, via)?;
        self.with(|s| s.joining.insert(id));
        Ok(via)
    }

    /// Brings the harness's view in line with the leader's membership list: joins that reached
    /// voter are done; a node missing from the list that the harness neither took out nor is
    /// bringing back was removed by a REMOVE that completed late: it is taken out (stopped,
    /// wiped). Returns what it did.
    async fn reconcile(&self, cluster: &Cluster, list: &[Member]) -> Vec<String> {
        let mut notes = Vec::new();
        let voter = |id: u64| list.iter().any(|m| m.id == id && m.votes());
        let done: Vec<u64> = self.with(|s| {
            let done: Vec<u64> = s.joining.iter().copied().filter(|&id| voter(id)).collect();
            s.joining.retain(|id| !done.contains(id));
            s.stats.became_voter += done.len();
            done
        });
        if !done.is_empty() {
            notes.push(format!("node(s) {done:?} joined as voters"));
        }
        for id in cluster.ids() {
            let joining = self.with(|s| s.joining.contains(&id));
            if !joining && !cluster.is_out(id) && !list.iter().any(|m| m.id == id) {
                let why = "found missing from the membership: a removal completed late";
                if let Err(e) = cluster.take_out(id, why).await {
                    eprintln!("chaos: taking node {id} out: {e:#}");
                }
                self.with(|s| s.stats.found_removed += 1);
                notes.push(format!("node {id} {why}: stopped and wiped"));
            }
        }
        notes
    }

    /// A member fault that changed nothing: counted, and described after what it did note.
    fn skipped(&self, why: String, notes: Vec<String>) -> (String, Undo) {
        self.with(|s| s.stats.skipped += 1);
        let mut d = format!("skipped: {why}");
        if !notes.is_empty() {
            d = format!("{}; {d}", notes.join("; "));
        }
        (d, Undo::Nothing)
    }

    /// Waits (until `deadline`) for a leader's list, joins in progress to finish, and no change
    /// half done; `Err` says what is still in the way.
    async fn settled(
        &self,
        cluster: &Cluster,
        deadline: tokio::time::Instant,
        notes: &mut Vec<String>,
    ) -> Result<Vec<Member>, String> {
        loop {
            let listed = cluster.leader_members().await;
            if let Some((_, list)) = &listed {
                notes.extend(self.reconcile(cluster, list).await);
            }
            let joining: Vec<u64> = self.with(|s| s.joining.iter().copied().collect());
            let joint = cluster.joint_nodes().await;
            match listed {
                Some((_, list)) if joining.is_empty() && joint.is_empty() => return Ok(list),
                _ if tokio::time::Instant::now() < deadline => {}
                None => return Err("no leader listed the membership".into()),
                Some(_) if !joining.is_empty() => return Err(format!("node(s) {joining:?} still joining")),
                Some(_) => return Err(format!("nodes {joint:?} report a change half done (joint)")),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// One `member-split` fault, on five voters: cuts the leader and one other voter off from the
    /// three others, and asks the leader to remove two of those three in one change. Joint
    /// consensus cannot commit it (the old voters' majority is on the other side, which elects a
    /// leader of its own meanwhile); a change made in one step would, with two leaders taking
    /// writes. The network heals after the hold, whatever the answer; a removal that completed
    /// (then or later) is reconciled by the next `member` fault or the final heal.
    async fn split(&self, cluster: &Cluster, step: &Step, rng: &mut StdRng) -> (String, Undo) {
        let mut notes = Vec::new();
        let deadline = tokio::time::Instant::now() + step.hold.max(Duration::from_secs(2));
        let list = match self.settled(cluster, deadline, &mut notes).await {
            Ok(list) => list,
            Err(why) => return self.skipped(why, notes),
        };
        let voters: Vec<u64> = list.iter().filter(|m| m.votes()).map(|m| m.id).collect();
        let Some(leader) = list.iter().find(|m| m.role == "leader").map(|m| m.id) else {
            return self.skipped("the list names no leader".into(), notes);
        };
        if voters.len() < 5 {
            return self.skipped(format!("only {} voters {voters:?}", voters.len()), notes);
        }
        let mut others: Vec<u64> = voters.iter().copied().filter(|&v| v != leader).collect();
        others.shuffle(rng);
        let kept = others[0];
        let rest: Vec<u64> = others[1..].to_vec();
        let victims = [rest[0], rest[1]];
        cluster.net.partition(&[vec![leader, kept], rest.clone()]);
        let args = ["RAFT.NODE", "REMOVE", &victims[0].to_string(), &victims[1].to_string()];
        let hold = step.hold.max(Duration::from_secs(1));
        let answer = match Conn::connect(&cluster.node(leader).addr, Duration::from_secs(1)).await {
            Err(e) => format!("not sent: {e}"),
            Ok(mut conn) => {
                conn.timeout = hold;
                match conn.call(&args).await {
                    Ok(r) if r.is_ok() => {
                        self.with(|s| s.stats.split_removed += 1);
                        "acknowledged".to_string()
                    }
                    Ok(r) => format!("answered {r}"),
                    Err(e) => format!("no answer within {hold:?} ({e})"),
                }
            }
        };
        self.with(|s| s.stats.split_asked += 1);
        notes.push(format!(
            "[{leader} (leader) {kept}] | {rest:?}; the leader asked to remove {victims:?} in one change: {answer}"
        ));
        (notes.join("; "), Undo::HealNet)
    }

    /// One `member` fault: finish a removal left half done, or bring a node that is out back
    /// (`--join`), or remove a voter (`RAFT.NODE REMOVE`, retried within the fault's hold), stop
    /// it and wipe its directory; it rejoins when the fault heals, or (half of the time) stays
    /// out until a later `member` fault or the final heal. Never while a join is still in
    /// progress or a change half done, and never below `min_voters` voters.
    async fn step(&self, cluster: &Cluster, step: &Step, rng: &mut StdRng) -> (String, Undo) {
        let n = cluster.ids().len();
        // Five nodes keep at least three voters (one may fail); three keep two.
        let min_voters = if n >= 5 { 3 } else { n.saturating_sub(1).max(1) };
        let wait = step.hold.max(Duration::from_secs(2));
        let deadline = tokio::time::Instant::now() + wait;
        let mut notes = Vec::new();
        let list = match self.settled(cluster, deadline, &mut notes).await {
            Ok(list) => list,
            Err(why) => return self.skipped(why, notes),
        };
        let voters: Vec<u64> = list.iter().filter(|m| m.votes()).map(|m| m.id).collect();
        let leader = list.iter().find(|m| m.role == "leader").map(|m| m.id);
        let out = cluster.out_nodes();
        let can_remove = voters.len() > min_voters;
        // A learner nobody is bringing in: a removal cut short between demotion and drop.
        let leftover = list.iter().find(|m| !m.votes()).map(|m| m.id);
        let victim = if let Some(x) = leftover {
            notes.push(format!("node {x} is a learner left by a removal cut short"));
            x
        } else if !out.is_empty() && (!can_remove || rng.random_bool(0.6)) {
            let x = out[rng.random_range(0..out.len())];
            return match self.rejoin(cluster, x).await {
                Ok(via) => {
                    self.with(|s| s.stats.rejoined += 1);
                    notes.push(format!("node {x} (out) rejoins with --join through node {via}"));
                    (notes.join("; "), Undo::Nothing)
                }
                Err(e) => self.skipped(format!("node {x} could not be started: {e:#}"), notes),
            };
        } else if !can_remove {
            return self.skipped(format!("only {} voters {voters:?}", voters.len()), notes);
        } else {
            match leader {
                Some(l) if rng.random_bool(0.3) => l,
                _ => voters[rng.random_range(0..voters.len())],
            }
        };
        let what = if Some(victim) == leader { " (the leader)" } else { "" };
        let removal = Self::remove(cluster, victim, tokio::time::Instant::now() + wait).await;
        match removal {
            Ok(how) => {
                if let Err(e) = cluster.take_out(victim, "removed by the member nemesis").await {
                    eprintln!("chaos: taking node {victim} out: {e:#}");
                }
                self.with(|s| s.stats.removed += 1);
                let stays_out = rng.random_bool(0.5);
                notes.push(format!(
                    "node {victim}{what} removed ({how}; {} voters before), stopped, directory wiped; {}",
                    voters.len(),
                    if stays_out {
                        "stays out until a later member fault or the final heal".to_string()
                    } else {
                        format!("rejoins with --join after {:?}", step.hold)
                    }
                ));
                (notes.join("; "), if stays_out { Undo::Nothing } else { Undo::Rejoin(victim) })
            }
            Err(e) => {
                self.with(|s| s.stats.remove_failed += 1);
                notes.push(format!(
                    "REMOVE of node {victim}{what} not confirmed within {wait:?}: {e}; left as it is (checked again \
                     by the next member fault and the final heal)"
                ));
                (notes.join("; "), Undo::Nothing)
            }
        }
    }

    /// The final heal's part: every node a member again. Starts the nodes that are out with
    /// `--join`, takes out (and then brings back) nodes the membership lost, promotes learners
    /// (a learner left by a removal cut short does not ask by itself), until the leader lists
    /// every node as a voter and no running node reports a change half done. `Err` says what is
    /// still wrong at `timeout`.
    pub async fn restore(&self, cluster: &Cluster, timeout: Duration) -> Result<String, String> {
        let began = tokio::time::Instant::now();
        let deadline = began + timeout;
        let n = cluster.ids().len();
        let mut rejoined = Vec::new();
        let mut last;
        loop {
            for id in cluster.in_state(State::Dead).into_iter().filter(|&id| !cluster.is_out(id)) {
                // A node that exited by itself (reported as such): start it again all the same.
                if let Err(e) = cluster.spawn(id) {
                    eprintln!("chaos: restarting node {id}: {e:#}");
                }
            }
            for id in cluster.out_nodes() {
                match self.rejoin(cluster, id).await {
                    Ok(_) => {
                        rejoined.push(id);
                        self.with(|s| s.stats.heal_rejoined += 1);
                    }
                    Err(e) => eprintln!("chaos: rejoining node {id}: {e:#}"),
                }
            }
            match cluster.leader_members().await {
                None => last = "no leader listed the membership".to_string(),
                Some((leader, list)) => {
                    self.reconcile(cluster, &list).await;
                    for m in list.iter().filter(|m| !m.votes()) {
                        let promote = ["RAFT.NODE", "PROMOTE", &m.id.to_string()];
                        let _ = cluster.ask(leader, &promote, Duration::from_secs(12)).await;
                    }
                    let joint = cluster.joint_nodes().await;
                    let dead: Vec<u64> =
                        cluster.ids().into_iter().filter(|&id| cluster.state(id) != State::Running).collect();
                    let voters = list.iter().filter(|m| m.votes()).count();
                    if list.len() == n && voters == n && joint.is_empty() && dead.is_empty() {
                        let ms = began.elapsed().as_millis() as u64;
                        self.with(|s| s.stats.heal_ms = ms);
                        return Ok(format!("all {n} nodes voters after {ms} ms (rejoined at heal: {rejoined:?})"));
                    }
                    let roles: Vec<String> = list.iter().map(|m| format!("{}:{}", m.id, m.role)).collect();
                    last = format!(
                        "the leader lists {}, nodes {joint:?} report a change half done, nodes {dead:?} not running",
                        roles.join(" ")
                    );
                }
            }
            if tokio::time::Instant::now() >= deadline {
                self.with(|s| s.stats.heal_ms = began.elapsed().as_millis() as u64);
                return Err(last);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Nemesis {
    /// Runs `steps` (times counted from `start`) until done or `stop`; returns how many faults
    /// were injected.
    pub async fn run(&self, steps: &[Step], start: tokio::time::Instant, stop: Arc<AtomicBool>) -> usize {
        let mut injected = 0;
        for step in steps {
            let at = start + step.at;
            while tokio::time::Instant::now() < at {
                if stop.load(Ordering::Relaxed) {
                    return injected;
                }
                tokio::time::sleep(Duration::from_millis(50).min(at - tokio::time::Instant::now())).await;
            }
            let began = self.clock.now();
            let (detail, undo) = self.inject(step).await;
            let n = self.recorder.fault_start(step.kind.name(), detail, began);
            injected += 1;
            if matches!(undo, Undo::Nothing) {
                self.recorder.fault_end(n, self.clock.now());
                continue;
            }
            tokio::time::sleep(step.hold).await;
            self.undo(undo).await;
            self.recorder.fault_end(n, self.clock.now());
        }
        injected
    }

    /// The leader now, or a random running node if there is none.
    async fn leader_or_any(&self, rng: &mut StdRng) -> u64 {
        if let Some(l) = self.cluster.leader().await {
            return l;
        }
        let running = self.cluster.in_state(State::Running);
        let pool = if running.is_empty() { self.cluster.ids() } else { running };
        pool[rng.random_range(0..pool.len())]
    }

    async fn inject(&self, step: &Step) -> (String, Undo) {
        let mut rng = StdRng::seed_from_u64(step.pick);
        let c = &self.cluster;
        let mut ids = c.ids();
        let n = ids.len();
        let net = &c.net;
        match step.kind {
            FaultKind::KillRandom | FaultKind::KillLeader | FaultKind::KillMajority => {
                let victims = match step.kind {
                    FaultKind::KillRandom => vec![ids[rng.random_range(0..n)]],
                    FaultKind::KillLeader => vec![self.leader_or_any(&mut rng).await],
                    _ => {
                        ids.shuffle(&mut rng);
                        ids[..n / 2 + 1].to_vec()
                    }
                };
                for &v in &victims {
                    c.kill(v).await;
                }
                (format!("SIGKILL nodes {victims:?}, restart after {:?}", step.hold), Undo::Restart(victims))
            }
            FaultKind::PauseRandom | FaultKind::PauseLeader => {
                let v = if step.kind == FaultKind::PauseRandom {
                    ids[rng.random_range(0..n)]
                } else {
                    self.leader_or_any(&mut rng).await
                };
                c.note(v, "SIGSTOP");
                c.pause(v);
                (format!("SIGSTOP node {v} for {:?}", step.hold), Undo::Resume(vec![v]))
            }
            FaultKind::PartitionLeader => {
                let l = self.leader_or_any(&mut rng).await;
                let others: Vec<u64> = ids.iter().copied().filter(|&i| i != l).collect();
                net.partition(&[vec![l], others]);
                (format!("node {l} (leader) cut off from the others"), Undo::HealNet)
            }
            FaultKind::PartitionHalves => {
                ids.shuffle(&mut rng);
                let (minority, majority) = ids.split_at(n / 2);
                net.partition(&[minority.to_vec(), majority.to_vec()]);
                (format!("partition {minority:?} | {majority:?}"), Undo::HealNet)
            }
            FaultKind::PartitionBridge => {
                ids.shuffle(&mut rng);
                let bridge = ids[0];
                let rest = &ids[1..];
                let (a, b) = rest.split_at(rest.len() / 2);
                for &x in a {
                    for &y in b {
                        net.set_down(x, y, true);
                        net.set_down(y, x, true);
                    }
                }
                (format!("bridge: {a:?} and {b:?} cut apart, node {bridge} sees both"), Undo::HealNet)
            }
            FaultKind::PartitionOneWay => {
                let l = self.leader_or_any(&mut rng).await;
                let outgoing = rng.random_bool(0.5);
                for &o in ids.iter().filter(|&&i| i != l) {
                    if outgoing {
                        net.set_down(l, o, true);
                    } else {
                        net.set_down(o, l, true);
                    }
                }
                let what = if outgoing { "to" } else { "from" };
                (format!("one-way: connections {what} node {l} (leader) refused"), Undo::HealNet)
            }
            FaultKind::LinkDelay | FaultKind::LinkDrop => {
                let mut links = Vec::new();
                for &a in &ids {
                    for &b in &ids {
                        if a != b && rng.random_bool(0.5) {
                            links.push((a, b));
                        }
                    }
                }
                if step.kind == FaultKind::LinkDelay {
                    let ms = rng.random_range(20..=250);
                    for &(a, b) in &links {
                        net.set_delay(a, b, Duration::from_millis(ms));
                    }
                    (format!("delay {ms} ms each way on links {links:?}"), Undo::HealNet)
                } else {
                    let p = rng.random_range(0.02..0.3);
                    for &(a, b) in &links {
                        net.set_drop(a, b, p);
                    }
                    (format!("drop (connection reset) p={p:.2} per chunk on links {links:?}"), Undo::HealNet)
                }
            }
            FaultKind::LinkReset => {
                let mut total = 0;
                for &a in &ids {
                    for &b in &ids {
                        if a != b {
                            total += net.reset(a, b);
                        }
                    }
                }
                (format!("reset all {total} open bus connections"), Undo::Nothing)
            }
            FaultKind::ClientCut => {
                let p = rng.random_range(0.05..0.3);
                self.cut.set(p);
                (format!("clients drop their connection after sending, p={p:.2}"), Undo::ClientsWhole)
            }
            FaultKind::Member => self.members.step(c, step, &mut rng).await,
            FaultKind::MemberSplit => self.members.split(c, step, &mut rng).await,
            FaultKind::MemberKill => {
                // A member change made while another node is down (Jepsen etcd's member fault
                // composed with a kill): the change needs the quorums of both configurations
                // among the nodes left; the victim may be the dead node itself.
                let up: Vec<u64> = c.in_state(State::Running).into_iter().filter(|&i| !c.is_out(i)).collect();
                let Some(&k) = up.get(rng.random_range(0..up.len().max(1))) else {
                    return self.members.skipped("no running member to kill".into(), Vec::new());
                };
                c.kill(k).await;
                let (what, undo) = self.members.step(c, step, &mut rng).await;
                let d = format!("SIGKILL node {k} (restarted after {:?}), then: {what}", step.hold);
                (d, Undo::Both(Box::new(Undo::Restart(vec![k])), Box::new(undo)))
            }
        }
    }

    async fn undo(&self, undo: Undo) {
        let c = &self.cluster;
        match undo {
            Undo::Restart(ids) => {
                for id in ids {
                    // A node that is out of the cluster comes back only by joining.
                    if c.state(id) == State::Dead && !c.is_out(id) {
                        if let Err(e) = c.spawn(id) {
                            eprintln!("chaos: restarting node {id}: {e:#}");
                        }
                    }
                }
            }
            Undo::Resume(ids) => {
                for id in ids {
                    c.resume(id);
                    c.note(id, "SIGCONT");
                }
            }
            Undo::HealNet => c.net.heal(),
            Undo::ClientsWhole => self.cut.set(0.0),
            Undo::Rejoin(id) => {
                if c.is_out(id) {
                    match self.members.rejoin(c, id).await {
                        Ok(_) => self.members.with(|s| s.stats.rejoined += 1),
                        Err(e) => eprintln!("chaos: rejoining node {id}: {e:#}"),
                    }
                }
            }
            Undo::Both(first, then) => {
                Box::pin(self.undo(*first)).await;
                Box::pin(self.undo(*then)).await;
            }
            Undo::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_depends_only_on_its_seed_and_fits_the_run() {
        let timing = Timing { warmup: Duration::from_secs(2), gap_ms: (500, 1500), hold_ms: (1000, 4000) };
        let d = Duration::from_secs(60);
        let a = schedule(7, &FaultKind::ALL, d, timing);
        assert_eq!(a, schedule(7, &FaultKind::ALL, d, timing));
        assert_ne!(a, schedule(8, &FaultKind::ALL, d, timing));
        assert!(a.len() >= 10, "{}", a.len());
        assert!(a.iter().all(|s| s.at >= timing.warmup && s.at + s.hold < d));
        assert!(a.windows(2).all(|w| w[0].at + w[0].hold < w[1].at));
        assert!(schedule(7, &[], d, timing).is_empty());
    }
}
