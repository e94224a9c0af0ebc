#!/usr/bin/env bash
# Memory of the collection types: each dataset loaded into a fresh redis-server and a fresh
# three-node raftis cluster (through the leader, with redis-cli --pipe), then the resident memory
# of redis-server and of every raftis node once all nodes applied it. Prints one line per dataset
# with the ratio of the largest raftis node's RSS to redis-server's (issue 11's target: <= 1.5).
#
# usage: bench/memory.sh [--quick] [DATASET...]   (datasets: big-hash big-set big-zset big-list small-hash strings)
# Environment: RAFTIS_BIN (default target/release/raftis). --quick loads a tenth of the data.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${RAFTIS_BIN:-target/release/raftis}
SCALE_BIG=1000000 SCALE_SMALL=100000
if [ "${1:-}" = --quick ]; then SCALE_BIG=100000 SCALE_SMALL=10000; shift; fi
DATASETS=("$@")
[ ${#DATASETS[@]} -gt 0 ] || DATASETS=(big-hash big-set big-zset big-list small-hash strings)
W=$(mktemp -d /tmp/raftis-memory.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
log() { printf '[memory %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
free_ports() { python3 bench/lib/ports.py "$1" "$W/ports"; }
wait_ping() { for _ in $(seq 300); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done; return 1; }
info() { redis-cli -p "$1" info raft 2>/dev/null | tr -d '\r' | awk -F: -v f="$2" '$1==f {print $2}'; }

load() { # port dataset scale
  local n
  python3 bench/lib/gen_types.py "$2" "$3" 2>"$W/count" | redis-cli -p "$1" --pipe >"$W/pipe.out" 2>&1
  n=$(cat "$W/count")
  grep -q "errors: 0, replies: $n" "$W/pipe.out" || { log "loading $2 into port $1 failed: $(tail -n 2 "$W/pipe.out")"; exit 1; }
}

printf '%-11s %9s %12s %12s %12s %12s %7s\n' dataset scale redis_kb raftis1_kb raftis2_kb raftis3_kb ratio
for ds in "${DATASETS[@]}"; do
  scale=$SCALE_BIG; [ "$ds" = small-hash ] && scale=$SCALE_SMALL
  # redis-server
  read -r rp < <(free_ports 1)
  redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$W" \
    --logfile "$W/redis.log" >/dev/null 2>&1 &
  rpid=$!; PIDS+=("$rpid")
  wait_ping "$rp" || { log "redis-server did not start"; exit 1; }
  load "$rp" "$ds" "$scale"
  sleep 1
  redis_kb=$(rss_kb "$rpid")
  kill "$rpid"; wait "$rpid" 2>/dev/null || true
  # a three-node raftis cluster
  mapfile -t ports < <(free_ports 6)
  peers="1@127.0.0.1:${ports[0]}@${ports[3]},2@127.0.0.1:${ports[1]}@${ports[4]},3@127.0.0.1:${ports[2]}@${ports[5]}"
  npids=()
  for i in 1 2 3; do
    "$BIN" server --id "$i" --port "${ports[$((i - 1))]}" --dir "$W/$ds-$i" --peers "$peers" >>"$W/$ds-node$i.log" 2>&1 &
    npids+=($!); PIDS+=($!)
  done
  for i in 0 1 2; do wait_ping "${ports[$i]}" || { log "raftis node did not start"; exit 1; }; done
  leader=
  for _ in $(seq 100); do
    for i in 0 1 2; do [ "$(info "${ports[$i]}" raft_role)" = leader ] && leader=${ports[$i]}; done
    [ -n "$leader" ] && break; sleep 0.2
  done
  [ -n "$leader" ] || { log "no raftis leader"; exit 1; }
  load "$leader" "$ds" "$scale"
  target=$(info "$leader" raft_commit_index)
  for i in 0 1 2; do
    for _ in $(seq 600); do
      a=$(info "${ports[$i]}" raft_applied_index); [ -n "$a" ] && [ "$a" -ge "$target" ] && break; sleep 0.2
    done
  done
  sleep "${MEMORY_SETTLE:-2}"
  kbs=()
  for p in "${npids[@]}"; do kbs+=("$(rss_kb "$p")"); done
  max=$(printf '%s\n' "${kbs[@]}" | sort -n | tail -n 1)
  printf '%-11s %9s %12s %12s %12s %12s %7.2f\n' "$ds" "$scale" "$redis_kb" "${kbs[0]}" "${kbs[1]}" "${kbs[2]}" \
    "$(python3 -c "print($max / $redis_kb)")"
  for p in "${npids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
done
