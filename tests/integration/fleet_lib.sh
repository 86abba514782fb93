# shellcheck shell=bash
# shellcheck disable=SC2034 # FLEET_OFF, RECORDS_* and STOP_BAD are for the tests to read
# Shared set-up for the fleet rollout tests (test_rollout*.sh): many
# ferry-edge processes behind one ferry-gateway, with the cloud's inventory
# as the witness of what every node reported. Source after lib.sh,
# start_mosquitto and relay_lib.sh.
#
#   start_gw [flags...]            ferry-gateway "gw1" on 127.0.0.1:$COAP_PORT
#   start_gw_as ID PORT [flags...] another gateway
#   start_node NAME MODEL [flags...]  a ferry-edge; state in $TEST_TMP/nodes/NAME,
#                                  log appended to $TEST_TMP/nodes/NAME.log
#   stop_node NAME / kill_node NAME   SIGTERM (and wait) / SIGKILL
#   inventory_check CHECK ARGS...  one look at `ferry-cloud status --json`
#   wait_fleet SECS STATE VERSION NODE...  until every NODE's latest record
#                                  has this state and version
#   records_complete SECS NODE...  the inventory's records table holds every
#                                  seq 1..last of each node, last being the
#                                  highest seq the node's own log handed out
#   stop_all PID... / no_sanitizer_reports   a clean shutdown at the end

EDGE=$(ferry_bin ferry-edge)
COAP_PORT=${COAP_PORT:-$(free_port udp)}
NODES_DIR="$TEST_TMP/nodes"
mkdir -p "$NODES_DIR"
declare -A NODE_PID=()
declare -A NODE_ARGS=()
declare -A NODE_GATEWAY=() # a node's --gateway when not the gateway itself

# start_gw_as ID PORT [flags...]: a gateway with its cache and state under
# $TEST_TMP/ID, log in $TEST_TMP/ID.log; sets GW_PID.
start_gw_as() {
    local id=$1 port=$2
    shift 2
    ferry_start_gateway "$id" "$TEST_TMP/$id" "$TEST_TMP/$id.log" \
        --coap-addr 127.0.0.1 --coap-port "$port" --log-level debug "$@"
    GW_PID=$FERRY_PID
    kill_at_exit "$GW_PID"
}

start_gw() {
    start_gw_as gw1 "$COAP_PORT" "$@"
}

