#!/usr/bin/env bash
# A progressive rollout with real processes: mosquitto, ferry-cloud serve,
# three gateways with ten ferry-edge nodes each, waves 10,50,100 behind a
# success gate. Nodes outside the open wave never fetch a block (the
# gateways' logs name every node that does); pause holds the next wave and
# resume lets it open; serve killed with -9 and restarted goes on where the
# inventory says; nodes that appear after the start fall into their waves;
# status --rollout --wait exits 0 once every target succeeded, and the
# release then becomes the product's release for everyone.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/rollout_lib.sh"

WAVES=10,50,100
ID=1 # the first rollout of a fresh inventory
start_serve s1
serve_subscribed || die "serve did not subscribe"

declare -A PORT=()
GW_PIDS=()
for g in 1 2 3; do
    PORT[$g]=$(free_port udp)
    start_gw_as "gw$g" "${PORT[$g]}"
    GW_PIDS+=("$GW_PID")
done
ALL=()
declare -a W0=() W1=() W2=()
for g in 1 2 3; do
    for i in $(seq -w 1 10); do
        n="g${g}n$i"
        NODE_GATEWAY[$n]="coap://127.0.0.1:${PORT[$g]}"
        start_node "$n" m1
        ALL+=("$n")
        case $(wave_of "$ID" "$n" "$WAVES") in
        0) W0+=("$n") ;;
        1) W1+=("$n") ;;
        *) W2+=("$n") ;;
        esac
    done
done
echo "waves: ${#W0[@]} ${#W1[@]} ${#W2[@]}; wave 1: ${W0[*]}"
((${#W0[@]} > 0 && ${#W1[@]} > 0)) || die "these node names leave a wave empty"

if described 30 60; then
    pass "all 30 nodes described themselves through their gateways"
else
    fail "only $(described_count) of 30 node descriptions reached the inventory"
fi

head -c $((64 * 1024)) /dev/urandom >"$TEST_TMP/v2.bin"
REL=$(release "$TEST_TMP/v2.bin" 2.0.0 2 --hw-model m1 --stage) || die "staging 2.0.0 failed"
check "a staged release is offered to no node" \
    bash -c "! grep -q 'release: accepted' '$TEST_TMP'/gw*.log"
expect_status 0 "rollout create" "$CLOUD" rollout create --db "$DB" --store "$STORE" \
    --release "$REL" --waves "$WAVES" --success 100 --min-final 2 --soak 6s --halt 50 \
    --reason "test rollout"
expect_output stdout "rollout 1: release $REL" "create prints the rollout"

# --- wave 1 only ------------------------------------------------------------------
t0=$SECONDS
if wait_fleet 60 success 2.0.0 "${W0[@]}"; then
    pass "wave 1 (${#W0[@]} nodes) installs 2.0.0 ($((SECONDS - t0)) s)"
else
    fail "wave 1 did not install 2.0.0: $FLEET_OFF"
fi
# Inside the soak: pause before wave 2 may open.
expect_status 0 "rollout pause" "$CLOUD" rollout pause "$ID" --db "$DB" --reason "look first"
check "wave 2 had not opened when paused" \
    test "$(rollout_get "$ID" 'r["open_waves"]')" = 1
got=$(for g in 1 2 3; do fetchers "gw$g"; done | sort -u | xargs)
want=$(printf '%s\n' "${W0[@]}" | sort -u | xargs)
check "only wave 1's nodes fetched a block ($got)" test "$got" = "$want"
check "gw1, with no node in wave 1, served no block" test -z "$(fetchers gw1)"
if wait_until 10 bash -c "grep -q 'paused, 1 of 3 waves open' '$TEST_TMP/gw2.log' &&
                         grep -q 'paused, 1 of 3 waves open' '$TEST_TMP/gw3.log'"; then
    pass "the gateways hear of the pause within seconds"
else
    fail "a gateway did not hear of the pause"
fi
sleep 8 # longer than the soak
check "paused, wave 2 stays closed past the soak" \
    test "$(rollout_get "$ID" 'r["open_waves"]')" = 1
got=$(for g in 1 2 3; do fetchers "gw$g"; done | sort -u | xargs)
check "and no other node fetched" test "$got" = "$want"

# --- resume; serve killed mid-rollout; late nodes --------------------------------------
expect_status 0 "rollout resume" "$CLOUD" rollout resume "$ID" --db "$DB"
if wait_rollout 20 "$ID" 'r["open_waves"] == 2'; then
    pass "resumed, wave 2 opens"
else
    fail "wave 2 did not open after resume: $(rollout_get "$ID" 'r["waiting"]')"
fi
kill -KILL "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null
start_serve s1
serve_subscribed || die "serve did not come back"
# Two nodes that appear now: late3 falls into wave 2, late1 into wave 3.
for n in late1 late3; do
    NODE_GATEWAY[$n]="coap://127.0.0.1:${PORT[1]}"
    start_node "$n" m1
    ALL+=("$n")
done
check "late1 falls into wave 3, late3 into wave 2" \
    test "$(wave_of "$ID" late1 "$WAVES")$(wave_of "$ID" late3 "$WAVES")" = 21
if wait_fleet 90 success 2.0.0 "${W1[@]}" late3; then
    pass "wave 2, and the late node in it, install 2.0.0"
else
    fail "wave 2 did not install: $FLEET_OFF"
fi

# --- to the end ---------------------------------------------------------------------------
expect_status 0 "status --rollout --wait: every target succeeded" \
    "$CLOUD" status --db "$DB" --rollout "$ID" --wait --timeout 120 --interval 500ms
expect_output stderr "rollout 1 completed: 32 of 32 targets succeeded" "its verdict says so"
if wait_fleet 5 success 2.0.0 "${ALL[@]}"; then
    pass "all 32 nodes run 2.0.0"
else
    fail "not every node runs 2.0.0: $FLEET_OFF"
fi
actions=$(rollout_actions "$ID")
check "one decision each, despite the kill: $actions" test "$actions" = \
    "created started paused resumed wave-opened wave-opened completed"
check "the log names who paused it and why" \
    bash -c "'$CLOUD' rollout show $ID --db '$DB' | grep -q 'paused.*look first'"
if wait_until 20 bash -c "grep -q 'release: accepted $REL' '$TEST_TMP/gw1.log'"; then
    pass "completed, the release becomes the product's release"
else
    fail "the completed release was not published to the gateways"
fi
expect_status 0 "rollout list" "$CLOUD" rollout list --db "$DB"
expect_output stdout "completed" "list shows it completed"

stop_all "${NODE_PID[@]}" "${GW_PIDS[@]}" "$SERVE_PID"
check "every process stops cleanly${STOP_BAD:+ (not: $STOP_BAD)}" test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
