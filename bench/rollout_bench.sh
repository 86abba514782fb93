#!/usr/bin/env bash
# The cost of rollout decisions (bench/README.md, "Rollouts"):
#
#   controller  `ferry-cloud serve`'s rollout tick over an inventory of
#               BENCH_NODES synthetic nodes (a description and a latest
#               record each) on BENCH_GATEWAYS gateways, one rollout of all of
#               them in waves 1,10,50,100; beside it, for scale, sqlite3's own
#               shell counting the same targets by wave and state (the least
#               any controller reading this inventory must do).
#   admission   the gateway's decision per request (the manifest hook's offer,
#               the block hook's admission) with BENCH_TARGETS targets in the
#               rollout document, against a bare lookup of the node in the
#               same kind of map.
#
# A benchmark, not a test: it asserts nothing and is never run by ctest.
#
#   bench/rollout_bench.sh [RUNS]   rounds of each (default 5)
#
# Environment: FERRY_BUILD_DIR (default build-bench), BENCH_NO_BUILD=1,
# BENCH_NODES (100000), BENCH_GATEWAYS (100), BENCH_TARGETS (10000),
# BENCH_TMP, BENCH_KEEP=1.
BENCH_NAME=rollout_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${1:-5}
NODES=${BENCH_NODES:-100000}
GATEWAYS=${BENCH_GATEWAYS:-100}
TARGETS=${BENCH_TARGETS:-10000}
bench_setup "$RUNS" sqlite3 python3
[ "${BENCH_NO_BUILD:-0}" = 1 ] || compile rollout_bench
BIN=$BUILD/bench/rollout_bench
[ -x "$BIN" ] || die "no rollout_bench under $BUILD"

echo "rollout_bench: $(nproc) CPUs, build $BUILD, $(date -u +%FT%TZ)"
"$BIN" controller "$WORK/inventory.db" "$NODES" "$GATEWAYS" "$RUNS" || die "controller failed"

# sqlite3's shell over the last round's inventory: the counts alone.
times=()
for _ in $(seq "$RUNS"); do
    t=$(printf '.timer on\n%s\n' "SELECT wave, state, COUNT(*), MAX(final_at)
        FROM rollout_targets WHERE rollout = 1 GROUP BY wave, state;" |
        sqlite3 "$WORK/inventory.db" 2>&1 | awk '/^Run Time/ {print $4 * 1000}')
    times+=("$t")
done
python3 - "${times[@]}" <<'PY'
import statistics, sys
v = [float(x) for x in sys.argv[1:]]
print("%-44s median %10.3f ms  rounds: %s" % ("sqlite3 shell: the same counts (GROUP BY)",
      statistics.median(v), " ".join("%.3f" % x for x in v)))
PY

"$BIN" admission "$TARGETS" "$RUNS" || die "admission failed"
