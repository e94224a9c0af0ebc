#!/usr/bin/env python3
"""Writes the commands of one collection dataset in RESP to stdout, for `redis-cli --pipe`.

usage: gen_types.py DATASET SCALE
  big-hash    one hash of SCALE fields (field:%07d -> 16-byte value), HSET of 100 fields at a time
  big-set     one set of SCALE members (member:%07d), SADD of 100 at a time
  big-zset    one sorted set of SCALE members with distinct scores, ZADD of 100 at a time
  small-hash  SCALE hashes of 10 fields each (f0..f9 -> 16-byte values), one HSET each
  big-list    one list of SCALE elements (job:%07d), RPUSH of 100 at a time
  strings     SCALE strings (key:%07d -> 100-byte values), one SET each (bench/run.sh's memory row)
Prints the number of commands on stderr (what `redis-cli --pipe` must report as replies).
"""
import sys

dataset, scale = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
value = b"v" * 16


def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


commands = 0
chunk = []


def emit(c):
    global commands
    chunk.append(c)
    commands += 1
    if len(chunk) >= 2000:
        out.write(b"".join(chunk))
        chunk.clear()


if dataset == "big-hash":
    for start in range(0, scale, 100):
        args = [b"HSET", b"bighash"]
        for i in range(start, min(start + 100, scale)):
            args += [b"field:%07d" % i, value]
        emit(cmd(*args))
elif dataset == "big-set":
    for start in range(0, scale, 100):
        emit(cmd(b"SADD", b"bigset", *[b"member:%07d" % i for i in range(start, min(start + 100, scale))]))
elif dataset == "big-zset":
    for start in range(0, scale, 100):
        args = [b"ZADD", b"bigzset"]
        for i in range(start, min(start + 100, scale)):
            args += [b"%d" % i, b"member:%07d" % i]
        emit(cmd(*args))
elif dataset == "small-hash":
    for k in range(scale):
        args = [b"HSET", b"hash:%07d" % k]
        for f in range(10):
            args += [b"f%d" % f, value]
        emit(cmd(*args))
elif dataset == "big-list":
    for start in range(0, scale, 100):
        emit(cmd(b"RPUSH", b"biglist", *[b"job:%07d" % i for i in range(start, min(start + 100, scale))]))
elif dataset == "strings":
    big = b"x" * 100
    for k in range(scale):
        emit(cmd(b"SET", b"key:%07d" % k, big))
else:
    sys.exit("unknown dataset " + dataset)
out.write(b"".join(chunk))
out.flush()
print(commands, file=sys.stderr)
