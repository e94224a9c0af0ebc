//! The change feed behind the HTTP watch (`GET /v1/watch`): every change applied entries made
//! to keys, with the log index of its entry, kept for a while so a watcher can resume from an
//! index it already saw, like etcd's watch revisions.
//!
//! Every node applies the same log, so every node has the same feed: a watcher may move to
//! another node (after a failover) and resume there. The feed keeps the changes of the last
//! entries it applied, up to `--watch-history` changes and [`MAX_BYTES`] of values; an older
//! index, or one this node never applied one by one (it started later, or installed a snapshot
//! over it), is *compacted*: the watcher has to read the keys again and watch from the index
//! `/v1/status` reports.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::sm::{Change, ChangeLog, ChangeMeta};

/// Bytes of keys and values the feed keeps at most (older changes go first).
pub const MAX_BYTES: usize = 64 << 20;

/// Changes kept by default (`--watch-history`).
pub const DEFAULT_HISTORY: usize = 100_000;

/// Notices a live watcher can fall behind by before it has to catch up from the kept changes.
const LIVE_BACKLOG: usize = 4096;

/// One change and the log index of the entry that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub index: u64,
    pub change: Change,
}

impl Event {
    fn of(meta: &ChangeMeta, key: &[u8], value: Option<&[u8]>) -> Event {
        Event {
            index: meta.index,
            change: Change {
                key: Bytes::copy_from_slice(key),
                op: meta.op,
                kind: meta.kind,
                value: value.map(Bytes::copy_from_slice),
            },
        }
    }
}

/// What live watchers receive.
#[derive(Debug, Clone)]
pub enum Notice {
    /// The changes of one or more entries just applied, in log order.
    Changes(Arc<Vec<Event>>),
    /// This node jumped over indexes up to `to` (it installed a snapshot): their changes are
    /// unknown here.
    Skipped { to: u64 },
}

/// A watch asked for changes the feed no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("index {asked} is compacted: this node keeps changes from index {oldest}; read the keys again and watch from the index /v1/status reports")]
pub struct Compacted {
    pub asked: u64,
    pub oldest: u64,
}

/// The feed of one node.
#[derive(Debug)]
pub struct Feed {
    state: Mutex<State>,
    live: broadcast::Sender<Notice>,
}

/// The kept changes: their descriptions, and their keys and values in one ring of bytes (no
/// allocation per change: see [`ChangeLog`]).
#[derive(Debug)]
struct State {
    /// Changes kept at most; 0 turns the feed off.
    history: usize,
    metas: VecDeque<ChangeMeta>,
    data: VecDeque<u8>,
    /// Every change of an entry at or after this index is kept.
    oldest: u64,
    /// The last index applied.
    applied: u64,
}

