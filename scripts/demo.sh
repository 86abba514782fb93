#!/usr/bin/env bash
# The Ferry demo: one release rolled out on loopback, with real processes.
#
#   scripts/demo.sh [BUILD_DIR]        (what `make demo` runs)
#
# It starts mosquitto on a free port, `ferry-cloud serve`, one ferry-gateway
# and six ferry-edge nodes, signs and publishes a release, and follows the
# rollout with `ferry-cloud status --watch --wait` until every node is in a
# final state. On a terminal the view is redrawn in place; otherwise (CI, a
# pipe) it prints a line per report. The nodes:
#   node-1, node-2, node-3  healthy: download, install, pass the health check
#   node-busy               busy for ~10 s once it has the image: defers, then installs
#   node-unhealthy          its health check fails: the update rolls back
#   node-sensor             another hardware model (demo-sensor) of the same product line
# Expected outcome: 4 success, 1 rolled-back, 1 rejected. It prints a summary
# (and a "summary:" line for scripts) and exits 0 when the outcome is that,
# 1 otherwise or after FERRY_DEMO_TIMEOUT seconds (default 120). Every
# process it started is stopped on exit, also on Ctrl-C. FERRY_DEMO_KEEP=1
# keeps the work folder (logs, inventory) afterwards.
set -uo pipefail

# shellcheck source=scripts/lib/ferry.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/ferry.sh"

BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || {
    echo "demo: build folder '${1:-build}' not found (run 'make build' first)" >&2
    exit 1
}
TIMEOUT=${FERRY_DEMO_TIMEOUT:-120}
CLOUD="$BUILD/cloud-bridge/ferry-cloud"
GATEWAY="$BUILD/gateway/ferry-gateway"
EDGE="$BUILD/edge-client/ferry-edge"
FLEET=demo
MODEL=demo-board
VERSION=1.1.0
IMAGE_MB=4
BUSY_SECONDS=10
NODES=(node-1 node-2 node-3 node-busy node-unhealthy node-sensor)
DEADLINE=$((SECONDS + TIMEOUT))

for bin in "$CLOUD" "$GATEWAY" "$EDGE"; do
    [ -x "$bin" ] || {
        echo "demo: $bin is missing (run 'make build' first)" >&2
        exit 1
    }
done
for tool in mosquitto python3; do
    command -v "$tool" >/dev/null || {
        echo "demo: $tool is not installed (scripts/deps.sh installs it)" >&2
        exit 1
    }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo-XXXXXX")
PIDS=()  # the stack: each must keep running
WATCH="" # the live view
KEEP=${FERRY_DEMO_KEEP:-0}

# Stops what the demo started, by pid: SIGTERM, then SIGKILL after 5 s.
cleanup() {
    trap - INT TERM
    # shellcheck disable=SC2086 # WATCH is one pid or nothing
    ferry_stop_all 5 $WATCH "${PIDS[@]}"
    if [ "$KEEP" = 1 ]; then
        echo "demo: work folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
ferry_at_exit cleanup
trap 'echo; echo "demo: interrupted"; exit 130' INT
trap 'echo "demo: terminated"; exit 143' TERM

fail() {
    echo "demo: $*" >&2
    KEEP=1
    exit 1
}

remaining() {
    echo $((DEADLINE - SECONDS))
}

# started NAME: records the pid of what ferry_start_* started last.
started() {
    PIDS+=("$FERRY_PID")
    printf '  %-15s pid %s\n' "$1" "$FERRY_PID"
}

# wait_for SECS WHAT CMD...: polls CMD until it succeeds, within the demo's time.
wait_for() {
    local secs=$1 what=$2
    shift 2
    (((SECONDS + secs) > DEADLINE)) && secs=$((DEADLINE - SECONDS))
    FERRY_POLL=0.2 ferry_wait_until "$secs" "$@" ||
        fail "timed out waiting for $what (logs in $WORK)"
}

start_broker() {
    ferry_mosquitto_start "$WORK/mosquitto.conf" "$WORK/mosquitto.log" "log_dest stderr" ||
        fail "mosquitto would not start: $(tail -3 "$WORK/mosquitto.log")"
    MQTT_PORT=$FERRY_MOSQ_PORT
    PIDS+=("$FERRY_MOSQ_PID")
    printf '  %-15s pid %s, 127.0.0.1:%s\n' mosquitto "$FERRY_MOSQ_PID" "$MQTT_PORT"
}

# start_edge NODE MODEL [flags...]
start_edge() {
    local node=$1 model=$2
    shift 2
    ferry_start_edge "$node" "coap://127.0.0.1:$COAP_PORT" "$model" "$WORK/nodes/$node" \
        "$WORK/nodes/$node.log" --poll-interval 2s --request-timeout 5s --max-image-mb 16 \
        --block-size 256 "$@"
    started "$node"
}

inventory_count() {
    "$CLOUD" status --db "$DB" --json 2>/dev/null | grep -c '"node":'
}

all_nodes_reported() {
    [ "$(inventory_count)" -ge "${#NODES[@]}" ]
}

# Every process the demo relies on is still running.
stack_alive() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || return 1
    done
}

