//! The Raft log on sled: entries, the vote, the committed and the last purged log id, made durable
//! by a flusher thread that lets many appends share one `flush`.
//!
//! Durability is sled's `flush()`, which on Linux is `sync_file_range`: it survives a crash or a
//! kill of the process, not necessarily a power loss (sled calls a full sync every
//! `flush_every_ms`).
//!
//! Damaged files: sled 0.34 treats any unreadable part of its log as the torn tail of a crash and
//! silently opens the prefix before it (a truncated or overwritten `db` file opens, minus entries
//! or the vote). Raft must not forget either, so a clean shutdown leaves a small
//! [`CLEAN_SHUTDOWN_FILE`] describing the log, and `open` refuses a log that does not match it.
//! After a crash there is no such file and the recovered prefix has to be trusted.

// openraft's traits fix the error type; the helpers return the same one rather than boxing it.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io::{self, Write};
use std::ops::{Bound, RangeBounds};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use anyhow::{bail, Context};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, RaftLogReader};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{error, info};

use super::types::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote};

/// sled's page cache size the binary uses unless told otherwise (sled's own default is 1 GiB).
pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// Name of the tree holding the entries: key = big-endian index, value = bincode `Entry`.
const LOGS_TREE: &str = "logs";
/// Name of the tree holding the vote, the committed log id and the last purged log id.
const META_TREE: &str = "meta";
/// `meta` key of the vote (bincode `Vote`).
const VOTE_KEY: &str = "vote";
/// `meta` key of the committed log id (bincode `Option<LogId>`).
const COMMITTED_KEY: &str = "committed";
/// `meta` key of the last purged log id (bincode `LogId`).
const PURGED_KEY: &str = "last_purged";
/// `meta` key of the store's format (one byte, [`super::format::FORMAT`]); absent in format 0.
const FORMAT_KEY: &str = "format";
/// File (next to sled's) written at a clean shutdown: a bincode [`Summary`] of the log.
pub const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";

/// What the log holds, as far as Raft's safety goes: compared at open with what a clean shutdown
/// recorded, to catch files damaged while the node was down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Summary {
    /// The stored vote.
    vote: Option<Vote>,
    /// The stored committed log id.
    committed: Option<LogId>,
    /// The last purged log id.
    last_purged: Option<LogId>,
    /// The last entry's log id, or the last purged one if there is no entry.
    last_log_id: Option<LogId>,
}

/// The encoded size of each entry in the log, so that snapshots and purges can bound the log by
/// bytes as well as by entries: an entry may carry one command or a batch of hundreds, and sled
/// keeps recently written entries in memory, so the bytes are what a node's memory pays.
#[derive(Debug, Default)]
pub struct LogSizes {
    inner: std::sync::Mutex<Sizes>,
}

#[derive(Debug, Default)]
struct Sizes {
    /// (index, total bytes of the entries up to and including it), in index order.
    marks: std::collections::VecDeque<(u64, u64)>,
    /// The total before the first mark.
    start: u64,
}

impl Sizes {
    /// The total of the entries up to and including `index`.
    fn total_at(&self, index: u64) -> u64 {
        match self.marks.partition_point(|&(i, _)| i <= index) {
            0 => self.start,
            n => self.marks[n - 1].1,
        }
    }
}

impl LogSizes {
    fn appended(&self, index: u64, bytes: u64) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while s.marks.back().is_some_and(|&(i, _)| i >= index) {
            s.marks.pop_back();
        }
        let total = s.marks.back().map_or(s.start, |&(_, t)| t) + bytes;
        s.marks.push_back((index, total));
    }

    fn truncated(&self, from: u64) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while s.marks.back().is_some_and(|&(i, _)| i >= from) {
            s.marks.pop_back();
        }
    }

    fn purged(&self, through: u64) {
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(&(i, total)) = s.marks.front() {
            if i > through {
                break;
            }
            s.start = total;
            s.marks.pop_front();
        }
    }

    /// Bytes of the entries after `after` up to and including `upto` (that the log still holds).
    pub fn between(&self, after: u64, upto: u64) -> u64 {
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        s.total_at(upto).saturating_sub(s.total_at(after))
    }

    /// The lowest index such that purging through it leaves at most `keep` bytes of the entries
    /// up to `upto`; `None` if they already fit.
    pub fn purge_point(&self, upto: u64, keep: u64) -> Option<u64> {
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let target = s.total_at(upto).checked_sub(keep)?;
        if target <= s.start {
            return None;
        }
        let n = s.marks.partition_point(|&(_, total)| total < target);
        s.marks.get(n).map(|&(i, _)| i).filter(|&i| i <= upto)
    }

    /// Bytes of every entry in the log.
    pub fn total(&self) -> u64 {
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        s.marks.back().map_or(s.start, |&(_, t)| t) - s.start
    }
}

/// The Raft log store. Clones share the same database; a clone is also the log reader.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

/// What the clones of a [`LogStore`] share. Dropping the last clone stops the flusher and records a
/// clean shutdown.
struct Inner {
    /// The group-commit flusher.
    flusher: Flusher,
    /// Deletes purged entries in the background.
    purger: Purger,
    /// The database, for the final flush.
    db: sled::Db,
    /// Entries by big-endian index.
    logs: sled::Tree,
    /// Vote, committed and last purged log ids.
    meta: sled::Tree,
    /// The directory of the sled database, for messages.
    path: PathBuf,
    /// The encoded size of every entry in the log.
    sizes: Arc<LogSizes>,
    /// How many `flush` calls the flusher made (shared with its thread).
    flushes: Arc<FlushStats>,
    /// Set once `open`'s checks passed: only then does dropping record a clean shutdown.
    checked: AtomicBool,
    /// Told of every vote saved (see [`LogStore::set_vote_hook`]).
    vote_hook: std::sync::OnceLock<VoteHook>,
}

