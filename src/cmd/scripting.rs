//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, and the operations behind SCRIPT
//! LOAD, EXISTS and FLUSH (the SCRIPT container itself is a node command).
//!
//! A script that may write is one log entry, run when it is applied, on every replica; its
//! `redis.call`s are data commands parsed and applied right there, against the same keyspace,
//! with the entry's time and seed, so the script's writes are atomic and every replica ends
//! identical. A read-only run (EVAL_RO, EVALSHA_RO, a `#!lua flags=no-writes` EVAL) is
//! answered like any read, with no log entry. The script cache (SHA1 -> body) is replicated
//! state: a script loaded through one node runs by SHA on every node, after failovers and
//! restarts.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{args, data_commands, Ctx, DataCommand, Error, Op, Result};
use crate::data;
use crate::resp::Reply;
use crate::script::{self, flags, Limits};
use crate::sm::KeySpace;

const EVAL_FLAGS: &[&str] = &["noscript", "stale", "skip_monitor", "no_mandatory_keys"];
const EVAL_RO_FLAGS: &[&str] = &["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys"];
const ACL: &[&str] = &["@slow", "@scripting"];

pub const COMMANDS: &[DataCommand] = &[
    data!("eval", -3, EVAL_FLAGS, 0, 0, 0, ACL, "scripting", "2.6.0", parse_eval, "Execute a Lua script server side")
        .keynum(2, 3),
    data!(
        "evalsha",
        -3,
        EVAL_FLAGS,
        0,
        0,
        0,
        ACL,
        "scripting",
        "2.6.0",
        parse_evalsha,
        "Execute a Lua script server side"
    )
    .keynum(2, 3),
    data!(
        "eval_ro",
        -3,
        EVAL_RO_FLAGS,
        0,
        0,
        0,
        ACL,
        "scripting",
        "7.0.0",
        parse_eval_ro,
        "Execute a read-only Lua script server side"
    )
    .keynum(2, 3),
    data!(
        "evalsha_ro",
        -3,
        EVAL_RO_FLAGS,
        0,
        0,
        0,
        ACL,
        "scripting",
        "7.0.0",
        parse_evalsha_ro,
        "Execute a read-only Lua script server side"
    )
    .keynum(2, 3),
    data!("fcall", -3, EVAL_FLAGS, 0, 0, 0, ACL, "scripting", "7.0.0", parse_fcall, "Invoke a function").keynum(2, 3),
    data!(
        "fcall_ro",
        -3,
        EVAL_RO_FLAGS,
        0,
        0,
        0,
        ACL,
        "scripting",
        "7.0.0",
        parse_fcall_ro,
        "Invoke a read-only function"
    )
    .keynum(2, 3),
];

/// Which script a run is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Script {
    /// EVAL's body (added to the script cache when it compiles).
    Body(Bytes),
    /// EVALSHA's SHA1, lower-cased.
    Sha(Bytes),
}

/// A scripting operation. Variants are appended, never reordered (log format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ScriptOp {
    /// EVAL and its forms. `read_only`: EVAL_RO, EVALSHA_RO, or a `no-writes` body.
    Eval { script: Script, keys: Vec<Bytes>, argv: Vec<Bytes>, read_only: bool, limits: Limits },
    /// SCRIPT LOAD.
    Load(Bytes),
    /// SCRIPT EXISTS.
    Exists(Vec<Bytes>),
    /// SCRIPT FLUSH.
    Flush,
    /// FUNCTION LOAD [REPLACE].
    FunctionLoad { code: Bytes, replace: bool, limits: Limits },
    /// FUNCTION DELETE.
    FunctionDelete(Bytes),
    /// FUNCTION FLUSH.
    FunctionFlush,
    /// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
    FunctionList { pattern: Option<Bytes>, withcode: bool },
    /// FUNCTION STATS.
    FunctionStats,
    /// FCALL, FCALL_RO. The numkeys argument is checked when the function is found (Redis's
    /// order of errors).
    Fcall { name: Bytes, numkeys: Bytes, args: Vec<Bytes>, read_only: bool, limits: Limits },
    /// FUNCTION DUMP.
    FunctionDump,
    /// FUNCTION RESTORE: the payload's library codes and the policy.
    FunctionRestore { codes: Vec<Bytes>, policy: RestorePolicy, limits: Limits },
    /// A write run (EVAL, EVALSHA, FCALL) accepted while its node was over `maxmemory`: the
    /// node's out-of-memory state, stamped like the time and the limits, so that every replica
    /// refuses the same commands in it (Redis's `pre_command_oom_state`): a script with flags
    /// but without `allow-oom` does not run, and a script without flags gets OOM from any call
    /// that may use memory until its first write.
    OverMemory(Box<ScriptOp>),
}

