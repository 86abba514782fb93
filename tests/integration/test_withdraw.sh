#!/usr/bin/env bash
# Withdrawing a release mid-rollout, with real processes: mosquitto,
# ferry-cloud serve, one ferry-gateway and four ferry-edge nodes that trust a
# root document with a timestamp role.
#
#   early    installs 1.0.2 before the withdrawal and keeps it;
#   busy1/2  download 1.0.2 but wait at the gate (busy) when it is withdrawn:
#            they drop it (failed, withdrawn) and never install it;
#   late     is down during 1.0.2; started after the withdrawal, it is never
#            offered 1.0.2.
# Then 1.0.3 rolls forward to everyone, and 1.0.4 goes out in a staged
# rollout (waves 50,100) under the same timestamp role: once
# `ferry-cloud timestamp` names both the line's release and the one the
# rollout offers, the first wave's node installs 1.0.4 while the others keep
# 1.0.3; the next wave installs it; the completed rollout's release is
# recorded as the line's current one and the next timestamp names it alone.
# Last, 1.0.5 is withdrawn while staged, then rolled out (waves 50,100): the
# gateway neither fetches it nor offers it to a node of either wave.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/trust_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/rollout_lib.sh"

IMAGE_BYTES=$((32 * 1024))
BUSY_FLAG="$TEST_TMP/busy.flag"
ALL=(early busy1 busy2 late)
PUB=$ROOT1 # gateways and nodes start from root version 1

for v in 1 2 3 4 5; do
    head -c "$IMAGE_BYTES" /dev/urandom >"$TEST_TMP/r$v.bin"
done

start_serve s1
start_gw_as gw1 "$COAP_PORT"
wait_until 30 grep -q "coap: serving on" "$TEST_TMP/gw1.log" || die "the gateway did not start"

# --- 1.0.1 with its timestamp reaches everyone ------------------------------------
release "$TEST_TMP/r1.bin" 1.0.1 1 --hw-model m1 --timestamp-key "$T1_KEY" >/dev/null ||
    die "publishing 1.0.1 failed"
start_node early m1
# shellcheck disable=SC2016 # the node's shell expands it
start_node busy1 m1 --busy-cmd "test -e '$BUSY_FLAG'"
start_node busy2 m1 --busy-cmd "test -e '$BUSY_FLAG'"
start_node late m1
if wait_fleet 60 success 1.0.1 "${ALL[@]}"; then
    pass "every node installs 1.0.1, named current by its timestamp"
else
    fail "not every node reports success with 1.0.1: $FLEET_OFF"
fi

# --- 1.0.2: one node installs it, two wait at the gate, one is down ----------------
stop_node late
touch "$BUSY_FLAG"
REL2=$(release "$TEST_TMP/r2.bin" 1.0.2 2 --hw-model m1 --timestamp-key "$T1_KEY") ||
    die "publishing 1.0.2 failed"
if wait_fleet 60 success 1.0.2 early && wait_fleet 60 deferred 1.0.2 busy1 busy2; then
    pass "mid-rollout: early installed 1.0.2, busy1 and busy2 downloaded it and wait"
else
    fail "the rollout of 1.0.2 did not reach its midpoint: $FLEET_OFF"
fi

# --- the withdrawal ---------------------------------------------------------------------
expect_status 0 "ferry-cloud withdraw $REL2" "$CLOUD" withdraw --broker "$BROKER" --fleet "$FLEET" \
    --store "$STORE" --key "$T1_KEY" --release "$REL2" --trust "$ROOT1"
expect_output stdout "withdrawn $REL2" "... and its timestamp lists it as withdrawn"
expect_output stdout "current (none)" "... and names nothing current"
if wait_fleet 30 failed:withdrawn 1.0.2 busy1 busy2; then
    pass "the nodes that had not started installing 1.0.2 drop it (failed, withdrawn)"
else
    fail "the waiting nodes did not drop 1.0.2: $FLEET_OFF"
fi
rm -f "$BUSY_FLAG"
start_node late m1
if wait_fleet 30 idle 1.0.1 late; then
    pass "the node that was down comes back on 1.0.1"
else
    fail "the late node does not report idle 1.0.1: $FLEET_OFF"
fi
sleep 5 # a few polls, with the busy flag gone
check "busy1, busy2 and late never installed 1.0.2 (one reboot each: 1.0.1's)" \
    test "$(cat "$NODES_DIR"/{busy1,busy2,late}.log | grep -c 'simulated reboot')" -eq 3
