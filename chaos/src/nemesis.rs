//! The nemesis: faults on a schedule drawn from a seed. Each fault is injected, held for a while,
//! then healed, one after another: kills (a random node, the leader, a majority) with restarts,
//! pauses (SIGSTOP/SIGCONT), partitions through the bus proxies (leader isolated, majority and
//! minority, a bridge, one-way), delays and connection drops on links, resets of every bus
//! connection, and client connections cut right after a request was sent.
//!
//! The schedule (times, kinds, durations, random choices) depends only on the seed; which node
//! is "the leader" is whatever the cluster says at that moment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::client::CutSwitch;
use crate::cluster::{Cluster, State};
use crate::history::{Clock, Recorder};

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
}

impl FaultKind {
    /// Every kind.
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
}

/// How to undo an injected fault.
enum Undo {
    Restart(Vec<u64>),
    Resume(Vec<u64>),
    HealNet,
    ClientsWhole,
    Nothing,
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
            let (detail, undo) = self.inject(step).await;
            let n = self.recorder.fault_start(step.kind.name(), detail, self.clock.now());
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
        }
    }

    async fn undo(&self, undo: Undo) {
        let c = &self.cluster;
        match undo {
            Undo::Restart(ids) => {
                for id in ids {
                    if c.state(id) == State::Dead {
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
