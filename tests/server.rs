//! The server process under bad input and load: protocol garbage, huge headers, many
//! connections, pipelining, and clean shutdown on SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Server};

#[test]
fn pipelined_commands_are_answered_in_order() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend(common::encode(&[b"INCR", b"n"]));
        let _ = i;
    }
    batch.extend_from_slice(b"PING\r\n");
    c.send_raw(&batch);
    let mut expected = String::new();
    for i in 1..=1000 {
        expected.push_str(&format!(":{i}\r\n"));
    }
    expected.push_str("+PONG\r\n");
    let got = c.read_exact_len(expected.len());
    assert_eq!(String::from_utf8_lossy(&got), expected);
}

#[test]
fn garbage_closes_only_that_connection() {
    let server = Server::start(&[]);
    let mut good = server.connect();
    good.expect(&[b"SET", b"k", b"v"], b"+OK\r\n");
    let mut bad = server.connect();
    bad.send_raw(b"*1\r\n$x\r\n");
    assert_eq!(bad.read_to_close(), b"-ERR Protocol error: invalid bulk length\r\n");
    let mut bad = server.connect();
    bad.send_raw(b"*1\r\n+PING\r\n");
    assert_eq!(bad.read_to_close(), b"-ERR Protocol error: expected '$', got '+'\r\n");
    good.expect(&[b"GET", b"k"], b"$1\r\nv\r\n");
}

#[test]
fn huge_headers_are_refused_before_allocating() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.send_raw(b"*1\r\n$1073741824\r\n");
    assert_eq!(c.read_to_close(), b"-ERR Protocol error: invalid bulk length\r\n");
    let mut c = server.connect();
    c.send_raw(b"*4294967296\r\n");
    assert_eq!(c.read_to_close(), b"-ERR Protocol error: invalid multibulk length\r\n");
    // A header announcing two billion arguments allocates nothing until they arrive.
    let mut c = server.connect();
    c.send_raw(b"*2147483647\r\n$4\r\nPING\r\n");
    let mut other = server.connect();
    other.expect(&[b"PING"], b"+PONG\r\n");
    drop(c);
    let mut c = server.connect();
    c.send_raw(&vec![b'a'; 70 * 1024]);
    assert_eq!(c.read_to_close(), b"-ERR Protocol error: too big inline request\r\n");
    other.expect(&[b"PING"], b"+PONG\r\n");
}

#[test]
fn random_bytes_never_take_the_server_down() {
    let server = Server::start(&[]);
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200 {
        let mut c = server.connect();
        let len = (next() % 300) as usize;
        let alphabet = b"*$\r\n0123456789-+:\"' abcPINGSET\x00\xff";
        let bytes: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
        c.send_raw(&bytes);
        let _ = c.stream.shutdown(std::net::Shutdown::Write);
        let _ = c.read_to_close();
    }
    server.connect().expect(&[b"PING"], b"+PONG\r\n");
}

#[test]
fn client_limit() {
    let server = Server::start(&["--maxclients", "3"]);
    // The harness's readiness probe (a TCP connect) holds a client slot until the server sees
    // it closed: a connection refused meanwhile is tried again.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut kept: Vec<Conn> = Vec::new();
    while kept.len() < 3 {
        let mut c = server.connect();
        c.send(&[b"PING"]);
        let mut buf = [0u8; 7];
        if std::io::Read::read_exact(&mut c.stream, &mut buf).is_ok() && &buf == b"+PONG\r\n" {
            kept.push(c);
            continue;
        }
        assert!(Instant::now() < deadline, "only {} of 3 connections were accepted", kept.len());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut extra = server.connect();
    assert_eq!(extra.read_to_close(), b"-ERR max number of clients reached\r\n");
    drop(kept.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = server.connect();
        c.send(&[b"PING"]);
        let mut buf = [0u8; 7];
        if std::io::Read::read_exact(&mut c.stream, &mut buf).is_ok() && &buf == b"+PONG\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "a freed slot was never reused");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn thousands_of_connections() {
    let server = Server::start(&[]);
    let conns: Vec<Conn> = (0..2000).map(|_| server.connect()).collect();
    server.connect().expect(&[b"PING"], b"+PONG\r\n");
    drop(conns);
    server.connect().expect(&[b"PING"], b"+PONG\r\n");
}

#[test]
fn sigterm_stops_cleanly() {
    let mut server = Server::start(&[]);
    let mut c = server.connect();
    c.expect(&[b"PING"], b"+PONG\r\n");
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn expired_keys_are_deleted_by_the_expiry_cycle() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    c.expect(&[b"SET", b"k", b"v", b"PX", b"50"], b"+OK\r\n");
    c.expect(&[b"SET", b"keep", b"v"], b"+OK\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        c.send(&[b"INFO", b"keyspace"]);
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = vec![0u8; 4096];
        let n = std::io::Read::read(&mut c.stream, &mut buf).unwrap();
        let info = String::from_utf8_lossy(&buf[..n]).to_string();
        if info.contains("keys=1,expires=0") {
            break;
        }
        assert!(Instant::now() < deadline, "expired key never deleted: {info}");
    }
    c.expect(&[b"DBSIZE"], b":1\r\n");
}
