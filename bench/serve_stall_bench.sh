#!/usr/bin/env bash
# How long `ferry-cloud serve`'s one loop stops streaming to a gateway while
# it checks a store entry another gateway asked for first. A benchmark, not a
# test: it asserts nothing about time and is never run by ctest.
#
#   bench/serve_stall_bench.sh [RUNS]     RUNS rounds (default 5)
#
# Environment:
#   FERRY_BUILD_DIR   where to build (default build-bench, RelWithDebInfo)
#   BENCH_NO_BUILD=1  use the binaries already in FERRY_BUILD_DIR
#   BENCH_MIB         size of the entry checked, in MiB (default 64)
#   BENCH_TMP         work folder's parent (default $TMPDIR or /tmp)
#   BENCH_KEEP=1      keep the work folder
#
# Set-up: mosquitto, serve (--log-level debug, --gateway-rate-mib 32, so the
# streaming gateway's turns are a few ms apart) and one 64 MiB release.
# One round: a new gateway fetches that release; once 16 MiB of it are in,
# a new BENCH_MIB entry is copied into the store behind serve's back (as from
# another host) and one stream request for it is sent as another gateway
# (mosquitto_pub). serve hashes that entry before answering it.
#
# What is measured, from serve's log timestamps (1 ms): the check's own
# duration (its "verified in the store (N bytes, M ms" line), and the
# streaming gateway's turns ("stream: <gateway> ..." debug lines):
#   stall_ms  the longest gap between two of its turns overlapping the check
#   base_ms   the longest gap between two of its turns outside it
#   stall_pct stall_ms as a share of the check's duration (the machine's
#             load stretches both alike)
# Output: one line per round, then medians, on stdout.
set -uo pipefail

BENCH_NAME=serve_stall_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${1:-5}
MIB=${BENCH_MIB:-64}
FLEET=bench
TIMEOUT_S=120
bench_setup "$RUNS" mosquitto mosquitto_pub python3 sha256sum cmp
build ferry-cloud ferry-gateway
start_broker

ferry_keygen "$WORK/keys" || die "keygen failed"
TRUST=$FERRY_PUB
DB="$WORK/inventory.db"
SERVE_LOG="$WORK/serve.log"
: >"$SERVE_LOG"
BROKER="mqtt://127.0.0.1:$PORT" STORE="$WORK/store" \
    ferry_start_serve "$SERVE_LOG" --log-level debug --gateway-rate-mib 32
SERVE_PID=$FERRY_PID
PIDS+=("$SERVE_PID")
wait_for 10 "$SERVE_PID" grep -q "connected to" "$SERVE_LOG" ||
    die "serve did not connect: $(cat "$SERVE_LOG")"

ARTIFACT="$WORK/artifact.bin"
head -c $((64 << 20)) /dev/urandom >"$ARTIFACT"
SHA=$(sha256sum "$ARTIFACT" | cut -d' ' -f1)
"$CLOUD" publish --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --store "$WORK/store" \
    --key "$(ls "$WORK"/keys/release-*.key)" --artifact "$ARTIFACT" --version 1.0.0 --seq 1 \
    --hw-model m1 >/dev/null 2>"$WORK/publish.log" || die "publish failed: $(cat "$WORK/publish.log")"

partial_at_least() {
    local part="$1/cache/partial/$SHA.part"
    [ -f "$part" ] && [ "$(stat -c %s "$part")" -ge "$2" ]
}

# analyse GATEWAY SHA16: prints "check_ms=... stall_ms=... base_ms=...".
analyse() {
    python3 - "$SERVE_LOG" "$1" "$2" <<'PY'
import re, sys
from datetime import datetime
log, gw, sha = sys.argv[1:]
def ms(line):
    return datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp() * 1000
turns, check = [], None
for line in open(log):
    if (" stream: %s " % gw) in line:
        turns.append(ms(line))
    m = re.search(r"artifact %s\.\.\. verified in the store \(\d+ bytes, (\d+) ms" % sha, line)
    if m:
        check = (ms(line) - int(m.group(1)), ms(line), int(m.group(1)))
if not check or len(turns) < 2:
    print("check_ms=NA stall_ms=NA base_ms=NA stall_pct=NA")
    sys.exit()
start, end, took = check
stall = base = 0
for a, b in zip(turns, turns[1:]):
    if b >= start and a <= end:
        stall = max(stall, b - a)
    else:
        base = max(base, b - a)
print("check_ms=%d stall_ms=%d base_ms=%d stall_pct=%d" % (took, stall, base, 100 * stall // max(took, 1)))
PY
}

# round RUN: prints one result line.
round() {
    local run=$1 id="gw-a$1" dir="$WORK/gw-a$1" pid
    mkdir -p "$dir"
    local entry="$WORK/entry-$run.bin" sha_b
    head -c $((MIB << 20)) /dev/urandom >"$entry"
    sha_b=$(sha256sum "$entry" | cut -d' ' -f1)
    "$GATEWAY" --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --id "$id" \
        --cache-dir "$dir/cache" --state-dir "$dir/state" --trust "$TRUST" \
        --coap-addr 127.0.0.1 --coap-port "$(free_port udp)" --chunk-size 65536 \
        --log-level info 2>"$dir/gw.log" &
    pid=$!
    PIDS+=("$pid")
    wait_for "$TIMEOUT_S" "$pid" partial_at_least "$dir" $((16 << 20)) ||
        die "gateway $id never got 16 MiB; log: $dir/gw.log"
    # Copied in behind the store's back, then asked for by another gateway.
    mv "$entry" "$WORK/store/$sha_b"
    mosquitto_pub -p "$PORT" -q 1 -t "ferry/v1/$FLEET/stream/req/gw-b$run" \
        -m "{\"format\":1,\"sha256\":\"$sha_b\",\"offset\":0,\"count\":1,\"chunk\":65536}" ||
        die "mosquitto_pub failed"
    wait_for "$TIMEOUT_S" "$SERVE_PID" grep -q "artifact ${sha_b:0:16}... verified" "$SERVE_LOG" ||
        die "serve never verified the new entry"
    wait_for "$TIMEOUT_S" "$pid" test -e "$dir/cache/$SHA" ||
        die "gateway $id never cached the release; log: $dir/gw.log"
    kill "$pid"
    wait "$pid" 2>/dev/null
    forget "$pid"
    cmp -s "$ARTIFACT" "$dir/cache/$SHA" || die "gateway $id cached different bytes"
    echo "stall run=$run $(analyse "$id" "${sha_b:0:16}")"
    rm -rf "$dir" "$WORK/store/$sha_b"
}

RESULTS="$WORK/results.txt"
for run in $(seq 1 "$RUNS"); do
    round "$run" | tee -a "$RESULTS"
done
echo
PYTHONPATH="$SRC/bench" python3 "$SRC/bench/medians.py" "$RESULTS" check_ms stall_ms base_ms stall_pct
