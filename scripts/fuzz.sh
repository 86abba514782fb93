#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time, starting from a copy of its
# seed corpus inside BUILD_DIR (the repository is never written), and fails
# if any target finds a crash, leak, timeout or out-of-memory input.
#   usage: scripts/fuzz.sh BUILD_DIR SECONDS TARGET...
# (TARGET is a name under tests/fuzz/ without the fuzz_ prefix; the Makefile's
# FUZZ_TARGETS lists them all.)
# SECONDS is each target's time, within a budget for the whole run:
# FUZZ_BUDGET seconds (default 252, so that CI's fuzz stage, build included,
# stays near 6 minutes) shared equally, so each target runs
# min(SECONDS, FUZZ_BUDGET / number of targets) seconds, at least 1.
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 BUILD_DIR SECONDS TARGET..." >&2
    exit 2
fi
build=$1
seconds=$2
shift 2
targets=("$@")
budget=${FUZZ_BUDGET:-252}
for value in "$seconds" "$budget"; do
    case $value in
    '' | *[!0-9]*)
        echo "fuzz: SECONDS and FUZZ_BUDGET must be whole numbers, got '$value'" >&2
        exit 2
        ;;
    esac
done
share=$((budget / ${#targets[@]}))
if [ "$seconds" -gt "$share" ]; then
    echo "fuzz: ${#targets[@]} targets in a ${budget}s budget: ${share}s each instead of ${seconds}s"
    seconds=$share
fi
if [ "$seconds" -lt 1 ]; then
    seconds=1
fi
root=$(cd "$(dirname "$0")/.." && pwd)

failed=()
for target in "${targets[@]}"; do
    bin=$build/tests/fuzz/fuzz_$target
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin is not built" >&2
        exit 2
    fi
    work=$build/fuzz-run/$target
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/findings"
    cp "$root/tests/fuzz/corpus/$target/"* "$work/corpus/"

    echo "fuzz: $target for ${seconds}s ($(find "$work/corpus" -type f | wc -l) seeds)"
    status=0
    "$bin" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/findings/" "$work/corpus" >"$work/log" 2>&1 || status=$?
    findings=$(find "$work/findings" -type f | wc -l)
    if [ "$status" -ne 0 ] || [ "$findings" -ne 0 ]; then
        echo "fuzz: $target FAILED (exit $status, $findings finding(s) in $work/findings)"
        tail -n 40 "$work/log"
        failed+=("$target")
    else
        grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$work/log" |
            sed "s/^/fuzz: $target /"
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz: failed: ${failed[*]}"
    exit 1
fi
echo "fuzz: no crash found"
