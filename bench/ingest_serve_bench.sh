#!/usr/bin/env bash
# Status ingestion end to end (bench/README.md, "Status ingestion through
# serve"): records per second that real `ferry-cloud serve` processes take
# from mosquitto, commit to the inventory and acknowledge, with one and with
# two instances (a shared subscription splits the batches), on an SQLite
# file and on PostgreSQL 15 (tests/unit/pg_server.sh: socket only,
# fsync=off, so an upper bound for a server that syncs). Also the broker
# alone: the same batch messages from mosquitto_pub to a mosquitto_sub,
# which is the per-broker-message cost of a status batch with no database.
#
# Batches come from GATEWAYS gateway topics at once (mosquitto_pub -l, QoS
# 1), BATCHES each, SIZE records a batch, each record a new node; a round
# ends when mosquitto_sub has counted every acknowledgement (serve sends it
# after the commit), so the figure is committed and acknowledged.
#
# A benchmark, not a test: it asserts nothing and is never run by ctest.
#
#   bench/ingest_serve_bench.sh [RUNS]   rounds of each (default 3)
#
# Environment: FERRY_BUILD_DIR (default build-bench), BENCH_NO_BUILD=1,
# BENCH_GATEWAYS (8), BENCH_BATCHES (100 per gateway), BENCH_SIZE (20),
# BENCH_TMP, BENCH_KEEP=1.
BENCH_NAME=ingest_serve_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The whole benchmark runs beside a PostgreSQL server of its own.
if [ -z "${FERRY_TEST_PG:-}" ]; then
    exec bash "$SRC/tests/unit/pg_server.sh" bash "${BASH_SOURCE[0]}" "$@"
fi

RUNS=${1:-3}
GATEWAYS=${BENCH_GATEWAYS:-8}
BATCHES=${BENCH_BATCHES:-100}
SIZE=${BENCH_SIZE:-20}
FLEET=bench
bench_setup "$RUNS" python3 mosquitto mosquitto_pub mosquitto_sub createdb
BENCH_NO_BUILD=${BENCH_NO_BUILD:-0} build ferry-cloud
RESULTS="$WORK/results"
TOTAL=$((GATEWAYS * BATCHES))

echo "ingest_serve_bench: $(nproc) CPUs, build $BUILD, $(date -u +%FT%TZ)," \
    "$GATEWAYS gateways x $BATCHES batches of $SIZE records"
start_broker

# batches ROUND GW: one line per batch, each record a node of its own.
batches() {
    python3 - "$1" "$2" "$BATCHES" "$SIZE" <<'PY'
import json, sys, time
r, gw, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ts = int(time.time())
for b in range(n):
    recs = [{"format": 1, "node": "%s-%s-%d-%d" % (gw, r, b, k), "gateway": gw,
             "version": "1.0.0", "state": "idle", "bytes": 0, "total": 0, "seq": 1, "ts": ts}
            for k in range(size)]
    print(json.dumps({"format": 1, "batch": "%s:%s:%d" % (gw, r, b), "records": recs},
                     separators=(",", ":")))
PY
}

# round KIND R TOPIC_PREFIX ACK_FILTER: publishes every gateway's batches at
# once and waits until mosquitto_sub has TOTAL messages on ACK_FILTER.
round() {
    local kind=$1 r=$2 prefix=$3 filter=$4 g t0 t sub pubs=()
    for g in $(seq "$GATEWAYS"); do
        batches "$kind$r" "gw$g" >"$WORK/batches-$g"
    done
    stdbuf -oL mosquitto_sub -d -p "$PORT" -q 1 -t "$filter" -C "$TOTAL" -W 300 >"$WORK/sub.log" &
    sub=$!
    wait_for 10 "$sub" grep -q "received SUBACK" "$WORK/sub.log" ||
        die "$kind round $r: the acknowledgement subscription was not granted"
    t0=$(now_ms)
    for g in $(seq "$GATEWAYS"); do
        mosquitto_pub -p "$PORT" -q 1 -t "$prefix/gw$g" -l <"$WORK/batches-$g" &
        pubs+=("$!")
    done
    for g in "${pubs[@]}"; do
        wait "$g" || die "$kind round $r: mosquitto_pub failed"
    done
    wait "$sub" || die "$kind round $r: not every acknowledgement came within 300 s"
    t=$(($(now_ms) - t0))
    echo "$kind round=$r ms=$t rate=$((TOTAL * SIZE * 1000 / (t > 0 ? t : 1)))" \
        "msgs=$((TOTAL * 1000 / (t > 0 ? t : 1)))" | tee -a "$RESULTS"
}

# --- the broker alone: a batch message in, the same message out ---------------------------
for r in $(seq "$RUNS"); do
    round broker "$r" "bench-only" "bench-only/+"
done

# --- serve: INSTANCES processes on one inventory ------------------------------------------
for db in sqlite postgresql; do
    for n in 1 2; do
        for r in $(seq "$RUNS"); do
            if [ "$db" = sqlite ]; then
                DB="$WORK/inv-$n-$r.db"
            else
                createdb -h "$FERRY_TEST_PG" -U ferry "inv_${n}_$r" || die "createdb failed"
                DB="postgresql://ferry@/inv_${n}_$r?host=$FERRY_TEST_PG"
            fi
            serves=()
            for i in $(seq "$n"); do
                "$CLOUD" serve --broker "mqtt://127.0.0.1:$PORT" --fleet "$FLEET" \
                    --store "$WORK/store" --db "$DB" --instance "s$i" --log-level info \
                    >"$WORK/serve-$db-$n-$r-$i.log" 2>&1 &
                serves+=("$!")
                PIDS+=("$!")
                wait_for 30 "$!" grep -qs "subscribed to all" "$WORK/serve-$db-$n-$r-$i.log" ||
                    die "serve did not start: $(tail -5 "$WORK/serve-$db-$n-$r-$i.log")"
            done
            round "$db-$n" "$r" "ferry/v1/$FLEET/status" "ferry/v1/$FLEET/status-ack/+"
            for i in "${serves[@]}"; do
                kill "$i" 2>/dev/null
                wait "$i" 2>/dev/null
                forget "$i"
            done
        done
    done
done

python3 - "$RESULTS" "$SIZE" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kind, *f = line.split()
    rows.setdefault(kind, []).append(dict(x.split("=", 1) for x in f))
print("%-34s %14s %14s  rounds (records/s)" % ("median of %d rounds" % len(rows["broker"]),
                                             "records/s", "batches/s"))
for kind, what in (("broker", "broker only (no serve)"), ("sqlite-1", "SQLite, 1 serve"),
                   ("sqlite-2", "SQLite, 2 serve"), ("postgresql-1", "PostgreSQL, 1 serve"),
                   ("postgresql-2", "PostgreSQL, 2 serve")):
    rate = [int(x["rate"]) for x in rows.get(kind, [])]
    msgs = [int(x["msgs"]) for x in rows.get(kind, [])]
    if rate:
        print("%-34s %14d %14d  %s" % (what, statistics.median(rate), statistics.median(msgs),
                                        ", ".join(map(str, rate))))
PY
