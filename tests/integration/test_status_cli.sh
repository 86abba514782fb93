#!/usr/bin/env bash
# `ferry-cloud status` against an inventory filled the way gateways fill it:
# status batches published on MQTT and ingested by a real `ferry-cloud serve`.
# Covers the table, --json, the filters, --watch without a terminal and on a
# pseudo-terminal, and --wait ending in success, in failure and in a timeout.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"


# record NODE GATEWAY RELEASE STATE BYTES TOTAL SEQ [ERROR MESSAGE]: one status record.
# Release rN is version 1.0.N; RELEASE "" is a node with none.
record() {
    local rel="" err=""
    [ -n "$3" ] && rel=",\"release\":\"$3\",\"version\":\"1.0.${3#r}\""
    [ $# -ge 9 ] && err=",\"error\":\"$8\",\"message\":\"$9\""
    printf '{"format":1,"node":"%s","gateway":"%s"%s,"state":"%s",' "$1" "$2" "$rel" "$4"
    printf '"bytes":%s,"total":%s,"seq":%s,"ts":%s%s}' "$5" "$6" "$7" "$(date +%s)" "$err"
}

# "node:state:seq ..." for every node, in node order.
summary() {
    "$CLOUD" status --db "$DB" --json "$@" | python3 -c '
import json, sys
print(" ".join("%s:%s:%d" % (r["node"], r["state"], r["seq"]) for r in json.load(sys.stdin)))'
}

has_row() {
    [[ " $(summary) " == *" $1 "* ]]
}

# keep NAME: the last run's output as $TEST_TMP/NAME.out and NAME.err (check
# runs its command through `run` too, which replaces RUN_STDOUT).
keep() {
    cp "$RUN_STDOUT" "$TEST_TMP/$1.out"
    cp "$RUN_STDERR" "$TEST_TMP/$1.err"
}

# status STATUS_ARGS...: run `ferry-cloud status --db $DB` with them.
status() {
    "$CLOUD" status --db "$DB" "$@"
}

start_serve s1
# A batch published before serve subscribes reaches nobody.
wait_until 10 grep -qF "ferry/v1/$FLEET/status/+" "$MOSQ_LOG" ||
    die "serve never subscribed: $(cat "$TEST_TMP/serve-s1.log")"

# Release r1 through two gateways; r2 on gw-b only; b3 has nothing to do yet.
send_batch gw-a "$(record a1 gw-a r1 success 100 100 4)" \
    "$(record a2 gw-a r1 downloading 40 100 2)" \
    "$(record a3 gw-a r1 rolled-back 100 100 6 io 'health check of 1.0.1 failed: exit 1')"
send_batch gw-b "$(record b1 gw-b r1 success 100 100 5)" \
    "$(record b2 gw-b r2 success 200 200 5)" \
    "$(record b3 gw-b "" idle 0 0 1)"
wait_until 10 has_row b3:idle:1 || die "records not ingested: $(summary) $(cat "$TEST_TMP/serve-s1.log")"

# --- one look -------------------------------------------------------------------------
expect_status 0 "the table lists the inventory" status
keep table
check "the table has a header and one line per node" test "$(wc -l <"$TEST_TMP/table.out")" -eq 7
check "the table names its columns" grep -Eq '^NODE +GATEWAY +RELEASE +VERSION +STATE ' "$TEST_TMP/table.out"
check "the table shows a download's progress" \
    grep -Eq '^a2 +gw-a +r1 +1\.0\.1 +downloading +40/100 ' "$TEST_TMP/table.out"
check "the table shows why a node rolled back" \
    grep -Eq '^a3 .*rolled-back .*io: health check of 1\.0\.1 failed' "$TEST_TMP/table.out"

expect_status 0 "--json lists the inventory" status --json
keep json
check "--json is an array of every node with the documented fields" python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["node"] for r in rows] == ["a1", "a2", "a3", "b1", "b2", "b3"], rows
keys = {"node", "gateway", "release", "version", "state", "bytes", "total", "error",
        "message", "seq", "ts", "via", "updated_at", "refused"}
assert all(set(r) == keys for r in rows), rows
a2 = rows[1]
assert (a2["state"], a2["bytes"], a2["total"], a2["release"]) == ("downloading", 40, 100, "r1")
assert rows[2]["error"] == "io" and "health check" in rows[2]["message"]
assert all(r["via"] == [] for r in rows)  # straight from their gateways
' "$TEST_TMP/json.out"

