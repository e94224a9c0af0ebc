//! Counters INFO reports: totals, per-command calls (`# Commandstats`) and errors by code
//! (`# Errorstats`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::commands;
use crate::latency;
use crate::resp::Reply;

/// Shards of each command's counters: a thread adds to its own shard (chosen on its first
/// command), so the runtime's worker threads do not contend for the cache lines of a hot
/// command's counters; reading sums the shards.
const SHARDS: usize = 4;

/// One shard of one command's counters, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    /// Calls by duration (see `latency::BOUNDS_MICROS`).
    buckets: [AtomicU64; latency::BUCKETS],
}

/// One command's counters.
#[derive(Debug, Default)]
struct CommandCounters {
    shards: [Shard; SHARDS],
}

impl CommandCounters {
    fn mine(&self) -> &Shard {
        &self.shards[SHARD.with(|s| *s)]
    }

    fn sum(&self, field: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|s| field(s).load(Ordering::Relaxed)).sum()
    }
}

thread_local! {
    /// This thread's shard.
    static SHARD: usize = {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
    };
}

/// Everything INFO counts.
/// One command's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandStat {
    pub name: &'static str,
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Calls by duration (counts per bucket of `latency::BOUNDS_MICROS`, not cumulative).
    pub buckets: [u64; latency::BUCKETS],
}

#[derive(Debug)]
pub struct Stats {
    pub commands: AtomicU64,
    pub expired_keys: AtomicU64,
    pub error_replies: AtomicU64,
    /// By command name (`get`, `client|list`...): built once, then only atomics change.
    per_command: HashMap<&'static str, CommandCounters>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Default for Stats {
    fn default() -> Stats {
        let per_command = commands::all()
            .iter()
            .flat_map(|c| std::iter::once(*c).chain(c.subcommands()))
            .map(|c| (c.name(), CommandCounters::default()))
            .collect();
        Stats {
            commands: AtomicU64::new(0),
            expired_keys: AtomicU64::new(0),
            error_replies: AtomicU64::new(0),
            per_command,
            errors: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Stats {
    /// Records one executed command and its reply.
    pub fn record(&self, name: &str, reply: &Reply, took: Duration) {
        self.commands.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.per_command.get(name) {
            let shard = c.mine();
            let micros = took.as_micros() as u64;
            shard.calls.fetch_add(1, Ordering::Relaxed);
            shard.usec.fetch_add(micros, Ordering::Relaxed);
            shard.buckets[latency::bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
            if reply.is_error() {
                shard.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.record_error(reply);
    }

    /// Records a command rejected before it ran (arity, unknown subcommand).
    pub fn record_rejected(&self, name: Option<&str>, reply: &Reply) {
        self.commands.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = name.and_then(|n| self.per_command.get(n)) {
            c.mine().rejected.fetch_add(1, Ordering::Relaxed);
        }
        self.record_error(reply);
    }

    fn record_error(&self, reply: &Reply) {
        let Reply::Error(text) = reply else { return };
        self.error_replies.fetch_add(1, Ordering::Relaxed);
        let code = text.split(' ').next().unwrap_or("ERR").to_string();
        *self.errors.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_insert(0) += 1;
    }

    /// Forgets every counter (CONFIG RESETSTAT).
    pub fn reset(&self) {
        self.commands.store(0, Ordering::Relaxed);
        self.error_replies.store(0, Ordering::Relaxed);
        for shard in self.per_command.values().flat_map(|c| &c.shards) {
            for a in [&shard.calls, &shard.usec, &shard.rejected, &shard.failed].into_iter().chain(&shard.buckets) {
                a.store(0, Ordering::Relaxed);
            }
        }
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Each command that was called or rejected since the last reset, by name: the counters
    /// INFO's commandstats and `/metrics` both show.
    pub fn per_command(&self) -> Vec<CommandStat> {
        let mut out: Vec<CommandStat> = self
            .per_command
            .iter()
            .map(|(name, c)| CommandStat {
                name,
                calls: c.sum(|s| &s.calls),
                usec: c.sum(|s| &s.usec),
                rejected: c.sum(|s| &s.rejected),
                failed: c.sum(|s| &s.failed),
                buckets: std::array::from_fn(|i| c.sum(|s| &s.buckets[i])),
            })
            .filter(|c| c.calls + c.rejected > 0)
            .collect();
        out.sort_by_key(|c| c.name);
        out
    }

    /// The error replies by code (`ERR`, `WRONGTYPE`...).
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The `# Commandstats` section.
    pub fn commandstats(&self) -> String {
        let mut out = String::from("# Commandstats\r\n");
        for c in self.per_command() {
            let per_call = if c.calls > 0 { c.usec as f64 / c.calls as f64 } else { 0.0 };
            let _ = write!(
                out,
                "cmdstat_{}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                c.name, c.calls, c.usec, c.rejected, c.failed
            );
        }
        out
    }

    /// The `# Errorstats` section.
    pub fn errorstats(&self) -> String {
        let mut out = String::from("# Errorstats\r\n");
        for (code, count) in self.errors() {
            let _ = write!(out, "errorstat_{code}:count={count}\r\n");
        }
        out
    }
}
