#!/usr/bin/env bash
# What the gateway's per-request decisions cost with many known nodes:
# gw_pacer_admit() (download admission) and gw_budget_ask() (link budget),
# timed in-process on simulated time by bench/admission_bench.c.
#
#   bench/admission_bench.sh [ROUNDS]      ROUNDS rounds (default 7)
#
# Environment: FERRY_BUILD_DIR, BENCH_NO_BUILD as in bench/lib.sh;
#   BENCH_NODES (default 10000), BENCH_REQUESTS per round (default 2000000).
set -uo pipefail

BENCH_NAME=admission_bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${1:-7}
bench_setup "$RUNS" python3
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    compile ferry-admission-bench
fi
BIN="$BUILD/bench/ferry-admission-bench"
[ -x "$BIN" ] || die "no ferry-admission-bench under $BUILD"
"$BIN" "${BENCH_NODES:-10000}" "${BENCH_REQUESTS:-2000000}" "$RUNS" | tee "$WORK/out.txt"
python3 - "$WORK/out.txt" <<'PY'
import re, statistics, sys
text = open(sys.argv[1]).read()
pacer = [float(x) for x in re.findall(r"pacer ([0-9.]+) ns", text)]
budget = [float(x) for x in re.findall(r"budget ([0-9.]+) ns", text)]
print(f"median of {len(pacer)} rounds: admission {statistics.median(pacer):.0f} ns, "
      f"link budget {statistics.median(budget):.0f} ns per decision")
PY
