//! Forwarding a command to the leader over its client port, for commands without keys that a
//! client may send to any node (PUBLISH): a follower relays them instead of redirecting.
//!
//! Connections are pooled per leader address. Each one first names itself [`FORWARDER_NAME`];
//! a node never forwards again what arrives on such a connection, so a request makes at most
//! one hop even while nodes disagree about who leads.

use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resp::Reply;

/// The client name forwarding connections give themselves.
pub const FORWARDER_NAME: &str = "raftis-forwarder";

/// Idle connections kept per node.
const IDLE_PER_NODE: usize = 8;

/// Why a forwarded command got no reply.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Nothing was sent: the command certainly did not run.
    #[error("could not reach the leader at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    /// Sent, but no reply came back: it may or may not have run.
    #[error("no reply from the leader at {addr}: {reason}")]
    NoReply { addr: String, reason: String },
}

/// The client name of connections an operator's tool or a joining node opens: unlike a
/// forwarder's, what such a connection sends may be forwarded to the leader.
pub const ADMIN_NAME: &str = "raftis-admin";

/// Pooled connections to the nodes commands are forwarded to.
#[derive(Debug)]
pub struct Forwarder {
    idle: Mutex<Vec<(String, Conn)>>,
    /// The client name its connections take.
    name: &'static str,
}

impl Default for Forwarder {
    fn default() -> Self {
        Forwarder { idle: Mutex::default(), name: FORWARDER_NAME }
    }
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Forwarder {
    /// Connections named [`ADMIN_NAME`], for tools outside the cluster's nodes.
    pub fn admin() -> Forwarder {
        Forwarder { idle: Mutex::default(), name: ADMIN_NAME }
    }

    /// Sends `commands` pipelined on one connection to the node at `addr` and returns their
    /// replies in order.
    pub async fn call_many(
        &self,
        addr: &str,
        commands: &[Vec<Bytes>],
        timeout: Duration,
    ) -> Result<Vec<Reply>, ForwardError> {
        let unreachable = |reason: String| ForwardError::Unreachable { addr: addr.to_string(), reason };
        let no_reply = |reason: String| ForwardError::NoReply { addr: addr.to_string(), reason };
        let mut conn = match self.take(addr) {
            Some(conn) => conn,
            None => {
                let connect = async {
                    let stream = TcpStream::connect(addr).await?;
                    stream.set_nodelay(true)?;
                    let mut conn = Conn { stream, buf: BytesMut::with_capacity(512) };
                    let name = [Bytes::from_static(b"CLIENT"), Bytes::from_static(b"SETNAME"), Bytes::from(self.name)];
                    match conn.exchange(&name).await? {
                        Reply::Ok => Ok(conn),
                        other => Err(std::io::Error::other(format!("CLIENT SETNAME answered {other:?}"))),
                    }
                };
                match tokio::time::timeout(timeout, connect).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => return Err(unreachable(e.to_string())),
                    Err(_) => return Err(unreachable("timed out".into())),
                }
            }
        };
        match tokio::time::timeout(timeout, conn.exchange_many(commands)).await {
            Ok(Ok(replies)) => {
                self.put(addr, conn);
                Ok(replies)
            }
            Ok(Err(e)) => Err(no_reply(e.to_string())),
            Err(_) => Err(no_reply("timed out".into())),
        }
    }

    /// An idle connection to `addr` that the node has not closed meanwhile (a node that restarted
    /// closed every connection of its previous life: a command sent on one would get no reply,
    /// and the caller could not tell whether it ran).
    fn take(&self, addr: &str) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(i) = idle.iter().rposition(|(a, _)| a == addr) {
            let conn = idle.swap_remove(i).1;
            let mut probe = [0u8; 1];
            match conn.stream.try_read(&mut probe) {
                // Nothing to read: open and quiet, as an idle connection should be.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(conn),
                // Closed (0), broken, or unexpected bytes: drop it.
                _ => continue,
            }
        }
        None
    }

    fn put(&self, addr: &str, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.iter().filter(|(a, _)| a == addr).count() < IDLE_PER_NODE {
            idle.push((addr.to_string(), conn));
        }
    }
}

impl Conn {
    /// Writes one command and reads its reply.
    async fn exchange(&mut self, args: &[Bytes]) -> std::io::Result<Reply> {
        let mut replies = self.exchange_many(std::slice::from_ref(&args.to_vec())).await?;
        Ok(replies.pop().unwrap_or(Reply::Nil))
    }

    /// Writes commands in one go and reads their replies.
    async fn exchange_many(&mut self, commands: &[Vec<Bytes>]) -> std::io::Result<Vec<Reply>> {
        let mut out = BytesMut::new();
        for args in commands {
            Reply::Array(args.iter().cloned().map(Reply::Bulk).collect())
                .encode(crate::resp::Protocol::Resp2, &mut out);
        }
        self.stream.write_all(&out).await?;
        let mut replies = Vec::with_capacity(commands.len());
        while replies.len() < commands.len() {
            replies.push(self.read_reply().await?);
        }
        Ok(replies)
    }

    /// Reads one reply.
    async fn read_reply(&mut self) -> std::io::Result<Reply> {
        loop {
            match redis_protocol::resp2::decode::decode(&self.buf) {
                Ok(Some((frame, used))) => {
                    let _ = self.buf.split_to(used);
                    return Ok(to_reply(frame));
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

fn to_reply(frame: redis_protocol::resp2::types::OwnedFrame) -> Reply {
    use redis_protocol::resp2::types::OwnedFrame;
    match frame {
        OwnedFrame::SimpleString(s) if s == b"OK" => Reply::Ok,
        OwnedFrame::SimpleString(s) => Reply::Status(String::from_utf8_lossy(&s).into_owned()),
        OwnedFrame::Error(e) => Reply::Error(e),
        OwnedFrame::Integer(n) => Reply::Int(n),
        OwnedFrame::BulkString(b) => Reply::Bulk(Bytes::from(b)),
        OwnedFrame::Array(items) => Reply::Array(items.into_iter().map(to_reply).collect()),
        OwnedFrame::Null => Reply::Nil,
    }
}
