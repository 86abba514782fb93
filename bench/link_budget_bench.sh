#!/usr/bin/env bash
# The gateway's link budget: ten nodes fetching at once behind one
# --link-rate, each with a window of non-confirmable block requests
# (tests/tools/coap_window_fetch.py, the request pattern D2 gives ferry-edge;
# node 1 with a window four times the others'), against the same ten with
# no budget. A benchmark, not a test: it fails only if bytes arrive wrong or
# a fetch never finishes.
#
#   bench/link_budget_bench.sh [RUNS]     RUNS rounds of each kind (default 5)
#
# Environment:
#   FERRY_BUILD_DIR, BENCH_NO_BUILD, BENCH_TMP, BENCH_KEEP   as in bench/lib.sh
#   BENCH_RATE    --link-rate in bytes/s (default 262144)
#   BENCH_NODES   nodes (default 10)
#   BENCH_KIB     artifact size in KiB (default 192)
#   BENCH_RESULTS a file to keep the result lines in
#
# The same rounds run twice over: with the Python fetchers (every request
# timed by the fetcher itself), and with real ferry-edge nodes ("edge-"
# rounds: node 1 started with --max-window 32, the others 8), each node's
# download timed from its own log, from its first `downloading` record to its
# `verifying` one (the nodes start together and hear of the release at once,
# by their first manifest GET).
#
# One round: a fresh ferry-gateway (with or without --link-rate) caches the
# artifact; the fetchers are started, wait until all are up, and are
# released at once (a file they poll for). Each reports its seconds from
# the release to its last block. Per round: the span (the slowest node),
# the counted rate (each 1 KiB block and 64 bytes of headers, as the budget
# counts them) against the budget, each node's goodput, the fastest and
# slowest node, node 1's share, and Jain's fairness index of the goodputs
# (1 = all equal, 1/n = one node got everything).
set -uo pipefail

BENCH_NAME=link_budget_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${1:-5}
RATE=${BENCH_RATE:-262144}
NODES=${BENCH_NODES:-10}
KIB=${BENCH_KIB:-192}
FLEET=bench
FETCH="$SRC/tests/tools/coap_window_fetch.py"
bench_setup "$RUNS" mosquitto python3 cmp sha256sum
build ferry-cloud ferry-gateway ferry-edge
start_broker
start_serve

head -c $((KIB * 1024)) /dev/urandom >"$WORK/a.bin"
SHA=$(sha256sum "$WORK/a.bin" | cut -d' ' -f1)
"$CLOUD" publish --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --store "$WORK/store" \
    --key "$(ls "$WORK"/keys/release-*.key)" --artifact "$WORK/a.bin" --version 1.0.1 --seq 1 \
    --hw-model m1 >/dev/null 2>"$WORK/publish.log" || die "publish failed: $(cat "$WORK/publish.log")"
RESULTS="$WORK/results.txt"
: >"$RESULTS"

