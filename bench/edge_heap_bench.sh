#!/usr/bin/env bash
# ferry-edge's memory for one full install (manifest, download, verify,
# install, trial, confirm) of a small and a large image: peak heap from
# valgrind's massif, and peak RSS (VmHWM) from a run without valgrind.
# The download is driven block by block, so the heap should not grow with
# the image. A benchmark, not a test: it asserts nothing about memory (it
# fails only if an install does not finish or the slot holds wrong bytes)
# and is never run by ctest.
#
#   bench/edge_heap_bench.sh [RUNS]   RUNS installs per size and kind (default 3)
#
# Environment:
#   FERRY_BUILD_DIR   where to build (default build-bench, RelWithDebInfo)
#   BENCH_NO_BUILD=1  use the binaries already in FERRY_BUILD_DIR
#   BENCH_SIZES       image sizes in MiB (default "1 32")
#   BENCH_KINDS       "massif plain" (default), or one of them
#   BENCH_TMP         work folder's parent (default $TMPDIR or /tmp)
#   BENCH_KEEP=1      keep the work folder (massif.out files, logs)
#
# One install: the release (random bytes, a hardware model of its own) is
# published and cached by the gateway first, then ferry-edge starts with an
# empty state folder, finds the release at its first manifest request, and
# is stopped with SIGTERM once the cloud's inventory shows it at `success`.
#   massif  ferry-edge under `valgrind --tool=massif` (heap only, no stacks);
#           the peak is mem_heap_B + mem_heap_extra_B of massif's peak
#           snapshot (what ms_print draws as the top of its graph).
#   plain   ferry-edge alone; VmHWM (peak RSS), VmRSS and RssAnon (the part
#           of RSS that is not mapped files such as the shared libraries)
#           read from /proc just before the SIGTERM.
# Both report the time from the start of ferry-edge to `success` in the
# inventory (polled every 100 ms). Valgrind makes each block far slower, so
# --request-timeout is 60 s (the default), and the node drives Block2 itself,
# so libcoap's 93-second limit on a block-wise transfer does not apply.
set -uo pipefail

BENCH_NAME=edge_heap_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${1:-3}
SIZES=${BENCH_SIZES:-1 32}
KINDS=${BENCH_KINDS:-massif plain}
FLEET=bench
TIMEOUT_S=1200
bench_setup "$RUNS" mosquitto mosquitto_pub python3 valgrind ms_print cmp sha256sum
WAIT_TICK=0.1

start_cloud_and_gateway() {
    start_serve
    GW_PORT=$(free_port udp)
    "$GATEWAY" --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --id gw \
        --cache-dir "$WORK/gw/cache" --state-dir "$WORK/gw/state" --trust "$TRUST" \
        --coap-addr 127.0.0.1 --coap-port "$GW_PORT" --log-level info 2>"$WORK/gw.log" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_for 30 "$GW_PID" grep -q "coap: serving" "$WORK/gw.log" || die "gateway never served CoAP"
}

# "state version" of NODE's latest record, or nothing.
node_state() {
    python3 - "$DB" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
row = db.execute("SELECT state, version FROM nodes WHERE node = ?", (sys.argv[2],)).fetchone()
print(" ".join(row) if row else "")
PY
}

