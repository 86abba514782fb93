#!/usr/bin/env bash
# A release reaching a fleet: one ferry-gateway, many ferry-edge nodes on this
# machine, from `ferry-cloud publish` until the cloud's inventory holds a
# `success` record of the new version from every node.
# A benchmark, not a test: it asserts nothing about speed (it fails only if
# a node never confirms or installs the wrong bytes) and is never run by ctest.
#
#   bench/fleet_bench.sh [RUNS]     RUNS rounds (default 3)
#
# Environment:
#   FERRY_BUILD_DIR   where to build (default build-bench, RelWithDebInfo)
#   BENCH_NO_BUILD=1  use the binaries already in FERRY_BUILD_DIR
#   BENCH_NODES       ferry-edge nodes (default 100)
#   BENCH_KIB         release size in KiB (default 1024)
#   BENCH_MAXDL       gateway --max-downloads values, one run each per round
#                     (default "8 32")
#   BENCH_POLL        nodes' --poll-interval (default 2s)
#   BENCH_TMP         work folder's parent (default $TMPDIR or /tmp); the
#                     nodes' slots and journals are written there
#   BENCH_KEEP=1      keep the work folder
#   BENCH_EDGE_LOG    the nodes' --log-level (default info)
#
# One run: a fresh gateway (its own cache) and a fresh fleet (node ids and
# product line unique to the run, so the inventory tells runs apart) are
# started against one broker and one `ferry-cloud serve`. Once every node has
# reported `idle`, a 1 KiB first release brings every node to `success`, so
# the measured releases find nodes that have installed before, as in a
# fleet's life. Then two measured releases of BENCH_KIB random bytes each:
#   cold    the gateway fetches the artifact when the release arrives, as
#           in a real rollout;
#   cached  the same bytes were published before as a release of another
#           product line, so the gateway holds them already: this is the
#           CoAP distribution alone.
# Each is timed from just before `ferry-cloud publish` is exec'd (signing and
# the MQTT publish included) until a poll of the inventory's nodes table
# (SQLite, every 100 ms) finds every node at `success` with the new version.
# Also reported: when the gateway had the artifact verified and cached (its
# log; before the publish for `cached`), when the first and the median node
# were seen confirmed, the gateway's CPU over the span and its VmHWM (the
# peak is reset at the publish through /proc/PID/clear_refs), and all nodes'
# CPU over the span. Every node's slots are compared with the artifact.
#
# Nodes share 127.0.0.1 here, unlike a real fleet. Two clients bound with
# SO_REUSEADDR may get the same ephemeral UDP port (libcoap's stock
# coap-client does this); the gateway would see them as one session. ferry-edge
# leaves the port to connect(), which never shares one, but the script checks
# anyway (ss) right after the nodes start and restarts one node of any pair,
# counting them as port_clashes (0 in every run so far).
set -uo pipefail

BENCH_NAME=fleet_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${1:-3}
NODES=${BENCH_NODES:-100}
KIB=${BENCH_KIB:-1024}
MAXDL=${BENCH_MAXDL:-8 32}
POLL=${BENCH_POLL:-2s}
FLEET=bench
TIMEOUT_S=900
bench_setup "$RUNS" mosquitto mosquitto_pub python3 ss cmp sha256sum
WAIT_TICK=0.05

# Summed utime+stime of many live processes, in ms.
cpu_sum_ms() {
    local pid sum=0
    for pid in "$@"; do
        sum=$((sum + $(cpu_ms "$pid")))
    done
    echo "$sum"
}

# fleet_count PREFIX STATE [VERSION]: nodes whose latest record matches.
fleet_count() {
    python3 - "$DB" "$@" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
q = "SELECT COUNT(*) FROM nodes WHERE node LIKE ? AND state = ?"
args = [sys.argv[2] + "%", sys.argv[3]]
if len(sys.argv) > 4:
    q += " AND version = ?"
    args.append(sys.argv[4])
print(db.execute(q, args).fetchone()[0])
PY
}

