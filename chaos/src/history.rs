//! The record of a run: every client operation as invoke → ok | fail | info, with monotonic
//! timestamps, and every fault the nemesis injected.
//!
//! `fail` means the operation certainly did not take effect (refused with MOVED or CLUSTERDOWN
//! before anything was proposed, a definite error reply, an aborted transaction). `info` means it
//! may or may not have: a timeout, a lost connection, or the server saying so. Checkers treat an
//! `info` operation as one that may take effect at any time after its invocation, forever.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged with its result.
    Ok,
    /// Certainly did not happen.
    Fail,
    /// Indeterminate: may or may not have happened.
    Info,
}

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum Call {
    /// Register: GET.
    Read,
    /// Register: SET to a value.
    Write { value: i64 },
    /// Register: INCR.
    Incr,
    /// Register: WATCH, GET (→ `expect`), MULTI, SET `new`, EXEC: sets `new` if the value is
    /// still `expect` (nil = `None`). `known` is false when the GET's answer never came (then the
    /// operation is `info` and may have set `new` whatever the value was). An EXEC that aborts
    /// because the key changed makes the operation a `fail`.
    Cas { expect: Option<i64>, known: bool, new: i64 },
    /// Append: APPEND a unique token (followed by a space).
    Append { token: String },
    /// Append: GET the whole value.
    ReadList,
    /// Set: SADD a unique element.
    SetAdd { element: String },
    /// Set: SMEMBERS (the whole set).
    SetRead,
    /// Bank: MULTI, DECRBY from, INCRBY to, EXEC.
    Transfer { from: usize, to: usize, amount: i64 },
    /// Bank: MULTI, GET every account, EXEC.
    ReadAll,
    /// Queue: LPUSH a unique token.
    Enqueue { token: String },
    /// Queue: RPOP (the token popped, or nothing from an empty queue).
    Dequeue,
    /// Queue: LRANGE 0 -1, the whole queue (final reads).
    QueueRead,
}

/// What an acknowledged operation returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ret {
    /// A register's value (nil = `None`), or the counter INCR returned.
    Value(Option<i64>),
    /// The length APPEND returned, or how many members SADD added.
    Len(i64),
    /// A string read.
    Text(String),
    /// The members of a set read, sorted.
    Members(Vec<String>),
    /// Every account's balance (nil = `None`).
    Balances(Vec<Option<i64>>),
    /// Nothing to say (SET's OK, a transfer's replies).
    Done,
}

/// One completed operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Index in the history (order of completion).
    pub index: usize,
    /// Which workload produced it.
    pub workload: String,
    /// The client (Jepsen's "process"); final reads use their own process numbers.
    pub process: usize,
    pub key: String,
    pub call: Call,
    pub outcome: Outcome,
    /// The result, for `ok` operations.
    pub ret: Option<Ret>,
    /// Nanoseconds since the run started, when the request was about to be sent.
    pub invoke: u64,
    /// Nanoseconds since the run started, when the reply (or the give-up) came.
    pub complete: u64,
    /// The node that answered last (client address), if any.
    pub node: String,
    /// Why it failed or is indeterminate.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The transaction this operation was one step of (list-append: several RPUSH and LRANGE in
    /// one MULTI, each recorded as an operation), if any: the steps of one transaction share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<u64>,
}

/// A fault, as it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// A short name of the fault (`kill-leader`, `partition-bridge`, ...).
    pub name: String,
    /// What exactly was done (nodes, links).
    pub detail: String,
    pub start: u64,
    /// When it was healed (`None` for instantaneous faults).
    pub end: Option<u64>,
}

/// Which node led, as seen by polling INFO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderSample {
    pub at: u64,
    /// The node that said it is the leader.
    pub node: u64,
    pub term: u64,
}

/// The monotonic clock of a run.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// Collects operations from every client (cheap to clone).
#[derive(Clone, Default)]
pub struct Recorder {
    ops: Arc<Mutex<Vec<Op>>>,
    faults: Arc<Mutex<Vec<FaultEvent>>>,
    leaders: Arc<Mutex<Vec<LeaderSample>>>,
}

impl Recorder {
    /// Adds a completed operation (its `index` is assigned here).
    pub fn push(&self, mut op: Op) {
        let mut ops = self.ops.lock().unwrap();
        op.index = ops.len();
        ops.push(op);
    }

    /// Records the start of a fault; returns its number for [`Recorder::fault_end`].
    pub fn fault_start(&self, name: &str, detail: String, at: u64) -> usize {
        let mut f = self.faults.lock().unwrap();
        f.push(FaultEvent { name: name.to_string(), detail, start: at, end: None });
        f.len() - 1
    }

    /// Records the end of fault `i`.
    pub fn fault_end(&self, i: usize, at: u64) {
        if let Some(f) = self.faults.lock().unwrap().get_mut(i) {
            f.end = Some(at);
        }
    }

    pub fn leader_sample(&self, s: LeaderSample) {
        self.leaders.lock().unwrap().push(s);
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap().clone()
    }

    pub fn faults(&self) -> Vec<FaultEvent> {
        self.faults.lock().unwrap().clone()
    }

    pub fn leaders(&self) -> Vec<LeaderSample> {
        self.leaders.lock().unwrap().clone()
    }
}

/// Counts of a set of operations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
}

impl Counts {
    pub fn of<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Counts {
        let mut c = Counts::default();
        for op in ops {
            match op.outcome {
                Outcome::Ok => c.ok += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::Info => c.info += 1,
            }
        }
        c
    }

    pub fn total(&self) -> usize {
        self.ok + self.fail + self.info
    }
}

/// Elections seen: the number of distinct terms in which some node said it led.
pub fn elections(samples: &[LeaderSample]) -> usize {
    samples.iter().map(|s| s.term).collect::<std::collections::BTreeSet<_>>().len()
}