/// The error of a script with flags, but not `allow-oom`, run over `maxmemory`.
const OOM_SCRIPT: &str = "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'";
/// The error of a call that may use memory, from a script without flags run over `maxmemory`.
const OOM_CALL: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// FUNCTION RESTORE's policy for libraries that exist already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestorePolicy {
    /// Refuse when a library exists.
    Append,
    /// Replace existing libraries of the same names.
    Replace,
    /// Delete every library first.
    Flush,
}

/// A function library in the keyspace: its code and what it registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    pub code: Bytes,
    pub info: script::LibraryInfo,
}

impl ScriptOp {
    pub fn is_write(&self) -> bool {
        match self {
            ScriptOp::Eval { read_only, .. } => !read_only,
            ScriptOp::Load(_) | ScriptOp::Flush => true,
            ScriptOp::Exists(_) => false,
            ScriptOp::FunctionLoad { .. } | ScriptOp::FunctionDelete(_) | ScriptOp::FunctionFlush => true,
            ScriptOp::FunctionList { .. } | ScriptOp::FunctionStats | ScriptOp::FunctionDump => false,
            ScriptOp::FunctionRestore { .. } => true,
            ScriptOp::Fcall { read_only, .. } => !read_only,
            ScriptOp::OverMemory(op) => op.is_write(),
        }
    }

    /// This operation as accepted by a node over `maxmemory`: write runs are marked (see
    /// [`ScriptOp::OverMemory`]), anything else is as it was.
    pub fn over_memory(self) -> ScriptOp {
        match self {
            op @ (ScriptOp::Eval { read_only: false, .. } | ScriptOp::Fcall { read_only: false, .. }) => {
                ScriptOp::OverMemory(Box::new(op))
            }
            op => op,
        }
    }
}

fn parse(args: &[Bytes], sha: bool, read_only: bool) -> Result<Op> {
    let numkeys = args::int(&args[2])?;
    if numkeys > args.len() as i64 - 3 {
        return Err(Error::Other("ERR Number of keys can't be greater than number of args".into()));
    }
    if numkeys < 0 {
        return Err(Error::Other("ERR Number of keys can't be negative".into()));
    }
    let split = 3 + numkeys as usize;
    let script =
        if sha { Script::Sha(Bytes::from(args[1].to_ascii_lowercase())) } else { Script::Body(args[1].clone()) };
    // A body that declares `no-writes` runs as a read (Redis runs it read-only too).
    let no_writes =
        matches!(&script, Script::Body(b) if script::shebang(b).is_ok_and(|(f, _)| f & flags::NO_WRITES != 0));
    Ok(Op::Script(ScriptOp::Eval {
        script,
        keys: args[3..split].to_vec(),
        argv: args[split..].to_vec(),
        read_only: read_only || no_writes,
        limits: script::limits(),
    }))
}

fn parse_eval(args: &[Bytes], _: u64) -> Result<Op> {
    parse(args, false, false)
}

fn parse_evalsha(args: &[Bytes], _: u64) -> Result<Op> {
    parse(args, true, false)
}

