"""Celery on raftis, unchanged: kombu's Redis transport as the broker, Celery's Redis result
backend, a worker with a thread pool, single tasks, groups and chords; run by tests/apps.rs,
which may kill the leader meanwhile.

Usage: celery_check.py MODE ADDRS TASKS
  MODE and ADDRS as in celery_tasks.py.

TASKS single tasks are sent one at a time; after every 50th, a group of 5 and a chord of 5 (the
body sums the header). A worker process (`celery worker --pool threads`) runs them, reconnecting
by itself after a connection loss (Celery's own broker_connection_retry); if it stops, it is
started again, as a process supervisor would (see `supervise`). A send that fails with
a connection error is counted and sent again; only sends that returned count as acknowledged.

kombu's Redis transport takes a message with BRPOP and only then records it as unacknowledged
(kombu's `unacked` hash), on another connection. Two windows lose a message when the server dies:
(1) the BRPOP's pop is committed but its reply never reaches the worker: raftis puts such pops back
with `--pop-delivery at-least-once`, which tests/apps.rs gives the cluster, so none may be missing;
(2) the worker has the message but its unacknowledged record fails on the broken connection: kombu
then drops the message, on Redis as on raftis, and no server can tell. The worker reports what it
took (celery_tasks.py, observation only), so a missing task is placed exactly: still queued,
unacknowledged, "gone after the worker took it" (window 2: at most one, MAY_DROP, is allowed: the
leader is killed once, and the worker consumes on one connection), or "gone, never received"
(window 1, or a server losing it: never allowed).
The check: every acknowledged task reaches SUCCESS with the value Celery's result backend stores
(2n), every group's results are all there, every chord's body returns the right sum. Prints
"progress N" every 100 tasks sent, "CELERY OK" with counts and tasks/s on success; exits 1
otherwise.
"""

import atexit
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODE, ADDRS, TASKS = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.environ["CELERY_CHECK_MODE"] = MODE
os.environ["CELERY_CHECK_ADDRS"] = ADDRS
sys.path.insert(0, HERE)

from celery import chord, group  # noqa: E402
from kombu.exceptions import OperationalError  # noqa: E402
from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: E402
from redis.exceptions import TimeoutError as RedisTimeoutError  # noqa: E402

from celery_tasks import app, double, total  # noqa: E402
from checks import Persist  # noqa: E402

