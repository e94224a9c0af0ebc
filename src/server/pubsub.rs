//! Pub/sub on one node: who is subscribed to what, and the delivery of the messages applied
//! entries publish.
//!
//! A message travels through the log (see `cmd::pubsub`): every node applies the entry and
//! hands its message to [`Hub::deliver`], which queues it for each matching subscriber connected
//! to this node. So a message published through any node reaches subscribers on every node, and
//! all of them see one channel's messages (every channel's, in fact) in the same order: the
//! log's. Delivery is at most once, as in Redis: a subscriber whose connection drops, or whose
//! node installs a snapshot past the entry, misses it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::resp::Reply;
use crate::sm::{glob_matches, Message};

/// A subscriber whose undelivered messages pass this many bytes is disconnected (Redis's
/// `client-output-buffer-limit pubsub 32mb`).
pub const OUTPUT_LIMIT: usize = 32 * 1024 * 1024;

/// The three kinds of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE: a channel.
    Channel,
    /// PSUBSCRIBE: a glob-style pattern over channel names.
    Pattern,
    /// SSUBSCRIBE: a shard channel (SPUBLISH's messages only).
    Shard,
}

/// Every subscription on this node, and where each subscriber's messages go.
#[derive(Debug, Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    channels: HashMap<Bytes, BTreeSet<u64>>,
    patterns: HashMap<Bytes, BTreeSet<u64>>,
    shard: HashMap<Bytes, BTreeSet<u64>>,
    outlets: HashMap<u64, Outlet>,
}

impl Inner {
    fn remove(&mut self, kind: Kind, name: &Bytes, id: u64) {
        let map = self.map(kind);
        if let Some(ids) = map.get_mut(name) {
            ids.remove(&id);
            if ids.is_empty() {
                map.remove(name);
            }
        }
    }

    fn map(&mut self, kind: Kind) -> &mut HashMap<Bytes, BTreeSet<u64>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }
}

/// The sending end of one subscriber's queue.
#[derive(Debug)]
struct Outlet {
    tx: mpsc::UnboundedSender<Reply>,
    queued: Arc<AtomicUsize>,
}

/// The hub dropped a subscriber that fell more than [`OUTPUT_LIMIT`] behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("subscriber over the pub/sub output limit")]
pub struct Dropped;

/// The receiving end of one connection's messages.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Reply>,
    queued: Arc<AtomicUsize>,
}

impl Inbox {
    /// The next message; `None` once the hub dropped this subscriber (output limit reached).
    pub async fn recv(&mut self) -> Option<Reply> {
        let m = self.rx.recv().await?;
        self.queued.fetch_sub(size(&m), Ordering::Relaxed);
        Some(m)
    }

    /// A message already waiting, if any; `Err` once the hub dropped this subscriber.
    pub fn try_recv(&mut self) -> Result<Option<Reply>, Dropped> {
        match self.rx.try_recv() {
            Ok(m) => {
                self.queued.fetch_sub(size(&m), Ordering::Relaxed);
                Ok(Some(m))
            }
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => Err(Dropped),
        }
    }
}

/// What one connection is subscribed to (kept by the connection; the hub has the same).
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub channels: BTreeSet<Bytes>,
    pub patterns: BTreeSet<Bytes>,
    pub shard: BTreeSet<Bytes>,
    /// Created at the first subscription, kept until the connection closes.
    pub inbox: Option<Inbox>,
}

impl Subscriptions {
    /// Whether the connection is in subscribed mode (RESP2 then only takes pub/sub commands).
    pub fn active(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty())
    }

    /// The set of `kind`.
    pub fn set(&mut self, kind: Kind) -> &mut BTreeSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// The count a (un)subscribe confirmation reports: channels and patterns together, or shard
    /// channels.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }
}