fn parse_eval_ro(args: &[Bytes], _: u64) -> Result<Op> {
    parse(args, false, true)
}

fn parse_evalsha_ro(args: &[Bytes], _: u64) -> Result<Op> {
    parse(args, true, true)
}

fn fcall(args: &[Bytes], read_only: bool) -> Result<Op> {
    Ok(Op::Script(ScriptOp::Fcall {
        name: args[1].clone(),
        numkeys: args[2].clone(),
        args: args[3..].to_vec(),
        read_only,
        limits: script::limits(),
    }))
}

fn parse_fcall(args: &[Bytes], _: u64) -> Result<Op> {
    fcall(args, false)
}

fn parse_fcall_ro(args: &[Bytes], _: u64) -> Result<Op> {
    fcall(args, true)
}

/// Parses FUNCTION LOAD's arguments (`args[0..2]` are FUNCTION LOAD).
pub fn function_load(args: &[Bytes]) -> std::result::Result<Op, Reply> {
    let (replace, code) = match args.len() {
        3 => (false, &args[2]),
        4 if args[2].eq_ignore_ascii_case(b"replace") => (true, &args[3]),
        _ => return Err(Reply::Error(format!("ERR Unknown option given: {}", String::from_utf8_lossy(&args[2])))),
    };
    Ok(Op::Script(ScriptOp::FunctionLoad { code: code.clone(), replace, limits: script::limits() }))
}

/// Parses FUNCTION RESTORE's arguments (the payload is decoded here, on the accepting node).
pub fn function_restore(args: &[Bytes]) -> std::result::Result<Op, Reply> {
    let policy = match args.get(3) {
        None => RestorePolicy::Append,
        Some(p) if args.len() == 4 && p.eq_ignore_ascii_case(b"append") => RestorePolicy::Append,
        Some(p) if args.len() == 4 && p.eq_ignore_ascii_case(b"replace") => RestorePolicy::Replace,
        Some(p) if args.len() == 4 && p.eq_ignore_ascii_case(b"flush") => RestorePolicy::Flush,
        Some(_) => {
            return Err(Reply::err("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."))
        }
    };
    let codes = super::dump::decode_functions(&args[2]).map_err(Reply::err)?;
    Ok(Op::Script(ScriptOp::FunctionRestore {
        codes: codes.into_iter().map(Bytes::from).collect(),
        policy,
        limits: script::limits(),
    }))
}

/// Parses FUNCTION LIST's arguments.
pub fn function_list(args: &[Bytes]) -> std::result::Result<Op, Reply> {
    let (mut pattern, mut withcode) = (None, false);
    let mut i = 2;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"withcode") && !withcode {
            withcode = true;
        } else if args[i].eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
            i += 1;
            let Some(p) = args.get(i) else {
                return Err(Reply::err("ERR library name argument was not given"));
            };
            pattern = Some(p.clone());
        } else {
            return Err(Reply::Error(format!("ERR Unknown argument {}", String::from_utf8_lossy(&args[i]))));
        }
        i += 1;
    }
    Ok(Op::Script(ScriptOp::FunctionList { pattern, withcode }))
}

/// The reply of FCALL's numkeys check, or the split of its arguments into keys and argv.
fn split_keys(numkeys: &[u8], args: &[Bytes]) -> std::result::Result<(Vec<Bytes>, Vec<Bytes>), Reply> {
    let n = args::int(numkeys).map_err(|_| Reply::err("ERR Bad number of keys provided"))?;
    if n > args.len() as i64 {
        return Err(Reply::err("ERR Number of keys can't be greater than number of args"));
    }
    if n < 0 {
        return Err(Reply::err("ERR Number of keys can't be negative"));
    }
    Ok((args[..n as usize].to_vec(), args[n as usize..].to_vec()))
}

