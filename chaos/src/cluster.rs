//! A real raftis cluster: N `raftis server` processes, node N bound to 127.0.0.N, each with its
//! own data directory and log file, every bus link behind the fault-injecting [`proxy`].
//! Processes can be killed (SIGKILL), restarted, paused (SIGSTOP) and resumed (SIGCONT); for the
//! membership nemesis, a node's data directory can be wiped and the node started again with
//! `--join` (it asks the cluster to add it back), and the cluster's membership read
//! (`RAFT.NODE LIST`, `INFO raft`).

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::process::{Child, Command};

use crate::proxy::{self, ip_of_node};
use crate::resp::{parse_info, Conn, Resp};

/// How to start the cluster's nodes.
#[derive(Debug, Clone)]
pub struct Options {
    /// The raftis binary.
    pub raftis: PathBuf,
    pub nodes: u64,
    /// Extra flags for every node (timeouts, --snapshot-every).
    pub flags: Vec<String>,
    /// Extra environment for every node (`RAFTIS_BROKEN`).
    pub env: Vec<(String, String)>,
    /// Where data directories and logs go.
    pub dir: PathBuf,
    /// Seeds the proxies' drop decisions.
    pub seed: u64,
}

/// One node's addresses and files.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub id: u64,
    /// Client address (`127.0.0.N:port`).
    pub addr: String,
    /// The bus address the node really listens on (the proxy forwards there).
    pub bus_listen: SocketAddr,
    /// The bus address the other nodes are told (the proxy's).
    pub bus_advertised: SocketAddr,
    pub dir: PathBuf,
    pub log: PathBuf,
}

/// A node's process state as the harness left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Paused,
    Dead,
}

struct Proc {
    child: Option<Child>,
    paused: bool,
    starts: u32,
    /// Started with `--join` (its directory was wiped): every later start uses `--join` too (a
    /// start with a directory that holds the node's identity ignores it).
    joins: bool,
    /// The member whose client address `--join` names (the leader when the join was decided).
    via: Option<u64>,
    /// Removed from the cluster and stopped, directory wiped: restarts leave it alone until the
    /// membership nemesis (or the final heal) brings it back with [`Cluster::rejoin`].
    out: bool,
}

/// One member as `RAFT.NODE LIST` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    /// `leader`, `voter` or `learner`.
    pub role: String,
}

impl Member {
    /// A voter (the leader included).
    pub fn votes(&self) -> bool {
        self.role == "leader" || self.role == "voter"
    }
}

/// The members in a `RAFT.NODE LIST` reply (RESP2: each member a flat field/value array).
pub fn parse_members(r: &Resp) -> Option<Vec<Member>> {
    let Resp::Array(entries) = r else { return None };
    let mut out = Vec::new();
    for e in entries {
        let Resp::Array(fields) = e else { return None };
        let mut id = None;
        let mut role = None;
        for kv in fields.chunks(2) {
            if let [k, v] = kv {
                match k.text().as_deref() {
                    Some("id") => id = v.int_value(),
                    Some("role") => role = v.text(),
                    _ => {}
                }
            }
        }
        out.push(Member { id: u64::try_from(id?).ok()?, role: role? });
    }
    Some(out)
}

/// The running cluster. Dropping it kills every node.
pub struct Cluster {
    pub opts: Options,
    pub nodes: Vec<NodeSpec>,
    pub net: proxy::Net,
    peers: String,
    procs: Mutex<BTreeMap<u64, Proc>>,
    /// Nodes that exited without the harness killing them: (node, exit status).
    crashes: Mutex<Vec<(u64, String)>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in self.procs.lock().unwrap().values_mut() {
            if let Some(c) = p.child.as_mut() {
                let _ = c.start_kill();
            }
        }
    }
}

/// A free port on `ip` now.
fn free_port(ip: IpAddr) -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

