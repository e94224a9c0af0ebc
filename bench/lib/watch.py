#!/usr/bin/env python3
"""What happened in the raftis cluster while bench/run.sh measured something: terms and leaders
(INFO raft of every node before and after), error replies (INFO errorstats of every node, and the
load generator's own error output), and the node log lines about elections, quorum and panics
written meanwhile. Standard library only.

run.sh writes one file per measured window, raw/watch/<name>.txt:
  phase=throughput | metrics | failover | memory-load | recovery-writes | recovery-catchup
  label=...                       what ran ("raftis SET P=1 run 2")
  test=, p=, rep=, csv=           throughput rows (csv: the redis-benchmark CSV, relative to raw/)
  expect_election=1               failover trials: the leader is killed on purpose
  peer_errors=CODE=N,...          error replies a redis-server sent for the same workload (job
                                  queues: redis-py's optional CLIENT subcommands that Redis 7.0
                                  refuses); up to these counts, the nodes' error replies are expected
  start=, end=                    UTC
  before <node> <ok|stopped|noanswer> <term> <leader> <role> <CODE=N,...|->
  after  <node> ...               (INFO raft + INFO errorstats; "stopped": not running on purpose)
  log <node> <path> <offset>      where the node's log stood at the start (run.sh's temporary dir)
  reply <what> <n>                failover: the replies the writer saw while waiting
and `finish` appends:
  event <node> <log line>         log lines matching EVENT_RE (at most MAX_EVENTS a node)
  events_total <node> <n>
  client <CODE> <n>               error replies/failures reported by the load generator
  client_sample <line>

usage: watch.py finish RAW FILE [rb|pipe OUTPUT...]
         appends the events and client errors, then prints "problem <text>" lines (nothing when the
         window was clean) and one "summary <text>" line
"""
import csv
import os
import re
import sys

EVENT_RE = re.compile(r"(^|\s)(WARN|ERROR)\s|panicked|election: |now the leader|no leader known|"
                      r"following the leader|no quorum|resuming as the leader")
# Log lines that are a problem whenever the leader was not killed on purpose (a panic always is).
BAD_EVENT_RE = re.compile(r"panicked|no quorum|election: |(^|\s)ERROR\s")
ALWAYS_BAD_RE = re.compile(r"panicked|(^|\s)ERROR\s")
MAX_EVENTS = 100
MAX_LATENCY_MS = 1000.0
ERROR_KINDS = ("CLUSTERDOWN", "TRYAGAIN", "MOVED", "ERR")


def read(path):
    w = {"before": {}, "after": {}, "logs": {}, "replies": {}, "events": [], "events_total": {},
         "client": {}, "client_samples": []}
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            head, _, rest = line.partition(" ")
            if head in ("before", "after"):
                parts = rest.split()
                if len(parts) >= 6:
                    node, state, term, leader, role, errs = parts[:6]
                    counts = {}
                    if errs != "-":
                        for kv in errs.split(","):
                            k, _, v = kv.partition("=")
                            if v.isdigit():
                                counts[k] = int(v)
                    w[head][node] = {"state": state, "term": int(term) if term.isdigit() else None,
                                     "leader": leader if leader not in ("-", "") else None,
                                     "role": role, "errors": counts}
            elif head == "log":
                parts = rest.split(" ")
                if len(parts) >= 3:
                    w["logs"][parts[0]] = (" ".join(parts[1:-1]), int(parts[-1]) if parts[-1].isdigit() else 0)
            elif head == "reply":
                what, _, n = rest.rpartition(" ")
                w["replies"][what] = w["replies"].get(what, 0) + (int(n) if n.isdigit() else 0)
            elif head == "event":
                node, _, text = rest.partition(" ")
                w["events"].append((node, text))
            elif head == "events_total":
                node, _, n = rest.partition(" ")
                w["events_total"][node] = int(n) if n.isdigit() else 0
            elif head == "client":
                code, _, n = rest.rpartition(" ")
                w["client"][code] = w["client"].get(code, 0) + (int(n) if n.isdigit() else 0)
            elif head == "client_sample":
                w["client_samples"].append(rest)
            elif "=" in line:
                k, v = line.split("=", 1)
                w[k.strip()] = v.strip()
    return w


def kind(code):
    """CLUSTERDOWN, TRYAGAIN, MOVED, ERR, or other (code)."""
    return code if code in ERROR_KINDS else "other (%s)" % code


def leader_of(states):
    """The leader the answering nodes report: the node whose role is leader, else the most named id."""
    ok = {n: s for n, s in states.items() if s["state"] == "ok"}
    for n, s in sorted(ok.items()):
        if s["role"] == "leader":
            return n
    named = [s["leader"] for s in ok.values() if s["leader"]]
    return max(set(named), key=named.count) if named else None


