#!/usr/bin/env python3
"""The leader-removal trial's writer: writes `SET bench:member VALUE` to the cluster for
--seconds without pause (one write at a time, cluster-aware: READWRITE, following MOVED among
--ports), and measures how long writes were unavailable around the moment the leader was removed
(--mark-file: the wall clock in ns, written by bench/run.sh just before RAFT.NODE REMOVE).

Prints `gap_ms N`: the longest time between two acknowledged writes from the last one acknowledged
before the mark onward (or `gap_ms FAIL` when no write succeeded after the mark), `acked N`, and
`reply CODE COUNT` per kind of reply, like failover_writer.py.

usage: membership_writer.py --ports P1,P2,... --seconds S --mark-file F
"""
import argparse
import os
import time
from collections import Counter

from failover_writer import Node


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--mark-file", required=True)
    a = ap.parse_args()
    nodes = {int(p): Node(int(p)) for p in a.ports.split(",")}
    order = list(nodes)
    seen = Counter()
    acked = []
    end = time.time_ns() + int(a.seconds * 1e9)
    target = order[0]
    i = 0
    while time.time_ns() < end:
        i += 1
        r = nodes[target].set(str(i))
        if r == "+OK":
            seen["OK"] += 1
            acked.append(time.time_ns())
            continue
        if r is None:
            seen["noanswer"] += 1
        else:
            code = r[1:].split(" ", 1)[0] if r.startswith("-") else "other"
            seen[code] += 1
            if code == "MOVED":
                port = int(r.rsplit(":", 1)[-1])
                if port in nodes and port != target:
                    target = port
                    continue
        target = order[(order.index(target) + 1) % len(order)]
        time.sleep(0.002)
    mark = int(open(a.mark_file).read().strip()) if os.path.exists(a.mark_file) else None
    if mark is None:
        print("gap_ms FAIL")
    else:
        before = [t for t in acked if t <= mark]
        after = [t for t in acked if t > mark]
        if not after:
            print("gap_ms FAIL")
        else:
            times = ([before[-1]] if before else [mark]) + after
            gap = max(b - a for a, b in zip(times, times[1:]))
            print("gap_ms %d" % (gap // 1_000_000))
    print("acked %d" % len(acked))
    for code, n in sorted(seen.items()):
        print("reply %s %d" % (code, n))


if __name__ == "__main__":
    main()
