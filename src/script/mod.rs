//! Lua scripting: the VM scripts run in, Redis 7.0's environment (`redis.*`, the sandbox,
//! `cjson`, `cmsgpack`, `struct`, `bit`), and the conversions between replies and Lua values.
//!
//! A script that may write runs when its log entry is applied, on every replica, so a run must
//! be a function of the entry alone. What would make it depend on the node is taken away or
//! made deterministic: the globals and the libraries are read-only views (nothing survives a
//! run), `math.random` draws from the request's seed, `tostring` of a table prints a per-run
//! number instead of an address, `collectgarbage("count")` answers 0, and runaway scripts are
//! stopped by an instruction budget (the same count on every replica) instead of a clock.
//!
//! Each thread keeps one VM (scripts run where their command is applied or answered); compiled
//! scripts are cached per VM by SHA1. The VM only caches: the replicated state is the script
//! cache in the keyspace (`cmd::scripting`).

mod bit;
mod cjson;
mod cmsgpack;
mod convert;
mod structlib;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use mlua::{chunk::ChunkMode, Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};

use crate::resp::Reply;

/// How often (in Lua instructions) the budget is checked.
const HOOK_EVERY: u32 = 1000;

/// Defaults of the script limits (`--lua-max-instructions`, `--lua-max-memory`).
pub mod defaults {
    /// Lua instructions one script may run (about a second of a busy loop).
    pub const MAX_INSTRUCTIONS: u64 = 200_000_000;
    /// Bytes a script may allocate in the VM beyond what it held when the script started.
    pub const MAX_MEMORY: usize = 256 * 1024 * 1024;
}

/// The bounds of one run; stamped into the request by the node that accepted it, so every
/// replica applies the same ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub max_instructions: u64,
    pub max_memory: u64,
    /// `--cluster-strict-keys`: a `redis.call` may only touch keys declared in KEYS.
    pub strict_keys: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_instructions: defaults::MAX_INSTRUCTIONS,
            max_memory: defaults::MAX_MEMORY as u64,
            strict_keys: false,
        }
    }
}

static LIMITS: std::sync::Mutex<Limits> = std::sync::Mutex::new(Limits {
    max_instructions: defaults::MAX_INSTRUCTIONS,
    max_memory: defaults::MAX_MEMORY as u64,
    strict_keys: false,
});

/// Sets the limits this node stamps into the scripts it accepts (from the command line).
pub fn set_limits(limits: Limits) {
    *LIMITS.lock().unwrap_or_else(|e| e.into_inner()) = limits;
}

/// The limits this node stamps into the scripts it accepts.
pub fn limits() -> Limits {
    *LIMITS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Script flags of a `#!lua flags=...` line (Redis 7.0's names).
pub mod flags {
    pub const NO_WRITES: u32 = 1;
    pub const ALLOW_OOM: u32 = 2;
    pub const ALLOW_STALE: u32 = 4;
    pub const NO_CLUSTER: u32 = 8;
    pub const ALLOW_CROSS_SLOT_KEYS: u32 = 16;
    /// No shebang: a pre-7.0 script, which may write whatever its flags.
    pub const EVAL_COMPAT: u32 = 32;

    pub const NAMES: &[(&str, u32)] = &[
        ("no-writes", NO_WRITES),
        ("allow-oom", ALLOW_OOM),
        ("allow-stale", ALLOW_STALE),
        ("no-cluster", NO_CLUSTER),
        ("allow-cross-slot-keys", ALLOW_CROSS_SLOT_KEYS),
    ];
}

/// Reads a script's `#!lua` line: its flags and the length of the line (the body compiled
/// starts at the line feed, so line numbers stay the user's). Errors are Redis's texts.
pub fn shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((flags::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let parts: Vec<&str> = line.split_ascii_whitespace().collect();
    match parts.first() {
        None => return Err("Invalid engine in script shebang".into()),
        Some(&"#!lua") => {}
        Some(other) => return Err(format!("Unexpected engine in script shebang: {other}")),
    }
    let mut bits = 0;
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        if list.is_empty() {
            continue;
        }
        for flag in list.split(',') {
            match flags::NAMES.iter().find(|(name, _)| *name == flag) {
                Some((_, bit)) => bits |= bit,
                None => return Err(format!("Unexpected flag in script shebang: {flag}")),
            }
        }
    }
    Ok((bits, end))
}

/// The SHA1 of a script body, as lower-case hex (the EVALSHA name).
pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// One script run.
pub struct Run<'a> {
    /// The script's SHA1 (for error texts and the compiled-script cache).
    pub sha: &'a str,
    /// The whole body, shebang line included.
    pub body: &'a [u8],
    pub keys: &'a [Bytes],
    pub argv: &'a [Bytes],
    /// Seeds `math.random`.
    pub seed: u64,
    pub limits: Limits,
    /// A read-only run (answered by one node, never applied): SCRIPT KILL may stop it.
    pub read_only: bool,
}

/// Scripts running on this node now: read-only ones (killable) and writing ones.
static RUNNING_READ_ONLY: AtomicUsize = AtomicUsize::new(0);
static RUNNING_WRITES: AtomicUsize = AtomicUsize::new(0);
/// SCRIPT KILL asked the running read-only script to stop.
static KILL: AtomicBool = AtomicBool::new(false);

/// What SCRIPT KILL found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// A read-only script was running: it is told to stop.
    Killed,
    /// Only a script that writes is running: it cannot be stopped (replicas would differ).
    Unkillable,
    NotBusy,
}

