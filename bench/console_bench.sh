#!/usr/bin/env bash
# The console's cost (bench/README.md, "The console"), in one run, on SQLite
# and on PostgreSQL 15 side by side (tests/unit/pg_server.sh: a server of
# the run's own, socket only, fsync=off): one `ferry-cloud serve --http` per
# database, each over an inventory of BENCH_NODES synthetic nodes
# (rollout_bench's: a description and a latest record each, 100 gateways),
# both running for the whole run; rounds alternate between the two.
#
#   api      curl's total time for GET /api/v1/nodes: a page of 100, a page
#            of 1000 (the cap), the whole list walked page by page (1000 a
#            page, by cursor), a filtered page, /summary, /gateways,
#            /releases and one node's page (/nodes/<id>); beside them, the
#            database's own shell (sqlite3, psql) reading the same page of
#            100 (the floor).
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
# The summary gives medians per database and PostgreSQL's over SQLite's.
# A benchmark, not a test: it asserts nothing and is never run by ctest.
#
#   bench/console_bench.sh [RUNS]   rounds of each (default 5)
#
# Environment: FERRY_BUILD_DIR (default build-bench), BENCH_NO_BUILD=1,
# BENCH_DBS ("sqlite postgresql", or either alone), BENCH_NODES (100000),
# BENCH_BATCHES (500), BENCH_STREAMS (8), BENCH_TMP, BENCH_KEEP=1,
# BENCH_POLLER (keepalive or curl), BENCH_PERF=DIR (perf record of serve
# during the first round's ingestion, DIR/<db>-idle.data and
# DIR/<db>-page.data: where serve's time goes).
BENCH_NAME=console_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DBS=${BENCH_DBS:-sqlite postgresql}
# With PostgreSQL, the whole benchmark runs beside a server of its own.
if [[ " $DBS " == *" postgresql "* ]] && [ -z "${FERRY_TEST_PG:-}" ]; then
    exec bash "$SRC/tests/unit/pg_server.sh" bash "${BASH_SOURCE[0]}" "$@"
fi

RUNS=${1:-5}
NODES=${BENCH_NODES:-100000}
BATCHES=${BENCH_BATCHES:-500}
STREAMS=${BENCH_STREAMS:-8}
FLEET=bench
tools=(sqlite3 python3 curl mosquitto mosquitto_pub)
[[ " $DBS " != *" postgresql "* ]] || tools+=(createdb psql)
bench_setup "$RUNS" "${tools[@]}"
[ "${BENCH_NO_BUILD:-0}" = 1 ] || compile rollout_bench ferry-cloud
BENCH_NO_BUILD=1 build ferry-cloud
RB=$BUILD/bench/rollout_bench
[ -x "$RB" ] || die "no rollout_bench under $BUILD"
RESULTS="$WORK/results"

echo "console_bench: $(nproc) CPUs, build $BUILD, $NODES nodes, $DBS, $(date -u +%FT%TZ)," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_broker

# sql DB QUERY: one value from the database of DB (sqlite or postgresql).
declare -A TARGET SERVE URL
SQLITE_DB="$WORK/inventory.db"
sql() {
    if [ "$1" = sqlite ]; then
        sqlite3 "file:$SQLITE_DB?mode=ro" "$2"
    else
        psql -h "$FERRY_TEST_PG" -U ferry -d console -XAtqc "$2"
    fi
}
# floor DB NODE: ms the database's own shell takes for the page of 100 after NODE.
floor() {
    local q="SELECT n.*, i.doc FROM nodes n LEFT JOIN node_info i
        ON i.node = n.node AND i.node > '$2' WHERE n.node > '$2' ORDER BY n.node LIMIT 100;"
    if [ "$1" = sqlite ]; then
        printf '.timer on\n%s\n' "$q" | sqlite3 "$SQLITE_DB" 2>&1 |
            awk '/^Run Time/ {print $4 * 1000}' | tail -1
    else
        printf '\\timing on\n%s\n' "$q" | psql -h "$FERRY_TEST_PG" -U ferry -d console -Xq 2>&1 |
            awk '/^Time:/ {print $2}' | tail -1
    fi
}