/// The library holding function `name`, and the function.
fn find_function<'a>(ks: &'a KeySpace, name: &[u8]) -> Option<(&'a Library, &'a script::FunctionInfo)> {
    let name = std::str::from_utf8(name).ok()?;
    // Function names are case-insensitive (Redis 7.0's function dictionary).
    ks.functions
        .values()
        .find_map(|lib| lib.info.functions.iter().find(|f| f.name.eq_ignore_ascii_case(name)).map(|f| (lib, f)))
}

/// What FCALL runs: the function's library, its registered name, KEYS, ARGV, and whether the
/// run is read-only.
struct Prepared<'a> {
    lib: &'a Library,
    name: String,
    keys: Vec<Bytes>,
    argv: Vec<Bytes>,
    read_only: bool,
    /// The function declares `allow-oom`.
    allow_oom: bool,
}

/// Runs FCALL/FCALL_RO's checks: the function, numkeys, a write function under `_RO`.
fn prepare_fcall<'a>(
    ks: &'a KeySpace,
    name: &[u8],
    numkeys: &[u8],
    args: &[Bytes],
    read_only: bool,
) -> std::result::Result<Prepared<'a>, Reply> {
    let Some((lib, f)) = find_function(ks, name) else {
        return Err(Reply::err("ERR Function not found"));
    };
    let (keys, argv) = split_keys(numkeys, args)?;
    let no_writes = f.bits() & flags::NO_WRITES != 0;
    if read_only && !no_writes {
        return Err(Reply::err("ERR Can not execute a script with write flag using *_ro command."));
    }
    let allow_oom = f.bits() & flags::ALLOW_OOM != 0;
    Ok(Prepared { lib, name: f.name.clone(), keys, argv, read_only: read_only || no_writes, allow_oom })
}

const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// Applies a scripting operation (a write: it may change the keyspace and the script cache).
pub fn apply(ks: &mut KeySpace, op: &ScriptOp, ctx: Ctx) -> Result<Reply> {
    apply_run(ks, op, ctx, false)
}

