#!/usr/bin/env python3
"""Turns the raw files of one bench/run.sh run into a markdown report, an SVG chart and a JSON
summary. Standard library only.

usage: report.py RAW_DIR OUT_DIR

RAW_DIR holds what run.sh recorded:
  meta.txt                      key=value: machine, profile, versions
  rb/<target>/P<p>/rep<r>.csv   redis-benchmark --csv output (target: redis, redis-fsync, raftis)
  wrk/<put|get>/rep<r>.txt      wrk --latency output against etcd's HTTP/JSON gateway
  memory.txt                    key=value: RSS after loading the keys
  recovery.txt                  key=value: restarted follower catching up
  membership.txt                key=value: a node joining, the leader removed under writes
  failover.txt                  "<trial> <ms>" per line
  metrics_cost.txt              "<rep> <off|on> <SET/s> <scrapes>": SET P=1 without and with /metrics scraped
  pubsub/<target>/rep<r>.txt    pubsub_latency.py's line (publish-to-receive latency; redis, raftis)
  apps/<app>/<target>/rep<r>.txt  app_jobs.py's line (RQ and Celery jobs/s; redis, redis-fsync, raftis)
  watch/<window>.txt            INFO raft/errorstats before and after, node log events, load generator
                                errors around each raftis measurement (see watch.py)
  problems.txt                  free text, one problem a line
OUT_DIR receives report.md, chart.svg and summary.json; the report is also printed.
"""
import csv
import glob
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import watch  # noqa: E402  (bench/lib/watch.py)

RAW, OUT = sys.argv[1], sys.argv[2]
TARGETS = ["redis", "redis-fsync", "raftis"]
LABEL = {
    "redis": "redis (no persistence)",
    "redis-fsync": "redis (fsync always)",
    "raftis": "raftis (3 nodes)",
    "etcd": "etcd (3 nodes)",
}
TESTS = ["SET", "GET", "INCR", "MSET", "HSET", "HGET", "SADD", "ZADD", "ZRANGEBYSCORE",
         "LPUSH", "LRANGE", "RPOP", "PUBLISH", "EVALSHA", "PROXYSET", "PROXYGET"]
# Hash, set, sorted-set, list and pub/sub rows: against both redis-servers only (etcd has no
# equivalent), no targets.
NO_ETCD = {"HSET", "HGET", "SADD", "ZADD", "ZRANGEBYSCORE", "LPUSH", "LRANGE", "RPOP", "PUBLISH", "EVALSHA",
           "PROXYSET", "PROXYGET"}
ROW_NAME = {"MSET": "MSET (10 keys)", "PROXYSET": "SET via a follower", "PROXYGET": "GET via a follower"}
# Follower-proxy rows and the direct rows they are compared with.
PROXY_OF = {"PROXYSET": "SET", "PROXYGET": "GET"}
PIPES = [1, 16]
# raftis / redis(fsync always) throughput targets; every workload also has >= 5x etcd.
REDIS_TARGET = {("SET", 1): 0.5, ("GET", 1): 0.8, ("SET", 16): 0.3, ("GET", 16): 0.5}
ETCD_TARGET = 5.0
RSS_TARGET = 2.0
CATCHUP_TARGET_S = 10.0
FAILOVER_TARGET_MS = 1500.0


def read_kv(name):
    out = {}
    path = os.path.join(RAW, name)
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    k, v = k.strip(), v.strip()
                    if k == "note" and k in out:  # several notes are all kept
                        v = out[k] + "\n" + v
                    out[k] = v
    return out


