#!/usr/bin/env bash
# A two-node broker cluster on loopback: two mosquitto brokers bridged both
# ways (broker_lib.sh says what the bridge guarantees), every client given
# both (--broker A,B or B,A). Serve instance s1 and gateway gwa start on A,
# s2 and gwb on B, so each gateway's work crosses the bridge to the instance
# that owns it (shared groups are each broker's own: the instances split
# gateways by partitions, --partition). Broker A is killed (-9) while the
# gateways stream the release; the clients on it fail over to B, the
# rollout completes, and every record the nodes sent (so every acknowledged
# one) is in the inventory, stored by one instance.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/broker_lib.sh"

t0=$SECONDS
start_bridged_pair
bridge_up 20 || die "the bridge between the two brokers did not pass messages both ways"
URL_A="mqtt://127.0.0.1:$BRIDGE_A_PORT"
URL_B="mqtt://127.0.0.1:$BRIDGE_B_PORT"
BROKER="$URL_A,$URL_B"
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"
pass "two bridged brokers on $BRIDGE_A_PORT and $BRIDGE_B_PORT ($((SECONDS - t0)) s)"

# A gateway gets 2 MiB at once and then 1 MiB/s: the last MiB of the 3 MiB
# release is still streaming when broker A goes.
PART=(--partition --partition-lease-ms 2000 --gateway-rate-mib 1)
BROKER="$URL_A,$URL_B" start_serve s1 --instance s1 "${PART[@]}"
S1_PID=$SERVE_PID
BROKER="$URL_B,$URL_A" start_serve s2 --instance s2 "${PART[@]}"
S2_PID=$SERVE_PID
for s in s1 s2; do
    wait_log 30 "$TEST_TMP/serve-$s.log" 0 'partition: 2 instance' ||
        die "serve $s did not see both instances: $(tail -5 "$TEST_TMP/serve-$s.log")"
done
# Rendezvous hashing over s1 and s2 gives gwa to s2 and gwb to s1.
COAP_A=$(free_port udp)
COAP_B=$(free_port udp)
BROKER="$URL_A,$URL_B" start_gw_as gwa "$COAP_A"
GWA_PID=$GW_PID
BROKER="$URL_B,$URL_A" start_gw_as gwb "$COAP_B"
GWB_PID=$GW_PID
for c in serve-s1:"$URL_A" serve-s2:"$URL_B" gwa:"$URL_A" gwb:"$URL_B"; do
    wait_log 30 "$TEST_TMP/${c%%:*}.log" 0 "up on ${c#*:}" || die "${c%%:*} is not up on ${c#*:}"
done

head -c $((3 * 1024 * 1024)) /dev/urandom >"$TEST_TMP/r1.bin"
release "$TEST_TMP/r1.bin" 1.0.1 1 --hw-model m1 >/dev/null || die "publishing 1.0.1 failed"
NODE_GATEWAY["e1"]="coap://127.0.0.1:$COAP_A"
NODE_GATEWAY["e2"]="coap://127.0.0.1:$COAP_B"
start_node e1 m1
start_node e2 m1
# Mid-rollout: both gateways are taking in the release.
for gw in gwa gwb; do
    wait_log 60 "$TEST_TMP/$gw.log" 0 'fetch: received chunk' || die "$gw never received a chunk"
done
kill -9 "$BRIDGE_A_PID"
wait "$BRIDGE_A_PID" 2>/dev/null
pass "broker A killed while the gateways were streaming ($((SECONDS - t0)) s)"

for c in serve-s1 gwa; do
    if wait_log 30 "$TEST_TMP/$c.log" 0 "up on $URL_B"; then
        pass "$c failed over to broker B"
    else
        fail "$c did not fail over to broker B"
    fi
done
# Chunks gwa took in after it was up again on B: the stream went on there.
chunks_after_failover() {
    sed -n "/up on ${URL_B//\//\\/}/,\$p" "$TEST_TMP/gwa.log" | grep -c 'fetch: received chunk'
}
if wait_fleet 90 success 1.0.1 e1 e2; then
    pass "e1 (gwa) and e2 (gwb) installed 1.0.1 across the failover"
else
    fail "the nodes did not reach 1.0.1: $FLEET_OFF"
fi
# A batch sent while its owner was failing over is sent again (after the
# gateway's ack timeout, 10 s) and acknowledged: nothing waits in the outboxes.
for gw in gwa gwb; do
    if wait_until 40 relay_drained "$gw"; then
        pass "every record $gw took was acknowledged"
    else
        fail "$gw still holds unacknowledged records"
    fi
done
after=$(chunks_after_failover)
check "gwa's stream went on through broker B ($after chunks after the failover)" test "$after" -gt 0
if records_complete 30 e1 e2; then
    pass "every record of e1 and e2 is in the inventory ($RECORDS_TOTAL)"
else
    fail "records missing (node count/max/last): $RECORDS_OFF"
fi
for pair in gwa:s2 gwb:s1; do
    gw=${pair%%:*} owner=${pair#*:}
    other=$([ "$owner" = s1 ] && echo s2 || echo s1)
    check "$owner stored $gw's batches" grep -qE "status batch [^ ]+ from $gw: " \
        "$TEST_TMP/serve-$owner.log"
    check "$other stored none of $gw's batches" \
        bash -c "! grep -qE 'status batch [^ ]+ from $gw: ' '$TEST_TMP/serve-$other.log'"
done

stop_all "${NODE_PID[@]}" "$GWA_PID" "$GWB_PID" "$S1_PID" "$S2_PID"
check "the nodes, gateways and serve instances stop cleanly${STOP_BAD:+ (not: $STOP_BAD)}" \
    test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports
echo "test_broker_cluster: $((SECONDS - t0)) s" >&2
finish
