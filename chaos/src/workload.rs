//! The workloads: what each client does in a loop, and the final reads after the cluster healed.
//!
//! - register: GET / SET / INCR / compare-and-set (WATCH, GET, MULTI, SET, EXEC) / a Lua
//!   compare-and-set (EVAL of a script that GETs and SETs when the value is the expected one,
//!   from the value the client last saw) on a few keys at a time; a key is retired after a bounded number of operations, so that each key's
//!   history stays small enough for the linearizability search.
//! - append: APPEND unique tokens to a few keys, and GET them.
//! - set: SADD unique elements to a few keys, and SMEMBERS them (Jepsen's "set": adds and reads
//!   only, so a set never loses an element).
//! - bank: transfers between accounts (MULTI, DECRBY, INCRBY, EXEC) and reads of every account
//!   in one MULTI/EXEC.
//!
//! Reads start at a random node half of the time (a follower redirects them to the leader, a
//! follower that wrongly answers itself shows up as a stale read); writes start at the leader the
//! client last heard of.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::client::{cmd, Client, CutSwitch, Reply};
use crate::history::{Call, Clock, Op, Outcome, Recorder, Ret};
use crate::resp::Resp;

/// The accounts of the bank workload, and what each holds at first.
pub const BANK_ACCOUNTS: usize = 5;
pub const BANK_INITIAL: i64 = 100;

/// The key of bank account `i` (one hash tag, as Redis Cluster needs for a transaction).
pub fn bank_key(i: usize) -> String {
    format!("{{bank}}acct{i}")
}

/// Keys in use, each retired after `max_ops` operations.
pub struct KeyPool {
    prefix: String,
    max_ops: usize,
    inner: Mutex<PoolInner>,
}

struct PoolInner {
    active: Vec<(String, usize)>,
    next: usize,
    all: Vec<String>,
}

impl KeyPool {
    pub fn new(prefix: &str, active: usize, max_ops: usize) -> KeyPool {
        let keys: Vec<String> = (0..active).map(|i| format!("{prefix}{i}")).collect();
        KeyPool {
            prefix: prefix.to_string(),
            max_ops,
            inner: Mutex::new(PoolInner {
                active: keys.iter().map(|k| (k.clone(), 0)).collect(),
                next: active,
                all: keys,
            }),
        }
    }

    /// A key for one operation.
    pub fn pick(&self, rng: &mut StdRng) -> String {
        let mut p = self.inner.lock().unwrap();
        let i = rng.random_range(0..p.active.len());
        let key = p.active[i].0.clone();
        p.active[i].1 += 1;
        if p.active[i].1 >= self.max_ops {
            let fresh = format!("{}{}", self.prefix, p.next);
            p.next += 1;
            p.all.push(fresh.clone());
            p.active[i] = (fresh, 0);
        }
        key
    }

    /// Every key ever handed out.
    pub fn all(&self) -> Vec<String> {
        self.inner.lock().unwrap().all.clone()
    }
}

/// What every client shares.
#[derive(Clone)]
pub struct Ctx {
    pub clock: Clock,
    pub recorder: Recorder,
    pub addrs: Vec<String>,
    pub stop: Arc<AtomicBool>,
    pub cut: CutSwitch,
    /// Unique values for register writes.
    pub values: Arc<AtomicI64>,
}

impl Ctx {
    /// Records one operation of `who` (workload, process).
    fn record(&self, who: (&str, usize), key: &str, call: Call, invoke: u64, end: Ended, node: &str) {
        self.record_step(who, key, call, invoke, end, node, None);
    }

    /// Records one step of transaction `txn` (or a lone operation when `None`).
    #[allow(clippy::too_many_arguments)]
    fn record_step(
        &self,
        who: (&str, usize),
        key: &str,
        call: Call,
        invoke: u64,
        end: Ended,
        node: &str,
        txn: Option<u64>,
    ) {
        let (workload, process) = who;
        let (outcome, ret, error) = match end {
            Ended::Ok(r) => (Outcome::Ok, Some(r), String::new()),
            Ended::OkNote(r, note) => (Outcome::Ok, Some(r), note),
            Ended::Fail(e) => (Outcome::Fail, None, e),
            Ended::Info(e) => (Outcome::Info, None, e),
        };
        self.recorder.push(Op {
            index: 0,
            workload: workload.into(),
            process,
            key: key.into(),
            call,
            outcome,
            ret,
            invoke,
            complete: self.clock.now(),
            node: node.into(),
            error,
            txn,
        });
    }
}

