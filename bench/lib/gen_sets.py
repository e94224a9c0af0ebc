#!/usr/bin/env python3
"""Writes N Redis SET commands in RESP to stdout, for `redis-cli --pipe`.

usage: gen_sets.py N PREFIX [VALUE_BYTES]   keys are PREFIX%07d, values VALUE_BYTES bytes of 'x'.
"""
import sys

n = int(sys.argv[1])
prefix = sys.argv[2].encode()
size = int(sys.argv[3]) if len(sys.argv) > 3 else 100
value = b"x" * size
out = sys.stdout.buffer
chunk = []
for i in range(n):
    key = prefix + b"%07d" % i
    chunk.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, size, value))
    if len(chunk) >= 10000:
        out.write(b"".join(chunk))
        chunk = []
out.write(b"".join(chunk))
out.flush()
