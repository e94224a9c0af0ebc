//! A fault-injecting TCP proxy for the bus (node-to-node traffic), with plain threads.
//!
//! One listener per node sits on the node's *advertised* bus address (what `--peers` tells the
//! other nodes) and forwards to the node's *real* bus port (`--bus-port`). Nodes bind their
//! outgoing bus connections to their own address, 127.0.0.N for node N, so the source IP of an
//! accepted connection tells which node opened it.
//!
//! Rules are per directed link `from -> to`, where `from` is the node that opened the connection
//! and `to` the node it reaches. An RPC and its reply travel on the connection the sender opened,
//! so blocking `i -> j` stops i's RPCs to j (and their replies) but not j's RPCs to i: to cut two
//! nodes apart block both directions ([`ProxyNet::cut`], [`ProxyNet::isolate`], [`ProxyNet::split`]).
//!
//! - block: new connections on the link are accepted and closed at once; existing ones are shut
//!   down.
//! - delay: every chunk forwarded on a connection of the link, either way, waits this long (so a
//!   round trip gains twice the delay).
//! - drop: each forwarded chunk resets its connection instead with this probability (TCP cannot
//!   lose bytes in the middle of a stream, so a lossy link is one whose connections break).

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub use raftis_chaos::proxy::{ip_of_node, node_of_ip, LinkStats, Rule};

/// One forwarded connection: both sockets, to shut them down from outside.
struct Forwarded {
    from: Option<u64>,
    to: u64,
    client: TcpStream,
    upstream: TcpStream,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<HashMap<(u64, u64), Rule>>,
    conns: Mutex<HashMap<u64, Forwarded>>,
    stats: Mutex<HashMap<(u64, u64), LinkStats>>,
    next_conn: AtomicU64,
    rng: Mutex<u64>,
    stop: AtomicBool,
}

impl Shared {
    fn rule(&self, from: Option<u64>, to: u64) -> Rule {
        match from {
            Some(f) => self.rules.lock().unwrap().get(&(f, to)).copied().unwrap_or_default(),
            None => Rule::default(),
        }
    }

    fn count(&self, from: Option<u64>, to: u64, f: impl FnOnce(&mut LinkStats)) {
        if let Some(from) = from {
            f(self.stats.lock().unwrap().entry((from, to)).or_default());
        }
    }

    /// A pseudo-random number in [0, 1) (xorshift; determinism is not needed).
    fn random(&self) -> f64 {
        let mut s = self.rng.lock().unwrap();
        let mut x = *s;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *s = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Shuts down every open connection on links matching `pred`; returns how many.
    fn cut_where(&self, pred: impl Fn(Option<u64>, u64) -> bool) -> usize {
        let conns = self.conns.lock().unwrap();
        let mut n = 0;
        for c in conns.values() {
            if pred(c.from, c.to) {
                let _ = c.client.shutdown(Shutdown::Both);
                let _ = c.upstream.shutdown(Shutdown::Both);
                n += 1;
            }
        }
        n
    }
}

/// The proxies of a cluster: one listener per node, sharing the link rules.
pub struct ProxyNet {
    shared: Arc<Shared>,
    /// node id -> (listen address, target address).
    nodes: Mutex<HashMap<u64, (SocketAddr, SocketAddr)>>,
}

impl Default for ProxyNet {
    fn default() -> Self {
        Self::new()
    }
}

impl ProxyNet {
    pub fn new() -> ProxyNet {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        let shared = Shared { rng: Mutex::new(seed | 1), ..Default::default() };
        ProxyNet { shared: Arc::new(shared), nodes: Mutex::new(HashMap::new()) }
    }

    /// Starts the proxy of node `id`: listens on `listen_ip:0` (a free port, returned) and
    /// forwards to `target`.
    pub fn add(&self, id: u64, listen_ip: IpAddr, target: SocketAddr) -> io::Result<u16> {
        let listener = TcpListener::bind((listen_ip, 0))?;
        let listen = listener.local_addr()?;
        self.nodes.lock().unwrap().insert(id, (listen, target));
        let shared = self.shared.clone();
        thread::Builder::new()
            .name(format!("proxy-{id}"))
            .spawn(move || accept_loop(listener, id, target, shared))
            .expect("spawn proxy thread");
        Ok(listen.port())
    }

    /// The node ids with a proxy.
    pub fn node_ids(&self) -> BTreeSet<u64> {
        self.nodes.lock().unwrap().keys().copied().collect()
    }

    /// Changes the rule of link `from -> to`; a block also cuts the link's open connections.
    pub fn set_rule(&self, from: u64, to: u64, rule: Rule) {
        self.shared.rules.lock().unwrap().insert((from, to), rule);
        if rule.down {
            let n = self.shared.cut_where(|f, t| f == Some(from) && t == to);
            self.shared.count(Some(from), to, |s| s.cut += n as u64);
        }
    }

