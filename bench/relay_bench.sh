#!/usr/bin/env bash
# Cloud -> gateway transfer of one artifact over MQTT, against raw
# mosquitto_pub/mosquitto_sub moving the same bytes through the same broker.
# A benchmark, not a test: it asserts nothing about speed (it fails only if
# bytes arrive wrong or a transfer never finishes) and is never run by ctest.
#
#   bench/relay_bench.sh [RUNS]          RUNS rounds (default 5)
#
# Environment:
#   FERRY_BUILD_DIR   where to build (default build-bench, RelWithDebInfo)
#   BENCH_NO_BUILD=1  use the binaries already in FERRY_BUILD_DIR
#   BENCH_MIB         artifact size in MiB (default 64)
#   BENCH_CHUNKS      gateway --chunk-size values (default "16384 65536")
#   BENCH_TMP         work folder's parent (default $TMPDIR or /tmp); it is
#                     where the gateway's cache and the raw output are written
#   BENCH_KEEP=1      keep the work folder
#   BENCH_PERF=1      time nothing: run one transfer per chunk size with the
#                     gateway under `perf record -g` and serve sampled by
#                     `perf record -p`, and print where their cycles go
#
# One round runs, in this order: Ferry at each chunk size, raw QoS 0, raw
# QoS 1, so Ferry and raw runs alternate and share the noise of the machine.
#
# What is timed:
#   ferry wall   from just before ferry-gateway is exec'd (the release is
#                already retained on the broker and `ferry-cloud serve` is
#                running) until the artifact appears in the cache under its
#                digest. Includes process start-up, MQTT connect, manifest
#                verification, the transfer, both SHA-256 passes and fsyncs.
#   ferry fetch  from the gateway's "fetch: <sha> for release" log line to
#                its "verified and cached" line (log timestamps, 1 ms); split
#                into stream (until "fetch: complete", every chunk written)
#                and finish (the checks before the rename into the cache).
#   raw          from just before mosquitto_pub is exec'd until
#                mosquitto_sub -C 1 exits, the subscriber having subscribed
#                first (seen in the broker's log).
# CPU times are utime+stime from /proc (10 ms ticks); the gateway's are read
# from /proc/PID before it is stopped, with VmHWM as its peak RSS; serve's
# and the broker's are the change over the run. Raw client CPU and RSS come
# from /usr/bin/time.
#
# Output: one line per run, then a table of medians and the ratios
# raw_time / ferry_time (>= 0.5 is the issue's aim), on stdout.
set -uo pipefail

BENCH_NAME=relay_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${1:-5}
MIB=${BENCH_MIB:-64}
CHUNKS=${BENCH_CHUNKS:-16384 65536}
FLEET=bench
TIMEOUT_S=300
bench_setup "$RUNS" mosquitto mosquitto_pub mosquitto_sub python3 /usr/bin/time cmp sha256sum
WAIT_TICK=0.005

setup_release() {
    ARTIFACT="$WORK/artifact.bin"
    head -c $((MIB << 20)) /dev/urandom >"$ARTIFACT"
    SHA=$(sha256sum "$ARTIFACT" | cut -d' ' -f1)
    start_serve
    "$CLOUD" publish --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --store "$WORK/store" \
        --key "$(ls "$WORK"/keys/release-*.key)" --artifact "$ARTIFACT" --version 1.0.0 --seq 1 \
        --hw-model m1 >/dev/null 2>"$WORK/publish.log" || die "publish failed: $(cat "$WORK/publish.log")"
}

# ms between two of the gateway's log timestamps (same UTC day or the next).
log_ms() {
    awk -v a="$2" -v b="$3" '
        function ms(line,   t, p) {
            t = substr(line, 12, 12); split(t, p, "[:.]")
            return ((p[1] * 60 + p[2]) * 60 + p[3]) * 1000 + p[4]
        }
        index($0, a) && !s { s = ms($0) }
        index($0, b) && !e { e = ms($0) }
        END { if (!s || !e) print "NA"; else { d = e - s; if (d < 0) d += 86400000; print d } }
    ' "$1"
}

# gateway_args ID DIR CHUNK: the ferry-gateway command line of one transfer,
# in GW_ARGS.
gateway_args() {
    GW_ARGS=("$GATEWAY" --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --id "$1"
        --cache-dir "$2/cache" --state-dir "$2/state" --trust "$TRUST"
        --coap-addr 127.0.0.1 --coap-port "$(free_port udp)" --chunk-size "$3" --log-level info)
}

