//! The `raftis` binary: `raftis server ...`.

use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::info;

use raftis::config::ServerConfig;
use raftis::server::{self, Backend};

#[derive(Parser)]
#[command(
    name = "raftis",
    version,
    about = "A Redis-compatible key-value store replicated with Raft"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one node.
    Server(ServerConfig),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Server(config) => runtime.block_on(run_server(config)),
    }
}

async fn run_server(config: ServerConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.dir)
        .with_context(|| format!("creating data directory {}", config.dir.display()))?;
    let addr = format!("{}:{}", config.bind, config.port);
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        let _ = stop_tx.send(true);
    });
    server::serve(config, listener, Arc::new(Backend::new()), stop_rx).await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
