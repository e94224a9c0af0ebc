//! Replays the cases recorded from a real redis-server (`conformance/*.case`) against a raftis server
//! process, with the `raftis-conformance` binary, and fails on any difference.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long the server may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server; killed when dropped, so a failing assertion never leaves it behind.
struct Server {
    child: Child,
    /// The server's data directory (and its log), removed after the server is killed.
    dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server's output so far, to explain a failure.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

/// A port that was free a moment ago: bind port 0, note the port, release it.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// The command that starts the server under test on `port` with its data in `dir`.
fn server_command(port: u16, dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_raftis"));
    cmd.args(["server", "--bind", "127.0.0.1", "--port", &port.to_string(), "--dir"]).arg(dir);
    cmd
}

/// Starts the server and waits until its port accepts connections.
fn start_server() -> (Server, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let log = File::create(dir.path().join("server.log")).expect("create server.log");
    let child = server_command(port, dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log)
        .spawn()
        .expect("spawn the server");
    let mut server = Server { child, dir };
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if TcpStream::connect(&addr).is_ok() {
            return (server, addr);
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the server exited with {status} before listening:\n{}", server.log());
        }
        if Instant::now() > deadline {
            panic!("the server did not listen on {addr} within {STARTUP_TIMEOUT:?}:\n{}", server.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn recorded_redis_cases_pass() {
    let (server, addr) = start_server();
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    let output = Command::new(env!("CARGO_BIN_EXE_raftis-conformance"))
        .args(["check", "--addr", &addr])
        .arg(&cases)
        .output()
        .expect("run raftis-conformance");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        eprintln!("--- server log ---\n{}", server.log());
    }
    assert!(output.status.success(), "raftis-conformance check failed ({})", output.status);
}
