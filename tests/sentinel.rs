//! Sentinel discovery on real three-node clusters (issue 14):
//!
//! - `every_node_answers_sentinel_for_the_leader_and_announces_a_failover`: SENTINEL
//!   GET-MASTER-ADDR-BY-NAME, MASTERS, REPLICAS, SENTINELS, CKQUORUM, MYID on every node; ROLE
//!   and INFO replication look like a primary's on the leader and a replica's on followers; kill
//!   the leader: the survivors name the new one as soon as it is elected, and a client subscribed
//!   to `+switch-master` on a survivor hears the switch.
//! - `redis_py_sentinel_writes_across_a_leader_kill`: `tests/clients/sentinel_check.py`, 10,000
//!   SETs through redis-py's `Sentinel.master_for` while the test kills the leader: only
//!   connection errors, no wrong answer, no acknowledged write lost.
//!
//! The Python test needs python3 with the `redis` package: without it it prints `SKIPPED` (and
//! fails when `CI=true`).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::{poll, Client, Cluster, Resp};
use common::{require, run_check, runs_ok};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);

fn text(r: &Resp) -> String {
    match r {
        Resp::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Resp::Simple(s) | Resp::Error(s) => s.clone(),
        Resp::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// A SENTINEL instance reply (a flat array of field/value pairs) as a map.
fn fields(r: &Resp) -> HashMap<String, String> {
    let Resp::Array(items) = r else { panic!("not an instance: {r:?}") };
    items.chunks(2).map(|kv| (text(&kv[0]), text(&kv[1]))).collect()
}

fn master_addr(c: &mut Client) -> Option<String> {
    match c.call(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "raftis"]).ok()? {
        Resp::Array(v) if v.len() == 2 => Some(format!("{}:{}", text(&v[0]), text(&v[1]))),
        _ => None,
    }
}

#[test]
fn every_node_answers_sentinel_for_the_leader_and_announces_a_failover() {
    let mut c = Cluster::start(3);
    let leader = c.leader(LEADER_TIMEOUT);
    let leader_addr = c.addr(leader);
    for id in c.ids() {
        let mut cl = c.client(id);
        assert_eq!(master_addr(&mut cl).as_deref(), Some(leader_addr.as_str()), "node {id}");
        let Resp::Array(masters) = cl.must(&["SENTINEL", "MASTERS"]) else { panic!("MASTERS") };
        assert_eq!(masters.len(), 1);
        let m = fields(&masters[0]);
        assert_eq!(m["name"], "raftis");
        assert_eq!(format!("{}:{}", m["ip"], m["port"]), leader_addr);
        assert_eq!(m["flags"], "master", "node {id}");
        assert_eq!(
            (m["num-slaves"].as_str(), m["num-other-sentinels"].as_str(), m["quorum"].as_str()),
            ("2", "2", "2")
        );
        assert_eq!(fields(&cl.must(&["SENTINEL", "MASTER", "raftis"]))["runid"], m["runid"]);
        let Resp::Array(replicas) = cl.must(&["SENTINEL", "REPLICAS", "raftis"]) else { panic!("REPLICAS") };
        let mut replica_addrs: Vec<String> =
            replicas.iter().map(fields).map(|r| format!("{}:{}", r["ip"], r["port"])).collect();
        replica_addrs.sort();
        let mut expected: Vec<String> = c.ids().into_iter().filter(|&i| i != leader).map(|i| c.addr(i)).collect();
        expected.sort();
        assert_eq!(replica_addrs, expected, "node {id}");
        for r in &replicas {
            let r = fields(r);
            assert_eq!((r["flags"].as_str(), r["master-link-status"].as_str()), ("slave", "ok"));
            assert_eq!(format!("{}:{}", r["master-host"], r["master-port"]), leader_addr);
        }
        let Resp::Array(sentinels) = cl.must(&["SENTINEL", "SENTINELS", "raftis"]) else { panic!("SENTINELS") };
        assert_eq!(sentinels.len(), 2);
        assert!(sentinels.iter().map(fields).all(|s| s["flags"].contains("sentinel")));
        let Resp::Bulk(myid) = cl.must(&["SENTINEL", "MYID"]) else { panic!("MYID") };
        assert_eq!(myid.len(), 40);
        assert_eq!(
            cl.must(&["SENTINEL", "CKQUORUM", "raftis"]),
            Resp::Simple("OK 3 usable Sentinels. Quorum and failover authorization can be reached".into())
        );
        assert_eq!(cl.must(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "other"]), Resp::Nil);
        assert_eq!(cl.must(&["SENTINEL", "MASTER", "other"]), Resp::Error("ERR No such master with that name".into()));
        assert!(
            text(&cl.must(&["SENTINEL", "FAILOVER", "raftis"])).starts_with("ERR SENTINEL FAILOVER is not supported")
        );
        // The role check clients make after discovery.
        let Resp::Array(role) = cl.must(&["ROLE"]) else { panic!("ROLE") };
        let info = text(&cl.must(&["INFO", "replication"]));
        if id == leader {
            assert_eq!(role[0], Resp::Bulk(b"master".to_vec()));
            assert!(info.contains("role:master\r\nconnected_slaves:2\r\n"), "{info}");
        } else {
            assert_eq!(role[0], Resp::Bulk(b"slave".to_vec()));
            assert!(info.contains(&format!("role:slave\r\nmaster_host:{}\r\n", leader_addr.split(':').next().unwrap())));
            assert!(info.contains("master_link_status:up\r\n"), "{info}");
        }
    }

    // A client subscribed to +switch-master on a follower hears the failover.
    let watcher = c.ids().into_iter().find(|&i| i != leader).unwrap();
    let mut sub = Client::connect(&c.addr(watcher), Duration::from_secs(30)).unwrap();
    sub.must(&["SUBSCRIBE", "+switch-master"]);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        while let Ok(reply) = sub.read_reply() {
            if tx.send(reply).is_err() {
                return;
            }
        }
    });

    c.kill9(leader);
    let survivors: Vec<u64> = c.ids().into_iter().filter(|&i| i != leader).collect();
    let new_leader = c.leader_among(&survivors, LEADER_TIMEOUT);
    let elected = Instant::now();
    let new_addr = c.addr(new_leader);
    for &id in &survivors {
        let mut cl = c.client(id);
        let named = poll(Duration::from_secs(5), || (master_addr(&mut cl)? == new_addr).then_some(()));
        assert!(named.is_some(), "node {id} does not name the new leader {new_addr}");
    }
    let took = elected.elapsed();
    eprintln!("survivors named the new leader {took:?} after it was known elected");
    assert!(took < Duration::from_millis(300), "{took:?}: more than one election timeout");

    let message = rx.recv_timeout(Duration::from_secs(5)).expect("a +switch-master message");
    let expected = format!("raftis {} {}", leader_addr.replace(':', " "), new_addr.replace(':', " "));
    assert_eq!(
        message,
        Resp::Array(vec![
            Resp::Bulk(b"message".to_vec()),
            Resp::Bulk(b"+switch-master".to_vec()),
            Resp::Bulk(expected.into_bytes()),
        ])
    );
    c.assert_no_panics();
}

#[test]
fn redis_py_sentinel_writes_across_a_leader_kill() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    if !require(
        "redis_py_sentinel_writes_across_a_leader_kill",
        &[("python3 with the redis package", runs_ok(&python, &["-c", "import redis.sentinel"]))],
    ) {
        return;
    }
    let mut c = Cluster::start(3);
    let leader = c.leader(LEADER_TIMEOUT);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/sentinel_check.py");
    let addrs = c.addrs().join(",");
    // Kill the leader once 2,000 SETs are acknowledged (and restart it a little later).
    let cluster = &mut c;
    let (ok, out, err) = run_check(&python, &script, &[&addrs, "10000"], "progress 2000", move || {
        cluster.kill9(leader);
        thread::sleep(Duration::from_millis(1500));
        cluster.restart(leader);
    });
    assert!(out.contains("progress 2000"), "the workload never reached 2,000 SETs\n{out}\n{err}");
    assert!(ok, "sentinel_check.py failed\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("SENTINEL OK"), "{out}\n{err}");
    assert!(out.contains("masters used: ["), "{out}");
    eprintln!("{out}");
    c.wait_digests_equal(Duration::from_secs(30));
    c.assert_no_panics();
}
