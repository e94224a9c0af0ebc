//! The state machine as openraft sees it: committed entries are applied to the keyspace, and
//! snapshots (keyspace + last applied log id + membership) are written atomically to disk.

use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder};
use tracing::info;

use super::format;
use super::types::{
    BatchReply, Entry, LogId, NodeId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::cmd::Op;
use crate::sm::{Body, KeySpace, StateMachine};

/// File name of the current snapshot inside the node's directory.
const SNAPSHOT_FILE: &str = "snapshot.bin";

/// The applied state: the keyspace and how far the log has been applied.
#[derive(Debug, Default)]
pub struct Applied {
    pub sm: StateMachine,
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
}

/// The state machine shared between openraft (which applies) and the connections (which read).
#[derive(Debug, Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

struct Inner {
    applied: RwLock<Applied>,
    dir: PathBuf,
    snapshots_built: AtomicU64,
    /// Serializes snapshot writes (openraft builds snapshots in a task of their own, possibly
    /// while a snapshot from the leader is being installed) and remembers the newest on disk.
    persisted: std::sync::Mutex<Option<LogId>>,
    /// Where the messages applied entries publish go (the node's subscribers), once set.
    sink: std::sync::OnceLock<MessageSink>,
    /// Where the pops a new term's first entry committed go (`--pop-delivery at-least-once`).
    requeue: std::sync::OnceLock<RequeueSink>,
    /// The pops of older terms applied since this node last stood for election, and that
    /// election: its term and the last index the node had applied when it started.
    cut: std::sync::Mutex<Cut>,
    /// The index of the last entry fully applied, readable while another is being applied.
    applied_index: AtomicU64,
    /// How long each call applying committed entries took.
    apply_latency: crate::latency::Latency,
    /// The changes applied entries made, for the HTTP watch.
    feed: Arc<super::feed::Feed>,
    /// Snapshots this node built and wrote, and how long each took.
    snapshots: SnapshotStats,
}

/// Counters of the snapshots a node built and installed (INFO raft, `/metrics`).
#[derive(Debug, Default)]
pub struct SnapshotStats {
    pub written: AtomicU64,
    pub written_bytes: AtomicU64,
    /// The size of the newest snapshot written or installed.
    pub last_bytes: AtomicU64,
    pub installed: AtomicU64,
    /// Time to build and write each snapshot.
    pub duration: crate::latency::Latency,
}

/// See `Inner::cut`.
#[derive(Default)]
struct Cut {
    candidacy: Option<(u64, u64)>,
    pops: Vec<crate::cmd::lists::Popped>,
}

/// Receives, entry by entry and in log order, the messages applied entries published.
pub type MessageSink = Arc<dyn Fn(Vec<crate::sm::Message>) + Send + Sync>;

/// Receives, when the first entry of term `term` (a new leader's blank entry) is applied on a
/// node that stood for election in `term`, the list pops of older terms it had not applied
/// when it started standing, in log order. On the node that leads `term` these are
/// pops its election committed: their proposer may have died before answering (see
/// `crate::server::requeue`).
pub type RequeueSink = Arc<dyn Fn(u64, Vec<crate::cmd::lists::Popped>) + Send + Sync>;

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").field("dir", &self.dir).finish()
    }
}

fn io_err(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl std::error::Error + 'static) -> StorageError {
    StorageError::from_io_error(subject, verb, std::io::Error::other(e.to_string()))
}

