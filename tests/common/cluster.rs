//! A real raftis cluster for tests: N `raftis server` processes, node N bound to 127.0.0.N, each
//! with its own data directory and log file under one temporary directory, optionally behind a
//! fault-injecting bus proxy ([`super::proxy`]); plus a small RESP client, a client that follows
//! `MOVED` like a Redis Cluster client, and a write workload that records every outcome.
//!
//! When a test panics, dropping the [`Cluster`] prints the tail of every node's log and keeps the
//! temporary directory (its path is printed).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::proxy::{ip_of_node, ProxyNet};

/// The raftis binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_raftis");

/// Ports handed out by [`free_port_on`] in this process, never handed out twice.
static PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A port that is free on `ip` now and was not handed out before by this process.
pub fn free_port_on(ip: IpAddr) -> u16 {
    loop {
        let port = TcpListener::bind((ip, 0)).expect("bind a free port").local_addr().unwrap().port();
        if PORTS.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// Polls `cond` every 20 ms until it returns `Some`, or `None` after `timeout`.
pub fn poll<T>(timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// --- RESP client ---------------------------------------------------------------------------------

pub use raftis_chaos::resp::{parse_info, Resp};

/// One connection speaking RESP2.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub addr: String,
}

impl Client {
    /// Connects to `addr` (`host:port`); `timeout` bounds the connect and every read.
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<Client> {
        let sock: SocketAddr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no address for {addr}")))?;
        let stream = TcpStream::connect_timeout(&sock, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Client { reader: BufReader::new(stream.try_clone()?), writer: stream, addr: addr.to_string() })
    }

    /// Sends one command.
    pub fn send(&mut self, args: &[&str]) -> io::Result<()> {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.writer.write_all(&super::encode(&bytes))
    }

    /// Sends commands in one write (a pipeline), without reading replies.
    pub fn send_all(&mut self, cmds: &[&[&str]]) -> io::Result<()> {
        let mut buf = Vec::new();
        for args in cmds {
            let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            buf.extend(super::encode(&bytes));
        }
        self.writer.write_all(&buf)
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&str]) -> io::Result<Resp> {
        self.send(args)?;
        self.read_reply()
    }

    /// Sends one command and panics unless a reply (of any kind) arrives.
    pub fn must(&mut self, args: &[&str]) -> Resp {
        self.call(args).unwrap_or_else(|e| panic!("{args:?} to {}: {e}", self.addr))
    }

    /// Sends all commands at once, then reads their replies in order.
    pub fn pipeline(&mut self, cmds: &[Vec<String>]) -> io::Result<Vec<Resp>> {
        let mut buf = Vec::new();
        for c in cmds {
            let bytes: Vec<&[u8]> = c.iter().map(|a| a.as_bytes()).collect();
            buf.extend(super::encode(&bytes));
        }
        self.writer.write_all(&buf)?;
        cmds.iter().map(|_| self.read_reply()).collect()
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        if !line.ends_with(b"\r\n") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad line {line:?}")));
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> io::Result<Resp> {
        let line = self.line()?;
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {line:?}"));
        let (kind, rest) = line.split_at(1.min(line.len()));
        match kind {
            "+" => Ok(Resp::Simple(rest.to_string())),
            "-" => Ok(Resp::Error(rest.to_string())),
            ":" => rest.parse().map(Resp::Int).map_err(|_| bad("bad integer")),
            "$" => {
                let n: i64 = rest.parse().map_err(|_| bad("bad bulk length"))?;
                if n < 0 {
                    return Ok(Resp::Nil);
                }
                let mut buf = vec![0u8; n as usize + 2];
                self.reader.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Ok(Resp::Bulk(buf))
            }
            "*" => {
                let n: i64 = rest.parse().map_err(|_| bad("bad array length"))?;
                if n < 0 {
                    return Ok(Resp::Nil);
                }
                (0..n).map(|_| self.read_reply()).collect::<io::Result<Vec<_>>>().map(Resp::Array)
            }
            _ => Err(bad("unknown reply type")),
        }
    }
}

// --- a client that follows MOVED -----------------------------------------------------------------

/// What became of a command sent through a [`Router`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A reply (possibly an application error such as WRONGTYPE or EXECABORT).
    Done(Resp),
    /// Certainly not applied: never delivered, or only refused with MOVED / CLUSTERDOWN until
    /// the router gave up.
    Failed(String),
    /// Maybe applied: the connection broke after sending, the read timed out, or the server said
    /// the outcome is unknown.
    Unknown(String),
}

/// Sends commands to the leader as a Redis Cluster client would: starts anywhere, follows
/// `-MOVED`, waits out `-CLUSTERDOWN` and unreachable nodes. Never resends a command whose
/// outcome is unknown.
pub struct Router {
    addrs: Vec<String>,
    target: String,
    conn: Option<Client>,
    /// Time limit of connects and reads.
    pub io_timeout: Duration,
    /// How long to keep retrying refusals before giving up.
    pub give_up_after: Duration,
    /// Stops retrying when set.
    pub stop: Option<Arc<AtomicBool>>,
    /// MOVED replies followed.
    pub redirects: u64,
}

impl Router {
    pub fn new(addrs: Vec<String>) -> Router {
        let target = addrs[0].clone();
        Router {
            addrs,
            target,
            conn: None,
            io_timeout: Duration::from_secs(5),
            give_up_after: Duration::from_secs(15),
            stop: None,
            redirects: 0,
        }
    }

    fn rotate(&mut self) {
        self.conn = None;
        let i = self.addrs.iter().position(|a| *a == self.target).map_or(0, |i| (i + 1) % self.addrs.len());
        self.target = self.addrs[i].clone();
    }

    /// Where the next command goes.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Sends `args` to the leader; see [`Outcome`].
    pub fn call(&mut self, args: &[&str]) -> Outcome {
        let deadline = Instant::now() + self.give_up_after;
        let mut last = String::from("no attempt");
        loop {
            if Instant::now() >= deadline || self.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Outcome::Failed(format!("gave up; last refusal: {last}"));
            }
            if self.conn.is_none() {
                // A cluster client: READWRITE marks the connection cluster-aware, so a follower
                // answers MOVED instead of relaying the session to the leader (proxy mode).
                let connected = Client::connect(&self.target, self.io_timeout).and_then(|mut c| {
                    c.call(&["READWRITE"])?;
                    Ok(c)
                });
                match connected {
                    Ok(c) => self.conn = Some(c),
                    Err(e) => {
                        last = format!("{}: {e}", self.target);
                        self.rotate();
                        thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                }
            }
            let conn = self.conn.as_mut().unwrap();
            let reply = conn.call(args);
            match reply {
                Err(e) => {
                    let what = format!("{}: {e}", self.target);
                    self.rotate();
                    return Outcome::Unknown(what);
                }
                Ok(Resp::Error(e)) if e.starts_with("MOVED ") => {
                    let addr = e.rsplit(' ').next().unwrap_or_default().to_string();
                    last = e.clone();
                    self.redirects += 1;
                    if addr == self.target {
                        // Redirected to itself: wait rather than spin.
                        thread::sleep(Duration::from_millis(20));
                    }
                    self.target = addr;
                    self.conn = None;
                }
                Ok(Resp::Error(e)) if e.starts_with("CLUSTERDOWN") || e.starts_with("TRYAGAIN") => {
                    last = format!("{}: {e}", self.target);
                    self.rotate();
                    thread::sleep(Duration::from_millis(30));
                }
                Ok(Resp::Error(e)) if e.contains("may or may not") => {
                    // This node could not commit: ask another one next time (a stale leader cut off
                    // from the majority never redirects).
                    self.rotate();
                    return Outcome::Unknown(e);
                }
                Ok(r) => return Outcome::Done(r),
            }
        }
    }

    /// Sends `args` and panics unless a non-error reply arrives.
    pub fn must(&mut self, args: &[&str]) -> Resp {
        match self.call(args) {
            Outcome::Done(r) if r.err().is_none() => r,
            other => panic!("{args:?} via {}: {other:?}", self.target),
        }
    }
}

// --- the cluster ---------------------------------------------------------------------------------

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: u64,
    /// Put a fault-injecting proxy in front of every node's bus port.
    pub proxy: bool,
    pub election_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub commit_timeout_ms: u64,
    pub snapshot_every: Option<u64>,
    /// More flags for every node.
    pub extra: Vec<String>,
    /// Give every node an HTTP listener (`Node::http_port`).
    pub http: bool,
    /// Nodes laid out after the first `nodes` but not in --peers: they start with --join.
    pub spare: u64,
    /// The nodes' log filter (`RUST_LOG`) when RAFTIS_TEST_LOG does not set one; `None`: the
    /// node's own default.
    pub log: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 3,
            proxy: false,
            election_timeout_ms: 300,
            heartbeat_ms: 100,
            commit_timeout_ms: 2000,
            snapshot_every: None,
            extra: Vec::new(),
            http: false,
            spare: 0,
            log: None,
        }
    }
}

