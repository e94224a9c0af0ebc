#!/usr/bin/env python3
"""Checks a Redis-compatible server with redis-py (the `redis` package), the way an application uses it.

Usage: redis_py_check.py --port PORT [--host HOST]

The server's data is FLUSHALLed first: point it at a test server only. Each check prints PASS or
FAIL (with the traceback); the last line is `redis-py: N passed, M failed`, and the exit status
is 1 when any check failed (2 when the server cannot be reached at all).
"""

import argparse
import sys
import threading
import time
import traceback

import redis
from redis.exceptions import ResponseError, WatchError

# Every socket operation gives up after this long, so a server that stops answering fails the
# check instead of hanging it.
SOCKET_TIMEOUT = 10.0

ARGS = None
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def client(**kwargs):
    kwargs.setdefault("socket_timeout", SOCKET_TIMEOUT)
    kwargs.setdefault("socket_connect_timeout", SOCKET_TIMEOUT)
    return redis.Redis(host=ARGS.host, port=ARGS.port, **kwargs)


def eq(got, expected, what=""):
    if got != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {got!r}")


def raises(exc_type, fn, *args, match=None, **kwargs):
    """Asserts that fn(*args, **kwargs) raises exc_type (with `match` in its message); returns it."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        if match is not None and match not in str(e):
            raise AssertionError(f"{exc_type.__name__} without {match!r}: {e}") from e
        return e
    raise AssertionError(f"expected {exc_type.__name__} from {getattr(fn, '__name__', fn)}{args}")


# --- start-up ------------------------------------------------------------------------------------


@check
def startup_client_setinfo():
    # redis-py 5+ sends CLIENT SETINFO LIB-NAME / LIB-VER on every new connection; the server must
    # accept them (or reject them with an error redis-py ignores) and the connection must work.
    r = client()
    eq(r.ping(), True, "PING")
    info = r.client_info()
    eq(info.get("lib-name"), "redis-py", "CLIENT INFO lib-name after connect")
    eq(info.get("lib-ver"), redis.__version__, "CLIENT INFO lib-ver after connect")
    eq(r.client_setinfo("LIB-NAME", "raftis-check"), True, "CLIENT SETINFO LIB-NAME")
    eq(r.client_setinfo("LIB-VER", "1.2.3"), True, "CLIENT SETINFO LIB-VER")
    info = r.client_info()
    eq(info.get("lib-name"), "raftis-check", "lib-name after CLIENT SETINFO")
    eq(info.get("lib-ver"), "1.2.3", "lib-ver after CLIENT SETINFO")
    raises(ResponseError, r.client_setinfo, "LIB-NAME", "has space")
    raises(ResponseError, r.client_setinfo, "NOSUCHATTR", "x")
    # No SETINFO at all also works.
    bare = client(**no_setinfo_kwargs())
    eq(bare.ping(), True, "PING without SETINFO")
    eq(bare.client_info().get("lib-name"), "", "lib-name without SETINFO")
    # Frameworks built on redis-py add themselves to LIB-NAME: "redis-py(django-redis_v5.4.0)".
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # redis-py before 7.1
        return
    framework = client(driver_info=DriverInfo().add_upstream_driver("django-redis", "5.4.0"))
    eq(framework.client_info().get("lib-name"), "redis-py(django-redis_v5.4.0)", "upstream lib-name")


def no_setinfo_kwargs():
    """Client arguments that turn CLIENT SETINFO off, in this redis-py version's spelling."""
    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # redis-py before 7.1
        return {"lib_name": None, "lib_version": None}
    return {"driver_info": DriverInfo(name=None, lib_version=None)}


@check
def startup_client_name():
    r = client(client_name="raftis-check-conn")
    eq(r.client_getname(), "raftis-check-conn", "CLIENT GETNAME after client_name=")
    eq(r.client_info().get("name"), "raftis-check-conn", "CLIENT INFO name")
    eq(isinstance(r.client_id(), int), True, "CLIENT ID is an integer")
    names = [c.get("name") for c in r.client_list()]
    if "raftis-check-conn" not in names:
        raise AssertionError(f"CLIENT LIST does not show the connection name: {names}")