/// How one operation ended, with its result.
enum Ended {
    Ok(Ret),
    /// Acknowledged, with something worth noting in the history.
    OkNote(Ret, String),
    Fail(String),
    Info(String),
}

fn unexpected(what: &str, r: &Resp) -> Ended {
    match r {
        Resp::Error(e) => Ended::Fail(format!("{what}: {e}")),
        other => Ended::Fail(format!("{what}: unexpected reply {other}")),
    }
}

fn value_of(r: &Resp) -> Option<Option<i64>> {
    match r {
        Resp::Nil => Some(None),
        Resp::Bulk(_) => r.int_value().map(Some),
        _ => None,
    }
}

/// Where an operation starts: a random node (reads, half of the time) or the known leader.
fn first_node(client: &Client, rng: &mut StdRng, read: bool) -> String {
    if read && rng.random_bool(0.5) {
        client.random_node(rng)
    } else {
        client.leader()
    }
}

/// Sends one request and maps a done reply with `done`.
async fn run(
    client: &mut Client,
    rng: &mut StdRng,
    cmds: &[Vec<String>],
    read: bool,
    done: impl FnOnce(&[Resp]) -> Ended,
) -> Ended {
    let first = first_node(client, rng, read);
    match client.request(cmds, first, rng).await {
        Reply::Done(r) => done(&r),
        Reply::Fail(e) => Ended::Fail(e),
        Reply::Info(e) => Ended::Info(e),
    }
}

/// The Lua compare-and-set: sets KEYS[1] to ARGV[2] when it holds ARGV[1] (`nil`: when it is
/// missing); 1 if it did, 0 if not.
const LUA_CAS: &str = "local v = redis.call('GET', KEYS[1]) \
    if (v == false and ARGV[1] == 'nil') or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end \
    return 0";

/// A register client: until `stop`, one operation after another on keys from `pool`.
pub async fn register_client(ctx: Ctx, process: usize, seed: u64, pool: Arc<KeyPool>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut client = Client::new(ctx.addrs.clone(), ctx.cut.clone());
    // The value this client last saw on each key: what its Lua CAS expects.
    let mut seen: std::collections::HashMap<String, Option<i64>> = std::collections::HashMap::new();
    while !ctx.stop.load(Ordering::Relaxed) {
        let key = pool.pick(&mut rng);
        let roll = rng.random_range(0..100);
        let invoke = ctx.clock.now();
        let (call, end) = if roll < 45 {
            let end = run(&mut client, &mut rng, &[cmd(&["GET", &key])], true, |r| match value_of(&r[0]) {
                Some(v) => Ended::Ok(Ret::Value(v)),
                None => unexpected("GET", &r[0]),
            })
            .await;
            (Call::Read, end)
        } else if roll < 65 {
            let value = ctx.values.fetch_add(1, Ordering::Relaxed) * 1000;
            let end = run(&mut client, &mut rng, &[cmd(&["SET", &key, &value.to_string()])], false, |r| match &r[0] {
                Resp::Simple(s) if s == "OK" => Ended::Ok(Ret::Done),
                other => unexpected("SET", other),
            })
            .await;
            (Call::Write { value }, end)
        } else if roll < 80 {
            let end = run(&mut client, &mut rng, &[cmd(&["INCR", &key])], false, |r| match &r[0] {
                Resp::Int(n) => Ended::Ok(Ret::Value(Some(*n))),
                other => unexpected("INCR", other),
            })
            .await;
            (Call::Incr, end)
        } else if roll < 90 {
            let new = ctx.values.fetch_add(1, Ordering::Relaxed) * 1000;
            let expect = seen.get(&key).copied().flatten();
            let expect_arg = expect.map_or("nil".to_string(), |v| v.to_string());
            let cmds = [cmd(&["EVAL", LUA_CAS, "1", &key, &expect_arg, &new.to_string()])];
            let end = run(&mut client, &mut rng, &cmds, false, |r| match &r[0] {
                Resp::Int(1) => Ended::Ok(Ret::Done),
                Resp::Int(0) => Ended::Fail("Lua CAS: the value was not the expected one".into()),
                other => unexpected("EVAL", other),
            })
            .await;
            (Call::Cas { expect, known: true, new }, end)
        } else {
            let new = ctx.values.fetch_add(1, Ordering::Relaxed) * 1000;
            let cmds = [
                cmd(&["WATCH", &key]),
                cmd(&["GET", &key]),
                cmd(&["MULTI"]),
                cmd(&["SET", &key, &new.to_string()]),
                cmd(&["EXEC"]),
            ];
            let first = client.leader();
            cas_outcome(new, client.request(&cmds, first, &mut rng).await)
        };
        match (&call, &end) {
            (Call::Read | Call::Incr, Ended::Ok(Ret::Value(v))) => {
                seen.insert(key.clone(), *v);
            }
            (Call::Write { value: v } | Call::Cas { new: v, .. }, Ended::Ok(_)) => {
                seen.insert(key.clone(), Some(*v));
            }
            _ => {}
        }
        ctx.record(("register", process), &key, call, invoke, end, &client.last_node);
    }
}