/// SCRIPT KILL: stops the read-only script running on this node, if any.
pub fn kill() -> Kill {
    if RUNNING_READ_ONLY.load(Ordering::SeqCst) > 0 {
        KILL.store(true, Ordering::SeqCst);
        Kill::Killed
    } else if RUNNING_WRITES.load(Ordering::SeqCst) > 0 {
        Kill::Unkillable
    } else {
        Kill::NotBusy
    }
}

/// Counts a run as running while alive.
struct Running(&'static AtomicUsize);

impl Running {
    fn new(counter: &'static AtomicUsize) -> Running {
        counter.fetch_add(1, Ordering::SeqCst);
        Running(counter)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a script's `redis.call` runs: a command line, answered with its reply.
pub type Dispatch<'a> = dyn FnMut(&[Bytes]) -> Reply + 'a;

/// Compiles `body` (its shebang line skipped): `Err` holds Redis's error text.
pub fn compile_check(sha: &str, body: &[u8]) -> Result<(), String> {
    with_engine(|e| e.compiled(sha, body).map(|_| ()))
}

/// Reads a library's `#!lua name=<name>` line: its name and the line's length.
pub fn library_shebang(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[..end]);
    let parts = split_args(&line);
    let engine = parts.first().map(|p| p.get(2..).unwrap_or("").to_string()).unwrap_or_default();
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    let mut name = None;
    for part in &parts[1..] {
        match part.strip_prefix("name=") {
            Some(_) if name.is_some() => {
                return Err("Invalid metadata value, name argument was given multiple times".into())
            }
            Some(n) => name = Some(n.to_string()),
            None => return Err(format!("Invalid metadata value given: {part}")),
        }
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
                .into(),
        );
    }
    Ok((name, end))
}

/// Splits a shebang line as Redis's sdssplitargs does for the common cases: on spaces, with
/// double or single quotes grouping (and removed).
fn split_args(line: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let (mut quote, mut any) = (None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, ' ' | '\t') => {
                if any {
                    parts.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        parts.push(cur);
    }
    parts
}

/// Runs a library's code to learn what it registers (FUNCTION LOAD, and a snapshot's
/// libraries). `Err` holds Redis's error text.
pub fn load_library(code: &[u8], limits: Limits) -> Result<LibraryInfo, String> {
    with_engine(|e| e.library(code, limits).map(|l| l.info.clone()))
}

/// Runs function `name` of the library whose code is `code` (FCALL, FCALL_RO).
pub fn call_function(code: &[u8], name: &str, run: &Run, dispatch: &mut Dispatch) -> Reply {
    with_engine(|e| e.call_function(code, name, run, dispatch))
}

/// Runs a script and returns its reply. `dispatch` runs its `redis.call`s.
pub fn run(run: &Run, dispatch: &mut Dispatch) -> Reply {
    with_engine(|e| e.run(run, dispatch))
}

/// Whether a name is a command scripts may know of (`redis.acl_check_cmd`): set by the
/// command table.
pub type KnownCommand = fn(&[u8]) -> bool;

static KNOWN_COMMAND: std::sync::OnceLock<KnownCommand> = std::sync::OnceLock::new();

/// Whether `name` names a command of the server (so a script is told it may not call it,
/// rather than that it does not exist).
pub fn is_known_command(name: &[u8]) -> bool {
    KNOWN_COMMAND.get().is_some_and(|f| f(name))
}

/// Installs the command-name check `redis.acl_check_cmd` uses.
pub fn set_known_command(f: KnownCommand) {
    let _ = KNOWN_COMMAND.set(f);
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Engine::new().expect("the Lua environment starts"));
        }
        f(slot.as_mut().expect("just made"))
    })
}