/// See [`LogStore::set_vote_hook`].
pub type VoteHook = Arc<dyn Fn(&Vote) + Send + Sync>;

/// Someone waiting for the next flush.
enum Waiter {
    /// An append's callback, told once its entries are durable.
    Log(LogFlushed<TypeConfig>),
    /// A caller that awaits durability (`save_vote`, `purge`).
    Sync(oneshot::Sender<Result<(), String>>),
    /// Nobody waits; the write just rides along with the next flush (`save_committed`).
    Kick,
}

impl Waiter {
    /// Tells the waiter how the flush that covers its write went.
    fn complete(self, result: &Result<(), String>) {
        match self {
            Waiter::Log(callback) => callback.log_io_completed(result.clone().map_err(io::Error::other)),
            // The receiver may have given up (its task was cancelled): nothing left to tell.
            Waiter::Sync(tx) => drop(tx.send(result.clone())),
            Waiter::Kick => {}
        }
    }
}

/// What the flusher has done, for INFO.
#[derive(Debug, Default)]
struct FlushStats {
    count: AtomicU64,
    micros: AtomicU64,
    waiters: AtomicU64,
    latency: crate::latency::Latency,
}

/// The group-commit flusher: a thread that takes every waiter queued so far, flushes once, and
/// completes them all.
struct Flusher {
    /// `None` once stopped: closing the channel ends the thread.
    tx: Option<mpsc::Sender<Waiter>>,
    /// The thread, joined when stopping.
    thread: Option<JoinHandle<()>>,
    /// Tests hold this to keep the flusher from flushing while they queue appends.
    #[cfg(test)]
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Flusher {
    /// Starts the flusher thread on `db`.
    fn start(db: sled::Db, flushes: Arc<FlushStats>) -> anyhow::Result<Flusher> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        #[cfg(test)]
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        #[cfg(test)]
        let thread_gate = gate.clone();
        let thread = std::thread::Builder::new()
            .name("raft-log-flusher".into())
            .spawn(move || {
                #[cfg(test)]
                let gate = thread_gate;
                while let Ok(first) = rx.recv() {
                    // Everything queued while the previous flush ran is covered by this one: its
                    // data was inserted before its waiter was queued.
                    let mut waiters = vec![first];
                    waiters.extend(rx.try_iter());
                    #[cfg(test)]
                    drop(gate.blocking_lock());
                    let started = std::time::Instant::now();
                    let result = flush(&db);
                    let took = started.elapsed();
                    flushes.count.fetch_add(1, Ordering::Relaxed);
                    flushes.micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
                    flushes.latency.observe(took);
                    flushes.waiters.fetch_add(waiters.len() as u64, Ordering::Relaxed);
                    if let Err(e) = &result {
                        error!(error = %e, waiters = waiters.len(), "flushing the Raft log failed");
                    }
                    // In queue order, so that openraft sees its log IO complete in order.
                    for waiter in waiters {
                        waiter.complete(&result);
                    }
                }
            })
            .context("starting the Raft log flusher thread")?;
        Ok(Flusher {
            tx: Some(tx),
            thread: Some(thread),
            #[cfg(test)]
            gate,
        })
    }

    /// Queues `waiter` for the next flush; gives it back if the flusher thread is gone.
    fn queue(&self, waiter: Waiter) -> Result<(), Waiter> {
        match &self.tx {
            Some(tx) => tx.send(waiter).map_err(|e| e.0),
            None => Err(waiter),
        }
    }

    /// Stops the thread once it has flushed for everything queued. Joining it releases its handle
    /// on the database, so that the files can be reopened as soon as the store is dropped.
    fn stop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                error!("the Raft log flusher thread panicked");
            }
        }
    }
}

/// Deletes purged entries on its own thread: deleting thousands of (possibly large) entries took
/// seconds, and openraft's core waits for `purge`, so every node stalled at every snapshot (no
/// heartbeats answered: the leader lost its quorum and an election followed, found by bench/).
/// `purge` returns once the purged id is durable; the entries below it go soon after, and `open`
/// deletes whatever a crash left behind.
struct Purger {
    /// `None` once stopped: closing the channel ends the thread.
    tx: Option<mpsc::Sender<u64>>,
    thread: Option<JoinHandle<()>>,
}

impl Purger {
    fn start(logs: sled::Tree) -> anyhow::Result<Purger> {
        let (tx, rx) = mpsc::channel::<u64>();
        let thread = std::thread::Builder::new()
            .name("raft-log-purger".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let upto = rx.try_iter().fold(first, u64::max);
                    if let Err(e) = delete_through(&logs, upto) {
                        error!(error = %e, upto, "deleting purged Raft log entries failed (open retries it)");
                    }
                }
            })
            .context("starting the Raft log purger thread")?;
        Ok(Purger { tx: Some(tx), thread: Some(thread) })
    }

    /// Queues the deletion of the entries with index <= `index`; false if the thread is gone.
    fn queue(&self, index: u64) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(index).is_ok())
    }

    /// Stops the thread once it has deleted everything queued.
    fn stop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                error!("the Raft log purger thread panicked");
            }
        }
    }
}

