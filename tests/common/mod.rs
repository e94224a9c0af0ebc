//! Shared by the integration tests: start the real `raftis` binary on a free port and talk to it
//! with raw RESP over real sockets.
#![allow(dead_code)]

pub mod cluster;
pub mod proxy;
pub mod registers;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `program args...` runs and exits 0 (tool detection).
pub fn runs_ok(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Checks that the tools a test needs are installed. Returns false when the test should be
/// skipped (with a loud message); panics instead when running in CI (`CI=true`), where every
/// tool must be present.
#[must_use]
pub fn require(test: &str, tools: &[(&str, bool)]) -> bool {
    let missing: Vec<&str> = tools.iter().filter(|(_, ok)| !ok).map(|(what, _)| *what).collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!("{test} needs {} (not found)", missing.join(", "));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{reason}. CI=true, so this is a failure rather than a skip: install redis-server and \
             redis-tools (Debian) and the Python package `redis` (pip install redis), as .ci/run does."
        );
    }
    // Straight to the terminal: cargo test hides the output of tests that pass.
    let line = format!("\n***** SKIPPED: {reason} *****\n");
    if let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty") {
        let _ = std::io::Write::write_all(&mut tty, line.as_bytes());
    }
    eprintln!("{line}");
    false
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().unwrap().port()
}

/// Whether a connection to `addr` reaches a listener (not itself: polling a port in the ephemeral
/// range that nobody listens on yet sometimes "connects" through TCP simultaneous open, when the
/// kernel picks that same port as the source) that answers PING with +PONG.
pub fn answers_ping(addr: &std::net::SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect_timeout(addr, Duration::from_millis(200)) else { return false };
    if s.local_addr().ok() == s.peer_addr().ok() {
        return false;
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// Waits until a server answers PING on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if answers_ping(&addr) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A raftis server process, killed when dropped. Its data directory and its log (kept outside
/// the data directory, where raftis wants only its own files) live in one temp dir.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts `raftis server` on a free port with extra flags, and waits until it accepts.
    pub fn start(extra: &[&str]) -> Server {
        // `free_port` can race with another test taking the same port: a server that exited
        // (port in use) is started again on another port.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("server.log")).expect("create server.log");
            let child = Command::new(env!("CARGO_BIN_EXE_raftis"))
                .args(["server", "--bind", "127.0.0.1", "--port", &port.to_string(), "--dir"])
                .arg(dir.path().join("data"))
                .args(extra)
                // No HTTP listener unless the test asks for one: the default port (client port
                // + 1000) could be another test's.
                .args(if extra.contains(&"--http-port") { &[][..] } else { &["--http-port", "0"][..] })
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .expect("spawn raftis");
            let mut server = Server { child, port, dir };
            // "starting node" is logged once this process holds the port (the port answering
            // could be whoever took it first).
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                if server.log().contains("starting node") && wait_for_port(port, Duration::from_secs(10)) {
                    return server;
                }
                assert!(Instant::now() < deadline, "raftis did not start on {port}:\n{}", server.log());
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(server.log().contains("in use"), "raftis exited at start on {port}:\n{}", server.log());
        }
        panic!("raftis did not start: every port tried was in use");
    }

    /// A new raw connection.
    pub fn connect(&self) -> Conn {
        Conn::new(self.port)
    }

    /// The data directory.
    pub fn dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The server's output so far, to explain a failure.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw client connection.
pub struct Conn {
    pub stream: TcpStream,
}

impl Conn {
    pub fn new(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Conn { stream }
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a command as a RESP array of bulk strings.
    pub fn send(&mut self, args: &[&[u8]]) {
        self.send_raw(&encode(args));
    }

    /// Sends a command and reads exactly `expected.len()` bytes back, asserting they match.
    pub fn expect(&mut self, args: &[&[u8]], expected: &[u8]) {
        self.send(args);
        let got = self.read_exact_len(expected.len());
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expected), "reply to {args:?}");
    }

    /// Reads exactly `n` bytes.
    pub fn read_exact_len(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.stream.read_exact(&mut buf).expect("read reply");
        buf
    }

    /// Reads until the server closes the connection; returns what arrived.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.stream.read_to_end(&mut out);
        out
    }
}

/// A command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Runs a Python check script (at most 240 s); once its stdout prints the line `trigger`, runs
/// `at_trigger` (a leader kill, say). Returns whether it succeeded, and its stdout and stderr.
pub fn run_check(
    python: &str,
    script: &std::path::Path,
    args: &[&str],
    trigger: &str,
    at_trigger: impl FnOnce(),
) -> (bool, String, String) {
    use std::io::BufRead as _;
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the check script");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        err
    });
    let mut out = String::new();
    let mut at_trigger = Some(at_trigger);
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if line == trigger {
                    if let Some(f) = at_trigger.take() {
                        f();
                    }
                }
                out.push_str(&line);
                out.push('\n');
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break child.wait().ok(),
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
    };
    let err = err_reader.join().unwrap_or_default();
    (status.is_some_and(|s| s.success()), out, err)
}