@check
def server_info_and_time():
    r = client()
    info = r.info()
    if "redis_version" not in info:
        raise AssertionError(f"INFO has no redis_version: {sorted(info)[:20]}")
    server = r.info("server")
    eq("redis_version" in server, True, "INFO server has redis_version")
    secs, micros = r.time()
    if abs(secs - time.time()) > 5 or not 0 <= micros < 1_000_000:
        raise AssertionError(f"TIME is off: {secs} {micros}")
    eq(r.echo("hi there"), b"hi there", "ECHO")
    eq(r.dbsize(), 0, "DBSIZE after FLUSHALL")


# --- strings and keys ----------------------------------------------------------------------------


@check
def set_get():
    r = client()
    eq(r.set("s:a", "hello"), True, "SET")
    eq(r.get("s:a"), b"hello", "GET")
    eq(r.get("s:missing"), None, "GET missing")
    eq(r.set("s:a", "x", nx=True), None, "SET NX on existing")
    eq(r.set("s:b", "x", xx=True), None, "SET XX on missing")
    eq(r.set("s:a", "world", xx=True, get=True), b"hello", "SET XX GET")
    eq(r.setnx("s:c", 1), True, "SETNX")
    eq(r.getset("s:c", 2), b"1", "GETSET")
    eq(r.getdel("s:c"), b"2", "GETDEL")
    eq(r.exists("s:a", "s:c", "s:a"), 2, "EXISTS")
    eq(r.type("s:a"), b"string", "TYPE")
    eq(r.append("s:a", "!"), 6, "APPEND")
    eq(r.strlen("s:a"), 6, "STRLEN")
    eq(r.getrange("s:a", 1, 3), b"orl", "GETRANGE")
    eq(r.setrange("s:a", 0, "W"), 6, "SETRANGE")
    eq(r.get("s:a"), b"World!", "GET after SETRANGE")
    eq(r.rename("s:a", "s:renamed"), True, "RENAME")
    eq(r.copy("s:renamed", "s:copy"), True, "COPY")
    eq(r.get("s:copy"), b"World!", "GET copy")
    eq(r.delete("s:renamed", "s:copy", "s:missing"), 2, "DEL")
    eq(r.unlink("s:renamed"), 0, "UNLINK missing")
    raises(ResponseError, r.rename, "s:missing", "s:x", match="no such key")


@check
def binary_and_large_values():
    r = client()
    every_byte = bytes(range(256)) * 4
    r.set(b"bin:\x00\xff key", every_byte)
    eq(r.get(b"bin:\x00\xff key"), every_byte, "all 256 byte values round-trip")
    big = (b"0123456789abcdef" * 65536) + b"end"  # 1 MiB + 3
    r.set("bin:big", big)
    eq(r.get("bin:big"), big, "1 MiB value round-trips")
    eq(r.strlen("bin:big"), len(big), "STRLEN of big value")
    eq(r.set("bin:empty", b""), True, "SET empty")
    eq(r.get("bin:empty"), b"", "GET empty value")


@check
def mset_mget():
    r = client()
    mapping = {f"m:{i}": f"v{i}" for i in range(50)}
    eq(r.mset(mapping), True, "MSET")
    keys = list(mapping) + ["m:missing"]
    eq(r.mget(keys), [v.encode() for v in mapping.values()] + [None], "MGET")
    eq(r.msetnx({"m:0": "x", "m:new": "y"}), False, "MSETNX with an existing key")
    eq(r.get("m:new"), None, "MSETNX set nothing")
    eq(r.msetnx({"m:new": "y", "m:new2": "z"}), True, "MSETNX")
    eq(r.mget("m:new", "m:new2"), [b"y", b"z"], "MGET after MSETNX")