def fnum(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


meta = read_kv("meta.txt")

# ---------------------------------------------------------------- redis-benchmark
samples = {}  # (target, test, P) -> list of (rps, p50, p99, max)
for target in TARGETS:
    for p in PIPES:
        # rep<r>-<TEST>.csv (one redis-benchmark per test), or rep<r>.csv (older runs: all tests in one)
        for path in sorted(glob.glob(os.path.join(RAW, "rb", target, "P%d" % p, "rep*.csv"))):
            # The file names the test (PROXYSET runs "SET ..." through a follower); older
            # all-in-one files: the row does.
            named = re.match(r"rep\d+-(.+)\.csv$", os.path.basename(path))
            with open(path) as f:
                for row in csv.DictReader(f):
                    test = named.group(1) if named else row["test"].split(" ")[0]  # "MSET (10 keys)" -> MSET
                    samples.setdefault((target, test, p), []).append(
                        (float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"]),
                         fnum(row.get("max_latency_ms")))
                    )
windows = watch.load_all(RAW)  # name -> summary of one watched window (watch.py)


def was_run(test):
    """A row of a test this run measured: always the string tests; the others only when a run of them
    left a file or a window (a raw directory from before they were added has none: no empty rows)."""
    if test not in NO_ETCD:
        return True
    return (any(k[1] == test for k in samples)
            or any(w["phase"] == "throughput" and w["test"] == test for w in windows.values())
            or bool(glob.glob(os.path.join(RAW, "rb", "*", "P*", "rep*-%s.*" % test))))


TESTS = [t for t in TESTS if was_run(t)]


def med(values):
    return statistics.median(values) if values else None


def median_of(key):
    s = samples.get(key)
    if not s:
        return None
    return {
        "rps": med([x[0] for x in s]),
        "p50": med([x[1] for x in s]),
        "p99": med([x[2] for x in s]),
        "runs": len(s),
        "rps_all": [x[0] for x in s],
        "max_all": [x[3] for x in s],
        "max": max([x[3] for x in s if x[3] is not None], default=None),
    }


# ---------------------------------------------------------------- wrk (etcd)
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(path):
    text = open(path).read()
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, text, re.M)
        if m:
            r[key] = float(m.group(1)) * UNIT_MS[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    r["non2xx"] = int(m.group(1)) if m else 0
    return r


etcd = {}
for op in ("put", "get"):
    runs = [parse_wrk(p) for p in sorted(glob.glob(os.path.join(RAW, "wrk", op, "rep*.txt")))]
    runs = [r for r in runs if "rps" in r]
    if runs:
        etcd[op] = {
            "rps": med([r["rps"] for r in runs]),
            "p50": med([r["p50"] for r in runs if "p50" in r]),
            "p99": med([r["p99"] for r in runs if "p99" in r]),
            "runs": len(runs),
            "rps_all": [r["rps"] for r in runs],
            "non2xx": sum(r["non2xx"] for r in runs),
        }

# ---------------------------------------------------------------- formatting


def f_rps(x):
    return "—" if x is None else "{:,.0f}".format(x)


def f_ms(x):
    if x is None:
        return "—"
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


def cell(d):
    if not d:
        return "—"
    return "%s (%s / %s)" % (f_rps(d["rps"]), f_ms(d["p50"]), f_ms(d["p99"]))


verdicts = []  # (target description, measured, goal, PASS/MISS/N/A)


def verdict(ok):
    return "PASS" if ok else "MISS"


def ratio_cell(num, den, goal, what):
    if num is None or den is None or den == 0:
        if goal is not None:
            verdicts.append((what, "not measured", "≥ %g×" % goal, "MISS"))
        return "—"
    r = num / den
    shown = "%.3g×" % r  # 3 significant digits: 0.297× is not shown as a passing 0.30×
    if goal is None:
        return shown
    v = verdict(r >= goal)
    verdicts.append((what, shown, "≥ %g×" % goal, v))
    return "%s %s (≥ %g×)" % (shown, v, goal)


lines = []
add = lines.append
add("# raftis benchmark — %s profile" % meta.get("profile", "?"))
add("")
add("| | |")
add("|---|---|")
for key, label in (
    ("date", "date (UTC)"),
    ("host", "host"),
    ("cpu", "CPU"),
    ("nproc", "nproc"),
    ("mem_total", "memory"),
    ("kernel", "kernel"),
    ("commit", "git commit"),
    ("load_start", "load average at start"),
    ("load_end", "load average at end"),
    ("redis_version", "redis-server"),
    ("etcd_version", "etcd"),
    ("wrk_version", "wrk"),
    ("raftis_binary", "raftis binary"),
    ("workload", "workload"),
):
    if key in meta:
        add("| %s | %s |" % (label, meta[key]))
add("")
for note in meta.get("note", "").split("\n"):
    if note:
        add("> " + note)
        add("")



def and_join(items):
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def no_etcd_prose():
    """What the rows without an etcd peer are and what each reads (only those this run has)."""
    present = [t for t in TESTS if t in NO_ETCD]
    if not present:
        return ""
    kinds = [k for k, ts in (("hash", ("HSET", "HGET")), ("set", ("SADD",)),
                             ("sorted-set", ("ZADD", "ZRANGEBYSCORE")), ("list", ("LPUSH", "LRANGE", "RPOP")),
                             ("pub/sub", ("PUBLISH",)), ("scripting", ("EVALSHA",)),
                             ("follower-proxy", ("PROXYSET", "PROXYGET"))) if any(t in present for t in ts)]
    text = (" The %s rows (%s) are measured against both redis-servers only: etcd has no equivalent (n/a), "
            "and they have no target." % (and_join(kinds), ", ".join(present)))
    keys = [k for k, t in (("myhash", "HSET"), ("myset", "SADD"), ("myzset", "ZADD"), ("mylist", "LPUSH"))
            if t in present]
    reads = [(r, w) for r, w in (("HGET", "HSET"), ("ZRANGEBYSCORE (`0 <random> LIMIT 0 10`)", "ZADD"),
                                 ("LRANGE (`0 9`)", "LPUSH")) if w in present]
    if keys:
        text += " Each data-structure row works on one key (%s)" % ", ".join(keys)
        if len(reads) == 1:
            text += "; %s reads what the %s test before it wrote" % reads[0]
        elif reads:
            text += "; %s read what the %s tests before them wrote" % (
                and_join([r for r, _ in reads]), and_join([w for _, w in reads]))
        if "RPOP" in present:
            text += ", and RPOP pops what LPUSH pushed"
        text += "."
    if "PUBLISH" in present:
        text += (" PUBLISH (`PUBLISH bench:ch <random>`) runs with one subscriber to `bench:ch` connected "
                 "(`redis-cli SUBSCRIBE`): on the same redis-server; on a raftis follower, since a message goes "
                 "through the Raft log and every node delivers it to its own subscribers when it applies it.")
    if "EVALSHA" in present:
        text += (" EVALSHA runs a small read-modify-write script (`GET` a random `counter:<n>`, `SET` it plus one) "
                 "loaded with SCRIPT LOAD first; on raftis each call is one log entry run on every replica.")
    return text


add("## Throughput and latency")
add("")
add("Each cell: operations/s (p50 / p99 latency in ms), the median of %s runs. 50 clients; "
    "P = redis-benchmark pipeline depth. etcd: wrk over its HTTP/JSON gateway, 50 connections, no "
    "pipelining (the same etcd figures serve as the peer for P=1 and P=16); writes (SET, INCR, MSET) "
    "are compared with etcd puts, GET with etcd linearizable gets. One MSET (10 keys) counts as one "
    "operation.%s" % (meta.get("reps", "3"), no_etcd_prose()))
add("")
add("| workload | P | %s | %s | %s | %s | raftis ÷ redis (fsync always) | raftis ÷ etcd |"
    % (LABEL["redis"], LABEL["redis-fsync"], LABEL["raftis"], LABEL["etcd"]))
add("|---|---|---|---|---|---|---|---|")
rows = {}
for p in PIPES:
    for test in TESTS:
        d = {t: median_of((t, test, p)) for t in TARGETS}
        e = None if test in NO_ETCD else etcd.get("get" if test == "GET" else "put")
        rows[(test, p)] = dict(d, etcd=e)
        raft = d["raftis"]["rps"] if d["raftis"] else None
        fs = d["redis-fsync"]["rps"] if d["redis-fsync"] else None
        goal = REDIS_TARGET.get((test, p))
        rr = ratio_cell(raft, fs, goal, "%s P=%d ÷ redis (fsync always)" % (test, p))
        if test in NO_ETCD:
            ecell = re_ = "n/a"
        else:
            re_ = ratio_cell(raft, e["rps"] if e else None, ETCD_TARGET, "%s P=%d ÷ etcd" % (test, p))
            ecell = cell(e) + (" put" if test != "GET" else " get") if e else "—"
        add("| %s | %d | %s | %s | %s | %s | %s | %s |"
            % (ROW_NAME.get(test, test), p, cell(d["redis"]), cell(d["redis-fsync"]),
               cell(d["raftis"]), ecell, rr, re_))
proxied = [(t, p) for p in PIPES for t in PROXY_OF if rows.get((t, p), {}).get("raftis")
           and rows.get((PROXY_OF[t], p), {}).get("raftis")]
if proxied:
    add("")
    add("Follower proxy: SET and GET sent to a raftis follower, which relays each redis-benchmark "
        "connection to the leader (one more hop per round trip), against the same commands sent to the "
        "leader in this run: " + "; ".join(
            "%s P=%d %.2f× direct (p50 %s ms vs %s ms)" % (
                PROXY_OF[t], p, rows[(t, p)]["raftis"]["rps"] / rows[(PROXY_OF[t], p)]["raftis"]["rps"],
                f_ms(rows[(t, p)]["raftis"]["p50"]), f_ms(rows[(PROXY_OF[t], p)]["raftis"]["p50"]))
            for t, p in proxied) + ".")
add("")
add("![throughput and p99 latency](chart.svg)")
add("")

# ---------------------------------------------------------------- raftis rows: max latency, terms, errors
add("### raftis rows: max latency, elections, error replies")
add("")
add("Per row, over its %s runs (each redis-benchmark run of one test is one window): the max latency "
    "redis-benchmark measured in each run (goal: under %.0f ms); the term changes, from `INFO raft` of "
    "every node before and after each run (`+2 (leader 1→3)`: the term rose by 2 and node 3 leads "
    "afterwards); the error replies the three nodes sent meanwhile (difference of `INFO errorstats`; "
    "redis-benchmark itself stops at the first error reply, and that run then has no figures); and the "
    "node log lines about elections, quorum, warnings or panics written during the run. A term change, an "
    "error reply, an election, lost quorum, ERROR or panic in a node log, and a max latency of %.0f ms or "
    "more are listed under Problems seen."
    % (meta.get("reps", "3"), watch.MAX_LATENCY_MS, watch.MAX_LATENCY_MS))
add("")
add("| workload | P | max latency, ms: worst (each run) | term changes | error replies | node log events |")
add("|---|---|---|---|---|---|")
raftis_rows = {}
for p in PIPES:
    for test in TESTS:
        ws = sorted((w for w in windows.values() if w["phase"] == "throughput" and w["test"] == test
                     and w["p"] == str(p)), key=lambda w: int(w["rep"] or 0))
        d = rows[(test, p)]["raftis"]
        if ws:
            per_run = [w["max_latency_ms"] for w in ws]
            reps = [w["rep"] for w in ws]
        else:  # a raw directory from before the watch: the CSVs' max latencies only
            per_run = d["max_all"] if d else []
            reps = [str(i + 1) for i in range(len(per_run))]
        known = [x for x in per_run if x is not None]
        worst = max(known) if known else None
        if per_run:
            lat = "%s (%s)" % (f_ms(worst) if worst is not None else "—",
                               " / ".join(f_ms(x) if x is not None else "no result" for x in per_run))
            if worst is not None and worst >= watch.MAX_LATENCY_MS:
                lat = "**%s**" % lat
        else:
            lat = "—"
        if ws:
            changed = ["run %s: %s" % (w["rep"], watch.fmt_terms(w)) for w in ws if watch.fmt_terms(w) != "0"]
            terms = "; ".join(changed) if changed else "0"
            errs = {}
            for w in ws:
                for k, v in w["server_errors"].items():
                    errs[k] = errs.get(k, 0) + v
            cerrs = {}
            for w in ws:
                for k, v in w["client_errors"].items():
                    cerrs[k] = cerrs.get(k, 0) + v
            ecell = watch.fmt_counts(errs)
            if cerrs:
                ecell += "; redis-benchmark stopped by: " + watch.fmt_counts(cerrs)
            nev = sum(w["events_total"] for w in ws)
            kinds = {}
            for w in ws:
                for _, t in w["events"]:
                    k = ("panic" if "panicked" in t else "no quorum" if "no quorum" in t else
                         "election" if "election: " in t else "new leader" if "now the leader" in t else
                         "ERROR" if re.search(r"\sERROR\s", t) else "WARN" if re.search(r"\sWARN\s", t) else
                         "follower state")
                    kinds[k] = kinds.get(k, 0) + 1
            ev = "0" if not nev else "%d (%s)" % (nev, ", ".join("%s ×%d" % kv for kv in sorted(kinds.items())))
        else:
            terms = ecell = ev = "not recorded"
            errs, cerrs, nev, changed = {}, {}, None, []
        raftis_rows["%s P=%d" % (test, p)] = {
            "max_latency_ms": worst, "max_latency_ms_runs": dict(zip(reps, per_run)),
            "term_changes": sum(w["term_changes"] or 0 for w in ws) if ws else None,
            "leader_changes": sum(w["leader_changes"] for w in ws) if ws else None,
            "terms": terms, "server_errors": errs, "client_errors": cerrs, "node_log_events": nev,
            "unanswered_info": sorted({n for w in ws for n in w["unanswered"]}),
        }
        add("| %s | %d | %s | %s | %s | %s |" % (ROW_NAME.get(test, test), p, lat, terms, ecell, ev))
add("")

# ---------------------------------------------------------------- pub/sub latency
LAT_TARGETS = [("redis", "redis (no persistence)", "same server"),
               ("raftis", "raftis (3 nodes)", "leader → follower")]


def read_lat(target):
    """pubsub_latency.py's lines of a target, one dict per run (numbers as floats, '-' as None)."""
    runs = []
    for path in sorted(glob.glob(os.path.join(RAW, "pubsub", target, "rep*.txt"))):
        for line in open(path):
            if line.startswith("pubsub_latency "):
                runs.append({k: fnum(v) for k, _, v in (kv.partition("=") for kv in line.split()[1:])})
    return runs


pubsub_latency = {}
for target, _, _ in LAT_TARGETS:
    runs = read_lat(target)
    if runs:
        pubsub_latency[target] = {
            "runs": len(runs),
            "p50": med([r["p50_ms"] for r in runs if r.get("p50_ms") is not None]),
            "p99": med([r["p99_ms"] for r in runs if r.get("p99_ms") is not None]),
            "max": max([r["max_ms"] for r in runs if r.get("max_ms") is not None], default=None),
            "p50_all": [r.get("p50_ms") for r in runs], "p99_all": [r.get("p99_ms") for r in runs],
            "messages": int(sum(r.get("messages") or 0 for r in runs)),
            "received": int(sum(r.get("received") or 0 for r in runs)),
            "lost": int(sum(r.get("lost") or 0 for r in runs)),
            "rate": runs[0].get("rate"),
        }
if pubsub_latency or glob.glob(os.path.join(RAW, "pubsub", "*")):
    add("## Pub/sub latency")
    add("")
    any_run = next(iter(pubsub_latency.values()), {})
    add("Publish-to-receive latency (`bench/lib/pubsub_latency.py`): one subscriber to `bench:lat` and one "
        "publisher, both in one Python process (send and receive times from the same `perf_counter_ns`), "
        "%s messages a run published at a fixed rate of %s/s (open loop, a sequence number and the send time "
        "in each payload); the median over the runs of each run's p50 and p99, the worst max. redis-server: "
        "publisher and subscriber on the same server (no persistence); raftis: publisher on the leader, "
        "subscriber on a follower, so a message is committed through the log and delivered when the follower "
        "applies it."
        % ("{:,.0f}".format(any_run["messages"] / any_run["runs"]) if any_run else "?",
           "{:,.0f}".format(any_run["rate"]) if any_run.get("rate") else "?"))
    add("")
    shown = [(t, label, how) for t, label, how in LAT_TARGETS]
    add("| | %s | raftis ÷ redis |" % " | ".join("%s, %s" % (label, how) for _, label, how in shown))
    add("|---|%s---|" % ("---|" * len(shown)))
    for key, what in (("p50", "p50 latency, ms"), ("p99", "p99 latency, ms"), ("max", "max latency, ms")):
        vals = [pubsub_latency.get(t, {}).get(key) for t, _, _ in shown]
        r, d = pubsub_latency.get("raftis", {}).get(key), pubsub_latency.get("redis", {}).get(key)
        add("| %s | %s | %s |" % (what, " | ".join(f_ms(v) for v in vals),
                                  "%.3g×" % (r / d) if r is not None and d else "—"))
    add("| received / published (runs) | %s | |" % " | ".join(
        ("%s / %s (%d)" % ("{:,.0f}".format(pubsub_latency[t]["received"]),
                           "{:,.0f}".format(pubsub_latency[t]["messages"]), pubsub_latency[t]["runs"])
         + (" — **%s lost**" % "{:,.0f}".format(pubsub_latency[t]["lost"]) if pubsub_latency[t]["lost"] else ""))
        if t in pubsub_latency else "not measured" for t, _, _ in shown))
    add("")

# ---------------------------------------------------------------- job queues
APP_TARGETS = [("redis", "redis (no persistence)"), ("redis-fsync", "redis (appendfsync always)"),
               ("raftis", "raftis (3 nodes, leader)")]
APPS = [("rq", "RQ (enqueue, then a SimpleWorker)"), ("celery", "Celery (thread-pool worker, Redis backend)")]


def read_app(app, target):
    """app_jobs.py's lines of one app against one target, one dict per run."""
    runs = []
    for path in sorted(glob.glob(os.path.join(RAW, "apps", app, target, "rep*.txt"))):
        for line in open(path):
            if line.startswith("app_jobs "):
                runs.append({k: v for k, _, v in (kv.partition("=") for kv in line.split()[1:])})
    return runs


app_jobs = {}
for app, _ in APPS:
    for target, _ in APP_TARGETS:
        runs = read_app(app, target)
        if runs:
            app_jobs.setdefault(app, {})[target] = {
                "runs": len(runs), "jobs": int(fnum(runs[0]["jobs"])),
                "jobs_per_s": med([fnum(r["jobs_per_s"]) for r in runs]),
                "jobs_per_s_all": [fnum(r["jobs_per_s"]) for r in runs],
            }
if app_jobs or glob.glob(os.path.join(RAW, "apps", "*")):
    add("## Job queues (RQ, Celery)")
    add("")
    add("Jobs/s of two unchanged Redis-backed job queues (`bench/lib/app_jobs.py`), the median of the runs. RQ: "
        "the jobs enqueued one at a time, then one SimpleWorker (no fork) runs them; jobs/s over both. Celery: "
        "kombu's Redis transport and the Redis result backend, a warmed-up worker with 4 threads; the tasks sent "
        "one at a time, jobs/s from the first send to the last result. Each job's result is checked. raftis: "
        "the clients connect to the leader (as Sentinel discovery leads them).")
    add("")
    add("| app | jobs a run | %s | raftis ÷ redis fsync | raftis ÷ redis |" % " | ".join(l for _, l in APP_TARGETS))
    add("|---|---|%s---|---|" % ("---|" * len(APP_TARGETS)))
    for app, label in APPS:
        got = app_jobs.get(app, {})
        vals = [got.get(t, {}).get("jobs_per_s") for t, _ in APP_TARGETS]
        r, f, d = (got.get(t, {}).get("jobs_per_s") for t in ("raftis", "redis-fsync", "redis"))
        jobs = next((v["jobs"] for v in got.values()), None)
        add("| %s | %s | %s | %s | %s |" % (
            label, jobs if jobs is not None else "—",
            " | ".join("%.1f" % v if v is not None else "not measured" for v in vals),
            "%.2f×" % (r / f) if r and f else "—", "%.2f×" % (r / d) if r and d else "—"))
    add("")

# ---------------------------------------------------------------- cost of metrics
METRICS_TARGET = 0.97
add("## Cost of metrics")
add("")
cost = {"off": [], "on": []}
path = os.path.join(RAW, "metrics_cost.txt")
if os.path.exists(path):
    for line in open(path):
        parts = line.split()
        if len(parts) >= 3 and parts[1] in cost and fnum(parts[2]) is not None:
            cost[parts[1]].append(fnum(parts[2]))
metrics_cost = None
if cost["off"] and cost["on"]:
    off, on = statistics.median(cost["off"]), statistics.median(cost["on"])
    r = on / off
    metrics_cost = {"off_rps": off, "on_rps": on, "ratio": r}
    add("raftis SET P=1 on the leader (redis-benchmark -c %d, %d runs each, alternated), with nobody "
        "reading `/metrics` and with every node's `/metrics` scraped once a second: median %s vs %s SET/s, "
        "**%.3f× %s** (≥ %.2f×, i.e. metrics cost under 3%%). Runs: off %s; on %s."
        % (50, len(cost["on"]), f_rps(off), f_rps(on), r, verdict(r >= METRICS_TARGET), METRICS_TARGET,
           ", ".join(f_rps(x) for x in cost["off"]), ", ".join(f_rps(x) for x in cost["on"])))
    verdicts.append(("SET P=1 while /metrics is scraped each second ÷ without", "%.3f×" % r,
                     "≥ %.2f×" % METRICS_TARGET, verdict(r >= METRICS_TARGET)))
else:
    add("Not measured.")
add("")

# ---------------------------------------------------------------- memory
mem = read_kv("memory.txt")
add("## Memory")
add("")
if mem:
    redis_rss = fnum(mem.get("redis_rss_kb"))
    add("After loading %s keys with %s-byte values (`redis-cli --pipe`), RSS from /proc/PID/status:"
        % ("{:,}".format(int(mem.get("keys", "0"))), mem.get("value_bytes", "?")))
    add("")
    add("| process | RSS | DBSIZE | data dir |")
    add("|---|---|---|---|")
    add("| redis-server (no persistence) | %.1f MiB | %s | — |"
        % ((redis_rss or 0) / 1024, mem.get("redis_dbsize", "?")))
    node_rss = []
    for k in sorted(mem):
        m = re.match(r"raftis_rss_kb_(\d+)$", k)
        if m:
            i = m.group(1)
            rss = fnum(mem[k])
            node_rss.append(rss)
            add("| raftis node %s (%s) | %.1f MiB | %s | %.1f MiB |"
                % (i, mem.get("raftis_role_%s" % i, "?"), (rss or 0) / 1024, mem.get("raftis_dbsize_%s" % i, "?"),
                   (fnum(mem.get("raftis_dir_kb_%s" % i)) or 0) / 1024))
    add("")
    if redis_rss and node_rss:
        worst = max(node_rss)
        r = worst / redis_rss
        v = verdict(r <= RSS_TARGET)
        verdicts.append(("largest raftis node RSS ÷ redis-server RSS", "%.3g×" % r, "≤ %g×" % RSS_TARGET, v))
        add("Largest raftis node RSS ÷ redis-server RSS: **%.3g× %s** (≤ %g×)." % (r, v, RSS_TARGET))
    else:
        verdicts.append(("largest raftis node RSS ÷ redis-server RSS", "not measured", "≤ 2×", "MISS"))
else:
    add("Not measured.")
    verdicts.append(("largest raftis node RSS ÷ redis-server RSS", "not measured", "≤ 2×", "MISS"))
add("")

# ---------------------------------------------------------------- recovery
rec = read_kv("recovery.txt")
add("## Recovery")
add("")
if rec:
    writes = "{:,}".format(int(rec.get("writes", "0")))
    cs = fnum(rec.get("catchup_s"))
    timed_out = rec.get("timed_out") == "1"
    if timed_out:
        reached = ("had **not** reached the leader's raft_applied_index (%s) after %s s: it was at %s (timed out)"
                   % (rec.get("leader_applied", "?"), rec.get("catchup_s", "?"), rec.get("follower_applied_at_end", "?")))
    else:
        reached = ("reached the leader's raft_applied_index (%s) after **%s s**"
                   % (rec.get("leader_applied", "?"), rec.get("catchup_s", "?")))
    add("Follower %s stopped (SIGTERM), %s writes (`redis-cli --pipe`, %s-byte values) through the leader "
        "in %s s, follower restarted: it answered INFO after %s s and %s. DEBUG DIGEST on the three nodes "
        "afterwards: %s."
        % (rec.get("stopped_node", "?"), writes, rec.get("value_bytes", "?"), rec.get("load_s", "?"),
           rec.get("ping_s", "?"), reached, rec.get("digests", "?")))
    add("")
    ok = cs is not None and rec.get("timed_out") != "1" and cs <= CATCHUP_TARGET_S
    verdicts.append(("restarted follower catch-up after %s writes" % writes,
                     ("not within %s s" if timed_out else "%s s") % rec.get("catchup_s", "?"),
                     "≤ %g s" % CATCHUP_TARGET_S, verdict(ok)))
else:
    add("Not measured.")
    verdicts.append(("restarted follower catch-up", "not measured", "≤ 10 s", "MISS"))
add("")

# ---------------------------------------------------------------- membership
member = read_kv("membership.txt")
add("## Membership changes")
add("")
if member:
    keys = "{:,}".format(int(member.get("keys", "0") or 0))
    add("A fourth node started with an empty directory and `--join` while the cluster held %s keys: it was a "
        "voter (learner, snapshot and log, promoted by itself) after **%s s**, with DBSIZE %s. Then the leader "
        "(node %s) was removed with `RAFT.NODE REMOVE` (reply `%s`) while one client wrote without pause: the "
        "longest time without an acknowledged write was **%s ms** (openraft 0.9 has no leadership transfer: the "
        "leader steps down once its removal commits and the others elect a new one)."
        % (keys, member.get("join_s", "?"), member.get("joined_dbsize", "?"), member.get("removed_leader", "?"),
           member.get("remove_reply", "?"), member.get("remove_gap_ms", "?")))
    add("")
    gap = fnum(member.get("remove_gap_ms"))
    verdicts.append(("writes unavailable while the leader is removed", "%s ms" % member.get("remove_gap_ms", "?"),
                     "≤ %.0f ms" % FAILOVER_TARGET_MS, verdict(gap is not None and gap <= FAILOVER_TARGET_MS)))
else:
    add("Not measured.")
add("")

# ---------------------------------------------------------------- failover
fo, fo_failed, fo_tags = [], [], set()
path = os.path.join(RAW, "failover.txt")
if os.path.exists(path):
    for line in open(path):
        parts = line.split()
        if len(parts) < 2:
            continue
        if len(parts) > 2:
            fo_tags.add(parts[2])
        if parts[1] == "FAIL":
            fo_failed.append("%s (%s cluster)" % (parts[0], parts[2] if len(parts) > 2 else "?"))
        elif fnum(parts[1]) is not None:
            fo.append(fnum(parts[1]))
add("## Failover")
add("")
failover = None
planned = meta.get("failovers")
if fo or fo_failed:
    n = len(fo) + len(fo_failed)
    failover = {"trials": n, "failed_trials": fo_failed, "all_ms": fo}
    text = ("`kill -9` of the leader → first successful SET through any surviving node (following MOVED), "
            "%d trials%s" % (n, " of %s planned" % planned if planned and int(planned) != n else ""))
    if fo:
        failover.update(median_ms=statistics.median(fo), worst_ms=max(fo))
        text += (": median **%.0f ms**, worst **%.0f ms**, best %.0f ms over the %d that succeeded. "
                 "All: %s ms." % (failover["median_ms"], failover["worst_ms"], min(fo), len(fo),
                                  ", ".join("%.0f" % x for x in fo)))
    else:
        text += "."
    if fo_failed:
        text += (" **No write succeeded within 30 s** in trial(s) %s; a stuck cluster is replaced once by a "
                 "fresh, empty one for the remaining trials, whose times are therefore a best case (see Problems seen)." % ", ".join(fo_failed))
    text += (" The first trials run on the cluster that has just served the throughput benchmarks; the killed "
             "node is restarted from its directory before the next trial.")
    fws = sorted((w for w in windows.values() if w["phase"] == "failover"),
                 key=lambda w: int(re.sub(r"\D", "", w["label"].split("(")[0]) or 0))
    if fws:
        replies = {}
        for w in fws:
            for k, v in w["replies"].items():
                replies[k] = replies.get(k, 0) + v
        text += (" Term changes per trial (`INFO raft` before the kill and after the first successful write): %s. "
                 "Replies the writer got while waiting, all trials: %s."
                 % (", ".join(watch.fmt_terms(w) for w in fws),
                    ", ".join("%s %d" % kv for kv in sorted(replies.items(), key=lambda kv: -kv[1])) or "none"))
        failover["trials_watch"] = [{"label": w["label"], "terms": watch.fmt_terms(w), "term_changes": w["term_changes"],
                                     "replies": w["replies"], "server_errors": w["server_errors"]} for w in fws]
    add(text)
    if fo_failed:
        worst = "no write within 30 s"
        v = "MISS"
    else:
        worst = "%.0f ms" % failover["worst_ms"]
        v = verdict(failover["worst_ms"] <= FAILOVER_TARGET_MS)
    verdicts.append(("failover, worst of %d" % n, worst, "≤ %.0f ms" % FAILOVER_TARGET_MS, v))
else:
    add("Not measured.")
    verdicts.append(("failover, worst", "not measured", "≤ 1500 ms", "MISS"))
add("")

# ---------------------------------------------------------------- phases
PHASES = [
    ("throughput", "throughput (raftis rows, every run)"),
    ("pubsub-latency", "pub/sub latency (publisher on the leader, subscriber on a follower)"),
    ("apps", "job queues (RQ and Celery jobs on the leader)"),
    ("metrics", "cost of metrics (SET P=1, /metrics scraped or not)"),
    ("failover", "failover (leader killed on purpose: elections and errors expected)"),
    ("memory-load", "memory: loading the keys"),
    ("recovery-writes", "recovery: writes with a follower stopped"),
    ("recovery-catchup", "recovery: the restarted follower catching up"),
    ("membership-join", "membership: a node joins and becomes a voter"),
    ("membership-remove", "membership: the leader removed (an election expected)"),
]
add("## Elections and error replies by phase")
add("")
phases = {}
if windows:
    add("From `INFO raft` and `INFO errorstats` of every node before and after each measured window, the load "
        "generator's error output (redis-benchmark, `redis-cli --pipe`) and the node logs. Outside the failover "
        "trials, every non-zero figure is also listed under Problems seen.")
    add("")
    add("| phase | windows | term changes | leader changes | error replies sent by the nodes | load generator errors | node log events |")
    add("|---|---|---|---|---|---|---|")
    for ph, label in PHASES:
        ws = [w for w in windows.values() if w["phase"] == ph]
        if not ws:
            continue
        tc = [w["term_changes"] for w in ws]
        errs, cerrs = {}, {}
        for w in ws:
            for k, v in w["server_errors"].items():
                errs[k] = errs.get(k, 0) + v
            for k, v in w["client_errors"].items():
                cerrs[k] = cerrs.get(k, 0) + v
        nev = sum(w["events_total"] for w in ws)
        unanswered = sum(1 for w in ws if w["unanswered"])
        phases[ph] = {"windows": len(ws), "term_changes": sum(x or 0 for x in tc),
                      "term_unknown_windows": sum(1 for x in tc if x is None),
                      "leader_changes": sum(w["leader_changes"] for w in ws), "server_errors": errs,
                      "client_errors": cerrs, "node_log_events": nev, "windows_with_unanswered_info": unanswered}
        add("| %s | %d | %s%s | %d | %s | %s | %d |"
            % (label, len(ws), ("+%d" % phases[ph]["term_changes"]) if phases[ph]["term_changes"] else "0",
               " (%d window(s) without an INFO answer)" % unanswered if unanswered else "",
               phases[ph]["leader_changes"], watch.fmt_counts(errs), watch.fmt_counts(cerrs), nev))
    add("")
    shown = [(w, n, t) for w in sorted(windows.values(), key=lambda w: w["start"] or "")
             if w["phase"] != "failover" for n, t in sorted(w["events"], key=lambda e: e[1])]
    if shown:
        add("Node log lines about elections, quorum, warnings and panics outside the failover trials "
            "(UTC; all of them in `raw/watch/`):")
        add("")
        for w, n, t in shown[:40]:
            add("- %s: %s" % (w["label"], watch.short_event(n, t)))
        if len(shown) > 40:
            add("- … and %d more" % (len(shown) - 40))
        add("")
    else:
        add("No node logged an election, a lost quorum, a warning or a panic outside the failover trials.")
        add("")
else:
    add("Not recorded (this raw directory predates `raw/watch/`).")
    add("")

# ---------------------------------------------------------------- targets
add("## Targets")
add("")
add("| target | measured | goal | |")
add("|---|---|---|---|")
for what, got, goal, v in verdicts:
    add("| %s | %s | %s | %s |" % (what, got, goal, v))
npass = sum(1 for v in verdicts if v[3] == "PASS")
add("")
add("**%d of %d targets met.** A missed target is reported, not an error." % (npass, len(verdicts)))
add("")

problems = []
path = os.path.join(RAW, "problems.txt")
if os.path.exists(path):
    problems = [l.rstrip() for l in open(path) if l.strip()]
for w in sorted(windows.values(), key=lambda w: w["start"] or ""):
    # run.sh recorded these as it went; a report regenerated from raw/ derives them again
    line = watch.problem_line(w)
    if line and line not in problems:
        problems.append(line)
if not any(w["phase"] == "throughput" for w in windows.values()):
    # a raw directory from before the watch (run.sh now records these itself): the CSVs' max latencies
    for (target, test, p), smp in sorted(samples.items()):
        if target == "raftis":
            for i, x in enumerate(smp):
                if x[3] is not None and x[3] >= watch.MAX_LATENCY_MS:
                    problems.append("raftis %s P=%d (result %d of %d): max latency %.0f ms ≥ %.0f ms"
                                    % (test, p, i + 1, len(smp), x[3], watch.MAX_LATENCY_MS))
add("## Problems seen")
add("")
if problems:
    for p in problems:
        add("- " + p)
else:
    add("None: every benchmark ran without error replies, no term changed outside the failover trials, "
        "every raftis max latency stayed under %.0f ms, no node crashed or logged a panic or an election."
        % watch.MAX_LATENCY_MS)
add("")
add("Raw data (redis-benchmark CSVs, wrk outputs, pub/sub latency lines, memory/recovery/failover records, INFO and log events "
    "around each raftis measurement in `raw/watch/`): `raw/`; raftis node logs: `raw/logs/`.")
add("")

report = "\n".join(lines)
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "report.md"), "w") as f:
    f.write(report)