/// The state of the run in progress, shared with the Rust functions scripts call.
#[derive(Debug, Default)]
struct RunState {
    /// `redis.setresp`: 2 or 3.
    resp: u8,
    /// lrand48's 48-bit state.
    rand: u64,
    instructions: u64,
    max_instructions: u64,
    /// SCRIPT KILL may stop this run.
    killable: bool,
    /// Why the run was stopped (it can no longer catch errors).
    aborted: Option<String>,
}

/// A Lua VM with Redis's environment.
struct Engine {
    lua: Lua,
    globals: Table,
    runner: Function,
    set_args: Function,
    /// The globals function libraries run with, and the switch for their load.
    function_globals: Table,
    set_loading: Function,
    state: Rc<RefCell<RunState>>,
    compiled: HashMap<String, Function>,
    /// Loaded libraries by the SHA1 of their code: what they registered.
    libraries: HashMap<String, Rc<LoadedLibrary>>,
}

/// A library's registrations in one VM.
struct LoadedLibrary {
    info: LibraryInfo,
    callbacks: HashMap<String, Function>,
}

/// What FUNCTION LOAD learns of a library (replicated: the same on every node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryInfo {
    pub name: String,
    /// Sorted by name.
    pub functions: Vec<FunctionInfo>,
}

/// One registered function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    pub name: String,
    pub flags: Vec<String>,
    pub description: Option<String>,
}

impl FunctionInfo {
    /// The function's flag bits (see [`flags`]).
    pub fn bits(&self) -> u32 {
        self.flags.iter().filter_map(|f| flags::NAMES.iter().find(|(n, _)| n == f)).fold(0, |b, (_, bit)| b | bit)
    }
}

/// Compiled scripts kept per VM before the cache is emptied.
const MAX_COMPILED: usize = 10_000;

impl Engine {
    fn new() -> mlua::Result<Engine> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: the debug library is taken by the environment chunk as a local and removed
        // from the globals before any script runs; scripts never reach it.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        let state = Rc::new(RefCell::new(RunState { resp: 2, max_instructions: u64::MAX, ..Default::default() }));

        let globals = lua.globals();
        globals.raw_set("cjson", cjson::open(&lua)?)?;
        globals.raw_set("bit", bit::open(&lua)?)?;
        globals.raw_set("cmsgpack", cmsgpack::open(&lua)?)?;
        globals.raw_set("struct", structlib::open(&lua)?)?;

