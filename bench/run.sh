#!/usr/bin/env bash
# raftis benchmark: raftis (3 nodes) against redis-server (no persistence and appendfsync always)
# and a three-node etcd, on this machine, in one run. See bench/README.md.
#
# usage: bench/run.sh [--quick] [--no-build] [--out DIR] [--keep]
#   --quick     smoke profile (small -n, 10k keys, 3 failover trials; under ~2 minutes)
#   --no-build  use the existing target/release/raftis (default: cargo build --release first)
#   --out DIR   results directory (default: bench/results/<UTC stamp>-<profile>)
#   --keep      keep the temporary directory (data dirs, logs) instead of deleting it
# Environment: RAFTIS_BIN (binary to test), BENCH_N1 / BENCH_N16 (requests per redis-benchmark
# test at P=1 / P=16), BENCH_REPS, BENCH_KEYS (memory and recovery keys), BENCH_FAILOVERS,
# BENCH_WRK_SECONDS, BENCH_PUBSUB_MSGS / BENCH_PUBSUB_RATE (pub/sub latency: messages per run, rate/s),
# BENCH_APP_JOBS (RQ and Celery jobs per run).
# Exit status: 0 when every measurement ran (missed targets are reported, not failures); non-zero
# when a benchmark could not run, returned errors, lost pub/sub messages, or a process crashed, and
# when a raftis measurement outside the failover trials saw a term change, an error reply, an election
# or lost quorum in a node log, a node not answering INFO, or (throughput) a max latency of 1 s or more.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
LIB=$HERE/lib

PROFILE=full
BUILD=1
OUT=
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) PROFILE=quick ;;
    --no-build) BUILD=0 ;;
    --out) OUT=$2; shift ;;
    --out=*) OUT=${1#--out=} ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$PROFILE" = quick ]; then
  N1=${BENCH_N1:-2000}; N16=${BENCH_N16:-10000}; REPS=${BENCH_REPS:-3}
  KEYS=${BENCH_KEYS:-10000}; FAILOVERS=${BENCH_FAILOVERS:-3}; WRK_S=${BENCH_WRK_SECONDS:-2}
  RB_TIMEOUT=120; CATCHUP_TIMEOUT=60; LOAD_TIMEOUT=120; LAT_MSGS=${BENCH_PUBSUB_MSGS:-2000}
  APP_JOBS=${BENCH_APP_JOBS:-100}
else
  N1=${BENCH_N1:-100000}; N16=${BENCH_N16:-400000}; REPS=${BENCH_REPS:-3}
  KEYS=${BENCH_KEYS:-1000000}; FAILOVERS=${BENCH_FAILOVERS:-20}; WRK_S=${BENCH_WRK_SECONDS:-10}
  RB_TIMEOUT=900; CATCHUP_TIMEOUT=300; LOAD_TIMEOUT=900; LAT_MSGS=${BENCH_PUBSUB_MSGS:-20000}
  APP_JOBS=${BENCH_APP_JOBS:-1000}
fi
LAT_RATE=${BENCH_PUBSUB_RATE:-2000}
CLIENTS=50
KEYSPACE=100000
VALUE_BYTES=100

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "FAILED: $*"
  [ -z "${RAW:-}" ] || [ ! -d "$RAW" ] || echo "run stopped early: $*" >>"$RAW/problems.txt"
  exit 1
}

for tool in redis-server redis-cli redis-benchmark etcd etcdctl wrk python3 timeout; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "$tool not found (apt-get install -y redis-server redis-tools etcd-server etcd-client wrk python3)"
done

# ------------------------------------------------------------------ processes and cleanup
W=$(mktemp -d "${TMPDIR:-/tmp}/raftis-bench.XXXXXX")
RAW=$W/raw
mkdir -p "$RAW"
: >"$RAW/problems.txt"
: >"$W/ports"
declare -A PID_OF=()   # name -> pid of every process this script started and has not stopped

