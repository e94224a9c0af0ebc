//! Membership changes on real clusters: nodes join with `--join` (learner, caught up by snapshot
//! and log, promoted by itself), are removed with `RAFT.NODE REMOVE` (the leader among them), and a
//! node whose data directory was lost is replaced, all under write load. Each test checks that no
//! acknowledged write was lost, that every member ends with the same digest, that a register
//! workload running through the change has a linearizable history, and what each node says of its
//! place (`INFO raft`'s `raft_membership`).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{poll, run_raftis, verify_writes, Client, Cluster, Options, Resp, Workload};
use common::registers::Registers;

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a joining node may take to become a voter (a snapshot and the log to catch up on).
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

fn options(nodes: u64, spare: u64) -> Options {
    // Small snapshots and no log kept behind them, so that a joining node is sent a snapshot.
    let extra = vec!["--log-keep-mb".into(), "0".into()];
    Options { nodes, spare, snapshot_every: Some(300), extra, ..Options::default() }
}

/// `INFO raft`'s field of node `id`, if it answers.
fn field(c: &Cluster, id: u64, name: &str) -> Option<String> {
    c.info_raft(id)?.get(name).cloned()
}

/// Waits until node `id` says its membership is `standing`.
fn wait_standing(c: &Cluster, id: u64, standing: &str, timeout: Duration) {
    poll(timeout, || (field(c, id, "raft_membership").as_deref() == Some(standing)).then_some(())).unwrap_or_else(
        || {
            panic!(
                "node {id} is not '{standing}' within {timeout:?} (it says {:?}):\n{}\n{}",
                field(c, id, "raft_membership"),
                c.describe(),
                c.log_tail(id, 30)
            )
        },
    );
}

/// RAFT.NODE LIST through node `via`: (id, role) of each member.
fn members(c: &Cluster, via: u64) -> Vec<(u64, String)> {
    let mut client = c.client(via);
    let reply = client.must(&["RAFT.NODE", "LIST"]);
    let Resp::Array(list) = reply else { panic!("RAFT.NODE LIST answered {reply}") };
    list.iter()
        .map(|m| {
            let Resp::Array(kv) = m else { panic!("member {m}") };
            let get = |k: &str| kv.chunks(2).find(|p| p[0].text().as_deref() == Some(k)).map(|p| p[1].clone());
            let id = match get("id") {
                Some(Resp::Int(n)) => n as u64,
                other => panic!("id {other:?}"),
            };
            (id, get("role").and_then(|r| r.text()).unwrap_or_default())
        })
        .collect()
}

/// Waits until RAFT.NODE LIST through `via` lists exactly `ids`, all voters (one the leader).
fn wait_voters(c: &Cluster, via: u64, ids: &[u64], timeout: Duration) {
    let want: BTreeSet<u64> = ids.iter().copied().collect();
    let mut last = Vec::new();
    let ok = poll(timeout, || {
        last = members(c, via);
        let got: BTreeSet<u64> = last.iter().map(|(id, _)| *id).collect();
        let all_vote = last.iter().all(|(_, r)| r == "voter" || r == "leader");
        let one_leader = last.iter().filter(|(_, r)| r == "leader").count() == 1;
        (got == want && all_vote && one_leader).then_some(())
    });
    assert!(ok.is_some(), "members through node {via} are {last:?}, not voters {ids:?}:\n{}", c.describe());
}

/// Sends RAFT.NODE to `via` until it is not told to try again; returns the reply.
fn raft_node(c: &Cluster, via: u64, args: &[&str]) -> Resp {
    let mut v = vec!["RAFT.NODE"];
    v.extend_from_slice(args);
    let mut last = None;
    poll(Duration::from_secs(15), || {
        let reply = Client::connect(&c.addr(via), Duration::from_secs(20)).ok()?.call(&v).ok()?;
        match reply.err() {
            Some(e) if e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN") => {
                last = Some(reply);
                None
            }
            _ => Some(reply),
        }
    })
    .unwrap_or_else(|| panic!("{v:?} via node {via} kept answering {last:?}"))
}

