//! Transaction commands: MULTI, EXEC, DISCARD, WATCH, UNWATCH. The queue and the watched keys
//! are the connection's; EXEC proposes every queued data command as one log entry.

use bytes::Bytes;

use super::{node, NodeCommand, ReplyFuture, Run};
use crate::cmd::meta::*;
use crate::resp::Reply;
use crate::server::clients::lock;
use crate::server::conn::Session;

/// The commands of this family, sorted by name.
#[rustfmt::skip]
pub(super) const COMMANDS: &[NodeCommand] = &[
    node!("discard", 1, &["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, ATX, "transactions", "2.0.0", Run::Sync(discard), "Discards a transaction"),
    node!("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"], 0, 0, 0, &["@slow", "@transaction"], "transactions", "1.2.0", Run::Async(exec), "Executes all commands in a transaction"),
    node!("multi", 1, &["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, ATX, "transactions", "1.2.0", Run::Sync(multi), "Starts a transaction"),
    node!("unwatch", 1, &["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, ATX, "transactions", "2.2.0", Run::Sync(unwatch), "Forgets about watched keys of a transaction"),
    node!("watch", -2, &["noscript", "loading", "stale", "fast", "allow_busy"], 1, -1, 1, ATX, "transactions", "2.2.0", Run::Async(watch), "Monitors changes to keys to determine the execution of a transaction"),
];

fn multi(s: &mut Session, _: &[Bytes]) -> Reply {
    if s.multi.is_some() {
        return Reply::err("ERR MULTI calls can not be nested");
    }
    s.multi = Some(Vec::new());
    s.multi_failed = false;
    lock(&s.client).multi = 0;
    Reply::Ok
}

fn discard(s: &mut Session, _: &[Bytes]) -> Reply {
    if s.multi.is_none() {
        return Reply::err("ERR DISCARD without MULTI");
    }
    s.end_multi();
    Reply::Ok
}

fn unwatch(s: &mut Session, _: &[Bytes]) -> Reply {
    s.watches.clear();
    Reply::Ok
}

fn exec<'a>(s: &'a mut Session, _: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(s.exec())
}

fn watch<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(s.watch(args))
}