/// One node of a [`Cluster`].
pub struct Node {
    pub id: u64,
    pub ip: Ipv4Addr,
    /// Client port.
    pub port: u16,
    /// The bus port the other nodes are told (the proxy's, when there is one).
    pub bus_port: u16,
    /// The bus port the node listens on.
    pub listen_bus_port: u16,
    /// Its HTTP port (with `Options::http`).
    pub http_port: Option<u16>,
    pub dir: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
    /// How many times the node was started.
    pub starts: u32,
    /// Starts with `--join` (through `Cluster::join_via`) instead of --peers.
    pub joins: bool,
}

impl Node {
    /// `host:port` for clients.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

/// A running cluster; dropping it kills every node.
pub struct Cluster {
    pub opts: Options,
    tmp: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub nodes: Vec<Node>,
    pub proxy: Option<ProxyNet>,
    pub peers: String,
    /// The node joining nodes ask (default: node 1).
    pub join_via: u64,
}

impl Cluster {
    /// Starts a cluster with default options.
    pub fn start(nodes: u64) -> Cluster {
        Cluster::start_with(Options { nodes, ..Options::default() })
    }

    /// Starts every node and waits until each accepts clients (not for a leader).
    pub fn start_with(opts: Options) -> Cluster {
        let mut c = Cluster::create(opts);
        for id in c.ids() {
            c.spawn(id);
        }
        for id in c.ids() {
            c.wait_up(id, Duration::from_secs(15));
        }
        c
    }

