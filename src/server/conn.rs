//! One client connection: reads requests, runs them in order, writes the replies of everything
//! that was in the read buffer with one write (pipelining), and keeps the MULTI/WATCH state.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::debug;

use super::admin;
use super::clients::{lock, ClientHandle};
use super::Shared;
use crate::cmd::{self, Exec};
use crate::resp::{parse_request, Protocol, Reply};
use crate::sm::{Body, Ctx, Op, Request, Watch};

/// A client whose unread input grows past this is disconnected (Redis's client-query-buffer-limit).
const MAX_QUERY_BUFFER: usize = 1024 * 1024 * 1024;

/// Unix time in milliseconds: the `now` stamped on requests.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What one connection remembers between commands.
pub(super) struct Session {
    pub shared: Arc<Shared>,
    pub client: ClientHandle,
    pub id: u64,
    pub proto: Protocol,
    /// Commands queued since MULTI.
    multi: Option<Vec<Vec<Bytes>>>,
    /// A queued command was rejected: EXEC will abort.
    multi_failed: bool,
    watches: Vec<Watch>,
    /// Close the connection once the current replies are written.
    pub close: bool,
    rng: u64,
}

/// Serves one client until it disconnects, sends garbage, or the server shuts down.
pub(super) async fn serve(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    mut shutdown: watch::Receiver<bool>,
) {
    let (Ok(addr), Ok(laddr)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let client = shared.clients.register(addr, laddr);
    let id = lock(&client).id;
    let mut session = Session {
        shared: shared.clone(),
        client,
        id,
        proto: Protocol::Resp2,
        multi: None,
        multi_failed: false,
        watches: Vec::new(),
        close: false,
        rng: id ^ unix_millis().rotate_left(17),
    };
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = BytesMut::with_capacity(16 * 1024);
    'conn: loop {
        loop {
            match parse_request(&mut input) {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => {
                    let reply = session.execute(args).await;
                    reply.encode(session.proto, &mut output);
                    if session.close {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(client = id, error = %e, "protocol error");
                    Reply::err(format!("ERR {e}")).encode(session.proto, &mut output);
                    session.close = true;
                    break;
                }
            }
        }
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                break;
            }
            output.clear();
        }
        if session.close || input.len() > MAX_QUERY_BUFFER {
            break;
        }
        if input.capacity() - input.len() < 4096 {
            input.reserve(16 * 1024);
        }
        tokio::select! {
            read = stream.read_buf(&mut input) => match read {
                Ok(0) | Err(_) => break 'conn,
                Ok(_) => {}
            },
            _ = shutdown.changed() => break 'conn,
        }
    }
    let _ = stream.shutdown().await;
    shared.clients.unregister(id);
}

