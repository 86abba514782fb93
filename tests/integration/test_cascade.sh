#!/usr/bin/env bash
# Cascaded gateways with real processes: mosquitto, ferry-cloud serve,
# gateway A on the broker, gateway B with A as its upstream (CoAP), gateway
# C with B as its upstream, and two ferry-edge nodes under each.
#
#   - one release reaches all six nodes; each gateway fetches the artifact
#     once (A from the cloud's stream, B from A's cache, C from B's);
#   - every status record reaches the inventory with its path: a node under
#     C arrives as (node, C, via B, A), and the cloud binds C to B and B to A;
#   - gateways A and B update themselves in the same run (--self-product
#     gateway-fw, the sim bootloader): gateway-fw 2.0.0 is published while
#     A's nodes download firmware; A defers, installs once its nodes are
#     done, restarts into it (same pid) and confirms; B does the same
#     through its CoAP uplink (it observes gateway-fw from A, fetches it
#     block-wise, and its own records reach the inventory via A);
#     gateway-fw 2.0.1 fails its health check: A and B roll back to 2.0.0
#     and serve on, and no node reports anything but a pause;
#   - gateway A is killed -9 while B fetches the next release from it, and
#     the broker is killed -9 too; both come back, nothing is lost, and the
#     release completes on every node, each record in the inventory once.
# (This run took over test_gw_self_update.sh's scenario, so one set of
# processes covers both.)
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

# fetched_bytes GW SHA: payload bytes of artifact SHA gateway GW's fetch
# took in (its stream chunks, from the cloud or from its parent), over all
# its runs. A gateway fetches one artifact at a time: a chunk belongs to
# the artifact of the latest "fetch: SHA for release" line. Only chunks
# taken in count (verdict=0, GW_FETCH_NEXT): an error chunk's length is its
# message's (a serve instance answers "busy" while it checks its copy).
fetched_bytes() {
    awk -v sha="$2" '
        /fetch: [0-9a-f]+ for release/ { for (i = 1; i <= NF; i++) if ($i == "fetch:") cur = $(i + 1) }
        /fetch: received chunk offset=.* verdict=0$/ && cur == sha { sub(/.*len=/, ""); s += $1 }
        END { print s + 0 }' "$TEST_TMP/$1.log"
}

# The gateways' own images: the health check reads the first line of the
# slot the gateway booted ("healthy" or not).
make_gw_image() {
    { echo "$1"; head -c $((48 * 1024)) /dev/urandom; } >"$2"
}
# shellcheck disable=SC2016 # the health command expands in the gateway's shell
SELF_FLAGS=(--self-product gateway-fw --self-hw-model gwm --self-max-image-mb 1
    --self-health-timeout 20 --self-health-cmd 'test "$(head -n 1 "$FERRY_SLOT_PATH")" = healthy')

# The inventory's records of node $1: "seq state version ts" per line, by seq.
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

# The distinct successive states of node $1's records, on one line.
state_order() {
    records_of "$1" | awk '$2 != last { printf "%s%s", sep, $2; sep = " "; last = $2 } END { print "" }'
}

# The gateway and path of node $1's latest record in `status --json`.
latest_path() {
    "$CLOUD" status --db "$DB" --json | python3 -c '
import json, sys
r = {x["node"]: x for x in json.load(sys.stdin)}[sys.argv[1]]
print(r["gateway"], ",".join(r["via"]) or "-")' "$1"
}

# A's link budget (64 KiB/s to its nodes and B together) makes a transfer
# last long enough to be cut in the middle.
start_serve s1
start_gw_as gwa "$PORT_A" --link-rate 65536 "${SELF_FLAGS[@]}"
GWA_PID=$GW_PID
start_child gwb "$PORT_B" "$PORT_A" "${SELF_FLAGS[@]}"
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
make_gw_image healthy "$TEST_TMP/gw-good.bin"
make_gw_image broken "$TEST_TMP/gw-bad.bin"
SHA_GW=$(sha_of "$TEST_TMP/gw-good.bin")
for gw in gwa gwb; do
    wait_log 20 "$TEST_TMP/$gw.log" 0 "self: following product gateway-fw" ||
        die "gateway $gw did not open its own device"
