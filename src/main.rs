//! The `raftis` binary: `raftis server ...`.

use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::info;

use raftis::cluster::Topology;
use raftis::config::ServerConfig;
use raftis::raft::node::{Adopted, Node};
use raftis::server::{self, Backend};

#[derive(Parser)]
#[command(name = "raftis", version, about = "A Redis-compatible key-value store replicated with Raft")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one node.
    Server(Box<ServerConfig>),
    /// Runs a whole cluster on this machine (child processes), for trying raftis out.
    Local(raftis::local::LocalConfig),
    /// Lists or changes a running cluster's members (RAFT.NODE on any node).
    Cluster(raftis::admin::ClusterArgs),
    /// Exits 0 if the node at HOST:PORT answers PING, and with --ready if its HTTP `/ready`
    /// answers 200 (a container health check: the image has no shell, curl or redis-cli).
    Health {
        /// Host of the node.
        #[arg(long, env = "RAFTIS_HEALTH_HOST", default_value = "127.0.0.1")]
        host: String,
        /// Client port of the node.
        #[arg(long, env = "RAFTIS_PORT", default_value_t = 6379)]
        port: u16,
        /// Also require `GET /ready` to answer 200 on the node's HTTP port (client port + 1000
        /// unless --http-port says otherwise).
        #[arg(long)]
        ready: bool,
        /// The node's HTTP port, for --ready.
        #[arg(long, env = "RAFTIS_HTTP_PORT")]
        http_port: Option<u16>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        // openraft logs every failed heartbeat; raftis logs elections, leaders and snapshots itself.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,openraft=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    match cli.command {
        Command::Server(config) => runtime.block_on(run_server(*config)),
        Command::Local(config) => runtime.block_on(raftis::local::run(config)),
        Command::Cluster(args) => runtime.block_on(raftis::admin::run(args)),
        Command::Health { host, port, ready, http_port } => runtime.block_on(async {
            health(&host, port).await?;
            if ready {
                let http_port = http_port.or(port.checked_add(1000)).context("no HTTP port")?;
                ready_check(&host, http_port).await?;
            }
            Ok(())
        }),
    }
}

async fn run_server(flags: ServerConfig) -> anyhow::Result<()> {
    let mut cfg = flags.resolve()?;
    let adopted = raftis::raft::node::adopt_identity(&mut cfg, flags.peers.is_some())?;
    let client_addr = format!("{}:{}", cfg.bind, cfg.port);
    let listener =
        TcpListener::bind(&client_addr).await.with_context(|| format!("listening for clients on {client_addr}"))?;
    // A single-node cluster has nobody to talk to: it opens no bus port.
    let bus = if cfg.open_bus {
        let bus_addr = format!("{}:{}", cfg.bind, cfg.bus_port);
        Some(TcpListener::bind(&bus_addr).await.with_context(|| format!("listening for the bus on {bus_addr}"))?)
    } else {
        None
    };
    let http = server::bind_http(&cfg).await?;
    match adopted {
        Adopted::Resumed => {}
        Adopted::New(identity) => raftis::raft::node::write_identity(&cfg.dir, &identity)?,
        Adopted::Join => raftis::admin::join(&mut cfg).await?,
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        let _ = stop_tx.send(true);
    });
    info!(id = cfg.id, cluster = %cfg.cluster_id, nodes = cfg.peers.len(), dir = %cfg.dir.display(), "starting node");
    let topology = Arc::new(Topology::new(cfg.client_addrs()));
    topology.learn(cfg.id, &cfg.announce, raftis::server::unix_millis());
    let node = Node::start(&cfg, bus, topology.clone(), stop_rx.clone()).await?;
    let backend = Arc::new(
        Backend::new(
            node.raft.clone(),
            node.state.clone(),
            topology,
            cfg.id,
            cfg.commit_timeout,
            cfg.election_timeout * 2,
        )
        .with_log(node.log.clone())
        .with_lease(node.lease.clone(), node.read_floor)
        .with_catchup(node.catchup.clone())
        .with_bus(node.bus.clone())
        .with_membership(node.membership.clone()),
    );
    tokio::spawn(raftis::admin::look_after_membership(
        backend.clone(),
        node.membership.clone(),
        cfg.id,
        cfg.joined && !cfg.learner,
    ));
    let served = server::serve(cfg, listener, http, backend, stop_rx).await;
    if let Err(e) = node.raft.shutdown().await {
        tracing::warn!(error = %e, "raft did not shut down cleanly");
    }
    served
}

async fn health(host: &str, port: u16) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let check = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.context("connecting")?;
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").await.context("sending PING")?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).await.context("reading the reply")?;
        anyhow::ensure!(&reply == b"+PONG\r\n", "unexpected reply {:?}", String::from_utf8_lossy(&reply));
        Ok(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), check)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {host}:{port} within 2 s"))?
        .with_context(|| format!("health check of {host}:{port}"))
}

/// `GET /ready` answers 200.
async fn ready_check(host: &str, port: u16) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let check = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.context("connecting")?;
        let request = format!("GET /ready HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.context("sending the request")?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.context("reading the reply")?;
        let text = String::from_utf8_lossy(&reply);
        anyhow::ensure!(
            text.starts_with("HTTP/1.1 200"),
            "not ready: {}",
            text.rsplit("\r\n\r\n").next().unwrap_or("")
        );
        Ok(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), check)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from {host}:{port} within 2 s"))?
        .with_context(|| format!("readiness check of {host}:{port}"))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
