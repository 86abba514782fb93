# shellcheck shell=bash
# shellcheck disable=SC2034 # the FERRY_* results are for the callers to read
# The shell primitives Ferry's integration tests, benchmarks and demo share,
# each written once. tests/integration/lib.sh, bench/lib.sh and
# scripts/demo.sh source it and keep their own names as thin wrappers:
#
#   # shellcheck source=scripts/lib/ferry.sh
#   source "$SRC/scripts/lib/ferry.sh"
#
# Nothing here exits or prints on success: a function that cannot do its
# job returns non-zero, and the caller decides (a test's die, a
# benchmark's die, the demo's fail). Variables a function sets are named
# FERRY_*; the ones it reads are said next to it.
#
#   ferry_at_exit CMD...         run CMD (one string, eval'd) at exit, latest
#                                first; the first call arms the EXIT trap
#   ferry_kill_at_exit PID       kill PID and wait for it at exit
#   ferry_stop_all GRACE PID...  SIGTERM to all, then each gets until GRACE s
#                                from now before SIGKILL; FERRY_STOP_BAD lists
#                                "PID:STATUS " of those that did not exit 0
#   ferry_nap SECS               a sleep that forks nothing
#   ferry_wait_until SECS CMD... polls CMD every FERRY_POLL s (default 0.05)
#                                until it succeeds; fails after SECS, or as
#                                soon as process FERRY_WAIT_PID (if set) is gone
#   ferry_free_port [tcp|udp]    a port nothing is bound to on 127.0.0.1 now
#   ferry_tcp_open PORT          a TCP connect to 127.0.0.1:PORT works now
#   ferry_log_lines FILE         lines FILE holds now (0 when missing)
#   ferry_log_has FILE FROM RE   a line of FILE after line FROM matches RE
#                                (grep's basic regular expression)
#   ferry_mosquitto_conf PORT [LINE...]  a private broker's config on stdout:
#                                the listener, anonymous clients, no
#                                persistence, root kept when run as root (each
#                                default dropped when a LINE sets it), LINEs
#   ferry_mosquitto_launch CONF LOG PORT  starts mosquitto -c CONF (output
#                                appended to LOG); ok once the port answers
#                                and is this process's; sets FERRY_MOSQ_PID
#   ferry_mosquitto_start CONF LOG [LINE...]  a free port, its config, the
#                                launch, retried on a collision; sets
#                                FERRY_MOSQ_PORT and FERRY_MOSQ_PID
#   ferry_keygen DIR [ROLE]      `ferry-cloud keygen` (CLOUD) into DIR; sets
#                                FERRY_KEY and FERRY_PUB
#   ferry_start_serve LOG [flags...]  `ferry-cloud serve` on BROKER, FLEET,
#                                STORE, DB, output appended to LOG; FERRY_PID
#   ferry_start_gateway ID DIR LOG [flags...]  ferry-gateway (GATEWAY) ID on
#                                BROKER and FLEET, trusting PUB, cache and
#                                state under DIR; FERRY_PID
#   ferry_start_edge ID URL MODEL DIR LOG [flags...]  ferry-edge (EDGE) ID of
#                                MODEL behind the gateway at URL, trusting PUB,
#                                state in DIR; FERRY_PID

[ -n "${FERRY_SH_LOADED:-}" ] && return 0
FERRY_SH_LOADED=1

# ---- clean-up ---------------------------------------------------------------

FERRY_EXIT_ACTIONS=()