print(report)

# ---------------------------------------------------------------- summary.json
summary = {
    "meta": meta,
    "throughput": {
        "%s P=%d" % k: {t: (v[t] and {x: v[t][x] for x in ("rps", "p50", "p99", "rps_all", "max", "max_all")
                                      if x in v[t]}) for t in v}
        for k, v in rows.items()
    },
    "raftis_rows": raftis_rows,
    "phases": phases,
    "windows": {k: {x: v[x] for x in ("label", "phase", "start", "end", "term_before", "term_after", "term_changes",
                                      "leader_before", "leader_after", "leader_changes", "server_errors",
                                      "client_errors", "replies", "events_total", "unanswered", "max_latency_ms")}
                for k, v in windows.items()},
    "memory": mem,
    "metrics_cost": metrics_cost,
    "recovery": rec,
    "membership": member,
    "failover": failover,
    "pubsub_latency": pubsub_latency,
    "app_jobs": app_jobs,
    "targets": [{"target": a, "measured": b, "goal": c, "verdict": d} for a, b, c, d in verdicts],
    "problems": problems,
}
with open(os.path.join(OUT, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1, ensure_ascii=False)

# ---------------------------------------------------------------- chart.svg
import math

COLORS = {"redis": "#d62728", "redis-fsync": "#ff7f0e", "raftis": "#1f77b4", "etcd": "#2ca02c"}
SERIES = ["redis", "redis-fsync", "raftis", "etcd"]
groups = [(t, p) for p in PIPES for t in TESTS]


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def panel(x0, y0, w, h, title, metric, unit, lo_exp, hi_exp):
    out = []
    out.append('<text x="%d" y="%d" font-size="15" font-weight="bold">%s</text>' % (x0, y0 - 12, esc(title)))
    ly = lambda v: y0 + h - (math.log10(max(v, 10 ** lo_exp)) - lo_exp) / (hi_exp - lo_exp) * h
    for e in range(lo_exp, hi_exp + 1):
        y = ly(10 ** e)
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (x0, y, x0 + w, y))
        lab = ("%g" % (10 ** e)) if e < 4 else ("%gk" % (10 ** (e - 3)) if e < 6 else "%gM" % (10 ** (e - 6)))
        out.append('<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>' % (x0 - 4, y + 4, lab))
    out.append('<text x="%d" y="%d" font-size="11" transform="rotate(-90 %d %d)" text-anchor="middle">%s</text>'
               % (x0 - 40, y0 + h // 2, x0 - 40, y0 + h // 2, esc(unit)))
    gw = w / len(groups)
    bw = gw * 0.8 / len(SERIES)
    for gi, (test, p) in enumerate(groups):
        gx = x0 + gi * gw + gw * 0.1
        row = rows.get((test, p), {})
        for si, s in enumerate(SERIES):
            d = row.get(s)
            if s == "etcd" and p != 1:
                d = None  # etcd (no pipelining) drawn at P=1 only: puts next to writes, gets next to GET
            if not d or d.get(metric) is None:
                continue
            v = d[metric]
            y = ly(v)
            out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s P=%d: %s</title></rect>'
                       % (gx + si * bw, y, bw - 1, y0 + h - y, COLORS[s], esc(LABEL[s]), test, p,
                          f_rps(v) if metric == "rps" else f_ms(v) + " ms"))
        out.append('<text x="%.1f" y="%d" font-size="%d" text-anchor="middle">%s</text>'
                   % (gx + gw * 0.4, y0 + h + 15, 11 if len(test) <= 8 else 9, esc(test)))
        out.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="#555">P=%d</text>'
                   % (gx + gw * 0.4, y0 + h + 28, p))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>' % (x0, y0, w, h))
    return out


