#!/usr/bin/env bash
# The gateway -> node hop over a slow and lossy link: ferry-edge (a window
# of non-confirmable block requests with CoCoA's timer) against libcoap's
# stock `coap-client -b 1024` (lock-step Block2, CON, ACK_TIMEOUT 2 s),
# fetching the same artifact from the same ferry-gateway through the same
# ferry-udp-proxy, in one run. A benchmark, not a test: it asserts nothing
# about speed (it fails only if bytes arrive wrong or ferry-edge does not
# finish) and is never run by ctest.
#
#   bench/slow_link_bench.sh [RUNS]     RUNS rounds of every case (default 3)
#
# Environment:
#   FERRY_BUILD_DIR   where to build (default build-bench, RelWithDebInfo)
#   BENCH_NO_BUILD=1  use the binaries already in FERRY_BUILD_DIR
#   BENCH_CASES       round trip in ms / loss in % each way / artifact size in
#                     KiB (default "200/0/128 200/5/64 200/10/32 200/20/16
#                     20/0/128")
#   BENCH_BASE_REV    also run ferry-edge built from this git revision (the
#                     lock-step client before the window), in the cases of
#                     BENCH_BASE_CASES (default "20/0/128"); unset: not run
#   BENCH_TMP         work folder's parent (default $TMPDIR or /tmp)
#   BENCH_KEEP=1      keep the work folder (logs of every transfer)
#
# One round of one case: a fresh ferry-udp-proxy between the clients and the
# gateway, delaying every datagram by half the round trip and dropping the
# given share in each direction, seeded per round and case; then each client
# once, the order alternating from round to round. Both fetch the same
# artifact (random bytes, one per size, each the release of a product line
# of its own). The sizes shrink with the loss because libcoap 4.3.1's
# block-wise client gives up on any transfer 93 s after it starts (field
# notes): at 10 % loss each way 128 KiB takes it longer than that. ferry-edge
# starts with an
# empty state folder and finds the release at its first manifest request;
# its time is from its first `downloading` record to its `verifying` record
# (its log's time stamps: the download alone, without the manifest exchange
# or the install). coap-client's time is from its exec to its exit. Goodput
# is the artifact's size over that time. Every downloaded copy is compared
# with the artifact. A stock client whose output has not grown for 100 s
# (it gave up: MAX_RETRANSMIT lost retransmissions of one block, or the
# 93 s limit) is stopped; such a run counts as failed and has no time.
set -uo pipefail

BENCH_NAME=slow_link_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${1:-3}
CASES=${BENCH_CASES:-200/0/128 200/5/64 200/10/32 200/20/16 20/0/128}
BASE_REV=${BENCH_BASE_REV:-}
BASE_CASES=${BENCH_BASE_CASES:-20/0/128}
STALL_S=100
FLEET=bench
TIMEOUT_S=1800
bench_setup "$RUNS" mosquitto coap-client-notls python3 cmp sha256sum git
WAIT_TICK=0.05

# ---- the lock-step ferry-edge of an earlier revision ---------------------------

build_base() {
    local src="$WORK/base-src" bld="$WORK/base-build"
    mkdir -p "$src"
    git -C "$SRC" archive "$BASE_REV" | tar -x -C "$src" || die "cannot export revision $BASE_REV"
    if ! cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$WORK/base-cmake.log" 2>&1 ||
        ! cmake --build "$bld" -j2 --target ferry-edge >>"$WORK/base-cmake.log" 2>&1; then
        tail -20 "$WORK/base-cmake.log" >&2
        die "building ferry-edge at $BASE_REV failed"
    fi
    BASE_EDGE="$bld/edge-client/ferry-edge"
}

# ---- set-up ----------------------------------------------------------------------

start_gateway() {
    GW_PORT=$(free_port udp)
    "$GATEWAY" --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --id gw \
        --cache-dir "$WORK/gw/cache" --state-dir "$WORK/gw/state" --trust "$TRUST" \
        --coap-addr 127.0.0.1 --coap-port "$GW_PORT" --max-downloads 16 --log-level info \
        2>"$WORK/gw.log" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_for 30 "$GW_PID" grep -q "coap: serving" "$WORK/gw.log" || die "gateway never served CoAP"
}

