//! The HTTP listener of real nodes: `/health`, `/ready` (and how it follows the cluster's
//! state), `/metrics` read by the Prometheus text parser of the `prometheus-client` Python
//! package and compared with INFO, and garbage requests that must not disturb the node.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cluster::{parse_info, poll, Cluster, Options};
use common::{require, runs_ok};
use raftis_chaos::resp::Resp;

/// One HTTP/1.1 request; the status code and the body.
fn http(addr: (Ipv4Addr, u16), request: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

fn get(addr: (Ipv4Addr, u16), path: &str) -> (u16, String) {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: raftis\r\nConnection: close\r\n\r\n"))
        .unwrap_or_else(|e| panic!("GET {path} on {addr:?}: {e}"))
}

/// The samples of a metrics text as Prometheus's own parser reads them: `name{k="v",...}` (labels
/// sorted) to value.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value!r}")
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn have_parser() -> bool {
    runs_ok("python3", &["-c", "import prometheus_client.parser"])
}

/// A cluster whose nodes serve HTTP, and each node's HTTP address (index: id - 1).
fn http_cluster(nodes: u64) -> (Cluster, Vec<(Ipv4Addr, u16)>) {
    let c = Cluster::start_with(Options { nodes, http: true, ..Options::default() });
    let addrs = c.nodes.iter().map(|n| (n.ip, n.http_port.expect("an HTTP port"))).collect();
    (c, addrs)
}

#[test]
fn metrics_parse_and_agree_with_info() {
    if !require("metrics_parse_and_agree_with_info", &[("python3 prometheus-client", have_parser())]) {
        return;
    }
    let (c, ports) = http_cluster(3);
    let leader = c.leader(Duration::from_secs(10));
    let mut cl = c.client(leader);
    for i in 0..20 {
        assert!(cl.must(&["SET", &format!("k{i}"), "v"]).is_ok());
    }
    assert!(cl.must(&["HSET", "k0", "f", "v"]).err().is_some(), "a WRONGTYPE error to count");
    c.wait_digests_equal(Duration::from_secs(20));
    let port = ports[(leader - 1) as usize];
    let (status, health) = get(port, "/health");
    assert_eq!(status, 200, "{health}");
    assert!(health.contains("\"ok\""), "{health}");
    // The election counters are read from openraft's metrics every 20 ms by a task of their own
    // (src/server/elections.rs): wait until the leader's shows its win (a CI run, on a loaded
    // machine, read 0 soon after the election: the task had not run since).
    let won = poll(Duration::from_secs(10), || {
        let info = parse_info(&cl.must(&["INFO", "raft"]).text()?);
        (info.get("raft_elections_won")?.parse::<u64>().ok()? >= 1).then_some(())
    });
    assert!(won.is_some(), "the leader's INFO never counted its election win");
    // With no traffic in between, INFO and /metrics show the same numbers.
    let info = parse_info(&cl.must(&["INFO", "everything"]).text().unwrap());
    let (status, text) = get(port, "/metrics");
    assert_eq!(status, 200, "{text}");
    let m = parse_metrics(&text);
    let num = |k: &str| -> f64 { info[k].parse().unwrap() };
    assert_eq!(m["raftis_raft_term{}"], num("raft_term"));
    assert_eq!(m["raftis_raft_commit_index{}"], num("raft_commit_index"));
    assert_eq!(m["raftis_raft_applied_index{}"], num("raft_applied_index"));
    assert_eq!(m["raftis_raft_leader_id{}"], leader as f64);
    assert_eq!(m["raftis_raft_role{role=\"leader\"}"], 1.0);
    assert_eq!(m["raftis_raft_role{role=\"follower\"}"], 0.0);
    assert_eq!(m["raftis_connected_clients{}"], num("connected_clients"));
    let set_calls = info["cmdstat_set"].split(',').next().unwrap().trim_start_matches("calls=").parse::<f64>().unwrap();
    assert_eq!(m["raftis_command_calls_total{command=\"set\"}"], set_calls);
    assert_eq!(set_calls, 20.0);
    assert_eq!(m["raftis_command_failed_total{command=\"hset\"}"], 1.0);
    let set_usec: f64 = info["cmdstat_set"].split(',').nth(1).unwrap().trim_start_matches("usec=").parse().unwrap();
    assert!((m["raftis_command_seconds_total{command=\"set\"}"] - set_usec / 1e6).abs() < 1e-6);
    // Each call's duration, by command: a histogram over the same calls and time.
    assert_eq!(m["raftis_command_duration_seconds_count{command=\"set\"}"], 20.0);
    assert_eq!(m["raftis_command_duration_seconds_bucket{command=\"set\",le=\"+Inf\"}"], 20.0);
    assert!((m["raftis_command_duration_seconds_sum{command=\"set\"}"] - set_usec / 1e6).abs() < 1e-6);
    // Histograms: the log flushes and the applies are timed.
    assert!(m["raftis_log_flush_duration_seconds_bucket{le=\"+Inf\"}"] >= 1.0);
    assert!(m["raftis_log_flush_duration_seconds_count{}"] >= 1.0);
    assert!(m["raftis_apply_duration_seconds_count{}"] >= 1.0);
    assert_eq!(m["raftis_error_replies_total{code=\"WRONGTYPE\"}"], 1.0);
    assert_eq!(m["raftis_keys{}"], 20.0);
    assert_eq!(m["raftis_raft_elections_started_total{}"], num("raft_elections_started"));
    assert_eq!(m["raftis_raft_elections_won_total{}"], num("raft_elections_won"));
    assert!(num("raft_elections_won") >= 1.0, "the leader won an election");
    assert_eq!(m["raftis_snapshots_written_total{}"], num("raft_snapshots_written"));
    assert_eq!(m["raftis_snapshot_size_bytes{}"], num("raft_snapshot_last_bytes"));
    // Every SET and the HSET went into entries this leader proposed.
    assert!(m["raftis_raft_entry_requests_sum{}"] >= 21.0, "{}", m["raftis_raft_entry_requests_sum{}"]);
    assert!(m["raftis_raft_entry_proposals_count{}"] >= 1.0);
    assert!(m.contains_key("raftis_snapshot_duration_seconds_count{}"));
    for f in c.ids().into_iter().filter(|&id| id != leader) {
        assert_eq!(m[&format!("raftis_raft_member{{node=\"{f}\"}}")], 1.0);
        let matched = m[&format!("raftis_raft_match_index{{peer=\"{f}\"}}")];
        assert!(matched > 0.0 && matched <= num("raft_commit_index"), "match index of {f}: {matched}");
        // A follower's own view: its role, and the leader it follows.
        let fm = parse_metrics(&get(ports[(f - 1) as usize], "/metrics").1);
        assert_eq!(fm["raftis_raft_role{role=\"follower\"}"], 1.0);
        assert_eq!(fm["raftis_raft_leader_id{}"], leader as f64);
    }
    let (status, body) = get(port, "/nope");
    assert_eq!(status, 404, "{body}");
    c.assert_no_panics();
}

#[test]
fn ready_follows_the_quorum_and_the_catch_up() {
    if !require("ready_follows_the_quorum_and_the_catch_up", &[("python3 prometheus-client", have_parser())]) {
        return;
    }
    let (mut c, ports) = http_cluster(3);
    let leader = c.leader(Duration::from_secs(10));
    for (i, &port) in ports.iter().enumerate() {
        let ok = poll(Duration::from_secs(10), || (get(port, "/ready").0 == 200).then_some(()));
        assert!(ok.is_some(), "node {} never ready: {}", i + 1, get(port, "/ready").1);
    }
    // A node left alone knows no leader: 503, and the body says why.
    let others: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();
    let alone = others[0];
    for &id in c.ids().iter().filter(|&&id| id != alone) {
        c.kill9(id);
    }
    let port = ports[(alone - 1) as usize];
    let down = poll(Duration::from_secs(15), || {
        let (status, body) = get(port, "/ready");
        (status == 503).then_some(body)
    });
    let body = down.expect("/ready stayed 200 on a node cut off from its quorum");
    assert!(body.contains("no leader known"), "{body}");
    // Its calls to the dead peers failed, and are counted by peer.
    let m = parse_metrics(&get(port, "/metrics").1);
    let failed: f64 = m.iter().filter(|(k, _)| k.starts_with("raftis_bus_rpc_errors_total{")).map(|(_, v)| v).sum();
    assert!(failed > 0.0, "no bus errors counted: {m:?}");
    // Back with a quorum, and caught up: 200 again.
    for &id in c.ids().iter().filter(|&&id| id != alone) {
        c.restart(id);
    }
    let up = poll(Duration::from_secs(20), || (get(port, "/ready").0 == 200).then_some(()));
    assert!(up.is_some(), "/ready did not come back: {}", get(port, "/ready").1);
    c.assert_no_panics();
}

#[test]
fn garbage_http_never_takes_a_node_down() {
    let (c, ports) = http_cluster(1);
    let port = ports[0];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let requests: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/9.9\r\n\r\n".to_vec(),
        b"GET /ready HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\nx".to_vec(),
        format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000)).into_bytes(),
        format!("GET / HTTP/1.1\r\n{}\r\n\r\n", "X-Long: y\r\n".repeat(10_000)).into_bytes(),
        b"\x00\x01\x02\xff\xfe\r\n\r\n".to_vec(),
        b"GET /v1/watch?from_index=99999999999999999999999 HTTP/1.1\r\n\r\n".to_vec(),
        b"GET /v1/watch HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 99\r\n\r\n"
            .to_vec(),
        b"GET /v1/status/live HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n".to_vec(),
        b"PUT /v1/keys/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\ngarbage\r\n".to_vec(),
        b"PUT /v1/keys/%zz?ttl=%%% HTTP/1.1\r\nContent-Length: 1\r\n\r\nx".to_vec(),
        b"DELETE /v1/keys HTTP/1.1\r\n\r\n".to_vec(),
    ];
    for r in requests.into_iter().chain((0..50).map(|_| (0..512).map(|_| next() as u8).collect())) {
        if let Ok(mut s) = TcpStream::connect(port) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = s.write_all(&r);
            let _ = s.read(&mut [0u8; 1024]);
        }
    }
    assert_eq!(get(port, "/health").0, 200);
    let mut cl = c.client(1);
    assert!(cl.must(&["PING"]).text().is_some_and(|t| t == "PONG"));
    c.assert_no_panics();
}