@check
def counters():
    r = client()
    eq(r.incr("c:n"), 1, "INCR new")
    eq(r.incr("c:n", 10), 11, "INCRBY")
    eq(r.decr("c:n"), 10, "DECR")
    eq(r.decr("c:n", 20), -10, "DECRBY")
    eq(r.incrbyfloat("c:f", 1.5), 1.5, "INCRBYFLOAT new")
    eq(r.incrbyfloat("c:f", "0.25"), 1.75, "INCRBYFLOAT")
    eq(r.get("c:f"), b"1.75", "INCRBYFLOAT stored text")
    r.set("c:s", "not a number")
    raises(ResponseError, r.incr, "c:s", match="not an integer")
    raises(ResponseError, r.incrbyfloat, "c:s", 1, match="not a valid float")
    r.set("c:max", 2**63 - 1)
    raises(ResponseError, r.incr, "c:max", match="overflow")


@check
def expire_ttl():
    r = client()
    r.set("e:a", "v")
    eq(r.ttl("e:a"), -1, "TTL without expiry")
    eq(r.ttl("e:missing"), -2, "TTL missing key")
    eq(r.expire("e:a", 100), True, "EXPIRE")
    ttl = r.ttl("e:a")
    if not 99 <= ttl <= 100:
        raise AssertionError(f"TTL after EXPIRE 100: {ttl}")
    pttl = r.pttl("e:a")
    if not 98_000 <= pttl <= 100_000:
        raise AssertionError(f"PTTL after EXPIRE 100: {pttl}")
    eq(r.expire("e:a", 50, gt=True), False, "EXPIRE GT with a smaller value")
    eq(r.expire("e:a", 50, lt=True), True, "EXPIRE LT with a smaller value")
    eq(r.expireat("e:a", 4102444800), True, "EXPIREAT")
    eq(r.expiretime("e:a"), 4102444800, "EXPIRETIME")
    eq(r.persist("e:a"), True, "PERSIST")
    eq(r.ttl("e:a"), -1, "TTL after PERSIST")
    eq(r.expire("e:missing", 10), False, "EXPIRE missing key")
    r.set("e:ex", "v", ex=100)
    if not 99 <= r.ttl("e:ex") <= 100:
        raise AssertionError("SET EX 100 did not set a TTL of about 100")
    eq(r.execute_command("SETEX", "e:setex", 100, "v"), True, "SETEX")
    if not 99 <= r.ttl("e:setex") <= 100:
        raise AssertionError("SETEX 100 did not set a TTL of about 100")
    eq(r.getex("e:setex", persist=True), b"v", "GETEX PERSIST")
    eq(r.ttl("e:setex"), -1, "TTL after GETEX PERSIST")
    # A key really goes away when its time is up.
    r.set("e:short", "v", px=1000)
    r.psetex("e:short2", 1000, "v")
    eq(r.get("e:short"), b"v", "GET before expiry")
    time.sleep(1.5)
    eq(r.get("e:short"), None, "GET after PX 1000 and 1.5 s")
    eq(r.exists("e:short2"), 0, "EXISTS after PSETEX 1000 and 1.5 s")
    eq(r.ttl("e:short"), -2, "TTL of an expired key")


@check
def keys_and_scan():
    r = client()
    r.flushdb()
    names = {f"scan:{i}" for i in range(250)}
    r.mset({k: "x" for k in names})
    r.set("other", "x")
    eq(set(k.decode() for k in r.scan_iter(match="scan:*", count=17)), names, "SCAN MATCH")
    eq(set(k.decode() for k in r.keys("scan:*")), names, "KEYS pattern")
    eq(len(r.keys("scan:1?")), 10, "KEYS ?-pattern")
    eq(r.dbsize(), len(names) + 1, "DBSIZE")
    if r.randomkey() is None:
        raise AssertionError("RANDOMKEY returned nil on a non-empty database")
    eq(r.flushdb(), True, "FLUSHDB")
    eq(r.dbsize(), 0, "DBSIZE after FLUSHDB")
    eq(r.randomkey(), None, "RANDOMKEY on an empty database")


