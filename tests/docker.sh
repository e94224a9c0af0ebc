#!/usr/bin/env bash
# The Docker image and the three-node compose cluster, end to end, without any image registry:
#
#   tests/docker.sh
#
# Builds the image (docker/build.sh), starts docker-compose.yml under a unique project name on free
# host ports, and checks: image size < 20 MB; every node serves and turns healthy; 10,000 keys
# written with redis-cli --pipe; `docker kill` of the leader's container -> a new leader (the failover
# time is printed) that keeps taking writes, also through MOVED redirects to the announced ports;
# `docker start` of the old leader -> it catches up from its volume (equal DEBUG DIGEST and DBSIZE
# on all three); the leader cut off with `docker network disconnect` -> the other two elect a leader
# and keep taking writes; reconnected -> equal digests again; `down -v` removes everything. The
# project is torn down on every exit (trap), failures included.
#
# Without a docker engine (or docker compose, or redis-cli) it prints "SKIPPED" and exits 0, unless
# CI=true, where that is a failure. Time bounds: the image build RAFTIS_DOCKER_BUILD_TIMEOUT seconds
# (default 600; a cold static build takes ~3.5 min on 2 CPUs, ~1 min when only the raftis crate
# changed), everything after it RAFTIS_DOCKER_TEST_TIMEOUT seconds (default 240; it takes ~20 s).
set -euo pipefail
cd "$(dirname "$0")/.."

image=${RAFTIS_IMAGE:-raftis:latest}
export RAFTIS_IMAGE=$image

skip_or_fail() {
  if [ "${CI:-}" = true ]; then
    echo "FAILED: $1 (CI=true: the Docker test must run)" >&2
    exit 1
  fi
  echo "=================================================================" >&2
  echo "SKIPPED: $1 -- the Docker test did not run" >&2
  echo "=================================================================" >&2
  exit 0
}

compose_cmd() {
  if docker compose version >/dev/null 2>&1; then
    echo "docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    echo "docker-compose"
  fi
}

# ---------------------------------------------------------------------------------------------
# Phase 1 (outer): preflight, image build, then phase 2 under a time limit.
if [ "${1:-}" != --cluster-phase ]; then
  command -v docker >/dev/null 2>&1 || skip_or_fail "no docker engine (no docker CLI)"
  timeout 20 docker info >/dev/null 2>&1 || skip_or_fail "no docker engine (docker info fails)"
  [ -n "$(compose_cmd)" ] || skip_or_fail "no docker compose / docker-compose"
  command -v redis-cli >/dev/null 2>&1 || skip_or_fail "no redis-cli (package redis-tools)"

  echo "== building $image (docker/build.sh)"
  build_limit=${RAFTIS_DOCKER_BUILD_TIMEOUT:-600}
  if ! timeout -k 30 "$build_limit" docker/build.sh "$image"; then
    echo "FAILED: docker/build.sh (or it took more than ${build_limit}s)" >&2
    exit 1
  fi

  limit=${RAFTIS_DOCKER_TEST_TIMEOUT:-240}
  timeout -k 90 "$limit" "$0" --cluster-phase &
  child=$!
  trap 'kill -TERM "$child" 2>/dev/null || true; wait "$child" 2>/dev/null; exit 130' INT TERM
  rc=0
  wait "$child" || rc=$?
  if [ "$rc" = 124 ]; then
    echo "FAILED: the cluster checks took more than ${limit}s (timed out)" >&2
  fi
  exit "$rc"
fi

# ---------------------------------------------------------------------------------------------
# Phase 2: the cluster.
read -r -a COMPOSE <<<"$(compose_cmd)"
start_time=$(($(date +%s%N) / 1000000))
project="raftistest$$"
compose() { timeout 120 "${COMPOSE[@]}" -p "$project" -f docker-compose.yml "$@"; }

# Times in milliseconds.
now() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%02d' $(($1 / 1000)) $(($1 % 1000 / 10)); }
since() { secs $(($(now) - $1)); }
within() { (($(now) - $1 < $2 * 1000)); } # within T0 SECONDS: less than SECONDS since T0
log() { printf '[%7ss] %s\n' "$(since "$start_time")" "$*"; }
die() {
  log "FAILED: $*" >&2
  exit 1
}