stop_pid() { # pid [signal]: signal it, wait up to 10 s, then SIGKILL
  local pid=$1 sig=${2:-TERM} i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -"$sig" "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid" 2>/dev/null || true; }
  wait "$pid" 2>/dev/null || true
}
stop_name() { local n=$1; [ -n "${PID_OF[$n]:-}" ] && stop_pid "${PID_OF[$n]}" "${2:-TERM}"; unset "PID_OF[$n]"; }
cleanup() {
  local rc=$? n
  trap - EXIT INT TERM ERR
  [ -z "${WATCH:-}" ] || watch_end || true  # stopped in a watched window: record what INFO still shows
  for n in "${!PID_OF[@]}"; do kill -TERM "${PID_OF[$n]}" 2>/dev/null || true; done
  for n in "${!PID_OF[@]}"; do stop_pid "${PID_OF[$n]}"; done
  if [ -n "${REPORT_PENDING:-}" ]; then  # stopped early: report what was measured
    if [ -n "${RDIR:-}" ]; then
      mkdir -p "$RAW/logs"
      for n in 1 2 3; do sed 's/\x1b\[[0-9;]*m//g' "$RDIR/node$n.log" >"$RAW/logs/$RAFTIS_TAG-node$n.log" 2>/dev/null || true; done
    fi
    echo "note=PARTIAL RUN: stopped early (exit $rc); only the measurements taken before are shown." >>"$RAW/meta.txt"
    echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/meta.txt"
    mkdir -p "$OUT" && rm -rf "$OUT/raw" && cp -r "$RAW" "$OUT/raw" &&
      python3 "$LIB/report.py" "$OUT/raw" "$OUT" >/dev/null 2>&1 && log "partial report: $OUT/report.md"
  fi
  if [ "$KEEP" = 1 ]; then
    log "temporary directory kept: $W"
  else
    rm -rf "$W"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "unexpected failure at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# Long commands run in the background and are waited for, so that a SIGTERM/SIGINT reaches the
# EXIT trap at once (bash runs traps only between foreground commands) and the trap stops them.
fg() {
  local p rc=0
  "$@" &
  p=$!
  PID_OF[fg]=$p
  wait "$p" || rc=$?
  unset "PID_OF[fg]"
  return "$rc"
}
free_ports() { python3 "$LIB/ports.py" "$1" "$W/ports" | tee -a "$W/ports"; }
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
secs() { python3 -c "print('%.2f' % ($1 / 1e9))"; }
problem() { log "PROBLEM: $*"; echo "$*" >>"$RAW/problems.txt"; }

wait_ping() { # port timeout_s
  local port=$1 deadline=$(( $(date +%s) + $2 ))
  until [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# ------------------------------------------------------------------ build and machine header
if [ "$BUILD" = 1 ] && [ -z "${RAFTIS_BIN:-}" ]; then
  log "cargo build --release"
  (cd "$ROOT" && cargo build --release) || die "cargo build --release"
fi
SRC_BIN=${RAFTIS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/raftis}
[ -x "$SRC_BIN" ] || die "no raftis binary at $SRC_BIN (build it, or drop --no-build)"
# A private copy: others may rebuild target/ while this runs, and restarts must run the same code.
BIN=$W/raftis
cp "$SRC_BIN" "$BIN"

STAMP=$(date -u +%Y%m%d-%H%M%S)
[ -n "$OUT" ] || OUT=$HERE/results/$STAMP-$PROFILE
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  COMMIT="$COMMIT (with uncommitted changes)"
fi
{
  echo "profile=$PROFILE"
  echo "date=$(date -u '+%Y-%m-%d %H:%M:%S')"
  echo "host=$(uname -n)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "nproc=$(nproc)"
  echo "mem_total=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel=$(uname -sr)"
  echo "commit=$COMMIT"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "redis_version=$(redis-server --version | grep -o 'v=[^ ]*' | cut -d= -f2)"
  echo "etcd_version=$(etcd --version 2>/dev/null | awk '/etcd Version/ {print $3}')"
  echo "wrk_version=$( (wrk --version 2>&1 || true) | awk 'NR==1 {print $2}')"
  echo "raftis_binary=$SRC_BIN, $(date -u -r "$SRC_BIN" '+built %Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$BIN" | cut -c1-12)"
  echo "workload=redis-benchmark -c $CLIENTS -r $KEYSPACE (SET, GET, INCR, MSET; HSET, HGET, SADD, ZADD, ZRANGEBYSCORE; LPUSH, LRANGE, RPOP, PUBLISH with one subscriber; EVALSHA of a GET+SET script; SET and GET through a raftis follower in proxy mode), -n $N1 at P=1 and $N16 at P=16, $REPS runs each (interleaved); wrk -t2 -c$CLIENTS -d${WRK_S}s, $REPS runs; pub/sub latency $LAT_MSGS messages at $LAT_RATE/s, $REPS runs; $KEYS keys of $VALUE_BYTES bytes for memory and recovery; $FAILOVERS failover trials"
  echo "reps=$REPS"
  echo "failovers=$FAILOVERS"
  if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" 'BEGIN {exit !(l > n / 4)}'; then
    echo "note=The machine was busy when the run started (load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs, before any benchmark process): other work shared the CPUs and the figures are noisy."
  fi
  [ -z "${BENCH_NOTE:-}" ] || echo "note=$BENCH_NOTE"
} >"$RAW/meta.txt"
REPORT_PENDING=1
log "profile $PROFILE; temporary directory $W; results to $OUT"

# ------------------------------------------------------------------ redis-server
start_redis() { # name port dir [extra args...]
  local name=$1 port=$2 dir=$3; shift 3
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --protected-mode no \
    --daemonize no --logfile "$dir/redis.log" "$@" >/dev/null 2>&1 &
  PID_OF[$name]=$!
  wait_ping "$port" 20 || die "$name did not answer PING on port $port (log: $dir/redis.log)"
}

# ------------------------------------------------------------------ raftis cluster
declare -a RPORT=() RBUS=() RHTTP=()
RDIR=
PEERS=
RAFTIS_TAG=
start_node() { # i
  local i=$1
  "$BIN" server --id "$i" --port "${RPORT[$i]}" --dir "$RDIR/$i" --peers "$PEERS" --http-port "${RHTTP[$i]}" \
    >>"$RDIR/node$i.log" 2>&1 &
  PID_OF[raftis$i]=$!
}
alive() { [ -n "${PID_OF[raftis$1]:-}" ] && kill -0 "${PID_OF[raftis$1]}" 2>/dev/null; }
rinfo() { # port field: a field of INFO raft, empty when unavailable
  { timeout 2 redis-cli -h 127.0.0.1 -p "$1" info raft 2>/dev/null || true; } | tr -d '\r' | awk -F: -v f="$2" '$1==f {print $2}'
}
leader() { # prints the node id (1-3) of the leader that alive nodes agree on, or fails
  local i role lid first=
  for i in 1 2 3; do
    alive "$i" || continue
    role=$(rinfo "${RPORT[$i]}" raft_role)
    lid=$(rinfo "${RPORT[$i]}" raft_leader_id)
    [ -n "$lid" ] || return 1
    [ -z "$first" ] && first=$lid
    [ "$lid" = "$first" ] || return 1
  done
  [ -n "$first" ] && alive "$first" && [ "$(rinfo "${RPORT[$first]}" raft_role)" = leader ] || return 1
  echo "$first"
}
wait_settled() { # timeout_s: leader agreed on, every alive node applied up to the leader; sets L to it
  local deadline=$(( $(date +%s) + $1 )) l i la ok
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if l=$(leader); then
      la=$(rinfo "${RPORT[$l]}" raft_applied_index); ok=1
      for i in 1 2 3; do
        alive "$i" || continue
        [ "$(rinfo "${RPORT[$i]}" raft_applied_index)" = "$la" ] || ok=0
      done
      [ "$ok" = 1 ] && [ -n "$la" ] && { L=$l; return 0; }
    fi
    sleep 0.2
  done
  return 1
}
check_nodes() { # every started node still runs
  local i
  for i in 1 2 3; do
    if [ -n "${PID_OF[raftis$i]:-}" ] && ! kill -0 "${PID_OF[raftis$i]}" 2>/dev/null; then
      if tail -n 20 "$RDIR/node$i.log" | grep -q 'shutting down'; then
        problem "raftis node $i ($RAFTIS_TAG cluster) was stopped during $1 by a SIGTERM/SIGINT that this script did not send (its log shows a clean shutdown): something else on the machine stopped it; rerun"
      else
        problem "raftis node $i ($RAFTIS_TAG cluster) exited unexpectedly during $1; last log lines: $(tail -n 3 "$RDIR/node$i.log" | sed 's/\x1b\[[0-9;]*m//g' | tr '\n' ' ' | cut -c1-400)"
      fi
      return 1
    fi
  done
}
start_cluster() { # tag
  RAFTIS_TAG=$1
  RDIR=$W/raftis-$1
  mkdir -p "$RDIR"
  local ports i
  mapfile -t ports < <(free_ports 9)
  [ "${#ports[@]}" = 9 ] || die "no free ports"
  PEERS=
  for i in 1 2 3; do
    RPORT[$i]=${ports[$((i - 1))]}
    RBUS[$i]=${ports[$((i + 2))]}
    RHTTP[$i]=${ports[$((i + 5))]}
    PEERS+="${PEERS:+,}$i@127.0.0.1:${RPORT[$i]}@${RBUS[$i]}"
  done
  for i in 1 2 3; do start_node "$i"; done
  for i in 1 2 3; do wait_ping "${RPORT[$i]}" 30 || { check_nodes startup || true; die "raftis node $i did not answer PING"; }; done
  wait_settled 30 || die "raftis cluster ($1) elected no leader within 30 s"
}
stop_cluster() {
  local i
  for i in 1 2 3; do stop_name "raftis$i"; done
  mkdir -p "$RAW/logs"
  for i in 1 2 3; do sed 's/\x1b\[[0-9;]*m//g' "$RDIR/node$i.log" >"$RAW/logs/$RAFTIS_TAG-node$i.log" 2>/dev/null || true; done
  for i in 1 2 3; do
    if grep -qiE 'panicked|stack backtrace' "$RDIR/node$i.log" 2>/dev/null; then
      problem "raftis node $i ($RAFTIS_TAG cluster) logged a panic or error backtrace: $(grep -m1 -iE 'panicked|^Error' "$RDIR/node$i.log" | cut -c1-300)"
    fi
  done
}

# ------------------------------------------------------------------ watching a measured window
# Around every raftis measurement (each redis-benchmark test, each failover trial, each load):
# INFO raft and INFO errorstats of every node before and after, the node log lines about elections,
# quorum and panics written meanwhile, and the load generator's error output, in
# raw/watch/<name>.txt; bench/lib/watch.py turns them into problems (a term change, an error reply,
# a max latency of 1 s or more, an election or panic in a node log, a node not answering INFO).
WATCH=
now_iso() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }
raft_state() { # prefix: "<prefix> <node> <ok|stopped|noanswer> <term> <leader> <role> <CODE=N,...|->" per node
  local i info t l r e
  for i in 1 2 3; do
    if ! alive "$i"; then echo "$1 $i stopped - - - -"; continue; fi
    info=$({ timeout 3 redis-cli -h 127.0.0.1 -p "${RPORT[$i]}" info raft errorstats 2>/dev/null || true; } | tr -d '\r')
    t=$(awk -F: '$1=="raft_term" {print $2}' <<<"$info")
    if [ -z "$t" ]; then echo "$1 $i noanswer - - - -"; continue; fi
    l=$(awk -F: '$1=="raft_leader_id" {print $2}' <<<"$info")
    r=$(awk -F: '$1=="raft_role" {print $2}' <<<"$info")
    e=$(sed -n 's/^errorstat_\([^:]*\):count=\([0-9]*\).*/\1=\2/p' <<<"$info" | paste -sd, -)
    echo "$1 $i ok $t ${l:--} ${r:--} ${e:--}"
  done
}
watch_begin() { # name key=value...: INFO of every node and where each node's log stands
  local i
  mkdir -p "$RAW/watch"
  WATCH=$RAW/watch/$1.txt
  shift
  {
    printf '%s\n' "$@"
    echo "cluster=$RAFTIS_TAG"
    echo "start=$(now_iso)"
    raft_state before
    for i in 1 2 3; do echo "log $i $RDIR/node$i.log $(stat -c %s "$RDIR/node$i.log" 2>/dev/null || echo 0)"; done
  } >"$WATCH"
}
watch_end() { # [rb|pipe OUTPUT...]: INFO again, then the window's problems (bench/lib/watch.py)
  local w=$WATCH line
  [ -n "$w" ] || return 0
  WATCH=
  { echo "end=$(now_iso)"; raft_state after; } >>"$w"
  while IFS= read -r line; do
    case "$line" in
      problem\ *) problem "${line#problem }" ;;
      summary\ *) log "  ${line#summary }" ;;
    esac
  done < <(python3 "$LIB/watch.py" finish "$RAW" "$w" "$@" 2>&1 || echo "problem bench/lib/watch.py failed on $w")
}