@check
def errors():
    r = client()
    raises(ResponseError, r.execute_command, "NOSUCHCOMMAND", "x", match="unknown command")
    raises(ResponseError, r.execute_command, "GET", match="wrong number of arguments")
    raises(ResponseError, r.execute_command, "SET", "k", "v", "EX", "0", match="invalid expire")
    # The connection is still usable after errors.
    eq(r.ping(), True, "PING after errors")


# --- pipelines and transactions ------------------------------------------------------------------


@check
def pipeline_100_commands():
    r = client()
    with r.pipeline(transaction=False) as pipe:
        for i in range(50):
            pipe.set(f"p:{i}", i)
        for i in range(50):
            pipe.incr(f"p:{i}")
        results = pipe.execute()
    eq(len(results), 100, "pipeline result count")
    eq(results[:50], [True] * 50, "pipelined SETs")
    eq(results[50:], list(range(1, 51)), "pipelined INCRs")
    with r.pipeline(transaction=False) as pipe:
        for i in range(100):
            pipe.get(f"p:{i}")
        results = pipe.execute()
    eq(results, [str(i + 1).encode() for i in range(50)] + [None] * 50, "pipelined GETs")
    # An error inside a pipeline is reported in place; the other commands still run.
    r.set("p:str", "abc")
    with r.pipeline(transaction=False) as pipe:
        pipe.incr("p:0").incr("p:str").incr("p:1")
        results = pipe.execute(raise_on_error=False)
    eq(results[0], 2, "pipeline: command before the error")
    eq(isinstance(results[1], ResponseError), True, f"pipeline: error in place ({results[1]!r})")
    eq(results[2], 3, "pipeline: command after the error")


@check
def transaction():
    r = client()
    with r.pipeline(transaction=True) as pipe:
        pipe.set("t:a", 1).incr("t:a").incrby("t:a", 10).get("t:a").mget("t:a", "t:missing")
        results = pipe.execute()
    eq(results, [True, 2, 12, b"12", [b"12", None]], "MULTI/EXEC results")
    # A command that fails when queued (wrong arity) aborts the whole transaction.
    with r.pipeline(transaction=True) as pipe:
        pipe.set("t:b", 1)
        pipe.execute_command("GET")
        raises(ResponseError, pipe.execute)
    eq(r.get("t:b"), None, "an aborted transaction wrote nothing")
    # A command that fails when run does not stop the others.
    r.set("t:str", "abc")
    with r.pipeline(transaction=True) as pipe:
        pipe.set("t:c", 1).incr("t:str").incr("t:c")
        results = pipe.execute(raise_on_error=False)
    eq(results[0], True, "EXEC: command before a runtime error")
    eq(isinstance(results[1], ResponseError), True, "EXEC: runtime error in place")
    eq(results[2], 2, "EXEC: command after a runtime error")
    eq(r.ping(), True, "connection usable after transactions")


@check
def watch_conflict():
    r = client()
    other = client()
    r.set("w:key", "0")
    with r.pipeline() as pipe:
        pipe.watch("w:key")
        eq(pipe.get("w:key"), b"0", "GET while watching")
        other.set("w:key", "changed")  # another client touches the watched key
        pipe.multi()
        pipe.set("w:key", "mine")
        raises(WatchError, pipe.execute)
    eq(r.get("w:key"), b"changed", "a failed EXEC wrote nothing")
    # Without interference the same sequence goes through.
    with r.pipeline() as pipe:
        pipe.watch("w:key")
        pipe.multi()
        pipe.set("w:key", "mine")
        eq(pipe.execute(), [True], "EXEC after WATCH without conflict")
    eq(r.get("w:key"), b"mine", "EXEC wrote")
    # UNWATCH (pipe.reset) forgets the watch.
    with r.pipeline() as pipe:
        pipe.watch("w:key")
        pipe.unwatch()
        other.set("w:key", "again")
        pipe.multi()
        pipe.set("w:key", "after-unwatch")
        eq(pipe.execute(), [True], "EXEC after UNWATCH")
    # redis-py's transaction() helper retries on WatchError.
    r.set("w:helper", 5)

    def double(pipe):
        value = int(pipe.get("w:helper"))
        pipe.multi()
        pipe.set("w:helper", value * 2)

    eq(r.transaction(double, "w:helper"), [True], "Redis.transaction helper")
    eq(r.get("w:helper"), b"10", "value after transaction helper")


