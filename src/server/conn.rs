//! One client connection: reads requests, runs them in order, writes the replies of everything
//! that was in the read buffer with one write (pipelining), and keeps the MULTI/WATCH state.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::debug;

use super::backend::BackendError;
use super::clients::{lock, ClientHandle};
use super::commands::{self, Command, NodeCommand, Run};
use super::pubsub::{Kind, Subscriptions};
use super::Shared;
use crate::base::unix_millis;
use crate::cluster;
use crate::cmd::{Ctx, Meta, Op};
use crate::resp::{parse_request, Protocol, Reply};
use crate::sm::{Body, Request, Watch};

/// A client whose unread input grows past this is disconnected (Redis's client-query-buffer-limit).
const MAX_QUERY_BUFFER: usize = 1024 * 1024 * 1024;
/// Most commands taken from the read buffer in one round (their replies go out in one write).
const MAX_PIPELINE: usize = 1024;

/// What one connection remembers between commands.
pub struct Session {
    pub shared: Arc<Shared>,
    pub client: ClientHandle,
    pub id: u64,
    pub proto: Protocol,
    /// Commands queued since MULTI.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A queued command was rejected: EXEC will abort.
    pub multi_failed: bool,
    pub watches: Vec<Watch>,
    /// Close the connection once the current replies are written.
    pub close: bool,
    /// READONLY: a follower answers reads from its own (possibly stale) state.
    pub readonly: bool,
    /// A linearizability check has completed since the current pipeline was read: every command
    /// in it arrived before that check started, so the check covers all of its reads.
    linearized: bool,
    rng: u64,
    /// Pub/sub subscriptions, and the messages waiting for this connection.
    pub subs: Subscriptions,
    /// CLIENT REPLY OFF: replies are not sent.
    pub reply_off: bool,
    /// CLIENT REPLY SKIP: how many more replies are not sent (its own and the next).
    pub reply_skip: u8,
    /// The client sent CLUSTER, READONLY, READWRITE or ASKING: it follows MOVED by itself and
    /// is never proxied.
    pub cluster_aware: bool,
    /// The connection named itself a forwarder (another node relaying a client): it is never
    /// relayed again, and keeps that mark when the relayed client's own name replaces it.
    pub forwarder: bool,
    /// Set by the pipeline when the session moves to the leader (see `proxy`).
    tunnel: Option<super::proxy::Tunnel>,
}

