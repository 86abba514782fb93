#!/usr/bin/env bash
# The console's cost (bench/README.md, "The console"), in one run of one
# `ferry-cloud serve --http` over an inventory of BENCH_NODES synthetic nodes
# (rollout_bench's: a description and a latest record each, 100 gateways):
#
#   api      curl's total time for GET /api/v1/nodes: a page of 100, a page
#            of 1000 (the cap), the whole list walked page by page (1000 a
#            page, by cursor), a filtered page, and /summary; beside them,
#            sqlite3's shell reading the same page of 100 (the floor).
#   ingest   status records per second that serve stores, BENCH_BATCHES
#            batches of 10 records published at once by mosquitto_pub -l,
#            timed from the first publish until the inventory holds them all:
#            `idle` with no HTTP client, `page open` with BENCH_STREAMS event
#            streams connected and a poller reading /nodes?limit=100 and
#            /summary back to back on one kept-alive connection, as a page
#            does but without its pauses (BENCH_POLLER=curl: a curl process a
#            request, as this benchmark did first: the forks cost the client
#            more CPU than serve spends answering). Rounds alternate. Beside
#            each round, the CPU time serve itself used (all its threads).
#
# A benchmark, not a test: it asserts nothing and is never run by ctest.
#
#   bench/console_bench.sh [RUNS]   rounds of each (default 5)
#
# Environment: FERRY_BUILD_DIR (default build-bench), BENCH_NO_BUILD=1,
# BENCH_NODES (100000), BENCH_BATCHES (500), BENCH_STREAMS (8), BENCH_TMP,
# BENCH_KEEP=1, BENCH_POLLER (keepalive or curl), BENCH_PERF=DIR (perf record of serve during the first round's
# ingestion, DIR/idle.data and DIR/page.data: where serve's time goes).
BENCH_NAME=console_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${1:-5}
NODES=${BENCH_NODES:-100000}
BATCHES=${BENCH_BATCHES:-500}
STREAMS=${BENCH_STREAMS:-8}
FLEET=bench
bench_setup "$RUNS" sqlite3 python3 curl mosquitto mosquitto_pub
[ "${BENCH_NO_BUILD:-0}" = 1 ] || compile rollout_bench ferry-cloud
BENCH_NO_BUILD=1 build ferry-cloud
RB=$BUILD/bench/rollout_bench
[ -x "$RB" ] || die "no rollout_bench under $BUILD"
RESULTS="$WORK/results"

echo "console_bench: $(nproc) CPUs, build $BUILD, $NODES nodes, $(date -u +%FT%TZ)"
DB="$WORK/inventory.db"
"$RB" controller "$DB" "$NODES" 100 1 >/dev/null || die "rollout_bench could not fill $DB"
# Its rollout is not what is measured here: cancelled, serve's controller idles.
"$CLOUD" rollout cancel 1 --db "$DB" --by bench --reason "console bench" >/dev/null ||
    die "cancelling the synthetic rollout failed"

start_broker
HTTP_PORT=$(free_port tcp)
URL="http://127.0.0.1:$HTTP_PORT/api/v1"
"$CLOUD" serve --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" --store "$WORK/store" \
    --db "$DB" --http "127.0.0.1:$HTTP_PORT" --http-max-streams "$((STREAMS + 2))" \
    --log-level info >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
wait_for 20 "$SERVE_PID" grep -q "subscribed to all" "$WORK/serve.log" ||
    die "serve did not start: $(tail -5 "$WORK/serve.log")"

# --- api ---------------------------------------------------------------------------
ms() { curl -s -o /dev/null -w '%{time_total}' "$1" | awk '{printf "%.3f", $1 * 1000}'; }
# The whole list, page by page, by one client (urllib): "ms pages".
walk_ms() {
    python3 - "$URL" <<'PY'
import json, sys, time, urllib.request
url, after, pages, t0 = sys.argv[1], "", 0, time.monotonic()
while True:
    with urllib.request.urlopen(url + "/nodes?limit=1000" + ("&after=" + after if after else "")) as r:
        after = json.load(r)["next"] or ""
    pages += 1
    if not after:
        break
print("%.1f %d" % ((time.monotonic() - t0) * 1000, pages))
PY
}
first=$(sqlite3 "$DB" "SELECT node FROM nodes ORDER BY node LIMIT 1 OFFSET $((NODES / 2))")
for r in $(seq "$RUNS"); do
    read -r walk pages <<<"$(walk_ms)"
    sq=$(printf '.timer on\n%s\n' "SELECT n.*, i.doc FROM nodes n LEFT JOIN node_info i
        ON i.node = n.node WHERE n.node > '$first' ORDER BY n.node LIMIT 100;" |
        sqlite3 "$DB" 2>&1 | awk '/^Run Time/ {print $4 * 1000}' | tail -1)
    echo "api round=$r page100=$(ms "$URL/nodes?limit=100&after=$first")" \
        "page1000=$(ms "$URL/nodes?limit=1000&after=$first") whole=$walk pages=$pages" \
        "filtered=$(ms "$URL/nodes?state=success&gateway=gw-007&limit=100")" \
        "summary=$(ms "$URL/summary") sqlite100=${sq:-NA}" >>"$RESULTS"
done