# ---- the stack ---------------------------------------------------------------------
echo "Ferry demo: a release rolled out on loopback to ${#NODES[@]} edge nodes"
echo "Work folder: $WORK"
echo
mkdir -p "$WORK/nodes"
ferry_keygen "$WORK/keys" || fail "ferry-cloud keygen failed"
KEY=$FERRY_KEY
PUB=$FERRY_PUB
echo "Release-signing key $(basename "$KEY" .key) made with ferry-cloud keygen."
echo "Starting:"
start_broker
BROKER="mqtt://127.0.0.1:$MQTT_PORT"
DB="$WORK/inventory.db"
STORE="$WORK/store"
ferry_start_serve "$WORK/serve.log" --instance demo
started "ferry-cloud"
COAP_PORT=$(ferry_free_port udp)
# Two downloads at a time: the others wait their turn (5.03 with Max-Age).
ferry_start_gateway gw-1 "$WORK/gw-1" "$WORK/gw-1.log" --coap-addr 127.0.0.1 \
    --coap-port "$COAP_PORT" --max-downloads 2
started "ferry-gateway"
touch "$WORK/busy"
start_edge node-1 "$MODEL" --hw-revision B
start_edge node-2 "$MODEL" --hw-revision B
start_edge node-3 "$MODEL" --hw-revision B
# Busy while the file exists; the first question leaves a mark, and the demo
# removes the file BUSY_SECONDS after that, whenever the node's turn came.
start_edge node-busy "$MODEL" --hw-revision B --busy-retry 1s \
    --busy-cmd "touch '$WORK/busy-asked'; test -e '$WORK/busy'"
start_edge node-unhealthy "$MODEL" --hw-revision B \
    --health-cmd 'echo "self-test: sensor not responding" >&2; exit 1'
# It follows the same product line, so it is offered the release and must refuse it.
start_edge node-sensor demo-sensor

wait_for 30 "every node to report to the cloud" all_nodes_reported
stack_alive || fail "a process stopped during start-up (logs in $WORK)"
echo "All ${#NODES[@]} nodes reported idle through gw-1 to the cloud."
echo

# ---- the release ---------------------------------------------------------------------
head -c $((IMAGE_MB * 1024 * 1024)) /dev/urandom >"$WORK/firmware-$VERSION.bin"
echo "Publishing firmware $VERSION ($IMAGE_MB MiB) for $MODEL revision B..."
RELEASE=$("$CLOUD" publish --broker "$BROKER" --fleet "$FLEET" --store "$STORE" \
    --key "$KEY" --artifact "$WORK/firmware-$VERSION.bin" --version "$VERSION" --seq 1 \
    --hw-model "$MODEL" --hw-revision B 2>"$WORK/publish.log") ||
    fail "publish failed: $(cat "$WORK/publish.log")"
echo "Release $RELEASE is signed and published. node-busy will say it is busy for"
echo "${BUSY_SECONDS} s once it has the image."
echo
START=$SECONDS

# ---- the live view -------------------------------------------------------------------
# In the background so that a signal reaches the trap at once, and so the
# other processes can be watched meanwhile.
"$CLOUD" status --db "$DB" --release "$RELEASE" --expect "${#NODES[@]}" --watch --wait \
    --interval 500ms --timeout "$(remaining)s" 2>"$WORK/status.err" &
WATCH=$!
BUSY_SINCE=""
while kill -0 "$WATCH" 2>/dev/null; do
    if ! stack_alive; then
        kill "$WATCH" 2>/dev/null
        fail "a process stopped during the rollout (logs in $WORK)"
    fi
    if [ -z "$BUSY_SINCE" ] && [ -e "$WORK/busy-asked" ]; then
        BUSY_SINCE=$SECONDS
    fi
    [ -n "$BUSY_SINCE" ] && ((SECONDS - BUSY_SINCE >= BUSY_SECONDS)) && rm -f "$WORK/busy"
    sleep 0.5
done
wait "$WATCH"
rc=$?
echo
case $rc in
0 | 3) ;; # settled: all succeeded (3: some did not, as this demo intends)
4) fail "the rollout did not settle within ${TIMEOUT} s: $(cat "$WORK/status.err")" ;;
*) fail "ferry-cloud status failed (exit $rc): $(cat "$WORK/status.err")" ;;
esac

# ---- the summary ---------------------------------------------------------------------
"$CLOUD" status --db "$DB" --release "$RELEASE" --json >"$WORK/final.json" ||
    fail "could not read the inventory"
echo "Rollout of $RELEASE settled in $((SECONDS - START)) s:"
python3 - "$WORK/final.json" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
by_state = {}
for r in rows:
    by_state.setdefault(r["state"], []).append(r)
for state in ("success", "rolled-back", "rejected", "failed"):
    for r in by_state.get(state, []):
        why = ": ".join(x for x in (r["error"], r["message"]) if x)
        print("  %-15s %-12s %s" % (r["node"], state,
                                    "runs " + r["version"] if state == "success" else why))
print("summary: " + " ".join("%s=%d" % (s, len(by_state.get(s, [])))
                             for s in ("success", "rolled-back", "rejected", "failed")))
EOF
summary=$(python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
print(" ".join(sorted(r["state"] for r in rows)))' "$WORK/final.json")
if [ "$summary" != "rejected rolled-back success success success success" ]; then
    fail "unexpected outcome: $summary (expected 4 success, 1 rolled-back, 1 rejected)"
fi
echo
echo "As expected: the healthy nodes and the busy one (once free) run $VERSION, the unhealthy"
echo "node went back to its old image, and the demo-sensor node refused a release not made for it."
exit 0