/// [`apply`], knowing whether the accepting node was over `maxmemory`.
fn apply_run(ks: &mut KeySpace, op: &ScriptOp, ctx: Ctx, over_memory: bool) -> Result<Reply> {
    match op {
        ScriptOp::OverMemory(op) => apply_run(ks, op, ctx, true),
        ScriptOp::Eval { script, keys, argv, read_only, limits } => {
            let (sha, body) = match resolve(ks, script) {
                Ok(found) => found,
                Err(reply) => return Ok(reply),
            };
            if let Err(reply) = check(&sha, &body, *read_only) {
                return Ok(reply);
            }
            if matches!(script, Script::Body(_)) && !*read_only {
                ks.scripts.insert(sha.clone(), body.clone());
            }
            let bits = script::shebang(&body).map_or(flags::EVAL_COMPAT, |(f, _)| f);
            let read_only = *read_only || bits & flags::NO_WRITES != 0;
            let compat = bits & flags::EVAL_COMPAT != 0;
            if over_memory && !read_only && !compat && bits & flags::ALLOW_OOM == 0 {
                return Ok(Reply::err(OOM_SCRIPT));
            }
            let deny_oom = over_memory && !read_only && compat;
            let mut dispatch = applying(ks, ctx, read_only, limits.strict_keys.then_some(&keys[..]), deny_oom);
            let run =
                script::Run { sha: &sha, body: &body, keys, argv, seed: ctx.seed, limits: *limits, read_only: false };
            Ok(script::run(&run, &mut dispatch))
        }
        ScriptOp::Load(body) => {
            let sha = script::sha1_hex(body);
            if let Err(text) = script::shebang(body) {
                return Ok(Reply::Error(format!("ERR {text}")));
            }
            if let Err(text) = script::compile_check(&sha, body) {
                return Ok(Reply::Error(format!("ERR {text}")));
            }
            ks.scripts.insert(sha.clone(), body.clone());
            Ok(Reply::Bulk(Bytes::from(sha)))
        }
        ScriptOp::Flush => {
            ks.scripts.clear();
            Ok(Reply::Ok)
        }
        ScriptOp::FunctionLoad { code, replace, limits } => {
            let info = match script::load_library(code, *limits) {
                Ok(info) => info,
                Err(text) => return Ok(Reply::Error(format!("ERR {text}"))),
            };
            if ks.functions.contains_key(&info.name) && !replace {
                return Ok(Reply::Error(format!("ERR Library '{}' already exists", info.name)));
            }
            for f in &info.functions {
                if let Some((other, _)) = find_function(ks, f.name.as_bytes()) {
                    if other.info.name != info.name {
                        return Ok(Reply::Error(format!("ERR Function {} already exists", f.name)));
                    }
                }
            }
            let name = info.name.clone();
            ks.functions.insert(name.clone(), Library { code: code.clone(), info });
            Ok(Reply::Bulk(Bytes::from(name)))
        }
        ScriptOp::FunctionDelete(name) => match ks.functions.remove(String::from_utf8_lossy(name).as_ref()) {
            Some(_) => Ok(Reply::Ok),
            None => Ok(Reply::err("ERR Library not found")),
        },
        ScriptOp::FunctionFlush => {
            ks.functions.clear();
            Ok(Reply::Ok)
        }
        ScriptOp::Fcall { name, numkeys, args, read_only, limits } => {
            let (code, fname, keys, argv, read_only) = match prepare_fcall(ks, name, numkeys, args, *read_only) {
                Ok(p) if over_memory && !p.read_only && !p.allow_oom => return Ok(Reply::err(OOM_SCRIPT)),
                Ok(p) => (p.lib.code.clone(), p.name, p.keys, p.argv, p.read_only),
                Err(reply) => return Ok(reply),
            };
            let mut dispatch = applying(ks, ctx, read_only, limits.strict_keys.then_some(&keys[..]), false);
            let run = script::Run {
                sha: &fname,
                body: &[],
                keys: &keys,
                argv: &argv,
                seed: ctx.seed,
                limits: *limits,
                read_only: false,
            };
            Ok(script::call_function(&code, &fname, &run, &mut dispatch))
        }
        ScriptOp::FunctionRestore { codes, policy, limits } => {
            // All or nothing: the new set of libraries is built aside, then swapped in.
            let mut loaded = Vec::with_capacity(codes.len());
            for code in codes {
                match script::load_library(code, *limits) {
                    Ok(info) => loaded.push(Library { code: code.clone(), info }),
                    Err(text) => return Ok(Reply::Error(format!("ERR {text}"))),
                }
            }
            let mut libraries = match policy {
                RestorePolicy::Flush => Default::default(),
                _ => ks.functions.clone(),
            };
            for lib in loaded {
                if *policy == RestorePolicy::Append && libraries.contains_key(&lib.info.name) {
                    return Ok(Reply::Error(format!("ERR Library {} already exists", lib.info.name)));
                }
                libraries.remove(&lib.info.name);
                for f in &lib.info.functions {
                    let clash = libraries.values().any(|other: &Library| {
                        other.info.functions.iter().any(|g| g.name.eq_ignore_ascii_case(&f.name))
                    });
                    if clash {
                        return Ok(Reply::Error(format!("ERR Function {} already exists", f.name)));
                    }
                }
                libraries.insert(lib.info.name.clone(), lib);
            }
            ks.functions = libraries;
            Ok(Reply::Ok)
        }
        ScriptOp::Exists(_) | ScriptOp::FunctionList { .. } | ScriptOp::FunctionStats | ScriptOp::FunctionDump => {
            query(ks, op, ctx)
        }
    }
}