impl Session {
    fn next_seed(&mut self) -> u64 {
        // xorshift64*: enough to vary RANDOMKEY; the seed travels in the request.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Runs one command and returns its reply.
    async fn execute(&mut self, args: Vec<Bytes>) -> Reply {
        self.shared.stats.commands.fetch_add(1, Ordering::Relaxed);
        let spec = match cmd::resolve(&args) {
            Ok(spec) => spec,
            Err(e) => {
                if self.multi.is_some() {
                    self.multi_failed = true;
                }
                // A rejected EXEC discards the transaction, as Redis's execCommandAbort does.
                if args[0].eq_ignore_ascii_case(b"exec") {
                    self.end_multi();
                    let Reply::Error(text) = e else { return e };
                    let text = text.strip_prefix("ERR ").unwrap_or(&text);
                    return Reply::err(format!(
                        "EXECABORT Transaction discarded because of: {text}"
                    ));
                }
                return e;
            }
        };
        {
            let mut info = lock(&self.client);
            info.last_active = std::time::Instant::now();
            if info.last_cmd != spec.name {
                info.last_cmd = spec.name.to_string();
            }
        }
        if let Some(queue) = &mut self.multi {
            if !matches!(
                spec.name,
                "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
            ) {
                queue.push(args);
                lock(&self.client).multi = queue.len() as i64;
                return Reply::status("QUEUED");
            }
        }
        match spec.exec {
            Exec::Keyspace => self.keyspace(spec.name, &args).await,
            Exec::Server => self.server(spec.name, &args).await,
        }
    }

    async fn keyspace(&mut self, name: &str, args: &[Bytes]) -> Reply {
        let now = unix_millis();
        let op = match cmd::parse_op(name, args, now) {
            Ok(op) => op,
            Err(e) => return e,
        };
        self.run_op(op, now).await
    }

    async fn run_op(&mut self, op: Op, now: u64) -> Reply {
        let seed = self.next_seed();
        if op.is_write() {
            self.submit(Request {
                now,
                seed,
                body: Body::Op(op),
            })
            .await
        } else {
            self.shared.backend.read(&op, Ctx { now, seed })
        }
    }

    async fn submit(&self, req: Request) -> Reply {
        match self.shared.backend.write(req).await {
            Ok(reply) => reply,
            Err(e) => Reply::err(format!("ERR {e}")),
        }
    }

    async fn server(&mut self, name: &str, args: &[Bytes]) -> Reply {
        match name {
            "multi" => {
                if self.multi.is_some() {
                    return Reply::err("ERR MULTI calls can not be nested");
                }
                self.multi = Some(Vec::new());
                self.multi_failed = false;
                lock(&self.client).multi = 0;
                Reply::Ok
            }
            "exec" => self.exec().await,
            "discard" => {
                if self.multi.is_none() {
                    return Reply::err("ERR DISCARD without MULTI");
                }
                self.end_multi();
                Reply::Ok
            }
            "watch" => {
                if self.multi.is_some() {
                    return Reply::err("ERR WATCH inside MULTI is not allowed");
                }
                let now = unix_millis();
                let keys = &args[1..];
                let watches = &mut self.watches;
                self.shared.backend.inspect(|sm| {
                    for key in keys {
                        if !watches.iter().any(|w| w.key == key) {
                            watches.push(sm.keyspace.watch(key.clone(), now));
                        }
                    }
                });
                Reply::Ok
            }
            "unwatch" => {
                self.watches.clear();
                Reply::Ok
            }
            "quit" => {
                self.close = true;
                Reply::Ok
            }
            "reset" => {
                self.end_multi();
                self.proto = Protocol::Resp2;
                let mut info = lock(&self.client);
                info.name.clear();
                info.resp = 2;
                Reply::status("RESET")
            }
            _ => admin::command(self, name, args).await,
        }
    }

    fn end_multi(&mut self) {
        self.multi = None;
        self.multi_failed = false;
        self.watches.clear();
        lock(&self.client).multi = -1;
    }

    /// EXEC: every queued keyspace command goes into one request, applied atomically.
    async fn exec(&mut self) -> Reply {
        let Some(queue) = self.multi.take() else {
            return Reply::err("ERR EXEC without MULTI");
        };
        let failed = self.multi_failed;
        let watches = std::mem::take(&mut self.watches);
        self.end_multi();
        if failed {
            return Reply::err("EXECABORT Transaction discarded because of previous errors.");
        }
        let now = unix_millis();
        // Each queued command's reply: known now (errors, server commands) or the index of
        // its operation in the request.
        let mut slots: Vec<Result<usize, Reply>> = Vec::with_capacity(queue.len());
        let mut ops = Vec::new();
        for args in &queue {
            let spec = match cmd::resolve(args) {
                Ok(spec) => spec,
                Err(e) => {
                    slots.push(Err(e));
                    continue;
                }
            };
            match spec.exec {
                Exec::Keyspace => match cmd::parse_op(spec.name, args, now) {
                    Ok(op) => {
                        ops.push(op);
                        slots.push(Ok(ops.len() - 1));
                    }
                    Err(e) => slots.push(Err(e)),
                },
                Exec::Server => slots.push(Err(Box::pin(self.server(spec.name, args)).await)),
            }
        }
        let mut results = if ops.is_empty() && watches.is_empty() {
            Vec::new()
        } else {
            let seed = self.next_seed();
            match self
                .submit(Request {
                    now,
                    seed,
                    body: Body::Exec { watches, ops },
                })
                .await
            {
                Reply::Array(results) => results,
                other => return other,
            }
        };
        let mut replies = Vec::with_capacity(slots.len());
        for slot in slots {
            replies.push(match slot {
                Ok(i) => std::mem::replace(&mut results[i], Reply::Nil),
                Err(reply) => reply,
            });
        }
        Reply::Array(replies)
    }
}