#[test]
fn grow_three_to_five_under_writes_then_shrink_back_removing_the_leader() {
    let mut c = Cluster::start_with(options(3, 2));
    let leader = c.leader(LEADER_TIMEOUT);
    let load = Workload::start(c.addrs(), 3, Duration::from_millis(2));
    let registers = Registers::start(c.addrs(), 3);
    assert!(load.wait_acked(1500, Duration::from_secs(30)), "writes did not get going:\n{}", c.describe());

    // Grow: two nodes join, one through a follower, one through the leader.
    let follower = c.ids().into_iter().find(|&i| i != leader).unwrap();
    c.join_via = follower;
    c.spawn(4);
    c.wait_up(4, Duration::from_secs(20));
    c.join_via = leader;
    c.spawn(5);
    c.wait_up(5, Duration::from_secs(20));
    let started = Instant::now();
    wait_standing(&c, 4, "voter", JOIN_TIMEOUT);
    wait_standing(&c, 5, "voter", JOIN_TIMEOUT);
    eprintln!("nodes 4 and 5 became voters {:?} after starting", started.elapsed());
    wait_voters(&c, 4, &[1, 2, 3, 4, 5], Duration::from_secs(10));
    for id in [4, 5] {
        let installed = c.raft_field(id, "raft_snapshots_installed").unwrap_or(0);
        assert!(installed >= 1, "node {id} caught up without a snapshot:\n{}", c.log_tail(id, 20));
    }
    let acked = load.acked();
    assert!(load.wait_acked(acked + 300, Duration::from_secs(20)), "writes stalled after growing:\n{}", c.describe());

    // Shrink: remove a follower, then the leader, with the writers running.
    let leader = c.leader_among(&[1, 2, 3, 4, 5], LEADER_TIMEOUT);
    let other = [1, 2, 3].into_iter().find(|&i| i != leader).unwrap();
    let via = [4, 5].into_iter().next().unwrap();
    assert_eq!(raft_node(&c, via, &["REMOVE", &other.to_string()]), Resp::Simple("OK".into()));
    let removing = Instant::now();
    assert_eq!(raft_node(&c, via, &["REMOVE", &leader.to_string()]), Resp::Simple("OK".into()));
    let remaining: Vec<u64> = [1, 2, 3, 4, 5].into_iter().filter(|&i| i != leader && i != other).collect();
    let new_leader = c.leader_among(&remaining, LEADER_TIMEOUT);
    eprintln!(
        "removed nodes {other} and {leader} (the leader); node {new_leader} leads {:?} later",
        removing.elapsed()
    );
    wait_voters(&c, remaining[0], &remaining, Duration::from_secs(10));
    for gone in [other, leader] {
        wait_standing(&c, gone, "removed", Duration::from_secs(15));
        assert!(c.log(gone).contains("removed from the cluster"), "node {gone} does not say it was removed");
    }
    writes_go_on_and_nothing_was_lost(&mut c, load, registers, &[other, leader], &remaining);
}

/// The end of a test whose nodes `removed` left under load: writes are acknowledged again, then
/// the workloads stop and are checked (a linearizable register history, no acknowledged write
/// lost), the removed nodes stop cleanly, and the members left end with equal digests.
fn writes_go_on_and_nothing_was_lost(
    c: &mut Cluster,
    load: Workload,
    registers: Registers,
    removed: &[u64],
    members: &[u64],
) {
    let acked = load.acked();
    assert!(
        load.wait_acked(acked + 300, Duration::from_secs(20)),
        "writes stalled after removing {removed:?}:\n{}",
        c.describe()
    );
    let logs = load.stop();
    let verdict = registers.stop_and_check();
    eprintln!("register history linearizable: {:?}", verdict.counts);
    for &gone in removed {
        assert!(c.stop(gone, Duration::from_secs(10)).success(), "removed node {gone} did not stop cleanly");
    }
    let summary = verify_writes(c, &logs);
    eprintln!("{summary:?}");
    c.wait_digests_equal_among(members, CONVERGE_TIMEOUT);
    c.assert_no_panics();
}