/// Serves one client until it disconnects, sends garbage, or the server shuts down.
pub(super) async fn serve(shared: Arc<Shared>, mut stream: TcpStream, mut shutdown: watch::Receiver<bool>) {
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
        readonly: false,
        linearized: false,
        rng: id ^ unix_millis().rotate_left(17),
        subs: Subscriptions::default(),
        reply_off: false,
        reply_skip: 0,
        cluster_aware: false,
        forwarder: false,
        tunnel: None,
    };
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = BytesMut::with_capacity(16 * 1024);
    let mut commands = Vec::new();
    'conn: loop {
        // Every complete command already received runs, in order; consecutive writes go to Raft
        // as one entry, and all the replies leave in one write.
        let mut protocol_error = None;
        while commands.len() < MAX_PIPELINE {
            match parse_request(&mut input) {
                Ok(Some(args)) if args.is_empty() => continue,
                Ok(Some(args)) => commands.push(args),
                Ok(None) => break,
                Err(e) => {
                    debug!(client = id, error = %e, "protocol error");
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        let full = commands.len() >= MAX_PIPELINE;
        // Messages that arrived before these commands were read go out before their replies.
        if session.take_messages(&mut output).is_err() {
            break;
        }
        session.run_pipeline(std::mem::take(&mut commands), &mut output, &stream).await;
        if let Some(tunnel) = session.tunnel.take() {
            // The replies of the commands before it go first.
            if !output.is_empty() {
                if stream.write_all(&output).await.is_err() {
                    break;
                }
                output.clear();
            }
            let name = lock(&session.client).name.clone();
            match super::proxy::reach_leader(&shared, tunnel.target.clone(), &name, session.proto).await {
                super::proxy::Reached::Tunnel(leader, conn) => {
                    debug!(client = id, leader, "proxying the session to the leader");
                    super::proxy::relay(&shared, &mut stream, conn, leader, tunnel.pending, &input, shutdown.clone())
                        .await;
                    break 'conn;
                }
                super::proxy::Reached::Here => {
                    // This node leads now (or was removed, and refuses them): the commands run here.
                    session.run_pipeline(tunnel.pending, &mut output, &stream).await;
                }
                super::proxy::Reached::Nobody => {
                    // A plain client cannot follow MOVED: it sees the connection close, as when a
                    // Redis primary dies, and retries.
                    debug!(client = id, "no leader to relay to: closing the connection");
                    break 'conn;
                }
            }
        }
        // Messages that arrived meanwhile follow the replies.
        if session.take_messages(&mut output).is_err() {
            break;
        }
        if let Some(e) = protocol_error {
            if !session.close {
                Reply::err(format!("ERR {e}")).encode(session.proto, &mut output);
                session.close = true;
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
        if full {
            // More complete commands than one pipeline round takes: run them before reading.
            continue;
        }
        if input.capacity() - input.len() < 4096 {
            input.reserve(16 * 1024);
        }
        tokio::select! {
            read = stream.read_buf(&mut input) => match read {
                Ok(0) | Err(_) => break 'conn,
                Ok(_) => {}
            },
            message = next_message(&mut session.subs) => {
                // Over the output limit: the hub dropped this subscriber.
                let Some(message) = message else { break 'conn };
                message.encode(session.proto, &mut output);
                if session.take_messages(&mut output).is_err() || stream.write_all(&output).await.is_err() {
                    break 'conn;
                }
                output.clear();
            }
            _ = shutdown.changed() => break 'conn,
        }
    }
    let _ = stream.shutdown().await;
    shared.pubsub.detach(id, &mut session.subs);
    shared.clients.unregister(id);
}

/// The next message for a subscribed connection (never, for one that never subscribed);
/// `None` once the hub dropped it.
async fn next_message(subs: &mut Subscriptions) -> Option<crate::resp::Reply> {
    match subs.inbox.as_mut() {
        Some(inbox) => inbox.recv().await,
        None => std::future::pending().await,
    }
}

/// What the gate decided for one command.
enum Step {
    /// Answered already: an error, QUEUED, a redirect.
    Reply(Reply),
    /// A data command that writes: joins the pending batch of writes.
    Write(Request, u16),
    /// A data command that reads: answered after the linearizability check.
    Read(Op, u16, Ctx),
    /// A command the node runs.
    Node(&'static NodeCommand),
    /// A blocking command (outside MULTI): its operation, the keys it pops from, its timeout.
    Block(Box<Blocking>),
    /// XREAD with BLOCK (outside MULTI): its operation, slot and timeout (ms, `None`: forever).
    BlockRead(Op, u16, Option<u64>),
    /// PUBLISH (SPUBLISH: `true`) on a follower: relayed to the leader with the ones next to it.
    Relay(bool),
}

/// A command a follower relays to the leader.
struct Relayed {
    args: Vec<Bytes>,
    shard: bool,
    name: &'static str,
}

/// What a client is told when relaying to the leader failed.
fn relay_error(e: &super::forward::ForwardError) -> Reply {
    match e {
        super::forward::ForwardError::Unreachable { .. } => {
            Reply::err(format!("CLUSTERDOWN The cluster is down ({e})"))
        }
        _ => Reply::err(format!("ERR {e}: the message may or may not have been published")),
    }
}

/// A blocking command about to run.
struct Blocking {
    op: Op,
    slot: u16,
    sources: Vec<Bytes>,
    /// Milliseconds; `None` waits forever.
    timeout: Option<u64>,
    block: crate::cmd::Block,
}

/// How often a blocked client checks that this node still leads.
const BLOCKED_LEADER_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Returns when the peer has closed the connection (or it failed); never while unread input
/// is waiting (that client is alive and will be answered).
async fn peer_closed(peer: &TcpStream) {
    let mut byte = [0u8; 1];
    match peer.peek(&mut byte).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

impl Session {
    fn next_seed(&mut self) -> u64 {
        // xorshift64*: the seed travels in the request, so every replica draws the same.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Runs a pipeline of commands in order, encoding each reply into `out`. Consecutive
    /// writes (outside MULTI) are proposed together as one log entry; anything else first waits
    /// for the writes before it, so every command sees the effects of the ones sent before it.
    async fn run_pipeline(&mut self, commands: Vec<Vec<Bytes>>, out: &mut BytesMut, peer: &TcpStream) {
        self.linearized = false;
        let mut batch: Vec<(Request, u16, &'static str)> = Vec::new();
        let mut relayed: Vec<Relayed> = Vec::new();
        let mut commands = commands.into_iter();
        while let Some(args) = commands.next() {
            if self.close {
                break;
            }
            if let Some(target) = self.proxy_target(&args) {
                self.flush_writes(&mut batch, out).await;
                self.flush_relayed(&mut relayed, out).await;
                let pending = std::iter::once(args).chain(commands).collect();
                self.tunnel = Some(super::proxy::Tunnel { target, pending });
                return;
            }
            let started = std::time::Instant::now();
            let (name, step) = self.gate(&args);
            if !matches!(step, Step::Write(..)) {
                self.flush_writes(&mut batch, out).await;
            }
            if !matches!(step, Step::Relay(_)) {
                self.flush_relayed(&mut relayed, out).await;
            }
            let reply = match step {
                Step::Write(req, slot) => {
                    batch.push((req, slot, name.unwrap_or_default()));
                    continue;
                }
                Step::Relay(shard) => {
                    relayed.push(Relayed { args, shard, name: name.unwrap_or_default() });
                    continue;
                }
                Step::Reply(reply) => reply,
                Step::Read(op, slot, ctx) => self.read(&op, slot, ctx).await,
                Step::Node(command) => self.run_node(command, &args).await,
                Step::Block(blocking) => self.block(*blocking, peer).await,
                Step::BlockRead(op, slot, timeout) => self.block_read(op, slot, timeout, peer).await,
            };
            if let Some(name) = name {
                self.shared.stats.record(name, &reply, started.elapsed());
            }
            self.emit(&reply, out);
        }
        self.flush_writes(&mut batch, out).await;
        self.flush_relayed(&mut relayed, out).await;
    }

    /// Relays the pending PUBLISHes of a follower to the leader, pipelined on one connection,
    /// and encodes their replies (each counting this node's receivers).
    async fn flush_relayed(&mut self, relayed: &mut Vec<Relayed>, out: &mut BytesMut) {
        if relayed.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let pending = std::mem::take(relayed);
        let backend = self.shared.backend.clone();
        let replies: Vec<Reply> = match backend.leader().and_then(|id| backend.addr_of(id)) {
            None => pending.iter().map(|_| cluster::cluster_down()).collect(),
            Some(addr) => {
                let commands: Vec<Vec<Bytes>> = pending.iter().map(|r| r.args.clone()).collect();
                let timeout = self.shared.config.commit_timeout;
                match self.shared.forwarder.call_many(&addr, &commands, timeout).await {
                    Ok(replies) => replies,
                    Err(e) => {
                        let reply = relay_error(&e);
                        pending.iter().map(|_| reply.clone()).collect()
                    }
                }
            }
        };
        let took = started.elapsed() / pending.len() as u32;
        for (r, reply) in pending.into_iter().zip(replies) {
            let reply = match reply {
                Reply::Int(_) => Reply::Int(self.shared.pubsub.receivers(&r.args[1], r.shard)),
                other => other,
            };
            self.shared.stats.record(r.name, &reply, took);
            self.emit(&reply, out);
        }
    }

    /// The one gate every command passes, whichever way it then runs: resolution and arity,
    /// the client's last command, MULTI queueing (with the redirect a queued command gets), and
    /// parsing a data command into its operation. Returns the command's name for the
    /// statistics (`None` when rejection already counted it).
    fn gate(&mut self, args: &[Bytes]) -> (Option<&'static str>, Step) {
        let command = match commands::resolve(args) {
            Ok(command) => command,
            Err(e) => {
                let reply = Reply::from(e);
                let name = commands::lookup(&args[0]).map(|c| c.name());
                self.shared.stats.record_rejected(name, &reply);
                return (None, Step::Reply(self.rejected(args, reply)));
            }
        };
        let name = command.name();
        self.touch_client(name);
        if super::proxy::marks_cluster_aware(name) {
            self.cluster_aware = true;
        }
        if self.shared.memory.out_of_memory() && self.rejects_for_memory(command) {
            let reply = Reply::err(super::memory::OOM_ERROR);
            self.shared.stats.record_rejected(Some(name), &reply);
            return (None, Step::Reply(self.rejected(args, reply)));
        }
        if self.proto == Protocol::Resp2
            && self.subs.active()
            && !commands::pubsub::ALLOWED_WHILE_SUBSCRIBED.contains(&name)
        {
            return (
                Some(name),
                Step::Reply(Reply::err(format!(
                    "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are \
                     allowed in this context"
                ))),
            );
        }
        if self.multi.is_some() && command.meta().flags.contains(&"no_multi") {
            let reply = Reply::err("ERR Command not allowed inside a transaction");
            self.shared.stats.record_rejected(Some(name), &reply);
            return (None, Step::Reply(self.rejected(args, reply)));
        }
        if self.multi.is_some() && !matches!(name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset") {
            return (Some(name), Step::Reply(self.queue(command.meta(), args)));
        }
        let step = match command {
            // On the leader, a PUBLISH joins the pending writes (one entry for a pipeline); a
            // follower relays it (unless it came relayed: then it is refused, see `publish`).
            Command::Node(_) if commands::pubsub::is_publish(name).is_some() && self.shared.backend.is_leader() => {
                let shard = commands::pubsub::is_publish(name) == Some(true);
                let seed = self.next_seed();
                Step::Write(Request { now: unix_millis(), seed, body: Body::Op(publish_op(args, shard)) }, 0)
            }
            Command::Node(_) if commands::pubsub::is_publish(name).is_some() && !self.is_forwarder() => {
                Step::Relay(commands::pubsub::is_publish(name) == Some(true))
            }
            Command::Node(node) => Step::Node(node),
            Command::Data(data) => {
                let now = unix_millis();
                match (data.parse)(args, now) {
                    Err(e) => Step::Reply(e.into()),
                    Ok(op) => {
                        let op = self.stamp_memory(op);
                        let ctx = Ctx { now, seed: self.next_seed() };
                        let slot = first_key_slot(command.meta(), args);
                        if let Op::Stream(crate::cmd::streams::StreamOp::Read { block: Some(ms), .. }) = &op {
                            let timeout = (*ms > 0).then_some(*ms);
                            return (Some(name), Step::BlockRead(op, slot, timeout));
                        }
                        if let Some(block) = data.block {
                            let sources = block.sources(&data.meta, args);
                            // The parser checked the timeout already.
                            let timeout = crate::cmd::timeout_millis(block.timeout_arg(args)).unwrap_or(None);
                            return (Some(name), Step::Block(Box::new(Blocking { op, slot, sources, timeout, block })));
                        }
                        if op.is_write() {
                            Step::Write(Request { now, seed: ctx.seed, body: Body::Op(op) }, slot)
                        } else {
                            Step::Read(op, slot, ctx)
                        }
                    }
                }
            }
        };
        (Some(name), step)
    }

    /// Whether `command` is refused while this node is over `maxmemory` (as Redis's
    /// processCommand does): a command that may use memory; inside MULTI, anything but EXEC,
    /// DISCARD, QUIT and RESET (queueing takes memory too); an EXEC with such a command queued.
    /// Only the leader refuses: a follower redirects writes anyway.
    fn rejects_for_memory(&self, command: Command) -> bool {
        let name = command.name();
        let rejects = if let Some(queue) = &self.multi {
            match name {
                "exec" => {
                    queue.iter().any(|q| commands::resolve(q).is_ok_and(|c| super::memory::may_use_memory(c.meta())))
                }
                "discard" | "quit" | "reset" => false,
                _ => true,
            }
        } else {
            super::memory::may_use_memory(command.meta())
        };
        rejects && self.shared.backend.is_leader()
    }

    /// A script run accepted while this node is over `maxmemory` carries that state into the
    /// log (see `ScriptOp::OverMemory`); any other operation is as parsed.
    fn stamp_memory(&self, op: Op) -> Op {
        match op {
            Op::Script(script) if self.shared.memory.out_of_memory() && self.shared.backend.is_leader() => {
                Op::Script(script.over_memory())
            }
            op => op,
        }
    }

    /// Queues a command inside MULTI. As in Redis Cluster, a command this node cannot serve is
    /// redirected while queueing, and EXEC then aborts.
    fn queue(&mut self, meta: &Meta, args: &[Bytes]) -> Reply {
        if let Some(redirect) = self.redirect_if_not_leader(meta, args) {
            self.multi_failed = true;
            return redirect;
        }
        let queue = self.multi.as_mut().expect("in MULTI");
        queue.push(args.to_vec());
        lock(&self.client).multi = queue.len() as i64;
        Reply::status("QUEUED")
    }

    async fn run_node(&mut self, command: &'static NodeCommand, args: &[Bytes]) -> Reply {
        match command.run {
            Run::Sync(f) => f(self, args),
            Run::Async(f) => f(self, args).await,
        }
    }

    /// Proposes the pending writes as one entry and encodes their replies.
    async fn flush_writes(&mut self, batch: &mut Vec<(Request, u16, &'static str)>, out: &mut BytesMut) {
        if batch.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let mut reqs = Vec::with_capacity(batch.len());
        let mut meta = Vec::with_capacity(batch.len());
        for (req, slot, name) in batch.drain(..) {
            meta.push((slot, name, published(&req)));
            reqs.push(req);
        }
        let result = self.shared.backend.write_batch(reqs).await;
        self.wake_blocked();
        let took = started.elapsed() / meta.len() as u32;
        for (i, (slot, name, published)) in meta.into_iter().enumerate() {
            let reply = match &result {
                Ok(replies) => match (replies.get(i).cloned().unwrap_or(Reply::Nil), published) {
                    (Reply::Int(_), Some((channel, shard))) => {
                        Reply::Int(self.shared.pubsub.receivers(&channel, shard))
                    }
                    (reply, _) => reply,
                },
                Err(e) => self.error_reply(e.clone(), slot),
            };
            self.shared.stats.record(name, &reply, took);
            self.emit(&reply, out);
        }
    }

    fn touch_client(&self, name: &'static str) {
        let mut info = lock(&self.client);
        info.last_active = std::time::Instant::now();
        if info.last_cmd != name {
            info.last_cmd = name.to_string();
        }
    }

    /// The reply to a command rejected before it ran.
    fn rejected(&mut self, args: &[Bytes], e: Reply) -> Reply {
        if self.multi.is_some() {
            self.multi_failed = true;
        }
        // A rejected EXEC discards the transaction, as Redis's execCommandAbort does.
        if args[0].eq_ignore_ascii_case(b"exec") {
            self.end_multi();
            let Reply::Error(text) = e else { return e };
            let text = text.strip_prefix("ERR ").unwrap_or(&text);
            return Reply::err(format!("EXECABORT Transaction discarded because of: {text}"));
        }
        e
    }

    /// Answers a read: from the local state once it is known to be current (the leader, after
    /// the linearizability check), or as it is after READONLY on a follower.
    async fn read(&mut self, op: &Op, slot: u16, ctx: Ctx) -> Reply {
        let stale_reads = crate::broken::is(crate::broken::Mode::StaleReads);
        if !stale_reads && (!self.readonly || self.shared.backend.is_leader()) {
            if let Err(e) = self.linearize().await {
                return self.error_reply(e, slot);
            }
        }
        self.shared.backend.read_local(op, ctx)
    }

    /// Proposes one operation a node command builds (CONFIG SET), stamped as a data command's
    /// is; on a follower the reply is MOVED to the leader.
    pub(crate) async fn write_op(&mut self, op: Op) -> Reply {
        let now = unix_millis();
        let seed = self.next_seed();
        self.submit(Request { now, seed, body: Body::Op(op) }, 0).await
    }

    /// Answers one read-only operation a node command builds (SCRIPT EXISTS) as a data read
    /// is answered: after the linearizability check, or locally after READONLY.
    pub(crate) async fn read_op(&mut self, op: Op) -> Reply {
        let ctx = Ctx { now: unix_millis(), seed: self.next_seed() };
        self.read(&op, 0, ctx).await
    }

    async fn submit(&self, req: Request, slot: u16) -> Reply {
        let result = self.shared.backend.write(req).await;
        self.wake_blocked();
        match result {
            Ok(reply) => reply,
            Err(e) => self.error_reply(e, slot),
        }
    }

    /// After a write: wakes the first client blocked on each key that now holds something.
    fn wake_blocked(&self) {
        let blocked = &self.shared.blocked;
        if blocked.len() == 0 {
            return;
        }
        let keys = blocked.keys();
        let now = unix_millis();
        let ready: Vec<Bytes> =
            self.shared.backend.inspect(|a| keys.into_iter().filter(|k| a.sm.keyspace.get(k, now).is_some()).collect());
        blocked.wake(&ready);
    }

    /// Runs a blocking command. Its operation is proposed (a committed pop, like any write)
    /// when one of its keys holds something; otherwise the client waits on this node, the
    /// leader, until a write gives its keys something, its timeout passes, the node stops
    /// leading (the client is then redirected to the new leader, where it blocks again), or the
    /// client disconnects. Clients waiting on a key are tried first come, first served.
    async fn block(&mut self, b: Blocking, peer: &TcpStream) -> Reply {
        let shared = self.shared.clone();
        let deadline = b.timeout.map(|ms| tokio::time::Instant::now() + std::time::Duration::from_millis(ms));
        let kind = match b.op {
            Op::ZSet(_) => crate::sm::Kind::ZSet,
            _ => crate::sm::Kind::List,
        };
        let notify = shared.blocked.register(self.id, &b.sources);
        lock(&self.client).blocked = true;
        let mut first = true;
        let nil = if b.block.nil_array { Reply::NilArray } else { Reply::Nil };
        let reply = loop {
            if let Some(reply) = self.unblocked(&nil) {
                break reply;
            }
            let now = unix_millis();
            // The first look pops from (or reports WRONGTYPE for) any existing key, as Redis's
            // does; later ones wait for a key of the command's type.
            let ready = shared.backend.inspect(|a| {
                b.sources.iter().any(|k| a.sm.keyspace.get(k, now).is_some_and(|e| first || e.value.kind() == kind))
            });
            first = false;
            if ready {
                let req = Request { now, seed: self.next_seed(), body: Body::Op(b.op.clone()) };
                let reply = self.submit(req, b.slot).await;
                if !matches!(reply, Reply::Nil | Reply::NilArray) {
                    break reply;
                }
            }
            if !shared.backend.is_leader() {
                break self.stepped_down(b.slot);
            }
            if let Some(reply) = self.wait_blocked(&notify, deadline, peer, &nil).await {
                break reply;
            }
        };
        lock(&self.client).blocked = false;
        let headed = shared.blocked.unregister(self.id, &b.sources);
        shared.blocked.wake(&headed);
        reply
    }

    /// XREAD with BLOCK: answered at once when a stream has entries after its ID; otherwise the
    /// client waits, on the leader, for a write to one of its keys (then looks again), its
    /// timeout, CLIENT UNBLOCK, the node to stop leading (answered as `block` does), or the client
    /// to leave. `$` stands for each stream's last ID when the command arrived. After READONLY
    /// a follower serves it from its own state, looking again every 100 ms.
    async fn block_read(&mut self, mut op: Op, slot: u16, timeout: Option<u64>, peer: &TcpStream) -> Reply {
        let shared = self.shared.clone();
        let local = self.readonly && !shared.backend.is_leader();
        if !local && !crate::broken::is(crate::broken::Mode::StaleReads) {
            if let Err(e) = self.linearize().await {
                return self.error_reply(e, slot);
            }
        }
        let now = unix_millis();
        let keys = shared.backend.inspect(|a| match &mut op {
            Op::Stream(read) => read.pin_last(&a.sm.keyspace, now),
            _ => Vec::new(),
        });
        let look = |s: &mut Session| shared.backend.read_local(&op, Ctx { now: unix_millis(), seed: s.next_seed() });
        let first = look(self);
        if !matches!(first, Reply::NilArray) {
            return first;
        }
        let deadline = timeout.map(|ms| tokio::time::Instant::now() + std::time::Duration::from_millis(ms));
        let notify = shared.blocked.register_reader(self.id, &keys);
        lock(&self.client).blocked = true;
        let reply = loop {
            if let Some(reply) = self.wait_blocked(&notify, deadline, peer, &Reply::NilArray).await {
                break reply;
            }
            if let Some(reply) = self.unblocked(&Reply::NilArray) {
                break reply;
            }
            if !local && !shared.backend.is_leader() {
                break self.stepped_down(slot);
            }
            let reply = look(self);
            if !matches!(reply, Reply::NilArray) {
                break reply;
            }
        };
        lock(&self.client).blocked = false;
        shared.blocked.unregister(self.id, &keys);
        reply
    }

    /// CLIENT UNBLOCK's reply for this blocked client, if it was released: `nil` (TIMEOUT) or
    /// the UNBLOCKED error (ERROR).
    fn unblocked(&self, nil: &Reply) -> Option<Reply> {
        match self.shared.blocked.take_unblock(self.id)? {
            super::blocked::Unblock::Timeout => Some(nil.clone()),
            super::blocked::Unblock::Error => Some(Reply::err("UNBLOCKED client unblocked via CLIENT UNBLOCK")),
        }
    }

    /// The reply of a client blocked on a node that stopped leading: MOVED for a cluster-aware
    /// client; for a plain one what Redis answers when a primary turns replica, on which a plain
    /// client (redis-py's Sentinel pool, for one) reconnects and asks again.
    fn stepped_down(&self, slot: u16) -> Reply {
        if !self.cluster_aware {
            return Reply::err(
                "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
            );
        }
        self.error_reply(BackendError::NotLeader(self.shared.backend.leader()), slot)
    }

    /// One wait of a blocked client: until a write wakes it, the leader check's tick, its
    /// deadline (`Some(nil)`) or the client leaving (`Some(nil)`, and the connection closes).
    /// `None`: look again.
    async fn wait_blocked(
        &mut self,
        notify: &tokio::sync::Notify,
        deadline: Option<tokio::time::Instant>,
        peer: &TcpStream,
        nil: &Reply,
    ) -> Option<Reply> {
        let timeout = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = notify.notified() => None,
            _ = timeout => Some(nil.clone()),
            _ = tokio::time::sleep(BLOCKED_LEADER_CHECK) => None,
            _ = peer_closed(peer) => {
                self.close = true;
                Some(nil.clone())
            }
        }
    }

    /// Makes the local state safe to read for the commands of the current pipeline (one check
    /// per pipeline: see `linearized`).
    async fn linearize(&mut self) -> Result<(), BackendError> {
        if !self.linearized {
            self.shared.backend.linearize().await?;
            self.linearized = true;
        }
        Ok(())
    }

    /// The reply for a request the backend did not answer: MOVED to the leader, CLUSTERDOWN,
    /// or an error that says whether the outcome is unknown.
    fn error_reply(&self, e: BackendError, slot: u16) -> Reply {
        let backend = &self.shared.backend;
        match e {
            BackendError::NotLeader(Some(id)) if id != backend.id() && !backend.removed() => {
                match backend.addr_of(id) {
                    Some(addr) => cluster::moved(slot, &addr),
                    None => cluster::cluster_down(),
                }
            }
            BackendError::NotLeader(_) => cluster::cluster_down(),
            BackendError::Unavailable(text) | BackendError::Uncertain(text) => Reply::Error(text),
        }
    }

    /// MOVED (or CLUSTERDOWN) when the command must run on the leader and this node is not it:
    /// data commands, and node commands with keys (WATCH).
    fn redirect_if_not_leader(&self, meta: &Meta, args: &[Bytes]) -> Option<Reply> {
        let is_data = commands::lookup(&args[0]).is_some_and(|c| matches!(c, Command::Data(_)));
        let needs_leader = is_data || meta.first_key > 0;
        let readonly = self.readonly || crate::broken::is(crate::broken::Mode::StaleReads);
        if !needs_leader || (readonly && !meta.is_write()) {
            return None;
        }
        let backend = &self.shared.backend;
        if backend.is_leader() {
            return None;
        }
        Some(self.error_reply(BackendError::NotLeader(backend.leader()), first_key_slot(meta, args)))
    }

    /// WATCH records what the keys look like in a linearizable view of the state; EXEC's
    /// request carries the records and the state machine checks them when it applies.
    pub(crate) async fn watch(&mut self, args: &[Bytes]) -> Reply {
        if self.multi.is_some() {
            return Reply::err("ERR WATCH inside MULTI is not allowed");
        }
        let meta = commands::lookup(b"watch").expect("WATCH is in the command table").meta();
        if let Some(redirect) = self.redirect_if_not_leader(meta, args) {
            return redirect;
        }
        if let Err(e) = self.linearize().await {
            return self.error_reply(e, first_key_slot(meta, args));
        }
        let now = unix_millis();
        let keys = &args[1..];
        let watches = &mut self.watches;
        self.shared.backend.inspect(|applied| {
            for key in keys {
                if !watches.iter().any(|w| w.key == key) {
                    watches.push(applied.sm.keyspace.watch(key.clone(), now));
                }
            }
        });
        Reply::Ok
    }

    pub(crate) fn end_multi(&mut self) {
        self.multi = None;
        self.multi_failed = false;
        self.watches.clear();
        lock(&self.client).multi = -1;
    }

    /// EXEC: every queued data command goes into one request, applied atomically.
    pub(crate) async fn exec(&mut self) -> Reply {
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
        // Each queued command's reply: known now (errors, node commands) or the index of its
        // operation in the request.
        let mut slots: Vec<Result<usize, Reply>> = Vec::with_capacity(queue.len());
        let mut ops = Vec::new();
        let mut publishes = Vec::new();
        let mut first_slot = None;
        for args in &queue {
            let command = match commands::resolve(args) {
                Ok(command) => command,
                Err(e) => {
                    slots.push(Err(e.into()));
                    continue;
                }
            };
            match command {
                Command::Data(data) => match (data.parse)(args, now) {
                    Ok(op) => {
                        if data.meta.has_keys() && first_slot.is_none() {
                            first_slot = Some(first_key_slot(&data.meta, args));
                        }
                        ops.push(self.stamp_memory(op));
                        slots.push(Ok(ops.len() - 1));
                    }
                    Err(e) => slots.push(Err(e.into())),
                },
                Command::Node(node) => match commands::pubsub::is_publish(node.meta.name) {
                    // Published when the transaction applies, with its writes.
                    Some(shard) => {
                        ops.push(publish_op(args, shard));
                        slots.push(Ok(ops.len() - 1));
                        publishes.push((ops.len() - 1, args[1].clone(), shard));
                    }
                    None => {
                        let reply = match Box::pin(self.run_node(node, args)).await {
                            // SUBSCRIBE of one channel: its confirmation is one element of EXEC's array.
                            Reply::Several(mut one) if one.len() == 1 => one.remove(0),
                            reply => reply,
                        };
                        slots.push(Err(reply));
                    }
                },
            }
        }
        let mut results = if ops.is_empty() && watches.is_empty() {
            Vec::new()
        } else {
            let seed = self.next_seed();
            let req = Request { now, seed, body: Body::Exec { watches, ops } };
            match self.submit(req, first_slot.unwrap_or(0)).await {
                Reply::Array(results) => results,
                other => return other,
            }
        };
        for (i, channel, shard) in publishes {
            if let Some(r @ Reply::Int(_)) = results.get_mut(i) {
                *r = Reply::Int(self.shared.pubsub.receivers(&channel, shard));
            }
        }
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

/// The hash slot of a command's first key, or 0 for a command without keys.
fn first_key_slot(meta: &Meta, args: &[Bytes]) -> u16 {
    match meta.key_indexes(args).and_then(|keys| keys.first().copied()) {
        Some(i) if i < args.len() => cluster::key_slot(&args[i]),
        _ => 0,
    }
}

/// The operation PUBLISH or SPUBLISH (`shard`) puts in the log.
fn publish_op(args: &[Bytes], shard: bool) -> Op {
    Op::PubSub(crate::cmd::pubsub::PubSubOp::Publish { channel: args[1].clone(), payload: args[2].clone(), shard })
}

/// The channel a request publishes to, if it is a PUBLISH (its reply is then this node's count
/// of receivers).
fn published(req: &Request) -> Option<(Bytes, bool)> {
    match &req.body {
        Body::Op(Op::PubSub(crate::cmd::pubsub::PubSubOp::Publish { channel, shard, .. })) => {
            Some((channel.clone(), *shard))
        }
        _ => None,
    }
}

impl Session {
    /// Encodes a command's reply into `out`, unless CLIENT REPLY silenced it. Pub/sub
    /// confirmations are sent whatever the mode, as Redis does.
    fn emit(&mut self, reply: &Reply, out: &mut BytesMut) {
        let pubsub = match reply {
            Reply::Push(_) => true,
            Reply::Several(r) => r.first().is_some_and(|r| matches!(r, Reply::Push(_))),
            _ => false,
        };
        if !pubsub && self.reply_skip > 0 {
            self.reply_skip -= 1;
            return;
        }
        if !pubsub && self.reply_off {
            return;
        }
        reply.encode(self.proto, out);
    }

    /// Appends the messages already waiting to `out`; `Err` once the hub dropped this
    /// subscriber (over the output limit).
    fn take_messages(&mut self, out: &mut BytesMut) -> Result<(), super::pubsub::Dropped> {
        let Some(inbox) = self.subs.inbox.as_mut() else { return Ok(()) };
        while let Some(message) = inbox.try_recv()? {
            message.encode(self.proto, out);
        }
        Ok(())
    }

    /// Whether this connection is another node relaying commands (never relayed again).
    fn is_forwarder(&self) -> bool {
        self.forwarder
    }

    /// Whether to move this session to the leader, when proxy mode applies: a follower, a
    /// client that is not cluster-aware and has no state here that would not move with it
    /// (MULTI, WATCH, subscriptions made while this node led), and a command this node does not
    /// answer for itself. `Some(None)`: it should move, but no leader is known yet.
    fn proxy_target(&self, args: &[Bytes]) -> Option<Option<(crate::base::NodeId, String)>> {
        if !self.shared.config.follower_proxy
            || self.cluster_aware
            || self.forwarder
            || self.readonly
            || self.multi.is_some()
            || !self.watches.is_empty()
            || self.subs.active()
        {
            return None;
        }
        let backend = &self.shared.backend;
        // A node removed from the cluster knows no leader to relay to: it answers CLUSTERDOWN.
        if backend.is_leader() || backend.removed() {
            return None;
        }
        let name = commands::resolve(args).ok()?.name();
        if super::proxy::is_local(name) || super::proxy::marks_cluster_aware(name) {
            return None;
        }
        Some(super::proxy::known_leader(&self.shared))
    }

    /// Updates CLIENT LIST's subscription counts.
    fn sync_subscription_counts(&self) {
        let mut info = lock(&self.client);
        info.sub = self.subs.channels.len();
        info.psub = self.subs.patterns.len();
        info.ssub = self.subs.shard.len();
    }

    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE: one confirmation per name.
    pub(crate) fn subscribe(&mut self, kind: Kind, names: &[Bytes]) -> Reply {
        let verb = match kind {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        };
        let mut replies = Vec::with_capacity(names.len());
        for name in names {
            self.shared.pubsub.subscribe(self.id, &mut self.subs, kind, name.clone());
            let count = self.subs.count(kind) as i64;
            replies.push(Reply::Push(vec![Reply::bulk(verb), Reply::Bulk(name.clone()), Reply::Int(count)]));
        }
        self.sync_subscription_counts();
        Reply::Several(replies)
    }

    /// UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE: one confirmation per name; without names, from
    /// everything of that kind (one confirmation with a nil name when there was nothing).
    pub(crate) fn unsubscribe(&mut self, kind: Kind, names: &[Bytes]) -> Reply {
        let verb = match kind {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        };
        let names: Vec<Bytes> =
            if names.is_empty() { self.subs.set(kind).iter().cloned().collect() } else { names.to_vec() };
        if names.is_empty() {
            let count = self.subs.count(kind) as i64;
            return Reply::Push(vec![Reply::bulk(verb), Reply::Nil, Reply::Int(count)]);
        }
        let mut replies = Vec::with_capacity(names.len());
        for name in names {
            self.shared.pubsub.unsubscribe(self.id, &mut self.subs, kind, &name);
            let count = self.subs.count(kind) as i64;
            replies.push(Reply::Push(vec![Reply::bulk(verb), Reply::Bulk(name), Reply::Int(count)]));
        }
        self.sync_subscription_counts();
        Reply::Several(replies)
    }

    /// RESET: leaves every subscription, silently.
    pub(crate) fn unsubscribe_all(&mut self) {
        let inbox = self.subs.inbox.take();
        self.shared.pubsub.detach(self.id, &mut self.subs);
        // Messages already queued are dropped with the inbox; a later SUBSCRIBE makes a new one.
        drop(inbox);
        self.sync_subscription_counts();
    }

    /// PUBLISH or SPUBLISH outside the leader's write batch: only a relayed one (from another
    /// node's forwarder) that reached this node after it stopped leading gets here (the gate
    /// batches the leader's and relays a follower's), so it is proposed and the backend answers
    /// MOVED or CLUSTERDOWN, which the relaying node passes on. The reply counts this node's
    /// receivers.
    pub(crate) async fn publish(&mut self, args: &[Bytes], shard: bool) -> Reply {
        let slot = if shard { cluster::key_slot(&args[1]) } else { 0 };
        let seed = self.next_seed();
        let reply =
            self.submit(Request { now: unix_millis(), seed, body: Body::Op(publish_op(args, shard)) }, slot).await;
        match reply {
            Reply::Int(_) => Reply::Int(self.shared.pubsub.receivers(&args[1], shard)),
            other => other,
        }
    }
}
