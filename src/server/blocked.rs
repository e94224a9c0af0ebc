//! Clients blocked in BLPOP, BZPOPMIN and the like, waiting on the leader for a key to receive
//! something to pop.
//!
//! Nothing is popped here: a waiting client is woken, and its connection then proposes the
//! command's non-blocking operation through the log like any write, so every replica pops the
//! same element and the client receives exactly what the log says it got. The registry only
//! decides who tries next: the clients waiting on a key are kept in arrival order and only the
//! first is woken when the key may hold something; when it leaves (served, timed out,
//! disconnected) the next one is woken in turn, so clients are served first come, first served.
//!
//! Readers (XREAD with BLOCK) take nothing: every reader waiting on a key is woken whenever the
//! key may hold something, and it looks for itself.

use std::collections::{HashMap, HashSet, VecDeque};
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
    /// The waiting clients that only read (XREAD BLOCK).
    readers: HashSet<u64>,
}

impl Inner {
    /// The first client waiting on a queue to pop (readers do not count).
    fn first_popper(&self, queue: &VecDeque<u64>) -> Option<u64> {
        queue.iter().copied().find(|id| !self.readers.contains(id))
    }
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

    /// Registers client `id` as waiting on `keys` to pop, behind the clients already waiting there.
    pub fn register(&self, id: u64, keys: &[Bytes]) -> Arc<Notify> {
        self.add(id, keys, false)
    }

    /// Registers client `id` as waiting on `keys` to read (woken with every other reader).
    pub fn register_reader(&self, id: u64, keys: &[Bytes]) -> Arc<Notify> {
        self.add(id, keys, true)
    }

    fn add(&self, id: u64, keys: &[Bytes], reader: bool) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        let mut inner = self.lock();
        if reader {
            inner.readers.insert(id);
        }
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
            let Some(mut queue) = inner.queues.remove(key) else { continue };
            if inner.first_popper(&queue) == Some(id) {
                headed.push(key.clone());
            }
            queue.retain(|&w| w != id);
            if !queue.is_empty() {
                inner.queues.insert(key.clone(), queue);
            }
        }
        inner.readers.remove(&id);
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

    /// Wakes the first client waiting to pop from each of `keys`, and every reader waiting on
    /// them. A client woken while it is not waiting keeps the wake-up for its next wait, so none
    /// is lost.
    pub fn wake(&self, keys: &[Bytes]) {
        if keys.is_empty() {
            return;
        }
        let inner = self.lock();
        for key in keys {
            let Some(queue) = inner.queues.get(key) else { continue };
            let readers = queue.iter().filter(|id| inner.readers.contains(id));
            for id in readers.chain(inner.first_popper(queue).as_ref()) {
                if let Some(notify) = inner.wakers.get(id) {
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
    async fn every_reader_is_woken_with_the_first_popper() {
        let b = Blocked::default();
        let reader = b.register_reader(1, &keys(&["s"]));
        let popper = b.register(2, &keys(&["s"]));
        let second_popper = b.register(3, &keys(&["s"]));
        let late_reader = b.register_reader(4, &keys(&["s"]));
        b.wake(&keys(&["s"]));
        let woken = |n: &Arc<Notify>| {
            let n = n.clone();
            async move { tokio::time::timeout(std::time::Duration::from_millis(50), n.notified()).await.is_ok() }
        };
        assert!(woken(&reader).await && woken(&popper).await && woken(&late_reader).await);
        assert!(!woken(&second_popper).await);
        // A reader leaving hands nothing on; the popper leaving does.
        assert!(b.unregister(1, &keys(&["s"])).is_empty());
        assert_eq!(b.unregister(2, &keys(&["s"])), keys(&["s"]));
        b.wake(&keys(&["s"]));
        assert!(woken(&second_popper).await && woken(&late_reader).await);
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