/// Deletes the entries of `logs` with index <= `index`, one key at a time: the indexes are
/// contiguous, so no value is read. Not as a `sled::Batch`: sled applies a batch under its global
/// write lock, so every append and every read of the log (the leader's replication, heartbeats
/// queued behind it) waited for thousands of deletions at once; right after a leader's
/// snapshot its followers went without a heartbeat for long enough to elect another leader
/// (bench/, SET P=1). Atomicity is not needed: the purged id is durable before the first
/// deletion, and `open` finishes whatever a crash interrupted.
fn delete_through(logs: &sled::Tree, index: u64) -> Result<(), StorageError> {
    let read_err = |e| storage_err(ErrorSubject::Logs, ErrorVerb::Read, e);
    let Some((first, _)) = logs.first().map_err(read_err)? else { return Ok(()) };
    let first = index_of(&first)?;
    let Some((last, _)) = logs.last().map_err(read_err)? else { return Ok(()) };
    let index = index.min(index_of(&last)?);
    for (n, i) in (first..=index).enumerate() {
        logs.remove(key(i)).map_err(|e| storage_err(ErrorSubject::Logs, ErrorVerb::Delete, e))?;
        if n % 256 == 255 {
            // Leave the CPU to the appends and the replication now and then.
            std::thread::yield_now();
        }
    }
    Ok(())
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.flusher.stop();
        self.purger.stop();
        if let Err(e) = self.record_clean_shutdown() {
            error!(path = %self.path.display(), error = %format!("{e:#}"), "recording a clean shutdown of the Raft log");
        }
    }
}

/// One sled flush, with a panic inside sled turned into an error rather than killing the thread.
fn flush(db: &sled::Db) -> Result<(), String> {
    match panic::catch_unwind(AssertUnwindSafe(|| db.flush())) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("sled flush: {e}")),
        Err(_) => Err("sled panicked while flushing".to_string()),
    }
}

/// A storage error about `subject`, from any error's message.
fn storage_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageError::from_io_error(subject, verb, io::Error::other(e.to_string()))
}

/// Brings the store to the current format: a new store is marked with it; a format-0 store
/// (no format key, but a vote or entries) has every entry rewritten and the key set in one
/// transaction, so a crash leaves it either wholly old or wholly new; a newer store is refused.
fn upgrade(db: &sled::Db, logs: &sled::Tree, meta: &sled::Tree) -> anyhow::Result<()> {
    use super::format::{upgrade_v0_entry, FormatError, FORMAT};
    use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
    match meta.get(FORMAT_KEY)? {
        Some(v) if v.len() == 1 && v[0] == FORMAT => return Ok(()),
        // Entries of formats 1 to 3 are read as they are (each carries its version byte, see
        // `format`): only the marker changes.
        Some(v) if v.len() == 1 && (1..FORMAT).contains(&v[0]) => {
            meta.insert(FORMAT_KEY, &[FORMAT])?;
            db.flush()?;
            info!(format = FORMAT, from = v[0], "upgraded the Raft log's format marker");
            return Ok(());
        }
        Some(v) if v.len() == 1 && v[0] > FORMAT => {
            bail!(FormatError::Newer { what: "the Raft log", found: v[0] as u32 })
        }
        Some(v) => bail!("the Raft log's format marker is unreadable ({:?})", &v[..]),
        None => {}
    }
    if logs.is_empty() && meta.is_empty() {
        meta.insert(FORMAT_KEY, &[FORMAT])?;
        db.flush()?;
        return Ok(());
    }
    let old: Vec<(sled::IVec, sled::IVec)> = logs.iter().collect::<Result<_, _>>()?;
    let mut upgraded = Vec::with_capacity(old.len());
    for (k, v) in &old {
        upgraded.push((k.clone(), upgrade_v0_entry(v)?));
    }
    let result: Result<(), TransactionError<()>> = (logs, meta).transaction(|(logs, meta)| {
        for (k, v) in &upgraded {
            logs.insert(k, v.as_slice())?;
        }
        meta.insert(FORMAT_KEY, &[FORMAT])?;
        Ok::<(), ConflictableTransactionError<()>>(())
    });
    result.map_err(|e| anyhow::anyhow!("rewriting the log in format {FORMAT}: {e:?}"))?;
    db.flush()?;
    info!(entries = upgraded.len(), format = FORMAT, "upgraded the Raft log from format 0");
    Ok(())
}

