//! The chaos harness's register workload (GET, SET, INCR, Lua and WATCH/MULTI compare-and-set on
//! a few keys), run against a test's cluster in the background, and its history checked for
//! linearizability once stopped: what a scripted scenario (a membership change, say) adds to
//! its own checks of acknowledged writes and digests.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use raftis_chaos::checker::{register, Validity, Verdict};
use raftis_chaos::client::CutSwitch;
use raftis_chaos::history::{Clock, Outcome, Recorder};
use raftis_chaos::workload::{self, Ctx, FinalKeys, KeyPool};

/// Register clients running on a runtime of their own.
pub struct Registers {
    ctx: Ctx,
    pool: Arc<KeyPool>,
    runtime: tokio::runtime::Runtime,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Registers {
    /// Starts `clients` register clients against `addrs` (every node the scenario may use: a
    /// client retries elsewhere when one is down or refuses, and follows MOVED).
    pub fn start(addrs: Vec<String>, clients: usize) -> Registers {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the register clients");
        let ctx = Ctx {
            clock: Clock::start(),
            recorder: Recorder::default(),
            addrs,
            stop: Arc::new(AtomicBool::new(false)),
            cut: CutSwitch::default(),
            values: Arc::new(AtomicI64::new(1)),
        };
        // A few keys, each retired after 150 operations: short per-key histories keep the
        // linearizability search fast.
        let pool = Arc::new(KeyPool::new("linreg:", 3, 150));
        let clients = (0..clients)
            .map(|p| runtime.spawn(workload::register_client(ctx.clone(), p, 7 + p as u64, pool.clone())))
            .collect();
        Registers { ctx, pool, runtime, clients }
    }

    /// Stops the clients, reads every key once more (the cluster should be whole again), and
    /// checks the history. Panics with the anomalies when it is not linearizable or could not be
    /// decided.
    pub fn stop_and_check(self) -> Verdict {
        let Registers { ctx, pool, runtime, clients } = self;
        ctx.stop.store(true, Ordering::Relaxed);
        runtime.block_on(async {
            for c in clients {
                let _ = c.await;
            }
            let keys = FinalKeys {
                registers: pool.all(),
                lists: Vec::new(),
                list_appends: Vec::new(),
                sets: Vec::new(),
                queues: Vec::new(),
                bank: false,
            };
            let unread =
                workload::final_reads(&ctx, 1000, &keys, Duration::from_secs(15), Duration::from_secs(60)).await;
            assert_eq!(unread, 0, "{unread} final reads not sent: the minute for all of them ran out");
        });
        let ops = ctx.recorder.ops();
        let verdict = register::check(&ops, Duration::from_secs(60));
        let acked = ops.iter().filter(|o| o.outcome == Outcome::Ok).count();
        assert!(acked > 0, "no register operation was acknowledged ({} attempted)", ops.len());
        assert_eq!(
            verdict.validity,
            Validity::Valid,
            "the register history is not linearizable (or was not decided):\n{:#?}\n{:?}",
            verdict.anomalies,
            verdict.notes
        );
        verdict
    }
}