check "--release picks the nodes whose latest record names it" \
    test "$(summary --release r1)" = "a1:success:4 a2:downloading:2 a3:rolled-back:6 b1:success:5"
check "--gateway picks the nodes last heard through it" \
    test "$(summary --gateway gw-b)" = "b1:success:5 b2:success:5 b3:idle:1"
check "--state picks the nodes in that state" \
    test "$(summary --state success)" = "a1:success:4 b1:success:5 b2:success:5"
check "the filters combine" test "$(summary --release r1 --gateway gw-b --state success)" = "b1:success:5"
check "a filter nothing matches gives an empty array" test "$(summary --release r9)" = ""
expect_status 0 "a table nothing matches has its header only" status --state failed
keep empty
check "... and only the header" test "$(wc -l <"$TEST_TMP/empty.out")" -eq 1

# --- usage errors -------------------------------------------------------------------
expect_status 2 "an unknown state is a usage error" status --state "done"
expect_output stderr "'done' is not a state" "... naming the value"
expect_status 2 "--watch with --json is refused" status --watch --json
expect_status 2 "--timeout without --wait is refused" status --timeout 5s
expect_status 2 "--expect without --wait is refused" status --expect 3
expect_status 2 "an interval below 100ms is refused" status --wait --interval 5ms
expect_output stderr "--interval '5ms'" "... naming the flag"
expect_status 1 "a missing inventory fails" "$CLOUD" status --db "$TEST_TMP/none.db" --wait
expect_status 0 "--help documents targeted nodes" status --help
expect_output stdout "targeted nodes are those that" "... in its text"

# --- --wait --------------------------------------------------------------------------
expect_status 0 "--wait: settled and all succeeded exits 0" status --wait --release r2 --timeout 10
expect_output stderr "the one targeted node succeeded" "... with a verdict on stderr"
keep wait-r2
check "... and prints the listing" grep -Eq '^b2 .* success ' "$TEST_TMP/wait-r2.out"

expect_status 4 "--wait: too few targeted nodes times out" \
    status --wait --release r2 --expect 2 --timeout 2 --interval 200ms
expect_output stderr "1 of the 2 expected nodes" "... saying how many reported"

SECONDS=0
expect_status 4 "--wait: a node still downloading times out" \
    status --wait --release r1 --timeout 2 --interval 200ms
expect_output stderr "timed out after 2s: 1 of 4 targeted nodes not in a final state: a2 downloading" \
    "... naming the node"
check "... after the timeout, not long after" test "$SECONDS" -le 5

# A wait in progress sees new records: r1 settles with a3 rolled back.
"$CLOUD" status --db "$DB" --wait --release r1 --timeout 30 --interval 200ms --json \
    >"$TEST_TMP/wait-r1.out" 2>"$TEST_TMP/wait-r1.err" &
wait_pid=$!
kill_at_exit "$wait_pid"
sleep 1
check "--wait keeps waiting while a node downloads" kill -0 "$wait_pid"
send_batch gw-a "$(record a2 gw-a r1 success 100 100 3)"
wait "$wait_pid"
check "--wait: settled with a rolled-back node exits 3" test $? -eq 3
check "... naming the node that did not succeed" \
    grep -q "1 of 4 targeted nodes did not succeed: a3 rolled-back" "$TEST_TMP/wait-r1.err"
check "... and its listing is the pass that settled it" python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
assert [(r["node"], r["state"]) for r in rows] == [
    ("a1", "success"), ("a2", "success"), ("a3", "rolled-back"), ("b1", "success")], rows
' "$TEST_TMP/wait-r1.out"

# --- --watch without a terminal: one line per report ---------------------------------
"$CLOUD" status --db "$DB" --watch --gateway gw-b --interval 200ms >"$TEST_TMP/watch.out" 2>&1 &
watch_pid=$!
kill_at_exit "$watch_pid"
wait_until 5 grep -q -- "-- 3 nodes" "$TEST_TMP/watch.out"
send_batch gw-b "$(record b3 gw-b r2 downloading 50 200 2)"
wait_until 10 grep -q " b3 downloading 25% (50/200) version=1.0.2 release=r2 gateway=gw-b" \
    "$TEST_TMP/watch.out"
