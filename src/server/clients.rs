//! The registry of connected clients: ids, names and what CLIENT LIST shows.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What CLIENT LIST / CLIENT INFO report about one connection.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
    pub created: Instant,
    pub last_active: Instant,
    pub last_cmd: String,
    /// Commands queued in MULTI, or -1 outside a transaction.
    pub multi: i64,
    pub resp: u8,
    /// Channels, patterns and shard channels subscribed to.
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// Waiting in a blocking command.
    pub blocked: bool,
    /// READONLY was sent.
    pub readonly: bool,
}

impl ClientInfo {
    /// Whether the client is subscribed to anything (CLIENT LIST's `P` flag, TYPE pubsub).
    pub fn is_pubsub(&self) -> bool {
        self.sub + self.psub + self.ssub > 0
    }

    /// CLIENT LIST's flags, in Redis's order.
    fn flags(&self) -> String {
        let mut flags = String::new();
        for (on, c) in [(self.is_pubsub(), 'P'), (self.multi >= 0, 'x'), (self.blocked, 'b'), (self.readonly, 'r')] {
            if on {
                flags.push(c);
            }
        }
        if flags.is_empty() {
            flags.push('N');
        }
        flags
    }

    /// One CLIENT LIST line (without the trailing newline), in Redis's field order.
    pub fn line(&self, now: Instant) -> String {
        format!(
            "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags={} db=0 sub={} psub={} ssub={} \
             multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 \
             tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.name,
            now.duration_since(self.created).as_secs(),
            now.duration_since(self.last_active).as_secs(),
            self.flags(),
            self.sub,
            self.psub,
            self.ssub,
            self.multi,
            self.last_cmd,
            self.resp,
            self.lib_name,
            self.lib_ver,
        )
    }
}

/// One client's shared entry: the connection updates it, CLIENT LIST reads it.
pub type ClientHandle = Arc<Mutex<ClientInfo>>;

/// Every connected client, by id.
#[derive(Debug, Default)]
pub struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, ClientHandle>>,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
}

impl Clients {
    /// Registers a new connection and returns its entry.
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> ClientHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let info = Arc::new(Mutex::new(ClientInfo {
            id,
            addr,
            laddr,
            name: String::new(),
            lib_name: String::new(),
            lib_ver: String::new(),
            created: now,
            last_active: now,
            last_cmd: "NULL".into(),
            multi: -1,
            resp: 2,
            sub: 0,
            psub: 0,
            ssub: 0,
            blocked: false,
            readonly: false,
        }));
        self.lock().insert(id, info.clone());
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        info
    }

    /// Forgets a closed connection.
    pub fn unregister(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Number of connected clients.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// A copy of every entry, by id.
    pub fn all(&self) -> Vec<ClientInfo> {
        let handles: Vec<ClientHandle> = self.lock().values().cloned().collect();
        handles.iter().map(|h| lock(h).clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, ClientHandle>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Locks one client's entry (a poisoned lock still holds usable data).
pub fn lock(h: &ClientHandle) -> std::sync::MutexGuard<'_, ClientInfo> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}
