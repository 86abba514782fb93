#!/usr/bin/env bash
# An edge node end to end with real processes: mosquitto, ferry-cloud serve,
# ferry-gateway (CoAP on UDP) and ferry-edge. A release is installed and
# confirmed; ferry-edge is killed -9 mid-download and resumes; an unhealthy
# release rolls back; a trial boot killed during its health check rolls back
# at the next start; status records wait out a gateway outage. The cloud's
# inventory is the witness for what the node reported.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"

EDGE=$(ferry_bin ferry-edge)
NODE=n1
HW=m1
COAP_PORT=$(free_port udp)
# A windowed download of 8 MiB over loopback takes about a second: the link
# budget stretches it to about eight, so the node can be killed half-way.
LINK_RATE=$((1024 * 1024))
STATE="$TEST_TMP/$NODE"
RUN=0

start_gw() {
    "$GATEWAY" --broker "$BROKER" --fleet "$FLEET" --id gw1 \
        --cache-dir "$TEST_TMP/gw1/cache" --state-dir "$TEST_TMP/gw1/state" \
        --trust "$PUB" --coap-addr 127.0.0.1 --coap-port "$COAP_PORT" \
        --link-rate "$LINK_RATE" --log-level debug >>"$TEST_TMP/gw1.log" 2>&1 &
    GW_PID=$!
    kill_at_exit "$GW_PID"
}

# Each run of ferry-edge logs to its own file: $TEST_TMP/edge-$RUN.log.
# POLL sets its poll interval in seconds (1 by default).
start_edge() {
    RUN=$((RUN + 1))
    "$EDGE" --gateway "coap://127.0.0.1:$COAP_PORT" --id "$NODE" --hw-model "$HW" \
        --state-dir "$STATE" --trust "$PUB" --poll-interval "${POLL:-1}" --request-timeout 5 \
        --max-image-mb 16 --block-size 512 --health-cmd "$TEST_TMP/health.sh" \
        --log-level debug >>"$TEST_TMP/edge-$RUN.log" 2>&1 &
    EDGE_PID=$!
    kill_at_exit "$EDGE_PID"
}

kill_edge() {
    kill -KILL "$EDGE_PID" 2>/dev/null
    wait "$EDGE_PID" 2>/dev/null
}

# The health check: release 1.0.3 is unhealthy, 1.0.4 hangs (its pid is
# kept so the test can end it), anything else must be the expected image.
cat >"$TEST_TMP/health.sh" <<EOF
#!/bin/sh
case "\$FERRY_VERSION" in
1.0.3) exit 1 ;;
1.0.4) echo \$\$ >"$TEST_TMP/health.pid"; exec sleep 120 ;;
esac
cmp -s "\$FERRY_SLOT" "$TEST_TMP/expected.bin"
EOF
chmod +x "$TEST_TMP/health.sh"

# "state version seq" of the node in the cloud's inventory, or nothing.
node_row() {
    "$CLOUD" status --db "$DB" --json 2>/dev/null | python3 -c '
import json, sys
for row in json.load(sys.stdin):
    if row.get("node") == sys.argv[1]:
        print(row.get("state", ""), row.get("version", ""), row.get("seq", 0))
' "$NODE"
}

node_is() {
    local want="$1 $2"
    [[ "$(node_row)" == "$want "* ]]
}

edge_log_has() {
    grep -qF -- "$1" "$TEST_TMP/edge-$RUN.log"
}

slot_size() {
    stat -c %s "$STATE/$1" 2>/dev/null || echo 0
}

new_release() {
    local seq=$1 size=$2
    head -c "$size" /dev/urandom >"$TEST_TMP/r$seq.bin"
    cp "$TEST_TMP/r$seq.bin" "$TEST_TMP/expected.bin"
    publish "$TEST_TMP/r$seq.bin" "$seq" >/dev/null || die "publish $seq failed"
}

start_serve s1
start_gw
# An hour between polls: the first release can only reach the node through
# its observation of a product line that had no release when it registered.
POLL=3600 start_edge

# --- a node with nothing to do reports idle once -----------------------------------
if wait_until 30 node_is idle ""; then
    pass "the node's idle record reached the cloud through the gateway"
else
    fail "no idle record in the inventory: $(node_row)"
fi

# The node asks twice (the first GET only makes the gateway's resource) and
# is then registered; only a notification can tell it of the release.
no_release_answers() {
    [ "$(grep -c 'gateway has no release' "$TEST_TMP/edge-$RUN.log")" -ge 2 ]
}
wait_until 10 no_release_answers || fail "the node did not observe its model's empty manifest"