# install_run KIND MIB RUN: one result line.
install_run() {
    local kind=$1 mib=$2 run=$3 tag="$1-$2m-r$3"
    local dir="$WORK/$tag" version="1.$mib.$run"
    mkdir -p "$dir"
    local art="$dir/release.bin" sha
    head -c $((mib << 20)) /dev/urandom >"$art"
    sha=$(sha256sum "$art" | cut -d' ' -f1)
    SEQ=$((SEQ + 1))
    "$CLOUD" publish --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --store "$WORK/store" \
        --key "$(ls "$WORK"/keys/release-*.key)" --artifact "$art" --version "$version" \
        --seq "$SEQ" --hw-model "m-$tag" >/dev/null 2>"$dir/publish.log" ||
        die "publish failed: $(cat "$dir/publish.log")"
    wait_for 120 "$GW_PID" test -e "$WORK/gw/cache/$sha" || die "the gateway never cached $sha"
    local -a cmd=("$EDGE")
    if [ "$kind" = massif ]; then
        cmd=(valgrind --tool=massif --threshold=0.2 --massif-out-file="$dir/massif.out" "$EDGE")
    fi
    local t0 t1 pid
    t0=$(now_ms)
    "${cmd[@]}" --gateway "coap://127.0.0.1:$GW_PORT" --id "node-$tag" --hw-model "m-$tag" \
        --state-dir "$dir/state" --trust "$TRUST" --poll-interval 5s --request-timeout 60s \
        --max-image-mb $((mib + 1)) --log-level info >"$dir/edge.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    local deadline=$((SECONDS + TIMEOUT_S))
    until [ "$(node_state "node-$tag")" = "success $version" ]; do
        kill -0 "$pid" 2>/dev/null || die "ferry-edge ($tag) died: $(tail -5 "$dir/edge.log")"
        ((SECONDS < deadline)) || die "ferry-edge ($tag) did not confirm in ${TIMEOUT_S}s: $(node_state "node-$tag")"
        nap 0.1
    done
    t1=$(now_ms)
    local hwm=NA rss=NA anon=NA
    if [ "$kind" = plain ]; then
        hwm=$(proc_kb "$pid" VmHWM)
        rss=$(proc_kb "$pid" VmRSS)
        anon=$(proc_kb "$pid" RssAnon)
    fi
    kill -TERM "$pid"
    wait "$pid" || die "ferry-edge ($tag) did not stop cleanly"
    forget "$pid"
    cmp -s "$art" "$dir/state/slot-a.img" || cmp -s "$art" "$dir/state/slot-b.img" ||
        die "ferry-edge ($tag) holds no slot with the release's bytes"
    local heap=NA extra=NA
    if [ "$kind" = massif ]; then
        read -r heap extra < <(python3 - "$dir/massif.out" <<'PY'
import sys
snap, peak = {}, None
for line in open(sys.argv[1]):
    k, _, v = line.strip().partition("=")
    if k == "snapshot":
        snap = {}
    elif k in ("mem_heap_B", "mem_heap_extra_B"):
        snap[k] = int(v)
    elif k == "heap_tree" and v == "peak":
        peak = dict(snap)
print(peak["mem_heap_B"], peak["mem_heap_extra_B"])
PY
)
        ms_print "$dir/massif.out" >"$dir/ms_print.txt"
        cp "$dir/ms_print.txt" "$WORK/ms_print-$mib.txt"
        cp "$dir/massif.out" "$WORK/massif-$mib.out"
    fi
    echo "$kind-${mib}MiB run=$run install_ms=$((t1 - t0)) heap_peak_b=$heap heap_extra_b=$extra" \
        "vmhwm_kb=$hwm vmrss_kb=$rss rss_anon_kb=$anon"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

summarise() {
    python3 "$SRC/bench/medians.py" "$1" install_ms heap_peak_b heap_extra_b vmhwm_kb vmrss_kb \
        rss_anon_kb
}

# The peak snapshot of a massif.out, grouped by the allocation's innermost
# frame in Ferry's own code (a source line in one of the repository's .c
# files), named with the library it called into.
peak_by_site() {
    find "$SRC/edge-client" "$SRC/install" "$SRC/common" "$SRC/proto" -name '*.c' -printf '%f\n' >"$WORK/sources"
    python3 - "$1" "$WORK/sources" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
ours = set(open(sys.argv[2]).read().split())
start = next(i for i, l in enumerate(lines) if l == "heap_tree=peak") + 1
node = re.compile(r"^( *)n(\d+): (\d+) (.*)$")
groups, path = {}, []
for l in lines[start:]:
    m = node.match(l)
    if not m:
        break
    depth, kids, size, what = len(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
    path = path[:depth] + [what]
    if kids:
        continue
    label = "below massif's threshold, no Ferry frame kept"
    for i, frame in enumerate(path[1:], 1):
        src = re.search(r"\(([\w.-]+\.c):\d+\)", frame)
        if src and src.group(1) in ours:
            fn = re.sub(r"^0x[0-9A-F]+: ", "", frame)
            lib = re.search(r"\(in [^)]*/([^/)]+)\)", path[i - 1]) if i > 1 else None
            label = fn + (" -> " + lib.group(1) if lib else " (malloc)")
            break
    groups[label] = groups.get(label, 0) + size
total = int(node.match(lines[start]).group(3))
print("%9s  %s" % ("bytes", "site"))
for label, size in sorted(groups.items(), key=lambda kv: -kv[1])[:15]:
    print("%9d  %s" % (size, label))
print("%9d  total (useful heap at the peak; massif adds its per-block overhead as extra)" % total)
PY
}

build ferry-cloud ferry-gateway ferry-edge

RESULTS="$WORK/results.txt"
: >"$RESULTS"
SEQ=0
start_broker
start_cloud_and_gateway
echo "# edge_heap_bench: sizes $SIZES MiB, kinds $KINDS, $RUNS runs each;" \
    "source $(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown); $(nproc) CPUs," \
    "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); $(date -u +%FT%TZ);" \
    "$(valgrind --version)"
for ((run = 1; run <= RUNS; run++)); do
    for kind in $KINDS; do
        for mib in $SIZES; do
            install_run "$kind" "$mib" "$run" >"$WORK/line" || exit 1
            tee -a "$RESULTS" <"$WORK/line"
        done
    done
done
summarise "$RESULTS"
for mib in $SIZES; do
    [ -f "$WORK/massif-$mib.out" ] || continue
    echo
    echo "== ${mib} MiB image (last massif run): ms_print's graph"
    sed -n '/^    KB$\|^    MB$/,/^ *0 *[0-9.]*$/p' "$WORK/ms_print-$mib.txt"
    echo
    echo "== ${mib} MiB image: the peak snapshot's heap by the innermost Ferry frame"
    peak_by_site "$WORK/massif-$mib.out"
done
