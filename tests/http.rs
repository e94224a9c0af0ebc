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
    // Histograms: the log flushes and the applies are timed.
    assert!(m["raftis_log_flush_duration_seconds_bucket{le=\"+Inf\"}"] >= 1.0);
    assert!(m["raftis_log_flush_duration_seconds_count{}"] >= 1.0);
    assert!(m["raftis_apply_duration_seconds_count{}"] >= 1.0);
    assert_eq!(m["raftis_error_replies_total{code=\"WRONGTYPE\"}"], 1.0);
    assert_eq!(m["raftis_keys{}"], 20.0);
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