check "--watch prints a line when a node reports" test $? -eq 0
kill -INT "$watch_pid"
wait "$watch_pid"
check "--watch ends cleanly on SIGINT" test $? -eq 0
check "--watch printed each node once, then the report" \
    test "$(grep -c ' b[123] ' "$TEST_TMP/watch.out")" -eq 4
check "--watch printed the counts by state" grep -q -- "-- 3 nodes: 1 idle, 2 success" "$TEST_TMP/watch.out"
check "--watch printed new counts after the report" \
    grep -q -- "-- 3 nodes: 1 downloading, 2 success" "$TEST_TMP/watch.out"

# --- --watch --wait on a terminal: redrawn frames, then the verdict ------------------
(sleep 1 && send_batch gw-b "$(record b3 gw-b r2 success 200 200 3)") &
kill_at_exit "$!"
expect_status 0 "--watch --wait on a terminal ends with 0 once all succeeded" \
    script -qec "stty rows 30 cols 120; '$CLOUD' status --db '$DB' --gateway gw-b \
    --watch --wait --interval 200ms --timeout 20" /dev/null
keep tty
check "... redrawing in place" test "$(grep -c $'\033\\[H' "$TEST_TMP/tty.out")" -ge 2
check "... with a progress bar" grep -qF "[#####...............]  25%" "$TEST_TMP/tty.out"
check "... and the final frame" grep -qF "[####################] 100%" "$TEST_TMP/tty.out"
check "... and the verdict" grep -q "all 3 targeted nodes succeeded" "$TEST_TMP/tty.out"

# --- status that cannot be forged into a frozen node -------------------------------------
# One record with a seq near 2^53 used to sit above every later real one (the
# inventory keeps the highest seq per node), and --wait then saw a success for
# a node that failed. It is refused now, and the real records go on.
send_batch gw-b "$(record f1 gw-b r3 downloading 10 100 4)"
wait_until 10 has_row f1:downloading:4 || die "f1's first record was not ingested"
send_batch gw-b "$(record f1 gw-b r3 success 100 100 9007199254740992)"
wait_until 10 grep -q "refused node f1 seq 9007199254740992 from gateway gw-b (seq-range)" \
    "$TEST_TMP/serve-s1.log" || die "the forged record was not refused: $(summary)"
send_batch gw-b "$(record f1 gw-b r3 failed 50 100 5 hash-mismatch 'artifact: SHA-256 differs')"
wait_until 10 has_row f1:failed:5
check "a record far ahead is refused and the real ones go on" has_row f1:failed:5
expect_status 3 "--wait reports the node that failed, not the forged success" \
    status --wait --release r3 --timeout 10
expect_output stderr "did not succeed: f1 failed" "... naming it"
expect_status 0 "--refused lists the refused record" status --refused --json
keep refused
check "... with its reason" python3 -c '
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r["node"] == "f1"]
assert len(rows) == 1 and rows[0]["reason"] == "seq-range", rows
assert rows[0]["seq"] == 9007199254740992 and rows[0]["gateway"] == "gw-b", rows
' "$TEST_TMP/refused.out"

# A conflicting duplicate: the first record of (f2, 3) is a forged success;
# the node's own failure under the same seq is refused as a conflict and kept,
# and --wait does not take the forged success for one.
send_batch gw-b "$(record f2 gw-b r4 success 100 100 3)"
wait_until 10 has_row f2:success:3 || die "f2's record was not ingested"
send_batch gw-b "$(record f2 gw-b r4 failed 0 100 3 io 'health check failed')"
wait_until 10 grep -q "refused node f2 seq 3 from gateway gw-b (conflict)" "$TEST_TMP/serve-s1.log"
check "a conflicting duplicate is refused and logged as a conflict" test $? -eq 0
expect_status 3 "--wait does not count a success with a refused conflict since" \
    status --wait --release r4 --timeout 10
expect_output stderr "f2 success (1 record refused since)" "... and says why"
expect_status 0 "the table marks the node" status --release r4
expect_output stdout "[1 refused since: see --refused]" "... pointing at --refused"

# Bound to gw-b by its first record, f2 cannot be written by gw-a; the
# operator's move makes gw-a its gateway, logged as an event.
send_batch gw-a "$(record f2 gw-a r4 idle 0 0 4)"
wait_until 10 grep -q "refused node f2 seq 4 from gateway gw-a (wrong-gateway)" \
    "$TEST_TMP/serve-s1.log"
