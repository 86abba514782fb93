#!/usr/bin/env bash
# A release that fails its health check on more than the halt share stops
# the rollout in its first wave, and the nodes that installed it go back to
# the old image through the revert release signed in advance (the old image
# with a higher seq). Real processes: mosquitto, ferry-cloud serve, one
# gateway, ten ferry-edge nodes.
#
#   1.0.1 (seq 1)  published to every node at once: the baseline
#   2.0.0 (seq 2)  the bad release, rolled out in waves 50,100
#   1.0.3 (seq 3)  the revert release: 1.0.1's image signed again
#
# In the first wave h03 and h04 install 2.0.0 and pass their health check;
# h05..h10 wait (busy) until they have, then install and fail theirs.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/rollout_lib.sh"

ID=1
WAVES=50,100
BUSY_FLAG="$TEST_TMP/busy.flag"
start_serve s1
serve_subscribed || die "serve did not subscribe"
start_gw

ALL=() W0=() W1=() GOOD=(h03 h04) BAD=()
for i in $(seq -w 1 10); do
    n="h$i"
    ALL+=("$n")
    if [ "$(wave_of "$ID" "$n" "$WAVES")" = 0 ]; then W0+=("$n"); else W1+=("$n"); fi
done
for n in "${W0[@]}"; do
    [[ " ${GOOD[*]} " == *" $n "* ]] || BAD+=("$n")
done
[ "${W0[*]}" = "h03 h04 h05 h06 h07 h09 h10" ] || die "unexpected first wave: ${W0[*]}"

head -c $((64 * 1024)) /dev/urandom >"$TEST_TMP/v1.bin"
head -c $((64 * 1024)) /dev/urandom >"$TEST_TMP/v2.bin"
release "$TEST_TMP/v1.bin" 1.0.1 1 --hw-model m1 >/dev/null || die "publishing 1.0.1 failed"
for n in "${ALL[@]}"; do
    if [[ " ${BAD[*]} " == *" $n "* ]]; then
        # shellcheck disable=SC2016 # expanded by the node's shell
        start_node "$n" m1 --health-cmd 'test "$FERRY_VERSION" != 2.0.0' \
            --busy-cmd "test -e '$BUSY_FLAG'"
    else
        start_node "$n" m1
    fi
done
if wait_fleet 60 success 1.0.1 "${ALL[@]}"; then
    pass "every node runs 1.0.1"
else
    fail "not every node runs 1.0.1: $FLEET_OFF"
fi

REL=$(release "$TEST_TMP/v2.bin" 2.0.0 2 --hw-model m1 --stage) || die "staging 2.0.0 failed"
"$CLOUD" sign --key "$KEY" --artifact "$TEST_TMP/v1.bin" --version 1.0.3 --seq 3 \
    --hw-model m1 --out "$TEST_TMP/revert.json" >/dev/null || die "signing the revert failed"
"$CLOUD" sign --key "$KEY" --artifact "$TEST_TMP/v1.bin" --version 1.0.2 --seq 2 \
    --hw-model m1 --out "$TEST_TMP/low.json" >/dev/null || die "signing failed"
expect_status 1 "a revert release must have a higher seq than the release" \
    "$CLOUD" rollout create --db "$DB" --store "$STORE" --release "$REL" --waves "$WAVES" \
    --revert-manifest "$TEST_TMP/low.json"
expect_output stderr "must be above the release's 2" "the error says why"
touch "$BUSY_FLAG"
expect_status 0 "rollout create with a revert release" "$CLOUD" rollout create --db "$DB" \
    --store "$STORE" --release "$REL" --waves "$WAVES" --success 100 --min-final 3 --halt 30 \
    --soak 1h --revert-manifest "$TEST_TMP/revert.json"

if wait_fleet 60 success 2.0.0 "${GOOD[@]}"; then
    pass "h03 and h04 install 2.0.0 and pass their health check"
else
    fail "the healthy nodes of wave 1 did not install 2.0.0: $FLEET_OFF"
fi
rm -f "$BUSY_FLAG"
expect_status 3 "status --rollout --wait exits 3: the rollout halted" \
    "$CLOUD" status --db "$DB" --rollout "$ID" --wait --timeout 60 --interval 500ms
expect_output stderr "rollout 1 halted" "its verdict names the halt"
check "it halted in its first wave" test "$(rollout_get "$ID" 'r["open_waves"]')" = 1
check "the halt is logged with the counts" \
    bash -c "'$CLOUD' rollout show $ID --db '$DB' | grep -Eq ' halted .*[0-9]+ of [0-9]+ final states'"

# --- revert ----------------------------------------------------------------------------
if wait_fleet 60 success 1.0.3 "${GOOD[@]}"; then
    pass "the nodes that installed 2.0.0 take the revert release"
else
    fail "the revert release did not reach h03 and h04: $FLEET_OFF"
fi
for n in "${GOOD[@]}"; do
    check "$n runs the old image again, byte for byte" slot_holding "$n" "$TEST_TMP/v1.bin"
done
bad_state=$(for n in "${BAD[@]}"; do node_row "$n"; done | awk '{print $1"/"$2}' | sort -u | xargs)
check "the failing nodes never stay on 2.0.0 ($bad_state)" \
    bash -c "! grep -q 'success/2.0.0' <<<'$bad_state'"
got=$(fetchers gw1 | xargs)
check "the second wave never fetched a block ($got)" \
    bash -c "for n in ${W1[*]}; do grep -qw \"\$n\" <<<'$got' && exit 1; done; exit 0"
if wait_fleet 10 success 1.0.1 "${W1[@]}"; then
    pass "the second wave still runs 1.0.1"
else
    fail "the second wave changed: $FLEET_OFF"
fi
expect_status 1 "a halted rollout is not resumed but retried" \
    "$CLOUD" rollout resume "$ID" --db "$DB"
expect_output stderr "retry" "the error says what to do"
expect_status 0 "cancel" "$CLOUD" rollout cancel "$ID" --db "$DB" --reason "bad build"
expect_status 3 "status --rollout --wait exits 3 for a cancelled rollout" \
    "$CLOUD" status --db "$DB" --rollout "$ID" --wait --timeout 10

stop_all "${NODE_PID[@]}" "$GW_PID" "$SERVE_PID"
check "every process stops cleanly${STOP_BAD:+ (not: $STOP_BAD)}" test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
