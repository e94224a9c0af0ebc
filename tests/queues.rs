//! Lists as queues and pub/sub on real three-node clusters (issue 12's acceptance):
//!
//! - `subscribers_on_every_node_see_one_order`: a subscriber on each node, publishers on each
//!   node (followers relay PUBLISH to the leader); every subscriber receives every message, all
//!   in the same order, each publisher's in its own order.
//! - `queue_survives_leader_kills`: `tests/clients/queue_check.py` runs 8 producers (LPUSH) and
//!   8 consumers (BLMOVE into a processing list, and BRPOP) through redis-py's RedisCluster while
//!   the test kills the leader twice; the script then checks that every acknowledged push was
//!   popped exactly once or is still in a list, and that nothing was popped twice.
//! - `xread_block_wakes_every_reader`: streams as event logs: several XREAD BLOCK readers
//!   (on the leader, through a follower's proxy, after READONLY on a follower, and one waiting for
//!   a later ID) are each woken by the XADD that gives them something; `$` means "after what was
//!   there"; BLOCK's timeout and CLIENT UNBLOCK answer a nil array.
//!
//! - `a_pop_cut_off_by_the_leaders_death`: the leader dies with a pop committed but not yet
//!   applied (a long script runs before it in the same entry), so its client never gets an answer: with
//!   `--pop-delivery at-most-once` (the default) the element is gone; with `at-least-once` the
//!   new leader puts it back where it was, and nothing else (an earlier, answered pop stays
//!   popped).
//!
//! The Python test needs python3 with the `redis` package: without it it prints `SKIPPED` (and
//! fails when `CI=true`).