def summarize(w, raw=None):
    b, a = w["before"], w["after"]
    tb = max([s["term"] for s in b.values() if s["state"] == "ok" and s["term"] is not None], default=None)
    ta = max([s["term"] for s in a.values() if s["state"] == "ok" and s["term"] is not None], default=None)
    lb, la = leader_of(b), leader_of(a)
    elected = []  # (node, term) from "this node is now the leader term=N" lines
    for node, text in w["events"]:
        if "now the leader" in text:
            m = re.search(r"term=(\d+)", text)
            elected.append((node, int(m.group(1)) if m else None))
    if elected:
        leader_changes = len(elected)
    else:
        leader_changes = int(lb is not None and la is not None and lb != la)
    # server-side error replies: INFO errorstats after minus before, node by node
    server = {}
    for node, s in a.items():
        if s["state"] != "ok":
            continue
        prev = b.get(node)
        for code, n in s["errors"].items():
            if prev and prev["state"] == "ok":
                was = prev["errors"].get(code, 0)
                d = n - was if n >= was else n  # counter reset: the node restarted
            else:
                d = n  # the node (re)started in the window: everything it counted is new
            if d > 0:
                server[code] = server.get(code, 0) + d
    unanswered = sorted({n for n, s in list(b.items()) + list(a.items()) if s["state"] == "noanswer"})
    max_ms = None
    if raw and w.get("csv"):
        path = os.path.join(raw, w["csv"])
        if os.path.exists(path):
            with open(path) as f:
                vals = []
                for row in csv.DictReader(f):
                    try:
                        vals.append(float(row["max_latency_ms"]))
                    except (KeyError, TypeError, ValueError):
                        pass
                max_ms = max(vals) if vals else None
    bad_events = [(n, t) for n, t in sorted(w["events"], key=lambda e: e[1])
                  if (ALWAYS_BAD_RE if w.get("expect_election") == "1" else BAD_EVENT_RE).search(t)]
    return {
        "label": w.get("label", "?"), "phase": w.get("phase", "?"), "start": w.get("start"), "end": w.get("end"),
        "term_before": tb, "term_after": ta,
        "term_changes": (ta - tb) if tb is not None and ta is not None else None,
        "leader_before": lb, "leader_after": la, "leader_changes": leader_changes,
        "elected": elected,
        "server_errors": server, "client_errors": w["client"], "client_samples": w["client_samples"],
        "replies": w["replies"],
        "events": w["events"], "events_total": sum(w["events_total"].values()) or len(w["events"]),
        "bad_events": bad_events,
        "unanswered": unanswered,
        "max_latency_ms": max_ms,
        "expect_election": w.get("expect_election") == "1",
        "peer_errors": {k: int(v) for k, _, v in (kv.partition("=") for kv in w.get("peer_errors", "").split(","))
                        if v.isdigit()},
        "test": w.get("test"), "p": w.get("p"), "rep": w.get("rep"),
    }


def short_event(node, text):
    """'node 3 18:40:01.123 election: this node is a candidate term=4' from a log line."""
    m = re.match(r"(\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d(?:\.\d{1,3})?)\d*Z?)\s+(\w+)\s+(\S+?):\s(.*)$", text)
    if not m:
        return "node %s: %s" % (node, text[:200])
    lvl = "" if m.group(3) == "INFO" else m.group(3) + " "
    return "node %s %s %s%s" % (node, m.group(2), lvl, m.group(5)[:200])


def fmt_terms(s):
    """'0', '+2 (leader 1→3)', '+1 (leader 2→2, re-elected)', '?' (INFO unanswered)."""
    d = s["term_changes"]
    if d is None:
        return "?"
    if d == 0 and s["leader_before"] == s["leader_after"]:
        return "0"
    lead = "leader %s→%s" % (s["leader_before"] or "?", s["leader_after"] or "none")
    if s["leader_before"] == s["leader_after"] and s["leader_changes"]:
        lead += ", re-elected"
    return "+%d (%s)" % (d, lead)