# ------------------------------------------------------------------ etcd
start_etcd() {
  local ports i cl=
  mapfile -t ports < <(free_ports 6)
  [ "${#ports[@]}" = 6 ] || die "no free ports"
  for i in 1 2 3; do
    ECLIENT[$i]=${ports[$((i - 1))]}
    EPEER[$i]=${ports[$((i + 2))]}
    cl+="${cl:+,}e$i=http://127.0.0.1:${EPEER[$i]}"
  done
  for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$W/etcd/e$i" \
      --listen-client-urls "http://127.0.0.1:${ECLIENT[$i]}" --advertise-client-urls "http://127.0.0.1:${ECLIENT[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${EPEER[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${EPEER[$i]}" \
      --initial-cluster "$cl" --initial-cluster-state new --log-level error >"$W/etcd-e$i.log" 2>&1 &
    PID_OF[etcd$i]=$!
  done
  EPS="127.0.0.1:${ECLIENT[1]},127.0.0.1:${ECLIENT[2]},127.0.0.1:${ECLIENT[3]}"
  for i in $(seq 150); do
    timeout 3 etcdctl --endpoints="127.0.0.1:${ECLIENT[1]}" put foo bar >/dev/null 2>&1 && break
    [ "$i" = 150 ] && die "etcd did not accept a put within 30 s (logs: $W/etcd-e*.log)"
    sleep 0.2
  done
  ELEADER=$(timeout 10 etcdctl --endpoints="$EPS" endpoint status -w simple | awk -F', ' '$5=="true" {print $1}')
  [ -n "$ELEADER" ] || die "no etcd leader found"
  cat >"$W/put.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"key":"Zm9v","value":"YmFy"}'
wrk.headers["Content-Type"] = "application/json"
LUA
  cat >"$W/get.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"key":"Zm9v"}'
wrk.headers["Content-Type"] = "application/json"
LUA
}
declare -a ECLIENT=() EPEER=()