#[test]
fn a_node_whose_directory_was_lost_is_replaced() {
    let mut c = Cluster::start_with(options(3, 1));
    let leader = c.leader(LEADER_TIMEOUT);
    let lost = c.ids().into_iter().find(|&i| i != leader).unwrap();
    let load = Workload::start(c.addrs()[..3].to_vec(), 2, Duration::from_millis(2));
    let registers = Registers::start(c.addrs(), 3);
    assert!(load.wait_acked(1000, Duration::from_secs(30)), "writes did not get going:\n{}", c.describe());

    // The disk of a follower dies: killed, its directory deleted.
    c.kill9(lost);
    c.wipe(lost);
    // Joining again without being removed first is refused: it is still a voter, and would come
    // back without its log and its votes.
    c.join_via = leader;
    c.set_joining(lost);
    let args = c.args(lost);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, out) = run_raftis(&args, Duration::from_secs(30));
    assert!(status.is_some_and(|s| !s.success()), "a wiped voter rejoined without being removed:\n{out}");
    assert!(out.contains("remove it first"), "unclear refusal:\n{out}");
    c.wipe(lost);
    // Remove it, then start it again at the same address with the same id: it joins afresh.
    assert_eq!(raft_node(&c, leader, &["REMOVE", &lost.to_string()]), Resp::Simple("OK".into()));
    let survivors: Vec<u64> = c.ids().into_iter().filter(|&i| i != lost).collect();
    wait_voters(&c, leader, &survivors, Duration::from_secs(10));
    c.join_via = survivors[1];
    c.spawn(lost);
    c.wait_up(lost, Duration::from_secs(20));
    wait_standing(&c, lost, "voter", JOIN_TIMEOUT);
    assert!(c.log(lost).contains("added to the cluster as a learner"), "{}", c.log_tail(lost, 20));

    // A second node asking for an id in use, at another address, is refused with a clear message.
    let mut args = c.args(4);
    let at = args.iter().position(|a| a == "--id").unwrap() + 1;
    args[at] = leader.to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, out) = run_raftis(&args, Duration::from_secs(30));
    assert!(status.is_some_and(|s| !s.success()), "a duplicate id was not refused:\n{out}");
    assert!(out.contains(&format!("node {leader} is already a member")), "unclear refusal:\n{out}");
    // Without --id, the cluster picks an unused one.
    let mut args = c.args(4);
    let at = args.iter().position(|a| a == "--id").unwrap();
    args.drain(at..at + 2);
    c.spawn_with(4, args);
    c.wait_up(4, Duration::from_secs(20));
    poll(JOIN_TIMEOUT, || {
        (field(&c, 4, "raft_node_id")? == "4" && field(&c, 4, "raft_membership")? == "voter").then_some(())
    })
    .unwrap_or_else(|| panic!("node started without --id did not become voter 4:\n{}", c.log_tail(4, 30)));

    let logs = load.stop();
    let verdict = registers.stop_and_check();
    eprintln!("register history linearizable: {:?}", verdict.counts);
    let summary = verify_writes(&c, &logs);
    eprintln!("{summary:?}");
    c.wait_digests_equal_among(&[1, 2, 3, 4], CONVERGE_TIMEOUT);
    // The replacement restarts from its new directory (no second join).
    c.stop(lost, Duration::from_secs(10));
    c.restart(lost);
    wait_standing(&c, lost, "voter", Duration::from_secs(15));
    assert_eq!(c.log(lost).matches("asking to join").count(), 1, "the replacement asked to join twice");
    c.assert_no_panics();
}