    /// Lays out the cluster (ports, dirs, proxies) without starting a node.
    pub fn create(opts: Options) -> Cluster {
        let tmp = tempfile::Builder::new().prefix("raftis-cluster-").tempdir().expect("temp dir");
        let root = tmp.path().to_path_buf();
        let proxy = opts.proxy.then(ProxyNet::new);
        let mut nodes = Vec::new();
        for id in 1..=opts.nodes + opts.spare {
            let ip = ip_of_node(id);
            let port = free_port_on(IpAddr::V4(ip));
            let listen_bus_port = free_port_on(IpAddr::V4(ip));
            let bus_port = match &proxy {
                Some(p) => p
                    .add(id, IpAddr::V4(ip), SocketAddr::new(IpAddr::V4(ip), listen_bus_port))
                    .expect("start a bus proxy"),
                None => listen_bus_port,
            };
            let dir = root.join(id.to_string());
            let log_path = root.join(format!("node{id}.log"));
            let http_port = opts.http.then(|| free_port_on(IpAddr::V4(ip)));
            nodes.push(Node {
                id,
                ip,
                port,
                bus_port,
                listen_bus_port,
                http_port,
                dir,
                log_path,
                child: None,
                starts: 0,
                joins: id > opts.nodes,
            });
        }
        let peers = nodes
            .iter()
            .filter(|n| !n.joins)
            .map(|n| format!("{}@{}:{}@{}", n.id, n.ip, n.port, n.bus_port))
            .collect::<Vec<_>>()
            .join(",");
        Cluster { opts, tmp: Some(tmp), root, nodes, proxy, peers, join_via: 1 }
    }

    /// The nodes started with --peers (not the spares).
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().filter(|n| n.id <= self.opts.nodes).map(|n| n.id).collect()
    }

    /// Makes node `id` start with --join from now on (a replacement after its directory is lost).
    pub fn set_joining(&mut self, id: u64) {
        self.node_mut(id).joins = true;
    }

