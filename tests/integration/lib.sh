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
# from a subshell or a pipeline.

set -uo pipefail

FERRY_TESTS_PASSED=0
FERRY_TESTS_FAILED=0
FERRY_EXIT_ACTIONS=()

if [ -z "${FERRY_BUILD_DIR:-}" ]; then
    FERRY_BUILD_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build"
fi
if [ -z "${FERRY_SOURCE_DIR:-}" ]; then
    FERRY_SOURCE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fi
export FERRY_BUILD_DIR FERRY_SOURCE_DIR

TEST_TMP="$(mktemp -d "${TMPDIR:-/tmp}/ferry-it-XXXXXX")"
RUN_STDOUT="$TEST_TMP/.run.stdout"
RUN_STDERR="$TEST_TMP/.run.stderr"
RUN_RC=0

at_exit() {
    FERRY_EXIT_ACTIONS+=("$*")
}

kill_at_exit() {
    at_exit "kill $1 2>/dev/null; wait $1 2>/dev/null"
}

ferry_cleanup() {
    local i
    for ((i = ${#FERRY_EXIT_ACTIONS[@]} - 1; i >= 0; i--)); do
        eval "${FERRY_EXIT_ACTIONS[$i]}" || true
    done
    if [ "${FERRY_KEEP_TMP:-0}" = 1 ]; then
        echo "kept $TEST_TMP" >&2
    else
        rm -rf "$TEST_TMP"
    fi
}
trap ferry_cleanup EXIT
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
    local proto=${1:-tcp}
    python3 - "$proto" <<'EOF'
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
EOF
}

# Succeeds once a TCP connect to 127.0.0.1:PORT works; fails after SECS.
wait_tcp() {
    local port=$1 secs=${2:-10} deadline
    deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# True if one of the extra config lines sets the directive $1.
_mosq_overrides() {
    local key=$1 line
    shift
    for line in "$@"; do
        [[ "$line" =~ ^[[:space:]]*"$key"[[:space:]] ]] && return 0
    done
    return 1
}

_mosq_write_conf() {
    local port=$1
    shift
    {
        echo "listener $port 127.0.0.1"
        _mosq_overrides allow_anonymous "$@" || echo "allow_anonymous true"
        _mosq_overrides user "$@" || echo "user root"
        _mosq_overrides persistence "$@" || echo "persistence false"
        echo "log_dest stderr"
        echo "log_type all"
        local line
        for line in "$@"; do
            echo "$line"
        done
    } >"$MOSQ_CONF"
}

# Starts mosquitto on a free port with a generated config; extra arguments
# are config lines appended after the listener line (so per-listener TLS
# settings apply to it). Retries on a port collision.
start_mosquitto() {
    local attempt
    MOSQ_DIR="$(mktemp -d "$TEST_TMP/mosquitto-XXXX")"
    MOSQ_CONF="$MOSQ_DIR/mosquitto.conf"
    MOSQ_LOG="$MOSQ_DIR/mosquitto.log"
    for attempt in 1 2 3 4 5; do
        MOSQ_PORT=$(free_port tcp) || die "no free port"
        _mosq_write_conf "$MOSQ_PORT" "$@"
        if _mosq_launch; then
            return 0
        fi
        echo "mosquitto did not start on port $MOSQ_PORT (attempt $attempt)" >&2
    done
    cat "$MOSQ_LOG" >&2
    die "mosquitto would not start; config: $MOSQ_CONF"
}

_mosq_launch() {
    mosquitto -c "$MOSQ_CONF" >>"$MOSQ_LOG" 2>&1 &
    MOSQ_PID=$!
    local deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$MOSQ_PID" 2>/dev/null; then
            wait "$MOSQ_PID" 2>/dev/null
            return 1
        fi
        # The port must be ours: a connect alone may reach whoever won a
        # collision on it.
        if ss -Hltnp "sport = :$MOSQ_PORT" 2>/dev/null | grep -q "pid=$MOSQ_PID," &&
            (exec 3<>"/dev/tcp/127.0.0.1/$MOSQ_PORT") 2>/dev/null; then
            kill_at_exit "$MOSQ_PID"
            return 0
        fi
        sleep 0.1
    done
    kill "$MOSQ_PID" 2>/dev/null
    wait "$MOSQ_PID" 2>/dev/null
    return 1
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
        _mosq_launch && return 0
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
