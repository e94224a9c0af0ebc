"""A job queue on raftis through redis-py's RedisCluster, while the test kills the leader.

Usage: queue_check.py HOST:PORT[,HOST:PORT...] SECONDS

8 producers LPUSH unique items onto {q}:jobs for SECONDS; 4 consumers move items with BLMOVE
into their own processing list {q}:proc:N (the reliable-queue pattern: an item whose reply was
lost is still in that list), 4 consumers pop with BRPOP (at most once: an item whose reply was
lost is gone). Then consumers drain the queue and the script checks, from what every client saw
and the lists at the end:

- nothing was popped twice: no item is in two places among BRPOP's results, the processing
  lists and the queue;
- every acknowledged push is somewhere: popped by BRPOP, in a processing list, or still queued;
  except at most one item per BRPOP whose reply was lost to a broken connection;
- every BLMOVE result is in its consumer's processing list;
- nothing appears that no producer pushed.

Errors are classified as the test harness does: MOVED, CLUSTERDOWN and refused connections mean
the command did not run (the client tries again); a broken connection or a "may or may not"
reply leaves the outcome unknown. The client never retries on its own (retries=0).

Prints "QUEUE OK" and the counts on success; exits 1 with the violations otherwise.
"""

import sys
import threading
import time

from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    ClusterDownError,
    ConnectionError as RedisConnectionError,
    MovedError,
    RedisClusterException,
    ResponseError,
    TimeoutError as RedisTimeoutError,
)
from redis.retry import Retry

SEEDS = [ClusterNode(h, int(p)) for h, p in (s.rsplit(":", 1) for s in sys.argv[1].split(","))]
SECONDS = float(sys.argv[2])
QUEUE = "{q}:jobs"
PRODUCERS = 8
MOVERS = 4
POPPERS = 4

stop = threading.Event()
lock = threading.Lock()
acked = set()
unknown_push = set()
popped = []  # BRPOP results
moved = {}  # consumer -> BLMOVE results
brpop_unknown = [0]
errors = []


def client():
    """A cluster client that never retries by itself."""
    while True:
        try:
            return RedisCluster(
                startup_nodes=SEEDS,
                retry=Retry(NoBackoff(), 0),
                socket_timeout=5,
                socket_connect_timeout=2,
                decode_responses=True,
            )
        except (RedisClusterException, RedisConnectionError, RedisTimeoutError):
            # No node answers yet (an election): keep trying.
            time.sleep(0.2)


def certain_failure(e):
    """Whether error `e` proves the command did not run."""
    text = str(e)
    if isinstance(e, (MovedError, ClusterDownError)):
        return True
    if isinstance(e, ResponseError):
        return text.startswith(("MOVED", "CLUSTERDOWN")) or "CLUSTERDOWN" in text
    if isinstance(e, RedisConnectionError) and ("refused" in text.lower() or "Error 111" in text):
        return True
    return False


def producer(n):
    rc = client()
    i = 0
    while not stop.is_set():
        item = f"p{n}:{i}"
        while True:
            try:
                rc.lpush(QUEUE, item)
                with lock:
                    acked.add(item)
                break
            except Exception as e:  # noqa: BLE001 - every failure is classified
                if certain_failure(e):
                    time.sleep(0.05)
                    if stop.is_set():
                        break
                    rc = client()
                    continue
                with lock:
                    unknown_push.add(item)
                rc = client()
                break
        i += 1


def consumer(n, kind, draining):
    rc = client()
    dest = f"{{q}}:proc:{n}"
    empty = 0
    while True:
        if stop.is_set() and draining.is_set() and empty >= 2:
            return
        try:
            if kind == "blmove":
                item = rc.blmove(QUEUE, dest, 1, "RIGHT", "LEFT")
            else:
                r = rc.brpop([QUEUE], 1)
                item = r[1] if r else None
            if item is None:
                empty = empty + 1 if draining.is_set() else 0
                continue
            empty = 0
            with lock:
                if kind == "blmove":
                    moved.setdefault(n, []).append(item)
                else:
                    popped.append(item)
        except Exception as e:  # noqa: BLE001
            if not certain_failure(e) and kind == "brpop":
                with lock:
                    brpop_unknown[0] += 1
            time.sleep(0.05)
            rc = client()


def main():
    draining = threading.Event()
    threads = [threading.Thread(target=producer, args=(n,)) for n in range(PRODUCERS)]
    consumers = [threading.Thread(target=consumer, args=(n, "blmove", draining)) for n in range(MOVERS)]
    consumers += [threading.Thread(target=consumer, args=(MOVERS + n, "brpop", draining)) for n in range(POPPERS)]
    for t in threads + consumers:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join()
    draining.set()
    for t in consumers:
        t.join(timeout=120)
        if t.is_alive():
            print("a consumer did not finish draining", file=sys.stderr)
            sys.exit(1)

    rc = client()
    for _ in range(50):
        try:
            queued = rc.lrange(QUEUE, 0, -1)
            proc = {n: rc.lrange(f"{{q}}:proc:{n}", 0, -1) for n in range(MOVERS)}
            break
        except Exception:  # noqa: BLE001
            time.sleep(0.2)
            rc = client()
    else:
        print("could not read the lists at the end", file=sys.stderr)
        sys.exit(1)

    violations = []
    places = {}
    for item in popped:
        places.setdefault(item, []).append("brpop")
    for n, items in proc.items():
        for item in items:
            places.setdefault(item, []).append(f"proc:{n}")
    for item in queued:
        places.setdefault(item, []).append("queue")
    for item, where in places.items():
        if len(where) > 1:
            violations.append(f"{item} popped twice or duplicated: {where}")
        if item not in acked and item not in unknown_push:
            violations.append(f"{item} was never pushed")
    missing = sorted(acked - set(places))
    if len(missing) > brpop_unknown[0]:
        violations.append(
            f"{len(missing)} acknowledged pushes are nowhere (only {brpop_unknown[0]} BRPOP replies were lost): "
            f"{missing[:10]}"
        )
    for n, items in moved.items():
        held = set(proc.get(n, []))
        for item in items:
            if item not in held:
                violations.append(f"BLMOVE gave {item} to consumer {n} but it is not in its processing list")
    if len(acked) < 100:
        violations.append(f"only {len(acked)} pushes acknowledged: the workload barely ran")
    if not popped or not any(moved.values()):
        violations.append("a kind of consumer received nothing")
    summary = (
        f"pushes acknowledged={len(acked)} unknown={len(unknown_push)}; brpop={len(popped)} "
        f"(lost replies {brpop_unknown[0]}); blmove={sum(len(v) for v in moved.values())}; "
        f"in processing lists={sum(len(v) for v in proc.values())}; queued at end={len(queued)}; "
        f"missing={len(missing)}"
    )
    print(summary)
    if violations:
        for v in violations[:50]:
            print("VIOLATION", v)
        sys.exit(1)
    print("QUEUE OK")


if __name__ == "__main__":
    main()
