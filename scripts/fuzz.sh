#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time, starting from a copy of its
# seed corpus inside BUILD_DIR (the repository is never written), and fails
# if any target finds a crash, leak, timeout or out-of-memory input.
#   usage: scripts/fuzz.sh BUILD_DIR SECONDS
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
seconds=$2
case $seconds in
'' | *[!0-9]*)
    echo "fuzz: SECONDS must be a whole number, got '$seconds'" >&2
    exit 2
    ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)

failed=()
for target in envelope status meta; do
    bin=$build/tests/fuzz/fuzz_$target
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin is not built" >&2
        exit 2
    fi
    work=$build/fuzz-run/$target
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/findings"
    cp "$root/tests/fuzz/corpus/$target/"* "$work/corpus/"

    echo "fuzz: $target for ${seconds}s ($(ls "$work/corpus" | wc -l) seeds)"
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