/// What a compare-and-set request (`WATCH k; GET k; MULTI; SET k new; EXEC`) did, as the
/// operation to record: a CAS from the value GET saw, or, when WATCH answered an error (its
/// linearizability check failed), the unconditional SET the EXEC then was.
fn cas_outcome(new: i64, reply: Reply) -> (Call, Ended) {
    let r = match reply {
        Reply::Done(r) => r,
        // Nothing known about the GET: if applied, it set `new` whatever the value was.
        Reply::Fail(e) => return (Call::Cas { expect: None, known: false, new }, Ended::Fail(e)),
        Reply::Info(e) => return (Call::Cas { expect: None, known: false, new }, Ended::Info(e)),
    };
    let ok = Resp::Simple("OK".into());
    let end = match &r[4] {
        Resp::Nil => Ended::Fail("EXEC aborted: the watched key changed".into()),
        Resp::Array(a) if a.first() == Some(&ok) => Ended::Ok(Ret::Done),
        other => unexpected("EXEC", other),
    };
    if r[0] != ok {
        let end = match end {
            Ended::Ok(ret) => Ended::OkNote(ret, format!("WATCH answered {}: EXEC was a plain SET", r[0])),
            other => other,
        };
        return (Call::Write { value: new }, end);
    }
    match (value_of(&r[1]), end) {
        (Some(v), end) => (Call::Cas { expect: v, known: true, new }, end),
        // Applied, but the GET did not say from what.
        (None, Ended::Ok(_)) => (
            Call::Cas { expect: None, known: false, new },
            Ended::Info(format!("EXEC applied but GET answered {}", r[1])),
        ),
        (None, end) => (Call::Cas { expect: None, known: false, new }, end),
    }
}

/// An append client: APPENDs unique tokens and reads keys from `pool`.
pub async fn append_client(ctx: Ctx, process: usize, seed: u64, pool: Arc<KeyPool>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut client = Client::new(ctx.addrs.clone(), ctx.cut.clone());
    let mut n = 0u64;
    while !ctx.stop.load(Ordering::Relaxed) {
        let key = pool.pick(&mut rng);
        let invoke = ctx.clock.now();
        let (call, end) = if rng.random_bool(0.55) {
            n += 1;
            let token = format!("p{process}.{n}");
            let arg = format!("{token} ");
            let end = run(&mut client, &mut rng, &[cmd(&["APPEND", &key, &arg])], false, |r| match &r[0] {
                Resp::Int(len) => Ended::Ok(Ret::Len(*len)),
                other => unexpected("APPEND", other),
            })
            .await;
            (Call::Append { token }, end)
        } else {
            (Call::ReadList, read_list(&mut client, &mut rng, &key, true).await)
        };
        ctx.record(("append", process), &key, call, invoke, end, &client.last_node);
    }
}

async fn read_list(client: &mut Client, rng: &mut StdRng, key: &str, random: bool) -> Ended {
    run(client, rng, &[cmd(&["GET", key])], random, |r| match &r[0] {
        Resp::Nil => Ended::Ok(Ret::Text(String::new())),
        Resp::Bulk(b) => Ended::Ok(Ret::Text(String::from_utf8_lossy(b).into_owned())),
        other => unexpected("GET", other),
    })
    .await
}