impl StateStore {
    /// Opens the state kept in `dir`: the snapshot if there is one, else an empty keyspace.
    /// A snapshot that cannot be read is an error, never silently an empty state.
    pub fn open(dir: &Path) -> anyhow::Result<StateStore> {
        let path = dir.join(SNAPSHOT_FILE);
        let mut applied = Applied::default();
        if path.exists() {
            let bytes = fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            let (meta, image) =
                format::decode_snapshot(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            info!(last_log_id = ?meta.last_log_id, keys = image.entries.len(), "loaded snapshot");
            applied = Applied {
                sm: StateMachine { keyspace: KeySpace::from_image(image) },
                last_applied: meta.last_log_id,
                membership: meta.last_membership,
            };
        }
        let applied_index = AtomicU64::new(applied.last_applied.map_or(0, |l| l.index));
        Ok(StateStore {
            inner: Arc::new(Inner {
                persisted: std::sync::Mutex::new(applied.last_applied),
                applied: RwLock::new(applied),
                dir: dir.to_path_buf(),
                snapshots_built: AtomicU64::new(0),
                sink: std::sync::OnceLock::new(),
                requeue: std::sync::OnceLock::new(),
                cut: std::sync::Mutex::default(),
                feed: Arc::new(super::feed::Feed::new(applied_index.load(Ordering::Relaxed))),
                applied_index,
                apply_latency: Default::default(),
                snapshots: SnapshotStats::default(),
            }),
        })
    }

    /// The snapshots this node built and installed.
    pub fn snapshot_stats(&self) -> &SnapshotStats {
        &self.inner.snapshots
    }

    /// The feed of the changes applied entries make.
    pub fn feed(&self) -> &Arc<super::feed::Feed> {
        &self.inner.feed
    }

    /// Sends the messages that entries applied from now on publish to `sink` (once; later
    /// calls are ignored). Without a sink they are dropped.
    pub fn set_message_sink(&self, sink: MessageSink) {
        let _ = self.inner.sink.set(sink);
    }

    /// Hands the older-term pops each new term's first entry commits to `sink` (once; later
    /// calls are ignored). Without a sink nothing is collected.
    pub fn set_requeue_sink(&self, sink: RequeueSink) {
        let _ = self.inner.requeue.set(sink);
    }

    /// Notes that this node stands for election in `term` (it voted for itself). The pops of
    /// older terms it had not applied then (and that were not already committed when its log was
    /// opened, `floor`: a restarted node replays those) are collected for the requeue sink from
    /// now on.
    pub fn note_candidacy(&self, term: u64, floor: u64) {
        if self.inner.requeue.get().is_none() {
            return;
        }
        let mut cut = self.inner.cut.lock().unwrap_or_else(|e| e.into_inner());
        // Read under the lock the apply loop stores it under: an entry is either applied and
        // checked against the old candidacy, or not applied yet.
        let applied = self.inner.applied_index.load(Ordering::Relaxed).max(floor);
        cut.candidacy = match cut.candidacy {
            Some((t, at)) if t == term => Some((t, at)),
            // Standing again before a term's first entry settled the last candidacy: what was not
            // applied then is still uncertain.
            Some((_, at)) => Some((term, at.min(applied))),
            None => Some((term, applied)),
        };
    }

    /// Read access to the applied state. While apply holds the lock (a script may run for up to
    /// its instruction budget, ~0.4 s by default) the wait happens off the runtime's worker: the
    /// expiry cycle and a read on each of the 2 workers of a 2-core machine would otherwise stall
    /// heartbeats until followers start an election.
    pub fn read(&self) -> RwLockReadGuard<'_, Applied> {
        match self.inner.applied.try_read() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(_)) => panic!("state machine lock poisoned"),
            Err(std::sync::TryLockError::WouldBlock) => {
                off_worker(|| self.inner.applied.read().expect("state machine lock poisoned"))
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Applied> {
        self.inner.applied.write().expect("state machine lock poisoned")
    }

    /// Applies committed entries in order and returns each one's replies.
    fn apply_entries(&self, entries: Vec<Entry>) -> Vec<BatchReply> {
        let started = std::time::Instant::now();
        let mut applied = self.write();
        let mut replies = Vec::with_capacity(entries.len());
        let requeue = self.inner.requeue.get();
        let cut = || self.inner.cut.lock().unwrap_or_else(|e| e.into_inner());
        let feed = &self.inner.feed;
        applied.sm.keyspace.record_changes = feed.enabled();
        let first = entries.first().map(|e| e.log_id.index);
        let mut last = 0;
        for entry in entries {
            let mut taken = Vec::new();
            applied.last_applied = Some(entry.log_id);
            let (term, index) = (entry.log_id.leader_id.term, entry.log_id.index);
            last = index;
            match entry.payload {
                EntryPayload::Blank => {
                    if let Some(sink) = requeue {
                        // The first entry of a term settles the candidacies up to it: this node's
                        // own (its pops go to the sink) or a lost one. An older term's blank (a
                        // leader elected before this candidacy, that died) settles nothing.
                        let pops = {
                            let mut cut = cut();
                            match cut.candidacy {
                                Some((t, _)) if t < term => {
                                    *cut = Cut::default();
                                    Vec::new()
                                }
                                Some((t, _)) if t == term => {
                                    cut.candidacy = None;
                                    std::mem::take(&mut cut.pops)
                                }
                                _ => Vec::new(),
                            }
                        };
                        if !pops.is_empty() {
                            sink(term, pops);
                        }
                    }
                    replies.push(BatchReply::default())
                }
                EntryPayload::Normal(batch) => {
                    let sm = &mut applied.sm;
                    let batch_replies: Vec<_> = batch
                        .0
                        .iter()
                        .map(|req| {
                            let reply = sm.apply(req);
                            if let (Some(_), Body::Op(op)) = (requeue, &req.body) {
                                taken.extend(crate::cmd::lists::Popped::from_reply(op, &reply));
                            }
                            reply
                        })
                        .collect();
                    replies.push(BatchReply(batch_replies));
                    applied.sm.keyspace.changes.mark(index);
                    let outbox = &mut applied.sm.keyspace.outbox;
                    if !outbox.is_empty() {
                        let messages = std::mem::take(outbox);
                        // Delivered before the entry's replies go out: a subscriber of this
                        // node has its message before the publisher has its reply, as in Redis.
                        if let Some(sink) = self.inner.sink.get() {
                            sink(messages);
                        }
                    }
                }
                EntryPayload::Membership(m) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), m);
                    replies.push(BatchReply::default());
                }
            }
            if taken.is_empty() {
                self.inner.applied_index.store(index, Ordering::Relaxed);
            } else {
                // Kept: the pops of a term older than this node's candidacy that it had not
                // applied when it started standing. Checked after applying (a candidacy may
                // start meanwhile; the lock is never held while applying, which may take long),
                // under the lock the applied index is stored under.
                let mut cut = cut();
                self.inner.applied_index.store(index, Ordering::Relaxed);
                if cut.candidacy.is_some_and(|(t, at)| term < t && index > at) {
                    cut.pops.extend(taken);
                }
            }
        }
        if let Some(first) = first {
            // Under the state machine's lock: the changes go to the feed before any reader
            // sees the state they led to.
            feed.applied(first, last, &applied.sm.keyspace.changes);
            applied.sm.keyspace.changes.clear();
        }
        drop(applied);
        self.inner.apply_latency.observe(started.elapsed());
        replies
    }

    /// How long applying committed entries took, call by call (a call applies every entry
    /// committed since the previous one).
    pub fn apply_latency(&self) -> crate::latency::LatencySnapshot {
        self.inner.apply_latency.snapshot()
    }

    /// Writes `bytes` as the current snapshot: to a temporary file, fsync, rename, fsync the dir.
    /// A snapshot older than the one already on disk is not written (returns `false`).
    fn persist(&self, bytes: &[u8], last: Option<LogId>) -> std::io::Result<bool> {
        let mut newest = self.inner.persisted.lock().unwrap_or_else(|e| e.into_inner());
        if *newest > last {
            return Ok(false);
        }
        let dir = &self.inner.dir;
        let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
        fs::File::open(dir)?.sync_all()?;
        *newest = last;
        Ok(true)
    }

    #[allow(clippy::result_large_err)] // openraft's StorageError is what the trait returns
    fn read_snapshot_file(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        let path = self.inner.dir.join(SNAPSHOT_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::from_io_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, e)),
        };
        let meta = format::decode_snapshot_meta(&bytes)
            .map_err(|e| io_err(ErrorSubject::Snapshot(None), ErrorVerb::Read, e))?;
        Ok(Some((meta, bytes)))
    }
}

