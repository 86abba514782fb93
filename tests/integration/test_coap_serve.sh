#!/usr/bin/env bash
# The gateway serves its nodes over CoAP (real mosquitto, ferry-cloud serve,
# ferry-gateway; nodes played by libcoap's stock coap-client): block-wise
# downloads at every size, .well-known/core, Observe, pacing, 5.03 while an
# artifact is still arriving, the durable status relay across a broker
# outage and a kill -9, a full disk under the outbox, bad requests, DTLS.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"

command -v coap-client-notls >/dev/null || die "coap-client-notls (libcoap3-bin) is needed"
COAP_PORT=$(free_port udp)
export COAP_PORT
GWURI="coap://127.0.0.1:$COAP_PORT"
KIB=1024

start_serve s1
head -c $((300 * KIB)) /dev/urandom >"$TEST_TMP/a1.bin"
SHA1=$(sha_of "$TEST_TMP/a1.bin")
publish "$TEST_TMP/a1.bin" 1 >/dev/null || die "publish 1 failed"
start_gateway gw1 --max-downloads 2
wait_until 60 cached gw1 "$SHA1" || die "gateway never cached the first artifact"

# --- block-wise downloads with the stock client -------------------------------
for bs in 16 64 256 1024; do
    rm -f "$TEST_TMP/dl.bin"
    coap-client-notls -b "$bs" -o "$TEST_TMP/dl.bin" "$GWURI/ferry/artifact/$SHA1" \
        >/dev/null 2>&1
    check "stock coap-client downloads the artifact with $bs-byte blocks" \
        cmp "$TEST_TMP/dl.bin" "$TEST_TMP/a1.bin"
done
run coap-client-notls "$GWURI/.well-known/core"
expect_output stdout "</ferry/artifact/$SHA1>" ".well-known/core lists the cached artifact"
expect_output stdout 'rt="ferry.artifact"' "the artifact carries rt=ferry.artifact"
expect_output stdout "</ferry/manifest/firmware>" ".well-known/core lists the manifest resource"
expect_output stdout "</ferry/status>" ".well-known/core lists the status resource"

run coap-client-notls -o "$TEST_TMP/m1.env" "$GWURI/ferry/manifest/firmware"
python3 - "$TEST_TMP/m1.env" "$TEST_TMP/gw1/state/releases/firmware.env" <<'PY'
import sys
sys.exit(0 if open(sys.argv[1], "rb").read() == open(sys.argv[2], "rb").read() else 1)
PY
check "the manifest resource carries the cloud's envelope unchanged" test $? -eq 0

# --- Observe: a registration hears of a new release ----------------------------
coap-client-notls -s 60 -o "$TEST_TMP/obs.out" "$GWURI/ferry/manifest/firmware" >/dev/null 2>&1 &
OBS_PID=$!
kill_at_exit "$OBS_PID"
sleep 1
head -c $((200 * KIB)) /dev/urandom >"$TEST_TMP/a2.bin"
SHA2=$(sha_of "$TEST_TMP/a2.bin")
publish "$TEST_TMP/a2.bin" 2 --out "$TEST_TMP/env2.json" >/dev/null || die "publish 2 failed"
sig2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sig"])' "$TEST_TMP/env2.json")
if wait_until 20 grep -qF -- "$sig2" "$TEST_TMP/obs.out"; then
    pass "an Observe registration is notified of the new release"
else
    fail "no notification carried the new release"
fi
kill "$OBS_PID" 2>/dev/null
wait_until 60 cached gw1 "$SHA2" || die "gateway never cached the second artifact"