done

# --- one release through three levels ----------------------------------------------
release "$TEST_TMP/r1.bin" 1.0.1 1 --hw-model m1 >/dev/null || die "publishing 1.0.1 failed"
for n in "${ALL[@]}"; do
    start_node "$n" m1
done
wait_fleet 30 downloading 1.0.1 "${NODES_A[@]}" ||
    die "A's nodes never started downloading: $FLEET_OFF"
# The gateways' own release while their nodes download.
release "$TEST_TMP/gw-good.bin" 2.0.0 1 --product gateway-fw --hw-model gwm >/dev/null ||
    die "publishing gateway-fw 2.0.0 failed"
if wait_fleet 90 success 1.0.1 "${ALL[@]}"; then
    pass "1.0.1 reached all six nodes under gateways A, B (child of A) and C (child of B)"
else
    fail "not every node reached 1.0.1: $FLEET_OFF"
fi
if wait_fleet 90 success 2.0.0 gwa gwb; then
    pass "gateways A and B installed gateway-fw 2.0.0, restarted into it and confirmed it"
else
    fail "gateways A and B did not both reach 2.0.0: $FLEET_OFF"
fi
for gw in gwa gwb gwc; do
    check "gateway $gw holds 1.0.1's artifact, verified" cmp "$TEST_TMP/r1.bin" "$TEST_TMP/$gw/cache/$SHA1"
    got=$(fetched_bytes "$gw" "$SHA1")
    check "gateway $gw fetched the artifact once ($got bytes for $IMAGE_BYTES)" \
        test "$got" -eq "$IMAGE_BYTES"
done

# --- A and B update themselves after their nodes ------------------------------------
check "A deferred its own update while its nodes downloaded" test -n "$(first_ts gwa deferred)"
installing=$(first_ts gwa installing)
for n in "${NODES_A[@]}"; do
    done_ts=$(first_ts "$n" success)
    check "A began installing itself ($installing) after $n succeeded ($done_ts)" \
        test -n "$installing" -a -n "$done_ts" -a "${installing:-0}" -ge "${done_ts:-1}"
done
for gw in gwa gwb; do
    order=$(state_order "$gw")
    check "$gw's own records went $order" \
        bash -c "[[ '$order' == *'installing pending-reboot success' ]]"
    check "$gw restarted in place and booted its new slot" \
        grep -q "self: booted slot .* (2.0.0)" "$TEST_TMP/$gw.log"
done
check "A and B are still the same processes" kill -0 "$GWA_PID" "$GWB_PID"
check "B took gateway-fw from A over CoAP, fetching it once" \
    test "$(fetched_bytes gwb "$SHA_GW")" -eq "$(stat -c %s "$TEST_TMP/gw-good.bin")"
check "A's own records reached the inventory under A, with no path above it" \
    test "$(latest_path gwa)" = "gwa -"
check "B's own records reached the inventory under B, via A" test "$(latest_path gwb)" = "gwb gwa"
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

# --- a gateway release that fails its health check ---------------------------------
release "$TEST_TMP/gw-bad.bin" 2.0.1 2 --product gateway-fw --hw-model gwm >/dev/null ||
    die "publishing gateway-fw 2.0.1 failed"
if wait_fleet 90 rolled-back 2.0.1 gwa gwb; then
    pass "gateways A and B rolled 2.0.1 back after its health check failed"
else
    fail "gateways A and B did not both roll 2.0.1 back: $FLEET_OFF"