#[test]
fn writes_in_flight_on_a_leader_that_removes_itself_are_answered_at_once() {
    // A long commit timeout: a write left waiting on the deposed leader would hang this long.
    let c = Cluster::start_with(Options { commit_timeout_ms: 30_000, ..options(3, 0) });
    let leader = c.leader(LEADER_TIMEOUT);
    let addr = c.addr(leader);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    // CLUSTERDOWN answers: the removed node refusing the writes itself.
    let refused = Arc::new(AtomicUsize::new(0));
    let refusals = refused.clone();
    // One client writing to the leader, one write after another, until told to stop.
    let writer = std::thread::spawn(move || {
        let mut client = Client::connect(&addr, Duration::from_secs(60)).expect("connect to the leader");
        let (mut slowest, mut answers) = (Duration::ZERO, std::collections::BTreeMap::<String, usize>::new());
        for i in 0u64.. {
            if stopped.load(Ordering::Relaxed) {
                break;
            }
            let sent = Instant::now();
            let reply = client.call(&["SET", "k", &i.to_string()]);
            slowest = slowest.max(sent.elapsed());
            let Ok(reply) = reply else {
                *answers.entry(format!("{reply:?}")).or_default() += 1;
                break;
            };
            let kind = match reply.err() {
                None => "ok".to_string(),
                Some(e) => e.split(&[' ', '('][..]).take(2).collect::<Vec<_>>().join(" "),
            };
            if kind.starts_with("CLUSTERDOWN") {
                refusals.fetch_add(1, Ordering::Relaxed);
            }
            *answers.entry(kind).or_default() += 1;
            if reply.err().is_some() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        (slowest, answers)
    });
    poll(Duration::from_secs(10), || (c.raft_field(leader, "raft_applied_index")? > 200).then_some(()))
        .expect("the writer did not get going");
    let via = c.ids().into_iter().find(|&i| i != leader).unwrap();
    assert_eq!(raft_node(&c, via, &["REMOVE", &leader.to_string()]), Resp::Simple("OK".into()));
    wait_standing(&c, leader, "removed", Duration::from_secs(15));
    // Until the removed node has refused writes itself (a write hanging on it never returns).
    let refusing = poll(Duration::from_secs(10), || (refused.load(Ordering::Relaxed) > 0).then_some(()));
    stop.store(true, Ordering::Relaxed);
    let (slowest, answers) = writer.join().unwrap();
    eprintln!("writes to the removed leader: {answers:?}; slowest answer {slowest:?}");
    assert!(refusing.is_some(), "the removed node answered no write with CLUSTERDOWN: {answers:?}");
    assert!(
        slowest < Duration::from_secs(5),
        "a write to the leader that removed itself waited {slowest:?} (answers {answers:?}):\n{}",
        c.log_tail(leader, 30)
    );
    assert!(answers.get("ok").copied().unwrap_or(0) > 100, "too few writes before the removal: {answers:?}");
    c.assert_no_panics();
}

/// The running nodes that are members (not removed, not still joining).
fn in_cluster(c: &Cluster) -> Vec<u64> {
    c.running()
        .into_iter()
        .filter(|&id| matches!(field(c, id, "raft_membership").as_deref(), Some("voter" | "learner")))
        .collect()
}

/// Whether any of `ids` holds a joint configuration (or does not answer).
fn someone_joint(c: &Cluster, ids: &[u64]) -> bool {
    ids.iter().any(|&id| field(c, id, "raft_membership_joint").as_deref() != Some("0"))
}

#[test]
fn a_change_cut_short_by_the_leaders_death_is_finished_by_the_next_leader() {
    let mut c = Cluster::start_with(options(3, 1));
    let load = Workload::start(c.addrs()[..3].to_vec(), 2, Duration::from_millis(2));
    let registers = Registers::start(c.addrs()[..3].to_vec(), 2);
    let mut seen_joint = 0;
    for round in 0..4u64 {
        // Node 4 joins as a learner (its directory wiped after the previous round).
        if c.node(4).is_running() {
            c.stop(4, Duration::from_secs(10));
        }
        c.wipe(4);
        c.join_via = 1 + round % 3;
        let mut args = c.args(4);
        args.push("--learner".into());
        c.spawn_with(4, args);
        c.wait_up(4, Duration::from_secs(20));
        wait_standing(&c, 4, "learner", JOIN_TIMEOUT);
        // Promote it, then remove it, each time killing the leader a moment after asking.
        for change in ["PROMOTE", "REMOVE"] {
            let leader = c.leader_among(&in_cluster(&c), LEADER_TIMEOUT);
            let addr = c.addr(leader);
            let asker = std::thread::spawn(move || {
                Client::connect(&addr, Duration::from_secs(5)).ok()?.call(&["RAFT.NODE", change, "4"]).ok()
            });
            std::thread::sleep(Duration::from_micros(500 * round));
            c.kill9(leader);
            let answer = asker.join().unwrap();
            // Nodes 1-3 stay members throughout (node 4 may have been removed just now).
            let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|&i| i != leader).collect();
            if someone_joint(&c, &survivors) {
                seen_joint += 1;
            }
            // A new leader (maybe node 4, if it was promoted) that the survivors all follow.
            let agreed = poll(LEADER_TIMEOUT, || {
                let l = field(&c, survivors[0], "raft_leader_id")?;
                let all = survivors.iter().all(|&i| field(&c, i, "raft_leader_id").as_ref() == Some(&l));
                let id: u64 = l.parse().ok()?;
                (all && id != leader && field(&c, id, "raft_role")? == "leader").then_some(())
            });
            assert!(agreed.is_some(), "round {round}, {change}: no new leader:\n{}", c.describe());
            let uniform = poll(Duration::from_secs(10), || (!someone_joint(&c, &survivors)).then_some(()));
            assert!(
                uniform.is_some(),
                "round {round}, {change} (answer {answer:?}): still joint after the leader died:\n{}",
                c.describe()
            );
            c.restart(leader);
            let acked = load.acked();
            assert!(load.wait_acked(acked + 50, Duration::from_secs(20)), "writes stalled:\n{}", c.describe());
            // Whatever became of it, the change can be made (again) and completes.
            if change == "REMOVE" {
                let reply = raft_node(&c, leader, &["REMOVE", "4"]);
                assert!(reply.is_ok() || reply.err().is_some_and(|e| e.contains("not a member")), "{reply}");
            }
        }
        wait_voters(&c, 1, &[1, 2, 3], Duration::from_secs(10));
    }
    let finished: usize = (1..=4).map(|id| c.log(id).matches("finishing a membership change").count()).sum();
    eprintln!("a joint configuration was seen after {seen_joint} of 8 leader kills; next leaders finished {finished}");
    let logs = load.stop();
    let verdict = registers.stop_and_check();
    eprintln!("register history linearizable: {:?}", verdict.counts);
    c.stop(4, Duration::from_secs(10));
    let summary = verify_writes(&c, &logs);
    eprintln!("{summary:?}");
    c.wait_digests_equal(CONVERGE_TIMEOUT);
    c.assert_no_panics();
}