# publish_artifact KIB: the release of KIB random bytes on product line
# slow-KIB; ARTIFACT_<KIB> and SHA_<KIB> name its file and digest.
publish_artifact() {
    local kib=$1 art="$WORK/artifact-$1.bin" sha
    head -c $((kib * 1024)) /dev/urandom >"$art"
    sha=$(sha256sum "$art" | cut -d' ' -f1)
    "$CLOUD" publish --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --store "$WORK/store" \
        --key "$(ls "$WORK"/keys/release-*.key)" --artifact "$art" --version "1.0.$kib" \
        --seq 1 --product "slow-$kib" --hw-model m1 >/dev/null 2>"$WORK/publish.log" ||
        die "publish failed: $(cat "$WORK/publish.log")"
    wait_for 120 "$GW_PID" test -e "$WORK/gw/cache/$sha" || die "the gateway never cached $sha"
    printf -v "ARTIFACT_$kib" '%s' "$art"
    printf -v "SHA_$kib" '%s' "$sha"
}

# start_proxy RTT LOSS SEED: sets PROXY_PID and PROXY_PORT.
start_proxy() {
    local attempt
    for attempt in 1 2 3 4 5; do
        PROXY_PORT=$(free_port udp)
        "$PROXY" --listen "$PROXY_PORT" --target "127.0.0.1:$GW_PORT" --loss "$2" \
            --delay-ms $(($1 / 2)) --seed "$3" --max-queued 100000 --log-level warn \
            >"$WORK/proxy.out" 2>"$WORK/proxy.log" &
        PROXY_PID=$!
        if wait_for 5 "$PROXY_PID" bash -c "ss -Hlun 'sport = :$PROXY_PORT' | grep -q ."; then
            PIDS+=("$PROXY_PID")
            return 0
        fi
        kill "$PROXY_PID" 2>/dev/null
        wait "$PROXY_PID" 2>/dev/null
    done
    die "ferry-udp-proxy would not start"
}

stop_pid() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    forget "$1"
}

# ---- one transfer ---------------------------------------------------------------

# Milliseconds from the first downloading record to the verifying one.
download_ms() {
    python3 - "$1" <<'PY'
import datetime, re, sys
t = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+Z) \S+ +ferry-edge: status \d+: (downloading|verifying) ", line)
    if m and m.group(2) not in t:
        t[m.group(2)] = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
print(int((t["verifying"] - t["downloading"]).total_seconds() * 1000) if len(t) == 2 else "NA")
PY
}