        let rt = lua.create_table()?;
        let st = state.clone();
        rt.raw_set("aborted", lua.create_function(move |_, ()| Ok(st.borrow().aborted.clone()))?)?;
        let st = state.clone();
        rt.raw_set(
            "rand",
            lua.create_function(move |_, ()| {
                let mut s = st.borrow_mut();
                s.rand = (s.rand.wrapping_mul(0x5DEE_CE66D).wrapping_add(0xB)) & ((1 << 48) - 1);
                let r = (s.rand >> 17) as u32 as i64;
                const MAX: i64 = 0x7fff_ffff;
                Ok((r % MAX) as f64 / MAX as f64)
            })?,
        )?;
        let st = state.clone();
        rt.raw_set(
            "srand",
            lua.create_function(move |_, seed: f64| {
                st.borrow_mut().rand = srand48(seed as i64 as i32);
                Ok(())
            })?,
        )?;
        let st = state.clone();
        rt.raw_set(
            "setresp",
            lua.create_function(move |_, v: u8| {
                st.borrow_mut().resp = v;
                Ok(())
            })?,
        )?;
        rt.raw_set("sha1hex", lua.create_function(|_, s: mlua::LuaString| Ok(sha1_hex(&s.as_bytes())))?)?;
        rt.raw_set(
            "log",
            lua.create_function(|_, (level, text): (u8, String)| {
                match level {
                    0 => tracing::debug!(target: "raftis::script", "{text}"),
                    1 | 2 => tracing::info!(target: "raftis::script", "{text}"),
                    _ => tracing::warn!(target: "raftis::script", "{text}"),
                }
                Ok(())
            })?,
        )?;
        rt.raw_set(
            "known_command",
            lua.create_function(|_, name: mlua::LuaString| Ok(is_known_command(&name.as_bytes())))?,
        )?;
        rt.raw_set(
            "error_text",
            lua.create_function(|_, v: Value| {
                Ok(match v {
                    Value::Error(e) => Some(lua_error_text(&e)),
                    _ => None,
                })
            })?,
        )?;
        rt.raw_set("version", crate::base::REDIS_VERSION)?;
        rt.raw_set("version_num", redis_version_num(crate::base::REDIS_VERSION))?;

        // SAFETY: `redis_call` only uses the Lua C API on the state it is given.
        rt.raw_set("call", unsafe { lua.create_c_function(redis_call)? })?;
        // SAFETY: as `redis_call`.
        rt.raw_set("pcall", unsafe { lua.create_c_function(redis_pcall)? })?;
        rt.raw_set(
            "raising",
            lua.create_function(|lua, f: Function| {
                // SAFETY: the function is pushed as the one upvalue of a `raising` closure,
                // which replaces it on the stack and is returned.
                unsafe { lua.exec_raw::<Function>(f, |state| mlua::ffi::lua_pushcclosure(state, raising, 1)) }
            })?,
        )?;
        let (env, runner, set_args, function_globals, set_loading): (Table, Function, Function, Table, Function) =
            lua.load(include_str!("env.lua")).set_name("=raftis").set_mode(ChunkMode::Text).call(rt.clone())?;
        lua.set_globals(env.clone())?;