# ferry_run CHUNK RUN: prints one result line.
ferry_run() {
    local chunk=$1 run=$2 id="gw-c$1-r$2" dir="$WORK/gw-c$1-r$2"
    mkdir -p "$dir"
    local serve0 broker0 t0 t1 pid gw_cpu rss
    gateway_args "$id" "$dir" "$chunk"
    serve0=$(cpu_ms "$SERVE_PID")
    broker0=$(cpu_ms "$BROKER_PID")
    t0=$(now_ms)
    "${GW_ARGS[@]}" 2>"$dir/gw.log" &
    pid=$!
    PIDS+=("$pid")
    wait_for "$TIMEOUT_S" "$pid" test -e "$dir/cache/$SHA" ||
        die "gateway $id never cached the artifact; log: $dir/gw.log"
    t1=$(now_ms)
    gw_cpu=$(cpu_ms "$pid")
    rss=$(proc_kb "$pid" VmHWM)
    local serve_cpu=$(($(cpu_ms "$SERVE_PID") - serve0)) broker_cpu=$(($(cpu_ms "$BROKER_PID") - broker0))
    kill "$pid"
    wait "$pid" 2>/dev/null
    forget "$pid"
    cmp -s "$ARTIFACT" "$dir/cache/$SHA" || die "gateway $id cached different bytes"
    local fetch_ms stream_ms finish_ms
    fetch_ms=$(log_ms "$dir/gw.log" "fetch: $SHA for release" "artifact $SHA verified and cached")
    stream_ms=$(log_ms "$dir/gw.log" "fetch: $SHA for release" "fetch: complete $SHA")
    finish_ms=$(log_ms "$dir/gw.log" "fetch: complete $SHA" "artifact $SHA verified and cached")
    echo "ferry-$chunk run=$run wall_ms=$((t1 - t0)) fetch_ms=$fetch_ms stream_ms=$stream_ms" \
        "finish_ms=$finish_ms gw_cpu_ms=$gw_cpu" \
        "gw_rss_kb=$rss serve_cpu_ms=$serve_cpu broker_cpu_ms=$broker_cpu"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

# The gateway's pid under perf, which is its parent.
child_of() {
    local kids
    read -r kids <"/proc/$1/task/$1/children" 2>/dev/null
    echo "${kids%% *}"
}

# perf_run CHUNK: one transfer with both Ferry processes sampled; prints the
# hottest symbols of each.
perf_run() {
    local chunk=$1 dir="$WORK/perf-c$1" pid gw serve_perf
    mkdir -p "$dir"
    perf record -q -F 4999 -g -p "$SERVE_PID" -o "$dir/serve.data" 2>"$dir/serve-perf.log" &
    serve_perf=$!
    PIDS+=("$serve_perf")
    nap 0.5
    gateway_args "gw-perf-c$chunk" "$dir" "$chunk"
    perf record -q -F 4999 -g -o "$dir/gw.data" -- "${GW_ARGS[@]}" 2>"$dir/gw.log" &
    pid=$!
    PIDS+=("$pid")
    wait_for "$TIMEOUT_S" "$pid" test -e "$dir/cache/$SHA" ||
        die "profiled gateway never cached the artifact; log: $dir/gw.log"
    gw=$(child_of "$pid")
    [ -n "$gw" ] && kill "$gw"
    wait "$pid" 2>/dev/null
    forget "$pid"
    kill -INT "$serve_perf"
    wait "$serve_perf" 2>/dev/null
    forget "$serve_perf"
    local who
    for who in gw serve; do
        echo "== perf, $who, chunk $chunk: self time by symbol (top 25)"
        perf report -i "$dir/$who.data" --no-children -g none --sort dso,symbol --stdio \
            2>/dev/null | grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -25
    done
}

# raw_run QOS RUN: prints one result line.
raw_run() {
    local qos=$1 run=$2 topic="bench/raw/q$1/r$2" sub="raw-sub-q$1-r$2"
    local out="$WORK/raw.out" sub_pid broker0 t0 t1 rc
    /usr/bin/time -f '%U %S %M' -o "$WORK/sub.time" \
        mosquitto_sub -p "$PORT" -i "$sub" -t "$topic" -q "$qos" -C 1 -N >"$out" &
    sub_pid=$!
    PIDS+=("$sub_pid")
    wait_for 10 "$sub_pid" grep -qF "$sub $qos $topic" "$WORK/mosquitto.log" ||
        die "raw subscriber $sub never subscribed"
    broker0=$(cpu_ms "$BROKER_PID")
    t0=$(now_ms)
    /usr/bin/time -f '%U %S %M' -o "$WORK/pub.time" \
        mosquitto_pub -p "$PORT" -i "raw-pub-q$qos-r$run" -t "$topic" -q "$qos" -f "$ARTIFACT" &
    local pub_pid=$!
    PIDS+=("$pub_pid")
    wait "$sub_pid"
    rc=$?
    t1=$(now_ms)
    forget "$sub_pid"
    local broker_cpu=$(($(cpu_ms "$BROKER_PID") - broker0))
    wait "$pub_pid" || die "mosquitto_pub failed (QoS $qos)"
    forget "$pub_pid"
    [ "$rc" -eq 0 ] || die "mosquitto_sub failed (QoS $qos)"
    cmp -s "$ARTIFACT" "$out" || die "raw QoS $qos delivered different bytes"
    local su ss sm pu ps pm
    read -r su ss sm <"$WORK/sub.time"
    read -r pu ps pm <"$WORK/pub.time"
    echo "raw-q$qos run=$run wall_ms=$((t1 - t0)) sub_cpu_ms=$(awk "BEGIN {print ($su + $ss) * 1000}")" \
        "sub_rss_kb=$sm pub_cpu_ms=$(awk "BEGIN {print ($pu + $ps) * 1000}") pub_rss_kb=$pm" \
        "broker_cpu_ms=$broker_cpu"
    rm -f "$out"
}

# Medians of every numeric field, per kind, then the ratios.
summarise() {
    PYTHONPATH="$SRC/bench" python3 - "$1" <<'PY'
import sys
from medians import load, med, table
rows = load(sys.argv[1])
print("\nmedians over %d runs each" % min(len(v) for v in rows.values()))
table(rows, ["wall_ms", "fetch_ms", "stream_ms", "finish_ms", "gw_cpu_ms", "gw_rss_kb", "serve_cpu_ms",
             "sub_cpu_ms", "sub_rss_kb", "pub_cpu_ms", "pub_rss_kb", "broker_cpu_ms"])
print("\nratio raw_time / ferry_time (medians; the aim is >= 0.5)")
for f in (k for k in rows if k.startswith("ferry")):
    for r in (k for k in rows if k.startswith("raw")):
        print("  %s / %s: wall %.2f, fetch-only %.2f" % (
            r, f, med(rows, r, "wall_ms") / med(rows, f, "wall_ms"),
            med(rows, r, "wall_ms") / med(rows, f, "fetch_ms")))
PY
}

build ferry-cloud ferry-gateway

# The subscribe lines tell when mosquitto_sub is ready.
BROKER_LOG_TYPES="notice information subscribe"
start_broker
setup_release
mode="$RUNS rounds"
[ "${BENCH_PERF:-0}" = 1 ] && mode="profile"
echo "# relay_bench: $MIB MiB, $mode, chunks $CHUNKS; source $(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown); $(nproc) CPUs," \
    "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); $(date -u +%FT%TZ);" \
    "work folder on $(df --output=fstype "$WORK" | tail -1)"
if [ "${BENCH_PERF:-0}" = 1 ]; then
    command -v perf >/dev/null || die "perf is not installed"
    for chunk in $CHUNKS; do
        perf_run "$chunk"
    done
    exit 0
fi
RESULTS="$WORK/results.txt"
: >"$RESULTS"
# Not in a pipeline: die must stop the script, and PIDS must stay in this shell.
record() {
    # Each run starts with the previous one's writes flushed.
    sync
    nap 0.5
    "$@" >"$WORK/line"
    tee -a "$RESULTS" <"$WORK/line"
}
for ((run = 1; run <= RUNS; run++)); do
    for chunk in $CHUNKS; do
        record ferry_run "$chunk" "$run"
    done
    record raw_run 0 "$run"
    record raw_run 1 "$run"
done
summarise "$RESULTS"
