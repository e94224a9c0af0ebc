#!/usr/bin/env python3
"""Prints COUNT distinct free TCP ports on 127.0.0.1, one a line.

Ports are drawn at random from 20000-32000 (below Linux's ephemeral range, so outgoing
connections do not take them meanwhile) and kept only if they can be bound right now and are
not in the exclusion file (ports this run already handed out).
usage: ports.py COUNT [EXCLUDE_FILE]
"""
import random
import socket
import sys

count = int(sys.argv[1])
taken = set()
if len(sys.argv) > 2:
    try:
        with open(sys.argv[2]) as f:
            taken = {int(x) for x in f.read().split()}
    except FileNotFoundError:
        pass
found = []
for _ in range(10000):
    if len(found) == count:
        break
    p = random.randint(20000, 32000)
    if p in taken or p in found:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    found.append(p)
if len(found) < count:
    sys.exit("ports.py: could not find %d free ports" % count)
print("\n".join(map(str, found)))
