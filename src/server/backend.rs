//! Where requests go: the boundary between the front end and the replicated state.
//!
//! This single-node backend applies each request at once under a lock. The Raft backend keeps
//! the same shape: `write` proposes the request and answers with the reply its own entry
//! produced when applied; `read` answers from the local state once it is safe to.

use std::sync::Mutex;

use crate::resp::Reply;
use crate::sm::{Ctx, Op, Request, StateMachine};

/// Why a write could not be answered with its result.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The node is shutting down; the request may or may not have been applied.
    #[error("the node is shutting down")]
    ShuttingDown,
}

/// The state machine a node serves.
#[derive(Debug, Default)]
pub struct Backend {
    sm: Mutex<StateMachine>,
}

impl Backend {
    /// A backend over an empty keyspace.
    pub fn new() -> Backend {
        Backend::default()
    }

    /// Applies a request and returns its reply.
    pub async fn write(&self, req: Request) -> Result<Reply, WriteError> {
        Ok(self.lock().apply(&req))
    }

    /// Answers a read-only operation from the current state.
    pub fn read(&self, op: &Op, ctx: Ctx) -> Reply {
        self.lock().query(op, ctx)
    }

    /// Runs `f` on the current state (WATCH, the expiry cycle, INFO).
    pub fn inspect<R>(&self, f: impl FnOnce(&StateMachine) -> R) -> R {
        f(&self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StateMachine> {
        // A panic while applying would leave a half-applied request: there is no safe way on.
        self.sm.lock().expect("state machine lock poisoned")
    }
}
