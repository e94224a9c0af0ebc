"""What the apps checks share: a plain (non-cluster) client found the way applications find one,
and retrying through connection errors until a deadline."""

import sys
import time

from redis import Redis
from redis.sentinel import Sentinel


def plain_client(mode, addrs, **opts):
    """MODE sentinel: the master `raftis`, asked of the nodes ADDRS (HOST:PORT,...) as sentinels;
    MODE direct: ADDRS, one HOST:PORT (a redis-server, or a raftis follower in proxy mode)."""
    if mode == "sentinel":
        nodes = [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in addrs.split(","))]
        return Sentinel(nodes, socket_timeout=1, socket_connect_timeout=1).master_for("raftis", **opts)
    host, port = addrs.rsplit(":", 1)
    return Redis(host, int(port), **opts)


class Persist:
    """`persist(who, what, call)` runs `call` until it answers: errors of the `transient` kinds
    are counted in `errors[who]` and the call is retried; past `deadline` (time.monotonic) the
    check prints what it gave up on and exits 1."""

    def __init__(self, deadline, transient, who):
        self.deadline, self.transient = deadline, transient
        self.errors = {w: 0 for w in who}

    def __call__(self, who, what, call):
        while True:
            if time.monotonic() > self.deadline:
                print(f"gave up on {what}: {self.errors}")
                sys.exit(1)
            try:
                return call()
            except self.transient:
                self.errors[who] += 1
                time.sleep(0.1)
