#!/usr/bin/env bash
# A fleet rollout with real processes: mosquitto, ferry-cloud serve, one
# ferry-gateway and 23 ferry-edge nodes on UDP. The cloud's inventory is the
# witness: every node's latest record, and every record it ever sent.
#
#   n01..n20  model m1, healthy: install 1.0.1, then 1.0.2;
#   sick      model m1, its health check fails for 1.0.2: rolls back, runs 1.0.1;
#   busy      model m1, busy while a flag file exists: defers 1.0.2, then installs;
#   other     model m2: takes 1.0.1, rejects 1.0.2 and leaves its slots alone.
#
# Every node follows the product line "firmware", so the gateway offers each
# of them the line's current release. Release 1.0.2 names only model m1: the
# m2 node gets its manifest and must refuse it itself (incompatible-hw), as it
# would a release an untrusted gateway served to the wrong hardware.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"

IMAGE_BYTES=$((256 * 1024))
HEALTHY=()
for i in $(seq -w 1 20); do
    HEALTHY+=("n$i")
done
M1=("${HEALTHY[@]}" sick busy)
ALL=("${M1[@]}" other)
BUSY_FLAG="$TEST_TMP/busy.flag"

# Nodes whose slot holds FILE's bytes, out of the nodes named.
count_holding() {
    local file=$1 n count=0
    shift
    for n in "$@"; do
        slot_holding "$n" "$file" >/dev/null && count=$((count + 1))
    done
    echo "$count"
}

start_serve s1
start_gw

# --- release 1.0.1 for both models reaches every node ---------------------------
head -c "$IMAGE_BYTES" /dev/urandom >"$TEST_TMP/r1.bin"
head -c "$IMAGE_BYTES" /dev/urandom >"$TEST_TMP/r2.bin"
release "$TEST_TMP/r1.bin" 1.0.1 1 --hw-model m1 --hw-model m2 >/dev/null ||
    die "publishing 1.0.1 failed"
wait_until 60 cached gw1 "$(sha_of "$TEST_TMP/r1.bin")" || die "the gateway never cached 1.0.1"

t0=$SECONDS
for n in "${HEALTHY[@]}"; do
    start_node "$n" m1 --hw-revision r1
done
# shellcheck disable=SC2016 # expanded by the node's shell, not this one
start_node sick m1 --hw-revision r1 --health-cmd 'test "$FERRY_VERSION" != 1.0.2'
start_node busy m1 --hw-revision r1 --busy-cmd "test -e '$BUSY_FLAG'"
start_node other m2 --hw-revision r2
if wait_fleet 180 success 1.0.1 "${ALL[@]}"; then
    pass "all ${#ALL[@]} nodes report success with 1.0.1 ($((SECONDS - t0)) s)"
else
    fail "not every node reports success with 1.0.1: $FLEET_OFF"
fi
check "every node's slot B holds 1.0.1" \
    test "$(count_holding "$TEST_TMP/r1.bin" "${ALL[@]}")" -eq "${#ALL[@]}"
other_before=$(state_hash other)

# --- release 1.0.2 for m1 only ------------------------------------------------------
touch "$BUSY_FLAG"
t0=$SECONDS
release "$TEST_TMP/r2.bin" 1.0.2 2 --hw-model m1 >/dev/null ||
    die "publishing 1.0.2 failed"
if wait_fleet 240 success 1.0.2 "${HEALTHY[@]}"; then
    pass "all ${#HEALTHY[@]} healthy nodes report success with 1.0.2 ($((SECONDS - t0)) s)"
else
    fail "not every healthy node reports success with 1.0.2: $FLEET_OFF"
fi
check "every healthy node's slot A holds 1.0.2, byte for byte" \
    test "$(count_holding "$TEST_TMP/r2.bin" "${HEALTHY[@]}")" -eq "${#HEALTHY[@]}"

# --- the unhealthy trial rolls back -----------------------------------------------
if wait_fleet 60 rolled-back 1.0.2 sick; then
    pass "the node whose health check fails for 1.0.2 reports rolled-back"
else
    fail "the sick node did not roll back: $FLEET_OFF"
fi
check "the sick node's slot B still holds 1.0.1" test "$(slot_holding sick "$TEST_TMP/r1.bin")" = slot-b.img
stop_node sick
start_node sick m1
if wait_fleet 30 idle 1.0.1 sick; then
    pass "restarted, the sick node runs 1.0.1 again"
else
    fail "the restarted sick node does not report 1.0.1: $FLEET_OFF"
fi
check "it booted slot B" bash -c "grep 'boot: slot' '$NODES_DIR/sick.log' | tail -1 | grep -q 'slot B'"

# --- the busy node defers, then installs once it is free ---------------------------
if wait_fleet 30 deferred 1.0.2 busy; then
    pass "the busy node reports deferred"
else
    fail "the busy node does not report deferred: $FLEET_OFF"
fi
check "the busy node has not installed 1.0.2 while busy" \
    test "$(grep -c 'simulated reboot' "$NODES_DIR/busy.log")" -eq 1
rm -f "$BUSY_FLAG"
if wait_fleet 30 success 1.0.2 busy; then
    pass "once free, the busy node reports success with 1.0.2"
else
    fail "the busy node did not install 1.0.2 once free: $FLEET_OFF"
fi
check "the busy node's slot A holds 1.0.2" test "$(slot_holding busy "$TEST_TMP/r2.bin")" = slot-a.img

# --- the node of model m2 refuses the release made for m1 ---------------------------
if wait_fleet 30 rejected 1.0.2 other; then
    pass "the m2 node reports rejected for 1.0.2"
else
    fail "the m2 node did not reject 1.0.2: $FLEET_OFF"
fi
check "it names the reason incompatible-hw" bash -c "[[ '$(node_row other)' == *incompatible-hw ]]"
check "its slots and boot state are untouched" test "$(state_hash other)" = "$other_before"
check "it never asked for the artifact" \
    test "$(grep -c 'downloading release firmware-1.0.2' "$NODES_DIR/other.log")" -eq 0

# --- not one status record lost ------------------------------------------------------
if records_complete 60 "${ALL[@]}"; then
    pass "every node's records 1..last are all in the inventory ($RECORDS_TOTAL records)"
else
    fail "records missing (node count/max/last): $RECORDS_OFF"
fi

stop_all "${NODE_PID[@]}" "$GW_PID" "$SERVE_PID"
check "every node, the gateway and the cloud stop cleanly on SIGTERM${STOP_BAD:+ (not: $STOP_BAD)}" \
    test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