        let st = state.clone();
        lua.set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_, _| {
            let mut s = st.borrow_mut();
            s.instructions += HOOK_EVERY as u64;
            if s.killable && s.aborted.is_none() && KILL.swap(false, Ordering::SeqCst) {
                s.aborted = Some("ERR Script killed by user with SCRIPT KILL...".into());
            }
            if s.instructions > s.max_instructions && s.aborted.is_none() {
                s.aborted = Some(format!(
                    "ERR Script stopped after running {} Lua instructions (lua-max-instructions); the writes it \
                     made before that point stay",
                    s.max_instructions
                ));
            }
            match &s.aborted {
                Some(reason) => Err(mlua::Error::runtime(reason.clone())),
                None => Ok(VmState::Continue),
            }
        })?;

        Ok(Engine {
            lua,
            globals: env,
            runner,
            set_args,
            function_globals,
            set_loading,
            state,
            compiled: HashMap::new(),
            libraries: HashMap::new(),
        })
    }

    /// The compiled script, from the cache or compiled now.
    fn compiled(&mut self, sha: &str, body: &[u8]) -> Result<Function, String> {
        if let Some(f) = self.compiled.get(sha) {
            return Ok(f.clone());
        }
        let (_, skip) = shebang(body)?;
        let f = self
            .lua
            .load(&body[skip..])
            .set_name("@user_script")
            .set_mode(ChunkMode::Text)
            .set_environment(self.globals.clone())
            .into_function()
            .map_err(|e| format!("Error compiling script (new function): {}", lua_error_text(&e)))?;
        if self.compiled.len() >= MAX_COMPILED {
            self.compiled.clear();
        }
        self.compiled.insert(sha.to_string(), f.clone());
        Ok(f)
    }

    /// The library's registrations in this VM, loading it if needed.
    fn library(&mut self, code: &[u8], limits: Limits) -> Result<Rc<LoadedLibrary>, String> {
        let sha = sha1_hex(code);
        if let Some(l) = self.libraries.get(&sha) {
            return Ok(l.clone());
        }
        let (name, skip) = library_shebang(code)?;
        let f = self
            .lua
            .load(&code[skip..])
            .set_name("@user_function")
            .set_mode(ChunkMode::Text)
            .set_environment(self.function_globals.clone())
            .into_function()
            .map_err(|e| format!("Error compiling function: {}", lua_error_text(&e)))?;
        self.begin(
            Limits { max_instructions: limits.max_instructions.min(defaults::MAX_INSTRUCTIONS), ..limits },
            0,
            false,
        );
        let registered = self.lua.create_table().map_err(|e| e.to_string())?;
        let loaded = (|| -> mlua::Result<Result<LoadedLibrary, String>> {
            self.set_loading.call::<()>(registered.clone())?;
            let (ok, value): (bool, Value) = self.runner.call(f)?;
            self.set_loading.call::<()>(Value::Nil)?;
            if !ok {
                let text = match failure(&value, "") {
                    Reply::Error(t) => t.split(" script: ").next().unwrap_or_default().to_string(),
                    _ => String::new(),
                };
                return Ok(Err(format!("Error registering functions: {text}")));
            }
            let mut functions = Vec::new();
            let mut callbacks = HashMap::new();
            for pair in registered.pairs::<String, Table>() {
                let (fname, t) = pair?;
                let flags: Vec<String> =
                    t.raw_get::<Table>("flags")?.sequence_values::<String>().collect::<mlua::Result<_>>()?;
                let description: Option<String> = t.raw_get("description")?;
                callbacks.insert(fname.clone(), t.raw_get::<Function>("callback")?);
                functions.push(FunctionInfo { name: fname, flags, description });
            }
            if functions.is_empty() {
                return Ok(Err("No functions registered".into()));
            }
            functions.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Ok(LoadedLibrary { info: LibraryInfo { name, functions }, callbacks }))
        })();
        let _ = self.set_loading.call::<()>(Value::Nil);
        let aborted = self.end();
        let loaded = match (loaded, aborted) {
            (_, Some(reason)) => Err(format!("Error registering functions: {}", reason.trim_start_matches("ERR "))),
            (Ok(l), None) => l,
            (Err(e), None) => Err(format!("Error registering functions: {}", lua_error_text(&e))),
        }?;
        let loaded = Rc::new(loaded);
        if self.libraries.len() >= MAX_COMPILED {
            self.libraries.clear();
        }
        self.libraries.insert(sha, loaded.clone());
        Ok(loaded)
    }

    fn call_function(&mut self, code: &[u8], name: &str, run: &Run, dispatch: &mut Dispatch) -> Reply {
        let lib = match self.library(code, run.limits) {
            Ok(lib) => lib,
            Err(text) => return Reply::Error(format!("ERR {text}")),
        };
        let found = lib.callbacks.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, f)| f.clone());
        let Some(f) = found else {
            return Reply::err("ERR Function not found");
        };
        self.execute(f, true, run, dispatch)
    }

    /// Prepares the run state for a run (or a library load).
    fn begin(&mut self, limits: Limits, seed: u64, read_only: bool) {
        cjson::reset();
        let mut s = self.state.borrow_mut();
        s.resp = 2;
        s.rand = srand48(seed as i32);
        s.instructions = 0;
        s.max_instructions = limits.max_instructions;
        s.aborted = None;
        s.killable = read_only;
        drop(s);
        let used = self.lua.used_memory();
        let _ = self.lua.set_memory_limit(used.saturating_add(limits.max_memory as usize));
    }

    /// Ends a run: the limits lifted; why it was stopped, if it was.
    fn end(&mut self) -> Option<String> {
        let _ = self.lua.set_memory_limit(0);
        let mut s = self.state.borrow_mut();
        s.max_instructions = u64::MAX;
        s.killable = false;
        s.aborted.take()
    }

    fn run(&mut self, run: &Run, dispatch: &mut Dispatch) -> Reply {
        let f = match self.compiled(run.sha, run.body) {
            Ok(f) => f,
            Err(text) => return Reply::Error(format!("ERR {text}")),
        };
        self.execute(f, false, run, dispatch)
    }

    /// Runs a compiled script (`function`: a library's function, given KEYS and ARGV as
    /// arguments) and converts its result.
    fn execute(&mut self, f: Function, function: bool, run: &Run, dispatch: &mut Dispatch) -> Reply {
        self.begin(run.limits, run.seed, run.read_only);
        let _running = Running::new(if run.read_only { &RUNNING_READ_ONLY } else { &RUNNING_WRITES });
        let state = self.state.clone();
        let result = self.lua.scope(|scope| {
            let st = state.clone();
            let call = scope.create_function_mut(move |lua, args: Table| {
                let line = match command_line(args) {
                    Ok(line) => line,
                    Err(text) => return Ok((false, convert::error_table(lua, &format!("ERR {text}"))?)),
                };
                let reply = dispatch(&line);
                let resp3 = st.borrow().resp == 3;
                match reply {
                    Reply::Error(text) => Ok((false, convert::error_table(lua, &text)?)),
                    reply => Ok((true, convert::to_lua(lua, &reply, resp3)?)),
                }
            })?;
            self.lua.set_named_registry_value(DISPATCH, call)?;
            let keys = self.lua.create_sequence_from(
                run.keys.iter().map(|k| self.lua.create_string(k)).collect::<mlua::Result<Vec<_>>>()?,
            )?;
            let argv = self.lua.create_sequence_from(
                run.argv.iter().map(|a| self.lua.create_string(a)).collect::<mlua::Result<Vec<_>>>()?,
            )?;
            let (ok, value): (bool, Value) = if function {
                self.runner.call((f, keys, argv))?
            } else {
                self.set_args.call::<()>((keys, argv))?;
                self.runner.call(f)?
            };
            let resp3 = state.borrow().resp == 3;
            Ok(if ok { convert::from_lua(&value, resp3) } else { failure(&value, run.sha) })
        });
        let _ = self.lua.set_named_registry_value(DISPATCH, Value::Nil);
        let aborted = self.end();
        match (result, aborted) {
            (Ok(Reply::Error(text)), Some(reason)) if text == reason => {
                Reply::Error(format!("{reason} script: {}", run.sha))
            }
            (Ok(reply), _) => reply,
            (Err(e), Some(reason)) => {
                tracing::debug!("script {} stopped: {e}", run.sha);
                Reply::Error(format!("{reason} script: {}", run.sha))
            }
            (Err(e), None) => {
                Reply::Error(format!("ERR Error running script {}, {:.100}", run.sha, lua_error_text(&e)))
            }
        }
    }
}