check "late was never offered 1.0.2" \
    test "$(grep -c "release $REL2" "$NODES_DIR/late.log")" -eq 0
check "early keeps running 1.0.2 (an install that happened is not undone)" \
    test "$(slot_holding early "$TEST_TMP/r2.bin")" = slot-a.img
run coap-client-notls -B 5 -m get "coap://127.0.0.1:$COAP_PORT/ferry/manifest/firmware"
check "the gateway offers nothing of the product now (an empty 2.05)" \
    test "$RUN_RC" -eq 0 -a ! -s "$RUN_STDOUT"
run coap-client-notls -B 5 -m get "coap://127.0.0.1:$COAP_PORT/ferry/meta/firmware?r=1"
expect_output stdout '"timestamp":{"format":1,"signed":' \
    "a stock CoAP client gets the trust metadata bundle from ferry/meta/firmware"

# --- rolling forward ----------------------------------------------------------------------
REL3=$(release "$TEST_TMP/r3.bin" 1.0.3 3 --hw-model m1 --timestamp-key "$T1_KEY") ||
    die "publishing 1.0.3 failed"
if wait_fleet 60 success 1.0.3 "${ALL[@]}"; then
    pass "1.0.3 rolls forward to every node"
else
    fail "not every node reports success with 1.0.3: $FLEET_OFF"
fi

# --- a staged rollout under the timestamp role -------------------------------------
# What the timer runs; prints the timestamp it published.
timestamp() {
    "$CLOUD" timestamp --broker "$BROKER" --fleet "$FLEET" --store "$STORE" --key "$T1_KEY" \
        --trust "$ROOT1" "$@"
}
ID=1 # the first rollout of this inventory
WAVES=50,100
FIRST=() REST=()
for n in "${ALL[@]}"; do
    if [ "$(wave_of "$ID" "$n" "$WAVES")" = 0 ]; then FIRST+=("$n"); else REST+=("$n"); fi
