//! Real-client checks: raftis driven by the tools and libraries people actually point at Redis.
//!
//! - `redis_cli_matches_redis_server`: `tests/clients/cli_compare.sh` feeds
//!   `tests/clients/cli_script.txt` through `redis-cli` to a real `redis-server` and to raftis and
//!   diffs the outputs (raw and `--no-raw`).
//! - `redis_py_client`: `tests/clients/redis_py_check.py` (redis-py: pipelines, transactions, a
//!   WATCH retry loop, RESP3, CLIENT SETINFO, decode_responses).
//! - `redis_benchmark_runs_cleanly`: `tests/clients/benchmark_check.sh` (redis-benchmark with and
//!   without pipelining; no errors, no missing test).
//!
//! The external tools (redis-cli, redis-server, redis-benchmark, python3 with `redis`) come from
//! the system. When one is missing the test fails if the environment variable `CI` is `true`, and
//! otherwise prints `SKIPPED: <reason>` to stderr and passes. Every server and script runs under a
//! guard that kills it when the test ends, and every script has a time limit.

mod common;

use common::{require, runs_ok};
use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Time limits for the scripts (generous: CI machines are small and tests run in parallel).
const CLI_TIMEOUT: Duration = Duration::from_secs(120);
const REDIS_PY_TIMEOUT: Duration = Duration::from_secs(300);
const BENCHMARK_TIMEOUT: Duration = Duration::from_secs(1000);

/// The tests take turns: the benchmark saturates the machine, and timing-sensitive checks (TTLs,
/// the WATCH retry loop) should not run beside it.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("clients")
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string())
}

// --- external tools ------------------------------------------------------------------------------

fn have_redis_cli() -> (&'static str, bool) {
    ("redis-cli", runs_ok("redis-cli", &["--version"]))
}

fn have_redis_server() -> (&'static str, bool) {
    ("redis-server", runs_ok("redis-server", &["--version"]))
}

fn have_redis_benchmark() -> (&'static str, bool) {
    ("redis-benchmark", runs_ok("redis-benchmark", &["--version"]))
}

fn have_redis_py() -> (&'static str, bool) {
    ("python3 with the `redis` package", runs_ok(&python(), &["-c", "import redis"]))
}

// --- servers -------------------------------------------------------------------------------------

/// A running server; killed when dropped, so a failing assertion never leaves it behind.
struct Server {
    name: &'static str,
    child: Child,
    addr: String,
    port: u16,
    /// Holds the server's data directory (`data/`) and its log (`server.log`, kept outside the
    /// data directory, where raftis wants only its own files); removed after the server is killed.
    dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server's output (its beginning and its end, when long), to explain a failure.
    fn log_excerpt(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let text = if lines.len() <= 100 {
            lines.join("\n")
        } else {
            let (head, tail) = (&lines[..40], &lines[lines.len() - 60..]);
            format!("{}\n[... {} lines ...]\n{}", head.join("\n"), lines.len() - 100, tail.join("\n"))
        };
        format!("--- {} log ---\n{text}", self.name)
    }
}

