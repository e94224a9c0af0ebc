#!/usr/bin/env python3
"""The failover trial's writer: from the moment the leader was killed (--since-ns, the wall clock
in ns taken just before the kill), tries `SET bench:failover VALUE` on the surviving nodes over
persistent connections (cluster-aware: READWRITE), following MOVED to a survivor, every 5 ms,
until one is acknowledged.

Prints `done_ms N` (or `done_ms FAIL`) and a `reply CODE COUNT` line per kind of reply seen
(OK, MOVED, CLUSTERDOWN, noanswer...). A persistent connection per node, rather than a
redis-cli process per attempt, so that the figure is the cluster's failover time and not the cost
of starting processes on a loaded machine (40-80 ms an attempt here).

usage: failover_writer.py --since-ns NS --value V --ports P1,P2 [--timeout-s 30]
"""
import argparse
import socket
import time
from collections import Counter


class Node:
    def __init__(self, port):
        self.port = port
        self.sock = None
        self.buf = b""

    def set(self, value):
        """One SET: its reply's first line, or None when the node does not answer."""
        args = [b"SET", b"bench:failover", value.encode()]
        try:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=1.0)
                # A cluster client: READWRITE marks it so, and a follower answers it MOVED rather
                # than relaying its session to the leader (follower proxy mode).
                self.sock.sendall(b"*1\r\n$9\r\nREADWRITE\r\n")
                self.buf = b""
                while b"\r\n" not in self.buf:
                    chunk = self.sock.recv(4096)
                    if not chunk:
                        raise OSError("closed")
                    self.buf += chunk
                self.buf = self.buf.split(b"\r\n", 1)[1]
            self.sock.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise OSError("closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            return line.decode(errors="replace")
        except OSError:
            if self.sock is not None:
                self.sock.close()
            self.sock = None
            return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--since-ns", type=int, required=True)
    ap.add_argument("--value", required=True)
    ap.add_argument("--ports", required=True)
    ap.add_argument("--timeout-s", type=float, default=30)
    a = ap.parse_args()
    nodes = {int(p): Node(int(p)) for p in a.ports.split(",")}
    seen = Counter()
    done = None

    def attempt(node):
        r = node.set(a.value)
        if r is None:
            seen["noanswer"] += 1
            return None
        if r == "+OK":
            seen["OK"] += 1
            return "OK"
        code = r[1:].split(" ", 1)[0] if r.startswith("-") else "other"
        seen[code] += 1
        if code == "MOVED":
            return int(r.rsplit(":", 1)[-1])
        return None

    while done is None and time.time_ns() - a.since_ns < a.timeout_s * 1e9:
        for node in nodes.values():
            r = attempt(node)
            if isinstance(r, int) and r in nodes and r != node.port:
                r = attempt(nodes[r])
            if r == "OK":
                done = (time.time_ns() - a.since_ns) // 1_000_000
                break
        if done is None:
            time.sleep(0.005)
    print("done_ms %s" % (done if done is not None else "FAIL"))
    for code, n in sorted(seen.items()):
        print("reply %s %d" % (code, n))


if __name__ == "__main__":
    main()
