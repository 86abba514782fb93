#!/usr/bin/env bash
# The gateway's CoAP side: ferry-gateway serving an artifact block by block
# to libcoap's stock client, side by side with libcoap's own coap-server
# serving the same bytes; then many clients fetching at once.
# A benchmark, not a test: it asserts nothing about speed (it fails only if
# bytes arrive wrong or a transfer never finishes) and is never run by ctest.
#
#   bench/coap_bench.sh [RUNS]       RUNS rounds of part serve (default 11)
#
# Environment:
#   FERRY_BUILD_DIR   where to build (default build-bench, RelWithDebInfo)
#   BENCH_NO_BUILD=1  use the binaries already in FERRY_BUILD_DIR
#   BENCH_PARTS       "serve conc" (default), or one of them
#   BENCH_MIB         part serve: artifact size in MiB (default 8)
#   BENCH_BLOCK       part serve: Block2 size the client asks for (default 1024)
#   BENCH_CONC_MIB    part conc: artifact size in MiB (default 1)
#   BENCH_CLIENTS     part conc: client counts (default "1 10 100 500")
#   BENCH_CONC_RUNS   part conc: rounds (default 5)
#   BENCH_TMP         work folder's parent (default $TMPDIR or /tmp)
#   BENCH_KEEP=1      keep the work folder
#   BENCH_PERF=1      part conc: sample the gateway with `perf record -g` during
#                     each run (it costs the gateway some CPU) and print where
#                     its cycles went
#   BENCH_CLIENT_LOG=1  part conc: clients log every PDU (-v 7) and the logs
#                     of clients that wrote wrong bytes are kept (slows them)
#
# Part serve, one round: the stock `coap-client-notls -b BLOCK -o OUT` fetches
# the artifact from ferry-gateway and from `coap-server-notls -d` (a dynamic
# resource that this script PUTs the same file into first), in alternating
# order from round to round. Timed from just before the client is exec'd to
# its exit. Server CPU is the change of utime+stime in /proc over the fetch;
# the client's CPU and RSS come from /usr/bin/time. Before the rounds one
# fetch from each server runs with `-v 7` to count the blocks and their size
# in the client's log, so both are seen serving the same block size.
#
# Part conc, one round per client count N: a fresh ferry-gateway with
# --max-downloads >= N caches the artifact, its peak-RSS mark is reset
# (`5` into /proc/PID/clear_refs, so the MQTT fetch's peak does not count),
# N stock clients are started and held at a FIFO until all are forked, then
# released at once. Timed from the release until the last client exits. The
# gateway's CPU over that span and its VmHWM after it are read from /proc
# (growth = VmHWM minus the VmRSS just before the release);
# the clients' total CPU from the `times` of the shell that waited for them.
# UDP receive-buffer drops are the change of RcvbufErrors in /proc/net/snmp
# (the network namespace's, so other programs' drops count too). Client
# outputs go to /dev/shm so 500 MiB of writes do not wait for the disk.
set -uo pipefail

BENCH_NAME=coap_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${1:-11}
PARTS=${BENCH_PARTS:-serve conc}
MIB=${BENCH_MIB:-8}
BLOCK=${BENCH_BLOCK:-1024}
CONC_MIB=${BENCH_CONC_MIB:-1}
CLIENTS=${BENCH_CLIENTS:-1 10 100 500}
CONC_RUNS=${BENCH_CONC_RUNS:-5}
FLEET=bench
TIMEOUT_S=300
bench_setup "$RUNS" mosquitto mosquitto_pub coap-client-notls coap-server-notls python3 /usr/bin/time cmp sha256sum

SHM="$(mktemp -d /dev/shm/ferry-coap-bench-XXXXXX)"
EXTRA_CLEANUP+=("$SHM")

rcvbuf_errors() {
    awk '/^Udp:/ && $2 ~ /^[0-9]+$/ {print $6; exit}' /proc/net/snmp
}

# publish FILE MODEL SEQ: the release of FILE for hardware model MODEL.
publish() {
    "$CLOUD" publish --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --store "$WORK/store" \
        --key "$(ls "$WORK"/keys/release-*.key)" --artifact "$1" --version "1.0.$3" --seq "$3" \
        --hw-model "$2" >/dev/null 2>"$WORK/publish.log" || die "publish failed: $(cat "$WORK/publish.log")"
}

# Drops MODEL's retained release, so later gateways do not fetch it too.
unpublish() {
    mosquitto_pub -p "$PORT" -r -n -t "ferry/v1/$FLEET/release/$1" || die "could not clear release $1"
}