/// Removes node `id`, stops it, wipes its directory and starts it again with --join under the
/// same id; waits until it is a voter.
fn replace(c: &mut Cluster, id: u64, via: u64) {
    assert_eq!(raft_node(c, via, &["REMOVE", &id.to_string()]), Resp::Simple("OK".into()));
    wait_standing(c, id, "removed", Duration::from_secs(15));
    c.stop(id, Duration::from_secs(10));
    c.wipe(id);
    c.join_via = via;
    c.set_joining(id);
    c.spawn(id);
    c.wait_up(id, Duration::from_secs(20));
    wait_standing(c, id, "voter", JOIN_TIMEOUT);
}

#[test]
fn a_removed_node_rejoins_under_its_old_id_replaying_the_whole_log() {
    // No snapshot: a node that joins replays the log from its first entry, through memberships
    // of before its time that name its id as a voter and leave out nodes that were removed and
    // came back since. Node 1 is removed and rejoins; once it leads, node `b` does the same: its
    // replay goes through a membership without node 1, the node it must hear from.
    let mut c = Cluster::start_with(Options { nodes: 3, spare: 1, ..Options::default() });
    c.spawn(4);
    c.wait_up(4, Duration::from_secs(20));
    wait_standing(&c, 4, "voter", JOIN_TIMEOUT);
    let all = [1, 2, 3, 4];
    let other = |c: &Cluster, not: u64| all.into_iter().find(|&i| i != not && c.node(i).is_running()).unwrap();
    let leader = c.leader_among(&all, LEADER_TIMEOUT);
    let mut router = c.router();
    for i in 0..200 {
        router.must(&["SET", &format!("k{i}"), "v"]);
    }
    let via = other(&c, 1);
    replace(&mut c, 1, via);
    // Node 1 leads: kill whoever else leads until it does.
    let mut leader = c.leader_among(&all, LEADER_TIMEOUT).max(leader);
    for _ in 0..20 {
        leader = c.leader_among(&all, LEADER_TIMEOUT);
        if leader == 1 {
            break;
        }
        c.kill9(leader);
        c.leader_among(&all.into_iter().filter(|&i| i != leader).collect::<Vec<_>>(), LEADER_TIMEOUT);
        c.restart(leader);
    }
    assert_eq!(leader, 1, "node 1 never led");
    let b = other(&c, 1);
    replace(&mut c, b, 1);
    let rejoined = c.log(b);
    // Its life since the last start (the loop above may have killed and restarted it already).
    let this_life = &rejoined[rejoined.rfind("test harness: start #").unwrap()..];
    assert!(!this_life.contains("candidate"), "node {b} campaigned on a membership of before its time");
    c.router().must(&["SET", "after", "rejoin"]);
    c.wait_digests_equal_among(&all, CONVERGE_TIMEOUT);
    c.assert_no_panics();
}