/// A set client: SADDs unique elements to keys from `pool` and reads whole sets with SMEMBERS.
pub async fn set_client(ctx: Ctx, process: usize, seed: u64, pool: Arc<KeyPool>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut client = Client::new(ctx.addrs.clone(), ctx.cut.clone());
    let mut n = 0u64;
    while !ctx.stop.load(Ordering::Relaxed) {
        let key = pool.pick(&mut rng);
        let invoke = ctx.clock.now();
        let (call, end) = if rng.random_bool(0.55) {
            n += 1;
            let element = format!("p{process}.{n}");
            let end = run(&mut client, &mut rng, &[cmd(&["SADD", &key, &element])], false, |r| match &r[0] {
                Resp::Int(added) => Ended::Ok(Ret::Len(*added)),
                other => unexpected("SADD", other),
            })
            .await;
            (Call::SetAdd { element }, end)
        } else {
            (Call::SetRead, read_set(&mut client, &mut rng, &key, true).await)
        };
        ctx.record(("set", process), &key, call, invoke, end, &client.last_node);
    }
}

async fn read_set(client: &mut Client, rng: &mut StdRng, key: &str, random: bool) -> Ended {
    run(client, rng, &[cmd(&["SMEMBERS", key])], random, |r| members(&r[0])).await
}

/// SMEMBERS's reply as the sorted members (an array of bulk strings; RESP2 has no set type).
fn members(r: &Resp) -> Ended {
    let Resp::Array(items) = r else {
        return unexpected("SMEMBERS", r);
    };
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        match it {
            Resp::Bulk(b) => out.push(String::from_utf8_lossy(b).into_owned()),
            other => return Ended::Fail(format!("SMEMBERS: unexpected member {other}")),
        }
    }
    out.sort();
    Ended::Ok(Ret::Members(out))
}

/// Width of a list-append token: `pPP.NNNNNNNN` (process and count zero-padded), so that the
/// length RPUSH returns gives the token's end in the text a read makes of the list.
const LIST_TOKEN_LEN: usize = 12;

fn list_token(process: usize, n: u64) -> String {
    format!("p{:02}.{:08}", process % 100, n % 100_000_000)
}

/// A list read (LRANGE's elements) as the append checker reads text: each element followed by a
/// space.
fn list_text(items: &[Resp]) -> Option<String> {
    let mut text = String::new();
    for it in items {
        let Resp::Bulk(b) = it else { return None };
        text.push_str(&String::from_utf8_lossy(b));
        text.push(' ');
    }
    Some(text)
}