# start_gateway NAME MAX_DOWNLOADS SHA: sets GW_PID and GW_PORT once SHA is cached.
start_gateway() {
    local name=$1 max=$2 sha=$3 dir="$WORK/$1"
    mkdir -p "$dir"
    GW_PORT=$(free_port udp)
    "$GATEWAY" --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --id "$name" \
        --cache-dir "$dir/cache" --state-dir "$dir/state" --trust "$TRUST" \
        --coap-addr 127.0.0.1 --coap-port "$GW_PORT" --max-downloads "$max" --log-level info \
        2>"$dir/gw.log" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_for "$TIMEOUT_S" "$GW_PID" test -e "$dir/cache/$sha" ||
        die "gateway $name never cached $sha; log: $dir/gw.log"
    wait_for 10 "$GW_PID" grep -q "coap: serving" "$dir/gw.log" || die "gateway $name never served CoAP"
}

stop_pid() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    forget "$1"
}

# ---- part serve -------------------------------------------------------------

start_coap_server() {
    for _ in 1 2 3 4 5; do
        CS_PORT=$(free_port udp)
        coap-server-notls -A 127.0.0.1 -p "$CS_PORT" -d 4 -v 3 >"$WORK/coap-server.log" 2>&1 &
        CS_PID=$!
        nap 0.3
        if kill -0 "$CS_PID" 2>/dev/null &&
            coap-client-notls -B 5 "coap://127.0.0.1:$CS_PORT/.well-known/core" >/dev/null 2>&1; then
            PIDS+=("$CS_PID")
            return 0
        fi
        kill "$CS_PID" 2>/dev/null
        wait "$CS_PID" 2>/dev/null
    done
    die "coap-server-notls would not start"
}

# Blocks the client received and their sizes ("COUNT x SIZE ..."), from one
# verbose fetch that also checks the bytes.
block_census() {
    local uri=$1 log="$WORK/census-$2.log" out="$SHM/census.bin"
    rm -f "$out"
    coap-client-notls -v 7 -b "$BLOCK" -B 120 -o "$out" "$uri" >"$log" 2>&1 ||
        die "verbose fetch of $uri failed"
    cmp -s "$ARTIFACT" "$out" || die "$uri served different bytes"
    # Responses are the ACKs with 2.05; libcoap logs the last one twice.
    grep 't:ACK c:2.05' "$log" | grep -o 'Block2:[0-9]*/[-_A-Z]*/[0-9]*' | sort -u |
        awk -F/ '{n[$3]++} END {for (s in n) printf "%d blocks of %s", n[s], s}'
}

# serve_run WHO RUN: one fetch; prints one result line.
serve_run() {
    local who=$1 run=$2 uri pid out="$SHM/serve.bin" t0 t1 c0 rc
    if [ "$who" = ferry ]; then
        uri="coap://127.0.0.1:$GW_PORT/ferry/artifact/$SHA"
        pid=$GW_PID
    else
        uri="coap://127.0.0.1:$CS_PORT/artifact"
        pid=$CS_PID
    fi
    rm -f "$out"
    c0=$(cpu_ms "$pid")
    t0=$(now_ms)
    /usr/bin/time -f '%U %S %M' -o "$WORK/client.time" \
        coap-client-notls -b "$BLOCK" -B 120 -o "$out" "$uri" >"$WORK/client.log" 2>&1
    rc=$?
    t1=$(now_ms)
    local srv_cpu=$(($(cpu_ms "$pid") - c0))
    [ "$rc" -eq 0 ] || die "$who fetch failed: $(cat "$WORK/client.log")"
    cmp -s "$ARTIFACT" "$out" || die "$who served different bytes (run $run)"
    local cu cs cm
    read -r cu cs cm <"$WORK/client.time"
    echo "$who run=$run wall_ms=$((t1 - t0)) server_cpu_ms=$srv_cpu" \
        "client_cpu_ms=$(awk "BEGIN {print ($cu + $cs) * 1000}") client_rss_kb=$cm" \
        "server_rss_kb=$(proc_kb "$pid" VmHWM)"
}

part_serve() {
    ARTIFACT="$WORK/serve.bin"
    head -c $((MIB << 20)) /dev/urandom >"$ARTIFACT"
    SHA=$(sha256sum "$ARTIFACT" | cut -d' ' -f1)
    publish "$ARTIFACT" m-serve 1
    start_gateway gw-serve 8 "$SHA"
    start_coap_server
    coap-client-notls -m put -b "$BLOCK" -B 120 -f "$ARTIFACT" \
        "coap://127.0.0.1:$CS_PORT/artifact" >"$WORK/put.log" 2>&1 ||
        die "PUT into coap-server failed: $(cat "$WORK/put.log")"
    echo "# blocks seen by the client: ferry $(block_census "coap://127.0.0.1:$GW_PORT/ferry/artifact/$SHA" ferry)," \
        "coap-server $(block_census "coap://127.0.0.1:$CS_PORT/artifact" coap-server)"
    local run
    for ((run = 1; run <= RUNS; run++)); do
        if ((run % 2)); then
            record serve_run ferry "$run"
            record serve_run coap-server "$run"
        else
            record serve_run coap-server "$run"
            record serve_run ferry "$run"
        fi
    done
    stop_pid "$GW_PID"
    stop_pid "$CS_PID"
    unpublish m-serve
}

