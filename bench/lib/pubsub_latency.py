#!/usr/bin/env python3
"""Publish-to-receive latency of pub/sub: a subscriber connected to one address, a publisher to
another (the same server for redis-server; a raftis follower and the leader), both in this process.

The subscriber SUBSCRIBEs to the channel; warm-up messages are published every 10 ms until one
arrives (the path works end to end); then M messages are published at a fixed rate (open loop:
message i is due at i / rate s, whatever the replies; a late one is sent at once), each payload
"<seq>:<send time>" with the send time from time.perf_counter_ns just before the write. A message's
latency is the time it reached the subscriber (perf_counter_ns right after the read that brought
it) minus its send time. One thread, select() with microsecond timeouts, plain sockets, RESP2.

Prints one line, key=value:
  pubsub_latency messages=M rate=R received=N lost=M-N duplicates=D reordered=O publish_ok=K
  publish_errors=E p50_ms=.. p99_ms=.. max_ms=.. send_s=..
(latencies over the messages received; lost: published but not received within --grace-s of the
last send). The first publish error, if any, goes to stderr. Exit status 1 when it could not run
(connection, SUBSCRIBE or warm-up failed).

usage: pubsub_latency.py --pub HOST:PORT --sub HOST:PORT [--messages 2000] [--rate 2000]
                         [--channel bench:lat] [--grace-s 5]
"""
import argparse
import selectors
import socket
import sys
import time

now = time.perf_counter_ns


def command(*args):
    args = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args])


def parse(buf, pos):
    """One RESP2 value from buf[pos:]: (value, next pos), or None when incomplete. Errors come back
    as ("error", text)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    t, line = buf[pos:pos + 1], buf[pos + 1:end]
    pos = end + 2
    if t in (b"+", b":"):
        return (int(line) if t == b":" else line.decode(errors="replace")), pos
    if t == b"-":
        return ("error", line.decode(errors="replace")), pos
    if t == b"$":
        n = int(line)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            return None
        return bytes(buf[pos:pos + n]), pos + n + 2
    if t == b"*":
        n = int(line)
        items = []
        for _ in range(max(n, 0)):
            r = parse(buf, pos)
            if r is None:
                return None
            v, pos = r
            items.append(v)
        return items, pos
    raise ValueError("unexpected RESP type %r" % t)


class Conn:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5.0)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def values(self):
        """The complete values received so far."""
        out = []
        while True:
            r = parse(self.buf, self.pos)
            if r is None:
                break
            v, self.pos = r
            out.append(v)
        if self.pos > 65536:
            del self.buf[:self.pos]
            self.pos = 0
        return out

    def fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise OSError("connection closed by the server")
        self.buf += chunk


def pct(sorted_vals, q):
    """Nearest-rank percentile."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-q * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pub", required=True)
    ap.add_argument("--sub", required=True)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--channel", default="bench:lat")
    ap.add_argument("--grace-s", type=float, default=5.0)
    a = ap.parse_args()
    channel = a.channel.encode()

    try:
        sub = Conn(a.sub)
        sub.sock.sendall(command("SUBSCRIBE", channel))
        deadline = time.monotonic() + 5
        confirmed = False
        while not confirmed:
            if time.monotonic() > deadline:
                raise OSError("no SUBSCRIBE confirmation within 5 s")
            sub.fill()
            for v in sub.values():
                if isinstance(v, tuple):
                    raise OSError("SUBSCRIBE answered %s" % v[1])
                if isinstance(v, list) and len(v) == 3 and v[0] == b"subscribe":
                    confirmed = True
        pub = Conn(a.pub)
    except (OSError, ValueError) as e:
        sys.stderr.write("pubsub_latency: %s\n" % e)
        return 1
    sub.sock.settimeout(None)  # blocking: recv only after select() says readable
    pub.sock.settimeout(None)
    sel = selectors.SelectSelector()  # select(): microsecond timeouts (epoll and poll take ms)
    sel.register(sub.sock, selectors.EVENT_READ, sub)
    sel.register(pub.sock, selectors.EVENT_READ, pub)

    M = a.messages
    interval = 1e9 / a.rate
    seen = bytearray(M)
    latencies = []
    st = {"dup": 0, "reordered": 0, "last": -1, "ok": 0, "err": 0, "warm": False}
    first_error = []

    def drain(timeout_s):
        for key, _ in sel.select(max(timeout_s, 0)):
            c = key.data
            c.fill()
            t = now()  # the read that brought these messages
            for v in c.values():
                if c is pub:
                    if isinstance(v, tuple):
                        st["err"] += 1
                        if not first_error:
                            first_error.append(v[1])
                    else:
                        st["ok"] += 1
                elif isinstance(v, list) and len(v) == 3 and v[0] == b"message":
                    payload = v[2]
                    if payload.startswith(b"w:"):
                        st["warm"] = True
                        continue
                    seq, _, sent = payload.partition(b":")
                    seq, sent = int(seq), int(sent)
                    if seen[seq]:
                        st["dup"] += 1
                        continue
                    seen[seq] = 1
                    if seq < st["last"]:
                        st["reordered"] += 1
                    st["last"] = max(st["last"], seq)
                    latencies.append(t - sent)

    try:
        # warm-up: until a message published now reaches the subscriber (10 s at most)
        deadline = time.monotonic() + 10
        w = 0
        while not st["warm"]:
            if time.monotonic() > deadline:
                raise OSError("no warm-up message reached the subscriber within 10 s")
            pub.sock.sendall(command("PUBLISH", channel, b"w:%d" % w))
            w += 1
            drain(0.01)
        # measured messages, open loop
        t0 = now()
        sent = 0
        while sent < M:
            due = t0 + sent * interval
            t = now()
            if t >= due:
                ts = now()
                pub.sock.sendall(command("PUBLISH", channel, b"%d:%d" % (sent, ts)))
                sent += 1
                drain(0)
            else:
                drain((due - t) / 1e9)
        send_s = (now() - t0) / 1e9
        deadline = time.monotonic() + a.grace_s
        while (len(latencies) < M or st["ok"] + st["err"] < M + w) and time.monotonic() < deadline:
            drain(0.05)
    except (OSError, ValueError) as e:
        sys.stderr.write("pubsub_latency: %s\n" % e)
        return 1
    if first_error:
        sys.stderr.write("pubsub_latency: first PUBLISH error: %s\n" % first_error[0])
    lat = sorted(x / 1e6 for x in latencies)
    f = lambda x: "-" if x is None else "%.3f" % x
    print("pubsub_latency messages=%d rate=%g received=%d lost=%d duplicates=%d reordered=%d publish_ok=%d "
          "publish_errors=%d p50_ms=%s p99_ms=%s max_ms=%s send_s=%.3f"
          % (M, a.rate, len(latencies), M - len(latencies), st["dup"], st["reordered"], st["ok"], st["err"],
             f(pct(lat, 50)), f(pct(lat, 99)), f(lat[-1] if lat else None), send_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
