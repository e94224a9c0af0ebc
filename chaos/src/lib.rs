//! raftis-chaos: Jepsen-style fault injection for raftis, with the checkers that judge the
//! histories.
//!
//! - [`cluster`]: real `raftis server` processes (kill -9, restart, SIGSTOP/SIGCONT);
//! - [`proxy`]: a fault-injecting TCP proxy per node on the bus (per directed link: down, delay,
//!   drop, reset);
//! - [`client`], [`resp`]: a cluster client that follows MOVED and classifies every request as
//!   ok, fail (certainly not applied) or info (indeterminate);
//! - [`workload`]: the register, append, set and bank workloads;
//! - [`nemesis`]: faults on a seeded schedule;
//! - [`history`]: the record of operations and faults;
//! - [`checker`]: per-key linearizability (Wing–Gong–Lowe), the append, set and bank checks;
//! - [`run`], [`profile`], [`report`]: one run end to end, the named profiles, the files a run
//!   leaves (history, failing windows, timeline).

pub mod checker;
pub mod client;
pub mod cluster;
pub mod history;
pub mod nemesis;
pub mod profile;
pub mod proxy;
pub mod report;
pub mod resp;
pub mod run;
pub mod workload;
