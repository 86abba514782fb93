#!/usr/bin/env bash
# Cascaded gateways with real processes: mosquitto, ferry-cloud serve,
# gateway A on the broker, gateway B with A as its upstream (CoAP), gateway
# C with B as its upstream, and two ferry-edge nodes under each.
#
#   - one release reaches all six nodes; each gateway fetches the artifact
#     once (A from the cloud's stream, B from A's cache, C from B's);
#   - every status record reaches the inventory with its path: a node under
#     C arrives as (node, C, via B, A), and the cloud binds C to B and B to A;
#   - gateway A is killed -9 while B fetches the next release from it, and
#     the broker is killed -9 too; both come back, nothing is lost, and the
#     release completes on every node, each record in the inventory once.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"

IMAGE_BYTES=$((192 * 1024))
PORT_A=$COAP_PORT
PORT_B=$(free_port udp)
PORT_C=$(free_port udp)
NODES_A=(a1 a2)
NODES_B=(b1 b2)
NODES_C=(c1 c2)
ALL=("${NODES_A[@]}" "${NODES_B[@]}" "${NODES_C[@]}")

# start_child ID PORT PARENT_PORT [flags...]: a gateway whose upstream is the
# gateway on PARENT_PORT; sets GW_PID.
start_child() {
    local id=$1 port=$2 parent=$3
    shift 3
    "$GATEWAY" --upstream "coap://127.0.0.1:$parent" --upstream-poll 2 --fleet "$FLEET" \
        --id "$id" --cache-dir "$TEST_TMP/$id/cache" --state-dir "$TEST_TMP/$id/state" \
        --trust "$PUB" --coap-addr 127.0.0.1 --coap-port "$port" --chunk-size 16384 \
        --log-level debug "$@" >>"$TEST_TMP/$id.log" 2>&1 &
    GW_PID=$!
    kill_at_exit "$GW_PID"
}

# The path the inventory holds for a node's records: "gateway via" of each
# distinct path (one line per path).
paths_of() {
    python3 - "$DB" "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
for gw, via in db.execute("SELECT DISTINCT gateway, via FROM records WHERE node = ?",
                          (sys.argv[2],)):
    print(gw, via or "-")
EOF
}

binding_of() {
    python3 - "$DB" "$1" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
row = db.execute("SELECT parent FROM bindings WHERE child = ?", (sys.argv[2],)).fetchone()
print(row[0] if row else "-")
EOF
}

# Payload bytes of artifact SHA a gateway's fetch took in (its stream chunks,
# from the cloud or from its parent).
fetched_bytes() {
    local total
    total=$(grep -ho "fetch: received chunk offset=[0-9]* len=[0-9]*" "$TEST_TMP/$1.log" |
        sed 's/.*len=//' | awk '{s += $1} END {print s + 0}')
    echo "$total"
}

# A's link budget (64 KiB/s to its nodes and B together) makes a transfer
# last long enough to be cut in the middle.
start_serve s1
start_gw_as gwa "$PORT_A" --link-rate 65536
GWA_PID=$GW_PID
start_child gwb "$PORT_B" "$PORT_A"
GWB_PID=$GW_PID
start_child gwc "$PORT_C" "$PORT_B"
GWC_PID=$GW_PID
for n in "${NODES_A[@]}"; do NODE_GATEWAY[$n]="coap://127.0.0.1:$PORT_A"; done
for n in "${NODES_B[@]}"; do NODE_GATEWAY[$n]="coap://127.0.0.1:$PORT_B"; done
for n in "${NODES_C[@]}"; do NODE_GATEWAY[$n]="coap://127.0.0.1:$PORT_C"; done

head -c "$IMAGE_BYTES" /dev/urandom >"$TEST_TMP/r1.bin"
head -c "$IMAGE_BYTES" /dev/urandom >"$TEST_TMP/r2.bin"
SHA1=$(sha_of "$TEST_TMP/r1.bin")
SHA2=$(sha_of "$TEST_TMP/r2.bin")

# --- one release through three levels ----------------------------------------------
release "$TEST_TMP/r1.bin" 1.0.1 1 --hw-model m1 >/dev/null || die "publishing 1.0.1 failed"
for n in "${ALL[@]}"; do
    start_node "$n" m1