/// The sled key of the entry at `index`: big-endian, so that key order is index order.
fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index a `logs` key stands for.
fn index_of(key: &[u8]) -> Result<u64, StorageError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| storage_err(ErrorSubject::Logs, ErrorVerb::Read, format!("log key of {} bytes", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Decodes the entry stored under `key`, checking that it is the entry for that index.
fn decode_entry(key: &[u8], value: &[u8]) -> Result<Entry, StorageError> {
    let index = index_of(key)?;
    let entry: Entry = super::format::decode_entry(value)
        .map_err(|e| storage_err(ErrorSubject::LogIndex(index), ErrorVerb::Read, e.to_string()))?;
    if entry.log_id.index != index {
        return Err(storage_err(
            ErrorSubject::LogIndex(index),
            ErrorVerb::Read,
            format!("entry stored at index {index} has log id {}", entry.log_id),
        ));
    }
    Ok(entry)
}

/// `range` as inclusive bounds, `None` if it holds no index.
fn inclusive_bounds(range: &impl RangeBounds<u64>) -> Option<(u64, Option<u64>)> {
    let first = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let last = match range.end_bound() {
        Bound::Included(&i) => Some(i),
        Bound::Excluded(&i) => Some(i.checked_sub(1)?),
        Bound::Unbounded => None,
    };
    match last {
        Some(last) if last < first => None,
        _ => Some((first, last)),
    }
}

impl LogStore {
    /// Opens (creating it if needed) the log kept in the sled database in `dir`, with a page cache
    /// of `cache_capacity_bytes`, and checks what it holds. Files sled cannot read, an entry that
    /// does not decode, a hole in the log, or a log that differs from what the last clean shutdown
    /// recorded is an error naming `dir`, never a panic.
    pub fn open(dir: &Path, cache_capacity_bytes: u64) -> anyhow::Result<LogStore> {
        let what = || format!("opening the Raft log at {}", dir.display());
        std::fs::create_dir_all(dir).with_context(what)?;
        let config = sled::Config::new().path(dir).cache_capacity(cache_capacity_bytes);
        // sled 0.34's recovery path is full of `expect`s and indexing; should one of them trip on
        // a damaged file, the node must refuse to start with a message, not crash.
        let db = match panic::catch_unwind(AssertUnwindSafe(|| config.open())) {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(e).with_context(what),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                bail!("{}: sled panicked reading its files, they are likely corrupt: {message}", what());
            }
        };
        let logs = db.open_tree(LOGS_TREE).with_context(what)?;
        let meta = db.open_tree(META_TREE).with_context(what)?;
        upgrade(&db, &logs, &meta).with_context(what)?;
        let flushes = Arc::new(FlushStats::default());
        let flusher = Flusher::start(db.clone(), flushes.clone())?;
        let purger = Purger::start(logs.clone())?;
        let inner = Inner {
            flusher,
            purger,
            db,
            logs,
            meta,
            path: dir.to_path_buf(),
            flushes,
            checked: AtomicBool::new(false),
            vote_hook: std::sync::OnceLock::new(),
            sizes: Arc::new(LogSizes::default()),
        };
        inner.check().with_context(|| format!("checking the Raft log at {}", dir.display()))?;
        inner.checked.store(true, Ordering::Relaxed);
        for item in inner.logs.iter() {
            let (k, v) = item.with_context(what)?;
            inner.sizes.appended(index_of(&k).map_err(anyhow::Error::new).with_context(what)?, v.len() as u64);
        }
        Ok(LogStore { inner: Arc::new(inner) })
    }

    /// The sizes of the entries in the log (shared: they follow appends, truncations, purges).
    pub fn sizes(&self) -> Arc<LogSizes> {
        self.inner.sizes.clone()
    }

    /// How many flushes the group-commit flusher has made (each covers every write queued before
    /// it).
    pub fn flushes(&self) -> u64 {
        self.inner.flushes.count.load(Ordering::Relaxed)
    }

    /// Calls `hook` after each vote is durable (see `StateStore::note_candidacy`).
    pub fn set_vote_hook(&self, hook: VoteHook) {
        let _ = self.inner.vote_hook.set(hook);
    }

    /// Flush statistics since start: (flushes, total time in µs, waiters served).
    pub fn flush_stats(&self) -> (u64, u64, u64) {
        let f = &self.inner.flushes;
        (f.count.load(Ordering::Relaxed), f.micros.load(Ordering::Relaxed), f.waiters.load(Ordering::Relaxed))
    }

    /// How long each flush took.
    pub fn flush_latency(&self) -> crate::latency::LatencySnapshot {
        self.inner.flushes.latency.snapshot()
    }

    /// Waits until everything written so far is flushed.
    async fn sync(&self, subject: ErrorSubject<NodeId>) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        if self.inner.flusher.queue(Waiter::Sync(tx)).is_err() {
            return Err(storage_err(subject, ErrorVerb::Write, "the Raft log flusher has stopped"));
        }
        match rx.await {
            Ok(result) => result.map_err(|e| storage_err(subject, ErrorVerb::Write, e)),
            Err(_) => Err(storage_err(subject, ErrorVerb::Write, "the Raft log flusher stopped before flushing")),
        }
    }
}

impl Inner {
    /// Checks the log on open: the meta values decode; the log matches what the last clean
    /// shutdown recorded, if it was one; every entry decodes and sits under its own index; the
    /// entries are consecutive from just after the last purged one. Also finishes a purge that a
    /// crash interrupted between recording the purged id and deleting the entries.
    fn check(&self) -> anyhow::Result<()> {
        let summary = self.summary()?;
        self.consume_clean_shutdown(&summary)?;
        if let Some(purged) = summary.last_purged {
            delete_through(&self.logs, purged.index)?;
        }
        // u64::MAX stands for "past the end": a stored index that high is damage, not a log.
        let first = summary.last_purged.map_or(0, |p| p.index.saturating_add(1));
        let mut next = first;
        for item in self.logs.iter() {
            let (k, v) = item?;
            let entry = decode_entry(&k, &v)?;
            if entry.log_id.index != next || next == u64::MAX {
                bail!(
                    "hole in the log: expected index {next}, found {} (last purged: {:?})",
                    entry.log_id.index,
                    summary.last_purged
                );
            }
            next += 1;
        }
        let count = next - first;
        info!(path = %self.path.display(), entries = count, last_purged = ?summary.last_purged, "opened the Raft log");
        Ok(())
    }