# ------------------------------------------------------------------ benchmark drivers
RB_FAILED=0
# The string tests first, unchanged (their figures stay comparable with earlier runs), then the hash,
# set and sorted-set tests, then the list and pub/sub tests (appended last, so that the rows before
# them run as they did). A test named in RB_CMD has no redis-benchmark -t name: its command line is
# given instead (__rand_int__ drawn from -r $KEYSPACE). HGET, ZRANGEBYSCORE and LRANGE read the single
# key (myhash, myzset, mylist) that the HSET, ZADD and LPUSH tests before them filled, as GET reads what
# SET wrote; RPOP pops what LPUSH pushed. PUBLISH runs with one subscriber connected (RB_SUBSCRIBE):
# on the same redis-server, on a raftis follower (every node delivers each message to its own
# subscribers), so that delivery is part of what it measures.
# PROXYSET and PROXYGET (appended last) are SET and GET sent to a raftis follower, which relays
# redis-benchmark's sessions to the leader (follower proxy mode); against a redis-server they are
# plain SET and GET. The report sets them against raftis's direct SET and GET.
RB_TESTS=(set get incr mset hset hget sadd zadd zrangebyscore lpush lrange rpop publish evalsha proxyset proxyget)
# EVALSHA: a small read-modify-write script (GET, SET of the value plus one), SCRIPT LOADed on the
# target (raftis: on the leader, which replicates its script cache) before the test.
BENCH_SCRIPT="local v = tonumber(redis.call('GET', KEYS[1]) or '0') redis.call('SET', KEYS[1], v + 1) return v + 1"
BENCH_SHA=374f05abca67a7af169fb70eb4d6e5b973b81624
declare -A RB_CMD=(
  [hget]="HGET myhash element:__rand_int__"
  [zrangebyscore]="ZRANGEBYSCORE myzset 0 __rand_int__ LIMIT 0 10"
  [lrange]="LRANGE mylist 0 9"
  [publish]="PUBLISH bench:ch __rand_int__"
  [evalsha]="EVALSHA $BENCH_SHA 1 counter:__rand_int__"
  [proxyset]="SET key:__rand_int__ xxx"
  [proxyget]="GET key:__rand_int__"
)
declare -A RB_VIA_FOLLOWER=([proxyset]=1 [proxyget]=1)  # raftis: sent to a follower
declare -A RB_SUBSCRIBE=([publish]=bench:ch)  # test -> channel a background subscriber listens to
numsub() { # port channel: the node's PUBSUB NUMSUB count for the channel, empty when unanswered
  { timeout 2 redis-cli -h 127.0.0.1 -p "$1" pubsub numsub "$2" 2>/dev/null || true; } | tr -d '\r' | sed -n 2p
}
sub_start() { # port channel: a redis-cli SUBSCRIBE in the background (PID_OF[subscriber]), until the
  # node counts exactly one subscriber to the channel (10 s at most)
  local port=$1 ch=$2 i
  redis-cli -h 127.0.0.1 -p "$port" SUBSCRIBE "$ch" >/dev/null 2>"$W/subscriber.err" &
  PID_OF[subscriber]=$!
  for i in $(seq 100); do
    [ "$(numsub "$port" "$ch")" = 1 ] && return 0
    kill -0 "${PID_OF[subscriber]}" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}