check "another gateway cannot write a bound node's state" test $? -eq 0
check "... which stays as it was" has_row f2:success:3
expect_status 0 "the operator moves the node" "$CLOUD" bind --db "$DB" --node f2 --gateway gw-a \
    --reason "moved to hall 2"
expect_output stdout "node f2: moved from gateway gw-b to gw-a" "... and is told so"
send_batch gw-a "$(record f2 gw-a r4 idle 0 0 5)"
wait_until 10 has_row f2:idle:5
check "after the move its records through the new gateway are taken" has_row f2:idle:5
send_batch gw-b "$(record f2 gw-b r4 idle 0 0 6)"
wait_until 10 grep -q "refused node f2 seq 6 from gateway gw-b (wrong-gateway)" \
    "$TEST_TMP/serve-s1.log"
check "... and those through the old one refused" test $? -eq 0
expect_status 0 "--events lists the move" status --events
expect_output stdout "moved from gateway gw-b to gw-a by the operator: moved to hall 2" \
    "... with who, where and why"
expect_status 2 "--events takes no filter" status --events --gateway gw-a
expect_status 2 "--refused lists once" status --refused --wait

# --- node-supplied text cannot drive the operator's terminal --------------------------
# The version and message of a record carry a screen clear, a window title, a
# bell, a C1 CSI and a bidi override; every view but --json shows them escaped.
evil=$(python3 -c '
import json, time
print(json.dumps({"format": 1, "node": "e1", "gateway": "gw-c", "release": "r9",
                  "version": "1.0\x1b[2J", "state": "failed", "bytes": 0, "total": 0,
                  "error": "io", "message": "ok\x1b]0;pwned\x07 \x9b31m \u202egnp.exe \\x41",
                  "seq": 1, "ts": int(time.time())}))')
send_batch gw-c "$evil"
wait_until 10 has_row e1:failed:1 || die "the record with escapes was not ingested"
# raw_free FILE: FILE holds no ESC, BEL, C1 CSI or RLO byte sequence.
raw_free() {
    python3 -c '
import sys
data = open(sys.argv[1], "rb").read()
bad = [b"\x1b", b"\x07", b"\xc2\x9b", b"\xe2\x80\xae"]
sys.exit(1 if any(b in data for b in bad) else 0)' "$1"
}
expect_status 0 "the table lists a record with control characters" status --release r9
keep escaped
check "... with none of them raw" raw_free "$TEST_TMP/escaped.out"
check "... but escaped, the backslash too" grep -qF \
    '1.0\x1B[2J' "$TEST_TMP/escaped.out"
check "... every one of them" grep -qF \
    'io: ok\x1B]0;pwned\x07 \u{009B}31m \u{202E}gnp.exe \\x41' "$TEST_TMP/escaped.out"
"$CLOUD" status --db "$DB" --watch --gateway gw-c --interval 200ms >"$TEST_TMP/watch-esc.out" 2>&1 &
watch_pid=$!
kill_at_exit "$watch_pid"
wait_until 5 grep -q " e1 failed" "$TEST_TMP/watch-esc.out"
kill -INT "$watch_pid"
wait "$watch_pid"
check "--watch without a terminal escapes them" raw_free "$TEST_TMP/watch-esc.out"
script -qec "stty rows 30 cols 200; '$CLOUD' status --db '$DB' --gateway gw-c \
    --watch --wait --interval 200ms --timeout 5" /dev/null >"$TEST_TMP/tty-esc.out" 2>&1
check "--watch on a terminal shows the escaped text" grep -qF 'io: ok\x1B]0;pwned' "$TEST_TMP/tty-esc.out"
check "... and never the raw title sequence" python3 -c '
import sys
sys.exit(1 if b"\x1b]0;" in open(sys.argv[1], "rb").read() else 0)' "$TEST_TMP/tty-esc.out"
check "--json keeps the text as the node sent it" python3 -c '
import json, subprocess, sys
rows = json.loads(subprocess.run(sys.argv[1:], capture_output=True, check=True).stdout)
assert rows[0]["version"] == "1.0\x1b[2J", rows
assert rows[0]["message"].startswith("ok\x1b]0;pwned\x07"), rows
' "$CLOUD" status --db "$DB" --json --release r9

finish