# start_node NAME MODEL [extra ferry-edge flags...]. A restart without flags
# reuses the ones the node was first started with.
start_node() {
    local name=$1 model=$2
    shift 2
    if [ $# -gt 0 ]; then
        NODE_ARGS[$name]=$(printf '%q ' "$@")
    elif [ -z "${NODE_ARGS[$name]+x}" ]; then
        NODE_ARGS[$name]=
    fi
    local -a extra
    eval "extra=(${NODE_ARGS[$name]})"
    ferry_start_edge "$name" "${NODE_GATEWAY[$name]:-coap://127.0.0.1:$COAP_PORT}" "$model" \
        "$NODES_DIR/$name" "$NODES_DIR/$name.log" \
        --poll-interval 2 --request-timeout 10 --busy-retry 1 --max-image-mb 4 \
        --log-level "${EDGE_LOG_LEVEL:-info}" "${extra[@]}"
    NODE_PID[$name]=$FERRY_PID
    kill_at_exit "$FERRY_PID"
}

stop_node() {
    kill -TERM "${NODE_PID[$1]}" 2>/dev/null
    wait "${NODE_PID[$1]}" 2>/dev/null
}

kill_node() {
    kill -KILL "${NODE_PID[$1]}" 2>/dev/null
    wait "${NODE_PID[$1]}" 2>/dev/null
}

status_json() {
    "$CLOUD" status --db "$DB" --json 2>/dev/null
}

# "state version seq error" of a node's latest record, or nothing.
node_row() {
    status_json | python3 -c '
import json, sys
for row in json.load(sys.stdin):
    if row["node"] == sys.argv[1]:
        print(row["state"], row["version"] or "-", row["seq"], row["error"] or "-")
' "$1"
}

# True when every NODE's latest record has STATE and VERSION (STATE may be
# STATE:ERROR, e.g. failed:hash-mismatch); otherwise prints the nodes that
# differ (on stdout, for a failure message).
fleet_is() {
    local state=$1 version=$2
    shift 2
    status_json | python3 -c '
import json, sys
want_state, want_version, nodes = sys.argv[1], sys.argv[2], sys.argv[3:]
want_state, _, want_error = want_state.partition(":")
rows = {r["node"]: r for r in json.load(sys.stdin)}
off = []
for n in nodes:
    r = rows.get(n)
    if (r is None or r["state"] != want_state or r["version"] != want_version or
            (want_error and r["error"] != want_error)):
        off.append("%s=%s" % (n, "none" if r is None else "%s/%s/%s" % (
            r["state"], r["version"] or "-", r["error"] or "-")))
print(" ".join(off[:8]) + (" (+%d more)" % (len(off) - 8) if len(off) > 8 else ""))
sys.exit(1 if off else 0)
' "$state" "$version" "$@"
}

# wait_fleet SECS STATE VERSION NODE...: sets FLEET_OFF to the last mismatch.
wait_fleet() {
    local secs=$1 deadline
    shift
    deadline=$((SECONDS + secs))
    while :; do
        FLEET_OFF=$(fleet_is "$@") && return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# The highest seq a node's own log says it handed out.
node_last_seq() {
    grep -ho 'status [0-9][0-9]*: ' "$NODES_DIR/$1.log" | awk '{s = $2 + 0} s > m {m = s} END {print m + 0}'
}

# For every NODE: the records table holds exactly the seqs 1..last, where
# last is node_last_seq. Prints the nodes that differ ("n1 count/max/last").
records_check() {
    local args=() n
    for n in "$@"; do
        args+=("$n" "$(node_last_seq "$n")")
    done
    python3 - "$DB" "${args[@]}" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
pairs = sys.argv[2:]
off = []
for node, last in zip(pairs[0::2], pairs[1::2]):
    count, top, low = db.execute(
        "SELECT COUNT(*), COALESCE(MAX(seq), 0), COALESCE(MIN(seq), 0)"
        " FROM records WHERE node = ?", (node,)).fetchone()
    if count != top or top != int(last) or (count and low != 1) or count == 0:
        off.append("%s %d/%d/%s" % (node, count, top, last))
print(" ".join(off))
sys.exit(1 if off else 0)
EOF
}

# records_complete SECS NODE...: waits for the last records to arrive, then
# checks; sets RECORDS_OFF and RECORDS_TOTAL (records of these nodes).
records_complete() {
    local secs=$1 deadline
    shift
    deadline=$((SECONDS + secs))
    while :; do
        RECORDS_OFF=$(records_check "$@") && break
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
    RECORDS_TOTAL=$(python3 - "$DB" "$@" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
q = "SELECT COUNT(*) FROM records WHERE node IN (%s)" % ",".join("?" * len(sys.argv[2:]))
print(db.execute(q, sys.argv[2:]).fetchone()[0])
EOF
)
    return 0
}

# SHA-256 of the boot state and slots: what a rejected release must not touch.
state_hash() {
    (cd "$NODES_DIR/$1" && sha256sum slot-a.img slot-b.img boot.* 2>/dev/null) | sha256sum | cut -d' ' -f1
}

# The slot (slot-a.img or slot-b.img) of a node that holds FILE's bytes.
slot_holding() {
    local s
    for s in slot-a.img slot-b.img; do
        if cmp -s "$2" "$NODES_DIR/$1/$s"; then
            echo "$s"
            return 0
        fi
    done
    return 1
}

# release FILE VERSION SEQ [publish flags...]: signs and publishes FILE (the
# flags name the models); prints the release id.
release() {
    local file=$1 version=$2 seq=$3
    shift 3
    "$CLOUD" publish --broker "$BROKER" --fleet "$FLEET" --store "$STORE" --key "$KEY" \
        --artifact "$file" --version "$version" --seq "$seq" "$@" 2>>"$TEST_TMP/publish.log"
}

# stop_all PID...: SIGTERM to every process, then waits for each; sets
# STOP_BAD to "PID:STATUS " for those that did not exit 0 (a sanitizer's
# abort, a crash on the way out, a hang past 30 s). Call it in this shell,
# not in $(...): only this shell can wait for its children.
stop_all() {
    ferry_stop_all 30 "$@"
    STOP_BAD=$FERRY_STOP_BAD
}

# True when no log under $TEST_TMP holds a sanitizer report.
no_sanitizer_reports() {
    ! grep -rlE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TEST_TMP" --include='*.log'
}
