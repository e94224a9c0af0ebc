#!/usr/bin/env bash
# Where a write's time goes: CPU per SET (redis-benchmark -c 50 -P 1) of a three-node raftis
# cluster and of redis-server with appendfsync always, measured in the same run, plus a
# system-wide perf profile of the raftis run grouped by thread kind, and the system calls per SET.
#
# usage: bench/profile.sh [--no-build] [--no-perf] [-n REQUESTS]
# Prints a small report on stdout. Needs redis-server, redis-benchmark, redis-cli; perf for the
# profile (skipped with a note when missing or with --no-perf).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=1
PERF=1
N=200000
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --no-perf) PERF=0 ;;
    -n) N=$2; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "profile.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
BIN=${RAFTIS_BIN:-$ROOT/target/release/raftis}
[ "$BUILD" = 0 ] || (cd "$ROOT" && cargo build --release -p raftis --bin raftis >&2)
command -v perf >/dev/null 2>&1 || PERF=0

TMP=$(mktemp -d /tmp/raftis-profile.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

ports=($(python3 "$HERE/lib/ports.py" 4))
PEERS="1@127.0.0.1:${ports[0]},2@127.0.0.1:${ports[1]},3@127.0.0.1:${ports[2]}"
for i in 1 2 3; do
  "$BIN" server --id "$i" --port "${ports[$((i - 1))]}" --dir "$TMP/n$i" --peers "$PEERS" >"$TMP/n$i.log" 2>&1 &
  PIDS+=($!)
done
redis-server --port "${ports[3]}" --save '' --appendonly yes --appendfsync always --dir "$TMP" \
  --daemonize no >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")

leader=
for _ in $(seq 100); do
  for i in 0 1 2; do
    [ "$(redis-cli -p "${ports[$i]}" role 2>/dev/null | head -1)" = master ] && leader=${ports[$i]}
  done
  [ -n "$leader" ] && break
  sleep 0.2
done
[ -n "$leader" ] || { echo "profile.sh: no raftis leader elected" >&2; exit 1; }

calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
cpu_ms() { # total user+system CPU of the given pids, in ms
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo $((t * 1000 / $(getconf CLK_TCK)))
}
syscalls() { # system-wide count of each listed syscall while "$@" runs
  perf stat -x, -e syscalls:sys_enter_futex,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_pwrite64,syscalls:sys_enter_sync_file_range,syscalls:sys_enter_fdatasync,syscalls:sys_enter_write,syscalls:sys_enter_read,context-switches -a -- "$@" 2>&1 >/dev/null |
    awk -F, '$1 ~ /^[0-9]+$/ {print $3, $1}'
}
measure() { # name port pids...: one run; CPU per SET of all pids together and of each
  local name=$1 port=$2; shift 2
  local before=() after=() t0 t1 rps i total=0
  for p in "$@"; do before+=("$(cpu_ms "$p")"); done
  t0=$(date +%s%N)
  rps=$(redis-benchmark -p "$port" -t set -n "$N" -c 50 -P 1 -r 100000 --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
  t1=$(date +%s%N)
  for p in "$@"; do after+=("$(cpu_ms "$p")"); done
  for i in "${!before[@]}"; do total=$((total + ${after[$i]} - ${before[$i]})); done
  printf '%-26s %9s SET/s  %6.1f us CPU per SET  (%4.2f cores busy)\n' "$name" "$rps" \
    "$(calc "$total * 1000 / $N")" "$(calc "$total * 1000000 / ($t1 - $t0)")"
  if [ $# -gt 1 ]; then
    for i in "${!before[@]}"; do
      printf '  node %d%-9s %6.1f us\n' "$((i + 1))" "$([ "${ports[$i]}" = "$leader" ] && echo ' (leader)')" \
        "$(calc "(${after[$i]} - ${before[$i]}) * 1000 / $N")"
    done
  fi
}

echo "# CPU per write: redis-benchmark -t set -n $N -c 50 -P 1 -r 100000 ($(nproc) CPUs, $(date -u '+%F %T') UTC)"
measure "redis-server fsync always" "${ports[3]}" "$REDIS_PID"
measure "raftis, 3 nodes" "$leader" "${PIDS[0]}" "${PIDS[1]}" "${PIDS[2]}"
entries0=$(redis-cli -p "$leader" info raft | tr -d '\r' | awk -F: '$1=="raft_last_log_index"{print $2}')
redis-benchmark -p "$leader" -t set -n "$N" -c 50 -P 1 -r 100000 -q >/dev/null 2>&1
entries1=$(redis-cli -p "$leader" info raft | tr -d '\r' | awk -F: '$1=="raft_last_log_index"{print $2}')
echo "log entries per $N SETs: $((entries1 - entries0)) ($(calc "$N / ($entries1 - $entries0)") writes per entry)"

if [ "$PERF" = 1 ]; then
  echo
  echo "# system calls per SET, whole machine, raftis cluster (perf stat)"
  redis-benchmark -p "$leader" -t set -n $((N * 4)) -c 50 -P 1 -r 100000 -q >/dev/null 2>&1 &
  bench=$!
  sleep 1
  c0=$(redis-cli -p "$leader" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_set:calls=\([0-9]*\).*/\1/p')
  counts=$(syscalls sleep 4)
  c1=$(redis-cli -p "$leader" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_set:calls=\([0-9]*\).*/\1/p')
  sets=$((c1 - c0))
  echo "  ($sets SETs in 4 s)"
  echo "$counts" | while read -r ev n; do printf '  %-24s %6.2f per SET  (%s)\n' "${ev#syscalls:sys_enter_}" "$(calc "$n / $sets")" "$n"; done
  echo
  echo "# where the CPU goes (perf record -a, 4 s of the same load): share of samples by thread kind"
  perf record -a -o "$TMP/perf.data" -- sleep 4 >/dev/null 2>&1
  kill "$bench" 2>/dev/null || true
  perf report -i "$TMP/perf.data" --no-children --sort comm,dso --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ {
      share = $1; sub("%", "", share); comm = $2; dso = $3
      if (comm ~ /^sled-io/) comm = "sled-io-* (sled I/O pool)"
      kind = (dso ~ /kernel/) ? "kernel" : "user"
      total[comm " [" kind "]"] += share
    }
    END { for (k in total) printf "  %6.2f%%  %s\n", total[k], k }' | sort -rn | head -14
fi
