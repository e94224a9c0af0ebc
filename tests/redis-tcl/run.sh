#!/usr/bin/env bash
# Runs units of Redis 7.0.15's own Tcl test suite against a throwaway raftis (or, with
# --against-redis, a throwaway redis-server) and prints how many tests each unit passed.
# See tests/redis-tcl/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=$ROOT/target
SUITE=$TARGET/redis-7.0.15            # unpacked Debian source package (cached)
OUT=$TARGET/redis-tcl                 # logs
REDIS_VERSION=7.0.15

DEFAULT_UNITS=(unit/type/hash unit/type/set unit/type/zset unit/bitops unit/sort
    unit/type/string unit/type/incr unit/keyspace unit/expire unit/multi)
# What real redis-server 7.0.15 passes under the same flags (shared/reference/reliability.md).
declare -A REDIS_OK=([unit/type/hash]=72 [unit/type/set]=95 [unit/type/zset]=308
    [unit/bitops]=45 [unit/sort]=52 [unit/type/string]=72 [unit/type/incr]=23
    [unit/keyspace]=42 [unit/expire]=58 [unit/multi]=32 [unit/type/list]=219
    [unit/type/list-2]=2 [unit/type/list-3]=11 [unit/pubsub]=29 [unit/scripting]=182
    [unit/functions]=86)

RAFTIS=$TARGET/release/raftis
AGAINST_REDIS=0
REDIS_SERVER=redis-server
DURABLE=0
SKIP_FUNCTION_FLUSH=0
TIMEOUT=300
UNITS=()

usage() {
    cat <<EOF
usage: tests/redis-tcl/run.sh [options] [UNIT...]

Runs each UNIT (default: ${DEFAULT_UNITS[*]})
of Redis $REDIS_VERSION's Tcl suite alone against a fresh server on a free port.

  --raftis PATH          raftis binary (default: target/release/raftis)
  --against-redis [BIN]  run against redis-server $REDIS_VERSION instead (BIN, default: redis-server)
  --durable              pass --durable to the suite: an exception inside a test is counted
                         as [err] and the unit goes on (diagnostic; not the reference mode)
  --skip-function-flush  run a copy of the harness whose per-unit FUNCTION FLUSH may fail
                         (diagnostic; not the reference mode)
  --timeout SEC          suite's no-progress timeout (default: $TIMEOUT)
  -h, --help             this text

Logs: target/redis-tcl/<unit>.log (target/redis-tcl/against-redis/<unit>.log with --against-redis).
EOF
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --raftis) RAFTIS=${2:?--raftis needs a path}; shift 2 ;;
        --against-redis)
            AGAINST_REDIS=1; shift
            if [[ $# -gt 0 && $1 != -* && $1 != unit/* ]]; then REDIS_SERVER=$1; shift; fi ;;
        --durable) DURABLE=1; shift ;;
        --skip-function-flush) SKIP_FUNCTION_FLUSH=1; shift ;;
        --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) UNITS+=("$1"); shift ;;
    esac
done
[[ ${#UNITS[@]} -gt 0 ]] || UNITS=("${DEFAULT_UNITS[@]}")

die() { echo "run.sh: $*" >&2; exit 1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root for: $*"
    fi
}

# ---------------------------------------------------------------- setup: tcl
have_tclsh() {
    # runtest looks for tclsh8.5 / tclsh8.6 / tclsh8.7 by these exact names.
    command -v tclsh8.6 >/dev/null || command -v tclsh8.5 >/dev/null || command -v tclsh8.7 >/dev/null
}
if ! have_tclsh; then
    echo "== installing tcl"
    as_root apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq tcl >/dev/null ||
        die "apt-get install tcl failed"
    have_tclsh || die "tcl installed but no tclsh8.x found"
fi

# ---------------------------------------------------- setup: Redis 7.0.15 source
# Debian-archive URIs and suites the system's apt uses (one-line and deb822 formats).
system_debian_sources() {
    {
        { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
            awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                               print $i, $(i+1) }'
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -f $f ]] || continue
            awk 'function flush() { if (deb) for (u in U) for (s in S) print U[u], S[s]
                                    deb = 0; delete U; delete S }
                 /^[ \t]*$/ { flush(); next }
                 tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
                 tolower($1) == "uris:" { for (i = 2; i <= NF; i++) U[i] = $i }
                 tolower($1) == "suites:" { for (i = 2; i <= NF; i++) S[i] = $i }
                 END { flush() }' "$f"
        done
    } | awk '$1 ~ /debian/ && $2 != ""' || true
}