/// Answers a read-only scripting operation.
pub fn query(ks: &KeySpace, op: &ScriptOp, ctx: Ctx) -> Result<Reply> {
    match op {
        ScriptOp::OverMemory(op) => query(ks, op, ctx),
        ScriptOp::Exists(shas) => Ok(Reply::Array(
            shas.iter()
                .map(|sha| {
                    let sha = String::from_utf8_lossy(&sha.to_ascii_lowercase()).into_owned();
                    Reply::Int(ks.scripts.contains_key(&sha) as i64)
                })
                .collect(),
        )),
        ScriptOp::Eval { script, keys, argv, limits, .. } => {
            let (sha, body) = match resolve(ks, script) {
                Ok(found) => found,
                Err(reply) => return Ok(reply),
            };
            if let Err(reply) = check(&sha, &body, true) {
                return Ok(reply);
            }
            let mut dispatch = answering(ks, ctx, limits.strict_keys.then_some(&keys[..]));
            let run =
                script::Run { sha: &sha, body: &body, keys, argv, seed: ctx.seed, limits: *limits, read_only: true };
            Ok(script::run(&run, &mut dispatch))
        }
        ScriptOp::FunctionList { pattern, withcode } => Ok(Reply::Array(
            ks.functions
                .values()
                .filter(|lib| pattern.as_ref().is_none_or(|p| crate::sm::glob_matches(p, lib.info.name.as_bytes())))
                .map(|lib| {
                    let functions = lib
                        .info
                        .functions
                        .iter()
                        .map(|f| {
                            Reply::Map(vec![
                                (Reply::bulk("name"), Reply::bulk(&f.name)),
                                (Reply::bulk("description"), f.description.as_ref().map_or(Reply::Nil, Reply::bulk)),
                                (
                                    Reply::bulk("flags"),
                                    Reply::Set(f.flags.iter().map(|f| Reply::status(f.as_str())).collect()),
                                ),
                            ])
                        })
                        .collect();
                    let mut fields = vec![
                        (Reply::bulk("library_name"), Reply::bulk(&lib.info.name)),
                        (Reply::bulk("engine"), Reply::bulk("LUA")),
                        (Reply::bulk("functions"), Reply::Array(functions)),
                    ];
                    if *withcode {
                        fields.push((Reply::bulk("library_code"), Reply::Bulk(lib.code.clone())));
                    }
                    Reply::Map(fields)
                })
                .collect(),
        )),
        ScriptOp::FunctionStats => {
            let count = ks.functions.values().map(|l| l.info.functions.len()).sum::<usize>();
            Ok(Reply::Map(vec![
                (Reply::bulk("running_script"), Reply::Nil),
                (
                    Reply::bulk("engines"),
                    Reply::Map(vec![(
                        Reply::bulk("LUA"),
                        Reply::Map(vec![
                            (Reply::bulk("libraries_count"), Reply::Int(ks.functions.len() as i64)),
                            (Reply::bulk("functions_count"), Reply::Int(count as i64)),
                        ]),
                    )]),
                ),
            ]))
        }
        ScriptOp::Fcall { name, numkeys, args, read_only, limits } => {
            let Prepared { lib, name: fname, keys, argv, .. } = match prepare_fcall(ks, name, numkeys, args, *read_only)
            {
                Ok(found) => found,
                Err(reply) => return Ok(reply),
            };
            let mut dispatch = answering(ks, ctx, limits.strict_keys.then_some(&keys[..]));
            let run = script::Run {
                sha: &fname,
                body: &[],
                keys: &keys,
                argv: &argv,
                seed: ctx.seed,
                limits: *limits,
                read_only: true,
            };
            Ok(script::call_function(&lib.code, &fname, &run, &mut dispatch))
        }
        ScriptOp::FunctionDump => {
            Ok(Reply::Bulk(Bytes::from(super::dump::dump_functions(ks.functions.values().map(|l| &l.code[..])))))
        }
        // Writes never reach a query (the gate sends them through the log).
        ScriptOp::FunctionRestore { .. }
        | ScriptOp::Load(_)
        | ScriptOp::Flush
        | ScriptOp::FunctionLoad { .. }
        | ScriptOp::FunctionDelete(_)
        | ScriptOp::FunctionFlush => Ok(Reply::err("ERR this scripting operation writes")),
    }
}