    /// Compares the log with the summary a clean shutdown left, if any, then removes that file
    /// (durably, before anything new is written: after a later crash it would no longer match).
    fn consume_clean_shutdown(&self, found: &Summary) -> anyhow::Result<()> {
        let file = self.path.join(CLEAN_SHUTDOWN_FILE);
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        let recorded: Summary =
            bincode::deserialize(&bytes).with_context(|| format!("{} is corrupt", file.display()))?;
        if recorded != *found {
            bail!(
                "sled's files are damaged: at its last clean shutdown the log held {recorded:?}, it now holds \
                 {found:?} (sled opens a damaged log as the part before the damage). The safe fix is to wipe \
                 this node's data and let it rejoin; deleting {} accepts the damaged log as it is",
                file.display()
            );
        }
        std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        sync_dir(&self.path)
    }

    /// Flushes, then records what the log holds in [`CLEAN_SHUTDOWN_FILE`] (written to a temporary
    /// file, synced, renamed). Only for a log that passed its checks at open: recording a damaged
    /// one would make the next open accept it.
    fn record_clean_shutdown(&self) -> anyhow::Result<()> {
        if !self.checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.db.flush()?;
        let bytes = bincode::serialize(&self.summary()?)?;
        let file = self.path.join(CLEAN_SHUTDOWN_FILE);
        let tmp = self.path.join(format!("{CLEAN_SHUTDOWN_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &file)?;
        sync_dir(&self.path)
    }

    /// The vote, the committed and purged ids and the last log id, as stored now.
    fn summary(&self) -> Result<Summary, StorageError> {
        let state = self.log_state()?;
        Ok(Summary {
            vote: self.read_vote()?,
            committed: self.read_committed()?,
            last_purged: state.last_purged_log_id,
            last_log_id: state.last_log_id,
        })
    }

    /// The last purged log id, and the last log id (the purged one if the log is empty).
    fn log_state(&self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self.read_purged()?;
        let last = self.logs.last().map_err(|e| storage_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        let last_entry = last.map(|(k, v)| decode_entry(&k, &v)).transpose()?.map(|e| e.log_id);
        // Entries up to the purged id may still be there (the purger deletes them in the
        // background): the log ends at the purged id unless it holds a later entry.
        let last_log_id = last_entry.max(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    /// Decodes the `meta` value under `key`, if there is one.
    fn read_meta<T: DeserializeOwned>(
        &self,
        key: &str,
        subject: ErrorSubject<NodeId>,
    ) -> Result<Option<T>, StorageError> {
        let Some(bytes) = self.meta.get(key).map_err(|e| storage_err(subject.clone(), ErrorVerb::Read, e))? else {
            return Ok(None);
        };
        bincode::deserialize(&bytes)
            .map(Some)
            .map_err(|e| storage_err(subject, ErrorVerb::Read, format!("corrupt `{key}` in the log's meta: {e}")))
    }

    /// Stores `value` under `key` in `meta` (not yet flushed).
    fn write_meta<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), StorageError> {
        let bytes = bincode::serialize(value).map_err(|e| storage_err(subject.clone(), ErrorVerb::Write, e))?;
        self.meta.insert(key, bytes).map_err(|e| storage_err(subject, ErrorVerb::Write, e))?;
        Ok(())
    }

    /// The stored vote.
    fn read_vote(&self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(VOTE_KEY, ErrorSubject::Vote)
    }

    /// The stored committed log id.
    fn read_committed(&self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_meta::<Option<LogId>>(COMMITTED_KEY, ErrorSubject::Store)?.flatten())
    }

    /// The stored last purged log id.
    fn read_purged(&self) -> Result<Option<LogId>, StorageError> {
        self.read_meta(PURGED_KEY, ErrorSubject::Store)
    }

    /// Deletes, in one batch, the entries whose index is in `range`.
    fn delete(&self, range: impl RangeBounds<[u8; 8]>) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for k in self.logs.range(range).keys() {
            batch.remove(k.map_err(|e| storage_err(ErrorSubject::Logs, ErrorVerb::Read, e))?);
        }
        self.logs.apply_batch(batch).map_err(|e| storage_err(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing the directory {}", dir.display()))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let Some((first, last)) = inclusive_bounds(&range) else {
            return Ok(Vec::new());
        };
        let iter = match last {
            Some(last) => self.inner.logs.range(key(first)..=key(last)),
            None => self.inner.logs.range(key(first)..),
        };
        let mut entries = Vec::new();
        for item in iter {
            let (k, v) = item.map_err(|e| storage_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            entries.push(decode_entry(&k, &v)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.inner.log_state()
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.inner.write_meta(VOTE_KEY, vote, ErrorSubject::Vote)?;
        self.sync(ErrorSubject::Vote).await?;
        if let Some(hook) = self.inner.vote_hook.get() {
            hook(vote);
        }
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.inner.read_vote()
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.inner.write_meta(COMMITTED_KEY, &committed, ErrorSubject::Store)?;
        // Nobody waits, but it is flushed soon, so that a restart replays up to a recent commit
        // (reads do not rely on it: see `Node::read_floor`).
        let _ = self.inner.flusher.queue(Waiter::Kick);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.inner.read_committed()
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        // Inserted now (readable when this returns, and ordered before any later truncate or
        // purge); only the flush is deferred to the flusher thread.
        let mut batch = sled::Batch::default();
        let mut sizes = Vec::new();
        for entry in entries {
            let bytes = super::format::encode_entry(&entry)
                .map_err(|e| storage_err(ErrorSubject::Log(entry.log_id), ErrorVerb::Write, e))?;
            sizes.push((entry.log_id.index, bytes.len() as u64));
            batch.insert(&key(entry.log_id.index), bytes);
        }
        self.inner.logs.apply_batch(batch).map_err(|e| storage_err(ErrorSubject::Logs, ErrorVerb::Write, e))?;
        for (index, bytes) in sizes {
            self.inner.sizes.appended(index, bytes);
        }
        if let Err(waiter) = self.inner.flusher.queue(Waiter::Log(callback)) {
            let stopped = Err("the Raft log flusher has stopped".to_string());
            waiter.complete(&stopped);
            return Err(storage_err(ErrorSubject::Logs, ErrorVerb::Write, "the Raft log flusher has stopped"));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Not flushed: if a crash loses it, the entries come back as they were before, which were
        // durable anyway; the next append's flush covers it.
        self.inner.sizes.truncated(log_id.index);
        self.inner.delete(key(log_id.index)..)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The purged id is made durable before any entry goes, so that a crash never leaves the
        // log starting after a hole; `open` finishes the deletion if a crash interrupts it.
        self.inner.write_meta(PURGED_KEY, &log_id, ErrorSubject::Store)?;
        self.sync(ErrorSubject::Store).await?;
        self.inner.sizes.purged(log_id.index);
        if !self.inner.purger.queue(log_id.index) {
            delete_through(&self.inner.logs, log_id.index)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs::OpenOptions;
    use std::io::{Seek, SeekFrom, Write};

    use openraft::storage::RaftLogStorageExt;
    use openraft::testing::{blank_ent, log_id, membership_ent, StoreBuilder, Suite};
    use openraft::EntryPayload;
    use tempfile::TempDir;

    use super::*;
    use crate::raft::state_machine::StateStore;
    use crate::raft::types::Batch;

    /// Builds a fresh log store and state machine in a temporary directory for openraft's suite.
    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateStore, TempDir> for Builder {
        async fn build(&self) -> Result<(TempDir, LogStore, StateStore), StorageError> {
            let fail = |e: &dyn std::fmt::Display| storage_err(ErrorSubject::Store, ErrorVerb::Write, e);
            let dir = TempDir::new().map_err(|e| fail(&e))?;
            let log = LogStore::open(&dir.path().join("log"), 1 << 20).map_err(|e| fail(&e))?;
            let sm_dir = dir.path().join("sm");
            std::fs::create_dir_all(&sm_dir).map_err(|e| fail(&e))?;
            let sm = StateStore::open(&sm_dir).map_err(|e| fail(&e))?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn openraft_suite() {
        Suite::test_all(Builder).unwrap();
    }

    /// Opens a log store with a small cache, for tests. A store dropped just before may still be
    /// releasing sled's file lock (sled's I/O pool threads let go of the files a moment after
    /// their last write): wait for the lock rather than fail.
    fn open(dir: &Path) -> LogStore {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match LogStore::open(dir, 1 << 20) {
                Ok(store) => return store,
                Err(e)
                    if format!("{e:#}").contains("could not acquire lock") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("opening the log store: {e:#}"),
            }
        }
    }

    /// A normal entry (an empty batch) by leader 1.
    fn normal_ent(term: u64, index: u64) -> Entry {
        Entry { log_id: log_id(term, 1, index), payload: EntryPayload::Normal(Batch(Vec::new())) }
    }

    #[test]
    fn log_sizes_follow_appends_truncations_and_purges() {
        let s = LogSizes::default();
        for i in 1..=10 {
            s.appended(i, 100);
        }
        assert_eq!(s.between(0, 10), 1000);
        assert_eq!(s.between(4, 6), 200);
        assert_eq!(s.purge_point(10, 250), Some(8), "keeping 8..=10 (300 bytes) would exceed 250");
        assert_eq!(s.purge_point(10, 300), Some(7));
        assert_eq!(s.purge_point(6, 0), Some(6));
        assert_eq!(s.purge_point(10, 5000), None);
        // A conflicting entry replaces the tail.
        s.appended(9, 1000);
        assert_eq!(s.between(8, 9), 1000);
        assert_eq!(s.between(0, 10), 1800, "entry 10 went with the truncation");
        s.truncated(9);
        s.appended(9, 10);
        assert_eq!(s.total(), 810);
        s.purged(5);
        assert_eq!(s.total(), 310);
        assert_eq!(s.between(0, 9), 310, "purged entries are not counted");
        assert_eq!(s.between(6, 9), 210);
        assert_eq!(s.purge_point(9, 110), Some(7));
    }

    #[test]
    fn a_log_of_a_newer_format_is_refused() {
        let dir = TempDir::new().unwrap();
        drop(open(dir.path()));
        {
            let db = sled::Config::new().path(dir.path()).open().unwrap();
            db.open_tree(META_TREE).unwrap().insert(FORMAT_KEY, &[super::super::format::FORMAT + 1]).unwrap();
            db.flush().unwrap();
        }
        let Err(e) = LogStore::open(dir.path(), 1 << 20) else { panic!("a newer format was opened") };
        assert!(format!("{e:#}").contains("newer than this release of raftis reads"), "{e:#}");
    }

    #[tokio::test]
    async fn a_log_of_every_older_format_opens_with_its_entries() {
        use super::super::format::FORMAT;
        for old in 1..FORMAT {
            // Written as that release wrote them: fixed-size integers behind the version byte
            // up to format 3, variable-length ones from format 4.
            let dir = TempDir::new().unwrap();
            drop(open(dir.path()));
            {
                let db = sled::Config::new().path(dir.path()).open().unwrap();
                let logs = db.open_tree(LOGS_TREE).unwrap();
                for i in 0..=1 {
                    let mut bytes = vec![old];
                    if old < 4 {
                        bytes.extend(bincode::serialize(&normal_ent(1, i)).unwrap());
                    } else {
                        use bincode::Options;
                        bytes.extend(bincode::DefaultOptions::new().serialize(&normal_ent(1, i)).unwrap());
                    }
                    logs.insert(key(i), bytes).unwrap();
                }
                db.open_tree(META_TREE).unwrap().insert(FORMAT_KEY, &[old]).unwrap();
                db.flush().unwrap();
            }
            // Not the log its last clean shutdown recorded: forget that record.
            std::fs::remove_file(dir.path().join("clean-shutdown")).unwrap();
            let mut store = LogStore::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("format {old}: {e:#}"));
            let entries = store.try_get_log_entries(0..2).await.unwrap();
            assert_eq!(entries, vec![normal_ent(1, 0), normal_ent(1, 1)], "format {old}");
            store.blocking_append(vec![normal_ent(1, 2)]).await.unwrap();
            assert_eq!(store.try_get_log_entries(0..3).await.unwrap().len(), 3, "a mixed log reads back");
            assert!(store.sizes().total() > 0, "sizes are read at open");
        }
    }

    #[tokio::test]
    async fn state_survives_reopen() {
        let dir = TempDir::new().unwrap();
        let vote = Vote::new_committed(3, 1);
        {
            let mut store = open(dir.path());
            let mut entries = vec![membership_ent::<TypeConfig>(1, 1, 0, vec![BTreeSet::from([1, 2, 3])])];
            entries.extend((1..5).map(|i| blank_ent::<TypeConfig>(1, 1, i)));
            entries.extend((5..10).map(|i| normal_ent(2, i)));
            store.blocking_append(entries).await.unwrap();
            store.save_vote(&vote).await.unwrap();
            store.save_committed(Some(log_id(2, 1, 8))).await.unwrap();
            store.purge(log_id(1, 1, 3)).await.unwrap();
            store.truncate(log_id(2, 1, 9)).await.unwrap();
        }
        let mut store = open(dir.path());
        assert_eq!(store.read_vote().await.unwrap(), Some(vote));
        assert_eq!(store.read_committed().await.unwrap(), Some(log_id(2, 1, 8)));
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 3)));
        assert_eq!(state.last_log_id, Some(log_id(2, 1, 8)));
        let entries = store.try_get_log_entries(..).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), (4..9).collect::<Vec<_>>());
        assert_eq!(entries[4], normal_ent(2, 8));
        assert_eq!(store.try_get_log_entries(5..=6).await.unwrap().len(), 2);
        assert!(store.try_get_log_entries(7..7).await.unwrap().is_empty());
        assert!(store.try_get_log_entries((Bound::Excluded(u64::MAX), Bound::Unbounded)).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn purge_of_everything_keeps_the_purged_id_as_last() {
        let dir = TempDir::new().unwrap();
        {
            let mut store = open(dir.path());
            store.blocking_append((0..3).map(|i| blank_ent::<TypeConfig>(1, 1, i))).await.unwrap();
            store.purge(log_id(1, 1, 7)).await.unwrap();
        }
        let mut store = open(dir.path());
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 7)));
        assert_eq!(state.last_log_id, Some(log_id(1, 1, 7)));
        // The log continues after the purged id.
        store.blocking_append([blank_ent::<TypeConfig>(2, 1, 8)]).await.unwrap();
        drop(store);
        assert_eq!(open(dir.path()).get_log_state().await.unwrap().last_log_id, Some(log_id(2, 1, 8)));
    }

    #[tokio::test]
    async fn purge_answers_at_once_and_the_entries_go_in_the_background() {
        let dir = TempDir::new().unwrap();
        {
            let mut store = open(dir.path());
            store.blocking_append((0..10_000).map(|i| blank_ent::<TypeConfig>(1, 1, i))).await.unwrap();
            store.purge(log_id(1, 1, 9_000)).await.unwrap();
            // Whether or not the purger has run yet, the log starts after the purged id.
            let state = store.get_log_state().await.unwrap();
            assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 9_000)));
            assert_eq!(state.last_log_id, Some(log_id(1, 1, 9_999)));
            store.purge(log_id(1, 1, 9_999)).await.unwrap();
            assert_eq!(store.get_log_state().await.unwrap().last_log_id, Some(log_id(1, 1, 9_999)));
            // Dropping the store waits for the purger.
        }
        let store = open(dir.path());
        assert_eq!(store.inner.logs.len(), 0, "every purged entry was deleted");
        let mut reader = store.clone();
        assert!(reader.try_get_log_entries(0..20_000).await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_share_a_flush() {
        let dir = TempDir::new().unwrap();
        let store = open(dir.path());
        const APPENDS: u64 = 100;
        // Hold the flusher: the appends insert and queue their callbacks, none completes.
        let gate = store.inner.flusher.gate.clone();
        let held = gate.lock().await;
        let before = store.flushes();
        let tasks: Vec<_> = (0..APPENDS)
            .map(|i| {
                let mut store = store.clone();
                tokio::spawn(async move { store.blocking_append([blank_ent::<TypeConfig>(1, 1, i)]).await })
            })
            .collect();
        while (store.inner.logs.len() as u64) < APPENDS {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // Inserting and queueing happen in the same poll; give the last ones time to queue.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(tasks.iter().all(|t| !t.is_finished()), "an append completed before any flush");
        drop(held);
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // One flush for what the flusher had taken before it blocked, one for all the rest.
        let flushes = store.flushes() - before;
        assert!((1..=2).contains(&flushes), "{APPENDS} appends took {flushes} flushes");
    }

    /// Writes a log with enough data to span many sled pages, then returns its directory.
    async fn written_log() -> TempDir {
        let dir = TempDir::new().unwrap();
        let mut store = open(dir.path());
        store.save_vote(&Vote::new(1, 1)).await.unwrap();
        for chunk in 0..20u64 {
            store.blocking_append((chunk * 50..(chunk + 1) * 50).map(|i| normal_ent(1, i))).await.unwrap();
        }
        dir
    }

    /// Opens a damaged log: it must be an error naming the directory or, if sled recovers, a
    /// consistent log; it must never panic.
    fn open_damaged(dir: &Path) -> anyhow::Result<LogStore> {
        let result = LogStore::open(dir, 1 << 20);
        if let Err(e) = &result {
            let message = format!("{e:#}");
            assert!(message.contains(&dir.display().to_string()), "error does not name the path: {message}");
        }
        result
    }

    #[tokio::test]
    async fn garbage_db_file_is_an_error() {
        let dir = written_log().await;
        let db_file = dir.path().join("db");
        let len = std::fs::metadata(&db_file).unwrap().len();
        let mut file = OpenOptions::new().write(true).open(&db_file).unwrap();
        file.write_all(&vec![0xA5; len as usize]).unwrap();
        drop(file);
        // sled itself opens this as an empty database: only the clean-shutdown summary tells.
        let message = format!("{:#}", open_damaged(dir.path()).unwrap_err());
        assert!(message.contains("damaged"), "{message}");
        // A failed open records nothing, so the damage is not accepted on the second try.
        assert!(open_damaged(dir.path()).is_err());
    }

    #[tokio::test]
    async fn truncated_db_file_is_an_error() {
        let dir = written_log().await;
        let db_file = dir.path().join("db");
        let len = std::fs::metadata(&db_file).unwrap().len();
        OpenOptions::new().write(true).open(&db_file).unwrap().set_len(len / 2).unwrap();
        assert!(open_damaged(dir.path()).is_err());
    }

    #[tokio::test]
    async fn clean_shutdown_file_is_consumed_at_open() {
        let dir = written_log().await;
        let file = dir.path().join(CLEAN_SHUTDOWN_FILE);
        assert!(file.exists());
        let mut store = open(dir.path());
        // Gone before anything new is written: after a crash it would describe an older log.
        assert!(!file.exists());
        store.blocking_append([normal_ent(1, 1000)]).await.unwrap();
        drop(store);
        assert!(file.exists());
        assert_eq!(open(dir.path()).get_log_state().await.unwrap().last_log_id, Some(log_id(1, 1, 1000)));
    }

    #[tokio::test]
    async fn corrupt_clean_shutdown_file_is_an_error() {
        let dir = written_log().await;
        std::fs::write(dir.path().join(CLEAN_SHUTDOWN_FILE), b"\x01").unwrap();
        assert!(open_damaged(dir.path()).is_err());
    }

    #[tokio::test]
    async fn damaged_db_file_never_panics() {
        for damage in 0..6u64 {
            let dir = written_log().await;
            let db_file = dir.path().join("db");
            let len = std::fs::metadata(&db_file).unwrap().len();
            let mut file = OpenOptions::new().write(true).open(&db_file).unwrap();
            match damage {
                0 => file.set_len(len / 2).unwrap(),
                1 => file.set_len(len - 7).unwrap(),
                2 => file.set_len(10).unwrap(),
                _ => {
                    file.seek(SeekFrom::Start(len * (damage - 2) / 5)).unwrap();
                    file.write_all(&[0xFF; 64]).unwrap();
                }
            }
            drop(file);
            if let Ok(mut store) = open_damaged(dir.path()) {
                // sled recovered a prefix of its log: what is there must still read back.
                let entries = store.try_get_log_entries(..).await.unwrap();
                assert!(entries.iter().enumerate().all(|(i, e)| e.log_id.index == i as u64));
            }
        }
    }

    #[test]
    fn garbage_conf_file_is_an_error() {
        let dir = TempDir::new().unwrap();
        drop(open(dir.path()));
        std::fs::write(dir.path().join("conf"), b"not a sled config").unwrap();
        assert!(open_damaged(dir.path()).is_err());
    }

    #[test]
    fn bounds() {
        assert_eq!(inclusive_bounds(&(3..7)), Some((3, Some(6))));
        assert_eq!(inclusive_bounds(&(3..3)), None);
        assert_eq!(inclusive_bounds(&(..0)), None);
        assert_eq!(inclusive_bounds(&(2..)), Some((2, None)));
        assert_eq!(inclusive_bounds(&(..=u64::MAX)), Some((0, Some(u64::MAX))));
    }
}