done
if wait_fleet 90 success 1.0.1 "${ALL[@]}"; then
    pass "1.0.1 reached all six nodes under gateways A, B (child of A) and C (child of B)"
else
    fail "not every node reached 1.0.1: $FLEET_OFF"
fi
for gw in gwa gwb gwc; do
    check "gateway $gw holds 1.0.1's artifact, verified" cmp "$TEST_TMP/r1.bin" "$TEST_TMP/$gw/cache/$SHA1"
    got=$(fetched_bytes "$gw")
    check "gateway $gw fetched the artifact once ($got bytes for $IMAGE_BYTES)" \
        test "$got" -eq "$IMAGE_BYTES"
done
check "B fetched from A's cache, block-wise over CoAP" log_has gwb "following product firmware from the parent"
if records_complete 60 "${ALL[@]}"; then
    pass "every record of the six nodes is in the inventory ($RECORDS_TOTAL records)"
else
    fail "records missing (node count/max/last): $RECORDS_OFF"
fi
check "records of A's nodes came straight from A" test "$(paths_of a1)" = "gwa -"
check "records of B's nodes came through B, then A" test "$(paths_of b1)" = "gwb gwa"
check "records of C's nodes came through C, then B, then A" test "$(paths_of c2)" = "gwc gwb,gwa"
check "the cloud bound c1 to C, C to B and B to A" \
    test "$(binding_of c1) $(binding_of gwc) $(binding_of gwb)" = "gwc gwb gwa"
check "status --json shows a record's path" bash -c \
    "'$CLOUD' status --db '$DB' --json | python3 -c '
import json, sys
rows = {r[\"node\"]: r for r in json.load(sys.stdin)}
sys.exit(0 if rows[\"c1\"][\"via\"] == [\"gwb\", \"gwa\"] and rows[\"a1\"][\"via\"] == [] else 1)'"

# --- gateway A and the broker die mid-transfer ----------------------------------------
b_before=$(fetched_bytes gwb)
release "$TEST_TMP/r2.bin" 1.0.2 2 --hw-model m1 >/dev/null || die "publishing 1.0.2 failed"
if wait_until 60 bash -c "[ \$(stat -c %s '$TEST_TMP/gwb/cache/partial/$SHA2.part' 2>/dev/null || echo 0) -ge 16384 ]"; then
    kill -KILL "$GWA_PID"
    wait "$GWA_PID" 2>/dev/null
    kill -KILL "$MOSQ_PID"
    wait "$MOSQ_PID" 2>/dev/null
    check "B was fetching 1.0.2 from A when A and the broker were killed" \
        test ! -e "$TEST_TMP/gwb/cache/$SHA2"
else
    fail "B never started fetching 1.0.2 from A"
fi
sleep 3
check "C keeps serving while its grandparent is gone" log_has gwc "coap: serving on"
restart_mosquitto
start_gw_as gwa "$PORT_A" --link-rate 65536
GWA_PID=$GW_PID
if wait_fleet 120 success 1.0.2 "${ALL[@]}"; then
    pass "1.0.2 reached all six nodes after A and the broker came back"
else
    fail "not every node reached 1.0.2: $FLEET_OFF"
fi
for gw in gwb gwc; do
    check "gateway $gw holds 1.0.2's artifact, verified" cmp "$TEST_TMP/r2.bin" "$TEST_TMP/$gw/cache/$SHA2"
done
b_got=$(($(fetched_bytes gwb) - b_before))
check "B resumed where it was: $b_got bytes for $IMAGE_BYTES (at most a chunk more)" \
    test "$b_got" -ge "$IMAGE_BYTES" -a "$b_got" -le $((IMAGE_BYTES + 16384))
if records_complete 60 "${ALL[@]}"; then
    pass "no record lost across the crash of A and of the broker ($RECORDS_TOTAL records)"
else
    fail "records missing after the crashes (node count/max/last): $RECORDS_OFF"
fi
check "no record was refused by the cloud" test "$("$CLOUD" status --db "$DB" --refused --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 0

stop_all "${NODE_PID[@]}" "$GWC_PID" "$GWB_PID" "$GWA_PID" "$SERVE_PID"
check "every node, the three gateways and the cloud stop cleanly${STOP_BAD:+ (not: $STOP_BAD)}" \
    test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
