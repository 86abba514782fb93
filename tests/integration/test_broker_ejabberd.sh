#!/usr/bin/env bash
# The end-to-end rollout on a second MQTT 5 broker: ejabberd 23.01's
# mod_mqtt (Debian's), which needs a user name and password and has no
# shared subscriptions (it closes the link with 0x9E on a $share
# subscribe). Real processes: ejabberd, two ferry-cloud serve instances,
# two ferry-gateways, two ferry-edge nodes, all logging in as a registered
# user with a password file. The two serve instances find the broker without
# shared subscriptions and split the gateways by partitions agreed through
# the inventory (cloud_partition.h): each gateway's batches and stream
# requests are handled by one instance only, and every record reaches the
# inventory. Then one instance is killed: the other takes its gateway over
# once the lease expired, and the next release completes.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/broker_lib.sh"
if ! command -v erl >/dev/null || [ ! -d /usr/lib/x86_64-linux-gnu/ejabberd-23.01-1 ]; then
    die "ejabberd 23.01 is not installed (scripts/deps.sh)"
fi

t0=$SECONDS
start_ejabberd ferry 's3cret-ferry'
BROKER="mqtt://127.0.0.1:$EJ_PORT"
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"
AUTH=(--mqtt-username ferry --mqtt-password-file "$(password_file ferry 's3cret-ferry')")
pass "ejabberd started with mod_mqtt on port $EJ_PORT ($((SECONDS - t0)) s)"

# Two instances, a short lease so the test need not wait long to settle.
start_serve s1 --instance s1 --partition-lease-ms 2000 "${AUTH[@]}"
S1_PID=$SERVE_PID
start_serve s2 --instance s2 --partition-lease-ms 2000 "${AUTH[@]}"
S2_PID=$SERVE_PID
for s in s1 s2; do
    wait_log 30 "$TEST_TMP/serve-$s.log" 0 'partition: 2 instance' ||
        die "serve $s did not fall back to partitions with both instances: $(tail -5 "$TEST_TMP/serve-$s.log")"
done
check "s1 says the broker has no shared subscriptions" \
    grep -q 'no shared subscriptions' "$TEST_TMP/serve-s1.log"

# Gateway ids that the two instances split between them (rendezvous hashing
# over s1 and s2 gives gwa to s2 and gwb to s1).
GWS=(gwa gwb)
COAP_A=$(free_port udp)
COAP_B=$(free_port udp)
start_gw_as gwa "$COAP_A" "${AUTH[@]}"
GWA_PID=$GW_PID
start_gw_as gwb "$COAP_B" "${AUTH[@]}"
GWB_PID=$GW_PID

head -c $((192 * 1024)) /dev/urandom >"$TEST_TMP/r1.bin"
release "$TEST_TMP/r1.bin" 1.0.1 1 --hw-model m1 "${AUTH[@]}" >/dev/null ||
    die "publishing 1.0.1 through ejabberd failed: $(tail -3 "$TEST_TMP/publish.log")"
NODE_GATEWAY["e1"]="coap://127.0.0.1:$COAP_A"
NODE_GATEWAY["e2"]="coap://127.0.0.1:$COAP_B"
start_node e1 m1
start_node e2 m1
if wait_fleet 60 success 1.0.1 e1 e2; then
    pass "e1 (through gwa) and e2 (through gwb) installed 1.0.1 over ejabberd"
else
    fail "the nodes did not reach 1.0.1: $FLEET_OFF"
fi
for gw in "${GWS[@]}"; do
    wait_until 40 relay_drained "$gw" || fail "$gw still holds unacknowledged records"
done
if records_complete 30 e1 e2; then
    pass "every record of e1 and e2 is in the inventory ($RECORDS_TOTAL)"
else
    fail "records missing (node count/max/last): $RECORDS_OFF"
fi

# Nothing processed twice: each gateway's batches and stream requests were
# handled by one instance, and no batch id by both; the other dropped them.
handlers() { # GATEWAY PATTERN-AFTER-GATEWAY: the instances whose log handled it
    local gw=$1 s out=
    for s in s1 s2; do
        grep -qE "$2" "$TEST_TMP/serve-$s.log" && out+="$s "
    done
    echo "$out"
}
split=
for gw in "${GWS[@]}"; do
    h=$(handlers "$gw" "status batch [^ ]+ from $gw: ")
    check "the batches of $gw were handled by one instance (${h:-none})" test "$(wc -w <<<"$h")" -eq 1
    split+="$h"
    hs=$(handlers "$gw" "stream: $gw ")
    check "the stream requests of $gw were served by one instance (${hs:-none})" \
        test "$(wc -w <<<"$hs")" -eq 1
    other=$([ "$h" = "s1 " ] && echo s2 || echo s1)
    check "$other dropped what $gw sent it" \
        grep -q "partition: status batch from $gw dropped" "$TEST_TMP/serve-$other.log"
done
check "the two gateways went to different instances ($split)" test "$split" = "s1 s2 " -o "$split" = "s2 s1 "
both=$(comm -12 <(grep -ho 'status batch [^ ]* from [^:]*:' "$TEST_TMP/serve-s1.log" | sort -u) \
    <(grep -ho 'status batch [^ ]* from [^:]*:' "$TEST_TMP/serve-s2.log" | sort -u))
check "no batch was stored by both instances${both:+ ($both)}" test -z "$both"

# s1 dies (kill -9, its lease stays): once the lease expired and s2 waited
# its settling time, s2 takes gwb over and the next release completes.
kill -9 "$S1_PID"
wait "$S1_PID" 2>/dev/null
S2_FROM=$(log_lines "$TEST_TMP/serve-s2.log")
t1=$SECONDS
if wait_log 30 "$TEST_TMP/serve-s2.log" "$S2_FROM" 'partition: 1 instance'; then
    pass "s2 saw s1's lease expire ($((SECONDS - t1)) s after the kill)"
else
    fail "s2 never saw s1's lease expire"
fi
head -c $((192 * 1024)) /dev/urandom >"$TEST_TMP/r2.bin"
release "$TEST_TMP/r2.bin" 1.0.2 2 --hw-model m1 "${AUTH[@]}" >/dev/null ||
    die "publishing 1.0.2 failed: $(tail -3 "$TEST_TMP/publish.log")"
if wait_fleet 60 success 1.0.2 e1 e2; then
    pass "e1 and e2 installed 1.0.2 with s2 alone"
else
    fail "the nodes did not reach 1.0.2 after s1 died: $FLEET_OFF"
fi
for gw in "${GWS[@]}"; do
    wait_until 40 relay_drained "$gw" || fail "$gw still holds unacknowledged records"
done
check "s2 stored gwb's batches after the takeover" \
    bash -c "tail -n +$((S2_FROM + 1)) '$TEST_TMP/serve-s2.log' | grep -qE 'status batch [^ ]+ from gwb: '"
if records_complete 30 e1 e2; then
    pass "every record of e1 and e2 is in the inventory after the takeover ($RECORDS_TOTAL)"
else
    fail "records missing after the takeover (node count/max/last): $RECORDS_OFF"
fi

stop_all "${NODE_PID[@]}" "$GWA_PID" "$GWB_PID" "$S2_PID"
check "the nodes, gateways and serve instances stop cleanly${STOP_BAD:+ (not: $STOP_BAD)}" \
    test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports
echo "test_broker_ejabberd: $((SECONDS - t0)) s" >&2
finish