ferry_run_exit_actions() {
    local i
    for ((i = ${#FERRY_EXIT_ACTIONS[@]} - 1; i >= 0; i--)); do
        eval "${FERRY_EXIT_ACTIONS[$i]}" || true
    done
    FERRY_EXIT_ACTIONS=()
}

ferry_at_exit() {
    if [ ${#FERRY_EXIT_ACTIONS[@]} -eq 0 ] && [ -z "${FERRY_EXIT_ARMED:-}" ]; then
        trap ferry_run_exit_actions EXIT
        FERRY_EXIT_ARMED=1
    fi
    FERRY_EXIT_ACTIONS+=("$*")
}

ferry_kill_at_exit() {
    ferry_at_exit "kill $1 2>/dev/null; wait $1 2>/dev/null"
}

ferry_stop_all() {
    local grace=$1 pid rc deadline
    shift
    FERRY_STOP_BAD=
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null
    done
    deadline=$((SECONDS + grace))
    for pid in "$@"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            ferry_nap 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        rc=$?
        [ "$rc" -eq 0 ] || FERRY_STOP_BAD+="$pid:$rc "
    done
}

# ---- time -------------------------------------------------------------------

# A read that never gets data times out: a sleep without a fork, so polling
# costs the measured processes no CPU.
exec {FERRY_NAP_FD}<> <(:)
ferry_nap() {
    read -r -t "$1" -u "$FERRY_NAP_FD" || true
}

ferry_wait_until() {
    local secs=$1 deadline
    shift
    deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        "$@" && return 0
        if [ -n "${FERRY_WAIT_PID:-}" ] && ! kill -0 "$FERRY_WAIT_PID" 2>/dev/null; then
            return 1
        fi
        ferry_nap "${FERRY_POLL:-0.05}"
    done
    return 1
}

# ---- ports and logs ---------------------------------------------------------

# ferry_free_port [tcp|udp]: a port free on 127.0.0.1 now, taken below the
# kernel's ephemeral range. A port from that range can be handed to a
# client's socket later: libcoap's clients set SO_REUSEADDR, so a
# coap-client may be given a server's UDP port while the server holds it,
# and then talks to itself (its own request answered 4.04).
ferry_free_port() {
    python3 -c 'import random, socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
    low = int(f.read().split()[0])
for _ in range(200):
    port = random.randrange(10000, max(low, 10001))
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    sys.exit(0)
sys.exit("no free port below the ephemeral range")' "${1:-tcp}"
}

ferry_tcp_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ferry_log_lines() {
    if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

ferry_log_has() {
    tail -n +$(($2 + 1)) "$1" 2>/dev/null | grep -q -- "$3"
}

# ---- mosquitto --------------------------------------------------------------

# True if one of the config lines sets the directive $1.
_ferry_mosq_sets() {
    local key=$1 line
    shift
    for line in "$@"; do
        [[ "$line" =~ ^[[:space:]]*"$key"[[:space:]] ]] && return 0
    done
    return 1
}

ferry_mosquitto_conf() {
    local port=$1 line
    shift
    echo "listener $port 127.0.0.1"
    _ferry_mosq_sets allow_anonymous "$@" || echo "allow_anonymous true"
    # As root, mosquitto would switch to user mosquitto, who cannot read a
    # test's folder.
    if [ "$(id -u)" -eq 0 ] && ! _ferry_mosq_sets user "$@"; then
        echo "user root"
    fi
    _ferry_mosq_sets persistence "$@" || echo "persistence false"
    for line in "$@"; do
        echo "$line"
    done
}

ferry_mosquitto_launch() {
    local conf=$1 log=$2 port=$3 deadline
    mosquitto -c "$conf" >>"$log" 2>&1 &
    FERRY_MOSQ_PID=$!
    deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$FERRY_MOSQ_PID" 2>/dev/null; then
            wait "$FERRY_MOSQ_PID" 2>/dev/null
            return 1
        fi
        # The port must be ours: a connect alone may reach whoever won a
        # collision on it.
        if { ! command -v ss >/dev/null ||
            ss -Hltnp "sport = :$port" 2>/dev/null | grep -q "pid=$FERRY_MOSQ_PID,"; } &&
            ferry_tcp_open "$port"; then
            return 0
        fi
        ferry_nap 0.1
    done
    kill "$FERRY_MOSQ_PID" 2>/dev/null
    wait "$FERRY_MOSQ_PID" 2>/dev/null
    return 1
}

ferry_mosquitto_start() {
    local conf=$1 log=$2 attempt
    shift 2
    for attempt in 1 2 3 4 5; do
        FERRY_MOSQ_PORT=$(ferry_free_port tcp) || return 1
        ferry_mosquitto_conf "$FERRY_MOSQ_PORT" "$@" >"$conf"
        ferry_mosquitto_launch "$conf" "$log" "$FERRY_MOSQ_PORT" && return 0
        echo "mosquitto did not start on port $FERRY_MOSQ_PORT (attempt $attempt)" >&2
    done
    return 1
}

# ---- Ferry's programs -------------------------------------------------------

ferry_keygen() {
    local dir=$1 role=${2:-}
    local -a flags=()
    [ -n "$role" ] && flags=(--role "$role")
    "$CLOUD" keygen --out-dir "$dir" "${flags[@]}" >/dev/null || return 1
    FERRY_KEY=$(ls "$dir"/"${role:-release}"-*.key) && FERRY_PUB=$(ls "$dir"/"${role:-release}"-*.pub)
}

ferry_start_serve() {
    local log=$1
    shift
    "$CLOUD" serve --broker "$BROKER" --fleet "$FLEET" --store "$STORE" --db "$DB" "$@" \
        >>"$log" 2>&1 &
    FERRY_PID=$!
}

ferry_start_gateway() {
    local id=$1 dir=$2 log=$3
    shift 3
    "$GATEWAY" --broker "$BROKER" --fleet "$FLEET" --id "$id" --cache-dir "$dir/cache" \
        --state-dir "$dir/state" --trust "$PUB" "$@" >>"$log" 2>&1 &
    FERRY_PID=$!
}

ferry_start_edge() {
    local id=$1 url=$2 model=$3 dir=$4 log=$5
    shift 5
    "$EDGE" --gateway "$url" --id "$id" --hw-model "$model" --state-dir "$dir" --trust "$PUB" \
        "$@" >>"$log" 2>&1 &
    FERRY_PID=$!
}