# --- ingest ------------------------------------------------------------------------
stored() { sqlite3 "file:$DB?mode=ro" "SELECT COUNT(*) FROM records WHERE node LIKE 'ing-%'"; }
# batches ROUND: BATCHES lines, each a batch of 10 records from gateway ing-gw.
batches() {
    python3 - "$1" "$BATCHES" <<'PY'
import json, sys, time
r, n = sys.argv[1], int(sys.argv[2])
ts = int(time.time())
for b in range(n):
    recs = [{"format": 1, "node": "ing-%s-%d-%d" % (r, b, k), "gateway": "ing-gw",
             "version": "1.0.0", "state": "idle", "bytes": 0, "total": 0, "seq": 1, "ts": ts}
            for k in range(10)]
    print(json.dumps({"format": 1, "batch": "ing-gw:%s:%d" % (r, b), "records": recs},
                     separators=(",", ":")))
PY
}
page_open() {
    local _
    PAGE_PIDS=()
    for _ in $(seq "$STREAMS"); do
        curl -s -N -o /dev/null "$URL/events" &
        PAGE_PIDS+=("$!")
    done
    if [ "${BENCH_POLLER:-keepalive}" = curl ]; then
        (while :; do
            curl -s -o /dev/null "$URL/nodes?limit=100"
            curl -s -o /dev/null "$URL/summary"
        done) &
    else
        python3 - "$URL" <<'PY' &
import http.client, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
while True:
    for path in ("/nodes?limit=100", "/summary"):
        c.request("GET", u.path + path)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit("poller: %s answered %d" % (path, r.status))
PY
    fi
    PAGE_PIDS+=("$!")
    PIDS+=("${PAGE_PIDS[@]}")
    nap 1 # the streams connect and get their first documents
}
page_close() {
    local p
    for p in "${PAGE_PIDS[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
        forget "$p"
    done
}
# serve's CPU time so far, all threads (those ended included), in ms.
cpu_ms() {
    awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$SERVE_PID/stat"
}
want=0
for r in $(seq "$RUNS"); do
    for mode in idle page; do
        [ "$mode" = page ] && page_open
        batches "$r$mode" >"$WORK/batches"
        want=$((want + BATCHES * 10))
        PERF_PID=
        if [ -n "${BENCH_PERF:-}" ] && [ "$r" = 1 ]; then
            perf record -q -F 499 -g -p "$SERVE_PID" -o "$BENCH_PERF/$mode.data" 2>/dev/null &
            PERF_PID=$!
        fi
        c0=$(cpu_ms)
        t0=$(now_ms)
        mosquitto_pub -p "$PORT" -q 1 -t "ferry/v1/$FLEET/status/ing-gw" -l <"$WORK/batches" ||
            die "mosquitto_pub failed"
        WAIT_TICK=0.02 wait_for 120 "$SERVE_PID" bash -c "[ \$(sqlite3 'file:$DB?mode=ro' \
            \"SELECT COUNT(*) FROM records WHERE node LIKE 'ing-%'\") -ge $want ]" ||
            die "serve did not store round $r ($mode): $(stored) of $want"
        t=$(($(now_ms) - t0))
        c=$(($(cpu_ms) - c0))
        if [ -n "$PERF_PID" ]; then
            kill -INT "$PERF_PID"
            wait "$PERF_PID"
        fi
        echo "ingest-$mode round=$r records=$((BATCHES * 10)) ms=$t" \
            "rate=$((BATCHES * 10 * 1000 / (t > 0 ? t : 1))) serve_cpu_ms=$c" >>"$RESULTS"
        [ "$mode" = page ] && page_close
    done
done

python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kind, *f = line.split()
    rows.setdefault(kind, []).append(dict(x.split("=", 1) for x in f))
def med(kind, key):
    v = [float(r[key]) for r in rows[kind] if r.get(key, "NA") != "NA"]
    return statistics.median(v) if v else float("nan")
a = "api"
print("%-46s %12s" % ("GET (curl time_total), median of %d" % len(rows[a]), "ms"))
for key, what in (("page100", "/nodes?limit=100 (a page)"), ("page1000", "/nodes?limit=1000"),
                  ("whole", "the whole list, %d pages of 1000" % med(a, "pages")),
                  ("filtered", "/nodes?state=success&gateway=gw-007"),
                  ("summary", "/summary"), ("sqlite100", "sqlite3 shell: the same page of 100")):
    print("  %-44s %12.1f" % (what, med(a, key)))
idle, page = med("ingest-idle", "rate"), med("ingest-page", "rate")
print("%-46s %12s" % ("status ingestion, median of %d" % len(rows["ingest-idle"]), "records/s"))
print("  %-44s %12.0f" % ("no HTTP client", idle))
print("  %-44s %12.0f" % ("page open (streams + poller)", page))
print("  %-44s %12.2f" % ("ratio, page open / none", page / idle))
print("%-46s %12s" % ("serve's CPU time a round, median", "ms"))
print("  %-44s %12.0f" % ("no HTTP client", med("ingest-idle", "serve_cpu_ms")))
print("  %-44s %12.0f" % ("page open", med("ingest-page", "serve_cpu_ms")))
for kind in ("ingest-idle", "ingest-page"):
    print("  %s rounds: %s" % (kind, ", ".join("%s/s %sms" % (r["rate"], r["serve_cpu_ms"])
                                               for r in rows[kind])))
PY
