//! Prometheus as a real component: Debian's `prometheus` scrapes a 3-node cluster with the
//! repository's `contrib/prometheus.yml` (targets and interval set to the test cluster's), and
//! its query API must return `raftis_raft_term` for all three nodes, equal to their INFO.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cluster::{parse_info, poll, Cluster, Options};
use common::{free_port, require, runs_ok};

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on 127.0.0.1:port; the body, if the answer was 200.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

#[test]
fn prometheus_scrapes_every_node_with_the_shipped_config() {
    if !require(
        "prometheus_scrapes_every_node_with_the_shipped_config",
        &[("prometheus", runs_ok("prometheus", &["--version"]))],
    ) {
        return;
    }
    let c = Cluster::start_with(Options { nodes: 3, http: true, ..Options::default() });
    let leader = c.leader(Duration::from_secs(10));
    c.wait_digests_equal(Duration::from_secs(10));
    let targets: Vec<String> = c.nodes.iter().map(|n| format!("\"{}:{}\"", n.ip, n.http_port.unwrap())).collect();
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/prometheus.yml")).unwrap();
    assert!(shipped.contains("- targets: [") && shipped.contains("scrape_interval: 5s"), "{shipped}");
    let config: String = shipped
        .lines()
        .map(|l| match l.find("- targets: [") {
            Some(at) => format!("{}- targets: [{}]", &l[..at], targets.join(", ")),
            None => l.replace("5s", "1s"),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(&config_file, &config).unwrap();
    let port = free_port();
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus"),
    );
    // Every target up, then raftis_raft_term from each.
    let terms = poll(Duration::from_secs(60), || {
        let body = get(port, "/api/v1/query?query=raftis_raft_term")?;
        let j: serde_json::Value = serde_json::from_str(&body).ok()?;
        let results = j["data"]["result"].as_array()?;
        let terms: Vec<(String, f64)> = results
            .iter()
            .map(|r| {
                let instance = r["metric"]["instance"].as_str().unwrap_or_default().to_string();
                (instance, r["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(-1.0))
            })
            .collect();
        (terms.len() == 3).then_some(terms)
    })
    .expect("prometheus never had raftis_raft_term from all three nodes");
    let mut cl = c.client(leader);
    assert!(cl.must(&["INCR", "nope", "extra"]).err().is_some(), "an error reply, for raftis_error_replies_total");
    let term: f64 = parse_info(&cl.must(&["INFO", "raft"]).text().unwrap())["raft_term"].parse().unwrap();
    for n in &c.nodes {
        let instance = format!("{}:{}", n.ip, n.http_port.unwrap());
        let got = terms.iter().find(|(i, _)| *i == instance).unwrap_or_else(|| panic!("{instance} in {terms:?}"));
        assert_eq!(got.1, term, "{instance}");
    }
    let up = get(port, "/api/v1/query?query=sum(up%7Bjob%3D%22raftis%22%7D)").unwrap();
    assert!(up.contains("\"3\""), "{up}");
    // Every metric the shipped Grafana dashboard queries is one raftis serves.
    let leader_node = &c.nodes[(leader - 1) as usize];
    let (ip, http) = (leader_node.ip, leader_node.http_port.unwrap());
    let metrics = {
        let mut s = TcpStream::connect((ip, http)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let grafana =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&grafana).expect("the Grafana dashboard is JSON");
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() > 5));
    let mut names: Vec<&str> = grafana
        .match_indices("raftis_")
        .map(|(at, _)| {
            let rest = &grafana[at..];
            &rest[..rest.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).unwrap_or(rest.len())]
        })
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let family =
            ["_bucket", "_sum", "_count", "_total"].iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(name);
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "the Grafana dashboard queries {name}, which /metrics lacks"
        );
    }
    c.assert_no_panics();
}
