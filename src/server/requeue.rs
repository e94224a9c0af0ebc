//! `--pop-delivery at-least-once`: list pops that a leader change may have cut off from their
//! clients are put back.
//!
//! A pop (LPOP, RPOP, LMPOP, and BLPOP, BRPOP, BLMPOP once they pop) is a committed log entry,
//! and its client has its element only when the leader that proposed it applies it and answers.
//! If that leader dies after a majority stored the entry but before the answer left, the next
//! leader commits the entry with its first one (Raft commits an old term's entries that way):
//! every replica removes the element, and no client has it. A queue consumer such as kombu's
//! (Celery's broker), which takes a message with BRPOP and only then records it as
//! unacknowledged, loses that message. By default (`at-most-once`) raftis keeps Redis's rule:
//! an element is never given twice, and such a cut pop is lost.
//!
//! With `at-least-once`, a new leader puts such pops back: the pops of older terms that it had
//! not applied when it stood for election (so their proposer may not have applied them either,
//! and may have died before answering) are pushed back, once its own first entry is applied,
//! at the end they came from, first-taken outermost, in one log entry, and the clients waiting
//! on those keys are woken. Such an element is then given again; a client that did receive the
//! first answer (the old leader had applied the pop and answered, the new one had not applied it
//! yet) gets it twice. What stays uncovered: a pop the new leader had already applied when it
//! stood while the old leader, slower, had not answered yet; a new leader that loses its
//! leadership before the push commits; a leader that restarts fast enough to resume its term
//! from disk (it does not stand again); pops inside MULTI or scripts. A pop that was committed
//! before a restarted node opened its log is never put back by it (it replays those). A list
//! put back gets no TTL back, and a key that changed type meanwhile refuses the push (logged as
//! `refused`).

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::{unix_millis, Shared};
use crate::cmd::lists::Popped;
use crate::sm::{Body, Request};

/// Starts putting back cut pops on this node whenever it is elected.
pub(super) fn start(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    shared.backend.set_requeue_sink(Arc::new(move |term, pops| {
        let _ = tx.send((term, pops));
    }));
    tokio::spawn(run(shared, rx, shutdown))
}

async fn run(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<(u64, Vec<Popped>)>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (term, pops) = tokio::select! {
            got = rx.recv() => match got {
                Some(got) => got,
                None => return,
            },
            _ = shutdown.changed() => return,
        };
        // Every replica sees these pops; only the leader of the term that committed them acts.
        if !shared.backend.leads_term(term) {
            continue;
        }
        put_back(&shared, term, pops).await;
    }
}

async fn put_back(shared: &Shared, term: u64, pops: Vec<Popped>) {
    let now = unix_millis();
    let elements: usize = pops.iter().map(|p| p.elements.len()).sum();
    let keys: Vec<Bytes> = pops.iter().map(|p| p.key.clone()).collect();
    let reqs = Popped::undo(&pops).into_iter().map(|op| Request { now, seed: 0, body: Body::Op(op) }).collect();
    match shared.backend.write_batch(reqs).await {
        Ok(replies) => {
            let refused = replies.iter().filter(|r| matches!(r, crate::resp::Reply::Error(_))).count();
            info!(
                term,
                elements,
                keys = keys.len(),
                refused,
                "put back list pops this election committed: their answers may never have reached their clients \
                 (--pop-delivery at-least-once)"
            );
            shared.blocked.wake(&keys);
        }
        Err(e) => warn!(
            term,
            elements,
            error = ?e,
            "could not put back the list pops this election committed: they are lost"
        ),
    }
}
