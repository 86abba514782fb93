#!/usr/bin/env bash
# Edge to cloud: a node whose gateway runs next to the broker in the cloud,
# reached through a NAT that renews its mapping mid-download (the node's
# datagrams reach the gateway from a new source port every few dozen of
# them: ferry-udp-proxy --rebind-every). Over plain CoAP the node names
# itself (n=) in every request, so a new port is the same node and the
# download goes on. Over DTLS a new port is a peer without a session, and
# ferry-edge does not yet start a new handshake (libcoap 4.3.1 has no DTLS
# Connection ID): README, "Edge to cloud". Real processes: mosquitto,
# ferry-cloud serve, ferry-gateway, ferry-udp-proxy, ferry-edge.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"

PROXY=$(ferry_bin ferry-udp-proxy) || exit 1

start_serve s1
start_gw_as gwc "$COAP_PORT"
GW_PID_CLOUD=$GW_PID
PROXY_PORT=$(free_port udp)
"$PROXY" --listen "$PROXY_PORT" --target "127.0.0.1:$COAP_PORT" --rebind-every 40 \
    --log-level info >"$TEST_TMP/proxy.out" 2>"$TEST_TMP/proxy.log" &
PROXY_PID=$!
kill_at_exit "$PROXY_PID"
wait_until 10 bash -c "ss -Hlun 'sport = :$PROXY_PORT' | grep -q ." ||
    die "ferry-udp-proxy did not bind port $PROXY_PORT"

head -c $((160 * 1024)) /dev/urandom >"$TEST_TMP/r1.bin"
release "$TEST_TMP/r1.bin" 1.0.1 1 --hw-model m1 >/dev/null || die "publishing 1.0.1 failed"
NODE_GATEWAY["e1"]="coap://127.0.0.1:$PROXY_PORT"
start_node e1 m1
if wait_fleet 60 success 1.0.1 e1; then
    pass "e1 installed 1.0.1 through a NAT that changed its source port"
else
    fail "e1 did not reach 1.0.1: $FLEET_OFF"
fi
stop_all "$PROXY_PID"
rebinds=$(sed -n 's/^rebinds: //p' "$TEST_TMP/proxy.out")
check "the NAT gave e1 a new source port during the download (${rebinds:-0} times)" \
    test "${rebinds:-0}" -ge 2
if records_complete 30 e1; then
    pass "every record of e1 is in the inventory ($RECORDS_TOTAL)"
else
    fail "records missing (node count/max/last): $RECORDS_OFF"
fi
check "a slot of e1 holds the artifact, byte for byte" slot_holding e1 "$TEST_TMP/r1.bin"

stop_all "${NODE_PID[@]}" "$GW_PID_CLOUD" "$SERVE_PID"
check "e1, the gateway and the cloud stop cleanly${STOP_BAD:+ (not: $STOP_BAD)}" \
    test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
