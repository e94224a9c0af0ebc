//! Scripts through the command layer: determinism across replicas, the sandbox holding across
//! runs on one VM, and the limits.

use bytes::Bytes;

use crate::cmd::scripting::{Script, ScriptOp};
use crate::cmd::{Ctx, Op};
use crate::resp::Reply;
use crate::script::Limits;
use crate::sm::{digest, KeySpace};

fn eval(ks: &mut KeySpace, body: &str, keys: &[&str], argv: &[&str], seed: u64) -> Reply {
    eval_with(ks, body, keys, argv, seed, Limits::default())
}

fn eval_with(ks: &mut KeySpace, body: &str, keys: &[&str], argv: &[&str], seed: u64, limits: Limits) -> Reply {
    let b = |v: &[&str]| v.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
    let op = Op::Script(ScriptOp::Eval {
        script: Script::Body(Bytes::copy_from_slice(body.as_bytes())),
        keys: b(keys),
        argv: b(argv),
        read_only: false,
        limits,
    });
    op.apply(ks, Ctx { now: 1_700_000_000_000, seed })
}

#[test]
fn replicas_running_the_same_scripts_end_identical() {
    // One replica's VM has run other scripts first (and on another thread): nothing of that
    // may change what the scripts below do.
    let warm = std::thread::spawn(|| {
        let mut other = KeySpace::new();
        for i in 0..50 {
            eval(
                &mut other,
                "local t = {} for i = 1, 100 do t[i] = tostring({}) .. math.random() end return #t",
                &[],
                &[],
                i,
            );
        }
        let mut ks = KeySpace::new();
        run_workload(&mut ks)
    });
    let mut cold = KeySpace::new();
    let (cold_replies, cold_digest) = run_workload(&mut cold);
    let (warm_replies, warm_digest) = warm.join().unwrap();
    assert_eq!(cold_replies, warm_replies);
    assert_eq!(cold_digest, warm_digest);
}

fn run_workload(ks: &mut KeySpace) -> (Vec<Reply>, String) {
    let scripts = [
        "redis.call('SET', KEYS[1], math.random(1000000)) return redis.call('GET', KEYS[1])",
        "local t = {} for i = 1, 5 do t[#t + 1] = tostring({}) end redis.call('RPUSH', KEYS[1], unpack(t)) return t",
        "redis.call('SADD', KEYS[1], 'a', 'b', 'c', 'd') return redis.call('SPOP', KEYS[1])",
        "return {collectgarbage('count'), gcinfo()}",
        "math.randomseed(7) return {math.random(), math.random(10), math.random(5, 9)}",
        "return cjson.encode({a = {1, 2, 3}, b = 'x'})",
        "return redis.call('TIME')",
    ];
    let mut replies = Vec::new();
    for (i, s) in scripts.iter().enumerate() {
        replies.push(eval(ks, s, &[&format!("k{i}")], &[], 1000 + i as u64));
    }
    (replies, digest(ks))
}

#[test]
fn nothing_a_script_does_survives_it() {
    let mut ks = KeySpace::new();
    let attempts = [
        "x = 1",
        "rawset(_G, 'x', 1)",
        "table.insert(string, 'x')",
        "rawset(string, 'upper', nil)",
        "getmetatable('').__index = {}",
        "setmetatable(_G, {})",
        "loadstring('y = 1')()",
        "collectgarbage('stop')",
        "math.randomseed(42)",
        "redis.setresp(3)",
        "KEYS[1] = 'changed'",
        "cjson.encode_number_precision(3)",
    ];
    for a in attempts {
        eval(&mut ks, a, &["k"], &[], 1);
    }
    let check = "return {type(rawget(_G, 'x')), type(rawget(_G, 'y')), ('a'):upper(), #KEYS, type(redis.call('GET', 'nokey')), cjson.encode({0.123456789}), tostring(collectgarbage('count'))}";
    let reply = eval(&mut ks, check, &[], &[], 1);
    assert_eq!(
        reply,
        Reply::Array(vec![
            Reply::bulk("nil"),
            Reply::bulk("nil"),
            Reply::bulk("A"),
            Reply::Int(0),
            Reply::bulk("boolean"),
            Reply::bulk("[0.123456789]"),
            Reply::bulk("0"),
        ])
    );
    // math.random restarts from the run's seed every time.
    let draw = "return math.random(1000000)";
    assert_eq!(eval(&mut ks, draw, &[], &[], 5), eval(&mut ks, draw, &[], &[], 5));
    assert_ne!(eval(&mut ks, draw, &[], &[], 5), eval(&mut ks, draw, &[], &[], 6));
}