# --- pacing: cap 2, six nodes (each names itself with n=, as ferry-edge does) ---
head -c $((1024 * KIB)) /dev/urandom >"$TEST_TMP/a3.bin"
SHA3=$(sha_of "$TEST_TMP/a3.bin")
publish "$TEST_TMP/a3.bin" 3 >/dev/null || die "publish 3 failed"
wait_until 60 cached gw1 "$SHA3" || die "gateway never cached the third artifact"
marker=$(wc -l <"$TEST_TMP/gw1.log")
node_fetch() {
    local i=$1 tries=0
    while ((tries < 60)); do
        tries=$((tries + 1))
        rm -f "$TEST_TMP/n$i.bin"
        coap-client-notls -b 1024 -o "$TEST_TMP/n$i.bin" "$GWURI/ferry/artifact/$SHA3?n=node-$i" \
            >>"$TEST_TMP/n$i.out" 2>&1
        if cmp -s "$TEST_TMP/n$i.bin" "$TEST_TMP/a3.bin"; then
            echo "$tries" >"$TEST_TMP/n$i.tries"
            return 0
        fi
        sleep 1
    done
    return 1
}
pids=()
for i in 1 2 3 4 5 6; do
    node_fetch "$i" &
    pids+=($!)
done
ok=0
for p in "${pids[@]}"; do
    wait "$p" && ok=$((ok + 1))
done
check "all six nodes finished with the exact artifact" test "$ok" -eq 6
busy=$(cat "$TEST_TMP"/n*.out | grep -c "5.03" || true)
check "nodes beyond the cap were told 5.03 ($busy times)" test "$busy" -gt 0
maxrun=$(tail -n +"$marker" "$TEST_TMP/gw1.log" | grep -o 'download admitted, [0-9]* running' |
    awk '{print $3}' | sort -n | tail -1)
echo "largest number of downloads running at once: ${maxrun:-none}"
check "never more than 2 downloads at once" test "${maxrun:-99}" -le 2

# --- an artifact still arriving is answered 5.03, never partial bytes -----------
CHUNK_BIG=16384
head -c $((32 * 1024 * KIB)) /dev/urandom >"$TEST_TMP/a4.bin"
SHA4=$(sha_of "$TEST_TMP/a4.bin")
kill -TERM "$GW_PID"
wait "$GW_PID" 2>/dev/null
publish "$TEST_TMP/a4.bin" 4 >/dev/null || die "publish 4 failed"
start_gateway gw1 --max-downloads 2 --chunk-size "$CHUNK_BIG"
wait_until 30 bash -c "[ -f '$TEST_TMP/gw1/cache/partial/$SHA4.part' ]"
rm -f "$TEST_TMP/early.bin"
run coap-client-notls -b 1024 -o "$TEST_TMP/early.bin" "$GWURI/ferry/artifact/$SHA4"
if cached gw1 "$SHA4"; then
    fail "the 32 MiB artifact arrived before the early request could test 5.03"
else
    expect_output stderr "5.03" "an artifact still arriving is answered 5.03"
    check "no partial bytes were served" test ! -s "$TEST_TMP/early.bin"
fi
wait_until 120 cached gw1 "$SHA4" || die "gateway never cached the 32 MiB artifact"

# --- durable status relay: 1,000 records with the broker down ------------------
post_status() { # node seq
    coap-client-notls -m post -t 50 -e "{\"format\":1,\"node\":\"$1\",\"state\":\"downloading\",\"bytes\":$2,\"total\":1000,\"seq\":$2,\"ts\":1795780800,\"version\":\"1.0.0\"}" \
        "$GWURI/ferry/status" 2>&1
}
# post_round FIRST LAST: records FIRST..LAST of nodes 0-9; counts and names
# those the gateway refused in `refused`.
post_round() {
    local seq n out
    for seq in $(seq "$1" "$2"); do
        for n in 0 1 2 3 4 5 6 7 8 9; do
            out=$(post_status "node-$n" "$seq")
            if [ -n "$out" ]; then
                refused=$((refused + 1))
                echo "node-$n seq $seq was refused: $out"
            fi
        done
    done
}
stop_mosquitto
refused=0
post_round 1 50
check "500 records accepted with the broker down" test "$refused" -eq 0
kill -KILL "$GW_PID"
wait "$GW_PID" 2>/dev/null
start_gateway gw1 --max-downloads 2
gateway_serving || die "the gateway did not come back after kill -9"
post_round 51 100
check "500 more accepted after a kill -9 of the gateway" test "$refused" -eq 0
restart_mosquitto
inventory() {
    python3 - "$DB" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
if sys.argv[2] == "count":
    print(db.execute("SELECT COUNT(*) FROM records WHERE node LIKE 'node-%'").fetchone()[0])
else:
    rows = db.execute("SELECT node, seq FROM nodes WHERE node LIKE 'node-%' ORDER BY node").fetchall()
    print(" ".join(f"{n}={s}" for n, s in rows))
PY
}
if wait_until 120 bash -c "[ \"\$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT COUNT(*) FROM records WHERE node LIKE \\\"node-%\\\"\").fetchone()[0])' '$DB')\" = 1000 ]"; then
    pass "all 1,000 records reached the cloud inventory"