impl Cluster {
    /// Lays out the nodes, starts the proxies and every node; does not wait for a leader.
    pub async fn start(opts: Options) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(&opts.dir)?;
        // Every start and restart runs this run's own copy of the binary: a rebuild of
        // target/release/raftis during the run must not mix versions inside one cluster.
        let mut opts = opts;
        let own = opts.dir.join("raftis");
        if std::fs::hard_link(&opts.raftis, &own).is_err() {
            std::fs::copy(&opts.raftis, &own).with_context(|| format!("copy {}", opts.raftis.display()))?;
        }
        opts.raftis = own;
        let mut net = proxy::Net::new(opts.seed);
        let mut nodes = Vec::new();
        for id in 1..=opts.nodes {
            let ip = IpAddr::V4(ip_of_node(id));
            let port = free_port(ip)?;
            let bus_listen = SocketAddr::new(ip, free_port(ip)?);
            let bus_advertised = net.add(id, SocketAddr::new(ip, 0), bus_listen).await?;
            nodes.push(NodeSpec {
                id,
                addr: format!("{ip}:{port}"),
                bus_listen,
                bus_advertised,
                dir: opts.dir.join(format!("node{id}")),
                log: opts.dir.join(format!("node{id}.log")),
            });
        }
        let peers = nodes
            .iter()
            .map(|n| format!("{}@{}@{}", n.id, n.addr, n.bus_advertised.port()))
            .collect::<Vec<_>>()
            .join(",");
        let procs = nodes
            .iter()
            .map(|n| (n.id, Proc { child: None, paused: false, starts: 0, joins: false, via: None, out: false }))
            .collect();
        let c = Cluster { opts, nodes, net, peers, procs: Mutex::new(procs), crashes: Mutex::default() };
        for id in c.ids() {
            c.spawn(id)?;
        }
        Ok(c)
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn node(&self, id: u64) -> &NodeSpec {
        &self.nodes[(id - 1) as usize]
    }

    /// Every node's client address, in id order.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    /// The node with client address `addr`.
    pub fn id_of_addr(&self, addr: &str) -> Option<u64> {
        self.nodes.iter().find(|n| n.addr == addr).map(|n| n.id)
    }

