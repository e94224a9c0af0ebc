//! A fault-injecting TCP proxy for the bus (node-to-node traffic).
//!
//! One listener per node sits on the node's *advertised* bus address (what `--peers` tells the
//! others) and forwards to its real bus port (`--bus-port`). Nodes bind their outgoing bus
//! connections to their own address, 127.0.0.N for node N, so the source address of an accepted
//! connection names the node that opened it: each connection belongs to one directed link
//! `from -> to`. An RPC and its reply travel on the connection the sender opened, so a link that
//! is down stops `from`'s RPCs to `to` but not `to`'s RPCs to `from` (a one-way partition); cut
//! both directions for a full one.
//!
//! Per link: `down` (open connections are closed, new ones closed at accept), `delay` (every
//! chunk forwarded either way waits this long, pipelined, so latency grows but not throughput),
//! `drop` (each forwarded chunk resets its connection instead with this probability: TCP cannot
//! lose bytes mid-stream, so a lossy link is one whose connections break), and [`Net::reset`]
//! (reset every open connection now, with a TCP RST).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The node a loopback address stands for: 127.0.0.N is node N.
pub fn node_of_ip(ip: IpAddr) -> Option<u64> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (o[0] == 127 && o[1] == 0 && o[2] == 0 && o[3] > 0).then_some(o[3] as u64)
        }
        IpAddr::V6(_) => None,
    }
}

/// The loopback address of node `id` (127.0.0.id).
pub fn ip_of_node(id: u64) -> Ipv4Addr {
    assert!((1..=254).contains(&id), "node ids map to 127.0.0.1-254");
    Ipv4Addr::new(127, 0, 0, id as u8)
}

/// What happens on one directed link.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rule {
    pub down: bool,
    pub delay: Duration,
    /// Probability in [0, 1] that a forwarded chunk resets its connection instead.
    pub drop: f64,
}

/// Per-link counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Connections forwarded.
    pub accepted: u64,
    /// Connections closed at accept because the link was down.
    pub refused: u64,
    /// Connections closed or reset by a rule, a drop or [`Net::reset`].
    pub cut: u64,
}

/// How a forwarded connection is told to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    Run,
    Close,
    Reset,
}

struct Conn {
    from: Option<u64>,
    to: u64,
    kill: watch::Sender<Kill>,
}

struct Shared {
    rules: Mutex<HashMap<(u64, u64), Rule>>,
    conns: Mutex<HashMap<u64, Conn>>,
    stats: Mutex<HashMap<(u64, u64), LinkStats>>,
    rng: Mutex<StdRng>,
    next_conn: AtomicU64,
}

impl Shared {
    fn rule(&self, from: Option<u64>, to: u64) -> Rule {
        from.and_then(|f| self.rules.lock().unwrap().get(&(f, to)).copied()).unwrap_or_default()
    }

    fn count(&self, from: Option<u64>, to: u64, f: impl FnOnce(&mut LinkStats)) {
        if let Some(from) = from {
            f(self.stats.lock().unwrap().entry((from, to)).or_default());
        }
    }

    fn kill_where(&self, how: Kill, pred: impl Fn(Option<u64>, u64) -> bool) -> usize {
        let conns = self.conns.lock().unwrap();
        let mut n = 0;
        for c in conns.values().filter(|c| pred(c.from, c.to)) {
            let _ = c.kill.send(how);
            n += 1;
        }
        n
    }
}

/// The proxies of one cluster, sharing the link rules. Dropping it stops them.
pub struct Net {
    shared: Arc<Shared>,
    nodes: Vec<u64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Net {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.shared.kill_where(Kill::Close, |_, _| true);
    }
}

impl Net {
    /// A proxy network whose drop decisions come from `seed`.
    pub fn new(seed: u64) -> Net {
        let shared = Shared {
            rules: Mutex::default(),
            conns: Mutex::default(),
            stats: Mutex::default(),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            next_conn: AtomicU64::new(0),
        };
        Net { shared: Arc::new(shared), nodes: Vec::new(), tasks: Vec::new() }
    }

