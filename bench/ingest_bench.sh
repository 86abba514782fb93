#!/usr/bin/env bash
# Status ingestion at the inventory (bench/README.md, "Status ingestion"):
# records committed per second through cloud_inventory_ingest(), the call
# `ferry-cloud serve` makes before it acknowledges a batch, by one and by
# two writer processes (two serve instances), on an SQLite file and on a
# PostgreSQL 15 server started here (tests/unit/pg_server.sh: socket only,
# default settings but fsync=off, so its numbers are an upper bound for a
# server that syncs; SQLite runs with synchronous=FULL as in production).
#
# A benchmark, not a test: it asserts nothing and is never run by ctest.
#
#   bench/ingest_bench.sh [RUNS]   rounds of each (default 5)
#
# Environment: FERRY_BUILD_DIR (default build-bench), BENCH_NO_BUILD=1,
# BENCH_BATCHES (200), BENCH_SIZE (50 records a batch), BENCH_TMP.
BENCH_NAME=ingest_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${1:-5}
BATCHES=${BENCH_BATCHES:-200}
SIZE=${BENCH_SIZE:-50}
bench_setup "$RUNS" python3
[ "${BENCH_NO_BUILD:-0}" = 1 ] || compile ingest_bench
BIN=$BUILD/bench/ingest_bench
[ -x "$BIN" ] || die "no ingest_bench under $BUILD"

echo "ingest_bench: $(nproc) CPUs, build $BUILD, $(date -u +%FT%TZ), $BATCHES batches of $SIZE"
for w in 1 2; do
    for r in $(seq "$RUNS"); do
        rm -f "$WORK"/inv.db*
        "$BIN" "$WORK/inv.db" "$w" "$BATCHES" "$SIZE" | sed "s/^/sqlite round $r: /" ||
            die "sqlite run failed"
    done
done
# One server for the PostgreSQL rounds, a fresh database for each.
# shellcheck disable=SC2016 # expanded by the inner shell
bash "$SRC/tests/unit/pg_server.sh" bash -c '
for w in 1 2; do
    for r in $(seq "$1"); do
        createdb -h "$FERRY_TEST_PG" -U ferry "inv_${w}_$r" || exit 1
        "$2" "postgresql://ferry@/inv_${w}_$r?host=$FERRY_TEST_PG" "$w" "$3" "$4" |
            sed "s/^/postgresql round $r: /" || exit 1
    done
done' - "$RUNS" "$BIN" "$BATCHES" "$SIZE" || die "postgresql run failed"