    /// Deletes node `id`'s data directory (the node must be down).
    pub fn wipe(&mut self, id: u64) {
        assert!(!self.node(id).is_running(), "node {id} is running");
        let _ = std::fs::remove_dir_all(&self.node(id).dir);
        append_log(&self.node(id).log_path, &format!("===== test harness: node {id}'s data directory deleted"));
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    pub fn addr(&self, id: u64) -> String {
        self.node(id).addr()
    }

    /// Every node's client address, in id order.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr()).collect()
    }

    pub fn running(&self) -> Vec<u64> {
        self.nodes.iter().filter(|n| n.is_running()).map(|n| n.id).collect()
    }

    pub fn proxy(&self) -> &ProxyNet {
        self.proxy.as_ref().expect("cluster started without proxies")
    }

    /// The flags node `id` runs with.
    pub fn args(&self, id: u64) -> Vec<String> {
        let n = self.node(id);
        let o = &self.opts;
        let mut args: Vec<String> = vec![
            "server".into(),
            "--id".into(),
            id.to_string(),
            "--bind".into(),
            n.ip.to_string(),
            "--port".into(),
            n.port.to_string(),
            "--bus-port".into(),
            n.listen_bus_port.to_string(),
            "--dir".into(),
            n.dir.display().to_string(),
            "--election-timeout-ms".into(),
            o.election_timeout_ms.to_string(),
            "--heartbeat-ms".into(),
            o.heartbeat_ms.to_string(),
            "--commit-timeout-ms".into(),
            o.commit_timeout_ms.to_string(),
        ];
        if n.joins {
            args.extend([
                "--join".into(),
                self.addr(self.join_via),
                "--cluster-addr".into(),
                format!("{}:{}@{}", n.ip, n.port, n.bus_port),
            ]);
        } else {
            args.extend(["--peers".into(), self.peers.clone()]);
        }
        if let Some(s) = o.snapshot_every {
            args.extend(["--snapshot-every".into(), s.to_string()]);
        }
        args.extend(o.extra.iter().cloned());
        // No HTTP listener unless the test asks for one: the default port (client port + 1000)
        // could be another test's.
        args.extend(["--http-port".into(), n.http_port.unwrap_or(0).to_string()]);
        args
    }

    /// Starts node `id`'s process (appending to its log file); does not wait.
    pub fn spawn(&mut self, id: u64) {
        let args = self.args(id);
        self.spawn_with(id, args);
    }