for db in $DBS; do
    case $db in
    sqlite) TARGET[$db]=$SQLITE_DB ;;
    postgresql)
        createdb -h "$FERRY_TEST_PG" -U ferry console || die "createdb failed"
        TARGET[$db]="postgresql://ferry@/console?host=$FERRY_TEST_PG"
        ;;
    *) die "BENCH_DBS: unknown database $db" ;;
    esac
    t0=$(now_ms)
    "$RB" controller "${TARGET[$db]}" "$NODES" 100 1 >/dev/null ||
        die "rollout_bench could not fill ${TARGET[$db]}"
    # Its rollout is not what is measured here: cancelled, serve's controller idles.
    "$CLOUD" rollout cancel 1 --db "${TARGET[$db]}" --by bench --reason "console bench" \
        >/dev/null || die "cancelling the synthetic rollout failed"
    [ "$db" = sqlite ] || sql "$db" "VACUUM ANALYZE" >/dev/null || die "VACUUM ANALYZE failed"
    echo "$db: filled in $(($(now_ms) - t0)) ms"
    HTTP_PORT=$(free_port tcp)
    URL[$db]="http://127.0.0.1:$HTTP_PORT/api/v1"
    "$CLOUD" serve --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET-$db" --store "$WORK/store" \
        --db "${TARGET[$db]}" --http "127.0.0.1:$HTTP_PORT" \
        --http-max-streams "$((STREAMS + 2))" --log-level info >"$WORK/serve-$db.log" 2>&1 &
    SERVE[$db]=$!
    PIDS+=("${SERVE[$db]}")
    wait_for 20 "${SERVE[$db]}" grep -q "subscribed to all" "$WORK/serve-$db.log" ||
        die "serve did not start: $(tail -5 "$WORK/serve-$db.log")"
done

# --- api ---------------------------------------------------------------------------
ms() { curl -s -o /dev/null -w '%{time_total}' "$1" | awk '{printf "%.3f", $1 * 1000}'; }
# The whole list, page by page, by one client on one kept-alive connection:
# "ms pages". It comes from 127.0.0.2, so the CPU time it runs up in serve's
# per-client share (cloud_http_share.h) does not make the single GETs from
# 127.0.0.1 wait: those measure what each read costs, not the pacing.
walk_ms() {
    python3 - "$1" <<'PY'
import http.client, json, sys, time, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=120, source_address=("127.0.0.2", 0))
after, pages, t0 = "", 0, time.monotonic()
while True:
    c.request("GET", u.path + "/nodes?limit=1000" + ("&after=" + after if after else ""))
    r = c.getresponse()
    after = json.loads(r.read())["next"] or ""
    pages += 1
    if not after:
        break
print("%.1f %d" % ((time.monotonic() - t0) * 1000, pages))
PY
}
first=node-$(printf '%07d' $((NODES / 2)))
for r in $(seq "$RUNS"); do
    for db in $DBS; do
        u=${URL[$db]}
        read -r walk pages <<<"$(walk_ms "$u")"
        echo "api-$db round=$r page100=$(ms "$u/nodes?limit=100&after=$first")" \
            "page1000=$(ms "$u/nodes?limit=1000&after=$first") whole=$walk pages=$pages" \
            "filtered=$(ms "$u/nodes?state=success&gateway=gw-007&limit=100")" \
            "summary=$(ms "$u/summary") gateways=$(ms "$u/gateways")" \
            "releases=$(ms "$u/releases") node=$(ms "$u/nodes/$first")" \
            "floor100=$(floor "$db" "$first")" >>"$RESULTS"
    done
done