# Three free host ports (also what the nodes announce), below Linux's ephemeral range (32768-),
# where outgoing connections and other tests' servers take ports at any moment.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_ports() {
  local tries base
  for tries in $(seq 50); do
    base=$((20000 + RANDOM % 12000))
    if port_free "$base" && port_free $((base + 1)) && port_free $((base + 2)) && port_free $((base + 3)); then
      echo "$base"
      return
    fi
  done
  die "no free host ports"
}
use_ports() {
  base=$1
  export RAFTIS_HOST_PORT1=$1 RAFTIS_HOST_PORT2=$(($1 + 1)) RAFTIS_HOST_PORT3=$(($1 + 2)) RAFTIS_HOST_PORT4=$(($1 + 3))
}
use_ports "${RAFTIS_DOCKER_TEST_PORT:-$(pick_ports)}" # RAFTIS_DOCKER_TEST_PORT: the first of three host ports
port() { local v="RAFTIS_HOST_PORT$1"; echo "${!v}"; }
cid() { compose ps -q "raftis$1"; }
network="${project}_raftis"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$rc" != 0 ]; then
    echo "---- last log lines of each node (project $project) ----" >&2
    compose logs --no-color --tail 40 >&2 2>&1 || true
    compose ps >&2 || true
  fi
  echo "== tearing down project $project" >&2
  compose --profile join down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# redis-cli against node N's published port (bounded: a cut-off node must not hang the test).
rc() {
  local n=$1
  shift
  timeout 5 redis-cli -p "$(port "$n")" "$@" 2>/dev/null
}
field() { tr -d '\r' | sed -n "s/^$1://p"; }

# The leader agreed on by a majority: a node that says raft_role:leader and that at least one other
# node names as raft_leader_id. Nodes given as arguments are ignored (killed or cut off). Prints the
# id, or nothing.
leader() {
  local n info role lid
  declare -A says
  for n in 1 2 3; do
    [[ " $* " == *" $n "* ]] && continue
    info=$(rc "$n" info raft) || continue
    role=$(field raft_role <<<"$info")
    lid=$(field raft_leader_id <<<"$info")
    says[$n]="$role:$lid"
  done
  for n in "${!says[@]}"; do
    [ "${says[$n]}" = "leader:$n" ] || continue
    local m count=1
    for m in "${!says[@]}"; do
      [ "$m" != "$n" ] && [ "${says[$m]#*:}" = "$n" ] && count=$((count + 1))
    done
    if [ "$count" -ge 2 ]; then
      echo "$n"
      return
    fi
  done
}
wait_leader() { # wait_leader TIMEOUT [ignored ids...]
  local limit=$1 t0
  shift
  t0=$(now)
  while within "$t0" "$limit"; do
    local l
    l=$(leader "$@")
    if [ -n "$l" ]; then
      echo "$l"
      return
    fi
    sleep 0.05
  done
  die "no leader within ${limit}s (ignoring nodes: ${*:-none})"
}

digest() { rc "$1" debug digest | tr -d '\r'; }
dbsize() { printf 'READONLY\nDBSIZE\n' | rc "$1" | tr -d '\r' | tail -1; }
wait_converged() { # wait_converged TIMEOUT: equal DEBUG DIGEST and DBSIZE on all three nodes
  local limit=$1 t0 d1 d2 d3
  t0=$(now)
  while within "$t0" "$limit"; do
    d1=$(digest 1) d2=$(digest 2) d3=$(digest 3) || true
    if [ -n "$d1" ] && [ "$d1" = "$d2" ] && [ "$d2" = "$d3" ]; then
      echo "$d1"
      return
    fi
    sleep 0.1
  done
  die "digests still differ after ${limit}s: 1=$d1 2=$d2 3=$d3"
}

# Pipes SET key:I value:I for I in [FROM, FROM+COUNT) to node N with redis-cli --pipe.
write_keys() { # write_keys N FROM COUNT
  local out
  out=$(awk -v s="$2" -v c="$3" 'BEGIN {
      for (i = s; i < s + c; i++) {
        k = "key:" i; v = "value:" i
        printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
      }
    }' | timeout 60 redis-cli -p "$(port "$1")" --pipe 2>&1) || die "redis-cli --pipe to node $1 failed: $out"
  grep -q "errors: 0, replies: $3" <<<"$out" || die "redis-cli --pipe to node $1: $out"
}

