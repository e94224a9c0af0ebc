#!/usr/bin/env bash
# Runs cli_script.txt through redis-cli against two servers and fails on any difference.
#
# Usage: cli_compare.sh HOST:PORT_A HOST:PORT_B
#   A is normally a real redis-server, B the server under test (raftis).
#
# Each server is FLUSHALLed, then the script is fed to one non-interactive redis-cli session on
# standard input (one command a line), once with the default output for a pipe (raw) and once
# with --no-raw (the formatted output a person sees: "(integer) 1", "(nil)", quoted strings).
# Before each command an `ECHO "@@@ N"` marker is sent, so the outputs can be labelled with the
# command that produced them and a difference reads as "which command, what each server said".
# Exit status: 0 when the outputs match, 1 on any difference (printed as a unified diff),
# 2 on a usage error or when a server cannot be reached.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 HOST:PORT_A HOST:PORT_B" >&2
    exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRIPT="${CLI_SCRIPT:-$HERE/cli_script.txt}"
REDIS_CLI="${REDIS_CLI:-redis-cli}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

split_addr() { # HOST:PORT -> "HOST PORT"
    local addr="$1"
    if [[ "$addr" != *:* ]]; then
        echo "bad address '$addr' (want HOST:PORT)" >&2
        exit 2
    fi
    echo "${addr%:*} ${addr##*:}"
}
read -r HOST_A PORT_A <<<"$(split_addr "$1")"
read -r HOST_B PORT_B <<<"$(split_addr "$2")"

# The commands, without blank lines, and the feed with a marker before each one.
grep -v '^[[:space:]]*$' "$SCRIPT" >"$WORK/commands"
NCMD="$(wc -l <"$WORK/commands")"
awk '{ printf "ECHO \"@@@ %d\"\n%s\n", NR, $0 }' "$WORK/commands" >"$WORK/feed"

flushall() { # HOST PORT LABEL
    local out
    if ! out="$("$REDIS_CLI" -h "$1" -p "$2" FLUSHALL 2>&1)" || [[ "$out" != "OK" ]]; then
        echo "FLUSHALL on $3 ($1:$2) failed: $out" >&2
        exit 2
    fi
}

# Runs the feed against one server and labels the output: each marker line becomes
# ">>> N: <command>", so a diff shows the command above the replies that differ.
run_pass() { # HOST PORT LABEL OUTFILE [redis-cli options...]
    local host="$1" port="$2" label="$3" outfile="$4"
    shift 4
    flushall "$host" "$port" "$label"
    local raw="$WORK/raw.$label"
    local rc=0
    "$REDIS_CLI" -h "$host" -p "$port" "$@" <"$WORK/feed" >"$raw" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]]; then
        echo ">>> redis-cli exited with status $rc" >>"$raw"
    fi
    # cat -v makes control and non-ASCII bytes visible (the raw pass prints values as they are).
    cat -v "$raw" | awk -v cmdfile="$WORK/commands" '
        BEGIN { n = 0; while ((getline line < cmdfile) > 0) cmd[++n] = line }
        /^"?@@@ [0-9]+"?$/ { s = $0; gsub(/[^0-9]/, "", s); print ">>> " s ": " cmd[s]; next }
        { print }
    ' >"$outfile"
    local seen
    seen="$(grep -c '^>>> [0-9]*: ' "$outfile" || true)"
    if [[ "$seen" -ne "$NCMD" ]]; then
        echo ">>> only $seen of $NCMD commands were run on $label" >>"$outfile"
    fi
}

status=0
for mode in raw no-raw; do
    if [[ $mode == raw ]]; then opts=(); else opts=(--no-raw); fi
    run_pass "$HOST_A" "$PORT_A" A "$WORK/a.$mode" ${opts[@]+"${opts[@]}"}
    run_pass "$HOST_B" "$PORT_B" B "$WORK/b.$mode" ${opts[@]+"${opts[@]}"}
    if diff -a -u --label "A $1 ($mode)" --label "B $2 ($mode)" "$WORK/a.$mode" "$WORK/b.$mode"; then
        echo "cli_compare: $mode output identical ($NCMD commands)"
    else
        echo "cli_compare: $mode output DIFFERS (see diff above)"
        status=1
    fi
done
exit $status