    /// Starts node `id`'s process with these flags; does not wait.
    pub fn spawn_with(&mut self, id: u64, args: Vec<String>) {
        assert!(!self.node(id).is_running(), "node {id} is already running");
        // RAFTIS_TEST_LOG, else the cluster's own filter, else the node's default.
        let filter = std::env::var("RAFTIS_TEST_LOG").ok().or(self.opts.log.map(String::from));
        let n = self.node_mut(id);
        n.starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(&n.log_path).expect("open node log");
        writeln!(log, "===== test harness: start #{} of node {id}: raftis {}", n.starts, args.join(" ")).unwrap();
        let err = log.try_clone().unwrap();
        let mut cmd = Command::new(BIN);
        // The node dies with the test thread that started it, even if the test process is killed
        // before it can clean up.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        if let Some(filter) = filter {
            cmd.env("RUST_LOG", filter);
        }
        let child = cmd
            .args(&args)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn raftis");
        n.child = Some(child);
    }

    /// Waits until node `id` accepts client connections; panics (with its log) if it exits or
    /// takes longer than `timeout`.
    pub fn wait_up(&mut self, id: u64, timeout: Duration) {
        let addr: SocketAddr = self.addr(id).parse().unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if crate::common::answers_ping(&addr) {
                return;
            }
            let n = self.node_mut(id);
            if let Some(status) = n.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                n.child = None;
                panic!("node {id} exited during startup ({status}):\n{}", self.log_tail(id, 40));
            }
            if Instant::now() >= deadline {
                panic!("node {id} did not accept clients on {addr} within {timeout:?}:\n{}", self.log_tail(id, 40));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill9(&mut self, id: u64) {
        let n = self.node_mut(id);
        let mut child = n.child.take().unwrap_or_else(|| panic!("node {id} is not running"));
        let _ = child.kill();
        let _ = child.wait();
        append_log(&n.log_path, &format!("===== test harness: node {id} killed with SIGKILL"));
    }

    /// SIGTERMs node `id` and waits (up to `timeout`) for it to exit; returns its status.
    pub fn stop(&mut self, id: u64, timeout: Duration) -> ExitStatus {
        let n = self.node_mut(id);
        let mut child = n.child.take().unwrap_or_else(|| panic!("node {id} is not running"));
        append_log(&n.log_path, &format!("===== test harness: node {id} sent SIGTERM"));
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("node {id} did not exit within {timeout:?} of SIGTERM:\n{}", self.log_tail(id, 40));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts node `id` again with the same flags and directory, and waits until it accepts.
    pub fn restart(&mut self, id: u64) {
        self.spawn(id);
        self.wait_up(id, Duration::from_secs(15));
    }

    /// Whether node `id`'s process exited on its own (reaping it if so).
    pub fn exited(&mut self, id: u64) -> Option<ExitStatus> {
        let n = self.node_mut(id);
        let status = n.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        if status.is_some() {
            n.child = None;
        }
        status
    }

    /// A connection to node `id`.
    pub fn client(&self, id: u64) -> Client {
        Client::connect(&self.addr(id), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to node {id} at {}: {e}", self.addr(id)))
    }

    /// A client that follows MOVED, starting at the first node.
    pub fn router(&self) -> Router {
        Router::new(self.addrs())
    }

    /// `INFO raft` of node `id` as fields, or `None` if it does not answer within a second.
    pub fn info_raft(&self, id: u64) -> Option<HashMap<String, String>> {
        let mut c = Client::connect(&self.addr(id), Duration::from_secs(1)).ok()?;
        match c.call(&["INFO", "raft"]).ok()? {
            Resp::Bulk(b) => Some(parse_info(&String::from_utf8_lossy(&b))),
            _ => None,
        }
    }

    /// A numeric `INFO raft` field of node `id`.
    pub fn raft_field(&self, id: u64, field: &str) -> Option<u64> {
        self.info_raft(id)?.get(field)?.parse().ok()
    }

    /// The leader, if every node of `ids` answers and exactly one of them says it leads and all
    /// of them name it.
    pub fn agreed_leader(&self, ids: &[u64]) -> Option<u64> {
        let infos: Vec<HashMap<String, String>> = ids.iter().map(|&id| self.info_raft(id)).collect::<Option<_>>()?;
        let leaders: Vec<u64> = ids
            .iter()
            .zip(&infos)
            .filter(|(_, i)| i.get("raft_role").map(String::as_str) == Some("leader"))
            .map(|(&id, _)| id)
            .collect();
        let [leader] = leaders[..] else { return None };
        let agree = infos.iter().all(|i| i.get("raft_leader_id").map(String::as_str) == Some(&leader.to_string()));
        agree.then_some(leader)
    }

    /// Waits until the running nodes agree on one leader.
    pub fn leader(&self, timeout: Duration) -> u64 {
        self.leader_among(&self.running(), timeout)
    }

    /// Waits until the nodes `ids` agree on one leader among them; panics after `timeout` with
    /// what each node says.
    pub fn leader_among(&self, ids: &[u64], timeout: Duration) -> u64 {
        poll(timeout, || self.agreed_leader(ids)).unwrap_or_else(|| {
            panic!("nodes {ids:?} did not agree on a leader within {timeout:?}:\n{}", self.describe())
        })
    }

    /// What each node says about the cluster, for failure messages.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let state = if !n.is_running() {
                "down".to_string()
            } else {
                match self.info_raft(n.id) {
                    Some(i) => {
                        let f = |k: &str| i.get(k).cloned().unwrap_or_default();
                        format!(
                            "role={} leader={} term={} applied={} last_log={} snapshot={}",
                            f("raft_role"),
                            f("raft_leader_id"),
                            f("raft_term"),
                            f("raft_applied_index"),
                            f("raft_last_log_index"),
                            f("raft_snapshot_index")
                        )
                    }
                    None => "not answering".to_string(),
                }
            };
            out.push_str(&format!("  node {} ({}): {state}\n", n.id, n.addr()));
        }
        out
    }

    /// `DEBUG DIGEST` of every running node (`None` where it did not answer).
    pub fn digests(&self) -> BTreeMap<u64, Option<String>> {
        self.running()
            .into_iter()
            .map(|id| {
                let d = Client::connect(&self.addr(id), Duration::from_secs(2))
                    .ok()
                    .and_then(|mut c| c.call(&["DEBUG", "DIGEST"]).ok())
                    .and_then(|r| r.text());
                (id, d)
            })
            .collect()
    }

    /// Waits until every node (spares aside) runs and all report the same digest; returns it.
    pub fn wait_digests_equal(&self, timeout: Duration) -> String {
        self.wait_digests_equal_among(&self.ids(), timeout)
    }

    /// Waits until the nodes `ids` run and report the same digest; returns it.
    pub fn wait_digests_equal_among(&self, ids: &[u64], timeout: Duration) -> String {
        let mut last = BTreeMap::new();
        let found = poll(timeout, || {
            last = self.digests();
            last.retain(|id, _| ids.contains(id));
            let set: BTreeSet<&Option<String>> = last.values().collect();
            match set.into_iter().collect::<Vec<_>>()[..] {
                [Some(d)] if last.len() == ids.len() => Some(d.clone()),
                _ => None,
            }
        });
        found.unwrap_or_else(|| {
            panic!("digests did not converge within {timeout:?}: {last:?}\n{}", self.describe());
        })
    }

    /// Node `id`'s whole log.
    pub fn log(&self, id: u64) -> String {
        std::fs::read(&self.node(id).log_path).map(|b| strip_ansi(&String::from_utf8_lossy(&b))).unwrap_or_default()
    }

    /// The last `n` lines of node `id`'s log.
    pub fn log_tail(&self, id: u64, n: usize) -> String {
        let log = self.log(id);
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| match l.char_indices().nth(400) {
                Some((cut, _)) => format!("{}...", &l[..cut]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        format!("----- node {id} log ({}), last {n} lines -----\n{tail}\n", self.node(id).log_path.display())
    }

    /// Panics if a node's log shows a panic.
    pub fn assert_no_panics(&self) {
        for n in &self.nodes {
            let log = self.log(n.id);
            if let Some(pos) = log.find("panicked") {
                let start = log[..pos].rfind("=====").unwrap_or(pos.saturating_sub(2000));
                let end = (pos + 4000).min(log.len());
                panic!("node {} panicked:\n{}", n.id, &log[start..end]);
            }
        }
    }

    /// SIGSTOPs node `id` and waits until it is stopped.
    pub fn pause(&mut self, id: u64) {
        let pid = self.node(id).pid().unwrap_or_else(|| panic!("node {id} is not running"));
        append_log(&self.node(id).log_path, &format!("===== test harness: node {id} paused (SIGSTOP)"));
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGSTOP);
        }
        let stopped = poll(Duration::from_secs(5), || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The state follows the command name in parentheses.
            let state = stat.rsplit(')').next()?.split_whitespace().next()?.to_string();
            (state == "T" || state == "t").then_some(())
        });
        assert!(stopped.is_some(), "node {id} did not stop on SIGSTOP");
    }

    /// SIGCONTs node `id`.
    pub fn resume(&mut self, id: u64) {
        let pid = self.node(id).pid().unwrap_or_else(|| panic!("node {id} is not running"));
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGCONT);
        }
        append_log(&self.node(id).log_path, &format!("===== test harness: node {id} resumed (SIGCONT)"));
    }

    /// Kills every node.
    pub fn kill_all(&mut self) {
        for id in self.running() {
            self.kill9(id);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let panicking = thread::panicking();
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.proxy = None;
        if panicking || std::env::var_os("RAFTIS_TEST_KEEP").is_some() {
            let mut out = String::new();
            if panicking {
                for id in self.ids() {
                    out.push_str(&self.log_tail(id, 40));
                }
            }
            let kept = self.tmp.take().map(|t| t.keep());
            eprintln!("{out}\ncluster files kept in {kept:?}");
        }
    }
}