# edge_run WHO BIN CASE RUN: one ferry-edge download; prints a result line.
edge_run() {
    local who=$1 bin=$2 case=$3 run=$4 tag="$1-${3//\//-}-r$4" kib=${3##*/}
    local dir="$WORK/$tag" art="ARTIFACT_${3##*/}"
    mkdir -p "$dir"
    "$bin" --gateway "coap://127.0.0.1:$PROXY_PORT" --id "n-$tag" --hw-model m1 \
        --product "slow-$kib" \
        --state-dir "$dir/state" --trust "$TRUST" --poll-interval 2 --request-timeout 20 \
        --max-image-mb 4 --log-level info >"$dir/edge.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_for "$TIMEOUT_S" "$pid" grep -qs "status [0-9]*: verifying" "$dir/edge.log" ||
        die "$who ($tag) did not finish its download: $(tail -3 "$dir/edge.log")"
    # The slot is complete once verifying is recorded; the node may stop.
    stop_pid "$pid"
    cmp -s "${!art}" "$dir/state/slot-a.img" || cmp -s "${!art}" "$dir/state/slot-b.img" ||
        die "$who ($tag) holds no slot with the artifact's bytes"
    local ms
    ms=$(download_ms "$dir/edge.log")
    echo "$who-$case run=$run ms=$ms kib_s=$(awk "BEGIN {printf \"%.1f\", $kib * 1000 / $ms}")"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

# stock_run CASE RUN: one coap-client download; prints a result line.
stock_run() {
    local case=$1 run=$2 out="$WORK/stock.bin" t0 t1 rc=0 kib=${1##*/}
    local art="ARTIFACT_${1##*/}" sha="SHA_${1##*/}"
    rm -f "$out"
    t0=$(now_ms)
    coap-client-notls -b 1024 -B "$TIMEOUT_S" -o "$out" \
        "coap://127.0.0.1:$PROXY_PORT/ferry/artifact/${!sha}" >"$WORK/stock-${case//\//-}-$run.log" 2>&1 &
    local pid=$! size=0 last=-1 still=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        size=$(stat -c %s "$out" 2>/dev/null || echo 0)
        if [ "$size" != "$last" ]; then
            last=$size
            still=$SECONDS
        elif ((SECONDS - still > STALL_S)); then
            kill "$pid" 2>/dev/null
            rc=124
            break
        fi
        nap 0.2
    done
    t1=$(now_ms)
    wait "$pid"
    local status=$?
    [ "$rc" -ne 0 ] || rc=$status
    if [ "$rc" -ne 0 ] || ! cmp -s "${!art}" "$out"; then
        echo "stock-$case run=$run ms=NA kib_s=NA failed=1 got_bytes=$size"
        return
    fi
    local ms=$((t1 - t0))
    echo "stock-$case run=$run ms=$ms kib_s=$(awk "BEGIN {printf \"%.1f\", $kib * 1000 / $ms}") failed=0"
}

record() {
    "$@" >"$WORK/line"
    tee -a "$RESULTS" <"$WORK/line"
}

summarise() {
    python3 - "$1" "$CASES" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ["SRC"], "bench"))
from medians import load, med
rows = load(sys.argv[1])
print("\nmedians (KiB/s of goodput; ms)")
print("| link | ferry-edge | coap-client -b 1024 | ratio | stock failures | lock-step ferry-edge |")
print("|---|---|---|---|---|---|")
for case in sys.argv[2].split():
    f, s, b = "ferry-" + case, "stock-" + case, "base-" + case
    fk, sk = med(rows, f, "kib_s"), med(rows, s, "kib_s") if s in rows else None
    fails = sum(int(r.get("failed", "0")) for r in rows.get(s, []))
    bk = med(rows, b, "kib_s") if b in rows else None
    cell = lambda k, kind: "-" if k is None else "%.1f (%.0f ms)" % (k, med(rows, kind, "ms"))
    ratio = "-" if fk is None or sk is None else "%.1f" % (fk / sk)
    rtt, loss, kib = case.split("/")
    print("| %s ms RTT, %s %% loss, %s KiB | %s | %s | %s | %d of %d | %s |" % (
        rtt, loss, kib, cell(fk, f), cell(sk, s), ratio, fails, len(rows.get(s, [])),
        cell(bk, b) if bk else "-"))
PY
}

build ferry-cloud ferry-gateway ferry-edge ferry-udp-proxy
if [ -n "$BASE_REV" ]; then
    build_base
fi
RESULTS="$WORK/results.txt"
: >"$RESULTS"
start_broker
start_serve
start_gateway
for kib in $(for c in $CASES; do echo "${c##*/}"; done | sort -un); do
    publish_artifact "$kib"
done
export SRC
echo "# slow_link_bench: $RUNS rounds of '$CASES'; source $(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)${BASE_REV:+, lock-step base $BASE_REV};" \
    "$(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); $(date -u +%FT%TZ);" \
    "$(coap-client-notls 2>&1 | awk '/^Build:/ {print "libcoap " $2}')"
for ((run = 1; run <= RUNS; run++)); do
    ci=0
    for case in $CASES; do
        ci=$((ci + 1))
        rtt=${case%%/*} loss=${case#*/}
        start_proxy "$rtt" "${loss%/*}" $((run * 100 + ci))
        if ((run % 2)); then
            record edge_run ferry "$EDGE" "$case" "$run"
            record stock_run "$case" "$run"
        else
            record stock_run "$case" "$run"
            record edge_run ferry "$EDGE" "$case" "$run"
        fi
        if [ -n "$BASE_REV" ] && [[ " $BASE_CASES " == *" $case "* ]]; then
            record edge_run base "$BASE_EDGE" "$case" "$run"
        fi
        stop_pid "$PROXY_PID"
    done
done
summarise "$RESULTS"