    fn update(&self, from: u64, to: u64, f: impl FnOnce(&mut Rule)) {
        let mut rule = self.shared.rule(Some(from), to);
        f(&mut rule);
        self.set_rule(from, to, rule);
    }

    /// Blocks connections node `from` opens to node `to` (existing ones are cut).
    pub fn block(&self, from: u64, to: u64) {
        self.update(from, to, |r| r.down = true);
    }

    /// Lets connections from `from` to `to` through again.
    pub fn unblock(&self, from: u64, to: u64) {
        self.update(from, to, |r| r.down = false);
    }

    /// Adds `delay` to every chunk forwarded on `from -> to` connections, both ways.
    pub fn delay(&self, from: u64, to: u64, delay: Duration) {
        self.update(from, to, |r| r.delay = delay);
    }

    /// Makes `from -> to` connections break with probability `p` per forwarded chunk.
    pub fn drop_prob(&self, from: u64, to: u64, p: f64) {
        self.update(from, to, |r| r.drop = p);
    }

    /// Cuts `a` and `b` apart, both directions.
    pub fn cut(&self, a: u64, b: u64) {
        self.block(a, b);
        self.block(b, a);
    }

    /// Cuts `node` off from every other node, both directions.
    pub fn isolate(&self, node: u64) {
        for other in self.node_ids() {
            if other != node {
                self.cut(node, other);
            }
        }
    }

    /// Partitions the nodes into `groups`: nodes in different groups cannot talk; a node in no
    /// group is cut off from everyone.
    pub fn split(&self, groups: &[&[u64]]) {
        let group_of = |n: u64| groups.iter().position(|g| g.contains(&n));
        let ids = self.node_ids();
        for &a in &ids {
            for &b in &ids {
                if a != b && (group_of(a).is_none() || group_of(a) != group_of(b)) {
                    self.block(a, b);
                }
            }
        }
    }

    /// Removes every rule: all links up, no delay, no drop.
    pub fn heal(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// The counters of link `from -> to`.
    pub fn stats(&self, from: u64, to: u64) -> LinkStats {
        self.shared.stats.lock().unwrap().get(&(from, to)).copied().unwrap_or_default()
    }

    /// Connections currently forwarded.
    pub fn open_connections(&self) -> usize {
        self.shared.conns.lock().unwrap().len()
    }
}

impl Drop for ProxyNet {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for (listen, _) in self.nodes.lock().unwrap().values() {
            // Wakes the accept loop, which then sees `stop`.
            let _ = TcpStream::connect_timeout(listen, Duration::from_millis(200));
        }
        self.shared.cut_where(|_, _| true);
    }
}

fn accept_loop(listener: TcpListener, to: u64, target: SocketAddr, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = stream else { continue };
        let from = client.peer_addr().ok().and_then(|a| node_of_ip(a.ip()));
        if shared.rule(from, to).down {
            let _ = client.shutdown(Shutdown::Both);
            shared.count(from, to, |s| s.refused += 1);
            continue;
        }
        let shared = shared.clone();
        thread::spawn(move || {
            let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
                let _ = client.shutdown(Shutdown::Both);
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
            let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) =
                (client.try_clone(), upstream.try_clone(), client.try_clone(), upstream.try_clone())
            else {
                return;
            };
            {
                let mut conns = shared.conns.lock().unwrap();
                // Checked again under the lock: a block issued since the accept must not miss it.
                if shared.rule(from, to).down {
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = upstream.shutdown(Shutdown::Both);
                    shared.count(from, to, |s| s.refused += 1);
                    return;
                }
                conns.insert(id, Forwarded { from, to, client: c3, upstream: u3 });
            }
            shared.count(from, to, |s| s.accepted += 1);
            let back = {
                let shared = shared.clone();
                thread::spawn(move || pump(u2, c2, from, to, &shared))
            };
            pump(client, upstream, from, to, &shared);
            let _ = back.join();
            shared.conns.lock().unwrap().remove(&id);
        });
    }
}

/// Copies `src` to `dst` under the link's rule until either side closes or the rule cuts it;
/// then shuts both down.
fn pump(mut src: TcpStream, mut dst: TcpStream, from: Option<u64>, to: u64, shared: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let rule = shared.rule(from, to);
        if rule.down {
            break;
        }
        if rule.drop > 0.0 && shared.random() < rule.drop {
            shared.count(from, to, |s| s.cut += 1);
            break;
        }
        if !rule.delay.is_zero() {
            thread::sleep(rule.delay);
        }
        if dst.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = src.shutdown(Shutdown::Both);
    let _ = dst.shutdown(Shutdown::Both);
}
