#!/usr/bin/env bash
# scripts/demo.sh as `make demo` runs it, without a terminal: it must run the
# rollout to completion, print plain progress lines and the expected summary,
# and leave no process or file behind, also when interrupted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO="$FERRY_SOURCE_DIR/scripts/demo.sh"
ferry_bin ferry-cloud >/dev/null
ferry_bin ferry-gateway >/dev/null
ferry_bin ferry-edge >/dev/null

# The pids the demo says it started, one per line.
demo_pids() {
    grep -o ' pid [0-9]*' "$1" | awk '{print $2}'
}

# wait_until SECS CMD...: polls CMD; fails after SECS.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    while ((SECONDS < deadline)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# None of the demo's processes runs any more: neither a pid it printed nor
# anything whose command line names its folder.
nothing_left() {
    local out=$1 dir=$2 pid
    for pid in $(demo_pids "$out"); do
        if kill -0 "$pid" 2>/dev/null; then
            echo "still running: $(ps -o pid=,args= -p "$pid")"
            return 1
        fi
    done
    if pgrep -f -- "$dir" >/dev/null; then
        echo "still running: $(pgrep -af -- "$dir")"
        return 1
    fi
    return 0
}

# Runs the demo with its work folder under $TEST_TMP/NAME, with SIGINT at
# its default disposition (as in a terminal; bash would ignore it in a
# background job).
start_demo() {
    local name=$1
    mkdir -p "$TEST_TMP/$name"
    TMPDIR="$TEST_TMP/$name" python3 -c '
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp("bash", ["bash"] + sys.argv[1:])' "$DEMO" "$FERRY_BUILD_DIR" >"$TEST_TMP/$name.out" 2>&1 &
    DEMO_PID=$!
    kill_at_exit "$DEMO_PID"
}

# --- a full run through a pipe ------------------------------------------------------
mkdir -p "$TEST_TMP/full"
SECONDS=0
TMPDIR="$TEST_TMP/full" bash "$DEMO" "$FERRY_BUILD_DIR" 2>&1 | cat >"$TEST_TMP/full.out"
rc=${PIPESTATUS[0]}
took=$SECONDS
echo "demo took ${took}s"
check "the demo exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || sed 's/^/    demo: /' "$TEST_TMP/full.out" | tail -40
check "it prints the expected summary" \
    grep -qx "summary: success=4 rolled-back=1 rejected=1 failed=0" "$TEST_TMP/full.out"
check "it finishes well within its 120 s bound" test "$took" -lt 120
check "without a terminal it prints no escape sequences" \
    bash -c "! grep -q $'\033' '$TEST_TMP/full.out'"
check "it prints a line as nodes download" \
    grep -Eq '^[0-9:]+Z node-[0-9] downloading [0-9]+% ' "$TEST_TMP/full.out"
check "the busy node deferred" grep -q ' node-busy deferred .*device is busy' "$TEST_TMP/full.out"
check "the unhealthy node rolled back" \
    grep -Eq '^ +node-unhealthy +rolled-back +health check of 1\.1\.0 failed' "$TEST_TMP/full.out"
check "the node of another hardware model rejected the release" \
    grep -Eq '^ +node-sensor +rejected +incompatible-hw' "$TEST_TMP/full.out"
check "it started the broker, cloud, gateway and six nodes" \
    test "$(demo_pids "$TEST_TMP/full.out" | wc -l)" -eq 9
check "no process it started is left running" nothing_left "$TEST_TMP/full.out" "$TEST_TMP/full"
check "its work folder is gone" test -z "$(ls -A "$TEST_TMP/full")"

# --- interrupted during the rollout (Ctrl-C) ---------------------------------------
start_demo int
if wait_until 60 grep -q "is signed and published" "$TEST_TMP/int.out"; then
    pass "the interrupted demo reached the rollout"
else
    fail "the demo never published: $(tail -5 "$TEST_TMP/int.out")"
fi
sleep 1
kill -INT "$DEMO_PID"
wait "$DEMO_PID"
check "SIGINT ends the demo with 130" test $? -eq 130
check "... saying so" grep -q "demo: interrupted" "$TEST_TMP/int.out"
check "... leaving no process running" nothing_left "$TEST_TMP/int.out" "$TEST_TMP/int"
check "... and no work folder" test -z "$(ls -A "$TEST_TMP/int")"

# --- terminated while starting up ------------------------------------------------------
start_demo term
wait_until 30 grep -q "node-sensor" "$TEST_TMP/term.out"
kill -TERM "$DEMO_PID"
wait "$DEMO_PID"
check "SIGTERM during start-up ends the demo with 143" test $? -eq 143
check "... leaving no process running" nothing_left "$TEST_TMP/term.out" "$TEST_TMP/term"

finish
