"""redis-py's Lock protecting a counter, through a plain (non-cluster) client, as applications
use it; run by tests/apps.rs, which may kill the leader meanwhile.

Usage: lock_check.py MODE ADDRS RELEASES
  MODE direct:   ADDRS is one HOST:PORT (a redis-server, or a raftis follower in proxy mode)
  MODE sentinel: ADDRS is HOST:PORT,... of the raftis nodes, used as sentinels (master "raftis")

8 threads, each with its own client, in a loop until RELEASES locks have been released: take
the lock `apps:lock` (SET NX PX; released by a Lua script through EVALSHA), read
`apps:lock:counter`, write it plus one, release. Clients never retry by themselves; a command
whose reply was lost (a broken connection, a timeout) has an unknown outcome, and a lock whose
release was lost expires after 8 s.

The check: the counter is at least the number of increments whose SET was acknowledged (none
lost, never two holders at once) and at most that plus those of unknown outcome; no release finds
its lock expired. Prints "progress N" every 100 releases, "LOCK OK" with the counts; exits 1
otherwise.
"""

import sys
import threading
import time

from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.retry import Retry

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from checks import plain_client  # noqa: E402

MODE, ADDRS, RELEASES = sys.argv[1], sys.argv[2], int(sys.argv[3])
THREADS = 8
COUNTER = "apps:lock:counter"
DEADLINE = time.monotonic() + 150
OPTS = dict(socket_timeout=5, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0), decode_responses=True)

stop = threading.Event()
mutex = threading.Lock()
counts = {"acked": 0, "unknown": 0, "released": 0, "connection_errors": 0}
violations = []


def client():
    return plain_client(MODE, ADDRS, **OPTS)


def refused(e):
    """Whether error `e` proves the command never reached a server."""
    text = str(e).lower()
    return isinstance(e, RedisConnectionError) and ("refused" in text or "error 111" in text)


def bump(key, by=1):
    with mutex:
        counts[key] += by
        return counts[key]


def worker():
    rc = client()
    while not stop.is_set():
        lk = rc.lock("apps:lock", timeout=8, blocking_timeout=15, sleep=0.02)
        try:
            if not lk.acquire():
                continue
        except Exception:  # noqa: BLE001 - the acquire may or may not have happened; it expires
            bump("connection_errors")
            time.sleep(0.05)
            continue
        try:
            value = int(rc.get(COUNTER) or 0)
            try:
                rc.set(COUNTER, value + 1)
                bump("acked")
            except Exception as e:  # noqa: BLE001
                if not refused(e):
                    bump("unknown")
                raise
            lk.release()
            released = bump("released")
            if released % 100 == 0:
                print(f"progress {released}", flush=True)
            if released >= RELEASES:
                stop.set()
        except LockError as e:
            # The lock expired under its holder: two holders could have overlapped.
            with mutex:
                violations.append(repr(e))
        except Exception:  # noqa: BLE001 - a failover; the lock expires if it was not released
            bump("connection_errors")
            time.sleep(0.05)


while True:
    try:
        client().delete(COUNTER)
        break
    except Exception:  # noqa: BLE001
        if time.monotonic() > DEADLINE:
            raise
        time.sleep(0.2)
threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
started = time.monotonic()
for t in threads:
    t.start()
while not stop.is_set() and time.monotonic() < DEADLINE:
    time.sleep(0.1)
stop.set()
for t in threads:
    t.join(timeout=30)
took = time.monotonic() - started

final = None
while final is None and time.monotonic() < DEADLINE + 30:
    try:
        final = int(client().get(COUNTER) or 0)
    except Exception:  # noqa: BLE001
        time.sleep(0.2)
if final is None:
    print("could not read the counter")
    sys.exit(1)
if counts["released"] < RELEASES:
    violations.append(f"only {counts['released']} of {RELEASES} releases before the deadline")
if final < counts["acked"]:
    violations.append(f"counter {final} < {counts['acked']} acknowledged increments: an update was lost")
if final > counts["acked"] + counts["unknown"]:
    violations.append(f"counter {final} > {counts['acked']} acknowledged + {counts['unknown']} unknown increments")
print(f"counter={final} {' '.join(f'{k}={v}' for k, v in counts.items())} seconds={took:.1f} "
      f"locks_per_s={counts['released'] / took:.1f}")
if violations:
    print("LOCK VIOLATIONS:", *violations, sep="\n  ")
    sys.exit(1)
print("LOCK OK")
