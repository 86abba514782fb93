# shellcheck shell=bash
# shellcheck disable=SC2034 # TRUST, DB, CLOUD, GATEWAY, EDGE, PROXY and BROKER_PID are for the scripts to read
# What the benchmark scripts share: a work folder cleaned up on exit with the
# processes they started, fork-free sleeps and clocks, /proc readings, the
# build, free ports and a throw-away mosquitto. Source it after setting
# BENCH_NAME (the script's name in messages) and before parsing anything:
#
#   BENCH_NAME=fleet_bench
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It sets SRC (the checkout), BUILD (FERRY_BUILD_DIR, default build-bench)
# and TICK_MS. bench_setup makes WORK and the clean-up; WAIT_TICK is
# wait_for's poll period (default 0.01 s). start_serve needs CLOUD and
# FLEET set by the script. The primitives under these names (clean-up,
# sleeps, polling, ports, mosquitto, keys, serve) are scripts/lib/ferry.sh's,
# shared with the integration tests and the demo.

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=${FERRY_BUILD_DIR:-$SRC/build-bench}
TICK_MS=$((1000 / $(getconf CLK_TCK)))

# shellcheck source=scripts/lib/ferry.sh
source "$SRC/scripts/lib/ferry.sh"

die() {
    echo "$BENCH_NAME: $*" >&2
    exit 1
}

# bench_setup RUNS TOOL...: checks RUNS and the tools, makes WORK (under
# BENCH_TMP, TMPDIR or /tmp) and arms the clean-up. EXTRA_CLEANUP (paths)
# is removed with WORK.
bench_setup() {
    local runs=$1 tool
    shift
    [[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$runs'"
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is not installed"
    done
    WORK="$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/ferry-$BENCH_NAME-XXXXXX")"
    PIDS=()
    EXTRA_CLEANUP=()
    ferry_at_exit cleanup
    trap 'exit 130' INT TERM
}

# A waited-for PID leaves the list, so clean-up never signals a reused PID.
forget() {
    local i
    for i in "${!PIDS[@]}"; do
        [ "${PIDS[$i]}" = "$1" ] && unset "PIDS[$i]"
    done
}

# Signals every process first and then waits, so a hundred nodes stop together.
cleanup() {
    ferry_stop_all 30 "${PIDS[@]}"
    rm -rf "${EXTRA_CLEANUP[@]}"
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

# A sleep that forks nothing, so polling costs the measured processes no CPU.
nap() {
    ferry_nap "$1"
}

now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    echo $((t / 1000))
}

# utime+stime of a live process, in ms (0 once it is gone).
cpu_ms() {
    local stat
    stat=$(<"/proc/$1/stat") 2>/dev/null || {
        echo 0
        return
    }
    # Fields after the command name, which may hold spaces: ")" ends it.
    local -a f
    read -r -a f <<<"${stat##*) }"
    echo $(((f[11] + f[12]) * TICK_MS))
}

# proc_kb PID FIELD: a "kB" line of /proc/PID/status (VmHWM, VmRSS, RssAnon).
proc_kb() {
    awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# wait_for SECS PID CMD...: polls CMD every WAIT_TICK; fails after SECS or
# as soon as PID has exited.
wait_for() {
    local secs=$1 pid=$2
    shift 2
    FERRY_POLL=${WAIT_TICK:-0.01} FERRY_WAIT_PID=$pid ferry_wait_until "$secs" "$@"
}

# build TARGET...: a RelWithDebInfo build of the programs named in BUILD
# (skipped with BENCH_NO_BUILD=1), then CLOUD, GATEWAY, EDGE and PROXY set to
# those of them that were named; dies if one is missing, warns if BUILD is not an
# optimised build.
build() {
    if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
        compile "$@"
    fi
    local t bin
    for t in "$@"; do
        case $t in
        ferry-cloud) bin=$BUILD/cloud-bridge/ferry-cloud CLOUD=$bin ;;
        ferry-gateway) bin=$BUILD/gateway/ferry-gateway GATEWAY=$bin ;;
        ferry-edge) bin=$BUILD/edge-client/ferry-edge EDGE=$bin ;;
        ferry-udp-proxy) bin=$BUILD/tests/ferry-udp-proxy PROXY=$bin ;;
        *) die "build: unknown program $t" ;;
        esac
        [ -x "$bin" ] || die "no $t under $BUILD"
    done
    grep -q '^CMAKE_BUILD_TYPE:STRING=RelWithDebInfo' "$BUILD/CMakeCache.txt" 2>/dev/null ||
        echo "$BENCH_NAME: warning: $BUILD is not a RelWithDebInfo build" >&2
}

compile() {
    # GCC's flow-dependent warnings (uninitialised, null, truncation) change
    # with the optimiser and the compiler version. A benchmark measures, it
    # does not lint: they stay warnings here (the project's -Werror still
    # makes the rest fatal, and CI builds with it unchanged).
    local soft="" w
    for w in maybe-uninitialized null-dereference format-truncation format-overflow \
        stringop-overflow stringop-truncation array-bounds; do
        soft="$soft -Wno-error=$w"
    done
    if ! cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_C_FLAGS=$soft" \
        >"$WORK/cmake.log" 2>&1 ||
        ! cmake --build "$BUILD" -j2 --target "$@" >>"$WORK/cmake.log" 2>&1; then
        tail -30 "$WORK/cmake.log" >&2
        die "build failed"
    fi
}

# free_port [tcp|udp]: a port free on 127.0.0.1 at the time of asking.
free_port() {
    ferry_free_port "${1:-tcp}"
}

# start_broker: mosquitto on a free loopback port (PORT, BROKER_PID),
# logging errors, warnings and the types in BROKER_LOG_TYPES to
# WORK/mosquitto.log. Runs as root here, so it keeps root (see field notes).
start_broker() {
    local -a lines=("log_dest file $WORK/mosquitto.log")
    local t
    for t in error warning ${BROKER_LOG_TYPES:-}; do
        lines+=("log_type $t")
    done
    ferry_mosquitto_start "$WORK/mosquitto.conf" /dev/null "${lines[@]}" ||
        die "mosquitto would not start"
    PORT=$FERRY_MOSQ_PORT
    BROKER_PID=$FERRY_MOSQ_PID
    PIDS+=("$BROKER_PID")
}

# start_serve: a signing key (TRUST: its public half) and `ferry-cloud serve`
# on the broker (SERVE_PID, inventory DB), once it is connected.
start_serve() {
    ferry_keygen "$WORK/keys" || die "keygen failed"
    TRUST=$FERRY_PUB
    DB="$WORK/inventory.db"
    : >"$WORK/serve.log"
    BROKER="mqtt://127.0.0.1:$PORT" STORE="$WORK/store" \
        ferry_start_serve "$WORK/serve.log" --log-level info
    SERVE_PID=$FERRY_PID
    PIDS+=("$SERVE_PID")
    wait_for 10 "$SERVE_PID" grep -q "connected to" "$WORK/serve.log" ||
        die "serve did not connect: $(cat "$WORK/serve.log")"
}
