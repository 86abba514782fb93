#!/usr/bin/env bash
# Edge to cloud: nodes whose gateway runs next to the broker in the cloud,
# reached through a NAT that renews its mapping mid-download (the node's
# datagrams reach the gateway from a new source port every few dozen of
# them: ferry-udp-proxy --rebind-every). Over plain CoAP (e1) the node names
# itself (n=) in every request, so a new port is the same node and the
# download goes on. Over DTLS (e2) a new port is a peer without a session
# (libcoap 4.3.1 has no DTLS Connection ID): the gateway drops its records,
# ferry-edge hears nothing for EDGE_COAP_SILENCE_ACKS ACK_TIMEOUTs, gives the
# session up and handshakes again with the same identity, and the download
# carries on from where it stood (README, "Edge to cloud"). Both nodes
# download at once. Real processes: mosquitto, ferry-cloud serve, two
# ferry-gateways (plain and DTLS), two ferry-udp-proxy, two ferry-edge.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"

PROXY=$(ferry_bin ferry-udp-proxy) || exit 1

start_serve s1
start_gw_as gwc "$COAP_PORT"
GW_PID_CLOUD=$GW_PID
DTLS_PORT=$(free_port udp)
key_hex=$(printf %s "e2-secret-key-16" | od -An -tx1 | tr -d ' \n')
printf '# dev key for the test\ne2 %s\n' "$key_hex" >"$TEST_TMP/psk.txt"
printf '%s\n' "$key_hex" >"$TEST_TMP/e2.psk"
start_gw_as gwd "$DTLS_PORT" --psk-file "$TEST_TMP/psk.txt"
GW_PID_DTLS=$GW_PID

# start_nat NAME TARGET_PORT REBIND_EVERY [flags...]: a rebinding proxy; sets NAT_PORT
# and NAT_PID, counters on $TEST_TMP/NAME.out at exit.
start_nat() {
    NAT_PORT=$(free_port udp)
    "$PROXY" --listen "$NAT_PORT" --target "127.0.0.1:$2" --rebind-every "$3" "${@:4}" \
        --log-level info >"$TEST_TMP/$1.out" 2>"$TEST_TMP/$1.log" &
    NAT_PID=$!
    kill_at_exit "$NAT_PID"
    wait_until 10 bash -c "ss -Hlun 'sport = :$NAT_PORT' | grep -q ." ||
        die "ferry-udp-proxy did not bind port $NAT_PORT"
}
start_nat proxy "$COAP_PORT" 40
NODE_GATEWAY["e1"]="coap://127.0.0.1:$NAT_PORT"
PROXY_PID=$NAT_PID
# One rebind over DTLS, mid-download: each costs the node a silence (6 s
# at an ACK_TIMEOUT of 1 s) before it handshakes again.
start_nat proxy-dtls "$DTLS_PORT" 100 --max-rebinds 1
NODE_GATEWAY["e2"]="coaps://127.0.0.1:$NAT_PORT"
PROXY_DTLS_PID=$NAT_PID

# not_restarted_download LOG: the byte counts of the node's status lines
# never fall while it downloads (a restart from block 0 would show).
not_restarted_download() {
    sed -n 's/.*status [0-9]*: downloading.* bytes \([0-9]*\)\/.*/\1/p' "$1" |
        awk 'NR > 1 && $1 < last { bad = 1 } { last = $1 } END { exit bad || NR == 0 }'
}

head -c $((160 * 1024)) /dev/urandom >"$TEST_TMP/r1.bin"
release "$TEST_TMP/r1.bin" 1.0.1 1 --hw-model m1 >/dev/null || die "publishing 1.0.1 failed"
start_node e1 m1
start_node e2 m1 --psk-file "$TEST_TMP/e2.psk" --ack-timeout-ms 1000
if wait_fleet 90 success 1.0.1 e1 e2; then
    pass "e1 (CoAP) and e2 (DTLS) installed 1.0.1 through NATs that changed their source ports"
else
    fail "e1 and e2 did not both reach 1.0.1: $FLEET_OFF"
fi
stop_all "$PROXY_PID" "$PROXY_DTLS_PID"
for nat in proxy proxy-dtls; do
    rebinds=$(sed -n 's/^rebinds: //p' "$TEST_TMP/$nat.out")
    check "$nat gave its node a new source port during the download (${rebinds:-0} times)" \
        test "${rebinds:-0}" -ge 1
done
handshakes=$(grep -c "new DTLS handshake" "$NODES_DIR/e2.log")
check "e2 handshook again after the silence (${handshakes} times)" test "$handshakes" -ge 1
check "the gateway closed e2's old session when the new one registered" \
    grep -q "e2 registered elsewhere, its older session is closed" "$TEST_TMP/gwd.log"
check "e2 resumed its download instead of starting over" \
    not_restarted_download "$NODES_DIR/e2.log"
if records_complete 30 e1 e2; then
    pass "every record of e1 and e2 is in the inventory ($RECORDS_TOTAL)"
else
    fail "records missing (node count/max/last): $RECORDS_OFF"
fi
check "a slot of e1 holds the artifact, byte for byte" slot_holding e1 "$TEST_TMP/r1.bin"
check "a slot of e2 holds the artifact, byte for byte" slot_holding e2 "$TEST_TMP/r1.bin"

stop_all "${NODE_PID[@]}" "$GW_PID_CLOUD" "$GW_PID_DTLS" "$SERVE_PID"
check "the nodes, the gateways and the cloud stop cleanly${STOP_BAD:+ (not: $STOP_BAD)}" \
    test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