/// `GET/PUT/DELETE` on `/v1/keys/...` with a body; the status and the body.
fn send(addr: (Ipv4Addr, u16), method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: raftis\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |i| i + 4);
    let status = String::from_utf8_lossy(&raw[..split]).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, raw[split..].to_vec())
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

#[test]
fn the_key_value_api_round_trips_through_followers() {
    let (c, ports) = http_cluster(3);
    let leader = c.leader(Duration::from_secs(10));
    let followers: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();
    let (f1, f2) = (ports[(followers[0] - 1) as usize], ports[(followers[1] - 1) as usize]);
    // Written through one follower, read through the other and over RESP.
    let value = b"caf\xc3\xa9 \x00 binary\xff";
    let (status, body) = send(f1, "PUT", "/v1/keys/app/config?ttl=300", "", value);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["ok"], true);
    let (status, body) = send(f2, "GET", "/v1/keys/app/config", "", b"");
    assert_eq!((status, body.as_slice()), (200, &value[..]));
    let mut cl = c.client(leader);
    assert_eq!(cl.must(&["GET", "app/config"]), Resp::Bulk(value.to_vec()));
    let ttl = cl.must(&["TTL", "app/config"]).int_value().unwrap();
    assert!((290..=300).contains(&ttl), "TTL {ttl}");
    let (status, body) = send(f2, "GET", "/v1/keys/app/config", "Accept: application/json\r\n", b"");
    assert_eq!(status, 200);
    let j = json(&body);
    assert!(j["value"]["base64"].is_string(), "{j}");
    assert!(j["ttl"].as_i64().is_some_and(|t| t > 0), "{j}");
    assert!(cl.must(&["SET", "plain", "hello"]).is_ok());
    let (_, body) = send(f1, "GET", "/v1/keys/plain", "Accept: application/json\r\n", b"");
    assert_eq!(json(&body), serde_json::json!({"key": "plain", "value": "hello", "ttl": null}));
    // Errors: JSON bodies with the right status.
    assert!(cl.must(&["RPUSH", "list", "a"]).int_value().is_some());
    for (method, path, body, want) in [
        ("GET", "/v1/keys/missing", &b""[..], 404),
        ("GET", "/v1/keys/list", b"", 409),
        ("PUT", "/v1/keys/x?ttl=-1", b"v", 400),
        ("PUT", "/v1/keys/x?ttl=soon", b"v", 400),
        ("GET", "/v1/keys/%FF", b"", 400),
        ("POST", "/v1/keys/x", b"v", 405),
    ] {
        let (status, got) = send(f1, method, path, "", body);
        assert_eq!(status, want, "{method} {path}: {}", String::from_utf8_lossy(&got));
        assert!(json(&got)["error"].is_string());
    }
    let big = vec![b'x'; 17 << 20];
    let (status, got) = send(f1, "PUT", "/v1/keys/big", "", &big);
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&got));
    assert!(cl.must(&["EXISTS", "big"]).int_value() == Some(0));
    // Deleted through a follower.
    let (status, body) = send(f2, "DELETE", "/v1/keys/app/config", "", b"");
    assert_eq!((status, json(&body)["deleted"].clone()), (200, serde_json::json!(true)));
    let (_, body) = send(f2, "DELETE", "/v1/keys/app/config", "", b"");
    assert_eq!(json(&body)["deleted"], false);
    assert_eq!(cl.must(&["EXISTS", "app/config"]).int_value(), Some(0));
    // The status of the cluster, from a follower.
    let (status, body) = send(f1, "GET", "/v1/status", "", b"");
    assert_eq!(status, 200);
    let s = json(&body);
    assert_eq!(s["node"]["id"], followers[0]);
    assert_eq!(s["node"]["role"], "follower");
    assert_eq!(s["cluster"]["leader"], leader);
    let nodes = s["cluster"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(nodes.iter().all(|n| n["reachable"] == true && n["term"] == s["node"]["term"]), "{s}");
    assert_eq!(nodes.iter().filter(|n| n["role"] == "leader").count(), 1);
    c.assert_no_panics();
}

