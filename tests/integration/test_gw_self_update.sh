#!/usr/bin/env bash
# A gateway updates itself after its nodes, with the install engine the
# nodes use, on the sim bootloader. Real processes: mosquitto, ferry-cloud
# serve, gateway A (--self-product gateway-fw), two ferry-edge nodes.
#
#   firmware 1.0.1     the nodes download it slowly (A's link budget);
#   gateway-fw 2.0.0   published while they do: A defers, installs once both
#                      nodes are done, restarts into it (same pid, the sim
#                      plays the bootloader), passes its health check and
#                      confirms; its records reach the inventory as node A;
#   gateway-fw 2.0.1   fails its health check: A rolls back to 2.0.0 and
#                      serves on; the nodes see a pause and nothing else,
#                      and take firmware 1.0.2 through it afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"

NODES=(a1 a2)
NODE_BYTES=$((96 * 1024))

# The gateway's images: the health check reads the first line of the slot
# it booted ("healthy" or not).
make_gw_image() {
    { echo "$1"; head -c $((48 * 1024)) /dev/urandom; } >"$2"
}
make_gw_image healthy "$TEST_TMP/gw-good.bin"
make_gw_image broken "$TEST_TMP/gw-bad.bin"
head -c "$NODE_BYTES" /dev/urandom >"$TEST_TMP/n1.bin"
head -c "$NODE_BYTES" /dev/urandom >"$TEST_TMP/n2.bin"

# The inventory's records of node $1: "seq state version" per line, by seq.
records_of() {
    python3 - "$DB" "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
for seq, state, version, ts in db.execute(
        "SELECT seq, state, version, ts FROM records WHERE node = ? ORDER BY seq", (sys.argv[2],)):
    print(seq, state, version or "-", ts)
EOF
}

# The ts of the first record of node $1 in state $2 (empty if none).
first_ts() {
    records_of "$1" | awk -v s="$2" '$2 == s {print $4; exit}'
}

start_serve s1
# shellcheck disable=SC2016 # the health command expands in the gateway's shell
start_gw_as gwa "$COAP_PORT" --link-rate 16384 --self-product gateway-fw --self-hw-model gwm \
    --self-max-image-mb 1 --self-health-timeout 20 \
    --self-health-cmd 'test "$(head -n 1 "$FERRY_SLOT_PATH")" = healthy'
GWA_PID=$GW_PID
wait_log 20 "$TEST_TMP/gwa.log" 0 "self: following product gateway-fw" ||
    die "gateway A did not open its own device"

release "$TEST_TMP/n1.bin" 1.0.1 1 --hw-model m1 >/dev/null || die "publishing 1.0.1 failed"
for n in "${NODES[@]}"; do
    start_node "$n" m1
done
wait_fleet 30 downloading 1.0.1 "${NODES[@]}" || die "the nodes never started downloading: $FLEET_OFF"

# --- the gateway's own release while its nodes download --------------------------------
release "$TEST_TMP/gw-good.bin" 2.0.0 1 --product gateway-fw --hw-model gwm >/dev/null ||
    die "publishing gateway-fw 2.0.0 failed"
if wait_fleet 90 success 2.0.0 gwa; then
    pass "gateway A installed gateway-fw 2.0.0, restarted into it and confirmed it"
else
    fail "gateway A did not reach 2.0.0: $FLEET_OFF"
fi
check "both nodes reached 1.0.1" fleet_is success 1.0.1 "${NODES[@]}"
check "A deferred its own update while its nodes downloaded" \
    test -n "$(first_ts gwa deferred)"
installing=$(first_ts gwa installing)
for n in "${NODES[@]}"; do
    done_ts=$(first_ts "$n" success)
    check "A began installing itself ($installing) after $n succeeded ($done_ts)" \
        test -n "$installing" -a -n "$done_ts" -a "${installing:-0}" -ge "${done_ts:-1}"
done
check "A's own records went deferred, installing, pending-reboot, success" bash -c \
    "[ \"\$(python3 - '$DB' <<'EOF'
import sqlite3, sys
db = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True, timeout=10)
states = [s for (s,) in db.execute(\"SELECT state FROM records WHERE node = 'gwa' ORDER BY seq\")]
order = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
print(' '.join(order))
EOF
)\" = 'deferred installing pending-reboot success' ]"
check "A restarted in place (same pid) and booted its new slot" \
    grep -q "self: booted slot .* (2.0.0)" "$TEST_TMP/gwa.log"
check "A is still the same process" kill -0 "$GWA_PID"
check "A's own records reached the inventory under A, with no path above it" \
    test "$("$CLOUD" status --db "$DB" --json | python3 -c '
import json, sys
r = {x["node"]: x for x in json.load(sys.stdin)}["gwa"]
print(r["gateway"], len(r["via"]))')" = "gwa 0"

# --- a gateway release that fails its health check ---------------------------------------
release "$TEST_TMP/gw-bad.bin" 2.0.1 2 --product gateway-fw --hw-model gwm >/dev/null ||
    die "publishing gateway-fw 2.0.1 failed"
if wait_fleet 90 rolled-back 2.0.1 gwa; then
    pass "gateway A rolled 2.0.1 back after its health check failed"
else
    fail "gateway A did not roll 2.0.1 back: $FLEET_OFF"
fi
check "A booted 2.0.0 again after the rollback" \
    wait_until 30 bash -c "[ \$(grep -c 'self: booted slot .* (2.0.0)' '$TEST_TMP/gwa.log') -ge 2 ]"
check "A does not try 2.0.1 again" \
    test "$(grep -c 'self: installing gateway-fw-2.0.1' "$TEST_TMP/gwa.log")" -eq 1
release "$TEST_TMP/n2.bin" 1.0.2 2 --hw-model m1 >/dev/null || die "publishing 1.0.2 failed"
if wait_fleet 60 success 1.0.2 "${NODES[@]}"; then
    pass "A serves on with its old version: both nodes reached 1.0.2"
else
    fail "the nodes did not reach 1.0.2 after A's rollback: $FLEET_OFF"
fi
check "no node reported a failure through A's updates" test "$("$CLOUD" status --db "$DB" --json |
    python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r["node"] != "gwa" and r["error"]))')" -eq 0
if records_complete 30 "${NODES[@]}"; then
    pass "every record of both nodes is in the inventory across A's restarts ($RECORDS_TOTAL)"
else
    fail "records missing (node count/max/last): $RECORDS_OFF"
fi
check "A's cache kept the nodes' artifacts across its restarts" \
    cmp "$TEST_TMP/n1.bin" "$TEST_TMP/gwa/cache/$(sha_of "$TEST_TMP/n1.bin")"

stop_all "${NODE_PID[@]}" "$GWA_PID" "$SERVE_PID"
check "the nodes, gateway A and the cloud stop cleanly${STOP_BAD:+ (not: $STOP_BAD)}" \
    test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