    /// Starts node `id`'s proxy listening on `listen` (port 0 = any free port) and forwarding to
    /// `target`; returns the address it listens on.
    pub async fn add(&mut self, id: u64, listen: SocketAddr, target: SocketAddr) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        self.nodes.push(id);
        let shared = self.shared.clone();
        self.tasks.push(tokio::spawn(accept_loop(listener, id, target, shared)));
        Ok(addr)
    }

    /// The nodes with a proxy.
    pub fn nodes(&self) -> &[u64] {
        &self.nodes
    }

    /// The rule of link `from -> to`.
    pub fn rule(&self, from: u64, to: u64) -> Rule {
        self.shared.rule(Some(from), to)
    }

    /// Changes the rule of link `from -> to`; taking it down closes its open connections.
    pub fn update(&self, from: u64, to: u64, f: impl FnOnce(&mut Rule)) {
        let mut rule = self.rule(from, to);
        f(&mut rule);
        self.shared.rules.lock().unwrap().insert((from, to), rule);
        if rule.down {
            let n = self.shared.kill_where(Kill::Close, |f, t| f == Some(from) && t == to);
            self.shared.count(Some(from), to, |s| s.cut += n as u64);
        }
    }

    /// Takes link `from -> to` down (or up).
    pub fn set_down(&self, from: u64, to: u64, down: bool) {
        self.update(from, to, |r| r.down = down);
    }

    /// Adds `delay` to every chunk forwarded on link `from -> to`, both ways.
    pub fn set_delay(&self, from: u64, to: u64, delay: Duration) {
        self.update(from, to, |r| r.delay = delay);
    }

    /// Makes link `from -> to` reset its connections with probability `p` per chunk.
    pub fn set_drop(&self, from: u64, to: u64, p: f64) {
        self.update(from, to, |r| r.drop = p);
    }

    /// Resets every open connection of link `from -> to` (TCP RST); returns how many.
    pub fn reset(&self, from: u64, to: u64) -> usize {
        let n = self.shared.kill_where(Kill::Reset, |f, t| f == Some(from) && t == to);
        self.shared.count(Some(from), to, |s| s.cut += n as u64);
        n
    }

    /// Partitions the nodes into `groups`: nodes in different groups (or in none) cannot talk.
    pub fn partition(&self, groups: &[Vec<u64>]) {
        let group_of = |n: u64| groups.iter().position(|g| g.contains(&n));
        for &a in &self.nodes {
            for &b in &self.nodes {
                if a != b && (group_of(a).is_none() || group_of(a) != group_of(b)) {
                    self.set_down(a, b, true);
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

    /// Connections being forwarded now.
    pub fn open_connections(&self) -> usize {
        self.shared.conns.lock().unwrap().len()
    }
}

async fn accept_loop(listener: TcpListener, to: u64, target: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((client, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let from = node_of_ip(peer.ip());
        if shared.rule(from, to).down {
            shared.count(from, to, |s| s.refused += 1);
            drop(client);
            continue;
        }
        tokio::spawn(forward(client, from, to, target, shared.clone()));
    }
}

/// Makes closing `s` send a TCP RST instead of a FIN.
fn reset_on_close(s: &TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket descriptor and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

async fn forward(mut client: TcpStream, from: Option<u64>, to: u64, target: SocketAddr, shared: Arc<Shared>) {
    let Ok(Ok(mut upstream)) = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(target)).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (kill_tx, mut kill_rx) = watch::channel(Kill::Run);
    {
        let mut conns = shared.conns.lock().unwrap();
        // Checked again under the lock, so that a link taken down since the accept is obeyed.
        if shared.rule(from, to).down {
            shared.count(from, to, |s| s.refused += 1);
            return;
        }
        conns.insert(id, Conn { from, to, kill: kill_tx });
    }
    shared.count(from, to, |s| s.accepted += 1);
    let end = {
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        tokio::select! {
            e = pump(&mut cr, &mut uw, from, to, &shared) => e,
            e = pump(&mut ur, &mut cw, from, to, &shared) => e,
            k = kill_rx.wait_for(|k| *k != Kill::Run) => k.map(|k| *k).unwrap_or(Kill::Close),
        }
    };
    if end == Kill::Reset {
        reset_on_close(&client);
        reset_on_close(&upstream);
    }
    shared.conns.lock().unwrap().remove(&id);
}

/// Copies `src` to `dst` under the link's rule until either side closes or the rule ends it;
/// returns how the connection should end.
async fn pump<R, W>(src: &mut R, dst: &mut W, from: Option<u64>, to: u64, shared: &Shared) -> Kill
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match src.read(&mut buf).await {
                Ok(0) | Err(_) => return Kill::Close,
                Ok(n) => n,
            };
            let rule = shared.rule(from, to);
            if rule.down {
                return Kill::Close;
            }
            if rule.drop > 0.0 && shared.rng.lock().unwrap().random::<f64>() < rule.drop {
                shared.count(from, to, |s| s.cut += 1);
                return Kill::Reset;
            }
            if tx.send((Instant::now() + rule.delay, buf[..n].to_vec())).is_err() {
                return Kill::Close;
            }
        }
    };
    let writer = async {
        while let Some((at, data)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if dst.write_all(&data).await.is_err() {
                break;
            }
        }
        Kill::Close
    };
    tokio::select! {
        e = reader => e,
        e = writer => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on `ip`; returns its address.
    async fn echo(ip: Ipv4Addr) -> SocketAddr {
        let l = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    /// Connects from node `from`'s address to `to`, sends a line, returns the echo or an error.
    async fn ping(from: u64, to: SocketAddr) -> io::Result<Vec<u8>> {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(IpAddr::V4(ip_of_node(from)), 0))?;
        let mut s = sock.connect(to).await?;
        s.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timeout"))??;
        Ok(buf.to_vec())
    }

    #[tokio::test]
    async fn links_go_down_one_way_get_delayed_and_heal() {
        let target = echo(ip_of_node(2)).await;
        let mut net = Net::new(1);
        let proxy = net.add(2, SocketAddr::new(IpAddr::V4(ip_of_node(2)), 0), target).await.unwrap();
        assert_eq!(ping(1, proxy).await.unwrap(), b"ping");
        // 1 -> 2 down: node 1's connections fail, node 3's still pass.
        net.set_down(1, 2, true);
        assert!(ping(1, proxy).await.is_err());
        assert_eq!(ping(3, proxy).await.unwrap(), b"ping");
        assert_eq!(net.stats(1, 2).refused, 1);
        net.heal();
        // A delay of 150 ms each way.
        net.set_delay(1, 2, Duration::from_millis(150));
        let t = std::time::Instant::now();
        assert_eq!(ping(1, proxy).await.unwrap(), b"ping");
        assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
        // Certain drop: the connection is reset.
        net.heal();
        net.set_drop(1, 2, 1.0);
        assert!(ping(1, proxy).await.is_err());
        net.heal();
        assert_eq!(ping(1, proxy).await.unwrap(), b"ping");
    }

    #[tokio::test]
    async fn taking_a_link_down_cuts_open_connections() {
        let target = echo(ip_of_node(2)).await;
        let mut net = Net::new(1);
        let proxy = net.add(2, SocketAddr::new(IpAddr::V4(ip_of_node(2)), 0), target).await.unwrap();
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(IpAddr::V4(ip_of_node(1)), 0)).unwrap();
        let mut s = sock.connect(proxy).await.unwrap();
        s.write_all(b"a").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(net.open_connections(), 1);
        net.set_down(1, 2, true);
        let r = tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await.unwrap();
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    }
}