fetch_source() {
    echo "== fetching Redis $REDIS_VERSION's source package (apt-get source redis) into $SUITE"
    command -v dpkg-source >/dev/null || {
        as_root apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq dpkg-dev >/dev/null ||
            die "apt-get install dpkg-dev (for dpkg-source) failed"
    }
    local apt=$OUT/apt work
    rm -rf "$apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    # deb-src lines mirroring the system's Debian entries, plus bookworm (Debian 12), which
    # is where 7.0.15 lives, on the same mirrors.
    local main_uri=http://deb.debian.org/debian sec_uri=http://deb.debian.org/debian-security
    local kr=/usr/share/keyrings/debian-archive-keyring.gpg opts=""
    [[ -f $kr ]] && opts="[signed-by=$kr] "
    {
        system_debian_sources
        local u
        u=$(system_debian_sources | awk '$1 !~ /security/ { print $1; exit }'); main_uri=${u:-$main_uri}
        u=$(system_debian_sources | awk '$1 ~ /security/ { print $1; exit }'); sec_uri=${u:-$sec_uri}
        echo "$main_uri bookworm"
        echo "$main_uri bookworm-updates"
        echo "$sec_uri bookworm-security"
    } | sort -u | while read -r uri suite; do
        echo "deb-src ${opts}$uri $suite main"
    done > "$apt/sources.list"
    # Private lists and cache: the system's apt state is left alone.
    local o=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
             -o APT::Sandbox::User=root)
    apt-get "${o[@]}" update >"$apt/update.log" 2>&1 ||
        { cat "$apt/update.log" >&2; die "apt-get update (deb-src) failed"; }
    local version
    version=$(apt-cache "${o[@]}" showsrc redis 2>/dev/null |
        awk '/^Version:/ { print $2 }' | grep -E "^([0-9]+:)?$REDIS_VERSION-" |
        sort -V | tail -n1) || true
    [[ -n $version ]] || die "no redis $REDIS_VERSION source package on: $(grep -v '^#' "$apt/sources.list" | tr '\n' ';')"
    work=$(mktemp -d "$TARGET/redis-src.XXXXXX")
    (cd "$work" && apt-get "${o[@]}" source "redis=$version") >"$apt/source.log" 2>&1 ||
        { cat "$apt/source.log" >&2; rm -rf "$work"; die "apt-get source redis=$version failed"; }
    [[ -x $work/redis-$REDIS_VERSION/runtest ]] ||
        { rm -rf "$work"; die "apt-get source gave no redis-$REDIS_VERSION/runtest"; }
    grep -q "\"$REDIS_VERSION\"" "$work/redis-$REDIS_VERSION/src/version.h" ||
        { rm -rf "$work"; die "unpacked source is not Redis $REDIS_VERSION"; }
    echo "$version" > "$work/redis-$REDIS_VERSION/.debian-version"
    rm -rf "$SUITE"
    mv "$work/redis-$REDIS_VERSION" "$SUITE"
    rm -rf "$work"
    echo "== got redis $version"
}

mkdir -p "$OUT"
[[ -f $SUITE/.debian-version && -x $SUITE/runtest ]] || fetch_source

SUITE_RUN=$SUITE
if [[ $SKIP_FUNCTION_FLUSH -eq 1 ]]; then
    # A copy of the harness (the cached source stays pristine) where the FUNCTION FLUSH sent
    # before every unit against an external server may fail.
    SUITE_RUN=$OUT/suite-skip-function-flush
    rm -rf "$SUITE_RUN"
    mkdir -p "$SUITE_RUN"
    cp -r "$SUITE/runtest" "$SUITE/tests" "$SUITE_RUN/"
    sed -i 's/^\( *\)r function flush$/\1catch {r function flush}/' "$SUITE_RUN/tests/support/server.tcl"
    grep -q 'catch {r function flush}' "$SUITE_RUN/tests/support/server.tcl" ||
        die "could not patch FUNCTION FLUSH out of tests/support/server.tcl"
fi

if [[ $AGAINST_REDIS -eq 1 ]]; then
    command -v "$REDIS_SERVER" >/dev/null || die "no $REDIS_SERVER (apt-get install redis-server)"
    "$REDIS_SERVER" --version | grep -q "v=$REDIS_VERSION " ||
        echo "run.sh: warning: $("$REDIS_SERVER" --version) is not $REDIS_VERSION" >&2
    LOGDIR=$OUT/against-redis
    SERVER_NAME="redis-server"