sub_end() { # port channel what: the subscriber must still be connected; then it is stopped
  local port=$1 ch=$2 n
  n=$(numsub "$port" "$ch")
  if ! kill -0 "${PID_OF[subscriber]}" 2>/dev/null || [ "$n" != 1 ]; then
    problem "$3: the subscriber to $ch on port $port was disconnected during the test (redis-cli $(kill -0 "${PID_OF[subscriber]}" 2>/dev/null && echo running || echo exited), PUBSUB NUMSUB ${n:-unanswered}): $(tr '\n' ' ' <"$W/subscriber.err" | cut -c1-200)"
    RB_FAILED=1
  fi
  stop_name subscriber
}
run_rb() { # target port P rep: one redis-benchmark per test, in the order of RB_TESTS;
  # raftis (port "-"): the leader's port, found before each test, and the test watched (INFO, logs)
  local target=$1 port=$2 p=$3 rep=$4 n out t T base rc failed=0 what ch sport
  n=$N1; [ "$p" = 16 ] && n=$N16
  out=$RAW/rb/$target/P$p
  mkdir -p "$out"
  log "redis-benchmark $target P=$p run $rep/$REPS (-n $n; ${RB_TESTS[*]})"
  for t in "${RB_TESTS[@]}"; do
    T=${t^^}
    base=$out/rep$rep-$T
    if [ "$target" = raftis ]; then
      wait_settled 60 || { check_nodes "benchmark" || true; die "raftis: no settled leader before $T P=$p run $rep"; }
      port=${RPORT[$L]}
      [ -z "${RB_VIA_FOLLOWER[$t]:-}" ] || port=${RPORT[$(( L % 3 + 1 ))]}
    fi
    ch=${RB_SUBSCRIBE[$t]:-}
    if [ -n "$ch" ]; then
      sport=$port  # raftis: a follower's port
      [ "$target" != raftis ] || sport=${RPORT[$(( L % 3 + 1 ))]}
      if ! sub_start "$sport" "$ch"; then
        problem "$target $T P=$p run $rep: the subscriber to $ch on port $sport was not counted by PUBSUB NUMSUB within 10 s ($(numsub "$sport" "$ch" || true)); test skipped"
        stop_name subscriber
        RB_FAILED=1
        failed=1
        continue
      fi
    fi
    if [ "$target" = raftis ]; then
      watch_begin "throughput-$T-P$p-rep$rep" phase=throughput "label=raftis $T P=$p run $rep" "test=$T" "p=$p" \
        "rep=$rep" "csv=rb/raftis/P$p/rep$rep-$T.csv" "leader_port=$port" ${ch:+"subscriber_port=$sport"}
    fi
    if [ "$t" = evalsha ] && [ "$(redis-cli -h 127.0.0.1 -p "$port" SCRIPT LOAD "$BENCH_SCRIPT" 2>&1)" != "$BENCH_SHA" ]; then
      problem "$target $T P=$p run $rep: SCRIPT LOAD of the benchmark script failed on port $port; test skipped"
      RB_FAILED=1
      failed=1
      continue
    fi
    rc=0
    if [ -n "${RB_CMD[$t]:-}" ]; then read -ra what <<<"${RB_CMD[$t]}"; else what=(-t "$t"); fi
    fg timeout "$RB_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" \
      -c "$CLIENTS" -P "$p" -r "$KEYSPACE" --csv "${what[@]}" >"$base.csv" 2>"$base.err" || rc=$?
    [ "$target" != raftis ] || watch_end rb "$base.err" "$base.csv"
    [ -z "$ch" ] || sub_end "$sport" "$ch" "$target $T P=$p run $rep"
    if [ "$rc" != 0 ]; then
      problem "redis-benchmark against $target ($T P=$p, run $rep) failed (exit $rc): $(tr '\n' ' ' <"$base.err" | cut -c1-300)"
      RB_FAILED=1
      rm -f "$base.csv"
      failed=1
    elif [ "$(grep -c '^"' "$base.csv" || true)" -lt 2 ]; then
      problem "redis-benchmark against $target ($T P=$p, run $rep) printed no results"
      RB_FAILED=1
      failed=1
    fi
    if [ "$target" = raftis ]; then check_nodes "redis-benchmark $T P=$p run $rep" || die "raftis node crashed"; fi
  done
  return "$failed"
}
run_wrk() { # op rep
  local op=$1 rep=$2 path out
  path=/v3/kv/put; [ "$op" = get ] && path=/v3/kv/range
  out=$RAW/wrk/$op
  mkdir -p "$out"
  log "wrk etcd $op run $rep/$REPS (${WRK_S}s)"
  if ! fg timeout $((WRK_S + 60)) wrk -t2 -c"$CLIENTS" -d"${WRK_S}s" --latency -s "$W/$op.lua" \
      "http://$ELEADER$path" >"$out/rep$rep.txt" 2>&1 || ! grep -q 'Requests/sec' "$out/rep$rep.txt"; then
    problem "wrk against etcd ($op, run $rep) failed: $(tail -n 3 "$out/rep$rep.txt" | tr '\n' ' ')"
    RB_FAILED=1
    return 1
  fi
  if grep -q 'Non-2xx' "$out/rep$rep.txt"; then
    problem "etcd answered non-2xx responses ($op, run $rep): $(grep 'Non-2xx' "$out/rep$rep.txt")"
    RB_FAILED=1
  fi
}
run_lat() { # target rep: publish-to-receive latency (bench/lib/pubsub_latency.py), $LAT_MSGS messages
  # at $LAT_RATE/s; redis: publisher and subscriber on the same server; raftis: publisher on the leader,
  # subscriber on a follower (the message goes through the log; the follower delivers it when it applies it)
  local target=$1 rep=$2 pub sub out rc=0 f line
  out=$RAW/pubsub/$target
  mkdir -p "$out"
  if [ "$target" = raftis ]; then
    wait_settled 60 || { check_nodes "pub/sub latency" || true; die "raftis: no settled leader before pub/sub latency run $rep"; }
    f=$(( L % 3 + 1 ))
    pub=${RPORT[$L]}; sub=${RPORT[$f]}
    watch_begin "pubsub-latency-rep$rep" phase=pubsub-latency \
      "label=raftis pub/sub latency run $rep (publisher on leader node $L, subscriber on follower node $f)" "rep=$rep"
  else
    pub=$P_REDIS; sub=$P_REDIS
  fi
  log "pub/sub latency $target run $rep/$REPS ($LAT_MSGS messages at $LAT_RATE/s; publisher port $pub, subscriber port $sub)"
  fg timeout $(( LAT_MSGS / LAT_RATE + 60 )) python3 "$LIB/pubsub_latency.py" --pub "127.0.0.1:$pub" \
    --sub "127.0.0.1:$sub" --messages "$LAT_MSGS" --rate "$LAT_RATE" >"$out/rep$rep.txt" 2>"$out/rep$rep.err" || rc=$?
  [ "$target" != raftis ] || watch_end
  line=$(grep -m1 '^pubsub_latency ' "$out/rep$rep.txt" || true)
  if [ "$rc" != 0 ] || [ -z "$line" ]; then
    problem "pub/sub latency against $target (run $rep) failed (exit $rc): $(tr '\n' ' ' <"$out/rep$rep.err" | cut -c1-300)"
    RB_FAILED=1
  else
    log "  $target: ${line#pubsub_latency }"
    grep -q ' lost=0 ' <<<"$line" || problem "pub/sub latency against $target (run $rep): messages lost: ${line#pubsub_latency }"
    grep -q ' duplicates=0 reordered=0 ' <<<"$line" || problem "pub/sub latency against $target (run $rep): messages duplicated or out of order: ${line#pubsub_latency }"
    grep -q ' publish_errors=0 ' <<<"$line" || {
      problem "pub/sub latency against $target (run $rep): PUBLISH errors: ${line#pubsub_latency } $(tr '\n' ' ' <"$out/rep$rep.err" | cut -c1-200)"
      RB_FAILED=1; }
  fi
  if [ "$target" = raftis ]; then check_nodes "pub/sub latency run $rep" || die "raftis node crashed"; fi
}
errorstats() { # port: "CODE=N,..." from INFO errorstats
  { timeout 5 redis-cli -h 127.0.0.1 -p "$1" info errorstats 2>/dev/null || true; } | tr -d '\r' |
    sed -n 's/^errorstat_\([A-Z_-]*\):count=\([0-9]*\).*/\1=\2/p' | paste -sd, -
}
declare -A APP_PEER_ERRORS=()  # app -> the error replies redis-server (no persistence) sent in this run
run_app() { # app target port rep: job throughput of RQ or Celery (bench/lib/app_jobs.py, $APP_JOBS jobs)
  # against a redis-server or (port "-") the raftis leader. The raftis window expects no more error
  # replies of each kind than redis-server sent for the same workload (redis-py sends CLIENT
  # subcommands newer than 7.0 and ignores their errors).
  local app=$1 target=$2 port=$3 rep=$4 out rc=0 line before
  out=$RAW/apps/$app/$target
  mkdir -p "$out"
  if [ "$target" = raftis ]; then
    wait_settled 60 || { check_nodes "$app jobs" || true; die "raftis: no settled leader before the $app jobs run $rep"; }
    port=${RPORT[$L]}
    watch_begin "apps-$app-rep$rep" phase=apps "label=raftis $app jobs run $rep (leader node $L)" "rep=$rep" \
      "peer_errors=${APP_PEER_ERRORS[$app]:-}"
  fi
  before=$(errorstats "$port")
  log "$app jobs $target run $rep/$REPS ($APP_JOBS jobs, port $port)"
  fg timeout $(( APP_JOBS / 5 + 120 )) python3 "$LIB/app_jobs.py" "$app" --addr "127.0.0.1:$port" \
    --jobs "$APP_JOBS" >"$out/rep$rep.txt" 2>"$out/rep$rep.err" || rc=$?
  [ "$target" != raftis ] || watch_end
  [ "$target" != redis ] || APP_PEER_ERRORS[$app]=$(python3 -c 'import sys
b, a = (dict((k, int(v)) for k, _, v in (kv.partition("=") for kv in s.split(",") if kv)) for s in sys.argv[1:3])
print(",".join("%s=%d" % (k, n - b.get(k, 0)) for k, n in a.items() if n > b.get(k, 0)))' "$before" "$(errorstats "$port")")
  line=$(grep -m1 '^app_jobs ' "$out/rep$rep.txt" || true)
  if [ "$rc" != 0 ] || [ -z "$line" ]; then
    problem "$app jobs against $target (run $rep) failed (exit $rc): $(grep -v Warning "$out/rep$rep.err" | tr '\n' ' ' | cut -c1-300)"
    RB_FAILED=1
  else
    log "  $target: ${line#app_jobs }"
  fi
  if [ "$target" = raftis ]; then check_nodes "$app jobs run $rep" || die "raftis node crashed"; fi
}

load_keys() { # port prefix count: SETs through redis-cli --pipe; sets LOAD_S (seconds taken)
  local port=$1 prefix=$2 count=$3 t0 p rc=0 out=$W/pipe.out
  t0=$(now_ns)
  python3 "$LIB/gen_sets.py" "$count" "$prefix" "$VALUE_BYTES" |
    timeout "$LOAD_TIMEOUT" redis-cli -h 127.0.0.1 -p "$port" --pipe >"$out" 2>&1 &
  p=$!  # timeout's pid: the EXIT trap stops it, redis-cli with it, and the generator gets SIGPIPE
  PID_OF[fg]=$p
  wait "$p" || rc=$?
  unset "PID_OF[fg]"
  LOAD_S=$(secs $(( $(now_ns) - t0 )))
  if [ "$rc" != 0 ]; then
    problem "redis-cli --pipe of $count keys to port $port failed (exit $rc): $(tail -n 2 "$out" | tr '\n' ' ')"
    return 1
  fi
  grep -q "errors: 0, replies: $count" "$out" || {
    problem "redis-cli --pipe of $count keys to port $port: $(tail -n 1 "$out")"; return 1; }
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# ================================================================== phase 1: throughput
log "starting redis-server (no persistence), redis-server (appendfsync always), raftis x3, etcd x3"
mapfile -t ports < <(free_ports 2)
[ "${#ports[@]}" = 2 ] || die "no free ports"
P_REDIS=${ports[0]}; P_FSYNC=${ports[1]}
start_redis redis "$P_REDIS" "$W/redis" --appendonly no
start_redis redis-fsync "$P_FSYNC" "$W/redis-fsync" --appendonly yes --appendfsync always
start_cluster bench
start_etcd
wait_settled 30 || die "raftis: no settled leader"
log "raftis leader: node $L (port ${RPORT[$L]}); etcd leader: $ELEADER"

for rep in $(seq "$REPS"); do
  for p in 1 16; do
    run_rb redis "$P_REDIS" "$p" "$rep" || true
    run_rb redis-fsync "$P_FSYNC" "$p" "$rep" || true
    run_rb raftis - "$p" "$rep" || true
  done
  run_wrk put "$rep" || true
  run_wrk get "$rep" || true
  run_lat redis "$rep"
  run_lat raftis "$rep"
  for app in rq celery; do
    run_app "$app" redis "$P_REDIS" "$rep"
    run_app "$app" redis-fsync "$P_FSYNC" "$rep"
    run_app "$app" raftis - "$rep"
  done
done
stop_name redis
stop_name redis-fsync
for i in 1 2 3; do stop_name "etcd$i"; done

# ================================================================== phase 1b: cost of metrics
# SET P=1 on the leader with nobody reading /metrics and with a scraper reading every node's
# /metrics once a second (as Prometheus would), alternated (off/on, then on/off) on the same cluster.
METRICS_N=$(( N1 > 20000 ? N1 : 20000 ))
log "metrics cost: SET P=1 (-n $METRICS_N) without and with a scrape of every node's /metrics each second"
mkdir -p "$RAW/metrics"
: >"$RAW/metrics_cost.txt"
scraper() { # file: every second, GET /metrics of the three nodes; one line per scrape (HTTP status)
  while true; do
    for i in 1 2 3; do
      curl -s -o /dev/null -w '%{http_code}\n' --max-time 1 "http://127.0.0.1:${RHTTP[$i]}/metrics" >>"$1" || echo fail >>"$1"
    done
    sleep 1
  done
}
for rep in $(seq "$REPS"); do
  order="off on"; [ $((rep % 2)) = 0 ] && order="on off"
  for mode in $order; do
    wait_settled 60 || die "raftis: no settled leader before the metrics-cost run"
    base=$RAW/metrics/rep$rep-$mode
    : >"$base.scrapes"
    if [ "$mode" = on ]; then scraper "$base.scrapes" & PID_OF[scraper]=$!; sleep 0.2; fi
    watch_begin "metrics-$mode-rep$rep" phase=metrics "label=raftis SET P=1 scraping=$mode run $rep" \
      "leader_port=${RPORT[$L]}"
    rc=0
    fg timeout "$RB_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "${RPORT[$L]}" -n "$METRICS_N" -c "$CLIENTS" -P 1 \
      -r "$KEYSPACE" --csv -t set >"$base.csv" 2>"$base.err" || rc=$?
    watch_end rb "$base.err" "$base.csv"
    [ "$mode" = on ] && stop_name scraper
    [ "$rc" = 0 ] || { problem "metrics cost: redis-benchmark failed (scraping $mode, run $rep, exit $rc)"; RB_FAILED=1; continue; }
    rps=$(awk -F'","' 'NR == 2 { print $2 }' "$base.csv")
    ok=$(grep -c '^200$' "$base.scrapes" || true)
    bad=$(grep -vc '^200$' "$base.scrapes" || true)
    [ "$bad" = 0 ] || problem "metrics cost: $bad scrapes of /metrics failed (run $rep)"
    echo "$rep $mode $rps $ok" >>"$RAW/metrics_cost.txt"
    log "metrics cost run $rep: scraping $mode: $rps SET/s ($ok scrapes)"
  done
done

# ================================================================== phase 2: failover
log "failover: $FAILOVERS trials (kill -9 the leader, time to the first successful write)"
: >"$RAW/failover.txt"
survivors() { # one line on the nodes still running: role, commit and last log index
  local i
  for i in 1 2 3; do
    alive "$i" || continue
    printf 'node %s: %s, commit %s, last log %s; ' "$i" "$(rinfo "${RPORT[$i]}" raft_role)" \
      "$(rinfo "${RPORT[$i]}" raft_commit_index)" "$(rinfo "${RPORT[$i]}" raft_last_log_index)"
  done
}
fresh_failover_cluster() { # a stuck cluster is replaced once by a fresh one, so the trials go on
  [ "$RAFTIS_TAG" != failover ] || return 1
  stop_cluster
  log "failover: continuing the trials on a fresh cluster"
  start_cluster failover
}
trial=1
while [ "$trial" -le "$FAILOVERS" ]; do
  if ! wait_settled 60; then
    check_nodes "failover trial $trial" || true
    problem "failover: the $RAFTIS_TAG cluster did not settle (one leader, same applied index everywhere) within 60 s before trial $trial: $(survivors)"
    fresh_failover_cluster || break
    continue
  fi
  sleep 0.5
  watch_begin "failover-trial$trial" phase=failover "label=failover trial $trial ($RAFTIS_TAG cluster)" \
    "trial=$trial" expect_election=1 "killed=$L"
  t0=$(now_ns)
  kill -KILL "${PID_OF[raftis$L]}"
  wait "${PID_OF[raftis$L]}" 2>/dev/null || true
  unset "PID_OF[raftis$L]"
  survivors_ports=
  for i in 1 2 3; do [ "$i" = "$L" ] || survivors_ports+="${survivors_ports:+,}${RPORT[$i]}"; done
  fo_out=$(python3 "$LIB/failover_writer.py" --since-ns "$t0" --value "$trial" --ports "$survivors_ports" \
    --timeout-s 30) || true
  done_ms=$(awk '$1 == "done_ms" && $2 != "FAIL" { print $2 }' <<<"$fo_out")
  grep '^reply ' <<<"$fo_out" >>"$WATCH" || true
  watch_end
  if [ -z "$done_ms" ]; then
    echo "$trial FAIL $RAFTIS_TAG" >>"$RAW/failover.txt"
    problem "failover trial $trial ($RAFTIS_TAG cluster): no write succeeded within 30 s of kill -9 of leader node $L; $(survivors)"
    trial=$((trial + 1))
    fresh_failover_cluster || break
    continue
  fi
  echo "$trial $done_ms $RAFTIS_TAG" >>"$RAW/failover.txt"
  log "failover trial $trial/$FAILOVERS ($RAFTIS_TAG cluster): leader node $L killed, first write after $done_ms ms"
  trial=$((trial + 1))
  if ! check_nodes "failover trial $trial"; then fresh_failover_cluster || break; continue; fi
  start_node "$L"
  if ! wait_ping "${RPORT[$L]}" 60; then
    check_nodes "restart after failover" || true
    problem "failover: restarted node $L did not answer PING within 60 s"
    fresh_failover_cluster || break
  fi
done
stop_cluster

# ================================================================== phase 3: memory
log "memory: $KEYS keys of $VALUE_BYTES bytes into a fresh redis-server and a fresh raftis cluster"
P_MEM=$(free_ports 1)
start_redis redis-mem "$P_MEM" "$W/redis-mem" --appendonly no
load_keys "$P_MEM" "key:" "$KEYS" || die "loading redis-server"
{
  echo "keys=$KEYS"
  echo "value_bytes=$VALUE_BYTES"
  echo "redis_dbsize=$(redis-cli -h 127.0.0.1 -p "$P_MEM" dbsize)"
  sleep 1
  echo "redis_rss_kb=$(rss_kb "${PID_OF[redis-mem]}")"
} >"$RAW/memory.txt"
stop_name redis-mem

start_cluster mem
wait_settled 30 || die "raftis: no leader"
watch_begin memory-load phase=memory-load "label=memory: $KEYS SETs through leader node $L (redis-cli --pipe), followers applying them"
load_keys "${RPORT[$L]}" "key:" "$KEYS" || { watch_end pipe "$W/pipe.out"; die "loading raftis"; }
wait_settled 120 || { check_nodes "memory load" || true; watch_end pipe "$W/pipe.out"; die "raftis: followers did not catch up after loading"; }
watch_end pipe "$W/pipe.out"
sleep 2
for i in 1 2 3; do
  if [ "$i" = "$L" ]; then role=leader; else role=follower; fi
  db=$(printf 'READONLY\nDBSIZE\n' | timeout 10 redis-cli -h 127.0.0.1 -p "${RPORT[$i]}" | tail -n 1 | tr -d '\r')
  [ "$db" = "$KEYS" ] || problem "raftis node $i ($role) has DBSIZE $db after loading $KEYS keys"
  {
    echo "raftis_role_$i=$role"
    echo "raftis_dbsize_$i=$db"
    echo "raftis_rss_kb_$i=$(rss_kb "${PID_OF[raftis$i]}")"
    echo "raftis_dir_kb_$i=$(du -sk "$RDIR/$i" | cut -f1)"
  } >>"$RAW/memory.txt"
done
grep -q "redis_dbsize=$KEYS\$" "$RAW/memory.txt" || problem "redis-server DBSIZE is not $KEYS after loading"

# ================================================================== phase 4: recovery
F=$(( L % 3 + 1 ))
log "recovery: stop follower node $F, write $KEYS keys through leader node $L, restart node $F"
stop_name "raftis$F"
watch_begin recovery-writes phase=recovery-writes "label=recovery: $KEYS SETs through leader node $L with follower node $F stopped"
load_keys "${RPORT[$L]}" "rec:" "$KEYS" || { watch_end pipe "$W/pipe.out"; die "writing through the leader"; }
watch_end pipe "$W/pipe.out"
check_nodes "recovery writes" || die "raftis node crashed"
LA=$(rinfo "${RPORT[$L]}" raft_applied_index)
watch_begin recovery-catchup phase=recovery-catchup "label=recovery: restarted follower node $F catching up"
t0=$(now_ns)
start_node "$F"
ping_s=
caught=
while [ "$(ms_since "$t0")" -lt $((CATCHUP_TIMEOUT * 1000)) ]; do
  a=$(rinfo "${RPORT[$F]}" raft_applied_index)
  [ -z "$ping_s" ] && [ -n "$a" ] && ping_s=$(secs $(( $(now_ns) - t0 )))
  if [ -n "$a" ] && [ "$a" -ge "$LA" ]; then caught=$(secs $(( $(now_ns) - t0 ))); break; fi
  alive "$F" || { check_nodes "recovery" || true; die "restarted follower exited"; }
  sleep 0.05
done
watch_end
node_digests() { local i; for i in 1 2 3; do timeout 60 redis-cli -h 127.0.0.1 -p "${RPORT[$i]}" debug digest 2>&1 | tr -d '\r'; done | sort -u; }
FA=$(rinfo "${RPORT[$F]}" raft_applied_index)
if [ -n "$caught" ]; then
  digests=$(node_digests)
  if [ "$(echo "$digests" | wc -l)" != 1 ]; then sleep 2; digests=$(node_digests); fi  # one more chance
  if [ "$(echo "$digests" | wc -l)" = 1 ]; then dmatch="identical"; else dmatch="DIFFERENT"; fi
else
  dmatch="not compared (the follower had not caught up)"
fi
{
  echo "writes=$KEYS"
  echo "value_bytes=$VALUE_BYTES"
  echo "stopped_node=$F"
  echo "load_s=$LOAD_S"
  echo "leader_applied=$LA"
  echo "ping_s=${ping_s:-never}"
  if [ -n "$caught" ]; then echo "catchup_s=$caught"; echo "timed_out=0"; else echo "catchup_s=$CATCHUP_TIMEOUT"; echo "timed_out=1"; fi
  echo "digests=$dmatch"
  echo "follower_applied_at_end=${FA:-unknown}"
} >"$RAW/recovery.txt"
[ -n "$caught" ] || problem "restarted follower node $F did not reach the leader's applied index $LA within ${CATCHUP_TIMEOUT} s (it was at $FA)"
[ "$dmatch" != DIFFERENT ] || { problem "DEBUG DIGEST differs between nodes after the follower caught up: $(echo $digests)"; }
check_nodes "recovery" || die "raftis node crashed"

# ================================================================== phase 5: membership
# A fourth node joins the cluster as it stands after the recovery phase (2 × KEYS keys) with
# --join, and is timed until it is a voter; then the leader is removed (RAFT.NODE REMOVE) under a
# continuous writer, which measures the longest time without an acknowledged write.
wait_settled 60 || die "raftis: no leader before the membership phase"
mapfile -t mports < <(free_ports 3)
RPORT[4]=${mports[0]}; RBUS[4]=${mports[1]}; RHTTP[4]=${mports[2]}
MKEYS=$(printf 'READONLY\nDBSIZE\n' | timeout 10 redis-cli -h 127.0.0.1 -p "${RPORT[$L]}" | tail -n 1 | tr -d '\r')
log "membership: node 4 joins the cluster holding $MKEYS keys (--join), then leader node $L is removed under writes"
watch_begin membership-join phase=membership-join "label=membership: node 4 joins ($MKEYS keys) and becomes a voter"
t0=$(now_ns)
"$BIN" server --id 4 --port "${RPORT[4]}" --bus-port "${RBUS[4]}" --dir "$RDIR/4" --http-port "${RHTTP[4]}" \
  --join "127.0.0.1:${RPORT[1]}" --cluster-addr "127.0.0.1:${RPORT[4]}@${RBUS[4]}" >>"$RDIR/node4.log" 2>&1 &
PID_OF[raftis4]=$!
join_s=
while [ "$(ms_since "$t0")" -lt $((CATCHUP_TIMEOUT * 1000)) ]; do
  if [ "$(rinfo "${RPORT[4]}" raft_membership)" = voter ]; then join_s=$(secs $(( $(now_ns) - t0 ))); break; fi
  alive 4 || break
  sleep 0.05
done
watch_end
db4=$(printf 'READONLY\nDBSIZE\n' | timeout 10 redis-cli -h 127.0.0.1 -p "${RPORT[4]}" | tail -n 1 | tr -d '\r')
[ -n "$join_s" ] || problem "node 4 did not become a voter within ${CATCHUP_TIMEOUT} s of starting with --join: $(tail -n 3 "$RDIR/node4.log" | sed 's/\x1b\[[0-9;]*m//g' | tr '\n' ' ' | cut -c1-300)"
[ "$db4" = "$MKEYS" ] || problem "node 4 has DBSIZE $db4 after joining, the leader $MKEYS"
removed=$L
mark=$W/membership.mark
rm -f "$mark"
watch_begin membership-remove phase=membership-remove "label=membership: leader node $removed removed under writes" \
  expect_election=1
python3 "$LIB/membership_writer.py" --ports "${RPORT[1]},${RPORT[2]},${RPORT[3]},${RPORT[4]}" --seconds 6 \
  --mark-file "$mark" >"$W/membership_writer.out" 2>&1 &
mw=$!
sleep 2
now_ns >"$mark"
rm_reply=$(timeout 30 redis-cli -h 127.0.0.1 -p "${RPORT[4]}" raft.node remove "$removed" 2>&1 | tr -d '\r')
wait "$mw" || problem "the membership writer failed: $(tail -n 3 "$W/membership_writer.out")"
grep '^reply ' "$W/membership_writer.out" >>"$WATCH" || true
watch_end
gap=$(awk '$1 == "gap_ms" { print $2 }' "$W/membership_writer.out")
[ "$rm_reply" = OK ] || problem "RAFT.NODE REMOVE $removed (the leader) answered: $rm_reply"
[ -n "$gap" ] && [ "$gap" != FAIL ] || problem "no write was acknowledged after the leader's removal"
{
  echo "keys=$MKEYS"
  echo "join_s=${join_s:-never}"
  echo "joined_dbsize=$db4"
  echo "removed_leader=$removed"
  echo "remove_reply=$rm_reply"
  echo "remove_gap_ms=${gap:-FAIL}"
  echo "writer_acked=$(awk '$1 == "acked" { print $2 }' "$W/membership_writer.out")"
} >"$RAW/membership.txt"
log "membership: node 4 a voter after ${join_s:-never} s; writes unavailable for ${gap:-?} ms while leader $removed was removed"
stop_name "raftis$removed"
stop_name raftis4
sed 's/\x1b\[[0-9;]*m//g' "$RDIR/node4.log" >"$RAW/logs/$RAFTIS_TAG-node4.log" 2>/dev/null || true
check_nodes "membership" || die "raftis node crashed"
stop_cluster

# ================================================================== report
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/meta.txt"
mkdir -p "$OUT"
rm -rf "$OUT/raw"
cp -r "$RAW" "$OUT/raw"
REPORT_PENDING=
python3 "$LIB/report.py" "$OUT/raw" "$OUT"
log "results: $OUT/report.md, $OUT/chart.svg, $OUT/summary.json"
[ "$RB_FAILED" = 0 ] || { log "FAILED: some benchmarks could not run or returned errors (see Problems seen)"; exit 1; }
[ ! -s "$RAW/problems.txt" ] || { log "FAILED: problems seen (listed at the end of the report)"; exit 1; }
