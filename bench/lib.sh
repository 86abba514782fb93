# shellcheck shell=bash
# shellcheck disable=SC2034 # TRUST, DB, CLOUD, GATEWAY, EDGE and PROXY are for the scripts to read
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
# FLEET set by the script.

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=${FERRY_BUILD_DIR:-$SRC/build-bench}
TICK_MS=$((1000 / $(getconf CLK_TCK)))

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
    trap cleanup EXIT
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
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    rm -rf "${EXTRA_CLEANUP[@]}"
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

# A sleep that forks nothing, so polling costs the measured processes no CPU.
exec {NAP_FD}<> <(:)
nap() {
    read -r -t "$1" -u "$NAP_FD" || true
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
    local secs=$1 pid=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        nap "${WAIT_TICK:-0.01}"
    done
    return 1
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
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "${1:-tcp}"
}

# start_broker: mosquitto on a free loopback port (PORT, BROKER_PID),
# logging errors, warnings and the types in BROKER_LOG_TYPES to
# WORK/mosquitto.log. Runs as root here, so it keeps root (see field notes).
start_broker() {
    local attempt types="" t
    for t in error warning ${BROKER_LOG_TYPES:-}; do
        types="${types}log_type $t"$'\n'
    done
    for attempt in 1 2 3 4 5; do
        PORT=$(free_port tcp)
        cat >"$WORK/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
user root
persistence false
log_dest file $WORK/mosquitto.log
${types}
EOF
        mosquitto -c "$WORK/mosquitto.conf" >/dev/null 2>&1 &
        BROKER_PID=$!
        if wait_for 10 "$BROKER_PID" bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then
            PIDS+=("$BROKER_PID")
            return 0
        fi
        echo "broker did not start on port $PORT (attempt $attempt)" >&2
        kill "$BROKER_PID" 2>/dev/null
        wait "$BROKER_PID" 2>/dev/null
    done
    die "mosquitto would not start"
}

# start_serve: a signing key (TRUST: its public half) and `ferry-cloud serve`
# on the broker (SERVE_PID, inventory DB), once it is connected.
start_serve() {
    "$CLOUD" keygen --out-dir "$WORK/keys" >/dev/null || die "keygen failed"
    TRUST=$(ls "$WORK"/keys/release-*.pub)
    DB="$WORK/inventory.db"
    "$CLOUD" serve --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --store "$WORK/store" \
        --db "$DB" --log-level info >"$WORK/serve.log" 2>&1 &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
    wait_for 10 "$SERVE_PID" grep -q "connected to" "$WORK/serve.log" ||
        die "serve did not connect: $(cat "$WORK/serve.log")"
}