DEADLINE = time.monotonic() + 90
TRANSIENT = (OperationalError, RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
persist = Persist(DEADLINE, TRANSIENT, ["producer", "checker"])
errors = persist.errors

# The worker's log goes to a file, printed to stderr at the end (an inherited stderr would keep
# the test runner's pipe open if this process died first).
worker_log = tempfile.TemporaryFile(mode="w+")
taken_log = tempfile.NamedTemporaryFile(mode="w+", prefix="celery-taken-")
os.environ["CELERY_CHECK_TAKEN"] = taken_log.name  # see celery_tasks.py: what the worker took
WORKER_CMD = [sys.executable, "-m", "celery", "-A", "celery_tasks", "worker", "--pool", "threads", "--concurrency",
              "4", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING", "-Q", "apps"]
worker = subprocess.Popen(WORKER_CMD, cwd=HERE, stdout=subprocess.DEVNULL, stderr=worker_log)
restarts = 0


def supervise():
    """Restarts the worker if it stopped, as a process supervisor would. kombu 5.7's Sentinel
    channel can fail with an AttributeError while closing a connection the failover broke
    (`_connparams`: conninfo is None); Celery calls that an unrecoverable error and stops."""
    global worker, restarts
    worker_log.seek(0)
    stopped = worker.poll() is not None or worker_log.read().count("Unrecoverable error") > restarts
    if stopped:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        restarts += 1
        print(f"worker stopped (exit {worker.returncode}); restarting it", file=sys.stderr, flush=True)
        worker = subprocess.Popen(WORKER_CMD, cwd=HERE, stdout=subprocess.DEVNULL, stderr=worker_log)


def stop_worker():
    if worker_log.closed:
        return
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    worker_log.seek(0)
    lines = [l for l in worker_log.read().splitlines() if "SecurityWarning" not in l]
    print("worker log (last 40 lines):", *lines[-40:], sep="\n  ", file=sys.stderr)
    worker_log.close()


atexit.register(stop_worker)
started = time.monotonic()
singles = {}   # task id -> n
groups = []    # (GroupResult, [n...])
chords = []    # (AsyncResult of the body, expected sum)
for n in range(TASKS):
    res = persist("producer", f"send {n}", lambda: double.apply_async((n,), retry=False))
    singles[res.id] = n
    if (n + 1) % 50 == 0:
        members = list(range(n, n + 5))
        g = persist("producer", f"group at {n}", lambda: group(double.s(i) for i in members).apply_async(retry=False))
        groups.append((g, members))
        c = persist("producer", f"chord at {n}", lambda: chord(double.s(i) for i in members)(total.s()))
        chords.append((c, 2 * sum(members)))
    if (n + 1) % 100 == 0:
        print(f"progress {n + 1}", flush=True)

backend = app.backend


def states(ids):
    """(state, result) of each task id, read from the result backend."""
    metas = [backend.get_task_meta(i) for i in ids]
    return [(m["status"], m["result"]) for m in metas]


expected = dict(singles)
for g, members in groups:
    for r, n in zip(g.results, members):
        expected[r.id] = n
sums = {c.id: s for c, s in chords}
# Each chord body's header tasks (a body waits on them; they have no entry of their own above).
headers = {c.id: [r.id for r in c.parent.results] if c.parent is not None else [] for c, _ in chords}
pending = []
while time.monotonic() < DEADLINE - 20:  # leaves time to look at what is missing
    ids = list(expected) + list(sums)
    got = persist("checker", "task states", lambda: states(ids))
    pending = [i for i, (state, _) in zip(ids, got) if state != "SUCCESS"]
    if not pending:
        break
    supervise()
    time.sleep(0.5)
took = time.monotonic() - started


def where(task_ids):
    """For tasks that never finished: is each one's message still in the broker (the queue list
    or kombu's unacked hash), or gone: taken by the worker's BRPOP and then dropped when kombu's
    unacknowledged record of it failed ("gone after the worker took it", see celery_tasks.py), or
    never received by the worker ("gone, never received": a pop whose reply was lost)?"""
    client = backend.client
    queued = b"".join(client.lrange("apps", 0, -1))
    unacked = b"".join(client.hvals("unacked"))
    taken_log.seek(0)
    taken = {line.split()[1]: line.strip() for line in taken_log if line.startswith(("taken ", "failed "))}

    def place(i):
        if i.encode() in queued:
            return "queued"
        if i.encode() in unacked:
            return "unacked"
        return f"gone after the worker took it ({taken[i]})" if i in taken else "gone, never received"
    return {i: place(i) for i in task_ids}


MAY_DROP = 1
gone, dropped_by_kombu, excused = set(), set(), set()
if pending:
    places = persist("checker", "broker state", lambda: where(pending))
    # A chord body still pending waits on its header: where are the header tasks?
    for body in [i for i in pending if i in headers]:
        members = headers[body]
        done = persist("checker", "chord header states", lambda: states(members))
        unfinished = [m for m, (state, _) in zip(members, done) if state != "SUCCESS"]
        waiting = persist("checker", "chord header", lambda: where(unfinished))
        for member, place in waiting.items():
            if place.startswith("gone"):
                places[body] = f"waits on header task {member}, {place}"
                places[member] = place
    print("not finished by the deadline:", len(pending), dict(list(places.items())[:20]), flush=True)
    gone = {i for i, place in places.items() if "gone" in place}

    def dropped(place):
        return "gone after the worker took it (failed" in place and ("ConnectionError" in place or "TimeoutError" in place)
    # Tasks kombu dropped, and chord bodies that wait on one (excused with it).
    dropped_by_kombu = {i for i, place in places.items() if dropped(place) and not place.startswith("waits on")}
    excused = {i for i, place in places.items() if dropped(place)}

# Celery's own AsyncResult API, waiting on a group and a chord (pub/sub on the result channels).
if groups and not pending:
    persist("checker", "group get", lambda: groups[-1][0].get(timeout=10))
    persist("checker", "chord get", lambda: chords[-1][0].get(timeout=10))
stop_worker()

wrong = []
ids = list(expected) + list(sums)
for i, (state, value) in zip(ids, persist("checker", "final states", lambda: states(ids))):
    want = 2 * expected[i] if i in expected else sums[i]
    if (state != "SUCCESS" or value != want) and not (i in excused and len(dropped_by_kombu) <= MAY_DROP):
        wrong.append((i, state, value, want))
count = len(expected) + len(sums)
print(f"tasks={TASKS} groups={len(groups)} chords={len(chords)} acked={count} "
      f"succeeded={count - len(wrong) - (len(excused & set(ids)) if len(dropped_by_kombu) <= MAY_DROP else 0)} "
      f"dropped_by_kombu={len(dropped_by_kombu)} gone={len(gone)} worker_restarts={restarts} connection_errors={errors} seconds={took:.1f} "
      f"tasks_per_s={count / took:.1f}")
if wrong:
    print("not done (id, state, result, expected):", wrong[:10])
    sys.exit(1)
print("CELERY OK")