else
    [[ -x $RAFTIS ]] || die "no raftis binary at $RAFTIS"
    RAFTIS=$(cd "$(dirname "$RAFTIS")" && pwd)/$(basename "$RAFTIS")
    # Every unit runs the same build, even if the binary is rebuilt meanwhile.
    SERVER_NAME="raftis ($RAFTIS, built $(date -u -r "$RAFTIS" '+%Y-%m-%d %H:%M:%S UTC'))"
    RAFTIS_COPY=$(mktemp "$OUT/raftis.XXXXXX")
    cp "$RAFTIS" "$RAFTIS_COPY" && chmod +x "$RAFTIS_COPY" || die "cannot copy $RAFTIS"
    RAFTIS=$RAFTIS_COPY
    LOGDIR=$OUT
fi
# Diagnostic modes keep their logs apart from the reference-mode ones.
MODE=""
[[ $SKIP_FUNCTION_FLUSH -eq 1 ]] && MODE+="skip-function-flush"
[[ $DURABLE -eq 1 ]] && MODE+="${MODE:++}durable"
[[ -n $MODE ]] && LOGDIR=$LOGDIR/$MODE

# ------------------------------------------------------------------ helpers
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free port in 40000-49999 (away from the suite's own 21079-21111); $1: a port to avoid.
free_port() {
    local p i
    for i in $(seq 200); do
        p=$((40000 + RANDOM % 10000))
        [[ $p != "${1:-}" ]] && ! port_in_use "$p" && { echo "$p"; return; }
    done
    die "no free port found"
}

# PING over bash's /dev/tcp until +PONG (or the server's process is gone).
wait_ready() {
    local port=$1 pid=$2 i reply
    for i in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || return 1
        if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
            printf 'PING\r\n' >&3
            reply=""
            read -r -t 2 reply <&3 || true
            exec 3>&- 3<&-
            [[ $reply == +PONG* ]] && return 0
        fi
        sleep 0.2
    done
    return 1
}

SERVER_PID=""
SERVER_DIR=""
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
    [[ -n $SERVER_DIR ]] && rm -rf "$SERVER_DIR"
    SERVER_DIR=""
}
cleanup() { stop_server; [[ -z ${RAFTIS_COPY:-} ]] || rm -f "$RAFTIS_COPY"; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# Starts a fresh server; sets PORT, SERVER_PID, SERVER_DIR; its stdout/stderr go to $1.
start_server() {
    local log=$1 bus
    SERVER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/raftis-tcl.XXXXXX")
    PORT=$(free_port)
    if [[ $AGAINST_REDIS -eq 1 ]]; then
        # --singledb: the suite stays on db 0. No persistence; the rest is redis's default.
        (cd "$SERVER_DIR" && exec "$REDIS_SERVER" --bind 127.0.0.1 --port "$PORT" --dir "$SERVER_DIR" \
            --save '' --appendonly no) >"$log" 2>&1 &
    else
        bus=$(free_port "$PORT")
        mkdir "$SERVER_DIR/data"
        "$RAFTIS" server --bind 127.0.0.1 --port "$PORT" --bus-port "$bus" \
            --dir "$SERVER_DIR/data" >"$log" 2>&1 &
    fi
    SERVER_PID=$!
    wait_ready "$PORT" "$SERVER_PID"
}

# Log summary: "ok err exc" counts.
count() { grep -c "^\[$2\]:" "$1" || true; }

# For an [exception]: the error, the first command that raised it, and the test it was in.
exception_detail() {
    awk '
        /^\[exception\]: / { inexc = 1; sub(/^\[exception\]: (Executing test client: )?/, ""); sub(/\.$/, "")
                              err = $0; next }
        /^\[(ok|err)\]: / && !inexc { last = $0; sub(/^\[(ok|err)\]: /, "", last); sub(/ \([0-9]+ ms\)$/, "", last) }
        inexc && /^"/ && cmd == "" && $0 !~ /\{\*\}\$args/ && $0 !~ /^"socket / {
            cmd = $0; gsub(/^"|"$/, "", cmd) }
        inexc && test == "" && /^"test [{"]/ {
            test = $0; sub(/^"test [{"]/, "", test); sub(/[}"] \{.*$/, "", test); sub(/[}"] *$/, "", test) }
        END {
            if (!inexc) exit
            printf "error: %s\n", err
            if (cmd != "") printf "command: %s\n", substr(cmd, 1, 120)
            if (test != "") printf "in test: %s\n", test
            else printf "outside a test, after: %s\n", (last == "" ? "(no test finished)" : last)
        }' "$1"
}