# Local UDP ports that two or more of these pids hold; prints "port pid pid..."
# per clash.
port_clashes() {
    ss -Huanp 2>/dev/null | python3 -c '
import re, sys
want = set(sys.argv[1:])
owners = {}
for line in sys.stdin:
    f = line.split()
    if len(f) < 5:
        continue
    port = f[3].rsplit(":", 1)[-1]
    for pid in re.findall(r"pid=(\d+)", line):
        if pid in want:
            owners.setdefault(port, set()).add(pid)
for port, pids in owners.items():
    if len(pids) > 1:
        print(port, *sorted(pids))
' "$@"
}

declare -A NODE_PID=()

start_node() {
    local name=$1
    "$EDGE" --gateway "coap://127.0.0.1:$GW_PORT" --id "$name" --product "$PRODUCT" \
        --hw-model "$MODEL" \
        --state-dir "$RUN_DIR/nodes/$name" --trust "$TRUST" --poll-interval "$POLL" \
        --request-timeout 10 --busy-retry 1 --max-image-mb $(((KIB + 1023) / 1024)) \
        --log-level "${BENCH_EDGE_LOG:-info}" >>"$RUN_DIR/nodes/$name.log" 2>&1 &
    NODE_PID[$name]=$!
    PIDS+=("$!")
}

stop_node() {
    local pid=${NODE_PID[$1]}
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    forget "$pid"
}

# publish FILE VERSION SEQ: the release of FILE in the run's product line.
publish() {
    "$CLOUD" publish --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --store "$WORK/store" \
        --key "$(ls "$WORK"/keys/release-*.key)" --artifact "$1" --version "$2" --seq "$3" \
        --product "$PRODUCT" --hw-model "$MODEL" >/dev/null 2>"$RUN_DIR/publish.log" ||
        die "publish failed: $(cat "$RUN_DIR/publish.log")"
}

# wait_success VERSION T0_MS: one poller for the whole wait, reading the
# nodes table every 100 ms and noting when each node of the run was first
# seen at success with VERSION. Prints "last first median" (ms after T0_MS).
wait_success() {
    python3 - "$DB" "$TAG-" "$1" "$NODES" "$TIMEOUT_S" "$2" <<'PY'
import sqlite3, statistics, sys, time
path, prefix, version, n, timeout, t0 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), \
    float(sys.argv[5]), int(sys.argv[6])
db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
seen = {}
deadline = time.time() + timeout
while len(seen) < n and time.time() < deadline:
    for (node,) in db.execute("SELECT node FROM nodes WHERE node LIKE ? AND state = 'success'"
                              " AND version = ?", (prefix + "%", version)):
        seen.setdefault(node, int(time.time() * 1000) - t0)
    if len(seen) < n:
        time.sleep(0.1)
if len(seen) < n:
    states = db.execute("SELECT state, COUNT(*) FROM nodes WHERE node LIKE ? GROUP BY state",
                        (prefix + "%",)).fetchall()
    print("timeout", len(seen), states)
    sys.exit(1)
d = sorted(seen.values())
print(d[-1], d[0], int(statistics.median(d)))
PY
}