#[test]
fn the_instruction_budget_stops_loops_that_catch_errors() {
    let mut ks = KeySpace::new();
    let limits = Limits { max_instructions: 100_000, ..Limits::default() };
    for body in [
        "while true do end",
        "while true do pcall(function() while true do end end) end",
        "local co = coroutine.wrap(function() while true do end end) co()",
        "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        "redis.call('SET', 'w', 1) while true do end",
    ] {
        let reply = eval_with(&mut ks, body, &[], &[], 1, limits);
        let Reply::Error(text) = reply else { panic!("{body}: {reply:?}") };
        assert!(text.starts_with("ERR Script stopped after running 100000 Lua instructions"), "{body}: {text}");
    }
    // Writes made before the stop stay (as after any script error), and the VM works on.
    assert_eq!(eval(&mut ks, "return redis.call('GET', 'w')", &[], &[], 1), Reply::bulk("1"));
}

#[test]
fn strict_keys_refuse_undeclared_keys_only_when_on() {
    let mut ks = KeySpace::new();
    let body = "redis.call('SET', KEYS[1], 1) return redis.pcall('MSET', KEYS[1], 2, ARGV[1], 3)";
    // Off (the default): any key, as one group holds every slot.
    assert_eq!(eval(&mut ks, body, &["a"], &["b"], 1), Reply::Status("OK".into()));
    let strict = Limits { strict_keys: true, ..Limits::default() };
    let reply = eval_with(&mut ks, body, &["a"], &["c"], 1, strict);
    let Reply::Error(text) = reply else { panic!("{reply:?}") };
    assert!(text.starts_with("ERR Script attempted to access key 'c' that was not declared in KEYS"), "{text}");
    assert_eq!(eval(&mut ks, "return redis.call('GET', 'c')", &[], &[], 1), Reply::Nil);
    // Declared keys and keyless commands pass.
    let ok = "redis.call('PING') redis.call('DBSIZE') return redis.call('MSET', KEYS[1], 4, KEYS[2], 5)";
    assert_eq!(eval_with(&mut ks, ok, &["a", "c"], &[], 1, strict), Reply::Status("OK".into()));
}

#[test]
fn the_memory_bound_stops_a_script() {
    let mut ks = KeySpace::new();
    let limits = Limits { max_memory: 8 << 20, ..Limits::default() };
    let reply = eval_with(&mut ks, "local t = {} for i = 1, 1e7 do t[i] = i end return #t", &[], &[], 1, limits);
    let Reply::Error(text) = reply else { panic!("{reply:?}") };
    assert!(text.contains("not enough memory"), "{text}");
    assert_eq!(eval(&mut ks, "return 1", &[], &[], 1), Reply::Int(1));
}

#[test]
fn evalsha_finds_what_eval_and_load_cached_and_snapshots_keep_it() {
    let mut ks = KeySpace::new();
    let body = "return 'cached'";
    eval(&mut ks, body, &[], &[], 1);
    let sha = crate::script::sha1_hex(body.as_bytes());
    let by_sha = |ks: &mut KeySpace, sha: &str| {
        Op::Script(ScriptOp::Eval {
            script: Script::Sha(Bytes::from(sha.to_string())),
            keys: vec![],
            argv: vec![],
            read_only: false,
            limits: Limits::default(),
        })
        .apply(ks, Ctx { now: 1, seed: 1 })
    };
    assert_eq!(by_sha(&mut ks, &sha), Reply::bulk("cached"));
    let loaded = Op::Script(ScriptOp::Load(Bytes::from_static(b"return 2"))).apply(&mut ks, Ctx { now: 1, seed: 1 });
    let Reply::Bulk(loaded_sha) = loaded else { panic!("{loaded:?}") };
    let image = ks.to_image();
    let mut restored = KeySpace::from_image(image);
    assert_eq!(by_sha(&mut restored, &sha), Reply::bulk("cached"));
    assert_eq!(by_sha(&mut restored, std::str::from_utf8(&loaded_sha).unwrap()), Reply::Int(2));
    Op::Script(ScriptOp::Flush).apply(&mut restored, Ctx { now: 1, seed: 1 });
    assert_eq!(by_sha(&mut restored, &sha), Reply::err("NOSCRIPT No matching script. Please use EVAL."));
}