# ------------------------------------------------------------------ run
echo "== server: $SERVER_NAME"
echo "== suite: ${SUITE_RUN#"$ROOT"/} (Debian redis $(cat "$SUITE/.debian-version"))${MODE:+, diagnostic mode: $MODE}"
declare -A R_OK R_ERR R_EXC R_NOTE
SETUP_FAILED=0
DETAILS=""
for unit in "${UNITS[@]}"; do
    [[ -f $SUITE/tests/$unit.tcl ]] || { echo "run.sh: no such unit: $unit" >&2; SETUP_FAILED=1; continue; }
    log=$LOGDIR/$unit.log
    slog=$LOGDIR/$unit.server.log
    mkdir -p "$(dirname "$log")"
    echo "-- $unit"
    if ! start_server "$slog"; then
        echo "run.sh: $SERVER_NAME did not start for $unit (see $slog)" >&2
        stop_server
        R_NOTE[$unit]="server did not start"; SETUP_FAILED=1
        continue
    fi
    args=(--host 127.0.0.1 --port "$PORT" --singledb --ignore-encoding --ignore-digest
          --tags -needs:debug --tags -needs:repl --timeout "$TIMEOUT" --single "$unit")
    [[ $DURABLE -eq 1 ]] && args+=(--durable)
    start=$SECONDS
    rc=0
    (cd "$SUITE_RUN" && TERM=dumb ./runtest "${args[@]}") >"$log" 2>&1 </dev/null || rc=$?
    alive=1; kill -0 "$SERVER_PID" 2>/dev/null || alive=0
    stop_server
    R_OK[$unit]=$(count "$log" ok)
    R_ERR[$unit]=$(count "$log" err)
    R_EXC[$unit]=$(count "$log" exception)
    note=""
    if [[ ${R_EXC[$unit]} -gt 0 ]]; then note="aborted by the exception"
    elif ! grep -q '^\[1/1 done\]' "$log"; then note="unit did not finish"; fi
    grep -q '^\[TIMEOUT\]' "$log" && note="timeout"
    [[ $alive -eq 0 ]] && note="${note:+$note; }server died (see $slog)"
    if ! grep -q '^Testing ' "$log"; then note="suite did not start (rc $rc)"; SETUP_FAILED=1; fi
    R_NOTE[$unit]=$note
    echo "   ok ${R_OK[$unit]}, err ${R_ERR[$unit]}, exception ${R_EXC[$unit]} ($((SECONDS - start)) s) ${note:+- $note}"
    if [[ ${R_EXC[$unit]} -gt 0 ]]; then
        DETAILS+="$unit:"$'\n'"$(exception_detail "$log" | sed 's/^/    /')"$'\n'
    fi
done

# ------------------------------------------------------------------ table
echo
printf '%-20s %6s %6s %10s %8s  %s\n' unit ok err exception redis-ok note
t_ok=0 t_err=0 t_exc=0 t_ref=0
for unit in "${UNITS[@]}"; do
    [[ -v R_OK[$unit] || -v R_NOTE[$unit] ]] || continue
    o=${R_OK[$unit]:-0} e=${R_ERR[$unit]:-0} x=${R_EXC[$unit]:-0} ref=${REDIS_OK[$unit]:-} mark="*"
    rlog=$OUT/against-redis/$unit.log
    if [[ -f $rlog ]] && grep -q '^\[1/1 done\]' "$rlog"; then ref=$(count "$rlog" ok); mark=""; fi
    printf '%-20s %6s %6s %10s %8s  %s\n' "$unit" "$o" "$e" "$x" "${ref:--}${ref:+$mark}" "${R_NOTE[$unit]:-}"
    t_ok=$((t_ok + o)); t_err=$((t_err + e)); t_exc=$((t_exc + x)); t_ref=$((t_ref + ${ref:-0}))
done
printf '%-20s %6s %6s %10s %8s\n' total "$t_ok" "$t_err" "$t_exc" "$t_ref"
echo "(redis-ok: what redis-server $REDIS_VERSION passed in target/redis-tcl/against-redis/; with *:"
echo " the count in shared/reference/reliability.md, no --against-redis run yet. Logs: ${LOGDIR#"$ROOT"/}/)"
if [[ -n $DETAILS ]]; then
    echo
    echo "exceptions (each aborted the rest of its unit):"
    printf '%s' "$DETAILS"
fi
exit $SETUP_FAILED