impl Feed {
    /// A feed over a state machine that has applied up to `applied`.
    pub fn new(applied: u64) -> Feed {
        Feed {
            state: Mutex::new(State {
                history: DEFAULT_HISTORY,
                metas: VecDeque::new(),
                data: VecDeque::new(),
                oldest: applied + 1,
                applied,
            }),
            live: broadcast::channel(LIVE_BACKLOG).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps up to `history` changes (0: none, and nothing is recorded).
    pub fn set_history(&self, history: usize) {
        let mut s = self.lock();
        s.history = history;
        s.trim();
        if history == 0 {
            s.oldest = s.applied + 1;
        }
    }

    /// Whether changes are recorded at all.
    pub fn enabled(&self) -> bool {
        self.lock().history > 0
    }

    /// The index of the last entry applied, and the oldest index a watch can start from.
    pub fn bounds(&self) -> (u64, u64) {
        let s = self.lock();
        (s.applied, s.oldest)
    }

    /// Adds the changes of the entries `first..=last`, applied in order (`log`'s changes are
    /// marked with their indexes).
    pub fn applied(&self, first: u64, last: u64, log: &ChangeLog) {
        let mut s = self.lock();
        if first != s.applied + 1 {
            // Not the next entry: the state machine was replaced meanwhile (a snapshot).
            s.skip_to(first.saturating_sub(1));
            let _ = self.live.send(Notice::Skipped { to: first.saturating_sub(1) });
        }
        s.applied = last;
        if s.history == 0 {
            s.oldest = last + 1;
            return;
        }
        if log.is_empty() {
            return;
        }
        if self.live.receiver_count() > 0 {
            let events = log.iter().map(|(m, k, v)| Event::of(m, k, v)).collect();
            let _ = self.live.send(Notice::Changes(Arc::new(events)));
        }
        s.metas.extend(log.metas.iter().copied());
        s.data.extend(log.data.iter());
        s.trim();
    }

    /// The state machine now stands at `index` (a snapshot was installed): the changes up to it
    /// are unknown here.
    pub fn skipped_to(&self, index: u64) {
        let mut s = self.lock();
        if index == s.applied {
            return;
        }
        s.skip_to(index);
        let _ = self.live.send(Notice::Skipped { to: index });
    }

    /// The kept changes from index `from` on, and a receiver of every later notice (taken
    /// together: nothing falls between the two).
    pub fn subscribe(&self, from: u64) -> Result<(Vec<Event>, broadcast::Receiver<Notice>), Compacted> {
        let s = self.lock();
        if from < s.oldest {
            return Err(Compacted { asked: from, oldest: s.oldest });
        }
        let start = s.metas.partition_point(|m| m.index < from);
        let mut at: usize = s.metas.range(..start).map(ChangeMeta::len).sum();
        let mut bytes = Vec::new();
        let kept = s
            .metas
            .range(start..)
            .map(|m| {
                bytes.clear();
                bytes.extend(s.data.range(at..at + m.len()));
                at += m.len();
                let (key, value) = bytes.split_at(m.key_len as usize);
                Event::of(m, key, m.value_len.map(|_| value))
            })
            .collect();
        Ok((kept, self.live.subscribe()))
    }
}

impl State {
    fn skip_to(&mut self, index: u64) {
        self.metas.clear();
        self.data.clear();
        self.applied = index;
        self.oldest = index + 1;
    }

    /// Drops the oldest changes beyond the limits, whole entries at a time.
    fn trim(&mut self) {
        while self.metas.len() > self.history || self.data.len() > MAX_BYTES {
            let Some(first) = self.metas.front().map(|m| m.index) else { break };
            let mut bytes = 0;
            while self.metas.front().is_some_and(|m| m.index == first) {
                bytes += self.metas.pop_front().expect("front exists").len();
            }
            self.data.drain(..bytes);
            self.oldest = first + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change log of `set`s of `(index, key)`, with the key as the value.
    fn log(changes: &[(u64, &str)]) -> ChangeLog {
        let mut log = ChangeLog::default();
        for &(index, key) in changes {
            log.push("set", Some(crate::sm::Kind::Str), key.as_bytes(), Some(key.as_bytes()));
            log.mark(index);
        }
        log
    }

    fn keys(events: &[Event]) -> Vec<(u64, String)> {
        events.iter().map(|e| (e.index, String::from_utf8_lossy(&e.change.key).into_owned())).collect()
    }

    #[test]
    fn a_watch_gets_the_kept_changes_from_its_index_then_the_live_ones() {
        let feed = Feed::new(0);
        feed.applied(1, 1, &log(&[(1, "a")]));
        feed.applied(2, 3, &log(&[(2, "b"), (2, "c"), (3, "d")]));
        let (kept, mut live) = feed.subscribe(2).unwrap();
        assert_eq!(keys(&kept), vec![(2, "b".into()), (2, "c".into()), (3, "d".into())]);
        feed.applied(4, 4, &ChangeLog::default());
        feed.applied(5, 5, &log(&[(5, "e")]));
        match live.try_recv().unwrap() {
            Notice::Changes(events) => {
                assert_eq!(keys(&events), vec![(5, "e".into())]);
                assert_eq!(events[0].change.value.as_deref(), Some(&b"e"[..]));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(feed.bounds(), (5, 1));
        let (kept, _) = feed.subscribe(9).unwrap();
        assert!(kept.is_empty(), "a future index waits for its changes");
    }

    #[test]
    fn trimmed_and_skipped_indexes_are_compacted() {
        let feed = Feed::new(10);
        assert_eq!(feed.subscribe(10).unwrap_err(), Compacted { asked: 10, oldest: 11 });
        feed.set_history(3);
        feed.applied(11, 11, &log(&[(11, "a"), (11, "b")]));
        feed.applied(12, 12, &log(&[(12, "c"), (12, "d")]));
        // Entry 11 went whole, though one of its changes would have fitted.
        assert_eq!(feed.subscribe(11).unwrap_err().oldest, 12);
        let (kept, mut live) = feed.subscribe(12).unwrap();
        assert_eq!(kept.len(), 2);
        feed.skipped_to(40);
        assert!(matches!(live.try_recv().unwrap(), Notice::Skipped { to: 40 }));
        assert_eq!(feed.subscribe(12).unwrap_err().oldest, 41);
        // An apply that does not follow the last one (a snapshot came in between) is a skip too.
        feed.applied(50, 50, &log(&[(50, "x")]));
        assert!(matches!(live.try_recv().unwrap(), Notice::Skipped { to: 49 }));
        assert_eq!(keys(&feed.subscribe(50).unwrap().0), vec![(50, "x".into())]);
        assert_eq!(feed.subscribe(49).unwrap_err().oldest, 50);
    }

    #[test]
    fn an_empty_history_records_nothing() {
        let feed = Feed::new(0);
        feed.set_history(0);
        assert!(!feed.enabled());
        feed.applied(1, 1, &log(&[(1, "a")]));
        assert_eq!(feed.subscribe(1).unwrap_err().oldest, 2);
        assert!(feed.subscribe(2).unwrap().0.is_empty());
    }
}