# --- ingest ------------------------------------------------------------------------
stored() { sql "$1" "SELECT COUNT(*) FROM records WHERE node LIKE 'ing-%'"; }
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
# page_open URL
page_open() {
    local _
    PAGE_PIDS=()
    for _ in $(seq "$STREAMS"); do
        curl -s -N -o /dev/null "$1/events" &
        PAGE_PIDS+=("$!")
    done
    if [ "${BENCH_POLLER:-keepalive}" = curl ]; then
        (while :; do
            curl -s -o /dev/null "$1/nodes?limit=100"
            curl -s -o /dev/null "$1/summary"
        done) &
    else
        python3 - "$1" <<'PY' &
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
declare -A want
# The condition is read by wait_for's bash, with these functions.
export -f sql stored
export FERRY_TEST_PG SQLITE_DB
for db in $DBS; do want[$db]=0; done
for r in $(seq "$RUNS"); do
    for db in $DBS; do
        pid=${SERVE[$db]}
        for mode in idle page; do
            [ "$mode" = page ] && page_open "${URL[$db]}"
            batches "$r$db$mode" >"$WORK/batches"
            want[$db]=$((want[$db] + BATCHES * 10))
            PERF_PID=
            if [ -n "${BENCH_PERF:-}" ] && [ "$r" = 1 ]; then
                perf record -q -F 499 -g -p "$pid" -o "$BENCH_PERF/$db-$mode.data" 2>/dev/null &
                PERF_PID=$!
            fi
            c0=$(cpu_ms "$pid")
            t0=$(now_ms)
            mosquitto_pub -p "$PORT" -q 1 -t "ferry/v1/$FLEET-$db/status/ing-gw" -l \
                <"$WORK/batches" || die "mosquitto_pub failed"
            WAIT_TICK=0.02 wait_for 120 "$pid" bash -c "[ \$(stored $db) -ge ${want[$db]} ]" ||
                die "serve did not store round $r ($db, $mode): $(stored "$db") of ${want[$db]}"
            t=$(($(now_ms) - t0))
            c=$(($(cpu_ms "$pid") - c0))
            if [ -n "$PERF_PID" ]; then
                kill -INT "$PERF_PID"
                wait "$PERF_PID"
            fi
            echo "ingest-$mode-$db round=$r records=$((BATCHES * 10)) ms=$t" \
                "rate=$((BATCHES * 10 * 1000 / (t > 0 ? t : 1))) serve_cpu_ms=$c" >>"$RESULTS"
            [ "$mode" = page ] && page_close
        done
    done
done

python3 - "$RESULTS" "$DBS" <<'PY'
import math, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kind, *f = line.split()
    rows.setdefault(kind, []).append(dict(x.split("=", 1) for x in f))
dbs = sys.argv[2].split()
names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
def med(kind, key):
    v = [float(r[key]) for r in rows.get(kind, []) if r.get(key, "NA") not in ("NA", "")]
    return statistics.median(v) if v else float("nan")
def line(what, fmt, vals):
    cells = "".join(("%12" + fmt) % v for v in vals)
    if len(vals) == 2:
        ratio = vals[1] / vals[0] if vals[0] and not math.isnan(vals[0]) else float("nan")
        cells += "%8.2f" % ratio
    print("  %-44s%s" % (what, cells))
def head(what, unit):
    cols = "".join("%12s" % names[d] for d in dbs) + ("%8s" % "PG/SQL" if len(dbs) == 2 else "")
    print("%-46s%s   (%s)" % (what, cols, unit))
n = len(rows.get("api-" + dbs[0], []))
head("GET (curl time_total), median of %d" % n, "ms")
pages = med("api-" + dbs[0], "pages")
for key, what in (("page100", "/nodes?limit=100 (a page)"), ("page1000", "/nodes?limit=1000"),
                  ("whole", "the whole list, %d pages of 1000" % pages),
                  ("filtered", "/nodes?state=success&gateway=gw-007"),
                  ("summary", "/summary"), ("gateways", "/gateways"), ("releases", "/releases"),
                  ("node", "/nodes/<id> (one node's page)"),
                  ("floor100", "the database's shell: the page of 100")):
    line(what, ".1f", [med("api-" + d, key) for d in dbs])
head("status ingestion, median of %d" % len(rows["ingest-idle-" + dbs[0]]), "records/s")
line("no HTTP client", ".0f", [med("ingest-idle-" + d, "rate") for d in dbs])
line("page open (streams + poller)", ".0f", [med("ingest-page-" + d, "rate") for d in dbs])
for d in dbs:
    print("  ratio, page open / none, %-19s%12.2f" %
          (names[d], med("ingest-page-" + d, "rate") / med("ingest-idle-" + d, "rate")))
head("serve's CPU time a round, median", "ms")
line("no HTTP client", ".0f", [med("ingest-idle-" + d, "serve_cpu_ms") for d in dbs])
line("page open", ".0f", [med("ingest-page-" + d, "serve_cpu_ms") for d in dbs])
for d in dbs:
    for mode in ("idle", "page"):
        kind = "ingest-%s-%s" % (mode, d)
        print("  %s rounds: %s" % (kind, ", ".join("%s/s %sms" % (r["rate"], r["serve_cpu_ms"])
                                                   for r in rows[kind])))
PY