impl StateStore {
    /// Builds and writes a snapshot of the applied state; blocking (see `build_snapshot`).
    #[allow(clippy::result_large_err)] // openraft's StorageError is what the trait returns
    fn build_snapshot_blocking(&self) -> Result<Snapshot, StorageError> {
        let started = std::time::Instant::now();
        let n = self.inner.snapshots_built.fetch_add(1, Ordering::Relaxed);
        // Unique across restarts too: the build counter plus the wall clock.
        let stamp = crate::base::unix_millis();
        // Serialized straight from the live keyspace under the read lock (applying waits
        // meanwhile: tens of milliseconds for a million keys, where copying them first took up
        // to 680 ms), written outside it.
        let (meta, bytes) = {
            let applied = self.read();
            let last_applied = applied.last_applied;
            let snapshot_id = match last_applied {
                Some(id) => format!("{}-{}-{stamp}-{n}", id.leader_id.term, id.index),
                None => format!("0-0-{stamp}-{n}"),
            };
            let meta =
                SnapshotMeta { last_log_id: last_applied, last_membership: applied.membership.clone(), snapshot_id };
            let keyspace = &applied.sm.keyspace;
            let bytes = if crate::broken::is(crate::broken::Mode::LossySnapshot) {
                // Broken on purpose: leave out the five most recently changed keys.
                let mut image = keyspace.to_image();
                image.entries.sort_by_key(|e| std::cmp::Reverse(e.seq));
                image.entries.drain(..image.entries.len().min(5));
                bincode::serialize(&(format::snapshot_header(&meta), image))
            } else {
                keyspace.serialize_image(&format::snapshot_header(&meta))
            };
            let bytes =
                bytes.map_err(|e| io_err(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, e))?;
            (meta, bytes)
        };
        let serialized = started.elapsed();
        let written = self.persist(&bytes, meta.last_log_id).map_err(|e| {
            StorageError::from_io_error(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, e)
        })?;
        if written {
            let stats = &self.inner.snapshots;
            stats.written.fetch_add(1, Ordering::Relaxed);
            stats.written_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            stats.last_bytes.store(bytes.len() as u64, Ordering::Relaxed);
            stats.duration.observe(started.elapsed());
            info!(
                last_log_id = ?meta.last_log_id,
                bytes = bytes.len(),
                serialize_ms = serialized.as_millis() as u64,
                write_ms = (started.elapsed() - serialized).as_millis() as u64,
                "snapshot written"
            );
        }
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }

