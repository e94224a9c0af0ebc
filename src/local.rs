//! `raftis local`: a whole cluster on this machine, as child processes of one command, with
//! their logs interleaved under a per-node prefix. Ctrl+C stops every node cleanly; running it
//! again resumes from the same data directories. A node that dies (say, `kill -9` of the leader
//! to watch a failover) is started again after a delay, so its catching up can be watched too.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// `raftis local` options.
#[derive(Debug, Clone, clap::Args)]
pub struct LocalConfig {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Client port of node 1; node N listens on base-port + N - 1 (bus: + 10000).
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
    /// Parent of the nodes' data directories (node N uses DIR/N).
    #[arg(long, default_value = "./data")]
    pub dir: PathBuf,
    /// Seconds before a node that died is started again (0: never).
    #[arg(long, default_value_t = 5)]
    pub restart_delay: u64,
    /// Extra flags passed to every `raftis server` (e.g. "--snapshot-every 1000").
    #[arg(long, allow_hyphen_values = true)]
    pub server_args: Option<String>,
}

const COLORS: [&str; 6] = ["\x1b[36m", "\x1b[33m", "\x1b[35m", "\x1b[32m", "\x1b[34m", "\x1b[31m"];

/// Runs the cluster until Ctrl+C or SIGTERM.
pub async fn run(cfg: LocalConfig) -> anyhow::Result<()> {
    anyhow::ensure!((1..=9).contains(&cfg.nodes), "--nodes must be between 1 and 9");
    let exe = std::env::current_exe().context("finding the raftis executable")?;
    let peers: Vec<String> =
        (1..=cfg.nodes).map(|i| format!("{i}@127.0.0.1:{}", cfg.base_port as u64 + i - 1)).collect();
    let peers = peers.join(",");
    println!("raftis local: {} nodes, peers {peers}, data in {}", cfg.nodes, cfg.dir.display());
    println!("try: redis-cli -c -p {} set greeting hello   (Ctrl+C stops the cluster)", cfg.base_port);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (failed_tx, mut failed_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for id in 1..=cfg.nodes {
        let port = cfg.base_port as u64 + id - 1;
        let mut args = vec![
            "server".to_string(),
            "--id".into(),
            id.to_string(),
            "--port".into(),
            port.to_string(),
            "--peers".into(),
            peers.clone(),
            "--dir".into(),
            cfg.dir.join(id.to_string()).display().to_string(),
        ];
        if let Some(extra) = &cfg.server_args {
            args.extend(extra.split_whitespace().map(str::to_string));
        }
        let node = Supervised { exe: exe.clone(), id, args, delay: cfg.restart_delay, failed: failed_tx.clone() };
        tasks.push(tokio::spawn(node.run(stop_rx.clone())));
    }
    let ports: Vec<u16> = (0..cfg.nodes).map(|i| cfg.base_port + i as u16).collect();
    tasks.push(tokio::spawn(watch_members(ports, cfg.nodes, stop_rx.clone())));
    let failed = tokio::select! {
        _ = wait_for_signal() => None,
        id = failed_rx.recv() => id,
    };
    println!("raftis local: stopping every node");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    if let Some(id) = failed {
        anyhow::bail!("node {id} could not start (its error is above); the cluster was stopped");
    }
    println!("raftis local: stopped; run it again to resume from {}", cfg.dir.display());
    Ok(())
}

/// A node that exits with an error code this soon after its first start failed to start (a
/// port in use, a bad flag, a data directory of another cluster): restarting it would only
/// repeat that. (A node killed by a signal is restarted, however soon.)
const START_FAILURE_WINDOW: Duration = Duration::from_secs(3);

/// One node of the cluster and how to run it.
struct Supervised {
    exe: PathBuf,
    id: u64,
    args: Vec<String>,
    /// Seconds before a node that died is started again (0: never).
    delay: u64,
    /// Told this node's id when its first start fails.
    failed: tokio::sync::mpsc::UnboundedSender<u64>,
}

impl Supervised {
    /// Runs the node, restarting it after `delay` seconds whenever it dies, until `stop`.
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let Supervised { exe, id, args, delay, failed } = self;
        let prefix = format!("{}[node{id}]\x1b[0m", COLORS[(id as usize - 1) % COLORS.len()]);
        let mut first = true;
        loop {
            let mut child = match spawn(&exe, &args, &prefix) {
                Ok(child) => child,
                Err(e) => {
                    println!("{prefix} cannot start: {e:#}");
                    let _ = failed.send(id);
                    return;
                }
            };
            println!("{prefix} started (pid {})", child.id().unwrap_or(0));
            let started = std::time::Instant::now();
            tokio::select! {
                status = child.wait() => {
                    // An exit with an error code (not a signal: that is someone's kill -9).
                    let error_exit = status.as_ref().is_ok_and(|s| s.code().is_some_and(|c| c != 0));
                    let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    // Ctrl+C in a terminal reaches every process of the group, the nodes too: a
                    // node that exits on it may be seen before our own handler has set `stop`.
                    let _ = tokio::time::timeout(Duration::from_millis(500), stop.wait_for(|s| *s)).await;
                    if *stop.borrow() {
                        println!("{prefix} stopped ({status})");
                        return;
                    }
                    if first && error_exit && started.elapsed() < START_FAILURE_WINDOW {
                        println!("{prefix} failed to start ({status})");
                        let _ = failed.send(id);
                        return;
                    }
                    if delay == 0 {
                        println!("{prefix} exited ({status})");
                        return;
                    }
                    println!("{prefix} exited ({status}); starting it again in {delay} s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(delay)) => {}
                        _ = stop.changed() => return,
                    }
                }
                _ = stop.changed() => {
                    let status = terminate(&mut child).await;
                    println!("{prefix} stopped ({status})");
                    return;
                }
            }
            first = false;
        }
    }
}