/// A list-append client (Jepsen's Redis "list-append"): transactions of one to three steps on
/// keys from `pool`, each step `RPUSH k t` (a unique token) or `LRANGE k 0 -1`, in one
/// `MULTI ... EXEC`. Each step is recorded as an operation (an append or a read of its key) that
/// carries the transaction's number. Checked per key by the append checker (each list reads as
/// one growing sequence of unique tokens) and as a whole by the cycle checker (the transactions'
/// dependencies and real-time order form no cycle: strict serializability).
pub async fn list_append_client(ctx: Ctx, process: usize, seed: u64, pool: Arc<KeyPool>) {
    enum Step {
        Push(String, String),
        Read(String),
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut client = Client::new(ctx.addrs.clone(), ctx.cut.clone());
    let mut n = 0u64;
    let mut txns = 0u64;
    let who = (crate::checker::append::LIST_WORKLOAD, process);
    while !ctx.stop.load(Ordering::Relaxed) {
        txns += 1;
        let txn = ((process as u64) << 32) | txns;
        let steps: Vec<Step> = (0..rng.random_range(1..=3))
            .map(|_| {
                let key = pool.pick(&mut rng);
                if rng.random_range(0..100) < 60 {
                    n += 1;
                    Step::Push(key, list_token(process, n))
                } else {
                    Step::Read(key)
                }
            })
            .collect();
        let invoke = ctx.clock.now();
        let mut cmds = vec![cmd(&["MULTI"])];
        for step in &steps {
            cmds.push(match step {
                Step::Push(key, token) => cmd(&["RPUSH", key, token]),
                Step::Read(key) => cmd(&["LRANGE", key, "0", "-1"]),
            });
        }
        cmds.push(cmd(&["EXEC"]));
        let first = client.leader();
        let reply = client.request(&cmds, first, &mut rng).await;
        let node = client.last_node.clone();
        let ends: Vec<Ended> = match reply {
            Reply::Fail(e) => steps.iter().map(|_| Ended::Fail(e.clone())).collect(),
            Reply::Info(e) => steps.iter().map(|_| Ended::Info(e.clone())).collect(),
            Reply::Done(r) => match r.last() {
                Some(Resp::Array(items)) if items.len() == steps.len() => steps
                    .iter()
                    .zip(items)
                    .map(|(step, item)| match (step, item) {
                        (Step::Push(..), Resp::Int(len)) => Ended::Ok(Ret::Len(*len * (LIST_TOKEN_LEN as i64 + 1))),
                        (Step::Push(..), other) => unexpected("RPUSH", other),
                        (Step::Read(_), Resp::Array(elems)) => match list_text(elems) {
                            Some(text) => Ended::Ok(Ret::Text(text)),
                            None => Ended::Fail("LRANGE: an element is not a string".into()),
                        },
                        (Step::Read(_), other) => unexpected("LRANGE", other),
                    })
                    .collect(),
                Some(other) => steps.iter().map(|_| unexpected("EXEC", other)).collect(),
                None => steps.iter().map(|_| Ended::Fail("no reply".into())).collect(),
            },
        };
        for (step, end) in steps.into_iter().zip(ends) {
            match step {
                Step::Push(key, token) => {
                    ctx.record_step(who, &key, Call::Append { token }, invoke, end, &node, Some(txn))
                }
                Step::Read(key) => ctx.record_step(who, &key, Call::ReadList, invoke, end, &node, Some(txn)),
            }
        }
    }
}

/// A queue client (Jepsen's Redis "queue"): LPUSHes unique tokens onto keys from `pool` and
/// RPOPs them; a token must come out at most once, and every acknowledged one must come out or
/// still be queued at the end.
pub async fn queue_client(ctx: Ctx, process: usize, seed: u64, pool: Arc<KeyPool>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut client = Client::new(ctx.addrs.clone(), ctx.cut.clone());
    let mut n = 0u64;
    while !ctx.stop.load(Ordering::Relaxed) {
        let key = pool.pick(&mut rng);
        let invoke = ctx.clock.now();
        let (call, end) = if rng.random_bool(0.5) {
            n += 1;
            let token = format!("p{process}.{n}");
            let end = run(&mut client, &mut rng, &[cmd(&["LPUSH", &key, &token])], false, |r| match &r[0] {
                Resp::Int(len) => Ended::Ok(Ret::Len(*len)),
                other => unexpected("LPUSH", other),
            })
            .await;
            (Call::Enqueue { token }, end)
        } else {
            let end = run(&mut client, &mut rng, &[cmd(&["RPOP", &key])], false, |r| match &r[0] {
                Resp::Nil => Ended::Ok(Ret::Text(String::new())),
                Resp::Bulk(b) => Ended::Ok(Ret::Text(String::from_utf8_lossy(b).into_owned())),
                other => unexpected("RPOP", other),
            })
            .await;
            (Call::Dequeue, end)
        };
        ctx.record(("queue", process), &key, call, invoke, end, &client.last_node);
    }
}

async fn read_queue(client: &mut Client, rng: &mut StdRng, key: &str) -> Ended {
    run(client, rng, &[cmd(&["LRANGE", key, "0", "-1"])], false, |r| match &r[0] {
        Resp::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                match it {
                    Resp::Bulk(b) => out.push(String::from_utf8_lossy(b).into_owned()),
                    other => return Ended::Fail(format!("LRANGE: unexpected element {other}")),
                }
            }
            Ended::Ok(Ret::Members(out))
        }
        other => unexpected("LRANGE", other),
    })
    .await
}