/// Removes terminal color sequences (`ESC [ ... letter`).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn append_log(path: &Path, line: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Runs `raftis` with `args` until it exits (killed after `timeout`); returns (status or `None`
/// if it had to be killed, stderr+stdout).
pub fn run_raftis(args: &[&str], timeout: Duration) -> (Option<ExitStatus>, String) {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let out = File::create(tmp.path()).unwrap();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawn raftis");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let text = strip_ansi(&String::from_utf8_lossy(&std::fs::read(tmp.path()).unwrap()));
    (status, text)
}

// --- a write workload ----------------------------------------------------------------------------

/// What one writer thread did. Each writer alternates `SET w<t>:<i> <i>` (a fresh key each time)
/// and `INCR w<t>:ctr` on its own counter.
#[derive(Debug, Default, Clone)]
pub struct WriterLog {
    pub thread: usize,
    /// Keys whose SET was acknowledged (+OK): they must hold their value.
    pub set_acked: Vec<u64>,
    /// Keys whose SET has an unknown outcome: either value or absent.
    pub set_unknown: Vec<u64>,
    /// Keys whose SET certainly failed: they must be absent.
    pub set_failed: Vec<u64>,
    pub incr_acked: u64,
    pub incr_unknown: u64,
    /// The last acknowledged INCR reply.
    pub incr_last: i64,
    /// Replies that break the model as they arrive (e.g. INCR going backwards).
    pub anomalies: Vec<String>,
    /// Unexpected error replies (counted as unknown outcomes).
    pub odd_errors: Vec<String>,
}