/// Where the run's dispatch function is in the registry, for [`redis_call`].
const DISPATCH: &str = "raftis.dispatch";

/// `redis.call`: a C function, so that the error it raises (the command's error table) is
/// raised from the script's own frame, even from `return redis.call(...)` (a tail call into a
/// Lua function would have replaced that frame, and with it the line Redis reports).
unsafe extern "C-unwind" fn redis_call(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    // SAFETY: see `call_dispatch`.
    unsafe { call_dispatch(l, true) }
}

/// `redis.pcall`: as `redis.call`, but an error is returned (as its table), not raised.
unsafe extern "C-unwind" fn redis_pcall(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    // SAFETY: see `call_dispatch`.
    unsafe { call_dispatch(l, false) }
}

/// Calls the run's dispatch function with the call's arguments gathered in one table (a
/// command may have thousands of arguments, more than a call may pass through mlua), and
/// returns its reply, raising it if it is an error and `raise` is set.
///
/// # Safety
/// `l` is the running Lua state; the stack holds the call's arguments. A C function always has
/// LUA_MINSTACK free slots above its arguments, which is all this pushes at once; `lua_error`
/// unwinds (longjmp) over this frame, which owns nothing that needs dropping.
unsafe fn call_dispatch(l: *mut mlua::ffi::lua_State, raise: bool) -> std::ffi::c_int {
    use mlua::ffi;
    unsafe {
        let n = ffi::lua_gettop(l);
        ffi::lua_createtable(l, n, 0);
        ffi::lua_insert(l, 1);
        for i in (1..=n).rev() {
            ffi::lua_rawseti(l, 1, i as ffi::lua_Integer);
        }
        // The count, since arguments may be nil.
        ffi::lua_pushinteger(l, n as ffi::lua_Integer);
        ffi::lua_setfield(l, 1, c"n".as_ptr());
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"raftis.dispatch".as_ptr());
        if ffi::lua_type(l, -1) != ffi::LUA_TFUNCTION {
            ffi::lua_settop(l, 0);
            ffi::lua_pushstring(l, c"redis.call/pcall can only be called inside a script invocation".as_ptr());
            ffi::lua_error(l);
        }
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, 1, 2);
        if raise && ffi::lua_toboolean(l, 1) == 0 {
            ffi::lua_error(l);
        }
        1
    }
}

