//! Upgrades: a data directory written by an older release opens and serves its data, and one
//! written by a newer release is refused with a message, never misread.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{wait_for_port, Conn};

/// The fixture's identity ties it to this port (bus port + 10000); below Linux's ephemeral
/// range, so no other test's `free_port` takes it.
const FIXTURE_PORT: u16 = 7391;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Both tests use the fixture's port: one at a time.
static PORT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn fixture_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0-data"), &data);
    (tmp, data)
}

/// The server process, killed if the test fails before stopping it.
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn raftis(data: &Path, log: &Path) -> Node {
    let log = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_raftis"))
        .args(["server", "--bind", "127.0.0.1", "--port", &FIXTURE_PORT.to_string(), "--dir"])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map(Node)
        .unwrap()
}

/// Sends a command and reads one reply line (and the bulk line after a `$n` header).
fn ask(conn: &mut Conn, args: &[&[u8]]) -> String {
    use std::io::BufRead;
    conn.send(args);
    let mut reader = std::io::BufReader::new(&conn.stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    if line.starts_with('$') && line != "$-1\r\n" {
        let mut body = String::new();
        reader.read_line(&mut body).unwrap();
        line.push_str(&body);
    }
    line
}

fn check_fixture_data(conn: &mut Conn) {
    // A single node elects itself shortly after starting: wait for it to serve.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ask(conn, &[b"DBSIZE"]) != ":26\r\n" {
        assert!(Instant::now() < deadline, "the fixture's 26 keys never showed up");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ask(conn, &[b"DEBUG", b"DIGEST"]), "+2a959d2ad9ee33a552e8577f6a9e280e8b9e65e1\r\n");
    assert_eq!(ask(conn, &[b"GET", b"counter"]), "$1\r\n8\r\n");
    assert_eq!(ask(conn, &[b"GET", b"key:5"]), "$16\r\nvalue-5-appended\r\n");
    assert_eq!(ask(conn, &[b"GET", b"float"]), "$3\r\n2.5\r\n");
    assert_eq!(ask(conn, &[b"GET", b"tx"]), "$1\r\n1\r\n");
    assert_eq!(ask(conn, &[b"EXISTS", b"key:3", b"gone"]), ":0\r\n");
    assert_eq!(ask(conn, &[b"PEXPIRETIME", b"forever"]), ":4102444800000\r\n");
    assert_eq!(ask(conn, &[b"PEXPIRETIME", b"key:7"]), ":4102444800000\r\n");
    assert_eq!(ask(conn, &[b"EXPIRETIME", b"key:6"]), ":4796286627\r\n");
    assert_eq!(ask(conn, &[b"TYPE", b"binary"]), "+string\r\n");
}

#[test]
fn a_format_0_data_directory_opens_and_serves_its_data() {
    let _port = PORT.lock().unwrap_or_else(|e| e.into_inner());
    let (tmp, data) = fixture_copy();
    let log = tmp.path().join("server.log");
    for round in 0..2 {
        // Round 0 upgrades the log in place; round 1 opens the upgraded directory.
        let mut child = raftis(&data, &log);
        assert!(wait_for_port(FIXTURE_PORT, Duration::from_secs(10)), "{}", std::fs::read_to_string(&log).unwrap());
        let mut conn = Conn::new(FIXTURE_PORT);
        check_fixture_data(&mut conn);
        if round == 0 {
            assert!(std::fs::read_to_string(&log).unwrap().contains("upgraded the Raft log from format 0"));
            // New writes land in the new format next to the upgraded entries.
            assert_eq!(ask(&mut conn, &[b"SET", b"h", b"v"]), "+OK\r\n");
            assert_eq!(ask(&mut conn, &[b"DEL", b"h"]), ":1\r\n");
        }
        // A clean shutdown (SIGTERM), as an operator stops a node before upgrading it.
        Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
        child.0.wait().unwrap();
    }
}

#[test]
fn a_snapshot_of_a_newer_format_is_refused_with_a_message() {
    let _port = PORT.lock().unwrap_or_else(|e| e.into_inner());
    let (tmp, data) = fixture_copy();
    // A format-99 snapshot: the magic, then version 99.
    let mut bytes = b"RAFTISSN".to_vec();
    bytes.extend_from_slice(&99u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 64]);
    std::fs::write(data.join("snapshot.bin"), bytes).unwrap();
    let log = tmp.path().join("server.log");
    let mut child = raftis(&data, &log);
    let status = child.0.wait().unwrap();
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{out}");
    assert!(out.contains("snapshot has format 99, newer than this release of raftis reads"), "{out}");
}