/// A port that was free a moment ago: bind port 0, note the port, release it.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Spawns a server (built by `command` from a port and a data directory) and waits until its
/// port accepts connections.
fn start(name: &'static str, command: impl Fn(u16, &Path) -> Command) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("create the data directory");
    let port = free_port();
    let log = File::create(dir.path().join("server.log")).expect("create server.log");
    let child = command(port, &data)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
    let mut server = Server { name, child, addr: format!("127.0.0.1:{port}"), port, dir };
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if TcpStream::connect(&server.addr).is_ok() {
            return server;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("{name} exited with {status} before listening\n{}", server.log_excerpt());
        }
        if Instant::now() > deadline {
            panic!("{name} did not listen on {} within {STARTUP_TIMEOUT:?}\n{}", server.addr, server.log_excerpt());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn start_raftis() -> Server {
    start("raftis", |port, dir| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_raftis"));
        cmd.args(["server", "--bind", "127.0.0.1", "--port", &port.to_string(), "--dir"]).arg(dir);
        cmd
    })
}

fn start_redis_server() -> Server {
    start("redis-server", |port, dir| {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--databases", "1"])
            .args(["--daemonize", "no", "--logfile", ""])
            .arg("--dir")
            .arg(dir);
        cmd
    })
}

// --- scripts -------------------------------------------------------------------------------------

/// A script run to completion (or killed at its time limit), with stdout and stderr interleaved.
struct ScriptRun {
    status: Option<ExitStatus>,
    output: String,
}

/// Runs `cmd` in its own process group with stdout and stderr going to one file, polling until it
/// exits or `timeout` passes; then the whole group (the script and whatever it started) is killed.
fn run_script(mut cmd: Command, timeout: Duration) -> ScriptRun {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out_path = out_dir.path().join("output");
    let out = File::create(&out_path).expect("create output file");
    let description = format!("{cmd:?}");
    let mut child = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone output handle"))
        .stderr(out)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {description}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) | Err(_) => {
                // Kill the process group (the shell script's children too), then the child.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut output = String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()).into_owned();
    if status.is_none() {
        output.push_str(&format!("\n*** killed: {description} did not finish within {timeout:?}\n"));
    }
    ScriptRun { status, output }
}

/// Fails the test unless the script succeeded, with its output and the servers' logs.
fn assert_success(what: &str, run: &ScriptRun, servers: &[&Server]) {
    print!("{}", run.output);
    let ok = run.status.map(|s| s.success()).unwrap_or(false);
    if !ok {
        let logs: Vec<String> = servers.iter().map(|s| s.log_excerpt()).collect();
        let status = match run.status {
            Some(s) => s.to_string(),
            None => "timed out".to_string(),
        };
        panic!("{what} failed ({status}):\n{}\n{}", run.output, logs.join("\n"));
    }
}

// --- tests ---------------------------------------------------------------------------------------

#[test]
fn redis_cli_matches_redis_server() {
    let _turn = one_at_a_time();
    if !require("redis_cli_matches_redis_server", &[have_redis_cli(), have_redis_server()]) {
        return;
    }
    let redis = start_redis_server();
    let raftis = start_raftis();
    let mut cmd = Command::new("bash");
    cmd.arg(clients_dir().join("cli_compare.sh")).arg(&redis.addr).arg(&raftis.addr);
    let run = run_script(cmd, CLI_TIMEOUT);
    assert_success("redis-cli comparison (A = redis-server, B = raftis)", &run, &[&raftis, &redis]);
}

#[test]
fn redis_py_client() {
    let _turn = one_at_a_time();
    if !require("redis_py_client", &[have_redis_py()]) {
        return;
    }
    let raftis = start_raftis();
    let mut cmd = Command::new(python());
    cmd.arg(clients_dir().join("redis_py_check.py")).args(["--port", &raftis.port.to_string()]);
    let run = run_script(cmd, REDIS_PY_TIMEOUT);
    assert_success("redis-py check", &run, &[&raftis]);
    assert!(
        run.output.lines().any(|l| l.starts_with("redis-py: ") && l.ends_with(" passed, 0 failed")),
        "redis-py check printed no `redis-py: N passed, 0 failed` line:\n{}",
        run.output
    );
}

#[test]
fn redis_benchmark_runs_cleanly() {
    let _turn = one_at_a_time();
    if !require("redis_benchmark_runs_cleanly", &[have_redis_benchmark()]) {
        return;
    }
    let raftis = start_raftis();
    let mut cmd = Command::new("bash");
    cmd.arg(clients_dir().join("benchmark_check.sh")).arg(raftis.port.to_string());
    // Each of the script's two redis-benchmark runs gets at most this long (seconds).
    cmd.env("RUN_TIMEOUT", "450");
    let run = run_script(cmd, BENCHMARK_TIMEOUT);
    assert_success("redis-benchmark check", &run, &[&raftis]);
}
