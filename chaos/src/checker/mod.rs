//! Checkers: each reads a workload's history and returns a [`Verdict`].
//!
//! - [`register`]: per-key linearizability of GET/SET/INCR/compare-and-set ([`linear`]).
//! - [`append`]: APPEND of unique tokens: no lost or duplicated token, reads are prefixes of each
//!   other, real-time order respected.
//! - [`set`]: SADD of unique elements: no lost, phantom or failed element, no read that goes back
//!   on an acknowledged SADD or an earlier read.
//! - [`cycle`]: the list-append workload's transactions form no dependency cycle (strict
//!   serializability, as Elle checks it).
//! - [`bank`]: transfers between accounts in MULTI/EXEC never change the total.

pub mod append;
pub mod bank;
pub mod cycle;
pub mod linear;
pub mod queue;
pub mod register;
pub mod set;

use serde::{Deserialize, Serialize};

use crate::history::{Counts, Op};

/// The result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    Valid,
    Invalid,
    /// The checker could not decide in its time bound (not a failure, not a pass).
    Unknown,
}

/// One thing that went wrong, with the smallest piece of history that shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The class: `nonlinearizable`, `lost-write`, `duplicate`, `wrong-total`, ...
    pub kind: String,
    pub key: String,
    /// A sentence a person can follow.
    pub detail: String,
    /// The operations that show it (a minimal failing window where the checker can shrink one).
    pub ops: Vec<Op>,
}

/// An anomaly shown by `ops`, sorted by invocation, each once.
pub(crate) fn anomaly(kind: &str, key: &str, detail: String, ops: &[&Op]) -> Anomaly {
    let mut ops: Vec<Op> = ops.iter().map(|o| (*o).clone()).collect();
    ops.sort_by_key(|o| o.invoke);
    ops.dedup_by_key(|o| o.index);
    Anomaly { kind: kind.into(), key: key.into(), detail, ops }
}

/// A checker's verdict on one workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub workload: String,
    pub validity: Validity,
    pub counts: Counts,
    pub anomalies: Vec<Anomaly>,
    /// Anything else worth knowing (keys whose check timed out, ...).
    pub notes: Vec<String>,
}

impl Verdict {
    /// A verdict from the anomalies found: invalid if any, else unknown if `undecided`.
    pub fn new(workload: &str, ops: &[&Op], anomalies: Vec<Anomaly>, undecided: bool, notes: Vec<String>) -> Verdict {
        let validity = if !anomalies.is_empty() {
            Validity::Invalid
        } else if undecided {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        Verdict { workload: workload.to_string(), validity, counts: Counts::of(ops.iter().copied()), anomalies, notes }
    }

    /// Whether some anomaly is of class `kind`.
    pub fn has(&self, kind: &str) -> bool {
        self.anomalies.iter().any(|a| a.kind == kind)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Building histories by hand for the checkers' tests.
    use crate::history::{Call, Op, Outcome, Ret};

    /// An operation of `workload` on `key` from `process`, invoked at `invoke` and completed at
    /// `complete` (times in arbitrary units).
    #[allow(clippy::too_many_arguments)]
    pub fn op(
        workload: &str,
        process: usize,
        key: &str,
        call: Call,
        outcome: Outcome,
        ret: Option<Ret>,
        invoke: u64,
        complete: u64,
    ) -> Op {
        Op {
            index: 0,
            workload: workload.into(),
            process,
            key: key.into(),
            call,
            outcome,
            ret,
            invoke,
            complete,
            node: String::new(),
            error: String::new(),
            txn: None,
        }
    }

    /// Numbers the operations as a recorder would.
    pub fn indexed(mut ops: Vec<Op>) -> Vec<Op> {
        for (i, o) in ops.iter_mut().enumerate() {
            o.index = i;
        }
        ops
    }
}