#[test]
fn shebang_lines_parse_like_redis() {
    use super::{flags, shebang};
    assert_eq!(shebang(b"return 1"), Ok((flags::EVAL_COMPAT, 0)));
    assert_eq!(shebang(b"#!lua\nreturn 1"), Ok((0, 5)));
    assert_eq!(shebang(b"#!lua flags=no-writes,allow-stale\nx"), Ok((flags::NO_WRITES | flags::ALLOW_STALE, 33)));
    assert_eq!(shebang(b"#!lua flags=\nx"), Ok((0, 12)));
    assert_eq!(shebang(b"#!lua"), Err("Invalid script shebang".into()));
    assert_eq!(shebang(b"#!lua flags=x\n"), Err("Unexpected flag in script shebang: x".into()));
    assert_eq!(shebang(b"#!js\n"), Err("Unexpected engine in script shebang: #!js".into()));
}

#[test]
fn function_libraries_load_call_and_survive_a_snapshot() {
    let mut ks = KeySpace::new();
    let code = "#!lua name=lib\nredis.register_function('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)\nredis.register_function{function_name='peek', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}";
    let ctx = Ctx { now: 1, seed: 1 };
    let load =
        Op::Script(ScriptOp::FunctionLoad { code: Bytes::from(code), replace: false, limits: Limits::default() });
    assert_eq!(load.apply(&mut ks, ctx), Reply::bulk("lib"));
    let fcall = |name: &str, read_only: bool| {
        Op::Script(ScriptOp::Fcall {
            name: Bytes::from(name.to_string()),
            numkeys: Bytes::from_static(b"1"),
            args: vec![Bytes::from_static(b"n"), Bytes::from_static(b"5")],
            read_only,
            limits: Limits::default(),
        })
    };
    assert_eq!(fcall("bump", false).apply(&mut ks, ctx), Reply::Int(5));
    let mut restored = KeySpace::from_image(ks.to_image());
    assert_eq!(fcall("bump", false).apply(&mut restored, ctx), Reply::Int(10));
    assert_eq!(fcall("peek", true).query(&restored, ctx), Reply::bulk("10"));
    assert_eq!(
        fcall("bump", true).query(&restored, ctx),
        Reply::err("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(digest(&restored), {
        fcall("bump", false).apply(&mut ks, ctx);
        digest(&ks)
    });
}

#[test]
fn a_script_accepted_over_maxmemory_refuses_what_redis_refuses() {
    let over = |ks: &mut KeySpace, body: &str| {
        let op = Op::Script(
            ScriptOp::Eval {
                script: Script::Body(Bytes::copy_from_slice(body.as_bytes())),
                keys: vec![Bytes::from("k")],
                argv: Vec::new(),
                read_only: false,
                limits: Limits::default(),
            }
            .over_memory(),
        );
        assert!(matches!(&op, Op::Script(ScriptOp::OverMemory(_))));
        op.apply(ks, Ctx { now: 1_700_000_000_000, seed: 1 })
    };
    let is_oom = |r: Reply| matches!(&r, Reply::Error(e) if e.starts_with("OOM command not allowed when used memory > 'maxmemory'. script: "));
    let mut ks = KeySpace::new();
    eval(&mut ks, "return redis.call('set', KEYS[1], 'v')", &["k"], &[], 1);
    // Without flags: a call that may use memory fails, reads and deletions run...
    assert!(is_oom(over(&mut ks, "return redis.call('set', KEYS[1], 'x')")));
    assert_eq!(over(&mut ks, "return redis.call('get', KEYS[1])"), Reply::Bulk(Bytes::from("v")));
    let caught = over(&mut ks, "local r = redis.pcall('incr', 'n') return r['err']");
    assert_eq!(caught, Reply::Bulk(Bytes::from("OOM command not allowed when used memory > 'maxmemory'.")));
    // ... and after its first write, the script is not stopped half way.
    assert_eq!(over(&mut ks, "redis.call('del', 'other') return redis.call('set', KEYS[1], 'y')"), Reply::status("OK"));
    // With flags: only allow-oom runs.
    let refused = over(&mut ks, "#!lua\nreturn 1");
    assert_eq!(
        refused,
        Reply::err("OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'")
    );
    assert_eq!(over(&mut ks, "#!lua flags=allow-oom\nreturn redis.call('set', KEYS[1], 'z')"), Reply::status("OK"));
    // Not stamped, the same script writes.
    assert_eq!(eval(&mut ks, "return redis.call('set', KEYS[1], 'w')", &["k"], &[], 1), Reply::status("OK"));
}