/// A bank client: transfers and whole-bank reads.
pub async fn bank_client(ctx: Ctx, process: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut client = Client::new(ctx.addrs.clone(), ctx.cut.clone());
    while !ctx.stop.load(Ordering::Relaxed) {
        let invoke = ctx.clock.now();
        let (call, end) = if rng.random_bool(0.6) {
            let from = rng.random_range(0..BANK_ACCOUNTS);
            let to = (from + rng.random_range(1..BANK_ACCOUNTS)) % BANK_ACCOUNTS;
            let amount = rng.random_range(1..=10i64);
            let cmds = [
                cmd(&["MULTI"]),
                cmd(&["DECRBY", &bank_key(from), &amount.to_string()]),
                cmd(&["INCRBY", &bank_key(to), &amount.to_string()]),
                cmd(&["EXEC"]),
            ];
            let end = run(&mut client, &mut rng, &cmds, false, |r| match &r[3] {
                Resp::Array(a) => Ended::Ok(Ret::Balances(a.iter().map(value_of_int).collect())),
                other => unexpected("EXEC", other),
            })
            .await;
            (Call::Transfer { from, to, amount }, end)
        } else {
            (Call::ReadAll, read_bank(&mut client, &mut rng).await)
        };
        ctx.record(("bank", process), "bank", call, invoke, end, &client.last_node);
    }
}

fn value_of_int(r: &Resp) -> Option<i64> {
    match r {
        Resp::Int(i) => Some(*i),
        _ => None,
    }
}

async fn read_bank(client: &mut Client, rng: &mut StdRng) -> Ended {
    let mut cmds = vec![cmd(&["MULTI"])];
    cmds.extend((0..BANK_ACCOUNTS).map(|i| cmd(&["GET", &bank_key(i)])));
    cmds.push(cmd(&["EXEC"]));
    run(client, rng, &cmds, true, |r| match r.last() {
        Some(Resp::Array(a)) => Ended::Ok(Ret::Balances(a.iter().map(|x| value_of(x).flatten()).collect())),
        Some(other) => unexpected("EXEC", other),
        None => Ended::Fail("no reply".into()),
    })
    .await
}

/// Puts the initial balances in place (before any fault); retries for up to `timeout`.
pub async fn bank_setup(addrs: Vec<String>, timeout: Duration) -> anyhow::Result<()> {
    let mut client = Client::new(addrs, CutSwitch::default());
    client.give_up = timeout;
    let mut rng = StdRng::seed_from_u64(0);
    let mut args = vec!["MSET".to_string()];
    for i in 0..BANK_ACCOUNTS {
        args.push(bank_key(i));
        args.push(BANK_INITIAL.to_string());
    }
    let first = client.leader();
    match client.request(&[args], first, &mut rng).await {
        Reply::Done(r) if r[0] == Resp::Simple("OK".into()) => Ok(()),
        other => anyhow::bail!("could not set up the bank: {other:?}"),
    }
}

/// The keys the final reads cover, workload by workload.
pub struct FinalKeys {
    pub registers: Vec<String>,
    pub lists: Vec<String>,
    pub list_appends: Vec<String>,
    pub sets: Vec<String>,
    pub queues: Vec<String>,
    pub bank: bool,
}

