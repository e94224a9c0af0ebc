//! Clients blocked in BLPOP, BZPOPMIN and the like, waiting on the leader for a key to receive
//! something to pop.
//!
//! Nothing is popped here: a waiting client is woken, and its connection then proposes the
//! command's non-blocking operation through the log like any write, so every replica pops the
//! same element and the client receives exactly what the log says it got. The registry only
//! decides who tries next: the clients waiting on a key are kept in arrival order and only the
//! first is woken when the key may hold something; when it leaves (served, timed out,
//! disconnected) the next one is woken in turn, so clients are served first come, first served.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

/// The waiting clients.
#[derive(Debug, Default)]
pub struct Blocked {
    inner: Mutex<Inner>,
    /// How many clients are registered (INFO's `blocked_clients`; zero lets writers skip the
    /// registry entirely).
    count: AtomicUsize,
}

#[derive(Debug, Default)]
struct Inner {
    /// For each key, the waiting client ids in arrival order.
    queues: HashMap<Bytes, VecDeque<u64>>,
    /// Each waiting client's wake-up.
    wakers: HashMap<u64, Arc<Notify>>,
    /// Clients CLIENT UNBLOCK released, and how.
    unblocked: HashMap<u64, Unblock>,
}

/// How CLIENT UNBLOCK releases a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblock {
    /// As if its timeout had passed.
    Timeout,
    /// With an `-UNBLOCKED` error.
    Error,
}

impl Blocked {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers client `id` as waiting on `keys`, behind the clients already waiting there.
    pub fn register(&self, id: u64, keys: &[Bytes]) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        let mut inner = self.lock();
        for key in keys {
            let queue = inner.queues.entry(key.clone()).or_default();
            if !queue.contains(&id) {
                queue.push_back(id);
            }
        }
        inner.wakers.insert(id, notify.clone());
        self.count.fetch_add(1, Ordering::SeqCst);
        notify
    }

    /// Removes client `id` from `keys`; returns the keys whose queue it headed, whose next
    /// client must now be given its chance (see [`Blocked::wake`]).
    pub fn unregister(&self, id: u64, keys: &[Bytes]) -> Vec<Bytes> {
        let mut inner = self.lock();
        let mut headed = Vec::new();
        for key in keys {
            if let Some(queue) = inner.queues.get_mut(key) {
                if queue.front() == Some(&id) {
                    headed.push(key.clone());
                }
                queue.retain(|&w| w != id);
                if queue.is_empty() {
                    inner.queues.remove(key);
                }
            }
        }
        if inner.wakers.remove(&id).is_some() {
            self.count.fetch_sub(1, Ordering::SeqCst);
        }
        inner.unblocked.remove(&id);
        headed
    }

    /// CLIENT UNBLOCK: releases client `id` if it is waiting; whether it was.
    pub fn unblock(&self, id: u64, how: Unblock) -> bool {
        let mut inner = self.lock();
        let Some(notify) = inner.wakers.get(&id).cloned() else { return false };
        inner.unblocked.insert(id, how);
        notify.notify_one();
        true
    }

    /// Whether CLIENT UNBLOCK released client `id`, and how.
    pub fn take_unblock(&self, id: u64) -> Option<Unblock> {
        self.lock().unblocked.remove(&id)
    }

    /// How many clients are waiting.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// The keys clients wait on (to look up which now hold something).
    pub fn keys(&self) -> Vec<Bytes> {
        if self.len() == 0 {
            return Vec::new();
        }
        self.lock().queues.keys().cloned().collect()
    }

    /// Wakes the first client waiting on each of `keys`. A client woken while it is not
    /// waiting keeps the wake-up for its next wait, so none is lost.
    pub fn wake(&self, keys: &[Bytes]) {
        if keys.is_empty() {
            return;
        }
        let inner = self.lock();
        for key in keys {
            if let Some(first) = inner.queues.get(key).and_then(|q| q.front()) {
                if let Some(notify) = inner.wakers.get(first) {
                    notify.notify_one();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<Bytes> {
        names.iter().map(|n| Bytes::from(n.to_string())).collect()
    }

    #[tokio::test]
    async fn first_come_first_served() {
        let b = Blocked::default();
        let first = b.register(1, &keys(&["q"]));
        let second = b.register(2, &keys(&["q", "r"]));
        assert_eq!(b.len(), 2);
        b.wake(&keys(&["q"]));
        // Only the first in line is woken.
        tokio::time::timeout(std::time::Duration::from_millis(50), first.notified()).await.unwrap();
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), second.notified()).await.is_err());
        // When it leaves, the queues it headed are handed on.
        assert_eq!(b.unregister(1, &keys(&["q"])), keys(&["q"]));
        b.wake(&keys(&["q"]));
        tokio::time::timeout(std::time::Duration::from_millis(50), second.notified()).await.unwrap();
        assert_eq!(b.unregister(2, &keys(&["q", "r"])), keys(&["q", "r"]));
        assert_eq!(b.len(), 0);
        assert!(b.keys().is_empty());
    }

    #[tokio::test]
    async fn client_unblock_releases_only_a_waiting_client() {
        let b = Blocked::default();
        assert!(!b.unblock(7, Unblock::Error));
        let n = b.register(7, &keys(&["q"]));
        assert!(b.unblock(7, Unblock::Timeout));
        tokio::time::timeout(std::time::Duration::from_millis(50), n.notified()).await.unwrap();
        assert_eq!(b.take_unblock(7), Some(Unblock::Timeout));
        assert_eq!(b.take_unblock(7), None);
        b.unregister(7, &keys(&["q"]));
        assert!(!b.unblock(7, Unblock::Timeout));
    }
}
