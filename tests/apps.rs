//! Real applications from PyPI, unchanged, on a three-node cluster (issue 14's apps suite):
//! `tests/apps/*_check.py`, each run first against a real redis-server (to show the check is
//! honest), then on raftis through Sentinel discovery and through a follower in proxy mode, with
//! the leader killed (kill -9) in the middle of the workload.
//!
//! - RQ (`rq_check.py`): enqueue, scheduled jobs (`enqueue_in`), a SimpleWorker with the
//!   scheduler, results: every acknowledged job finishes with its result.
//! - Celery (`celery_check.py`): kombu's Redis transport as the broker, the Redis result
//!   backend, a thread-pool worker; single tasks, groups and chords: every acknowledged task
//!   succeeds with its result, every chord's body sums its header. The cluster runs with
//!   `--pop-delivery at-least-once`: kombu takes messages with BRPOP, and a pop whose answer the
//!   leader's death cut off must come back, not vanish. One message may be lost in kombu's own
//!   window (the worker took it, then recording it as unacknowledged failed on the broken
//!   connection), which the worker's record must show (see `celery_check.py`).
//! - redis-py's `Lock` (`lock_check.py`): 8 threads with plain clients increment a counter under
//!   the lock: the counter is exact (no acknowledged increment lost, never two holders).
//!
//! Needs python3 with `redis`, `rq` and `celery[redis]` (`.ci/run` installs them) and redis-server: without them
//! the tests print `SKIPPED` (and fail when `CI=true`).

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use common::cluster::{poll, Cluster, Options};
use common::{require, run_check, runs_ok};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn have(test: &str, module: &str) -> bool {
    require(
        test,
        &[
            ("python3 with the redis package", runs_ok(&python(), &["-c", "import redis"])),
            (module, runs_ok(&python(), &["-c", &format!("import {module}")])),
            ("redis-server", runs_ok("redis-server", &["--version"])),
        ],
    )
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps").join(name)
}

/// A redis-server on a free port, killed on drop.
struct RedisServer {
    child: Child,
    addr: String,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let addr = format!("127.0.0.1:{port}");
        assert!(
            poll(Duration::from_secs(10), || TcpStream::connect(&addr).ok()).is_some(),
            "redis-server did not listen on {addr}"
        );
        RedisServer { child, addr }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One application check at a time: each runs a cluster, a worker process and its clients, and
/// on a 2-core machine several at once would starve each other into timeouts.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `check` against a redis-server, then on a 3-node raftis cluster (its nodes started with
/// `flags`) through Sentinel and through a follower, killing the leader (and restarting it) when
/// the script prints `trigger`.
fn run_everywhere(name: &str, check: &str, args: &[&str], trigger: &str, ok_line: &str, flags: &[&str]) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let redis = RedisServer::start();
    let mut direct = vec!["direct", redis.addr.as_str()];
    direct.extend_from_slice(args);
    let (ok, out, err) = run_check(&python(), &script(check), &direct, "", || {});
    assert!(ok && out.contains(ok_line), "{name} against redis-server failed\nstdout:\n{out}\nstderr:\n{err}");
    eprintln!("{name}, redis-server:\n{out}");
    drop(redis);

    for mode in ["sentinel", "proxy"] {
        let extra = flags.iter().map(|f| f.to_string()).collect();
        let mut c = Cluster::start_with(Options { extra, ..Options::default() });
        let leader = c.leader(LEADER_TIMEOUT);
        let follower = c.ids().into_iter().find(|&i| i != leader).unwrap();
        let target = match mode {
            "sentinel" => c.addrs().join(","),
            _ => c.addr(follower),
        };
        let mut full = vec![if mode == "sentinel" { "sentinel" } else { "direct" }, target.as_str()];
        full.extend_from_slice(args);
        let cluster = &mut c;
        let (ok, out, err) = run_check(&python(), &script(check), &full, trigger, move || {
            cluster.kill9(leader);
            thread::sleep(Duration::from_millis(1500));
            cluster.restart(leader);
        });
        assert!(out.contains(trigger), "{name} ({mode}): the workload never reached '{trigger}'\n{out}\n{err}");
        assert!(
            ok && out.contains(ok_line),
            "{name} on raftis ({mode}, leader {leader} killed) failed\nstdout:\n{out}\nstderr:\n{err}"
        );
        let put_back: usize = c.ids().iter().map(|&id| c.log(id).matches("put back list pops").count()).sum();
        eprintln!("{name}, raftis through {mode} (leader {leader} killed; pops put back: {put_back}):\n{out}");
        c.wait_digests_equal(Duration::from_secs(30));
        c.assert_no_panics();
    }
}

#[test]
fn rq_runs_every_acknowledged_job_across_a_leader_kill() {
    if !have("rq_runs_every_acknowledged_job_across_a_leader_kill", "rq") {
        return;
    }
    run_everywhere("RQ", "rq_check.py", &["400"], "progress 200", "RQ OK", &[]);
}

#[test]
fn celery_runs_every_acknowledged_task_group_and_chord_across_a_leader_kill() {
    if !have("celery_runs_every_acknowledged_task_group_and_chord_across_a_leader_kill", "celery") {
        return;
    }
    // kombu takes messages with BRPOP: a pop whose answer the leader's death cut off is put back.
    run_everywhere(
        "Celery",
        "celery_check.py",
        &["400"],
        "progress 200",
        "CELERY OK",
        &["--pop-delivery", "at-least-once"],
    );
}

#[test]
fn redis_py_lock_keeps_a_counter_exact_across_a_leader_kill() {
    if !have("redis_py_lock_keeps_a_counter_exact_across_a_leader_kill", "redis.lock") {
        return;
    }
    run_everywhere("redis-py Lock", "lock_check.py", &["1000"], "progress 300", "LOCK OK", &[]);
}