# measure KIND MAXDL RUN GW_PID FILE VERSION SEQ: publishes FILE for the run's
# model and waits for every node's success; one result line.
measure() {
    local kind=$1 maxdl=$2 run=$3 gw=$4 art=$5 version=$6 seq=$7 sha
    sha=$(sha256sum "$art" | cut -d' ' -f1)
    sync
    echo 5 >"/proc/$gw/clear_refs" || die "cannot reset the gateway's VmHWM"
    local gw0 edges0 t0 t1
    gw0=$(cpu_ms "$gw")
    edges0=$(cpu_sum_ms "${NODE_PID[@]}")
    t0=$(now_ms)
    publish "$art" "$version" "$seq"
    wait_success "$version" "$t0" >"$RUN_DIR/poll-$kind.out"
    local rc=$?
    t1=$(now_ms)
    local gw_cpu=$(($(cpu_ms "$gw") - gw0)) edges_cpu=$(($(cpu_sum_ms "${NODE_PID[@]}") - edges0))
    local rss
    rss=$(proc_kb "$gw" VmHWM)
    [ "$rc" -eq 0 ] || die "$TAG $kind: not every node confirmed in ${TIMEOUT_S}s: $(cat "$RUN_DIR/poll-$kind.out")"
    local last first med
    read -r last first med <"$RUN_DIR/poll-$kind.out"
    local cached
    cached=$(python3 - "$RUN_DIR/gw.log" "$sha" "$t0" <<'PY'
import datetime, sys
for line in open(sys.argv[1]):
    if "artifact %s verified and cached" % sys.argv[2] in line:
        t = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
        t = t.replace(tzinfo=datetime.timezone.utc)
        print(int(t.timestamp() * 1000) - int(sys.argv[3]))
        break
else:
    print("NA")
PY
)
    local bad=0 name
    for name in "${NAMES[@]}"; do
        cmp -s "$art" "$RUN_DIR/nodes/$name/slot-a.img" ||
            cmp -s "$art" "$RUN_DIR/nodes/$name/slot-b.img" || bad=$((bad + 1))
    done
    ((bad == 0)) || die "$TAG $kind: $bad nodes hold no slot with the release's bytes"
    echo "$kind-maxdl-$maxdl run=$run wall_ms=$last gw_cached_ms=$cached first_ms=$first median_ms=$med" \
        "gw_cpu_ms=$gw_cpu gw_peak_kb=$rss edges_cpu_ms=$edges_cpu poll_ms=$((t1 - t0))" \
        "port_clashes=$CLASHES"
}