else
    fail "inventory holds $(inventory count) of 1,000 records"
fi
check "the inventory holds each record exactly once" test "$(inventory count)" -eq 1000
want=$(for n in 0 1 2 3 4 5 6 7 8 9; do printf 'node-%s=100 ' "$n"; done)
check "each node's latest record is its last one" test "$(inventory nodes) " = "$want"
if wait_until 30 bash -c "grep -q '0 pending' '$TEST_TMP/gw1.log'"; then
    pass "the gateway's outbox drained"
else
    fail "the outbox did not drain"
fi

# --- bad input gets 4.xx and the gateway keeps serving --------------------------
run coap-client-notls "$GWURI/no/such/path"
expect_output stderr "4.04" "an unknown path is 4.04"
run coap-client-notls -m post -e x "$GWURI/ferry/artifact/$SHA1"
expect_output stderr "4.05" "a POST to an artifact is 4.05"
run coap-client-notls -m post -t 50 -e '{"format":1,"node":"n"' "$GWURI/ferry/status"
expect_output stderr "4.00" "a malformed status record is 4.00"
big=$(head -c 3000 /dev/zero | tr '\0' 'a')
run coap-client-notls -m post -t 50 -e "$big" "$GWURI/ferry/status"
expect_output stderr "4.13" "an oversize status payload is 4.13"
run coap-client-notls -m post -t 0 -e 'hello' "$GWURI/ferry/status"
expect_output stderr "4.15" "an unknown content format is 4.15"
python3 - "$COAP_PORT" "$SHA1" >"$TEST_TMP/raw.out" <<'PY'
import socket, sys
port, sha = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
def opt(delta, value):
    assert delta < 13 and len(value) < 13
    return bytes([(delta << 4) | len(value)]) + value
def get(mid, block2):
    # CON GET ferry/artifact/<sha> with a Block2 option (23) of the given value.
    msg = bytes([0x41, 0x01, mid >> 8, mid & 255, 0x42])
    msg += opt(11, b"ferry") + opt(0, b"artifact")
    msg += bytes([0x0D, len(sha) - 13]) + sha.encode()
    msg += bytes([(23 - 11) << 4 | len(block2)]) + block2
    return msg
def code(resp):
    return f"{resp[1] >> 5}.{resp[1] & 31:02d}"
for name, pkt in [("beyond", get(1, bytes([0xFF, 0xFF, 0x06]))),
                  ("szx7", get(2, bytes([0x07])))]:
    s.sendto(pkt, ("127.0.0.1", port))
    print(name, code(s.recvfrom(2048)[0]))
s.sendto(b"\xff\x00garbage", ("127.0.0.1", port))
s.sendto(b"", ("127.0.0.1", port))
PY
check "a Block2 number beyond the artifact is 4.xx" grep -qE '^beyond 4\.' "$TEST_TMP/raw.out"
check "a Block2 size exponent of 7 is 4.xx" grep -qE '^szx7 4\.' "$TEST_TMP/raw.out"
rm -f "$TEST_TMP/after.bin"
coap-client-notls -b 1024 -o "$TEST_TMP/after.bin" "$GWURI/ferry/artifact/$SHA1" >/dev/null 2>&1
check "the gateway still serves after the bad requests" cmp "$TEST_TMP/after.bin" "$TEST_TMP/a1.bin"
check "the gateway is still running" kill -0 "$GW_PID"

finish
