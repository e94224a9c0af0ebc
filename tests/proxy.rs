//! Follower proxy mode on real three-node clusters (issue 14): a plain client connected to a
//! follower is served as if it were connected to the leader.
//!
//! - `a_plain_client_on_a_follower_gets_the_leaders_answers`: strings, a pipeline, MULTI/EXEC,
//!   WATCH, a blocking pop woken through another node, a script and RESP3, all through a
//!   follower, and pub/sub (which stays on the follower); a cluster-aware client (CLUSTER, READONLY...) still gets MOVED.
//! - `a_proxied_session_is_closed_when_the_leader_dies`: kill -9 the leader: the proxied
//!   connection breaks (a connection error, as when a Redis primary dies) and a new connection to
//!   the same follower reaches the new leader.
//! - `follower_proxy_false_answers_moved`: `--follower-proxy false` keeps MOVED for everyone.

mod common;

use std::io::{Read as _, Write as _};
use std::thread;
use std::time::Duration;

use common::cluster::{Client, Cluster, Options, Resp};

const LEADER_TIMEOUT: Duration = Duration::from_secs(10);

fn bulk(s: &str) -> Resp {
    Resp::Bulk(s.as_bytes().to_vec())
}

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

#[test]
fn a_plain_client_on_a_follower_gets_the_leaders_answers() {
    let c = Cluster::start(3);
    let leader = c.leader(LEADER_TIMEOUT);
    let followers: Vec<u64> = c.ids().into_iter().filter(|&i| i != leader).collect();
    let mut fc = c.client(followers[0]);
    // Connection commands are answered here; the first data command moves the session.
    assert_eq!(fc.must(&["CLIENT", "SETNAME", "app"]), ok());
    assert_eq!(fc.must(&["SET", "k", "v"]), ok());
    assert_eq!(fc.must(&["GET", "k"]), bulk("v"));
    // The session lives on the leader now, under the client's name.
    let Resp::Bulk(list) = c.client(leader).must(&["CLIENT", "LIST"]) else { panic!("CLIENT LIST") };
    assert!(String::from_utf8_lossy(&list).contains(" name=app "), "{}", String::from_utf8_lossy(&list));
    // A pipeline keeps its order.
    let cmds: Vec<Vec<String>> = (0..100).map(|_| vec!["INCR".to_string(), "n".to_string()]).collect();
    let replies = fc.pipeline(&cmds).unwrap();
    assert_eq!(replies.last(), Some(&Resp::Int(100)));
    // MULTI/EXEC and WATCH.
    assert_eq!(fc.must(&["MULTI"]), ok());
    assert_eq!(fc.must(&["INCR", "n"]), Resp::Simple("QUEUED".into()));
    assert_eq!(fc.must(&["EXEC"]), Resp::Array(vec![Resp::Int(101)]));
    assert_eq!(fc.must(&["WATCH", "w"]), ok());
    assert_eq!(c.client(followers[1]).must(&["SET", "w", "changed"]), ok());
    assert_eq!(fc.must(&["MULTI"]), ok());
    fc.must(&["SET", "w", "mine"]);
    assert_eq!(fc.must(&["EXEC"]), Resp::Nil, "the watched key changed: EXEC fails");
    // A script.
    assert_eq!(fc.must(&["EVAL", "return redis.call('INCR', KEYS[1])", "1", "n"]), Resp::Int(102));
    // A blocking pop, woken by a push through the other follower.
    let addr = c.addr(followers[0]);
    let popper = thread::spawn(move || {
        let mut cl = Client::connect(&addr, Duration::from_secs(30)).unwrap();
        cl.must(&["BLPOP", "q", "10"])
    });
    thread::sleep(Duration::from_millis(300));
    assert_eq!(c.client(followers[1]).must(&["RPUSH", "q", "job"]), Resp::Int(1));
    assert_eq!(popper.join().unwrap(), Resp::Array(vec![bulk("q"), bulk("job")]));
    // Pub/sub stays on the node the client chose (messages reach every node); PUBLISH counts
    // the receivers of the node it was sent to, as in Redis Cluster.
    let mut sub = c.client(followers[0]);
    sub.must(&["SUBSCRIBE", "news"]);
    assert_eq!(c.client(followers[1]).must(&["PUBLISH", "news", "hello"]), Resp::Int(0));
    assert_eq!(sub.read_reply().unwrap(), Resp::Array(vec![bulk("message"), bulk("news"), bulk("hello")]));
    // RESP3 set up here carries over (raw bytes: the test client reads RESP2 only).
    let mut raw = std::net::TcpStream::connect(c.addr(followers[1])).unwrap();
    raw.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    raw.write_all(b"HELLO 3\r\nHSET h f 1\r\nHGETALL h\r\n").unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let map = b":1\r\n%1\r\n$1\r\nf\r\n$1\r\n1\r\n";
    while !got.ends_with(map) && std::time::Instant::now() < deadline {
        let mut chunk = [0u8; 4096];
        if let Ok(n) = raw.read(&mut chunk) {
            got.extend_from_slice(&chunk[..n]);
        }
    }
    assert!(got.ends_with(map), "{}", String::from_utf8_lossy(&got));
    // A cluster-aware client keeps getting MOVED.
    let mut cc = c.client(followers[0]);
    cc.must(&["CLUSTER", "MYID"]);
    let moved = cc.must(&["GET", "k"]);
    assert!(matches!(&moved, Resp::Error(e) if e.starts_with("MOVED ")), "{moved:?}");
    c.wait_digests_equal(Duration::from_secs(30));
    c.assert_no_panics();
}

#[test]
fn a_proxied_session_is_closed_when_the_leader_dies() {
    let mut c = Cluster::start(3);
    let leader = c.leader(LEADER_TIMEOUT);
    let follower = c.ids().into_iter().find(|&i| i != leader).unwrap();
    let mut fc = c.client(follower);
    assert_eq!(fc.must(&["SET", "before", "1"]), ok());
    c.kill9(leader);
    let survivors: Vec<u64> = c.ids().into_iter().filter(|&i| i != leader).collect();
    c.leader_among(&survivors, LEADER_TIMEOUT);
    // The tunnel to the dead leader is gone: the client sees a connection error, not an answer.
    let broken = fc.call(&["GET", "before"]);
    assert!(broken.is_err(), "{broken:?}");
    // A new connection to the same node reaches the new leader.
    let mut again = c.client(follower);
    assert_eq!(again.must(&["GET", "before"]), bulk("1"));
    assert_eq!(again.must(&["SET", "after", "2"]), ok());
    c.assert_no_panics();
}

#[test]
fn follower_proxy_false_answers_moved() {
    let c =
        Cluster::start_with(Options { extra: vec!["--follower-proxy".into(), "false".into()], ..Options::default() });
    let leader = c.leader(LEADER_TIMEOUT);
    let follower = c.ids().into_iter().find(|&i| i != leader).unwrap();
    let reply = c.client(follower).must(&["GET", "k"]);
    assert_eq!(reply, Resp::Error(format!("MOVED 7629 {}", c.addr(leader))));
    c.assert_no_panics();
}