/// `redis.call`'s work in a run applied from the log: each call is parsed and applied with the
/// entry's time and a seed of its own. With `deny_oom` (a script without flags accepted over
/// `maxmemory`), a call that may use memory is refused until the script's first write, as
/// Redis's `scriptVerifyOOM` does: after a write, stopping would leave the script half done.
fn applying<'a>(
    ks: &'a mut KeySpace,
    ctx: Ctx,
    read_only: bool,
    declared: Option<&'a [Bytes]>,
    mut deny_oom: bool,
) -> impl FnMut(&[Bytes]) -> Reply + 'a {
    let mut calls = 0u64;
    move |line| {
        calls += 1;
        let ctx = Ctx { seed: ctx.seed.wrapping_add(calls), ..ctx };
        match resolve_call(line, read_only, declared, ctx.now, deny_oom) {
            Ok((call, writes)) => {
                deny_oom &= !writes;
                match call {
                    Call::Data(op) => op.apply(ks, ctx),
                    Call::Node(node) => node.run(ks, line, ctx),
                }
            }
            Err(reply) => reply,
        }
    }
}

/// `redis.call`'s work in a read-only run answered by one node: queries only.
fn answering<'a>(ks: &'a KeySpace, ctx: Ctx, declared: Option<&'a [Bytes]>) -> impl FnMut(&[Bytes]) -> Reply + 'a {
    let mut calls = 0u64;
    move |line| {
        calls += 1;
        let ctx = Ctx { seed: ctx.seed.wrapping_add(calls), ..ctx };
        match resolve_call(line, true, declared, ctx.now, false) {
            Ok((Call::Data(op), _)) => op.query(ks, ctx),
            Ok((Call::Node(node), _)) => node.query(line, ctx),
            Err(reply) => reply,
        }
    }
}

/// The script's SHA1 and body, or NOSCRIPT.
fn resolve(ks: &KeySpace, script: &Script) -> std::result::Result<(String, Bytes), Reply> {
    match script {
        Script::Body(body) => Ok((script::sha1_hex(body), body.clone())),
        Script::Sha(sha) => {
            let sha = String::from_utf8_lossy(sha).into_owned();
            match ks.scripts.get(&sha) {
                Some(body) => Ok((sha, body.clone())),
                None => Err(Reply::err(NOSCRIPT)),
            }
        }
    }
}

/// The checks before a run: the shebang, and a `*_RO` form of a script that declares writes.
fn check(sha: &str, body: &[u8], read_only: bool) -> std::result::Result<(), Reply> {
    let bits = match script::shebang(body) {
        Ok((bits, _)) => bits,
        Err(text) => return Err(Reply::Error(format!("ERR {text}"))),
    };
    if read_only && bits & flags::EVAL_COMPAT == 0 && bits & flags::NO_WRITES == 0 {
        return Err(Reply::err("ERR Can not execute a script with write flag using *_ro command."));
    }
    script::compile_check(sha, body).map_err(|text| Reply::Error(format!("ERR {text}")))
}

/// What a `redis.call` runs.
enum Call {
    Data(Op),
    Node(NodeCall),
}

/// The few node commands a script may call: answered from the entry alone.
#[derive(Clone, Copy)]
enum NodeCall {
    Ping,
    Echo,
    Time,
    Publish { shard: bool },
}

impl NodeCall {
    fn query(self, line: &[Bytes], ctx: Ctx) -> Reply {
        match self {
            NodeCall::Ping if line.len() == 1 => Reply::status("PONG"),
            NodeCall::Ping => Reply::Bulk(line[1].clone()),
            NodeCall::Echo => Reply::Bulk(line[1].clone()),
            NodeCall::Time => Reply::Array(vec![
                Reply::bulk((ctx.now / 1000).to_string()),
                Reply::bulk(((ctx.now % 1000) * 1000).to_string()),
            ]),
            NodeCall::Publish { .. } => Reply::Int(0),
        }
    }

