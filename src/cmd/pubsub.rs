//! Publishing: PUBLISH and SPUBLISH travel through the log as operations that change nothing
//! but leave their message in the keyspace's outbox, so that every node delivers it to its own
//! subscribers when it applies the entry, in log order. The commands themselves (and the
//! subscriptions) are the node's: `server::commands::pubsub`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Ctx, Result};
use crate::resp::Reply;
use crate::sm::{KeySpace, Message};

/// A publishing operation. Variants are appended, never reordered (log format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PubSubOp {
    /// PUBLISH (`shard` false) or SPUBLISH.
    Publish { channel: Bytes, payload: Bytes, shard: bool },
}

impl PubSubOp {
    /// Publishing goes through the log: it is ordered like a write.
    pub fn is_write(&self) -> bool {
        true
    }
}

/// Leaves the message in the outbox. The reply counts no receivers: how many clients received
/// it is the accepting node's to say (as in Redis Cluster, its own subscribers).
pub fn apply(ks: &mut KeySpace, op: &PubSubOp, _: Ctx) -> Result<Reply> {
    match op {
        PubSubOp::Publish { channel, payload, shard } => {
            ks.outbox.push(Message { channel: channel.clone(), payload: payload.clone(), shard: *shard });
            Ok(Reply::Int(0))
        }
    }
}

/// Publishing is never a read.
pub fn query(_: &KeySpace, op: &PubSubOp, _: Ctx) -> Result<Reply> {
    match op {
        PubSubOp::Publish { .. } => Ok(Reply::Int(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_leaves_the_message_in_the_outbox_and_changes_nothing() {
        let mut ks = KeySpace::new();
        let before = crate::sm::digest(&ks);
        let op = PubSubOp::Publish { channel: Bytes::from("ch"), payload: Bytes::from("hi"), shard: true };
        assert_eq!(apply(&mut ks, &op, Ctx { now: 1, seed: 2 }).unwrap(), Reply::Int(0));
        assert_eq!(ks.outbox, vec![Message { channel: Bytes::from("ch"), payload: Bytes::from("hi"), shard: true }]);
        assert_eq!(crate::sm::digest(&ks), before);
        assert_eq!(ks.seq(), 0);
    }
}