# round KIND [gateway flags...]: one round; appends a result line.
round() {
    local kind=$1 n gw_pid coap_port i pids=() ok=0
    shift
    n=$((${n_round:-0} + 1))
    n_round=$n
    coap_port=$(free_port udp)
    rm -rf "$WORK/gw" "$WORK"/go "$WORK"/ready* "$WORK"/n*.json
    "$GATEWAY" --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --id gw-bench \
        --cache-dir "$WORK/gw/cache" --state-dir "$WORK/gw/state" --trust "$TRUST" \
        --coap-port "$coap_port" --coap-addr 127.0.0.1 --max-downloads "$NODES" \
        --log-level warn "$@" >"$WORK/gw.log" 2>&1 &
    gw_pid=$!
    PIDS+=("$gw_pid")
    wait_for 60 "$gw_pid" test -f "$WORK/gw/cache/$SHA" || die "the gateway never cached the artifact"
    for i in $(seq 1 "$NODES"); do
        python3 "$FETCH" --port "$coap_port" --sha "$SHA" --node "node-$i" \
            --window "$([ "$i" = 1 ] && echo 32 || echo 8)" \
            --ready "$WORK/ready$i" --go "$WORK/go" --out "$WORK/n$i.bin" \
            >"$WORK/n$i.json" 2>"$WORK/n$i.err" &
        pids+=($!)
    done
    wait_for 60 "$gw_pid" bash -c "[ \$(ls '$WORK'/ready* 2>/dev/null | wc -l) -eq $NODES ]" ||
        die "the fetchers did not start"
    touch "$WORK/go"
    for i in "${pids[@]}"; do
        wait "$i" && ok=$((ok + 1))
    done
    [ "$ok" -eq "$NODES" ] || die "$kind round $n: $((NODES - ok)) fetch(es) failed: $(cat "$WORK"/n*.err)"
    for i in $(seq 1 "$NODES"); do
        cmp -s "$WORK/n$i.bin" "$WORK/a.bin" || die "$kind round $n: node-$i got wrong bytes"
    done
    kill "$gw_pid"
    wait "$gw_pid" 2>/dev/null
    forget "$gw_pid"
    python3 - "$kind" "$RATE" "$NODES" "$WORK" >>"$RESULTS" <<'PY'
import json, sys
kind, rate, nodes, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
runs = [json.load(open(f"{work}/n{i}.json")) for i in range(1, nodes + 1)]
span = max(r["seconds"] for r in runs)
counted = sum(r["bytes"] // 1024 * (1024 + 64) for r in runs)
good = [r["bytes"] / r["seconds"] for r in runs]
jain = sum(good) ** 2 / (len(good) * sum(g * g for g in good))
print(f"{kind} span_s={span:.3f} counted_Bps={counted / span:.0f} "
      f"of_budget={counted / span / rate:.3f} node_min_s={min(r['seconds'] for r in runs):.3f} "
      f"node_max_s={span:.3f} node1_share={good[0] / sum(good):.3f} jain={jain:.4f} "
      f"retransmits={sum(r['retransmits'] for r in runs)}")
PY
    tail -1 "$RESULTS"
}

# round_edge KIND [gateway flags...]: one round with ferry-edge nodes.
round_edge() {
    local kind=$1 n gw_pid coap_port i pids=() win
    shift
    n=$((${n_round:-0} + 1))
    n_round=$n
    coap_port=$(free_port udp)
    rm -rf "$WORK/gw" "$WORK"/edge-*
    "$GATEWAY" --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --id gw-bench \
        --cache-dir "$WORK/gw/cache" --state-dir "$WORK/gw/state" --trust "$TRUST" \
        --coap-port "$coap_port" --coap-addr 127.0.0.1 --max-downloads "$NODES" \
        --log-level warn "$@" >"$WORK/gw.log" 2>&1 &
    gw_pid=$!
    PIDS+=("$gw_pid")
    wait_for 60 "$gw_pid" test -f "$WORK/gw/cache/$SHA" || die "the gateway never cached the artifact"
    for i in $(seq 1 "$NODES"); do
        win=$([ "$i" = 1 ] && echo 32 || echo 8)
        mkdir -p "$WORK/edge-$i"
        "$EDGE" --gateway "coap://127.0.0.1:$coap_port" --id "node-$i" --hw-model m1 \
            --state-dir "$WORK/edge-$i" --trust "$TRUST" --poll-interval 60 --max-window "$win" \
            --max-image-mb $(((KIB + 1023) / 1024)) --log-level info >"$WORK/edge-$i.log" 2>&1 &
        pids+=($!)
        PIDS+=($!)
    done
    for i in $(seq 1 "$NODES"); do
        wait_for 120 "$gw_pid" grep -q "status [0-9]*: verifying" "$WORK/edge-$i.log" ||
            die "$kind round $n: node-$i never verified: $(tail -3 "$WORK/edge-$i.log")"
    done
    for i in "${pids[@]}"; do
        kill "$i" 2>/dev/null
        wait "$i" 2>/dev/null
        forget "$i"
    done
    kill "$gw_pid"
    wait "$gw_pid" 2>/dev/null
    forget "$gw_pid"
    python3 - "$kind" "$RATE" "$NODES" "$WORK" "$((KIB * 1024))" >>"$RESULTS" <<'PY'
import datetime, re, sys
kind, rate, nodes, work, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
def at(line):
    return datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
spans = []
for i in range(1, nodes + 1):
    start = end = None
    for line in open(f"{work}/edge-{i}.log"):
        if start is None and re.search(r"status \d+: downloading ", line):
            start = at(line)
        if end is None and re.search(r"status \d+: verifying ", line):
            end = at(line)
    spans.append((start, end))
span = max(e for _, e in spans) - min(s for s, _ in spans)
counted = nodes * (size // 1024) * (1024 + 64)
good = [size / (e - s) for s, e in spans]
jain = sum(good) ** 2 / (len(good) * sum(g * g for g in good))
secs = [e - s for s, e in spans]
print(f"{kind} span_s={span:.3f} counted_Bps={counted / span:.0f} "
      f"of_budget={counted / span / rate:.3f} node_min_s={min(secs):.3f} "
      f"node_max_s={max(secs):.3f} node1_share={good[0] / sum(good):.3f} jain={jain:.4f}")
PY
    tail -1 "$RESULTS"
}

for _ in $(seq 1 "$RUNS"); do
    round budget --link-rate "$RATE"
    round unlimited
    round_edge edge-budget --link-rate "$RATE"
    round_edge edge-unlimited
done
cp "$RESULTS" "${BENCH_RESULTS:-/dev/null}"
echo
echo "medians of $RUNS rounds, $NODES nodes x $KIB KiB, --link-rate $RATE:"
python3 - "$SRC/bench" "$RESULTS" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from medians import load, med
rows = load(sys.argv[2])
keys = ["span_s", "counted_Bps", "of_budget", "node_min_s", "node_max_s", "node1_share", "jain"]
print("| run | n | " + " | ".join(keys) + " |")
print("|---" * (len(keys) + 2) + "|")
for kind in rows:
    print(f"| {kind} | {len(rows[kind])} | " +
          " | ".join(f"{med(rows, kind, k):.3f}" if k != "counted_Bps" else f"{med(rows, kind, k):.0f}"
                     for k in keys) + " |")
PY