/// Bytes a queued message stands for, against the output limit.
fn size(m: &Reply) -> usize {
    match m {
        Reply::Push(items) => items.iter().map(|i| if let Reply::Bulk(b) = i { b.len() + 16 } else { 16 }).sum(),
        _ => 16,
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes client `id` (whose messages go to the inbox made at its first subscription).
    pub fn subscribe(&self, id: u64, subs: &mut Subscriptions, kind: Kind, name: Bytes) {
        let mut inner = self.lock();
        if subs.inbox.is_none() {
            let (tx, rx) = mpsc::unbounded_channel();
            let queued = Arc::new(AtomicUsize::new(0));
            inner.outlets.insert(id, Outlet { tx, queued: queued.clone() });
            subs.inbox = Some(Inbox { rx, queued });
        }
        inner.map(kind).entry(name.clone()).or_default().insert(id);
        subs.set(kind).insert(name);
    }

    /// Unsubscribes client `id` from `name`.
    pub fn unsubscribe(&self, id: u64, subs: &mut Subscriptions, kind: Kind, name: &Bytes) {
        if subs.set(kind).remove(name) {
            self.lock().remove(kind, name, id);
        }
    }

    /// Forgets a closed connection and every subscription it had.
    pub fn detach(&self, id: u64, subs: &mut Subscriptions) {
        let mut inner = self.lock();
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in std::mem::take(subs.set(kind)) {
                inner.remove(kind, &name, id);
            }
        }
        inner.outlets.remove(&id);
    }

    /// Queues each message for every local subscriber it matches, in order.
    pub fn deliver(&self, messages: Vec<Message>) {
        let mut inner = self.lock();
        let mut dropped = Vec::new();
        for m in messages {
            let mut targets: Vec<(u64, Reply)> = Vec::new();
            if m.shard {
                for &id in inner.shard.get(&m.channel).into_iter().flatten() {
                    let push =
                        vec![Reply::bulk("smessage"), Reply::Bulk(m.channel.clone()), Reply::Bulk(m.payload.clone())];
                    targets.push((id, Reply::Push(push)));
                }
            } else {
                for &id in inner.channels.get(&m.channel).into_iter().flatten() {
                    let push =
                        vec![Reply::bulk("message"), Reply::Bulk(m.channel.clone()), Reply::Bulk(m.payload.clone())];
                    targets.push((id, Reply::Push(push)));
                }
                for (pattern, ids) in &inner.patterns {
                    if glob_matches(pattern, &m.channel) {
                        for &id in ids {
                            let push = vec![
                                Reply::bulk("pmessage"),
                                Reply::Bulk(pattern.clone()),
                                Reply::Bulk(m.channel.clone()),
                                Reply::Bulk(m.payload.clone()),
                            ];
                            targets.push((id, Reply::Push(push)));
                        }
                    }
                }
            }
            for (id, push) in targets {
                let Some(outlet) = inner.outlets.get(&id) else { continue };
                let n = size(&push);
                if outlet.queued.fetch_add(n, Ordering::Relaxed) + n > OUTPUT_LIMIT || outlet.tx.send(push).is_err() {
                    dropped.push(id);
                }
            }
            for id in dropped.drain(..) {
                // Dropping the sender closes the inbox: the connection sees it and closes.
                if inner.outlets.remove(&id).is_some() {
                    tracing::warn!(client = id, "subscriber over the pub/sub output limit: disconnected");
                }
            }
        }
    }

    /// How many of this node's clients receive a message on `channel` (PUBLISH's reply, as in
    /// Redis Cluster: the receivers on the node that answers).
    pub fn receivers(&self, channel: &[u8], shard: bool) -> i64 {
        let inner = self.lock();
        if shard {
            return inner.shard.get(channel).map_or(0, |ids| ids.len()) as i64;
        }
        let direct = inner.channels.get(channel).map_or(0, |ids| ids.len());
        let by_pattern: usize =
            inner.patterns.iter().filter(|(p, _)| glob_matches(p, channel)).map(|(_, ids)| ids.len()).sum();
        (direct + by_pattern) as i64
    }

    /// Channels (or shard channels) with at least one subscriber, matching `pattern` if given.
    pub fn channels(&self, shard: bool, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut inner = self.lock();
        let map = inner.map(if shard { Kind::Shard } else { Kind::Channel });
        let mut names: Vec<Bytes> =
            map.keys().filter(|c| pattern.is_none_or(|p| glob_matches(p, c))).cloned().collect();
        names.sort();
        names
    }

    /// Subscribers of `channel` (not counting patterns).
    pub fn numsub(&self, shard: bool, channel: &[u8]) -> i64 {
        let mut inner = self.lock();
        let map = inner.map(if shard { Kind::Shard } else { Kind::Channel });
        map.get(channel).map_or(0, |ids| ids.len()) as i64
    }

    /// Distinct patterns with at least one subscriber.
    pub fn numpat(&self) -> i64 {
        self.lock().patterns.len() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(channel: &str, payload: &str, shard: bool) -> Message {
        Message { channel: Bytes::from(channel.to_string()), payload: Bytes::from(payload.to_string()), shard }
    }

    fn drain(subs: &mut Subscriptions) -> Vec<Reply> {
        let inbox = subs.inbox.as_mut().unwrap();
        std::iter::from_fn(|| inbox.try_recv().unwrap()).collect()
    }

    #[test]
    fn channels_patterns_and_shard_channels() {
        let hub = Hub::default();
        let (mut a, mut b) = (Subscriptions::default(), Subscriptions::default());
        hub.subscribe(1, &mut a, Kind::Channel, Bytes::from("news"));
        hub.subscribe(1, &mut a, Kind::Pattern, Bytes::from("n*"));
        hub.subscribe(2, &mut b, Kind::Shard, Bytes::from("news"));
        assert_eq!(hub.receivers(b"news", false), 2);
        assert_eq!(hub.receivers(b"news", true), 1);
        assert_eq!(hub.numpat(), 1);
        hub.deliver(vec![msg("news", "x", false), msg("news", "y", true), msg("other", "z", false)]);
        let got = drain(&mut a);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            Reply::Push(vec![Reply::bulk("pmessage"), Reply::bulk("n*"), Reply::bulk("news"), Reply::bulk("x")])
        );
        assert_eq!(
            drain(&mut b),
            vec![Reply::Push(vec![Reply::bulk("smessage"), Reply::bulk("news"), Reply::bulk("y")])]
        );
        hub.detach(1, &mut a);
        assert_eq!(hub.receivers(b"news", false), 0);
        assert!(hub.channels(false, None).is_empty());
        assert_eq!(hub.channels(true, Some(b"n*")), vec![Bytes::from("news")]);
    }

    #[test]
    fn a_subscriber_over_the_output_limit_is_dropped() {
        let hub = Hub::default();
        let mut a = Subscriptions::default();
        hub.subscribe(1, &mut a, Kind::Channel, Bytes::from("c"));
        let big = "x".repeat(1024 * 1024);
        hub.deliver((0..40).map(|_| msg("c", &big, false)).collect());
        let inbox = a.inbox.as_mut().unwrap();
        let mut n = 0;
        while let Ok(Some(_)) = inbox.try_recv() {
            n += 1;
        }
        assert!(n < 40, "{n}");
        assert!(inbox.try_recv().is_err(), "the inbox is closed");
    }
}