def span(metric):
    vals = [d[metric] for r in rows.values() for d in r.values() if d and d.get(metric)]
    if not vals:
        return 0, 1
    return int(math.floor(math.log10(min(vals)))), int(math.ceil(math.log10(max(vals))))


PW = max(880, 80 * len(groups))  # 80 px a group: ZRANGEBYSCORE's label fits under its bars
W, H = PW + 120, 720
svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif">' % (W, H),
       '<rect width="100%" height="100%" fill="white"/>',
       '<text x="%d" y="24" font-size="15" font-weight="bold" text-anchor="middle">%s</text>'
       % (W // 2, esc("raftis vs redis-server vs etcd — %s profile, %s UTC, %s CPUs, commit %s"
                      % (meta.get("profile", "?"), meta.get("date", "?")[:16], meta.get("nproc", "?"),
                         meta.get("commit", "?").replace(" (with uncommitted changes)", "+changes"))))]
lo, hi = span("rps")
svg += panel(80, 70, PW, 230, "Throughput (ops/s, log scale, median of runs; 50 clients)", "rps", "ops/s", lo, hi)
lo, hi = span("p99")
svg += panel(80, 400, PW, 230, "p99 latency (ms, log scale)", "p99", "ms", lo, hi)
lx = 80
for s in SERIES:
    svg.append('<rect x="%d" y="%d" width="14" height="14" fill="%s"/>' % (lx, H - 35, COLORS[s]))
    svg.append('<text x="%d" y="%d" font-size="12">%s</text>' % (lx + 19, H - 23, esc(LABEL[s] + (": puts, linearizable gets" if s == "etcd" else ""))))
    lx += 195
svg.append("</svg>")
with open(os.path.join(OUT, "chart.svg"), "w") as f:
    f.write("\n".join(svg) + "\n")