mod common;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::{poll, Client, Cluster, Options, Resp};
use common::{require, runs_ok};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn subscribers_on_every_node_see_one_order() {
    const PER_PUBLISHER: usize = 150;
    let c = Cluster::start(3);
    c.leader(LEADER_TIMEOUT);
    let mut subscribers: Vec<Client> = c
        .ids()
        .into_iter()
        .map(|id| {
            let mut s = Client::connect(&c.addr(id), Duration::from_secs(10)).expect("connect");
            let confirm = s.must(&["SUBSCRIBE", "events"]);
            assert_eq!(confirm, Resp::Array(vec![b("subscribe"), b("events"), Resp::Int(1)]), "node {id}");
            s
        })
        .collect();
    // The follower's PUBSUB reports its own subscriber: subscriptions are per node.
    for id in c.ids() {
        let r = c.client(id).must(&["PUBSUB", "NUMSUB", "events"]);
        assert_eq!(r, Resp::Array(vec![b("events"), Resp::Int(1)]), "node {id}");
    }
    // One publisher per node, all at once; the followers relay to the leader.
    let publishers: Vec<_> = c
        .ids()
        .into_iter()
        .map(|id| {
            let addr = c.addr(id);
            thread::spawn(move || {
                let mut p = Client::connect(&addr, Duration::from_secs(10)).expect("connect");
                for i in 0..PER_PUBLISHER {
                    let r = p.must(&["PUBLISH", "events", &format!("{id}:{i}")]);
                    // Each node counts its own receivers: its one subscriber.
                    assert_eq!(r, Resp::Int(1), "PUBLISH through node {id}");
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().expect("publisher");
    }
    let total = PER_PUBLISHER * 3;
    let mut sequences = Vec::new();
    for (s, id) in subscribers.iter_mut().zip(c.ids()) {
        let mut got = Vec::with_capacity(total);
        for _ in 0..total {
            match s.read_reply() {
                Ok(Resp::Array(items)) if items.len() == 3 && items[0] == b("message") => {
                    got.push(items[2].text().expect("payload"))
                }
                other => panic!("node {id}: expected a message, got {other:?} after {} messages", got.len()),
            }
        }
        sequences.push(got);
    }
    assert_eq!(sequences[0], sequences[1], "nodes 1 and 2 delivered different orders");
    assert_eq!(sequences[0], sequences[2], "nodes 1 and 3 delivered different orders");
    // Every message exactly once, each publisher's in the order it published.
    let mut next: BTreeMap<String, usize> = BTreeMap::new();
    for m in &sequences[0] {
        let (node, i) = m.split_once(':').expect("node:i");
        let expected = next.entry(node.to_string()).or_insert(0);
        assert_eq!(i.parse::<usize>().unwrap(), *expected, "publisher {node} out of order or duplicated");
        *expected += 1;
    }
    assert!(next.values().all(|&n| n == PER_PUBLISHER), "{next:?}");
    c.assert_no_panics();
}

fn b(s: &str) -> Resp {
    Resp::Bulk(s.as_bytes().to_vec())
}

#[test]
fn queue_survives_leader_kills() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    if !require(
        "queue_survives_leader_kills",
        &[("python3 with the redis package", runs_ok(&python, &["-c", "import redis.cluster"]))],
    ) {
        return;
    }
    let mut c = Cluster::start(3);
    c.leader(LEADER_TIMEOUT);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/queue_check.py");
    let seeds = c.addrs().join(",");
    let mut child = Command::new(&python)
        .arg(&script)
        .args([&seeds, "12"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run queue_check.py");
    let started = Instant::now();
    // Two leader kills while producers and consumers run: at 3 s and at 7 s; each killed node
    // comes back 1.5 s later.
    for at in [3, 7] {
        while started.elapsed() < Duration::from_secs(at) {
            thread::sleep(Duration::from_millis(50));
        }
        let leader = c.leader(LEADER_TIMEOUT);
        c.kill9(leader);
        thread::sleep(Duration::from_millis(1500));
        c.restart(leader);
    }
    let status = poll(Duration::from_secs(180), || child.try_wait().ok().flatten());
    let mut out = String::new();
    let mut err = String::new();
    if status.is_none() {
        let _ = child.kill();
    }
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.is_some(), "queue_check.py did not finish within 180 s\n{out}\n{err}");
    assert!(status.is_some_and(|s| s.success()), "queue_check.py failed\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("QUEUE OK"), "{out}\n{err}");
    eprintln!("{out}");
    c.wait_digests_equal(Duration::from_secs(30));
    c.assert_no_panics();
}

#[test]
fn xread_block_wakes_every_reader() {
    let c = Cluster::start(3);
    let leader = c.leader(LEADER_TIMEOUT);
    let followers: Vec<u64> = c.ids().into_iter().filter(|&i| i != leader).collect();
    assert_eq!(c.client(leader).must(&["XADD", "events", "1-1", "n", "old"]), b("1-1"));
    // The READONLY reader's `$` is its follower's last ID: let every node apply the first entry
    // (seen once in CI: a lagging follower pinned `$` before 1-1 and answered both entries).
    c.wait_digests_equal(Duration::from_secs(10));
    let reader = |id: u64, readonly: bool, from: &'static str| {
        let addr = c.addr(id);
        thread::spawn(move || {
            let mut cl = Client::connect(&addr, Duration::from_secs(30)).unwrap();
            if readonly {
                cl.must(&["READONLY"]);
            }
            cl.must(&["XREAD", "BLOCK", "20000", "STREAMS", "events", from])
        })
    };
    let on_leader = reader(leader, false, "$");
    let proxied = reader(followers[0], false, "$");
    let on_follower = reader(followers[1], true, "$");
    let later = reader(leader, false, "5-0");
    // The proxied reader waits on the leader, the READONLY one on its follower.
    await_blocked(&c, leader, 3);
    await_blocked(&c, followers[1], 1);
    for r in [&on_leader, &proxied, &on_follower, &later] {
        assert!(!r.is_finished(), "a reader answered before any XADD\n{}", c.describe());
    }
    let entry = |id: &str, v: &str| {
        Resp::Array(vec![b("events"), Resp::Array(vec![Resp::Array(vec![b(id), Resp::Array(vec![b("n"), b(v)])])])])
    };
    // One XADD wakes every reader waiting after `$` (the entry that was there is not news).
    assert_eq!(c.client(followers[1]).must(&["XADD", "events", "2-1", "n", "new"]), b("2-1"));
    for (name, r) in [("leader", on_leader), ("proxied", proxied), ("readonly follower", on_follower)] {
        assert_eq!(r.join().unwrap(), Resp::Array(vec![entry("2-1", "new")]), "{name}");
    }
    // The reader after 5-0 was woken too, found nothing new for it, and waits on.
    thread::sleep(Duration::from_millis(300));
    assert!(!later.is_finished(), "the reader after 5-0 answered early");
    assert_eq!(c.client(leader).must(&["XADD", "events", "6-0", "n", "later"]), b("6-0"));
    assert_eq!(later.join().unwrap(), Resp::Array(vec![entry("6-0", "later")]));
    // Entries already there are answered at once; BLOCK's timeout and CLIENT UNBLOCK answer nil.
    let mut cl = c.client(leader);
    let got = cl.must(&["XREAD", "BLOCK", "0", "COUNT", "1", "STREAMS", "events", "0"]);
    assert_eq!(got, Resp::Array(vec![entry("1-1", "old")]));
    let started = Instant::now();
    assert_eq!(cl.must(&["XREAD", "BLOCK", "300", "STREAMS", "events", "$"]), Resp::Nil);
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    let mut waiting = c.client(leader);
    let Resp::Int(waiting_id) = waiting.must(&["CLIENT", "ID"]) else { panic!("CLIENT ID") };
    let blocked = thread::spawn(move || waiting.must(&["XREAD", "BLOCK", "0", "STREAMS", "events", "$"]));
    await_blocked(&c, leader, 1);
    assert_eq!(cl.must(&["CLIENT", "UNBLOCK", &waiting_id.to_string()]), Resp::Int(1));
    assert_eq!(blocked.join().unwrap(), Resp::Nil);
    c.wait_digests_equal(Duration::from_secs(30));
    c.assert_no_panics();
}

#[test]
fn a_pop_cut_off_by_the_leaders_death() {
    for (mode, left) in [("at-least-once", vec![b("a"), b("b")]), ("at-most-once", vec![b("a")])] {
        let (list, log) = cut_pop(mode);
        assert_eq!(list, Resp::Array(left), "--pop-delivery {mode}: the list after the failover");
        assert_eq!(log.contains("put back list pops"), mode == "at-least-once", "--pop-delivery {mode}:\n{log}");
    }
}

/// Kills the leader while a pop is committed but unanswered (the leader is still applying a
/// long script in the same entry); returns the list as the new leader has it, and the new
/// leader's log.
fn cut_pop(mode: &str) -> (Resp, String) {
    // 2G instructions: a few seconds, so that the followers are still applying the entry when
    // one of them stands for election.
    let extra = ["--pop-delivery", mode, "--lua-max-instructions", "2000000000"].map(String::from).to_vec();
    let mut c = Cluster::start_with(Options { commit_timeout_ms: 10_000, extra, ..Options::default() });
    let leader = c.leader(LEADER_TIMEOUT);
    let mut cl = c.client(leader);
    assert_eq!(cl.must(&["RPUSH", "q", "a", "b", "c"]), Resp::Int(3));
    // Answered: it must stay popped whatever the mode.
    assert_eq!(cl.must(&["RPOP", "q"]), b("c"));
    c.wait_digests_equal(Duration::from_secs(10));
    // One pipeline, so one log entry: a script that runs for its whole instruction budget
    // (seconds, on every node), then the pop. The leader dies while applying the script,
    // after the followers stored the entry: the pop is committed, and never answered.
    let before = c.raft_field(leader, "raft_last_log_index").expect("INFO raft of the leader");
    let mut popper = c.client(leader);
    popper.send_all(&[&["EVAL", "while true do end", "0"], &["RPOP", "q"]]).unwrap();
    // Killed once the followers heard the leader commit the entry (it is still applying it).
    let followers: Vec<u64> = c.ids().into_iter().filter(|&i| i != leader).collect();
    let committed = poll(Duration::from_secs(5), || {
        followers.iter().all(|&f| c.raft_field(f, "raft_leader_commit_index").is_some_and(|i| i > before)).then_some(())
    });
    assert!(committed.is_some(), "--pop-delivery {mode}: the entry was not committed:\n{}", c.describe());
    c.kill9(leader);
    let answer = popper.read_reply();
    assert!(answer.is_err(), "--pop-delivery {mode}: the pop was answered before the leader died: {answer:?}");
    let new = c.leader_among(&followers, Duration::from_secs(20));
    let mut cl = c.client(new);
    // A write through the new leader, then the list: everything before it is applied.
    let written = poll(Duration::from_secs(30), || match cl.call(&["SET", "after", "1"]) {
        Ok(Resp::Simple(ok)) if ok == "OK" => Some(()),
        _ => None,
    });
    assert!(written.is_some(), "--pop-delivery {mode}: no write through node {new}:\n{}", c.describe());
    // The put-back is its own entry after the new leader's first: wait for it a little.
    let list = poll(Duration::from_secs(5), || {
        let l = cl.must(&["LRANGE", "q", "0", "-1"]);
        matches!(&l, Resp::Array(items) if items.len() == 2).then_some(l)
    })
    .unwrap_or_else(|| cl.must(&["LRANGE", "q", "0", "-1"]));
    let log = c.log(new);
    c.restart(leader);
    c.wait_digests_equal(Duration::from_secs(30));
    c.assert_no_panics();
    (list, log)
}

/// Waits until node `id` counts `n` blocked clients (INFO clients).
fn await_blocked(c: &Cluster, id: u64, n: u64) {
    let count = || {
        let Resp::Bulk(info) = c.client(id).must(&["INFO", "clients"]) else { return None };
        let info = String::from_utf8_lossy(&info).into_owned();
        info.lines().find_map(|l| l.strip_prefix("blocked_clients:")?.trim().parse::<u64>().ok())
    };
    let reached = poll(Duration::from_secs(10), || (count() == Some(n)).then_some(()));
    assert!(reached.is_some(), "node {id}: blocked_clients stayed {:?}, not {n}", count());
}