    fn run(self, ks: &mut KeySpace, line: &[Bytes], ctx: Ctx) -> Reply {
        match self {
            NodeCall::Publish { shard } => {
                let op = super::pubsub::PubSubOp::Publish { channel: line[1].clone(), payload: line[2].clone(), shard };
                Op::PubSub(op).apply(ks, ctx)
            }
            other => other.query(line, ctx),
        }
    }
}

/// Node commands a script may call, with their metadata's arity and whether they write.
const NODE_CALLS: &[(&str, i32, bool, NodeCall)] = &[
    ("ping", -1, false, NodeCall::Ping),
    ("echo", 2, false, NodeCall::Echo),
    ("time", 1, false, NodeCall::Time),
    ("publish", 3, true, NodeCall::Publish { shard: false }),
    ("spublish", 3, true, NodeCall::Publish { shard: true }),
];

/// Resolves a script's command line: Redis's checks, in Redis's order, with its texts; with
/// whether the command writes. `deny_oom` refuses commands that may use memory.
fn resolve_call(
    line: &[Bytes],
    read_only: bool,
    declared: Option<&[Bytes]>,
    now: u64,
    deny_oom: bool,
) -> std::result::Result<(Call, bool), Reply> {
    let name = String::from_utf8_lossy(&line[0]).to_ascii_lowercase();
    if let Some(&(_, arity, writes, call)) = NODE_CALLS.iter().find(|(n, ..)| *n == name) {
        let ok = if arity >= 0 { line.len() == arity as usize } else { line.len() >= (-arity) as usize };
        if !ok {
            return Err(Reply::err("ERR Wrong number of args calling Redis command from script"));
        }
        if read_only && writes {
            return Err(Reply::err("ERR Write commands are not allowed from read-only scripts."));
        }
        return Ok((Call::Node(call), false));
    }
    let Some(mut command) = lookup(&name) else {
        return Err(if script::is_known_command(&line[0]) {
            Reply::err("ERR This Redis command is not allowed from script")
        } else {
            Reply::err("ERR Unknown Redis command called from script")
        });
    };
    if !command.subcommands.is_empty() && line.len() >= 2 {
        let sub = String::from_utf8_lossy(&line[1]).to_ascii_lowercase();
        match command.subcommands.iter().find(|c| c.meta.name.split_once('|').is_some_and(|(_, s)| s == sub)) {
            Some(c) => command = c,
            None => return Err(Reply::from(super::unknown_subcommand(&line[0], &line[1]))),
        }
    }
    if !command.meta.arity_ok(line.len()) {
        return Err(Reply::err("ERR Wrong number of args calling Redis command from script"));
    }
    if command.meta.flags.contains(&"noscript") {
        return Err(Reply::err("ERR This Redis command is not allowed from script"));
    }
    if read_only && command.meta.is_write() {
        return Err(Reply::err("ERR Write commands are not allowed from read-only scripts."));
    }
    if deny_oom && command.meta.flags.contains(&"denyoom") {
        return Err(Reply::err(OOM_CALL));
    }
    if let Some(declared) = declared {
        let keys = command.meta.key_indexes(line).unwrap_or_default();
        if let Some(key) = keys.iter().map(|&i| &line[i]).find(|key| !declared.contains(key)) {
            return Err(Reply::Error(format!(
                "ERR Script attempted to access key '{}' that was not declared in KEYS (cluster-strict-keys)",
                String::from_utf8_lossy(key)
            )));
        }
    }
    let writes = command.meta.is_write();
    (command.parse)(line, now).map(|op| (Call::Data(op), writes)).map_err(Reply::from)
}

/// A data command by lower-case name.
fn lookup(name: &str) -> Option<&'static DataCommand> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static TABLE: OnceLock<HashMap<&'static str, &'static DataCommand>> = OnceLock::new();
    TABLE.get_or_init(|| data_commands().map(|c| (c.meta.name, c)).collect()).get(name).copied()
}
