# shellcheck shell=bash
# Helpers for tests/integration/test_*.sh. Source it first:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   CLOUD=$(ferry_bin ferry-cloud) || exit 1
#   expect_status 0 "keygen works" "$CLOUD" keygen --out-dir "$TEST_TMP/keys"
#   finish                       # prints "N passed, M failed", exits non-zero on failure
#
# What it gives a test:
#   TEST_TMP              a fresh folder, removed at exit (kept if FERRY_KEEP_TMP=1)
#   at_exit CMD...        run CMD at exit, latest first (lib.sh owns the EXIT trap:
#                         register clean-ups here instead of trapping EXIT)
#   kill_at_exit PID      kill PID (and wait for it) at exit
#   ferry_bin NAME        path of a built binary under $FERRY_BUILD_DIR
#   free_port [tcp|udp]   a port on 127.0.0.1 nothing is bound to right now
#   wait_tcp PORT [SECS]  until a TCP connect to 127.0.0.1:PORT succeeds
#   start_mosquitto [LINE...]  a private broker; sets MOSQ_PORT MOSQ_PID MOSQ_CONF MOSQ_LOG
#                         (the latest one started; needs mosquitto, ss and python3)
#   stop_mosquitto / restart_mosquitto  same config and port
#   pass/fail/check/expect_status/expect_output  counted results
#   run CMD...            run and keep RUN_RC, RUN_STDOUT, RUN_STDERR (files) for inspection
#
# The counters live in this shell: call these from the test's top level, not
# from a subshell or a pipeline. The primitives under these names (clean-up,
# ports, mosquitto) are scripts/lib/ferry.sh's, shared with the benchmarks
# and the demo.

set -uo pipefail

FERRY_TESTS_PASSED=0
FERRY_TESTS_FAILED=0

if [ -z "${FERRY_BUILD_DIR:-}" ]; then
    FERRY_BUILD_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build"
fi
if [ -z "${FERRY_SOURCE_DIR:-}" ]; then
    FERRY_SOURCE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fi
export FERRY_BUILD_DIR FERRY_SOURCE_DIR

# shellcheck source=scripts/lib/ferry.sh
source "$FERRY_SOURCE_DIR/scripts/lib/ferry.sh"

TEST_TMP="$(mktemp -d "${TMPDIR:-/tmp}/ferry-it-XXXXXX")"
RUN_STDOUT="$TEST_TMP/.run.stdout"
RUN_STDERR="$TEST_TMP/.run.stderr"
RUN_RC=0

at_exit() {
    ferry_at_exit "$@"
}

kill_at_exit() {
    ferry_kill_at_exit "$1"
}

# The first action registered runs last: TEST_TMP goes after everything
# that used it has stopped.
remove_test_tmp() {
    if [ "${FERRY_KEEP_TMP:-0}" = 1 ]; then
        echo "kept $TEST_TMP" >&2
    else
        rm -rf "$TEST_TMP"
    fi
}
at_exit remove_test_tmp
trap 'exit 130' INT TERM

# Stops the whole test: for broken preconditions, not for test failures.
die() {
    echo "ERROR: $*" >&2
    exit 1
}

ferry_bin() {
    local name=$1 dir
    for dir in cloud-bridge gateway edge-client bench tests .; do
        if [ -x "$FERRY_BUILD_DIR/$dir/$name" ]; then
            echo "$FERRY_BUILD_DIR/$dir/$name"
            return 0
        fi
    done
    die "$name not found under $FERRY_BUILD_DIR (build it first)"
}

free_port() {
    ferry_free_port "${1:-tcp}"
}

# Succeeds once a TCP connect to 127.0.0.1:PORT works; fails after SECS.
wait_tcp() {
    FERRY_POLL=0.1 ferry_wait_until "${2:-10}" ferry_tcp_open "$1"
}

# Starts mosquitto on a free port with a generated config; extra arguments
# are config lines appended after the listener line (so per-listener TLS
# settings apply to it). Retries on a port collision.
start_mosquitto() {
    MOSQ_DIR="$(mktemp -d "$TEST_TMP/mosquitto-XXXX")"
    MOSQ_CONF="$MOSQ_DIR/mosquitto.conf"
    MOSQ_LOG="$MOSQ_DIR/mosquitto.log"
    if ! ferry_mosquitto_start "$MOSQ_CONF" "$MOSQ_LOG" "log_dest stderr" "log_type all" "$@"; then
        cat "$MOSQ_LOG" >&2
        die "mosquitto would not start; config: $MOSQ_CONF"
    fi
    MOSQ_PORT=$FERRY_MOSQ_PORT
    MOSQ_PID=$FERRY_MOSQ_PID
    kill_at_exit "$MOSQ_PID"
}

stop_mosquitto() {
    kill "$MOSQ_PID" 2>/dev/null
    wait "$MOSQ_PID" 2>/dev/null
    return 0
}

# Same config, same port: clients reconnect to where they were.
restart_mosquitto() {
    stop_mosquitto
    local attempt
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        if ferry_mosquitto_launch "$MOSQ_CONF" "$MOSQ_LOG" "$MOSQ_PORT"; then
            MOSQ_PID=$FERRY_MOSQ_PID
            kill_at_exit "$MOSQ_PID"
            return 0
        fi
        sleep 0.5
    done
    die "mosquitto would not restart on port $MOSQ_PORT"
}

pass() {
    FERRY_TESTS_PASSED=$((FERRY_TESTS_PASSED + 1))
    echo "PASS: $*"
}

fail() {
    FERRY_TESTS_FAILED=$((FERRY_TESTS_FAILED + 1))
    echo "FAIL: $*"
}

_show_last_run() {
    sed 's/^/    stdout: /' "$RUN_STDOUT" | head -20
    sed 's/^/    stderr: /' "$RUN_STDERR" | head -20
}

run() {
    "$@" >"$RUN_STDOUT" 2>"$RUN_STDERR"
    RUN_RC=$?
}

# check DESC CMD...: passes if CMD succeeds.
check() {
    local desc=$1
    shift
    run "$@"
    if [ "$RUN_RC" -eq 0 ]; then
        pass "$desc"
    else
        fail "$desc (exit $RUN_RC: $*)"
        _show_last_run
    fi
}

# expect_status CODE DESC CMD...: passes if CMD exits with CODE; its output
# stays in RUN_STDOUT/RUN_STDERR for expect_output.
expect_status() {
    local want=$1 desc=$2
    shift 2
    run "$@"
    if [ "$RUN_RC" -eq "$want" ]; then
        pass "$desc"
    else
        fail "$desc (exit $RUN_RC, expected $want: $*)"
        _show_last_run
    fi
}

# expect_output stdout|stderr TEXT DESC: the last run's stream contains TEXT
# (fixed string, case-insensitive).
expect_output() {
    local stream=$1 text=$2 desc=$3 file
    case $stream in
    stdout) file=$RUN_STDOUT ;;
    stderr) file=$RUN_STDERR ;;
    *) die "expect_output: stream must be stdout or stderr" ;;
    esac
    if grep -qiF -- "$text" "$file"; then
        pass "$desc"
    else
        fail "$desc ($stream lacks '$text')"
        _show_last_run
    fi
}

finish() {
    echo "$FERRY_TESTS_PASSED passed, $FERRY_TESTS_FAILED failed"
    if [ "$FERRY_TESTS_FAILED" -ne 0 ] || [ "$FERRY_TESTS_PASSED" -eq 0 ]; then
        exit 1
    fi
    exit 0
}