def fmt_counts(counts):
    return ", ".join("%s %d" % (kind(k), v) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "0"


# NOSCRIPT is a script-cache miss: redis-py's Script sends EVALSHA, and on NOSCRIPT loads the script
# and retries. How many client threads miss before the first load lands depends on their interleaving,
# and whether a run uses a given script at all depends on timing (kombu takes its unacked-restore lock,
# whose release and extend are scripts, only when a restore is due), while redis-server's cache stays
# warm from the earlier runs: redis-server can send none in a run where a raftis node misses once (a CI
# run saw Celery run 3: raftis 1, redis-server 0). So up to one miss per client connection of the
# job-queue workloads (a 4-thread worker and the producer) beyond redis-server's count is expected,
# whether redis-server sent some or not; a cache that is not replicated misses on every call and
# still shows.
RACY_ERRORS = {"NOSCRIPT": 5}


def allowed(s, code):
    """How many error replies of this kind the window may see: redis-server's count for the same
    workload, plus the interleaving slack of RACY_ERRORS."""
    return s["peer_errors"].get(code, 0) + RACY_ERRORS.get(code, 0)


def problems(s):
    found = []
    if not s["expect_election"]:
        if s["term_changes"]:
            found.append("term changed %s" % fmt_terms(s))
        elif s["leader_changes"]:
            found.append("leader changed %s→%s" % (s["leader_before"], s["leader_after"]))
        beyond = {k: n - allowed(s, k) for k, n in s["server_errors"].items() if n > allowed(s, k)}
        if beyond:
            found.append("error replies sent by the nodes (INFO errorstats): %s%s"
                         % (fmt_counts(s["server_errors"]),
                            " (redis-server sent %s for the same workload)" % fmt_counts(s["peer_errors"])
                            if s["peer_errors"] else ""))
        if s["client_errors"]:
            found.append("errors reported by the load generator: %s%s"
                         % (fmt_counts(s["client_errors"]),
                            " (first: %s)" % s["client_samples"][0][:160] if s["client_samples"] else ""))
    if s["unanswered"]:
        found.append("node(s) %s did not answer INFO raft" % ", ".join(s["unanswered"]))
    if s["max_latency_ms"] is not None and s["max_latency_ms"] >= MAX_LATENCY_MS:
        found.append("max latency %.0f ms ≥ %.0f ms" % (s["max_latency_ms"], MAX_LATENCY_MS))
    if s["bad_events"]:
        shown = "; ".join(short_event(n, t) for n, t in s["bad_events"][:3])
        more = len(s["bad_events"]) - 3
        found.append("node logs: %s%s" % (shown, " (and %d more)" % more if more > 0 else ""))
    return found


def problem_line(s):
    """The line run.sh records under Problems seen for this window, or None."""
    found = problems(s)
    return "%s: %s" % (s["label"], "; ".join(found)) if found else None


def finish(raw, path, rest):
    w = read(path)
    out = []
    for node, (log, off) in sorted(w["logs"].items()):
        if not os.path.exists(log):
            continue
        with open(log, "rb") as f:
            f.seek(off)
            text = f.read().decode("utf-8", "replace")
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
        hits = [l for l in text.splitlines() if EVENT_RE.search(l)]
        for l in hits[:MAX_EVENTS]:
            out.append("event %s %s" % (node, l))
        out.append("events_total %s %d" % (node, len(hits)))
    if rest:
        how, files = rest[0], rest[1:]
        counts, samples = {}, []
        for name in files:
            if not os.path.exists(name):
                continue
            with open(name, errors="replace") as f:
                for line in f:
                    line = line.strip().replace("\r", "")
                    code = None
                    if how == "rb":  # redis-benchmark 7.0 stops at the first error reply
                        m = re.match(r"Error from server(?: [^:]*:\d+)?: (\S+)", line)
                        if m:
                            code = m.group(1)
                        elif line.startswith("Error:") or line.startswith("Unexpected error reply"):
                            code = "connection" if "onnect" in line or "closed" in line else "client"
                    elif how == "pipe":  # redis-cli --pipe prints each error reply as is
                        if not line or re.match(r"(All data transferred|Waiting for the last reply|"
                                                r"Last reply received|errors: \d+, replies: \d+)", line):
                            continue
                        m = re.match(r"([A-Z][A-Z_]+)\b", line)
                        code = m.group(1) if m else "client"
                    if code:
                        counts[code] = counts.get(code, 0) + 1
                        if len(samples) < 3:
                            samples.append(line[:300])
        for code, n in sorted(counts.items()):
            out.append("client %s %d" % (code, n))
        for l in samples:
            out.append("client_sample %s" % l)
    with open(path, "a") as f:
        for l in out:
            f.write(l + "\n")
    s = summarize(read(path), raw)
    line = problem_line(s)
    if line:
        print("problem " + line)
    summary = "%s: terms %s, error replies %s" % (s["label"], fmt_terms(s), fmt_counts(s["server_errors"]))
    if s["client_errors"]:
        summary += ", load generator errors %s" % fmt_counts(s["client_errors"])
    if s["max_latency_ms"] is not None:
        summary += ", max latency %.1f ms" % s["max_latency_ms"]
    if s["events_total"]:
        summary += ", %d node log event(s)" % s["events_total"]
    print("summary " + summary)


def load_all(raw):
    """Every watch file of a raw directory, summarized, by file name."""
    d = os.path.join(raw, "watch")
    out = {}
    if os.path.isdir(d):
        for name in sorted(os.listdir(d)):
            if name.endswith(".txt"):
                try:
                    out[name[:-4]] = summarize(read(os.path.join(d, name)), raw)
                except (OSError, ValueError):
                    pass
    return out


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "finish":
        finish(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)
