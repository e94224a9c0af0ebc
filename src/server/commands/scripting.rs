//! SCRIPT and FUNCTION: the script cache and the function libraries (LOAD, EXISTS, FLUSH,
//! DELETE, LIST, STATS go through the log or the read path as the data operations of
//! `cmd::scripting`), KILL (this node's running read-only script) and HELP.

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

#[rustfmt::skip]
const FUNCTION_SUBS: &[NodeCommand] = &[
    node!("function|delete", 3, &["noscript", "write"], 0, 0, 0, &["@write", "@slow", "@scripting"], "scripting", "7.0.0", Run::Async(function_delete), "Deletes a library and all its functions"),
    node!("function|dump", 2, &["noscript"], 0, 0, 0, ACL, "scripting", "7.0.0", Run::Async(function_dump), "Dumps all libraries into a serialized binary payload"),
    node!("function|flush", -2, &["noscript", "write"], 0, 0, 0, &["@write", "@slow", "@scripting"], "scripting", "7.0.0", Run::Async(function_flush), "Deletes all libraries and functions"),
    node!("function|help", 2, &["loading", "stale"], 0, 0, 0, ACL, "scripting", "7.0.0", Run::Sync(function_help), "Returns helpful text about the different subcommands"),
    node!("function|kill", 2, &["noscript", "allow_busy"], 0, 0, 0, ACL, "scripting", "7.0.0", Run::Sync(function_kill), "Terminates a function during execution"),
    node!("function|list", -2, &["noscript"], 0, 0, 0, ACL, "scripting", "7.0.0", Run::Async(function_list), "Returns information about all libraries"),
    node!("function|load", -3, &["noscript", "write", "denyoom"], 0, 0, 0, &["@write", "@slow", "@scripting"], "scripting", "7.0.0", Run::Async(function_load), "Creates a library"),
    node!("function|restore", -3, &["noscript", "write", "denyoom"], 0, 0, 0, &["@write", "@slow", "@scripting"], "scripting", "7.0.0", Run::Async(function_restore), "Restores all libraries from a payload"),
    node!("function|stats", 2, &["noscript", "allow_busy"], 0, 0, 0, ACL, "scripting", "7.0.0", Run::Async(function_stats), "Returns information about a function during execution"),
];

/// The commands of this family, sorted by name.
#[rustfmt::skip]
pub(super) const COMMANDS: &[NodeCommand] = &[
    node!("function", -2, &[], 0, 0, 0, &["@slow"], "scripting", "7.0.0", Run::Sync(container), "A container for function commands", FUNCTION_SUBS),
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

fn function_load<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(async move {
        match crate::cmd::scripting::function_load(args) {
            Ok(op) => s.write_op(op).await,
            Err(reply) => reply,
        }
    })
}

fn function_dump<'a>(s: &'a mut Session, _: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(s.read_op(Op::Script(ScriptOp::FunctionDump)))
}

fn function_restore<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(async move {
        match crate::cmd::scripting::function_restore(args) {
            Ok(op) => s.write_op(op).await,
            Err(reply) => reply,
        }
    })
}

fn function_delete<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(s.write_op(Op::Script(ScriptOp::FunctionDelete(args[2].clone()))))
}

fn function_flush<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(async move {
        match args.get(2) {
            None => {}
            Some(_) if args.len() > 3 => {
                return Reply::err(
                    "ERR unknown subcommand or wrong number of arguments for 'flush'. Try FUNCTION HELP.",
                )
            }
            Some(mode) if eq(mode, "sync") || eq(mode, "async") => {}
            Some(_) => return Reply::err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"),
        }
        s.write_op(Op::Script(ScriptOp::FunctionFlush)).await
    })
}

fn function_list<'a>(s: &'a mut Session, args: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(async move {
        match crate::cmd::scripting::function_list(args) {
            Ok(op) => s.read_op(op).await,
            Err(reply) => reply,
        }
    })
}

fn function_stats<'a>(s: &'a mut Session, _: &'a [Bytes]) -> ReplyFuture<'a> {
    Box::pin(s.read_op(Op::Script(ScriptOp::FunctionStats)))
}

fn function_kill(s: &mut Session, args: &[Bytes]) -> Reply {
    kill(s, args)
}

fn function_help(_: &mut Session, _: &[Bytes]) -> Reply {
    help(&[
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
    ])
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