/// A Server-Sent Events watch: reads `data:` lines as JSON.
struct SseWatch {
    reader: std::io::BufReader<TcpStream>,
}

impl SseWatch {
    fn open(addr: (Ipv4Addr, u16), query: &str) -> SseWatch {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(
            format!("GET /v1/watch?{query} HTTP/1.1\r\nHost: raftis\r\nAccept: text/event-stream\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let mut reader = std::io::BufReader::new(s);
        let mut status = String::new();
        std::io::BufRead::read_line(&mut reader, &mut status).unwrap();
        assert!(status.contains(" 200 "), "watch {query}: {status}");
        SseWatch { reader }
    }

    /// The next change, or `None` if none comes within `wait`.
    fn next(&mut self, wait: Duration) -> Option<serde_json::Value> {
        self.reader.get_ref().set_read_timeout(Some(wait)).unwrap();
        loop {
            let mut line = String::new();
            match std::io::BufRead::read_line(&mut self.reader, &mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            // Chunked transfer: the chunk sizes are lines of their own, as are the other fields.
            if let Some(data) = line.trim_end().strip_prefix("data: ") {
                return Some(json(data.as_bytes()));
            }
        }
    }
}

#[test]
fn a_watch_resumes_from_an_index_across_a_failover() {
    let (mut c, ports) = http_cluster(3);
    let leader = c.leader(Duration::from_secs(10));
    let followers: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();
    let mut cl = c.client(leader);
    for i in 1..=5 {
        assert!(cl.must(&["SET", &format!("w:{i}"), &format!("v{i}")]).is_ok());
        assert!(cl.must(&["SET", &format!("other:{i}"), "x"]).is_ok());
    }
    // From the start of the log, through a follower: the five w: changes, in log order.
    let mut w = SseWatch::open(ports[(followers[0] - 1) as usize], "prefix=w:&from_index=1");
    let seen: Vec<serde_json::Value> = (0..5).map(|_| w.next(Duration::from_secs(5)).expect("a change")).collect();
    let keys: Vec<&str> = seen.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["w:1", "w:2", "w:3", "w:4", "w:5"]);
    assert!(seen.iter().all(|e| e["op"] == "set" && e["type"] == "string"));
    assert_eq!(seen[2]["value"], "v3");
    let indexes: Vec<u64> = seen.iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert!(indexes.windows(2).all(|p| p[0] < p[1]), "{indexes:?}");
    let n = indexes[2];
    // The leader dies; more changes go through the next one.
    c.kill9(leader);
    let next = c.leader(Duration::from_secs(15));
    let mut cl = c.client(next);
    assert!(cl.must(&["DEL", "w:1"]).int_value() == Some(1));
    assert!(cl.must(&["HSET", "w:h", "f", "v"]).int_value() == Some(1));
    assert!(cl.must(&["SET", "other:9", "x"]).is_ok());
    // The first watch, on a survivor, went on.
    let after: Vec<serde_json::Value> = (0..2).map(|_| w.next(Duration::from_secs(5)).expect("a change")).collect();
    assert_eq!((after[0]["key"].as_str(), after[0]["op"].as_str()), (Some("w:1"), Some("del")));
    assert_eq!(after[0]["value"], serde_json::Value::Null);
    assert_eq!((after[1]["key"].as_str(), after[1]["type"].as_str()), (Some("w:h"), Some("hash")));
    // Resumed on the other survivor after index n: exactly the changes after n, in order.
    let mut resumed = SseWatch::open(ports[(followers[1] - 1) as usize], &format!("prefix=w:&from_index={}", n + 1));
    let mut got = Vec::new();
    while let Some(e) = resumed.next(Duration::from_secs(2)) {
        got.push((
            e["key"].as_str().unwrap().to_string(),
            e["op"].as_str().unwrap().to_string(),
            e["index"].as_u64().unwrap(),
        ));
    }
    let want: Vec<(String, String)> = [("w:4", "set"), ("w:5", "set"), ("w:1", "del"), ("w:h", "hset")]
        .iter()
        .map(|(k, o)| (k.to_string(), o.to_string()))
        .collect();
    assert_eq!(got.iter().map(|(k, o, _)| (k.clone(), o.clone())).collect::<Vec<_>>(), want);
    assert!(got.iter().all(|(_, _, i)| *i > n) && got.windows(2).all(|p| p[0].2 < p[1].2), "{got:?}");
    assert_eq!(got[..2].iter().map(|g| g.2).collect::<Vec<_>>(), indexes[3..], "the same indexes on every node");
    // The same over a WebSocket, from the start.
    let (ip, port) = ports[(followers[1] - 1) as usize];
    let url = format!("ws://{ip}:{port}/v1/watch?prefix=w:&from_index=1");
    let (mut ws, _) = tungstenite::connect(url).expect("websocket");
    let mut ops = Vec::new();
    while ops.len() < 7 {
        if let tungstenite::Message::Text(t) = ws.read().expect("a message") {
            let e = json(t.as_bytes());
            ops.push(format!("{} {}", e["op"].as_str().unwrap(), e["key"].as_str().unwrap()));
        }
    }
    assert_eq!(ops, ["set w:1", "set w:2", "set w:3", "set w:4", "set w:5", "del w:1", "hset w:h"]);
    c.assert_no_panics();
}

#[test]
fn a_watch_from_a_forgotten_index_is_told_to_read_again() {
    let c = Cluster::start_with(Options {
        nodes: 1,
        http: true,
        extra: vec!["--watch-history".into(), "4".into()],
        ..Options::default()
    });
    let port = (c.nodes[0].ip, c.nodes[0].http_port.unwrap());
    let mut cl = c.client(1);
    for i in 0..10 {
        assert!(cl.must(&["SET", &format!("k{i}"), "v"]).is_ok());
    }
    let (status, body) = send(port, "GET", "/v1/watch?from_index=1", "", b"");
    assert_eq!(status, 410, "{}", String::from_utf8_lossy(&body));
    let j = json(&body);
    assert!(j["error"].as_str().unwrap().contains("compacted"), "{j}");
    let oldest = j["oldest_index"].as_u64().unwrap();
    // From the oldest index it still holds: the last four changes.
    let mut w = SseWatch::open(port, &format!("from_index={oldest}"));
    let keys: Vec<String> =
        (0..4).map(|_| w.next(Duration::from_secs(5)).unwrap()["key"].as_str().unwrap().into()).collect();
    assert_eq!(keys, ["k6", "k7", "k8", "k9"]);
    let (status, _) = send(port, "GET", "/v1/watch?from_index=x", "", b"");
    assert_eq!(status, 400);
    c.assert_no_panics();
}