# fleet_run MAXDL RUN: a fleet, a first release, then two measured ones.
fleet_run() {
    local maxdl=$1 run=$2
    local tag="r$2-d$1"
    TAG=$tag
    RUN_DIR="$WORK/$tag"
    MODEL="m-$tag"
    PRODUCT="p-$tag" # the broker keeps earlier runs' releases: never this run's line
    mkdir -p "$RUN_DIR/nodes"
    GW_PORT=$(free_port udp)
    "$GATEWAY" --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --id "gw-$tag" \
        --cache-dir "$RUN_DIR/cache" --state-dir "$RUN_DIR/state" --trust "$TRUST" \
        --coap-addr 127.0.0.1 --coap-port "$GW_PORT" --max-downloads "$maxdl" --log-level info \
        2>"$RUN_DIR/gw.log" &
    local gw=$!
    PIDS+=("$gw")
    wait_for 30 "$gw" grep -q "coap: serving" "$RUN_DIR/gw.log" ||
        die "gateway $tag never served CoAP: $RUN_DIR/gw.log"
    NODE_PID=()
    local i name
    NAMES=()
    for ((i = 1; i <= NODES; i++)); do
        name=$(printf '%s-n%03d' "$tag" "$i")
        NAMES+=("$name")
        start_node "$name"
    done
    # Every node has bound its socket once it sent its first request; by
    # then its first record is on its way.
    local line pids
    CLASHES=0
    nap 1
    while read -r line; do
        [ -n "$line" ] || continue
        read -r _ pids <<<"$line"
        for name in "${NAMES[@]}"; do
            if [ "${NODE_PID[$name]}" = "${pids##* }" ]; then
                stop_node "$name"
                start_node "$name"
                CLASHES=$((CLASHES + 1))
            fi
        done
    done <<<"$(port_clashes "${NODE_PID[@]}")"
    local deadline=$((SECONDS + 120))
    until [ "$(fleet_count "$tag-" idle)" -ge "$NODES" ]; do
        ((SECONDS < deadline)) || die "$tag: only $(fleet_count "$tag-" idle) of $NODES nodes reported idle"
        nap 0.5
    done
    [ -z "$(port_clashes "${NODE_PID[@]}")" ] || die "$tag: nodes still share a UDP port"
    nap 1
    # A first, small release: the measured ones then reach nodes that have
    # installed before.
    head -c 1024 /dev/urandom >"$RUN_DIR/warmup.bin"
    publish "$RUN_DIR/warmup.bin" "1.$run.$maxdl" "$((run * 1000 + maxdl * 2))"
    wait_success "1.$run.$maxdl" "$(now_ms)" >"$RUN_DIR/warmup.out" ||
        die "$tag: the first release did not reach every node: $(cat "$RUN_DIR/warmup.out")"
    nap 1
    # Cold: the gateway fetches the artifact when the release arrives.
    local art="$RUN_DIR/cold.bin"
    head -c $((KIB << 10)) /dev/urandom >"$art"
    measure cold "$maxdl" "$run" "$gw" "$art" "2.$run.$maxdl" "$((run * 1000 + maxdl * 2 + 1))"
    nap 1
    # Cached: the same bytes reached the gateway earlier, as another
    # product's release that no node is interested in.
    art="$RUN_DIR/cached.bin"
    head -c $((KIB << 10)) /dev/urandom >"$art"
    local sha
    sha=$(sha256sum "$art" | cut -d' ' -f1)
    "$CLOUD" publish --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --store "$WORK/store" \
        --key "$(ls "$WORK"/keys/release-*.key)" --artifact "$art" --version "0.$run.$maxdl" \
        --seq "$((run * 1000 + maxdl * 2))" --hw-model "other-$tag" --product "precache-$tag" \
        >/dev/null 2>"$RUN_DIR/publish.log" || die "publish failed: $(cat "$RUN_DIR/publish.log")"
    wait_for 60 "$gw" test -e "$RUN_DIR/cache/$sha" || die "$tag: the gateway never cached $sha"
    nap 1
    measure cached "$maxdl" "$run" "$gw" "$art" "3.$run.$maxdl" "$((run * 1000 + maxdl * 2 + 2))"
    for name in "${NAMES[@]}"; do
        kill "${NODE_PID[$name]}" 2>/dev/null
    done
    for name in "${NAMES[@]}"; do
        wait "${NODE_PID[$name]}" 2>/dev/null
        forget "${NODE_PID[$name]}"
    done
    kill "$gw"
    wait "$gw" 2>/dev/null
    forget "$gw"
    # Later gateways need not fetch this run's releases.
    local product
    for product in firmware precache; do
        mosquitto_pub -p "$PORT" -r -n -t "ferry/v1/$FLEET/release/$product" ||
            die "could not clear the retained $product release"
    done
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$RUN_DIR"
}

summarise() {
    python3 "$SRC/bench/medians.py" "$1" wall_ms gw_cached_ms first_ms median_ms gw_cpu_ms \
        gw_peak_kb edges_cpu_ms port_clashes
}

build ferry-cloud ferry-gateway ferry-edge
ulimit -n 65536 2>/dev/null || true

RESULTS="$WORK/results.txt"
: >"$RESULTS"
start_broker
start_serve
echo "# fleet_bench: $NODES nodes, $KIB KiB, --max-downloads $MAXDL, --poll-interval $POLL, $RUNS rounds;" \
    "source $(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown); $(nproc) CPUs," \
    "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); $(date -u +%FT%TZ);" \
    "work folder on $(df --output=fstype "$WORK" | tail -1)"
for ((run = 1; run <= RUNS; run++)); do
    for m in $MAXDL; do
        sync
        fleet_run "$m" "$run" >"$WORK/line"
        tee -a "$RESULTS" <"$WORK/line"
    done
done
summarise "$RESULTS"