done
((${#FIRST[@]} > 0 && ${#REST[@]} > 0)) || die "these node names leave a wave empty"
described 4 30 || die "only $(described_count) of 4 node descriptions reached the inventory"
REL4=$(release "$TEST_TMP/r4.bin" 1.0.4 4 --hw-model m1 --stage) || die "staging 1.0.4 failed"
from=$(log_lines "$SERVE_LOG")
t0=$SECONDS
expect_status 0 "rollout create" "$CLOUD" rollout create --db "$DB" --store "$STORE" \
    --release "$REL4" --waves "$WAVES" --success 100 --min-final 1 --soak 1h --halt 50
if wait_log 30 "$SERVE_LOG" "$from" "product firmware offers $REL4"; then
    pass "serve records that the rollout offers $REL4"
else
    fail "serve did not record what the rollout offers"
fi
expect_status 0 "ferry-cloud timestamp --if-changed during the rollout" timestamp --if-changed
expect_output stdout "current $REL3,$REL4 withdrawn" \
    "... names the line's release and the rollout's current"
if wait_fleet 60 success 1.0.4 "${FIRST[@]}"; then
    pass "the first wave (${FIRST[*]}) installs 1.0.4 under the timestamp role"
else
    fail "the first wave did not install 1.0.4: $FLEET_OFF"
fi
check "the other nodes keep 1.0.3 and fetched nothing of 1.0.4" \
    test "$(fetchers gw1 | xargs)" = "${FIRST[*]}" -a "$(fleet_is success 1.0.3 "${REST[@]}")" = ""
expect_status 0 "rollout next" "$CLOUD" rollout next "$ID" --db "$DB"
if wait_fleet 60 success 1.0.4 "${REST[@]}"; then
    pass "the second wave (${REST[*]}) installs 1.0.4"
else
    fail "the second wave did not install 1.0.4: $FLEET_OFF"
fi
if wait_log 30 "$SERVE_LOG" "$from" "rollout $ID: completed, product firmware offers $REL4"; then
    pass "the rollout completes and serve records its release"
else
    fail "the rollout did not complete: $(rollout_get "$ID" 'r["state"]')"
fi
expect_status 0 "ferry-cloud timestamp after the rollout" timestamp
expect_output stdout "current $REL4 withdrawn" "... names the promoted release alone"
expect_status 0 "the timer's run with nothing new (--if-changed)" timestamp --if-changed
expect_output stdout "unchanged" "... leaves the fresh timestamp in place"
check "the store records the promoted release as the line's current one" \
    cmp -s "$STORE/releases/firmware.env" "$STORE/releases/$REL4.env"
if wait_fleet 10 success 1.0.4 "${ALL[@]}"; then
    pass "every node runs 1.0.4 ($((SECONDS - t0)) s for the rollout)"
else
    fail "not every node runs 1.0.4: $FLEET_OFF"
fi

# --- a staged rollout of a release withdrawn before its next wave opens ------------
# The gateway has the withdrawal before the rollout's document: it neither
# fetches nor offers the release, in the open wave or the next one.
ID2=2 # the second rollout
FIRST2=() REST2=()
for n in "${ALL[@]}"; do
    if [ "$(wave_of "$ID2" "$n" "$WAVES")" = 0 ]; then FIRST2+=("$n"); else REST2+=("$n"); fi
done
((${#FIRST2[@]} > 0 && ${#REST2[@]} > 0)) || die "these node names leave a wave of rollout 2 empty"
REL5=$(release "$TEST_TMP/r5.bin" 1.0.5 5 --hw-model m1 --stage) || die "staging 1.0.5 failed"
GW_LOG="$TEST_TMP/gw1.log"
gw_from=$(log_lines "$GW_LOG")
expect_status 0 "ferry-cloud withdraw $REL5 (staged)" "$CLOUD" withdraw --broker "$BROKER" \
    --fleet "$FLEET" --store "$STORE" --key "$T1_KEY" --release "$REL5" --trust "$ROOT1"
wait_log 30 "$GW_LOG" "$gw_from" "timestamp: product firmware at version .*, 2 withdrawn" ||
    die "the gateway did not take the timestamp withdrawing $REL5"
expect_status 0 "rollout create of the withdrawn release" "$CLOUD" rollout create --db "$DB" \
    --store "$STORE" --release "$REL5" --waves "$WAVES" --success 100 --min-final 1 --soak 1h \
    --halt 50
if wait_log 30 "$GW_LOG" "$gw_from" \
    "rollouts: rollout $ID2's release $REL5 is withdrawn: neither fetched nor offered"; then
    pass "the gateway logs that it neither fetches nor offers the withdrawn rollout release"
else
    fail "the gateway did not log that it leaves the withdrawn rollout release alone"
fi
expect_status 0 "rollout next $ID2" "$CLOUD" rollout next "$ID2" --db "$DB"
wait_log 30 "$GW_LOG" "$gw_from" "rollouts: rollout $ID2 revision .*: running, 2 of 2 waves open" ||
    die "the gateway did not open rollout $ID2's second wave"
# What a target of either wave is offered now, asked as that node.
offered_other=()
for n in "${ALL[@]}"; do
    coap-client-notls -B 5 -m get "coap://127.0.0.1:$COAP_PORT/ferry/manifest/firmware?n=$n" \
        >"$TEST_TMP/offer-$n" 2>/dev/null
    cmp -s <(tr -d '\n' <"$TEST_TMP/offer-$n") <(tr -d '\n' <"$STORE/releases/$REL4.env") ||
        offered_other+=("$n")
done
check "every target (waves: ${FIRST2[*]} | ${REST2[*]}) is offered 1.0.4, not the withdrawn release${offered_other:+ (not: ${offered_other[*]})}" \
    test "${#offered_other[@]}" -eq 0
# Since the withdrawal; and since rollout 2's first document (before it,
# the completed rollout 1 offered its release).
since_withdrawal() { tail -n +$((gw_from + 1)) "$GW_LOG"; }
ro2_from=$(since_withdrawal | grep -n -m1 "rollouts: rollout $ID2 revision" | cut -d: -f1)
since_rollout2() { since_withdrawal | tail -n +"$ro2_from"; }
check "no node was offered the withdrawn rollout release" \
    test "$(since_rollout2 | grep -c "offered the rollout's release")" -eq 0
check "no node fetched a block of it" \
    test "$(since_rollout2 | grep -c "fetches the rollout's release")" -eq 0
check "the gateway never fetched it" \
    test "$(since_withdrawal | grep -c "fetch: [0-9a-f]* for release $REL5")" -eq 0
check "no node saw it, so none refused it" \
    test "$(cat "$NODES_DIR"/{early,busy1,busy2,late}.log | grep -c "$REL5")" -eq 0

stop_all "${NODE_PID[@]}" "$GW_PID" "$SERVE_PID"
check "every node, the gateway and the cloud stop cleanly${STOP_BAD:+ (not: $STOP_BAD)}" \
    test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
