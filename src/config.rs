//! Server configuration: command-line flags, each also readable from a `RAFTIS_*` variable.

use std::path::PathBuf;

/// Tunables with their defaults in one place.
pub mod defaults {
    /// Client port (Redis's).
    pub const PORT: u16 = 6379;
    /// Address to listen on.
    pub const BIND: &str = "127.0.0.1";
    /// Data directory.
    pub const DIR: &str = "./data";
    /// Most clients connected at once (Redis's `maxclients`).
    pub const MAXCLIENTS: usize = 10_000;
}

/// `raftis server` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// Address to listen on for clients.
    #[arg(long, env = "RAFTIS_BIND", default_value = defaults::BIND)]
    pub bind: String,
    /// Port to listen on for clients.
    #[arg(long, env = "RAFTIS_PORT", default_value_t = defaults::PORT)]
    pub port: u16,
    /// Directory for the node's data.
    #[arg(long, env = "RAFTIS_DIR", default_value = defaults::DIR)]
    pub dir: PathBuf,
    /// Most clients connected at once; further connections get `-ERR max number of clients reached`.
    #[arg(long, env = "RAFTIS_MAXCLIENTS", default_value_t = defaults::MAXCLIENTS)]
    pub maxclients: usize,
}