@check
def watch_retry_loop():
    threads_n, per_thread = 8, 40
    r = client()
    r.set("w:counter", 0)
    retries = [0] * threads_n
    errors = []

    def worker(idx):
        try:
            c = client()
            for _ in range(per_thread):
                deadline = time.monotonic() + 30
                with c.pipeline() as pipe:
                    while True:
                        if time.monotonic() > deadline:
                            raise AssertionError("WATCH retry loop made no progress for 30 s")
                        try:
                            pipe.watch("w:counter")
                            value = int(pipe.get("w:counter"))
                            pipe.multi()
                            pipe.set("w:counter", value + 1)
                            pipe.execute()
                            break
                        except WatchError:
                            retries[idx] += 1
        except Exception as e:  # reported by the main thread
            errors.append(f"thread {idx}: {e!r}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads_n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            raise AssertionError("the WATCH worker threads are still running after 120 s")
    if errors:
        raise AssertionError("; ".join(errors))
    eq(int(r.get("w:counter")), threads_n * per_thread, "counter after the WATCH retry loop")
    print(f"  ({threads_n * per_thread} increments, {sum(retries)} WATCH retries)")


# --- RESP3 and decoding --------------------------------------------------------------------------


@check
def resp3_basics():
    r = client(protocol=3)
    eq(r.ping(), True, "RESP3 PING")
    info = r.client_info()
    eq(info.get("resp"), "3", "CLIENT INFO resp after HELLO 3")
    hello = r.execute_command("HELLO", 3)
    proto = hello.get(b"proto", hello.get("proto"))
    eq(proto, 3, "HELLO 3 proto")
    eq(r.set("r3:a", "v"), True, "RESP3 SET")
    eq(r.get("r3:a"), b"v", "RESP3 GET")
    eq(r.get("r3:missing"), None, "RESP3 GET missing (null)")
    eq(r.mget("r3:a", "r3:missing"), [b"v", None], "RESP3 MGET")
    eq(r.incr("r3:n"), 1, "RESP3 INCR")
    eq(r.incrbyfloat("r3:f", 2.5), 2.5, "RESP3 INCRBYFLOAT")
    eq(r.expire("r3:a", 100), True, "RESP3 EXPIRE")
    if not 99 <= r.ttl("r3:a") <= 100:
        raise AssertionError("RESP3 TTL")
    eq(r.exists("r3:a", "r3:n"), 2, "RESP3 EXISTS")
    raises(ResponseError, r.execute_command, "NOSUCHCOMMAND", match="unknown command")
    with r.pipeline(transaction=False) as pipe:
        pipe.set("r3:p", 1).incr("r3:p").get("r3:p")
        eq(pipe.execute(), [True, 2, b"2"], "RESP3 pipeline")
    with r.pipeline(transaction=True) as pipe:
        pipe.incr("r3:p").get("r3:p").mget("r3:p", "r3:missing")
        eq(pipe.execute(), [3, b"3", [b"3", None]], "RESP3 transaction")
    secs, _ = r.time()
    if abs(secs - time.time()) > 5:
        raise AssertionError("RESP3 TIME")
    eq(isinstance(r.info(), dict), True, "RESP3 INFO parses")


@check
def decode_responses_both_ways():
    raw = client(decode_responses=False)
    text = client(decode_responses=True)
    raw.set("d:utf8", "h\u00e9llo \u2713")
    eq(raw.get("d:utf8"), "h\u00e9llo \u2713".encode("utf-8"), "decode_responses=False gives bytes")
    eq(text.get("d:utf8"), "h\u00e9llo \u2713", "decode_responses=True gives str")
    eq(text.mget("d:utf8", "d:missing"), ["h\u00e9llo \u2713", None], "decoded MGET")
    eq(text.set("d:n", 5), True, "decoded SET")
    eq(text.incr("d:n"), 6, "decoded INCR stays an int")
    eq(text.type("d:n"), "string", "decoded TYPE")
    eq(text.echo("x"), "x", "decoded ECHO")
    eq(raw.echo("x"), b"x", "raw ECHO")
    eq(sorted(text.keys("d:*")), ["d:n", "d:utf8"], "decoded KEYS")
    eq(sorted(raw.keys("d:*")), [b"d:n", b"d:utf8"], "raw KEYS")
    for protocol in (2, 3):
        t = client(decode_responses=True, protocol=protocol)
        eq(t.get("d:utf8"), "h\u00e9llo \u2713", f"decoded GET over RESP{protocol}")
        eq(t.client_info().get("resp"), str(protocol), f"decoded CLIENT INFO over RESP{protocol}")
        with t.pipeline(transaction=True) as pipe:
            pipe.get("d:utf8").incr("d:n")
            results = pipe.execute()
        eq(results[0], "h\u00e9llo \u2713", f"decoded EXEC over RESP{protocol}")


# --- data types ----------------------------------------------------------------------------------


@check
def hashes_as_sessions():
    for protocol in (2, 3):
        r = client(decode_responses=True, protocol=protocol)
        key = f"h:session:{protocol}"
        eq(r.hset(key, mapping={"user": "ada", "visits": 1, "cart": "[]"}), 3, f"HSET mapping RESP{protocol}")
        eq(r.hincrby(key, "visits", 2), 3, f"HINCRBY RESP{protocol}")
        eq(r.hincrbyfloat(key, "score", 1.5), 1.5, f"HINCRBYFLOAT RESP{protocol}")
        eq(r.hgetall(key), {"user": "ada", "visits": "3", "cart": "[]", "score": "1.5"}, f"HGETALL RESP{protocol}")
        eq(r.hmget(key, "user", "nope"), ["ada", None], f"HMGET RESP{protocol}")
        eq(r.hexists(key, "cart"), True, f"HEXISTS RESP{protocol}")
        eq(r.hdel(key, "cart", "nope"), 1, f"HDEL RESP{protocol}")
        eq(sorted(r.hkeys(key)), ["score", "user", "visits"], f"HKEYS RESP{protocol}")
        eq(r.hlen(key), 3, f"HLEN RESP{protocol}")
        cursor, fields = r.hscan(key, 0, count=100)
        eq((cursor, fields["user"]), (0, "ada"), f"HSCAN RESP{protocol}")
        raises(ResponseError, r.lpush, key, "x", match="WRONGTYPE")


@check
def sets_and_tags():
    for protocol in (2, 3):
        r = client(decode_responses=True, protocol=protocol)
        a, b = f"s:a:{protocol}", f"s:b:{protocol}"
        eq(r.sadd(a, "x", "y", "z"), 3, f"SADD RESP{protocol}")
        eq(r.sadd(b, "y", "z", "w"), 3, f"SADD RESP{protocol}")
        eq(r.smembers(a), {"x", "y", "z"}, f"SMEMBERS RESP{protocol}")
        eq(r.sinter(a, b), {"y", "z"}, f"SINTER RESP{protocol}")
        eq(r.sunion(a, b), {"w", "x", "y", "z"}, f"SUNION RESP{protocol}")
        eq(r.sdiff(a, b), {"x"}, f"SDIFF RESP{protocol}")
        eq(r.sismember(a, "x"), True, f"SISMEMBER RESP{protocol}")
        eq(r.smismember(a, ["x", "w"]), [True, False], f"SMISMEMBER RESP{protocol}")
        eq(r.scard(a), 3, f"SCARD RESP{protocol}")
        popped = r.spop(a)
        eq(popped in {"x", "y", "z"} and not r.sismember(a, popped), True, f"SPOP RESP{protocol}")


@check
def sorted_sets_as_leaderboard_and_delay_queue():
    for protocol in (2, 3):
        r = client(decode_responses=True, protocol=protocol)
        key = f"z:board:{protocol}"
        eq(r.zadd(key, {"ada": 10, "bob": 7.5, "cy": 12}), 3, f"ZADD RESP{protocol}")
        eq(r.zincrby(key, 3, "bob"), 10.5, f"ZINCRBY RESP{protocol}")
        eq([tuple(p) for p in r.zrange(key, 0, -1, withscores=True)], [("ada", 10.0), ("bob", 10.5), ("cy", 12.0)], f"ZRANGE RESP{protocol}")
        eq(r.zrevrange(key, 0, 0), ["cy"], f"ZREVRANGE RESP{protocol}")
        eq(r.zrangebyscore(key, 10.2, "+inf"), ["bob", "cy"], f"ZRANGEBYSCORE RESP{protocol}")
        eq(r.zscore(key, "ada"), 10.0, f"ZSCORE RESP{protocol}")
        eq(r.zrank(key, "cy"), 2, f"ZRANK RESP{protocol}")
        # (redis-py shapes ZPOPMIN's reply differently in RESP2 and RESP3)
        eq("ada" in str(r.zpopmin(key)) and r.zscore(key, "ada") is None, True, f"ZPOPMIN RESP{protocol}")
        # A delay queue (arq, Sidekiq's scheduled set): take what is due, atomically.
        due = f"z:due:{protocol}"
        r.zadd(due, {"job1": 100, "job2": 200, "job3": 300})
        with r.pipeline(transaction=True) as pipe:
            pipe.zrangebyscore(due, "-inf", 250).zremrangebyscore(due, "-inf", 250)
            eq(pipe.execute(), [["job1", "job2"], 2], f"MULTI ZRANGEBYSCORE+ZREMRANGEBYSCORE RESP{protocol}")
        eq(r.zcard(due), 1, f"ZCARD RESP{protocol}")


@check
def lists_as_job_queue():
    for protocol in (2, 3):
        r = client(decode_responses=True, protocol=protocol)
        queue, processing = f"l:queue:{protocol}", f"l:processing:{protocol}"
        eq(r.lpush(queue, "j1", "j2", "j3"), 3, f"LPUSH RESP{protocol}")
        eq(r.lrange(queue, 0, -1), ["j3", "j2", "j1"], f"LRANGE RESP{protocol}")
        # RQ/Dramatiq's reliable fetch: move the oldest job to a processing list.
        eq(r.lmove(queue, processing, "RIGHT", "LEFT"), "j1", f"LMOVE RESP{protocol}")
        eq(r.rpoplpush(queue, processing), "j2", f"RPOPLPUSH RESP{protocol}")
        eq(r.lrem(processing, 1, "j1"), 1, f"LREM RESP{protocol}")
        eq(r.llen(processing), 1, f"LLEN RESP{protocol}")
        eq(r.rpush(queue, "a", "b", "c"), 4, f"RPUSH RESP{protocol}")
        eq(r.lpop(queue, 2), ["j3", "a"], f"LPOP count RESP{protocol}")
        eq(r.lpos(queue, "c"), 1, f"LPOS RESP{protocol}")
        eq(r.lmpop(2, "l:none", queue, direction="RIGHT", count=5), [queue, ["c", "b"]], f"LMPOP RESP{protocol}")
        eq(r.exists(queue), 0, f"empty list deleted RESP{protocol}")
        eq(r.rpop(queue), None, f"RPOP missing RESP{protocol}")


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    ARGS = parser.parse_args()
    print(f"redis-py {redis.__version__} against {ARGS.host}:{ARGS.port}")
    try:
        client().flushall()
    except Exception as e:
        print(f"cannot reach the server: {e!r}")
        print(f"redis-py: 0 passed, {len(CHECKS)} failed")
        return 2
    passed = failed = 0
    for fn in CHECKS:
        try:
            fn()
        except Exception:
            failed += 1
            print(f"FAIL {fn.__name__}")
            print("  " + traceback.format_exc().replace("\n", "\n  ").rstrip())
        else:
            passed += 1
            print(f"PASS {fn.__name__}")
    print(f"redis-py: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
