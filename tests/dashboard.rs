//! The dashboard in a real browser: headless Chromium (Debian's `chromium`) loads `/` from a
//! follower of a 3-node cluster, the leader is killed, and the page's DOM must show the new
//! leader and term within 3 s. The test's screenshot is `docs/dashboard.png`'s source.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, Options};
use common::{require, runs_ok};

/// SETs for `how_long`.
fn write_for(cl: &mut common::cluster::Client, how_long: Duration) {
    let started = Instant::now();
    let mut i = 0u64;
    while started.elapsed() < how_long {
        assert!(cl.must(&["SET", &format!("load:{}", i % 1000), "v"]).is_ok());
        i += 1;
    }
}

#[test]
fn the_dashboard_shows_a_new_leader_within_three_seconds() {
    let tools = [
        ("chromium", runs_ok("chromium", &["--version"])),
        ("python3 websockets", runs_ok("python3", &["-c", "import websockets"])),
    ];
    if !require("the_dashboard_shows_a_new_leader_within_three_seconds", &tools) {
        return;
    }
    let mut c = Cluster::start_with(Options { nodes: 3, http: true, ..Options::default() });
    let leader = c.leader(Duration::from_secs(10));
    let mut cl = c.client(leader);
    for i in 0..100 {
        assert!(cl.must(&["SET", &format!("k{i}"), "v"]).is_ok());
    }
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    let node = &c.nodes[(follower - 1) as usize];
    let url = format!("http://{}:{}/", node.ip, node.http_port.unwrap());
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dashboard/browse.py");
    let mut browser = Command::new("python3")
        .args([script, &url, shot.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let ready = lines.next().expect("a line from the browser").unwrap();
    let shown: Vec<&str> = ready.split(' ').collect();
    assert_eq!(shown[0], "READY", "{ready}");
    assert_eq!(shown[1], leader.to_string(), "the page shows the leader: {ready}");
    let term: u64 = shown[2].parse().unwrap();
    // Some traffic for the sparklines.
    write_for(&mut cl, Duration::from_secs(2));
    c.kill9(leader);
    let killed = Instant::now();
    writeln!(browser.stdin.as_mut().unwrap(), "killed").unwrap();
    let changed = lines.next().expect("a line from the browser").unwrap();
    let seen_after = killed.elapsed();
    let shown: Vec<&str> = changed.split(' ').collect();
    assert_eq!(shown[0], "CHANGED", "{changed}");
    let new_leader: u64 = shown[1].parse().unwrap();
    let new_term: u64 = shown[2].parse().unwrap();
    let took = Duration::from_millis(shown[3].parse().unwrap());
    eprintln!("the page showed leader {new_leader} in term {new_term} {took:?} after the kill");
    assert_ne!(new_leader, leader);
    assert!(new_term > term);
    assert_eq!(new_leader, c.leader(Duration::from_secs(10)), "the page shows the real leader");
    assert!(took < Duration::from_secs(3), "the page took {took:?} to show the new leader");
    assert!(seen_after >= took);
    // The old leader comes back and catches up while writes go on; then the picture.
    c.restart(leader);
    let mut cl = c.client(new_leader);
    write_for(&mut cl, Duration::from_secs(3));
    writeln!(browser.stdin.as_mut().unwrap(), "shoot").unwrap();
    assert_eq!(lines.next().expect("a line from the browser").unwrap(), "SHOT");
    assert!(browser.wait().unwrap().success());
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot");
    c.assert_no_panics();
}