# ---------------------------------------------------------------------------------------------
log "compose: ${COMPOSE[*]} (-p $project), image $image, host ports $base-$((base + 2))"
size=$(docker image inspect -f '{{.Size}}' "$image")
log "image size: $size bytes ($((size / 1000000)).$((size / 100000 % 10)) MB)"
[ "$size" -lt 20000000 ] || die "image is $size bytes, not under 20 MB"

# A host port taken between pick_ports and compose up (by anything else on this machine) is no
# failure of raftis: start again on other ports, at most three times.
for attempt in 1 2 3; do
  t0=$(now)
  out=$(compose up -d 2>&1) && break
  if [ "$attempt" -lt 3 ] && grep -qiE 'address already in use|port is already allocated' <<<"$out"; then
    log "host ports $base-$((base + 2)) taken meanwhile ($(grep -oiE 'listen tcp4? [0-9.:]+' <<<"$out" | head -1)); other ports"
    compose down -v -t 1 >/dev/null 2>&1 || true
    use_ports "$(pick_ports)"
    continue
  fi
  die "compose up failed: $out"
done
for n in 1 2 3; do
  until [ "$(rc "$n" ping)" = PONG ]; do
    within "$t0" 10 || die "node $n does not answer PING 10s after compose up"
    sleep 0.05
  done
done
log "all three nodes answer PING $(since "$t0")s after compose up began (containers created and started)"
l=$(wait_leader 15)
log "leader: node $l ($(since "$t0")s after compose up)"

for n in 1 2 3; do
  until [ "$(docker inspect -f '{{.State.Health.Status}}' "$(cid "$n")")" = healthy ]; do
    within "$t0" 30 || die "node $n not healthy 30s after start"
    sleep 0.5
  done
done
log "all three containers are healthy (raftis health)"

t0=$(now)
write_keys "$l" 0 10000
log "wrote 10000 keys to leader $l with redis-cli --pipe in $(since "$t0")s"
# Through any node with redis-cli -c: followers answer MOVED with the announced host port.
for n in 1 2 3; do
  [ "$(timeout 5 redis-cli -c -p "$(port "$n")" set "via:$n" "$n" | tr -d '\r')" = OK ] \
    || die "redis-cli -c -p $(port "$n") set failed"
  [ "$(timeout 5 redis-cli -c -p "$(port "$n")" get key:4242 | tr -d '\r')" = value:4242 ] \
    || die "redis-cli -c -p $(port "$n") get key:4242 failed"
done
log "redis-cli -c writes and reads through every node (MOVED to 127.0.0.1:$(port "$l"))"
d=$(wait_converged 20)
log "replicas converged: DEBUG DIGEST $d on all three"
expected=10003

# --- failover: docker kill the leader's container -------------------------------------------
old=$l
old_cid=$(cid "$old")
t0=$(now)
docker kill "$old_cid" >/dev/null
l=$(wait_leader 20 "$old")
elected=$(now)
failover=$(secs $((elected - t0)))
# `docker kill` itself can take a second here: also measure from the moment the process died.
died=$(date -d "$(docker inspect -f '{{.State.FinishedAt}}' "$old_cid")" +%s%3N)
from_death=$(secs $((elected - died)))
until [ "$(rc "$l" set failover:probe 1 | tr -d '\r')" = OK ]; do
  within "$t0" 20 || die "new leader $l takes no write"
  sleep 0.05
done
first_write=$(since "$t0")
log "FAILOVER: killed node $old (docker kill); node $l leads after ${failover}s (${from_death}s after the process died), first write acknowledged after ${first_write}s"
[ "$(docker inspect -f '{{.State.Running}}' "$old_cid")" = false ] || die "killed container was restarted"
write_keys "$l" 10000 2000
expected=$((expected + 2001))
log "wrote 2000 more keys to the new leader $l with node $old down"

# --- restart the old leader: it catches up from its volume ----------------------------------
t0=$(now)
docker start "$old_cid" >/dev/null
until [ "$(rc "$old" ping)" = PONG ]; do
  within "$t0" 10 || die "restarted node $old does not answer PING within 10s"
  sleep 0.02
