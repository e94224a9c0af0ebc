"""redis-py's Lock protecting a counter on raftis, while the test kills the leader.

Usage: lock_check.py HOST:PORT[,HOST:PORT...] SECONDS

8 threads, each in a loop: take the lock `{c}:lock` (redis-py's Lock: SET NX PX to acquire, a
Lua script by EVALSHA to release), read `{c}:counter`, write it plus one, release. Every client
is a RedisCluster that never retries by itself; a command whose reply was lost (a broken
connection, a "may or may not" error) has an unknown outcome.

At the end: the counter must be at least the number of increments whose SET was acknowledged
(none lost, no two holders at once) and at most that plus the increments of unknown outcome.
Prints "LOCK OK" and the counts on success; exits 1 otherwise.
"""

import sys
import threading
import time

from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    ClusterDownError,
    ConnectionError as RedisConnectionError,
    LockError,
    MovedError,
    RedisClusterException,
    ResponseError,
    TimeoutError as RedisTimeoutError,
)
from redis.retry import Retry

SEEDS = [ClusterNode(h, int(p)) for h, p in (s.rsplit(":", 1) for s in sys.argv[1].split(","))]
SECONDS = float(sys.argv[2])
THREADS = 8
COUNTER = "{c}:counter"

stop = threading.Event()
lock = threading.Lock()
acked = [0]
unknown = [0]
released = [0]
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


def worker(n):
    rc = client()
    while not stop.is_set():
        # A lock held by a holder whose release was lost expires after 8 s.
        lk = rc.lock("{c}:lock", timeout=8, blocking_timeout=15, sleep=0.02)
        try:
            if not lk.acquire():
                continue
        except Exception:  # noqa: BLE001 - the acquire may or may not have happened; it expires
            time.sleep(0.05)
            rc = client()
            continue
        try:
            value = int(rc.get(COUNTER) or 0)
            try:
                rc.set(COUNTER, value + 1)
                with lock:
                    acked[0] += 1
            except Exception as e:  # noqa: BLE001
                if not certain_failure(e):
                    with lock:
                        unknown[0] += 1
                raise
            lk.release()
            with lock:
                released[0] += 1
        except LockError as e:
            # The lock expired under its holder: two holders could overlap.
            with lock:
                errors.append(f"worker {n}: {e!r}")
        except Exception:  # noqa: BLE001 - a failover; the lock expires if it was not released
            time.sleep(0.05)
            rc = client()


def main():
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    rc = client()
    for _ in range(50):
        try:
            final = int(rc.get(COUNTER) or 0)
            break
        except Exception:  # noqa: BLE001
            time.sleep(0.2)
            rc = client()
    else:
        print("could not read the counter", file=sys.stderr)
        sys.exit(1)
    violations = list(errors)
    if final < acked[0]:
        violations.append(f"counter {final} < {acked[0]} acknowledged increments: an update was lost")
    if final > acked[0] + unknown[0]:
        violations.append(f"counter {final} > {acked[0]} acknowledged + {unknown[0]} unknown increments")
    if released[0] < 50:
        violations.append(f"only {released[0]} lock releases (EVALSHA) succeeded: the workload barely ran")
    summary = f"counter={final} acked={acked[0]} unknown={unknown[0]} released={released[0]}"
    if violations:
        print("LOCK VIOLATIONS " + summary)
        for v in violations:
            print("  " + v)
        sys.exit(1)
    print("LOCK OK " + summary)


if __name__ == "__main__":
    main()