# ---- part conc --------------------------------------------------------------

# N local UDP ports, all different and free a moment ago. coap-client sets
# SO_REUSEADDR before binding port 0, and Linux then may hand two such
# sockets the same ephemeral port: the server sees the two clients as one
# session and either may get the other's answers (seen here as blocks
# written twice). Plain sockets, held open together, cannot share a port.
distinct_ports() {
    python3 -c 'import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# conc_run N RUN: N clients at once against a fresh gateway; one result line.
conc_run() {
    local n=$1 run=$2 name="gw-conc-$1-r$2" max=$(($1 < 8 ? 8 : $1))
    start_gateway "$name" "$max" "$CSHA"
    local uri="coap://127.0.0.1:$GW_PORT/ferry/artifact/$CSHA" fifo="$WORK/go" i
    local verbose=${BENCH_CLIENT_LOG:+1}
    nap 0.5
    echo 5 >"/proc/$GW_PID/clear_refs" || die "cannot reset the gateway's VmHWM"
    local rss0 c0 e0 t0
    rss0=$(proc_kb "$GW_PID" VmRSS)
    rm -f "$fifo" "$SHM"/c*.bin
    mkfifo "$fifo"
    local ports
    read -r -a ports <<<"$(distinct_ports "$n")"
    # Each client opens the FIFO for reading, which blocks until this shell
    # opens it for writing: all N are forked and loaded before any sends.
    (
        declare -A started=()
        local pid
        for ((i = 1; i <= n; i++)); do
            sh -c 'exec 9<"$1"; exec 9<&-; shift; exec "$@"' sh "$fifo" \
                coap-client-notls -p "${ports[i - 1]}" -b 1024 -B 200 ${verbose:+-v 7} -o "$SHM/c$i.bin" "$uri" \
                >"$SHM/c$i.log" 2>&1 &
            started[$!]=1
        done
        # Until every child sleeps in open() on the FIFO (wait channel
        # wait_for_partner): all forked, none sending yet.
        local waiting deadline=$((SECONDS + 60)) chans=()
        for pid in "${!started[@]}"; do chans+=("/proc/$pid/wchan"); done
        while ((SECONDS < deadline)); do
            waiting=$(grep -l wait_for_partner "${chans[@]}" 2>/dev/null | wc -l)
            [ "$waiting" -ge "$n" ] && break
            nap 0.05
        done
        now_ms >"$WORK/t0"
        exec 8>"$fifo"
        local fails=0 done_ms=()
        while ((${#started[@]} > 0)); do
            wait -n -p pid "${!started[@]}" || fails=$((fails + 1))
            [ -n "$pid" ] || break
            unset "started[$pid]"
            done_ms+=("$(now_ms)")
        done
        exec 8>&-
        echo "$fails ${done_ms[*]}" >"$WORK/done"
        times >"$WORK/times"
    ) &
    local group=$! perf_pid=
    if [ "${BENCH_PERF:-0}" = 1 ]; then
        perf record -q -F 999 -g -p "$GW_PID" -o "$WORK/perf-$n.data" 2>"$WORK/perf-$n.log" &
        perf_pid=$!
    fi
    # The gateway's counters start at the release; read them as soon as t0 exists.
    c0=$(cpu_ms "$GW_PID")
    e0=$(rcvbuf_errors)
    wait "$group"
    local gw_cpu rss
    gw_cpu=$(($(cpu_ms "$GW_PID") - c0))
    rss=$(proc_kb "$GW_PID" VmHWM)
    local drops=$(($(rcvbuf_errors) - e0))
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"
        wait "$perf_pid" 2>/dev/null
        {
            echo "== perf, gateway, $n clients: self time by symbol (top 30)"
            perf report -i "$WORK/perf-$n.data" --no-children -g none --sort dso,symbol --stdio \
                2>/dev/null | grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -30
        } >>"$WORK/perf.txt"
    fi
    stop_pid "$GW_PID"
    t0=$(<"$WORK/t0")
    local fails last med rest
    read -r fails rest <"$WORK/done"
    # shellcheck disable=SC2086 # $rest: one argument per client's end time
    read -r last med <<<"$(python3 -c 'import statistics, sys
t0 = int(sys.argv[1]); d = sorted(int(x) - t0 for x in sys.argv[2:])
print(d[-1], int(statistics.median(d)))' "$t0" $rest)"
    local bad=0
    for ((i = 1; i <= n; i++)); do
        if ! cmp -s "$CARTIFACT" "$SHM/c$i.bin"; then
            bad=$((bad + 1))
            mv "$SHM/c$i.bin" "$WORK/bad-$n-r$run-c$i.bin"
            mv "$SHM/c$i.log" "$WORK/bad-$n-r$run-c$i.log"
        fi
    done
    [ -n "$verbose" ] || cat "$SHM"/c*.log >>"$WORK/conc-clients.log" 2>/dev/null
    rm -f "$SHM"/c*.bin "$SHM"/c*.log
    ((fails == 0 && bad == 0)) || die "$n clients: $fails failed, $bad wrong outputs; see $WORK/conc-clients.log"
    local cu cs
    read -r cu cs < <(sed -n 2p "$WORK/times")
    echo "conc-$n run=$run wall_ms=$last client_median_ms=$med gw_cpu_ms=$gw_cpu" \
        "gw_rss0_kb=$rss0 gw_peak_kb=$rss gw_growth_kb=$((rss - rss0)) clients_cpu_ms=$(python3 -c 'import re, sys
def s(t):
    m, x = re.match(r"(\d+)m([\d.]+)s", t).groups(); return int(m) * 60 + float(x)
print(int((s(sys.argv[1]) + s(sys.argv[2])) * 1000))' "$cu" "$cs") rcvbuf_drops=$drops"
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "${WORK:?}/$name"
}

part_conc() {
    CARTIFACT="$WORK/conc.bin"
    head -c $((CONC_MIB << 20)) /dev/urandom >"$CARTIFACT"
    CSHA=$(sha256sum "$CARTIFACT" | cut -d' ' -f1)
    publish "$CARTIFACT" m-conc 2
    local n run
    # Each client holds a UDP socket and a few fds; the gateway one per session.
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    echo "# conc: fd limit $(ulimit -n), local ports $(tr '\t' - </proc/sys/net/ipv4/ip_local_port_range)," \
        "net.core.rmem_default $(cat /proc/sys/net/core/rmem_default)"
    for ((run = 1; run <= CONC_RUNS; run++)); do
        for n in $CLIENTS; do
            record conc_run "$n" "$run"
        done
    done
}

summarise() {
    PYTHONPATH="$SRC/bench" python3 - "$1" <<'PY'
import sys
from medians import load, med, table
rows = load(sys.argv[1])
if "ferry" in rows:
    print("\nserve: medians")
    table(rows, ["wall_ms", "server_cpu_ms", "client_cpu_ms", "client_rss_kb", "server_rss_kb"],
          ["ferry", "coap-server"])
    print("ratio ferry / coap-server (aim <= 1.0): wall %.2f, server CPU %.2f" % (
        med(rows, "ferry", "wall_ms") / med(rows, "coap-server", "wall_ms"),
        med(rows, "ferry", "server_cpu_ms") / max(1.0, med(rows, "coap-server", "server_cpu_ms"))))
conc = sorted((k for k in rows if k.startswith("conc-")), key=lambda k: int(k[5:]))
if conc:
    print("\nconc: medians")
    table(rows, ["wall_ms", "client_median_ms", "gw_cpu_ms", "gw_rss0_kb", "gw_peak_kb",
                 "gw_growth_kb", "clients_cpu_ms", "rcvbuf_drops"], conc)
    if "conc-1" in rows:
        # Each run's peak over its own gateway's RSS before the clients:
        # fresh gateways start a few hundred KiB apart.
        base = med(rows, "conc-1", "gw_growth_kb")
        print("peak RSS growth per concurrent transfer beyond the 1-client run (aim <= 16 KiB):")
        for k in conc[1:]:
            n = int(k[5:])
            print("  %s: %.2f KiB" % (k, (med(rows, k, "gw_growth_kb") - base) / (n - 1)))
PY
}

build ferry-cloud ferry-gateway

RESULTS="$WORK/results.txt"
: >"$RESULTS"
record() {
    sync
    nap 0.5
    "$@" >"$WORK/line"
    tee -a "$RESULTS" <"$WORK/line"
}

start_broker
start_serve
echo "# coap_bench: parts '$PARTS', $RUNS rounds; source $(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown);" \
    "$(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo); $(date -u +%FT%TZ);" \
    "$(coap-client-notls 2>&1 | awk '/^Build:/ {print "libcoap " $2}')"
for part in $PARTS; do
    case $part in
    serve) part_serve ;;
    conc) part_conc ;;
    *) die "unknown part '$part'" ;;
    esac
done
summarise "$RESULTS"
# Only with BENCH_PERF=1; an "&&" here would make the exit status 1 without it.
if [ -s "$WORK/perf.txt" ]; then
    cat "$WORK/perf.txt"
fi
