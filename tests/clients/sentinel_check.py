"""redis-py's Sentinel client writing to raftis while the test kills the leader.

Usage: sentinel_check.py HOST:PORT[,HOST:PORT...] COUNT [MASTER-NAME]

The nodes are given as sentinels (every raftis node answers SENTINEL); the writes go through
`Sentinel.master_for(name)`, a plain (non-cluster) client, the way Celery, RQ and most Python
applications use Sentinel. It SETs `s:0` .. `s:COUNT-1` one at a time. The client never retries
by itself: a connection error (including MasterNotFoundError while no node names a leader, and
redis-py's "The previous master is now a slave") is counted and the same SET is sent again.
Any other error is a wrong answer. Prints "progress N" every 500 acknowledged SETs, so the test
knows when to kill the leader.

At the end every key is read back through the same client: an acknowledged SET whose value is
missing or different is a lost write. Prints "SENTINEL OK" and the counts on success; exits 1
otherwise.
"""

import sys
import time

from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel

SENTINELS = [(h, int(p)) for h, p in (s.rsplit(":", 1) for s in sys.argv[1].split(","))]
COUNT = int(sys.argv[2])
NAME = sys.argv[3] if len(sys.argv) > 3 else "raftis"
DEADLINE = time.monotonic() + 120

sentinel = Sentinel(SENTINELS, socket_timeout=1, socket_connect_timeout=1)
master = sentinel.master_for(
    NAME,
    socket_timeout=3,
    socket_connect_timeout=1,
    decode_responses=True,
    retry=Retry(NoBackoff(), 0),
)

connection_errors = 0
wrong = []
addresses = set()


def until_done(what, call):
    """Runs `call` until it gets an answer; connection errors are counted and retried."""
    global connection_errors
    while True:
        if time.monotonic() > DEADLINE:
            print(f"gave up on {what} after 120 s ({connection_errors} connection errors)")
            sys.exit(1)
        try:
            return call()
        except (RedisConnectionError, RedisTimeoutError):
            connection_errors += 1
            time.sleep(0.05)


for i in range(COUNT):
    try:
        reply = until_done(f"SET s:{i}", lambda: master.set(f"s:{i}", str(i)))
    except RedisError as e:
        wrong.append((i, repr(e)))
        continue
    if reply is not True:
        wrong.append((i, repr(reply)))
    addresses.add(master.connection_pool.master_address)
    if (i + 1) % 500 == 0:
        print(f"progress {i + 1}", flush=True)

lost = []
for start in range(0, COUNT, 500):
    keys = [f"s:{i}" for i in range(start, min(start + 500, COUNT))]
    values = until_done("MGET", lambda: master.mget(keys))
    for key, value in zip(keys, values):
        if value != key[2:]:
            lost.append((key, value))

print(f"acked={COUNT - len(wrong)} connection_errors={connection_errors} wrong={len(wrong)} lost={len(lost)}")
print(f"masters used: {sorted(str(a) for a in addresses)}")
if wrong or lost:
    print("wrong answers:", wrong[:10])
    print("lost writes:", lost[:10])
    sys.exit(1)
print("SENTINEL OK")
