//! SCRIPT: the script cache (LOAD, EXISTS, FLUSH go through the log or the read path as the
//! data operations of `cmd::scripting`), KILL (this node's running read-only script) and HELP.

use bytes::Bytes;

use super::{container, eq, help, node, NodeCommand, ReplyFuture, Run};
use crate::cmd::scripting::ScriptOp;
use crate::cmd::Op;
use crate::resp::Reply;
use crate::script::Kill;
use crate::server::conn::Session;

const ACL: &[&str] = &["@slow", "@scripting"];

#[rustfmt::skip]
const SCRIPT_SUBS: &[NodeCommand] = &[
    node!("script|exists", -3, &["noscript"], 0, 0, 0, ACL, "scripting", "2.6.0", Run::Async(exists), "Checks the existence of scripts in the script cache"),
    node!("script|flush", -2, &["noscript"], 0, 0, 0, ACL, "scripting", "2.6.0", Run::Async(flush), "Removes all scripts from the script cache"),
    node!("script|help", 2, &["loading", "stale"], 0, 0, 0, ACL, "scripting", "5.0.0", Run::Sync(script_help), "Returns helpful text about the different subcommands"),
    node!("script|kill", 2, &["noscript", "allow_busy"], 0, 0, 0, ACL, "scripting", "2.6.0", Run::Sync(kill), "Terminates a server-side Lua script during execution"),
    node!("script|load", 3, &["noscript", "stale"], 0, 0, 0, ACL, "scripting", "2.6.0", Run::Async(load), "Loads a server-side Lua script to the script cache"),
];

/// The commands of this family, sorted by name.
#[rustfmt::skip]
pub(super) const COMMANDS: &[NodeCommand] = &[
    node!("script", -2, &[], 0, 0, 0, &["@slow"], "scripting", "2.6.0", Run::Sync(container), "A container for Lua scripts management commands", SCRIPT_SUBS),
];

fn load<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(s.write_op(Op::Script(ScriptOp::Load(args[2].clone()))))
}

fn exists<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(s.read_op(Op::Script(ScriptOp::Exists(args[2..].to_vec()))))
}

fn flush<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(async move {
        match args.get(2) {
            None => {}
            Some(mode) if args.len() == 3 && (eq(mode, "sync") || eq(mode, "async")) => {}
            Some(_) => return Reply::err("ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
        }
        s.write_op(Op::Script(ScriptOp::Flush)).await
    })
}

fn kill(_: &mut Session, _: &[Bytes]) -> Reply {
    match crate::script::kill() {
        Kill::Killed => Reply::Ok,
        Kill::Unkillable => Reply::err(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait \
             the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        ),
        Kill::NotBusy => Reply::err("NOTBUSY No scripts in execution right now."),
    }
}

fn script_help(_: &mut Session, _: &[Bytes]) -> Reply {
    help(&[
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ])
}
