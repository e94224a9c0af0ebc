//! Pub/sub commands: SUBSCRIBE and friends change this connection's subscriptions on this node;
//! PUBLISH and SPUBLISH go through the log (see `server::pubsub` for how messages travel);
//! PUBSUB reports this node's subscriptions, as in Redis Cluster.

use bytes::Bytes;

use super::{container, help, node, text, NodeCommand, ReplyFuture, Run};
use crate::resp::Reply;
use crate::server::conn::Session;
use crate::server::pubsub::Kind;

const PS: &[&str] = &["pubsub", "loading", "stale"];
const PSF: &[&str] = &["pubsub", "loading", "stale", "fast"];
const PSN: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const APS: &[&str] = &["@pubsub", "@slow"];
const APF: &[&str] = &["@pubsub", "@fast"];

#[rustfmt::skip]
const PUBSUB_SUBS: &[NodeCommand] = &[
    node!("pubsub|channels", -2, PS, 0, 0, 0, APS, "pubsub", "2.8.0", Run::Sync(channels), "Returns the active channels"),
    node!("pubsub|help", 2, &["loading", "stale"], 0, 0, 0, &["@slow"], "pubsub", "6.2.0", Run::Sync(pubsub_help), "Returns helpful text about the different subcommands"),
    node!("pubsub|numpat", 2, PS, 0, 0, 0, APS, "pubsub", "2.8.0", Run::Sync(numpat), "Returns a count of unique pattern subscriptions"),
    node!("pubsub|numsub", -2, PS, 0, 0, 0, APS, "pubsub", "2.8.0", Run::Sync(numsub), "Returns a count of subscribers to channels"),
    node!("pubsub|shardchannels", -2, PS, 0, 0, 0, APS, "pubsub", "7.0.0", Run::Sync(shardchannels), "Returns the active shard channels"),
    node!("pubsub|shardnumsub", -2, PS, 0, 0, 0, APS, "pubsub", "7.0.0", Run::Sync(shardnumsub), "Returns the count of subscribers of shard channels"),
];

/// The commands of this family, sorted by name.
#[rustfmt::skip]
pub(super) const COMMANDS: &[NodeCommand] = &[
    node!("psubscribe", -2, PSN, 0, 0, 0, APS, "pubsub", "2.0.0", Run::Sync(psubscribe), "Listens for messages published to channels that match one or more patterns"),
    node!("publish", 3, PSF, 0, 0, 0, APF, "pubsub", "2.0.0", Run::Async(publish), "Posts a message to a channel"),
    node!("pubsub", -2, &[], 0, 0, 0, &["@slow"], "pubsub", "2.8.0", Run::Sync(container), "A container for Pub/Sub commands", PUBSUB_SUBS),
    node!("punsubscribe", -1, PSN, 0, 0, 0, APS, "pubsub", "2.0.0", Run::Sync(punsubscribe), "Stops listening to messages published to channels that match one or more patterns"),
    node!("spublish", 3, PSF, 1, 1, 1, APF, "pubsub", "7.0.0", Run::Async(spublish), "Post a message to a shard channel"),
    node!("ssubscribe", -2, PSN, 1, -1, 1, APS, "pubsub", "7.0.0", Run::Sync(ssubscribe), "Listens for messages published to shard channels"),
    node!("subscribe", -2, PSN, 0, 0, 0, APS, "pubsub", "2.0.0", Run::Sync(subscribe), "Listens for messages published to channels"),
    node!("sunsubscribe", -1, PSN, 1, -1, 1, APS, "pubsub", "7.0.0", Run::Sync(sunsubscribe), "Stops listening to messages posted to shard channels"),
    node!("unsubscribe", -1, PSN, 0, 0, 0, APS, "pubsub", "2.0.0", Run::Sync(unsubscribe), "Stops listening to messages posted to channels"),
];

/// The commands a RESP2 connection may run while subscribed.
pub const ALLOWED_WHILE_SUBSCRIBED: &[&str] =
    &["subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe", "ping", "quit", "reset"];

fn subscribe(s: &mut Session, args: &[Bytes]) -> Reply {
    s.subscribe(Kind::Channel, &args[1..])
}

fn psubscribe(s: &mut Session, args: &[Bytes]) -> Reply {
    s.subscribe(Kind::Pattern, &args[1..])
}

fn ssubscribe(s: &mut Session, args: &[Bytes]) -> Reply {
    s.subscribe(Kind::Shard, &args[1..])
}

fn unsubscribe(s: &mut Session, args: &[Bytes]) -> Reply {
    s.unsubscribe(Kind::Channel, &args[1..])
}

fn punsubscribe(s: &mut Session, args: &[Bytes]) -> Reply {
    s.unsubscribe(Kind::Pattern, &args[1..])
}

fn sunsubscribe(s: &mut Session, args: &[Bytes]) -> Reply {
    s.unsubscribe(Kind::Shard, &args[1..])
}

fn publish<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(s.publish(args, false))
}

fn spublish<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(s.publish(args, true))
}

/// The error Redis gives a PUBSUB subcommand with too many arguments.
fn too_many(sub: &str) -> Reply {
    Reply::err(format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP."))
}

fn list_channels(s: &Session, args: &[Bytes], shard: bool) -> Reply {
    if args.len() > 3 {
        return too_many(&text(&args[1]));
    }
    let names = s.shared.pubsub.channels(shard, args.get(2).map(|p| &p[..]));
    Reply::Array(names.into_iter().map(Reply::Bulk).collect())
}

fn channels(s: &mut Session, args: &[Bytes]) -> Reply {
    list_channels(s, args, false)
}

fn shardchannels(s: &mut Session, args: &[Bytes]) -> Reply {
    list_channels(s, args, true)
}

fn count_subscribers(s: &Session, args: &[Bytes], shard: bool) -> Reply {
    let mut out = Vec::with_capacity((args.len() - 2) * 2);
    for channel in &args[2..] {
        out.push(Reply::Bulk(channel.clone()));
        out.push(Reply::Int(s.shared.pubsub.numsub(shard, channel)));
    }
    // A flat array in RESP3 too, as Redis 7.0 answers.
    Reply::Array(out)
}

fn numsub(s: &mut Session, args: &[Bytes]) -> Reply {
    count_subscribers(s, args, false)
}

fn shardnumsub(s: &mut Session, args: &[Bytes]) -> Reply {
    count_subscribers(s, args, true)
}

fn numpat(s: &mut Session, _: &[Bytes]) -> Reply {
    Reply::Int(s.shared.pubsub.numpat())
}

fn pubsub_help(_: &mut Session, _: &[Bytes]) -> Reply {
    help(&[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ])
}

/// Whether `name` is PUBLISH or SPUBLISH (the latter: a shard message).
pub fn is_publish(name: &str) -> Option<bool> {
    match name {
        "publish" => Some(false),
        "spublish" => Some(true),
        _ => None,
    }
}