impl WriterLog {
    pub fn key(thread: usize, i: u64) -> String {
        format!("w{thread}:{i}")
    }

    pub fn counter(thread: usize) -> String {
        format!("w{thread}:ctr")
    }
}

/// Writer threads running against a cluster until stopped.
pub struct Workload {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    handles: Vec<JoinHandle<WriterLog>>,
}

impl Workload {
    /// Starts `threads` writers over the nodes `addrs`, pausing `pause` between operations.
    pub fn start(addrs: Vec<String>, threads: usize, pause: Duration) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let handles = (0..threads)
            .map(|t| {
                let (stop, acked, addrs) = (stop.clone(), acked.clone(), addrs.clone());
                thread::Builder::new()
                    .name(format!("writer-{t}"))
                    .spawn(move || writer(t, addrs, stop, acked, pause))
                    .unwrap()
            })
            .collect();
        Workload { stop, acked, handles }
    }

    /// Acknowledged writes so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` writes were acknowledged in all; false after `timeout`.
    pub fn wait_acked(&self, n: u64, timeout: Duration) -> bool {
        poll(timeout, || (self.acked() >= n).then_some(())).is_some()
    }

    /// Stops the writers and returns what they did.
    pub fn stop(mut self) -> Vec<WriterLog> {
        self.stop.store(true, Ordering::Relaxed);
        std::mem::take(&mut self.handles).into_iter().map(|h| h.join().expect("writer thread panicked")).collect()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn writer(t: usize, addrs: Vec<String>, stop: Arc<AtomicBool>, acked: Arc<AtomicU64>, pause: Duration) -> WriterLog {
    let mut log = WriterLog { thread: t, ..Default::default() };
    let mut router = Router::new(addrs);
    router.stop = Some(stop.clone());
    router.io_timeout = Duration::from_secs(4);
    // Start at different nodes.
    for _ in 0..t {
        router.rotate();
    }
    let counter = WriterLog::counter(t);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        if i % 2 == 1 {
            let key = WriterLog::key(t, i);
            match router.call(&["SET", &key, &i.to_string()]) {
                Outcome::Done(r) if r.is_ok() => {
                    log.set_acked.push(i);
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Done(r) => {
                    log.odd_errors.push(format!("SET {key}: {r}"));
                    log.set_unknown.push(i);
                }
                Outcome::Unknown(_) => log.set_unknown.push(i),
                Outcome::Failed(_) => log.set_failed.push(i),
            }
        } else {
            match router.call(&["INCR", &counter]) {
                Outcome::Done(Resp::Int(v)) => {
                    log.incr_acked += 1;
                    acked.fetch_add(1, Ordering::Relaxed);
                    if v <= log.incr_last {
                        log.anomalies.push(format!("INCR {counter} answered {v} after {}", log.incr_last));
                    }
                    if v as u64 > log.incr_acked + log.incr_unknown {
                        log.anomalies.push(format!(
                            "INCR {counter} answered {v} but only {} were acknowledged and {} unknown",
                            log.incr_acked, log.incr_unknown
                        ));
                    }
                    log.incr_last = v;
                }
                Outcome::Done(r) => {
                    log.odd_errors.push(format!("INCR {counter}: {r}"));
                    log.incr_unknown += 1;
                }
                Outcome::Unknown(_) => log.incr_unknown += 1,
                Outcome::Failed(_) => {}
            }
        }
        if !pause.is_zero() {
            thread::sleep(pause);
        }
    }
    log
}

/// Totals of a workload's logs.
#[derive(Debug, Default)]
pub struct Summary {
    pub acked: u64,
    pub unknown: u64,
    pub failed: u64,
}

/// Checks the writers' logs against the cluster's state read through the leader (linearizable
/// reads): every acknowledged SET holds its value, every certainly failed SET is absent, every
/// counter lies between its acknowledged and acknowledged+unknown INCRs. Panics with the
/// violations.
pub fn verify_writes(cluster: &Cluster, logs: &[WriterLog]) -> Summary {
    let mut router = cluster.router();
    let leader = cluster.leader(Duration::from_secs(10));
    let mut client = cluster.client(leader);
    let mut problems: Vec<String> = Vec::new();
    let mut sum = Summary::default();
    for log in logs {
        problems.extend(log.anomalies.iter().cloned());
        sum.acked += log.set_acked.len() as u64 + log.incr_acked;
        sum.unknown += log.set_unknown.len() as u64 + log.incr_unknown;
        sum.failed += log.set_failed.len() as u64;
        let mut check = |ids: &[u64], must_exist: bool| {
            for chunk in ids.chunks(500) {
                let cmds: Vec<Vec<String>> =
                    chunk.iter().map(|&i| vec!["GET".to_string(), WriterLog::key(log.thread, i)]).collect();
                let mut replies = client.pipeline(&cmds).expect("read back through the leader");
                for _ in 0..5 {
                    // Leadership moved since: ask the new leader.
                    if !replies.iter().any(|r| r.err().is_some()) {
                        break;
                    }
                    client = cluster.client(cluster.leader(Duration::from_secs(10)));
                    replies = client.pipeline(&cmds).expect("read back through the leader");
                }
                for (&i, r) in chunk.iter().zip(replies) {
                    let key = WriterLog::key(log.thread, i);
                    match (must_exist, &r) {
                        (true, Resp::Bulk(v)) if *v == i.to_string().into_bytes() => {}
                        (true, _) => problems.push(format!("acknowledged SET {key} {i} lost: GET answers {r}")),
                        (false, Resp::Nil) => {}
                        (false, _) => problems.push(format!("SET {key} failed with certainty but GET answers {r}")),
                    }
                }
            }
        };
        check(&log.set_acked, true);
        check(&log.set_failed, false);
        let counter = WriterLog::counter(log.thread);
        let value = match router.must(&["GET", &counter]) {
            Resp::Nil => 0,
            r => r.text().and_then(|t| t.parse::<u64>().ok()).unwrap_or_else(|| panic!("GET {counter}: {r}")),
        };
        if value < log.incr_acked || value > log.incr_acked + log.incr_unknown || (value as i64) < log.incr_last {
            problems.push(format!(
                "{counter} = {value}, but {} INCRs were acknowledged (last reply {}) and {} unknown",
                log.incr_acked, log.incr_last, log.incr_unknown
            ));
        }
    }
    let odd: Vec<&String> = logs.iter().flat_map(|l| &l.odd_errors).collect();
    if !odd.is_empty() {
        eprintln!("{} unexpected error replies (counted as unknown), first: {:?}", odd.len(), &odd[..odd.len().min(5)]);
    }
    if !problems.is_empty() {
        panic!(
            "{} violations (acked {}, unknown {}, failed {}):\n{}",
            problems.len(),
            sum.acked,
            sum.unknown,
            sum.failed,
            problems.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
        );
    }
    sum
}