    /// Installs a snapshot received from the leader; blocking (see `install_snapshot`).
    #[allow(clippy::result_large_err)] // openraft's StorageError is what the trait returns
    fn install_snapshot_blocking(&self, meta: &SnapshotMeta, bytes: Vec<u8>) -> Result<(), StorageError> {
        let (_, image) = format::decode_snapshot(&bytes)
            .map_err(|e| io_err(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Read, e))?;
        self.persist(&bytes, meta.last_log_id).map_err(|e| {
            StorageError::from_io_error(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write, e)
        })?;
        let keys = image.entries.len();
        let bytes_len = bytes.len();
        let keyspace = KeySpace::from_image(image);
        let mut applied = self.write();
        applied.sm = StateMachine { keyspace };
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        self.inner.applied_index.store(meta.last_log_id.map_or(0, |l| l.index), Ordering::Relaxed);
        drop(applied);
        self.inner.feed.skipped_to(meta.last_log_id.map_or(0, |l| l.index));
        self.inner.snapshots.installed.fetch_add(1, Ordering::Relaxed);
        self.inner.snapshots.last_bytes.store(bytes_len as u64, Ordering::Relaxed);
        info!(last_log_id = ?meta.last_log_id, keys, "installed snapshot from the leader");
        Ok(())
    }
}

/// Whether an entry carries a script (EVAL, FCALL...), which may run for long.
fn runs_a_script(entry: &Entry) -> bool {
    let EntryPayload::Normal(batch) = &entry.payload else { return false };
    batch.0.iter().any(|req| match &req.body {
        Body::Op(op) => matches!(op, Op::Script(_)),
        Body::Exec { ops, .. } => ops.iter().any(|op| matches!(op, Op::Script(_))),
    })
}

/// Runs `f`, which may block for long, on the current thread after handing this runtime worker's
/// queued tasks to another thread (`block_in_place`), so the runtime keeps all its workers.
/// Outside a multi-threaded runtime (unit tests, the blocking pool) `f` simply runs.
fn off_worker<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Runs `f` on tokio's blocking pool. Building or installing a snapshot of a large keyspace
/// takes hundreds of milliseconds of CPU and an fsync: on a runtime worker (2 on a 2-core
/// machine) it held up heartbeats, vote replies and client connections, so that a routine
/// snapshot could cost the leader its quorum.
#[allow(clippy::result_large_err)] // openraft's StorageError is what the trait returns
async fn off_runtime<T: Send + 'static>(
    what: ErrorSubject<NodeId>,
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(io_err(what, ErrorVerb::Write, e)),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateStore {
    #[allow(clippy::result_large_err)] // openraft's StorageError is what the trait returns
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let store = self.clone();
        off_runtime(ErrorSubject::Snapshot(None), move || store.build_snapshot_blocking()).await
    }
}

impl RaftStateMachine<TypeConfig> for StateStore {
    type SnapshotBuilder = StateStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<BatchReply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if entries.iter().any(runs_a_script) {
            // A script runs for up to its instruction budget: not on a runtime worker.
            Ok(off_worker(|| self.apply_entries(entries)))
        } else {
            Ok(self.apply_entries(entries))
        }
    }

    async fn get_snapshot_builder(&mut self) -> StateStore {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    #[allow(clippy::result_large_err)] // openraft's StorageError is what the trait returns
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let (store, owned) = (self.clone(), meta.clone());
        let bytes = snapshot.into_inner();
        off_runtime(ErrorSubject::Snapshot(Some(meta.signature())), move || {
            store.install_snapshot_blocking(&owned, bytes)
        })
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.read_snapshot_file()?.map(|(meta, bytes)| Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) }))
    }
}