done
log "docker start: node $old answers PING after $(since "$t0")s"
d=$(wait_converged 30)
log "node $old caught up after $(since "$t0")s: DEBUG DIGEST $d on all three"
for n in 1 2 3; do
  s=$(dbsize "$n")
  [ "$s" = "$expected" ] || die "node $n has DBSIZE $s, expected $expected"
done
log "DBSIZE $expected on all three"
now_leader=$(wait_leader 10)
if [ "$now_leader" != "$l" ]; then
  log "NOTE: the restarted node $old disrupted the leader: node $now_leader leads now, not node $l"
  l=$now_leader
fi

# --- partition: cut the leader off the network, then reconnect it ---------------------------
cut=$l
cut_cid=$(cid "$cut")
t0=$(now)
docker network disconnect "$network" "$cut_cid"
l=$(wait_leader 20 "$cut")
log "PARTITION: node $cut disconnected from $network; nodes left elect node $l after $(since "$t0")s"
until [ "$(rc "$l" set partition:probe 1 | tr -d '\r')" = OK ]; do
  within "$t0" 20 || die "leader $l of the majority takes no write"
  sleep 0.05
done
write_keys "$l" 12000 2000
expected=$((expected + 2001))
log "the majority keeps serving: 2000 more keys written to node $l"
t0=$(now)
docker network connect --alias "raftis$cut" "$network" "$cut_cid"
d=$(wait_converged 30)
log "node $cut reconnected; converged after $(since "$t0")s: DEBUG DIGEST $d on all three"
for n in 1 2 3; do
  s=$(dbsize "$n")
  [ "$s" = "$expected" ] || die "node $n has DBSIZE $s, expected $expected"
done
l=$(wait_leader 10)
[ "$(timeout 5 redis-cli -c -p "$(port "$cut")" get key:13999 | tr -d '\r')" = value:13999 ] \
  || die "redis-cli -c through the reconnected node $cut failed"
log "DBSIZE $expected on all three; leader node $l; redis-cli -c through node $cut works"

# --- a fourth node joins (compose profile `join`), then leaves ----------------------------------
t0=$(now)
out=$(compose --profile join up -d raftis4 2>&1) || die "compose --profile join up -d raftis4 failed: $out"
until [ "$(rc 4 info raft | field raft_membership)" = voter ]; do
  within "$t0" 60 || die "node 4 did not become a voter within 60s: $(rc 4 info raft | tr -d '\r' | grep -E 'membership|role')"
  sleep 0.1
done
log "JOIN: node 4 (profile join) is a voter $(since "$t0")s after compose up"
members=$(rc 1 raft.node list | tr -d '\r' | grep -c '^voter$\|^leader$')
[ "$members" = 4 ] || die "RAFT.NODE LIST shows $members voters, expected 4"
d4=$(digest 4)
d1=$(wait_converged 30)
[ "$d4" = "$d1" ] || { sleep 1; d4=$(digest 4); [ "$d4" = "$d1" ] || die "node 4's digest $d4 differs from $d1"; }
log "node 4 has the same DEBUG DIGEST as the others: $d4"
[ "$(rc 1 raft.node remove 4 | tr -d '\r')" = OK ] || die "RAFT.NODE REMOVE 4 failed"
until [ "$(rc 4 info raft | field raft_membership)" = removed ]; do
  within "$t0" 60 || die "node 4 does not say it was removed"
  sleep 0.1
done
log "RAFT.NODE REMOVE 4: node 4 says it was removed"
compose --profile join rm -s -f raftis4 >/dev/null 2>&1 || die "could not remove the raftis4 container"

# --- tear down ---------------------------------------------------------------------------------
compose --profile join down -v -t 5 >/dev/null 2>&1 || die "compose down -v failed"
left=$(docker ps -aq -f "label=com.docker.compose.project=$project"; docker volume ls -q -f "label=com.docker.compose.project=$project")
[ -z "$left" ] || die "compose down -v left containers or volumes: $left"
log "compose down -v: no containers or volumes left"
log "PASSED (failover: a new leader ${failover}s after docker kill began, ${from_death}s after the process died; first write after ${first_write}s)"
