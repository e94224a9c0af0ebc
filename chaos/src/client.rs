//! A client that behaves like a Redis Cluster client: it follows `-MOVED`, waits out
//! `-CLUSTERDOWN`, tries another node when one does not accept connections, and classifies
//! every request's end as done, certainly not applied, or indeterminate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use tokio::time::Instant;

use crate::resp::{Conn, Resp};

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The replies, one per command sent (an application error may be among them).
    Done(Vec<Resp>),
    /// Certainly not applied: refused (MOVED, CLUSTERDOWN) until the client gave up, a definite
    /// error, or an aborted transaction.
    Fail(String),
    /// May or may not have been applied: a lost connection, a timeout, or the server said so.
    Info(String),
}

/// Client-side faults the nemesis can turn on: the probability (in millionths) that a client
/// drops its connection right after sending a request, before the reply.
#[derive(Debug, Clone, Default)]
pub struct CutSwitch(Arc<AtomicU32>);

impl CutSwitch {
    pub fn set(&self, p: f64) {
        self.0.store((p.clamp(0.0, 1.0) * 1e6) as u32, Ordering::Relaxed);
    }

    fn get(&self) -> f64 {
        self.0.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// One client (a Jepsen "process"): its connections, and where it thinks the leader is.
pub struct Client {
    addrs: Vec<String>,
    conns: HashMap<String, Conn>,
    leader: String,
    /// Bounds every connect and reply.
    pub timeout: Duration,
    /// How long refusals are retried before the request fails.
    pub give_up: Duration,
    cut: CutSwitch,
    /// The node that answered the last request.
    pub last_node: String,
}

/// What a reply says about the request it answers.
enum Class {
    Done,
    Moved(String),
    Down(String),
    Indeterminate(String),
    Aborted(String),
}

fn classify(replies: &[Resp]) -> Class {
    let decisive = replies.last().and_then(Resp::err);
    let earlier = || replies.iter().rev().skip(1).filter_map(Resp::err);
    match decisive {
        None => Class::Done,
        Some(e) if e.contains("may or may not") => Class::Indeterminate(e.to_string()),
        Some(e) if e.starts_with("MOVED ") => Class::Moved(e.rsplit(' ').next().unwrap_or_default().to_string()),
        Some(e) if e.starts_with("CLUSTERDOWN") || e.starts_with("TRYAGAIN") => Class::Down(e.to_string()),
        // An aborted EXEC: nothing was applied. Retry where the queued commands were sent.
        Some(e) if e.starts_with("EXECABORT") => {
            if let Some(m) = earlier().find(|e| e.starts_with("MOVED ")) {
                return Class::Moved(m.rsplit(' ').next().unwrap_or_default().to_string());
            }
            if let Some(d) = earlier().find(|e| e.starts_with("CLUSTERDOWN")) {
                return Class::Down(d.to_string());
            }
            Class::Aborted(e.to_string())
        }
        // Any other error of the last command is a definite answer, returned as such.
        Some(_) => Class::Done,
    }
}

impl Client {
    pub fn new(addrs: Vec<String>, cut: CutSwitch) -> Client {
        let leader = addrs[0].clone();
        Client {
            addrs,
            conns: HashMap::new(),
            leader,
            timeout: Duration::from_secs(3),
            give_up: Duration::from_secs(3),
            cut,
            last_node: String::new(),
        }
    }

    /// A random node's address.
    pub fn random_node(&self, rng: &mut StdRng) -> String {
        self.addrs[rng.random_range(0..self.addrs.len())].clone()
    }

    /// Where writes go first.
    pub fn leader(&self) -> String {
        self.leader.clone()
    }

    /// Sends `cmds` (pipelined; a transaction is one request) starting at `first`, following
    /// redirects. The last command's reply decides whether anything was applied.
    pub async fn request(&mut self, cmds: &[Vec<String>], first: String, rng: &mut StdRng) -> Reply {
        let deadline = Instant::now() + self.give_up;
        let mut target = first;
        let mut last = String::from("no attempt");
        loop {
            if Instant::now() >= deadline {
                return Reply::Fail(format!("gave up; last refusal: {last}"));
            }
            if !self.conns.contains_key(&target) {
                match Conn::connect(&target, self.timeout).await {
                    Ok(mut c) => {
                        // A cluster client: READWRITE marks it cluster-aware, so a follower
                        // answers MOVED instead of proxying it to the leader.
                        if c.call_many(&[vec!["READWRITE".to_string()]]).await.is_err() {
                            last = format!("{target}: READWRITE failed");
                            target = self.random_node(rng);
                            continue;
                        }
                        self.conns.insert(target.clone(), c);
                    }
                    Err(e) => {
                        // Nothing was sent: try another node.
                        last = format!("{target}: {e}");
                        target = self.random_node(rng);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
            }
            let conn = self.conns.get_mut(&target).expect("connected");
            self.last_node = target.clone();
            let cut = self.cut.get();
            if cut > 0.0 && rng.random::<f64>() < cut {
                let sent = conn.send(cmds).await;
                self.conns.remove(&target);
                return match sent {
                    Ok(()) => Reply::Info(format!("{target}: connection cut by the harness after sending")),
                    Err(e) => Reply::Info(format!("{target}: {e}")),
                };
            }
            let replies = match conn.call_many(cmds).await {
                Ok(r) => r,
                Err(e) => {
                    self.conns.remove(&target);
                    return Reply::Info(format!("{target}: {e}"));
                }
            };
            match classify(&replies) {
                Class::Done => return Reply::Done(replies),
                Class::Indeterminate(e) => return Reply::Info(format!("{target}: {e}")),
                Class::Aborted(e) => return Reply::Fail(format!("{target}: {e}")),
                Class::Moved(addr) => {
                    last = format!("{target}: MOVED to {addr}");
                    if addr == target {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    self.leader = addr.clone();
                    target = addr;
                }
                Class::Down(e) => {
                    last = format!("{target}: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    target = self.random_node(rng);
                }
            }
        }
    }
}

/// A command as owned strings.
pub fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> Resp {
        Resp::Error(s.into())
    }

    #[test]
    fn the_last_reply_decides() {
        assert!(matches!(classify(&[Resp::Simple("OK".into())]), Class::Done));
        assert!(matches!(classify(&[err("MOVED 1 127.0.0.2:7002")]), Class::Moved(a) if a == "127.0.0.2:7002"));
        assert!(matches!(classify(&[err("CLUSTERDOWN The cluster is down")]), Class::Down(_)));
        assert!(matches!(
            classify(&[err("ERR no commit confirmed within 2000 ms: the write may or may not have been applied")]),
            Class::Indeterminate(_)
        ));
        // A transaction whose queued command was redirected aborts; it is retried at the leader.
        let tx = [
            Resp::Simple("OK".into()),
            err("MOVED 5 127.0.0.3:1"),
            err("EXECABORT Transaction discarded because of previous errors."),
        ];
        assert!(matches!(classify(&tx), Class::Moved(a) if a == "127.0.0.3:1"));
        // A GET that failed inside a CAS does not decide: the EXEC does.
        let cas = [Resp::Simple("OK".into()), err("CLUSTERDOWN x"), Resp::Array(vec![Resp::Simple("OK".into())])];
        assert!(matches!(classify(&cas), Class::Done));
        assert!(matches!(classify(&[err("EXECABORT Transaction discarded")]), Class::Aborted(_)));
        assert!(matches!(classify(&[err("WRONGTYPE x")]), Class::Done));
    }
}