# --- a release is downloaded, installed on trial, checked and confirmed -----------
new_release 1 300000
if wait_until 60 node_is success 1.0.1; then
    pass "release 1.0.1 installed and confirmed, heard of through Observe alone"
else
    fail "release 1.0.1 not confirmed: $(node_row)"
fi
check "slot B holds release 1.0.1" cmp "$TEST_TMP/r1.bin" "$STATE/slot-b.img"
# The records the node made, not its debug lines about sending them ("status 1: no answer").
check "every state was reported in order" bash -c "grep -oE 'status [0-9]+: [a-z-]+ (release|bytes) ' \
    '$TEST_TMP/edge-1.log' | awk '{print \$3}' | uniq | tr '\n' ' ' | grep -q \
    'idle available downloading verifying installing pending-reboot success'"
check "Block2 was driven block by block (no libcoap block-wise client)" \
    bash -c "[ \$(grep -c 'action get-block' '$TEST_TMP/edge-1.log') -gt 500 ]"

# --- kill -9 mid-download, then the download resumes where it was -----------------
new_release 2 $((8 * 1024 * 1024))
if wait_until 120 bash -c "[ \$(stat -c %s '$STATE/slot-a.img' 2>/dev/null || echo 0) -ge $((3 * 1024 * 1024)) ]"; then
    kill_edge
    pass "ferry-edge killed -9 with 3 MiB of 8 written"
else
    fail "download into slot A never reached 3 MiB"
fi
check "release 1.0.2 was not finished before the kill" \
    test "$(node_row | cut -d' ' -f1-2)" != "success 1.0.2"
start_edge
if wait_until 120 node_is success 1.0.2; then
    pass "release 1.0.2 installed after the restart"
else
    fail "release 1.0.2 not confirmed after the restart: $(node_row)"
fi
check "slot A holds release 1.0.2" cmp "$TEST_TMP/r2.bin" "$STATE/slot-a.img"
first=$(grep -o 'status [0-9]*: downloading release [^ ]* version [^ ]* bytes [0-9]*' \
    "$TEST_TMP/edge-2.log" | head -1 | awk '{print $NF}')
echo "first progress after the restart: ${first:-none} bytes"
check "the restarted download resumed past 2 MiB instead of starting over" \
    test "${first:-0}" -ge $((2 * 1024 * 1024))

# --- an unhealthy release rolls back -------------------------------------------------
new_release 3 200000
if wait_until 60 node_is rolled-back 1.0.3; then
    pass "unhealthy release 1.0.3 rolled back"
else
    fail "release 1.0.3 did not roll back: $(node_row)"
fi
check "slot A still holds release 1.0.2" cmp "$TEST_TMP/r2.bin" "$STATE/slot-a.img"

# --- a trial boot that dies during its health check rolls back at the next start ----
new_release 4 200000
if wait_until 60 test -s "$TEST_TMP/health.pid"; then
    kill_edge
    kill -KILL "$(cat "$TEST_TMP/health.pid")" 2>/dev/null
    pass "ferry-edge killed -9 during the trial of 1.0.4"
else
    fail "the trial of 1.0.4 never started its health check"
fi
start_edge
if wait_until 60 node_is idle 1.0.2; then
    pass "after the crashed trial the node runs 1.0.2 again"
else
    fail "node not back on 1.0.2: $(node_row)"
fi
check "the rollback of 1.0.4 was reported" edge_log_has "rolled-back release"
check "the rollback names the spent boot attempts" edge_log_has "boot attempts"
check "slot A still holds release 1.0.2 after the crashed trial" \
    cmp "$TEST_TMP/r2.bin" "$STATE/slot-a.img"

# --- records wait in the journal while the gateway is down -------------------------------
seq_before=$(node_row | awk '{print $3}')
kill -TERM "$GW_PID"
wait "$GW_PID" 2>/dev/null
kill -TERM "$EDGE_PID"
wait "$EDGE_PID"
check "ferry-edge stops cleanly on SIGTERM" test $? -eq 0
start_edge # reports idle into the journal; nobody takes it
sleep 3
check "the record waits while the gateway is down" test "$(node_row | awk '{print $3}')" = "$seq_before"
start_gw
if wait_until 60 bash -c "[ \"\$(\"$CLOUD\" status --db '$DB' --json | grep -o '\"seq\":[0-9]*' | cut -d: -f2)\" -gt $seq_before ]"; then
    pass "the waiting record reached the cloud once the gateway was back"
else
    fail "the record never arrived: $(node_row)"
fi

finish
