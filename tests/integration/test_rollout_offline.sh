#!/usr/bin/env bash
# A gateway whose uplink is cut in the middle of a rollout goes on enforcing
# it alone: it keeps a closed maintenance window closed, halts the rollout on
# its own nodes' failures, and tells the cloud once the uplink is back.
# Real processes: mosquitto (stopped to cut the uplink), ferry-cloud serve,
# one gateway, eight ferry-edge nodes, all in the rollout's one wave.
#
#   o01..o04  tagged site=night: their window (a daily hour six hours from
#             now, UTC) is closed for the whole test;
#   o05..o08  no window; busy until the uplink is cut, then they install and
#             fail their health check.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/rollout_lib.sh"

ID=1
BUSY_FLAG="$TEST_TMP/busy.flag"
NIGHT=(o01 o02 o03 o04)
BAD=(o05 o06 o07 o08)
ALL=("${NIGHT[@]}" "${BAD[@]}")
start_serve s1
serve_subscribed || die "serve did not subscribe"
start_gw

head -c $((32 * 1024)) /dev/urandom >"$TEST_TMP/v1.bin"
head -c $((32 * 1024)) /dev/urandom >"$TEST_TMP/v2.bin"
release "$TEST_TMP/v1.bin" 1.0.1 1 --hw-model m1 >/dev/null || die "publishing 1.0.1 failed"
for n in "${NIGHT[@]}"; do
    start_node "$n" m1 --tag site=night
done
for n in "${BAD[@]}"; do
    # shellcheck disable=SC2016 # expanded by the node's shell
    start_node "$n" m1 --health-cmd 'test "$FERRY_VERSION" != 2.0.0' \
        --busy-cmd "test -e '$BUSY_FLAG'"
done
if wait_fleet 60 success 1.0.1 "${ALL[@]}"; then
    pass "every node runs 1.0.1"
else
    fail "not every node runs 1.0.1: $FLEET_OFF"
fi
described 8 30 || fail "the nodes did not describe themselves"

hour=$((($(date -u +%-H) + 6) % 24))
WINDOW=$(printf 'site=night: daily %02d:00-%02d:00 UTC' "$hour" $(((hour + 1) % 24)))
REL=$(release "$TEST_TMP/v2.bin" 2.0.0 2 --hw-model m1 --stage) || die "staging 2.0.0 failed"
touch "$BUSY_FLAG"
expect_status 0 "rollout create with a window for site=night" "$CLOUD" rollout create \
    --db "$DB" --store "$STORE" --release "$REL" --waves 100 --success 100 --min-final 2 \
    --halt 30 --soak 1h --window "$WINDOW"
check "show prints the window and that it is closed" \
    bash -c "'$CLOUD' rollout show $ID --db '$DB' | grep -q 'window     site=night: daily.*(closed'"

# The windowed nodes download, then wait for the window; the others wait
# while busy.
if wait_fleet 60 deferred 2.0.0 "${ALL[@]}"; then
    pass "every node downloaded 2.0.0 and defers"
else
    fail "not every node defers 2.0.0: $FLEET_OFF"
fi
for n in "${NIGHT[@]}"; do
    check "$n defers because the gateway holds it (its window is closed)" \
        grep -q 'deferred release firmware-2.0.0-2.*the gateway holds the install' \
        "$NODES_DIR/$n.log"
done

# --- the uplink goes ------------------------------------------------------------------
from=$(log_lines "$TEST_TMP/gw1.log")
stop_mosquitto
wait_log 20 "$TEST_TMP/gw1.log" "$from" "uplink: connection lost" ||
    fail "the gateway did not notice its uplink going"
rm -f "$BUSY_FLAG"
if wait_log 30 "$TEST_TMP/gw1.log" "$from" \
    "rollout 1 is halted on this gateway (decided while the uplink was down)"; then
    pass "alone, the gateway halts the rollout on its own nodes' failures"
else
    fail "the gateway did not halt the rollout by itself"
fi
sleep 3
for n in "${NIGHT[@]}"; do
    check "$n, whose window stayed closed, installed nothing" \
        bash -c "! grep -q 'installing release firmware-2.0.0' '$NODES_DIR/$n.log'"
done
rolled=0
for n in "${BAD[@]}"; do
    grep -q 'rolled-back release firmware-2.0.0' "$NODES_DIR/$n.log" && rolled=$((rolled + 1))
done
check "the failing nodes rolled back by themselves ($rolled of ${#BAD[@]})" test "$rolled" -ge 2

# --- the uplink comes back --------------------------------------------------------------
restart_mosquitto
if wait_rollout 40 "$ID" 'r["state"] == "halted"'; then
    pass "back online, the gateway's halt reaches the cloud"
else
    fail "the cloud did not learn of the gateway's halt: $(rollout_get "$ID" 'r["state"]')"
fi
check "the decision log says who halted it and that it was offline" \
    bash -c "'$CLOUD' rollout show $ID --db '$DB' | grep -q 'gateway:gw1 .*halted .*while its uplink was down'"
expect_status 3 "status --rollout --wait exits 3" \
    "$CLOUD" status --db "$DB" --rollout "$ID" --wait --timeout 30
if records_complete 60 "${ALL[@]}"; then
    pass "every record made offline reached the inventory ($RECORDS_TOTAL records)"
else
    fail "records missing (node count/max/last): $RECORDS_OFF"
fi
if wait_fleet 10 deferred 2.0.0 "${NIGHT[@]}"; then
    pass "the windowed nodes still wait, held by the halt now"
else
    fail "a windowed node moved on: $FLEET_OFF"
fi

stop_all "${NODE_PID[@]}" "$GW_PID" "$SERVE_PID"
check "every process stops cleanly${STOP_BAD:+ (not: $STOP_BAD)}" test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