/// A C closure around a Lua function that returns `ok, value`: returns the value, or raises
/// it when `ok` is false. Being C, it raises from the calling script's frame (see
/// [`redis_call`]).
unsafe extern "C-unwind" fn raising(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: as in `redis_call`; the wrapped function is this closure's first upvalue.
    unsafe {
        let n = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        ffi::lua_call(l, n, 2);
        if ffi::lua_toboolean(l, 1) == 0 {
            ffi::lua_error(l);
        }
        1
    }
}

/// The reply of a failed run: the error table the handler built.
fn failure(value: &Value, sha: &str) -> Reply {
    let t = match value {
        Value::Table(t) => t,
        // Memory errors skip the handler: Lua's own text.
        Value::String(s) => {
            let text = String::from_utf8_lossy(&s.as_bytes()).into_owned();
            let text = if text == "not enough memory" {
                format!("{text} (the script went over lua-max-memory, {} MiB)", limits().max_memory >> 20)
            } else {
                text
            };
            return Reply::Error(format!("ERR Error running script {sha}, {text:.100}"));
        }
        _ => return Reply::Error(format!("ERR Error running script {sha}, execution failure")),
    };
    let text = |key: &str| match t.raw_get::<Value>(key) {
        Ok(Value::String(s)) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        Ok(Value::Integer(n)) => Some(n.to_string()),
        Ok(Value::Number(n)) => Some(crate::cmd::zsets::format_score(n)),
        _ => None,
    };
    let msg = text("err").unwrap_or_default();
    match (text("source"), text("line")) {
        (Some(source), Some(line)) => Reply::Error(format!("{msg} script: {sha}, on {source}:{line}.")),
        _ => Reply::Error(msg),
    }
}

/// A `redis.call`'s arguments as a command line (Redis's conversion: numbers as `%.17g`).
fn command_line(args: Table) -> Result<Vec<Bytes>, String> {
    let n = args.raw_get::<usize>("n").unwrap_or(0);
    if n == 0 {
        return Err("Please specify at least one argument for this redis lib call".into());
    }
    let mut line = Vec::with_capacity(n);
    for i in 1..=n {
        let arg = args.raw_get::<Value>(i).unwrap_or(Value::Nil);
        line.push(match arg {
            Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
            Value::Integer(n) => Bytes::from(number_arg(n as f64)),
            Value::Number(n) => Bytes::from(number_arg(n)),
            _ => return Err("Lua redis lib command arguments must be strings or integers".into()),
        });
    }
    Ok(line)
}

/// A number argument of `redis.call` as Redis prints it (`%.17g`), whole numbers the fast way.
fn number_arg(n: f64) -> String {
    if n == n.trunc() && n.abs() < 1e15 && !(n == 0.0 && n.is_sign_negative()) {
        (n as i64).to_string()
    } else {
        crate::cmd::zsets::format_score(n)
    }
}

/// The text of a Lua error as Lua would print it (without mlua's decorations).
fn lua_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::MemoryError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        other => other.to_string(),
    }
}

/// lrand48's state after `srand48(seed)`.
fn srand48(seed: i32) -> u64 {
    (((seed as u32 as u64) << 16) | 0x330E) & ((1 << 48) - 1)
}

/// `7.0.15` as Redis's version number (`0x00070f`).
fn redis_version_num(v: &str) -> i64 {
    v.split('.').take(3).fold(0, |n, part| n * 256 + part.parse::<i64>().unwrap_or(0))
}

#[cfg(test)]
mod tests;