    /// Writes a line into node `id`'s log, so that the log shows what the harness did.
    pub fn note(&self, id: u64, line: &str) {
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&self.node(id).log) {
            let _ = writeln!(f, "===== chaos harness: {line}");
        }
    }

    /// The command line of node `id`: `--peers` (the cluster's first membership), or, for a node
    /// whose directory was wiped, `--join` through member `via` with its own addresses as the
    /// others reach it (`--cluster-addr`: the proxy's bus port) and the same id.
    fn args(&self, id: u64, join_via: Option<u64>) -> Vec<String> {
        let n = self.node(id);
        let (ip, port) = n.addr.rsplit_once(':').expect("host:port");
        let membership: Vec<String> = match join_via {
            None => vec!["--peers".into(), self.peers.clone()],
            Some(via) => vec![
                "--join".into(),
                self.node(via).addr.clone(),
                "--cluster-addr".into(),
                format!("{}@{}", n.addr, n.bus_advertised.port()),
            ],
        };
        let mut args: Vec<String> = vec![
            "server".into(),
            "--id".into(),
            id.to_string(),
            "--bind".into(),
            ip.into(),
            "--port".into(),
            port.into(),
            "--bus-port".into(),
            n.bus_listen.port().to_string(),
            "--dir".into(),
            n.dir.display().to_string(),
            // No HTTP listener: the default port (client port + 1000) could collide.
            "--http-port".into(),
            "0".into(),
        ];
        args.extend(membership);
        args.extend(self.opts.flags.iter().cloned());
        args
    }

    /// The member a joining node `id` asks: the one chosen when the join was decided if it still
    /// runs and is in, else any running node that is in (a node that restarts before it was
    /// added asks again; one that was added ignores `--join`).
    fn join_via(&self, id: u64, procs: &BTreeMap<u64, Proc>) -> u64 {
        let ok = |v: u64| v != id && procs.get(&v).is_some_and(|p| p.child.is_some() && !p.paused && !p.out);
        match procs.get(&id).and_then(|p| p.via) {
            Some(v) if ok(v) => v,
            chosen => self.ids().into_iter().find(|&v| ok(v)).or(chosen).unwrap_or(if id == 1 { 2 } else { 1 }),
        }
    }

    /// Starts node `id`'s process (its log is appended to).
    pub fn spawn(&self, id: u64) -> anyhow::Result<()> {
        let mut procs = self.procs.lock().unwrap();
        let joins = procs.get(&id).context("no such node")?.joins;
        let via = joins.then(|| self.join_via(id, &procs));
        let args = self.args(id, via);
        let p = procs.get_mut(&id).context("no such node")?;
        if p.child.is_some() {
            bail!("node {id} is already running");
        }
        if p.out {
            bail!("node {id} is out of the cluster (removed, directory wiped): rejoin it instead");
        }
        p.starts += 1;
        let log_path = &self.node(id).log;
        let mut log = OpenOptions::new().create(true).append(true).open(log_path)?;
        writeln!(log, "===== chaos harness: start #{} of node {id}: raftis {}", p.starts, args.join(" "))?;
        let err = log.try_clone()?;
        let mut cmd = Command::new(&self.opts.raftis);
        cmd.args(&args)
            .envs(self.opts.env.iter().cloned())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe. The node dies with the harness, even if the
        // harness is killed before it can clean up. (The signal follows the spawning *thread*:
        // nodes are spawned from the runtime's worker threads, which live as long as the run.)
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("spawn {}", self.opts.raftis.display()))?;
        p.child = Some(child);
        p.paused = false;
        Ok(())
    }

    /// Whether node `id` is out of the cluster (removed, stopped, directory wiped).
    pub fn is_out(&self, id: u64) -> bool {
        self.procs.lock().unwrap().get(&id).is_some_and(|p| p.out)
    }

    /// The nodes that are out of the cluster.
    pub fn out_nodes(&self) -> Vec<u64> {
        self.ids().into_iter().filter(|&id| self.is_out(id)).collect()
    }

    /// Takes node `id`, removed from the membership, out: stops it (SIGKILL) and deletes its data
    /// directory, so that it can only come back by joining afresh. Restarts leave it alone.
    pub async fn take_out(&self, id: u64, why: &str) -> anyhow::Result<()> {
        self.resume(id);
        self.kill(id).await;
        self.procs.lock().unwrap().get_mut(&id).expect("node").out = true;
        let dir = &self.node(id).dir;
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("wipe {}", dir.display()))?;
        }
        self.note(id, &format!("out of the cluster ({why}): stopped, data directory {} wiped", dir.display()));
        Ok(())
    }

    /// Starts node `id`, which is out, again with an empty directory and `--join` through member
    /// `via` (same id and addresses): it asks to be added as a learner, catches up and asks to be
    /// promoted. Its later restarts use `--join` too (ignored once its directory holds its identity).
    pub fn rejoin(&self, id: u64, via: u64) -> anyhow::Result<()> {
        {
            let mut procs = self.procs.lock().unwrap();
            let p = procs.get_mut(&id).context("no such node")?;
            p.out = false;
            p.joins = true;
            p.via = Some(via);
        }
        self.note(id, &format!("rejoins the cluster through node {via} (--join)"));
        self.spawn(id)
    }

    /// The harness's view of node `id`; notices (and remembers) a process that exited by itself.
    pub fn state(&self, id: u64) -> State {
        let mut procs = self.procs.lock().unwrap();
        let p = procs.get_mut(&id).expect("node");
        if let Some(c) = p.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                p.child = None;
                p.paused = false;
                self.crashes.lock().unwrap().push((id, status.to_string()));
            }
        }
        match (&p.child, p.paused) {
            (None, _) => State::Dead,
            (Some(_), true) => State::Paused,
            (Some(_), false) => State::Running,
        }
    }

    /// Nodes in `state`.
    pub fn in_state(&self, state: State) -> Vec<u64> {
        self.ids().into_iter().filter(|&id| self.state(id) == state).collect()
    }

    /// Nodes that exited without being killed, with their exit status.
    pub fn crashes(&self) -> Vec<(u64, String)> {
        for id in self.ids() {
            self.state(id);
        }
        self.crashes.lock().unwrap().clone()
    }

    fn pid(&self, id: u64) -> Option<i32> {
        self.procs.lock().unwrap().get(&id)?.child.as_ref()?.id().map(|p| p as i32)
    }

    /// SIGKILLs node `id` and reaps it.
    pub async fn kill(&self, id: u64) {
        if self.state(id) == State::Dead {
            return;
        }
        let child = {
            let mut procs = self.procs.lock().unwrap();
            let p = procs.get_mut(&id).expect("node");
            p.paused = false;
            p.child.take()
        };
        if let Some(mut c) = child {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
        self.note(id, "killed with SIGKILL");
    }

    /// SIGSTOPs node `id`.
    pub fn pause(&self, id: u64) {
        if self.state(id) != State::Running {
            return;
        }
        if let Some(pid) = self.pid(id) {
            // SAFETY: plain signal to a child process we own.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            self.procs.lock().unwrap().get_mut(&id).expect("node").paused = true;
        }
    }

    /// SIGCONTs node `id`.
    pub fn resume(&self, id: u64) {
        if self.state(id) != State::Paused {
            return;
        }
        if let Some(pid) = self.pid(id) {
            // SAFETY: plain signal to a child process we own.
            unsafe { libc::kill(pid, libc::SIGCONT) };
            self.procs.lock().unwrap().get_mut(&id).expect("node").paused = false;
        }
    }

    /// Brings every node back: resumes the paused, restarts the dead (but the nodes that are
    /// out of the cluster: see [`Cluster::rejoin`]), heals every link.
    pub fn heal_all(&self) -> anyhow::Result<()> {
        self.net.heal();
        for id in self.ids() {
            match self.state(id) {
                State::Paused => self.resume(id),
                State::Dead if self.is_out(id) => {}
                State::Dead => self.spawn(id)?,
                State::Running => {}
            }
        }
        Ok(())
    }

    /// Kills every node.
    pub async fn stop_all(&self) {
        for id in self.ids() {
            self.kill(id).await;
        }
    }

    /// One command to node `id`, with a short timeout.
    pub async fn ask(&self, id: u64, args: &[&str], timeout: Duration) -> Option<Resp> {
        let mut c = Conn::connect(&self.node(id).addr, timeout).await.ok()?;
        c.call(args).await.ok()
    }

    /// Node `id`'s `INFO raft` fields.
    pub async fn info_raft(&self, id: u64, timeout: Duration) -> Option<HashMap<String, String>> {
        let r = self.ask(id, &["INFO", "raft"], timeout).await?;
        Some(parse_info(&r.text()?))
    }

    /// The membership as the leader `leader` lists it (`RAFT.NODE LIST`); `None` unless it answers
    /// as the leader (only the leader's own answer names one).
    pub async fn members(&self, leader: u64) -> Option<Vec<Member>> {
        let r = self.ask(leader, &["RAFT.NODE", "LIST"], Duration::from_secs(2)).await?;
        let members = parse_members(&r)?;
        members.iter().any(|m| m.id == leader && m.role == "leader").then_some(members)
    }

    /// The membership as the current leader lists it, with the leader's id.
    pub async fn leader_members(&self) -> Option<(u64, Vec<Member>)> {
        let l = self.leader().await?;
        Some((l, self.members(l).await?))
    }

    /// Running nodes that report a membership change half done (`raft_membership_joint:1`).
    pub async fn joint_nodes(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for id in self.in_state(State::Running) {
            if let Some(info) = self.info_raft(id, Duration::from_millis(500)).await {
                if info.get("raft_membership_joint").map(String::as_str) == Some("1") {
                    out.push(id);
                }
            }
        }
        out
    }

    /// The node that says it leads with the highest term, among running nodes.
    pub async fn leader(&self) -> Option<u64> {
        let mut best: Option<(u64, u64)> = None;
        for id in self.in_state(State::Running) {
            if let Some(info) = self.info_raft(id, Duration::from_millis(300)).await {
                let term = info.get("raft_term").and_then(|t| t.parse().ok()).unwrap_or(0);
                if info.get("raft_role").map(String::as_str) == Some("leader") && best.is_none_or(|(_, t)| term > t) {
                    best = Some((id, term));
                }
            }
        }
        best.map(|(id, _)| id)
    }

    /// Waits up to `timeout` for a leader.
    pub async fn wait_leader(&self, timeout: Duration) -> Option<u64> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader().await {
                return Some(l);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every node's `DEBUG DIGEST` and applied index (`None` where the node did not answer).
    pub async fn digests(&self) -> BTreeMap<u64, Option<(String, u64)>> {
        let mut out = BTreeMap::new();
        for id in self.ids() {
            let digest = self.ask(id, &["DEBUG", "DIGEST"], Duration::from_secs(2)).await.and_then(|r| r.text());
            let applied = self
                .info_raft(id, Duration::from_secs(2))
                .await
                .and_then(|i| i.get("raft_applied_index").and_then(|v| v.parse().ok()));
            out.insert(id, digest.zip(applied));
        }
        out
    }

    /// Node `id`'s log so far.
    pub fn log(&self, id: u64) -> String {
        std::fs::read(&self.node(id).log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// Lines of every node's log that report a panic: (node, line).
    pub fn panics(&self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for id in self.ids() {
            for line in self.log(id).lines().filter(|l| l.contains("panicked at")) {
                out.push((id, line.to_string()));
            }
        }
        out
    }

    /// The root directory of the cluster's files.
    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_raft_node_list_reply() {
        let entry = |id: i64, role: &str| {
            Resp::Array(vec![
                Resp::Bulk(b"id".to_vec()),
                Resp::Int(id),
                Resp::Bulk(b"addr".to_vec()),
                Resp::Bulk(b"127.0.0.1:7001".to_vec()),
                Resp::Bulk(b"bus".to_vec()),
                Resp::Bulk(b"127.0.0.1:17001".to_vec()),
                Resp::Bulk(b"role".to_vec()),
                Resp::Bulk(role.as_bytes().to_vec()),
                Resp::Bulk(b"match_index".to_vec()),
                Resp::Int(-1),
            ])
        };
        let list = parse_members(&Resp::Array(vec![entry(1, "leader"), entry(4, "learner")])).unwrap();
        assert_eq!(list, vec![Member { id: 1, role: "leader".into() }, Member { id: 4, role: "learner".into() }]);
        assert!(list[0].votes() && !list[1].votes());
        assert!(parse_members(&Resp::Error("CLUSTERDOWN".into())).is_none());
    }
}
