//! Replays the cases recorded from a real redis-server (`conformance/*.case`) against raftis, with
//! the `raftis-conformance` binary, and fails on any difference: on a single node, and on the
//! leader of a three-node cluster (every write then goes through Raft replication).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::cluster::Cluster;
use common::Server;

/// Runs `raftis-conformance check` against `addr`; on failure prints `log` and fails.
fn check(addr: &str, log: impl FnOnce() -> String) {
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    let output = Command::new(env!("CARGO_BIN_EXE_raftis-conformance"))
        .args(["check", "--addr", addr])
        .arg(&cases)
        .output()
        .expect("run raftis-conformance");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        eprintln!("--- server log ---\n{}", log());
    }
    assert!(output.status.success(), "raftis-conformance check against {addr} failed ({})", output.status);
}

#[test]
fn recorded_redis_cases_pass() {
    let server = Server::start(&[]);
    check(&format!("127.0.0.1:{}", server.port), || server.log());
}

#[test]
fn recorded_redis_cases_pass_on_a_cluster_leader() {
    let cluster = Cluster::start(3);
    let leader = cluster.leader(Duration::from_secs(20));
    check(&cluster.addr(leader), || cluster.describe());
}
