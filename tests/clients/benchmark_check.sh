#!/usr/bin/env bash
# Runs redis-benchmark against a server and fails unless every test ran cleanly.
#
# Usage: benchmark_check.sh PORT [HOST]
#
# Two runs: `redis-benchmark -t ping,set,get,incr,mset -n 100000 -q`, then the same with -P 16
# (16 commands pipelined per round trip). A run fails when redis-benchmark exits non-zero (it
# exits at the first error reply), when any output line mentions an error, or when any of
# PING_INLINE, PING_MBULK, SET, GET, INCR and MSET is missing from its summary lines.
# redis-benchmark retries forever when nothing listens on the port, so the port is checked first,
# and each run is also bounded by `timeout`.
# Environment: REQUESTS (default 100000), REDIS_BENCHMARK (default redis-benchmark),
# RUN_TIMEOUT (seconds per run, default 300).
set -uo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 PORT [HOST]" >&2
    exit 2
fi
PORT="$1"
HOST="${2:-127.0.0.1}"
REQUESTS="${REQUESTS:-100000}"
REDIS_BENCHMARK="${REDIS_BENCHMARK:-redis-benchmark}"
EXPECTED=(PING_INLINE PING_MBULK SET GET INCR MSET)
RUN_TIMEOUT="${RUN_TIMEOUT:-300}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if ! (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
    echo "benchmark_check: FAIL: nothing accepts connections on $HOST:$PORT"
    exit 1
fi

status=0
for pipeline in 1 16; do
    label="-P $pipeline"
    out="$WORK/out.$pipeline"
    rc=0
    timeout -k 10 "$RUN_TIMEOUT" "$REDIS_BENCHMARK" -h "$HOST" -p "$PORT" -t ping,set,get,incr,mset -n "$REQUESTS" -q \
        -P "$pipeline" >"$WORK/raw" 2>&1 || rc=$?
    # -q still prints progress lines ("SET: rps=...") ended by a carriage return: keep only the
    # final lines.
    tr '\r' '\n' <"$WORK/raw" | grep -v 'rps=' | grep -v '^[[:space:]]*$' >"$out"
    echo "--- redis-benchmark $label (exit status $rc)"
    cat "$out"
    problems=()
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        problems+=("redis-benchmark did not finish within ${RUN_TIMEOUT}s")
    elif [[ $rc -ne 0 ]]; then
        problems+=("redis-benchmark exited with status $rc")
    fi
    if grep -qi 'error' "$out"; then
        problems+=("errors reported: $(grep -i 'error' "$out" | head -5 | tr '\n' ' ')")
    fi
    for test in "${EXPECTED[@]}"; do
        if ! grep -Eq "^${test}( \([0-9]+ keys\))?: [0-9.]+ requests per second" "$out"; then
            problems+=("no result for $test")
        fi
    done
    if [[ ${#problems[@]} -gt 0 ]]; then
        status=1
        for p in "${problems[@]}"; do echo "benchmark_check: FAIL ($label): $p"; done
    else
        echo "benchmark_check: OK ($label): all ${#EXPECTED[@]} tests ran without errors"
    fi
done
exit $status