fi
for gw in gwa gwb; do
    check "$gw booted 2.0.0 again after the rollback" \
        wait_until 30 bash -c "[ \$(grep -c 'self: booted slot .* (2.0.0)' '$TEST_TMP/$gw.log') -ge 2 ]"
    check "$gw does not try 2.0.1 again" \
        test "$(grep -c 'self: installing gateway-fw-2.0.1' "$TEST_TMP/$gw.log")" -eq 1
done

# --- gateway A and the broker die mid-transfer ----------------------------------------
release "$TEST_TMP/r2.bin" 1.0.2 2 --hw-model m1 >/dev/null || die "publishing 1.0.2 failed"
gwb_from=0
if wait_until 60 bash -c "[ \$(stat -c %s '$TEST_TMP/gwb/cache/partial/$SHA2.part' 2>/dev/null || echo 0) -ge 16384 ]"; then
    gwb_from=$(log_lines "$TEST_TMP/gwb.log")
    kill -KILL "$GWA_PID"
    wait "$GWA_PID" 2>/dev/null
    kill -KILL "$MOSQ_PID"
    wait "$MOSQ_PID" 2>/dev/null
    check "B was fetching 1.0.2 from A when A and the broker were killed" \
        test ! -e "$TEST_TMP/gwb/cache/$SHA2"
else
    fail "B never started fetching 1.0.2 from A"
fi
# A's loss reaches B (its uplink goes down); C, below B, still serves what
# it holds: a stock CoAP client (an anonymous client to C) fetches 1.0.1
# from it, byte for byte, while A is still down.
check "B noticed that its parent A is gone" \
    wait_log 60 "$TEST_TMP/gwb.log" "$gwb_from" "link down, serving what is held"
check "C keeps serving while its grandparent is gone" bash -c \
    "coap-client-notls -B 30 -o '$TEST_TMP/from-c.bin' \
        'coap://127.0.0.1:$PORT_C/ferry/artifact/$SHA1' >/dev/null 2>&1 &&
     cmp -s '$TEST_TMP/r1.bin' '$TEST_TMP/from-c.bin'"
restart_mosquitto
start_gw_as gwa "$PORT_A" --link-rate 65536 "${SELF_FLAGS[@]}"
GWA_PID=$GW_PID
if wait_fleet 120 success 1.0.2 "${ALL[@]}"; then
    pass "1.0.2 reached all six nodes after A and the broker came back"
else
    fail "not every node reached 1.0.2: $FLEET_OFF"
fi
for gw in gwb gwc; do
    check "gateway $gw holds 1.0.2's artifact, verified" cmp "$TEST_TMP/r2.bin" "$TEST_TMP/$gw/cache/$SHA2"
done
b_got=$(fetched_bytes gwb "$SHA2")
check "B resumed where it was: $b_got bytes for $IMAGE_BYTES (at most a chunk more)" \
    test "$b_got" -ge "$IMAGE_BYTES" -a "$b_got" -le $((IMAGE_BYTES + 16384))
if records_complete 60 "${ALL[@]}"; then
    pass "no record lost across the crash of A and of the broker ($RECORDS_TOTAL records)"
else
    fail "records missing after the crashes (node count/max/last): $RECORDS_OFF"
fi
check "A serves on with its old version: both A's nodes took 1.0.2 through it" \
    fleet_is success 1.0.2 "${NODES_A[@]}"
check "no node reported a failure through its gateways' updates" test "$("$CLOUD" status --db "$DB" --json |
    python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if not r["node"].startswith("gw") and r["error"]))')" -eq 0
check "A's cache kept the nodes' artifacts across its restarts" cmp "$TEST_TMP/r1.bin" "$TEST_TMP/gwa/cache/$SHA1"
check "no record was refused by the cloud" test "$("$CLOUD" status --db "$DB" --refused --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 0

stop_all "${NODE_PID[@]}" "$GWC_PID" "$GWB_PID" "$GWA_PID" "$SERVE_PID"
check "every node, the three gateways and the cloud stop cleanly${STOP_BAD:+ (not: $STOP_BAD)}" \
    test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
