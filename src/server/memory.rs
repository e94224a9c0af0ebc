//! `maxmemory` with Redis's `noeviction` policy: once this node's memory is over the limit,
//! commands that may grow the dataset (flagged `denyoom`) are refused with `-OOM`, while reads,
//! deletions and everything else still run.
//!
//! The limit is replicated (CONFIG SET maxmemory goes through the log, see `KeySpace::maxmemory`),
//! so whichever node leads enforces it; the memory compared is the node's own resident set
//! (INFO's `used_memory`). The check happens before a command is proposed, never while applying,
//! so every replica still applies the same log the same way. Eviction (the other policies) would
//! have to delete keys through the log and is not offered.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::backend::Backend;
use super::Shared;

/// How often the resident set is measured against the limit.
const PERIOD: Duration = Duration::from_millis(100);

/// The error Redis gives a command refused for memory.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// This node's memory state, as of its last check.
#[derive(Debug, Default)]
pub struct Memory {
    over: AtomicBool,
    limit: AtomicU64,
}

impl Memory {
    /// Whether the last check found this node over a nonzero `maxmemory`.
    pub fn out_of_memory(&self) -> bool {
        self.over.load(Ordering::Relaxed)
    }

    /// The replicated limit as of the last check (0: none).
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Reads the replicated limit and, when there is one, this process's resident set.
    pub fn refresh(&self, backend: &Backend) {
        let limit = backend.inspect(|a| a.sm.keyspace.maxmemory);
        self.limit.store(limit, Ordering::Relaxed);
        let over = limit > 0 && super::commands::server::resident_bytes() > limit;
        if over != self.over.swap(over, Ordering::Relaxed) {
            if over {
                tracing::warn!(maxmemory = limit, "over maxmemory: commands that may use memory are refused (OOM)");
            } else {
                tracing::info!(maxmemory = limit, "back under maxmemory");
            }
        }
    }
}

/// Re-checks the memory state every [`PERIOD`] until shutdown.
pub async fn watch_memory(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => shared.memory.refresh(&shared.backend),
            _ = shutdown.changed() => return,
        }
    }
}

/// Whether a command may grow memory: Redis's `denyoom` flag. Scripts are not (as in Redis):
/// a script run accepted over the limit carries that state into the log instead, and refuses
/// its own calls (see `ScriptOp::OverMemory`).
pub fn may_use_memory(meta: &crate::cmd::meta::Meta) -> bool {
    meta.flags.contains(&"denyoom")
}