/// The client addresses each view of the cluster gives through node `via`: CLUSTER NODES, CLUSTER
/// SLOTS, CLUSTER SHARDS, and Sentinel's master plus replicas. `None` where a view did not answer.
fn views(c: &Cluster, via: u64) -> Vec<(&'static str, Option<BTreeSet<String>>)> {
    let mut client = match Client::connect(&c.addr(via), Duration::from_secs(2)) {
        Ok(cl) => cl,
        Err(_) => return vec![("connect", None)],
    };
    let mut call = |args: &[&str]| client.call(args).ok().filter(|r| r.err().is_none());
    // CLUSTER NODES: "<id> <ip:port@bus> <flags> ..." per line.
    let nodes = call(&["CLUSTER", "NODES"]).and_then(|r| r.text()).map(|t| {
        t.lines()
            .filter_map(|l| l.split(' ').nth(1))
            .map(|a| a.split('@').next().unwrap_or_default().to_string())
            .collect()
    });
    // CLUSTER SLOTS: [start, end, [ip, port, id], [ip, port, id]...] per range.
    let slots = call(&["CLUSTER", "SLOTS"]).map(|r| {
        let Resp::Array(ranges) = r else { return BTreeSet::new() };
        let mut out = BTreeSet::new();
        for range in ranges {
            let Resp::Array(parts) = range else { continue };
            for node in parts.iter().skip(2) {
                if let Resp::Array(n) = node {
                    if let (Some(ip), Some(Resp::Int(port))) = (n.first().and_then(|i| i.text()), n.get(1)) {
                        out.insert(format!("{ip}:{port}"));
                    }
                }
            }
        }
        out
    });
    // CLUSTER SHARDS: per shard a map with "nodes", each node a map with "ip" and "port".
    let shards = call(&["CLUSTER", "SHARDS"]).map(|r| {
        let Resp::Array(shards) = r else { return BTreeSet::new() };
        let mut out = BTreeSet::new();
        for shard in shards {
            let Resp::Array(kv) = shard else { continue };
            let Some(Resp::Array(nodes)) =
                kv.chunks(2).find(|p| p[0].text().as_deref() == Some("nodes")).map(|p| p[1].clone())
            else {
                continue;
            };
            for node in nodes {
                let Resp::Array(f) = node else { continue };
                let get = |k: &str| f.chunks(2).find(|p| p[0].text().as_deref() == Some(k)).map(|p| p[1].clone());
                if let (Some(ip), Some(Resp::Int(port))) = (get("ip").and_then(|i| i.text()), get("port")) {
                    out.insert(format!("{ip}:{port}"));
                }
            }
        }
        out
    });
    // Sentinel: the master's address and every replica's.
    let master = call(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "raftis"]);
    let replicas = call(&["SENTINEL", "REPLICAS", "raftis"]);
    let sentinel = match (master, replicas) {
        (Some(Resp::Array(m)), Some(Resp::Array(rs))) if m.len() == 2 => {
            let mut out = BTreeSet::new();
            out.insert(format!("{}:{}", m[0].text().unwrap_or_default(), m[1].text().unwrap_or_default()));
            for r in rs {
                let Resp::Array(f) = r else { continue };
                let get = |k: &str| f.chunks(2).find(|p| p[0].text().as_deref() == Some(k)).and_then(|p| p[1].text());
                if let (Some(ip), Some(port)) = (get("ip"), get("port")) {
                    out.insert(format!("{ip}:{port}"));
                }
            }
            Some(out)
        }
        _ => None,
    };
    vec![("CLUSTER NODES", nodes), ("CLUSTER SLOTS", slots), ("CLUSTER SHARDS", shards), ("SENTINEL", sentinel)]
}

/// Waits until every view through each node of `via` names exactly the members `ids`.
fn wait_views(c: &Cluster, via: &[u64], ids: &[u64]) {
    let want: BTreeSet<String> = ids.iter().map(|&i| c.addr(i)).collect();
    for &v in via {
        let mut last = Vec::new();
        let ok = poll(Duration::from_secs(10), || {
            last = views(c, v);
            last.iter().all(|(_, got)| got.as_ref() == Some(&want)).then_some(())
        });
        assert!(ok.is_some(), "the views through node {v} are {last:?}, not the members {want:?}:\n{}", c.describe());
    }
}

/// `raftis cluster ...` (the CLI), which must succeed; returns what it printed.
fn cli(args: &[&str]) -> String {
    let (status, out) = run_raftis(args, Duration::from_secs(60));
    assert!(status.is_some_and(|s| s.success()), "raftis {args:?} failed ({status:?}):\n{out}");
    out
}

