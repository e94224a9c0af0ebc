//! raftis: a Redis-compatible key-value store whose writes are replicated with Raft.
//!
//! - [`resp`]: the wire formats (requests in, replies out, RESP2 and RESP3).
//! - [`cmd`]: the command table; a request's arguments become a keyspace operation or a
//!   server command, with Redis's exact errors.
//! - [`script`]: Lua scripting: the sandboxed VM, `redis.*`, cjson and bit, conversions.
//! - [`sm`]: the deterministic state machine: the keyspace and `apply(Request) -> Reply`.
//! - [`server`]: the listener, connections (pipelining, MULTI/WATCH) and the backend that
//!   requests are submitted to.
//! - [`base`]: node ids and addresses, and the clock: the vocabulary every layer shares.
//! - [`config`]: flags and environment variables.
//! - [`admin`]: joining a running cluster and changing its membership from outside (RAFT.NODE).

pub mod admin;
pub mod base;
pub mod broken;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod latency;
pub mod local;
pub mod net;
pub mod raft;
pub mod resp;
pub mod script;
pub mod server;
pub mod sm;