/// After the cluster healed: one read of every key of every workload, recorded like any other
/// operation (processes from `process` up), waiting up to `give_up` for each and `budget` for all
/// of them: a cluster that answers none (no leader) costs `budget`, not `give_up` per key. Returns
/// how many reads were not sent because the budget ran out.
pub async fn final_reads(ctx: &Ctx, process: usize, keys: &FinalKeys, give_up: Duration, budget: Duration) -> usize {
    let FinalKeys { registers, lists, list_appends, sets, queues, bank } = keys;
    let mut rng = StdRng::seed_from_u64(process as u64);
    let mut client = Client::new(ctx.addrs.clone(), CutSwitch::default());
    let deadline = Instant::now() + budget;
    let mut skipped = 0;
    // Sets the next read's patience from what is left of the budget; false once nothing is.
    let mut next = |client: &mut Client| {
        let left = deadline.saturating_duration_since(Instant::now());
        client.give_up = give_up.min(left);
        if left.is_zero() {
            skipped += 1;
        }
        !left.is_zero()
    };
    for key in registers {
        if !next(&mut client) {
            continue;
        }
        let invoke = ctx.clock.now();
        let end = run(&mut client, &mut rng, &[cmd(&["GET", key])], false, |r| match value_of(&r[0]) {
            Some(v) => Ended::Ok(Ret::Value(v)),
            None => unexpected("GET", &r[0]),
        })
        .await;
        ctx.record(("register", process), key, Call::Read, invoke, end, &client.last_node);
    }
    for key in lists {
        if !next(&mut client) {
            continue;
        }
        let invoke = ctx.clock.now();
        let end = read_list(&mut client, &mut rng, key, false).await;
        ctx.record(("append", process + 1), key, Call::ReadList, invoke, end, &client.last_node);
    }
    if *bank && next(&mut client) {
        let invoke = ctx.clock.now();
        let end = read_bank(&mut client, &mut rng).await;
        ctx.record(("bank", process + 2), "bank", Call::ReadAll, invoke, end, &client.last_node);
    }
    for key in sets {
        if !next(&mut client) {
            continue;
        }
        let invoke = ctx.clock.now();
        let end = read_set(&mut client, &mut rng, key, false).await;
        ctx.record(("set", process + 3), key, Call::SetRead, invoke, end, &client.last_node);
    }
    for key in list_appends {
        if !next(&mut client) {
            continue;
        }
        let invoke = ctx.clock.now();
        let end = run(&mut client, &mut rng, &[cmd(&["LRANGE", key, "0", "-1"])], false, |r| match &r[0] {
            Resp::Array(items) => match list_text(items) {
                Some(text) => Ended::Ok(Ret::Text(text)),
                None => Ended::Fail("LRANGE: an element is not a string".into()),
            },
            other => unexpected("LRANGE", other),
        })
        .await;
        let who = (crate::checker::append::LIST_WORKLOAD, process + 5);
        ctx.record(who, key, Call::ReadList, invoke, end, &client.last_node);
    }
    for key in queues {
        if !next(&mut client) {
            continue;
        }
        let invoke = ctx.clock.now();
        let end = read_queue(&mut client, &mut rng, key).await;
        ctx.record(("queue", process + 4), key, Call::QueueRead, invoke, end, &client.last_node);
    }
    skipped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cas(replies: Vec<Resp>) -> (Call, Outcome) {
        let (call, end) = cas_outcome(9, Reply::Done(replies));
        let outcome = match end {
            Ended::Ok(_) | Ended::OkNote(..) => Outcome::Ok,
            Ended::Fail(_) => Outcome::Fail,
            Ended::Info(_) => Outcome::Info,
        };
        (call, outcome)
    }

    #[test]
    fn smembers_replies_become_sorted_members() {
        let b = |s: &str| Resp::Bulk(s.as_bytes().to_vec());
        let Ended::Ok(ret) = members(&Resp::Array(vec![b("p2.1"), b("p10.3"), b("p1.7")])) else {
            panic!("not ok");
        };
        assert_eq!(ret, Ret::Members(vec!["p1.7".into(), "p10.3".into(), "p2.1".into()]));
        assert!(matches!(members(&Resp::Array(vec![])), Ended::Ok(Ret::Members(m)) if m.is_empty()));
        assert!(matches!(members(&Resp::Error("WRONGTYPE x".into())), Ended::Fail(_)));
        assert!(matches!(members(&Resp::Array(vec![Resp::Nil])), Ended::Fail(_)));
    }

    #[test]
    fn a_cas_is_conditional_only_when_its_watch_succeeded() {
        let ok = || Resp::Simple("OK".into());
        let queued = || Resp::Simple("QUEUED".into());
        let applied = || Resp::Array(vec![ok()]);
        let v = |n: &str| Resp::Bulk(n.as_bytes().to_vec());
        assert_eq!(
            cas(vec![ok(), v("5"), ok(), queued(), applied()]),
            (Call::Cas { expect: Some(5), known: true, new: 9 }, Outcome::Ok)
        );
        assert_eq!(
            cas(vec![ok(), Resp::Nil, ok(), queued(), Resp::Nil]),
            (Call::Cas { expect: None, known: true, new: 9 }, Outcome::Fail)
        );
        // Found by the long profile: WATCH's check failed, the GET's passed, EXEC applied.
        let down = Resp::Error("CLUSTERDOWN The cluster is down".into());
        assert_eq!(cas(vec![down, v("5"), ok(), queued(), applied()]), (Call::Write { value: 9 }, Outcome::Ok));
        let no_get = Resp::Error("CLUSTERDOWN The cluster is down".into());
        assert_eq!(
            cas(vec![ok(), no_get, ok(), queued(), applied()]),
            (Call::Cas { expect: None, known: false, new: 9 }, Outcome::Info)
        );
    }
}