#[test]
fn a_learner_serves_reads_and_cli_changes_show_in_every_view_at_once() {
    let mut c = Cluster::start_with(options(3, 2));
    let leader = c.leader(LEADER_TIMEOUT);
    let load = Workload::start(c.addrs(), 2, Duration::from_millis(2));
    let registers = Registers::start(c.addrs(), 2);
    assert!(load.wait_acked(500, Duration::from_secs(30)), "writes did not get going:\n{}", c.describe());
    wait_views(&c, &[1, 2, 3], &[1, 2, 3]);

    // Node 4 joins as a learner (--learner): it stays one, and serves READONLY reads.
    c.join_via = leader;
    let mut args = c.args(4);
    args.push("--learner".into());
    c.spawn_with(4, args);
    c.wait_up(4, Duration::from_secs(20));
    wait_standing(&c, 4, "learner", JOIN_TIMEOUT);
    wait_views(&c, &[leader, 4], &[1, 2, 3, 4]);
    c.client(leader).must(&["SET", "learner:key", "v1"]);
    let mut reader = c.client(4);
    assert!(reader.must(&["READONLY"]).is_ok());
    let read = poll(Duration::from_secs(10), || {
        (reader.must(&["GET", "learner:key"]) == Resp::Bulk(b"v1".to_vec())).then_some(())
    });
    assert!(read.is_some(), "the learner does not serve the leader's write to a READONLY client");
    // A cluster-aware client without READONLY is sent to the leader (a plain one is proxied).
    let mut aware = c.client(4);
    assert!(aware.must(&["READWRITE"]).is_ok());
    let moved = aware.must(&["GET", "learner:key"]);
    assert!(moved.err().is_some_and(|e| e.starts_with("MOVED ")), "a learner answered a READWRITE GET with {moved}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(field(&c, 4, "raft_membership").as_deref(), Some("learner"), "a --learner node promoted itself");

    // The CLI, through a follower: promote node 4; add node 5 (then started with --join, which
    // finds itself added and is promoted once caught up); members lists all five.
    let follower = [1, 2, 3].into_iter().find(|&i| i != leader).unwrap();
    let via = c.addr(follower);
    cli(&["cluster", "promote", "4", "--addr", &via]);
    wait_voters(&c, leader, &[1, 2, 3, 4], Duration::from_secs(10));
    wait_views(&c, &[follower, 4], &[1, 2, 3, 4]);
    let five = c.node(5);
    let bus = format!("{}:{}", five.ip, five.bus_port);
    cli(&["cluster", "add", &c.addr(5), "--id", "5", "--bus", &bus, "--addr", &via]);
    c.spawn(5);
    c.wait_up(5, Duration::from_secs(20));
    wait_standing(&c, 5, "voter", JOIN_TIMEOUT);
    wait_voters(&c, 5, &[1, 2, 3, 4, 5], Duration::from_secs(10));
    let listed = cli(&["cluster", "members", "--addr", &via]);
    for id in 1..=5 {
        assert!(listed.contains(&c.addr(id)), "members does not list node {id}:\n{listed}");
    }
    wait_views(&c, &[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5]);

    // One REMOVE of two nodes, the leader among them, from the CLI through a node that stays.
    let leader = c.leader_among(&[1, 2, 3, 4, 5], LEADER_TIMEOUT);
    let other = [4, 5, 1, 2, 3].into_iter().find(|&i| i != leader).unwrap();
    let remaining: Vec<u64> = [1, 2, 3, 4, 5].into_iter().filter(|&i| i != leader && i != other).collect();
    let removing = Instant::now();
    cli(&["cluster", "remove", &other.to_string(), &leader.to_string(), "--addr", &c.addr(remaining[0])]);
    let new_leader = c.leader_among(&remaining, LEADER_TIMEOUT);
    eprintln!(
        "removed nodes {other} and {leader} (the leader) in one change; node {new_leader} leads {:?} later",
        removing.elapsed()
    );
    wait_voters(&c, remaining[0], &remaining, Duration::from_secs(10));
    wait_views(&c, &remaining, &remaining);
    for gone in [other, leader] {
        wait_standing(&c, gone, "removed", Duration::from_secs(15));
    }
    writes_go_on_and_nothing_was_lost(&mut c, load, registers, &[other, leader], &remaining);
}