fn spawn(exe: &PathBuf, args: &[String], prefix: &str) -> anyhow::Result<Child> {
    let mut child = Command::new(exe)
        .args(args)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info,openraft=off".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("spawning raftis server")?;
    for out in [
        child.stdout.take().map(Box::new).map(|b| b as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child.stderr.take().map(|b| Box::new(b) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let prefix = prefix.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                println!("{prefix} {line}");
            }
        });
    }
    Ok(child)
}

/// SIGTERM, then SIGKILL if the node has not stopped within 10 seconds; how it ended.
async fn terminate(child: &mut Child) -> String {
    if let Some(pid) = child.id() {
        // SAFETY: sending a signal to our own child's pid has no memory-safety implications.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    let status = match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            let _ = child.kill().await;
            child.wait().await
        }
    };
    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())
}

/// How often `raftis local` asks for the membership.
const MEMBERS_EVERY: Duration = Duration::from_millis(500);

/// Prints the membership once a node lists it, then whenever it changes (a node added, promoted
/// or removed with `raftis cluster ...` or RAFT.NODE, from anywhere): one line naming each member
/// and its role, with the address of a node this command did not start. A leader change alone
/// prints nothing (the nodes' logs say it).
async fn watch_members(ports: Vec<u16>, started: u64, mut stop: watch::Receiver<bool>) {
    let mut shown: Option<Vec<(String, bool, String)>> = None;
    loop {
        for port in &ports {
            let addr = format!("127.0.0.1:{port}");
            let list = tokio::time::timeout(MEMBERS_EVERY, crate::admin::call(&addr, &["RAFT.NODE", "LIST"])).await;
            let Ok(Ok(crate::resp::Reply::Array(members))) = list else { continue };
            let field = crate::admin::member_field;
            // What counts as a change: who is a member, voting or not, at which address.
            let now: Vec<(String, bool, String)> =
                members.iter().map(|m| (field(m, "id"), field(m, "role") != "learner", field(m, "addr"))).collect();
            // A list that names no leader (an election, or the cluster still starting) waits.
            let led = crate::admin::listed_with_a_leader(&members).is_some();
            if !led || shown.as_ref() == Some(&now) {
                break;
            }
            let described: Vec<String> = members
                .iter()
                .map(|m| {
                    let id = field(m, "id");
                    let ours = id.parse::<u64>().is_ok_and(|i| (1..=started).contains(&i));
                    if ours {
                        format!("node {id} ({})", field(m, "role"))
                    } else {
                        format!("node {id} ({}, {})", field(m, "role"), field(m, "addr"))
                    }
                })
                .collect();
            println!("raftis local: members now: {}", described.join(", "));
            shown = Some(now);
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(MEMBERS_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Waits for Ctrl+C (SIGINT) or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
