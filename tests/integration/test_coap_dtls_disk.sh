#!/usr/bin/env bash
# The gateway over DTLS with per-node keys (a node with the wrong key can
# neither fetch nor report; the right key can), and a full disk under the
# status outbox (new records get 5.03, nothing acknowledged is lost, and it
# recovers when space returns). Real mosquitto, ferry-cloud serve,
# ferry-gateway; nodes are libcoap's stock clients.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"

command -v coap-client-openssl >/dev/null || die "coap-client-openssl (libcoap3-bin) is needed"
COAP_PORT=$(free_port udp)
export COAP_PORT
KEY1="secret-key-node1" # 16 bytes: coap-client takes the key as text
KEY1_HEX=$(printf %s "$KEY1" | od -An -tx1 | tr -d ' \n')
printf '# dev keys for the test\nnode-1 %s\n' "$KEY1_HEX" >"$TEST_TMP/psk.txt"

start_serve s1
head -c 200000 /dev/urandom >"$TEST_TMP/a1.bin"
SHA1=$(sha_of "$TEST_TMP/a1.bin")
publish "$TEST_TMP/a1.bin" 1 >/dev/null || die "publish failed"

# --- DTLS ------------------------------------------------------------------------
start_gateway gw1 --psk-file "$TEST_TMP/psk.txt"
wait_until 60 cached gw1 "$SHA1" || die "gateway never cached the artifact"
URI="coaps://127.0.0.1:$COAP_PORT"
status_json() { # node seq
    printf '{"format":1,"node":"%s","state":"idle","bytes":0,"total":0,"seq":%s,"ts":1795780800,"version":"1.0.0"}' "$1" "$2"
}
coap-client-openssl -B 10 -u node-1 -k "$KEY1" -b 1024 -o "$TEST_TMP/good.bin" \
    "$URI/ferry/artifact/$SHA1" >/dev/null 2>&1
check "a node with the right key fetches over DTLS" cmp "$TEST_TMP/good.bin" "$TEST_TMP/a1.bin"
run coap-client-openssl -B 10 -u node-1 -k "$KEY1" -m post -t 50 -e "$(status_json node-1 1)" \
    "$URI/ferry/status"
check "a node with the right key reports over DTLS" test ! -s "$RUN_STDERR"
coap-client-openssl -B 4 -u node-1 -k "secret-key-nodeX" -b 1024 -o "$TEST_TMP/bad.bin" \
    "$URI/ferry/artifact/$SHA1" >/dev/null 2>&1
check "a node with the wrong key fetches nothing" test ! -s "$TEST_TMP/bad.bin"
coap-client-openssl -B 4 -u node-9 -k "$KEY1" -b 1024 -o "$TEST_TMP/unknown.bin" \
    "$URI/ferry/artifact/$SHA1" >/dev/null 2>&1
check "an unknown node fetches nothing" test ! -s "$TEST_TMP/unknown.bin"
coap-client-openssl -B 4 -u node-1 -k "secret-key-nodeX" -m post -t 50 \
    -e "$(status_json node-1 2)" "$URI/ferry/status" >/dev/null 2>&1
coap-client-openssl -B 4 -u node-1 -k "$KEY1" -m post -t 50 -e "$(status_json node-2 1)" \
    "$URI/ferry/status" >"$TEST_TMP/other.out" 2>&1
check "a node may not report for another node" grep -q "4.03" "$TEST_TMP/other.out"
coap-client-notls -B 4 -o "$TEST_TMP/plain.bin" "coap://127.0.0.1:$COAP_PORT/ferry/artifact/$SHA1" \
    >/dev/null 2>&1
check "plain CoAP gets nothing from a DTLS gateway" test ! -s "$TEST_TMP/plain.bin"
inv_count() {
    python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM records WHERE node=?", (sys.argv[2],)).fetchone()[0])' "$DB" "$1"
}
if wait_until 20 bash -c "[ \$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT COUNT(*) FROM records WHERE node=?\", (sys.argv[2],)).fetchone()[0])' '$DB' node-1) = 1 ]"; then
    pass "only the authenticated record reached the cloud"
else
    fail "node-1 has $(inv_count node-1) records in the inventory, expected 1"
fi
check "nothing was stored for node-2" test "$(inv_count node-2)" -eq 0
kill -TERM "$GW_PID"
wait "$GW_PID" 2>/dev/null

# --- a full disk under the outbox -------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the full-disk part mounts a small tmpfs and needs root"
    finish
fi
MNT="$TEST_TMP/gw2/state"
mkdir -p "$MNT"
mount -t tmpfs -o size=512k tmpfs "$MNT" || die "cannot mount a tmpfs"
at_exit "umount -l '$MNT'"
start_gateway gw2
wait_until 60 cached gw2 "$SHA1" || die "gw2 never cached the artifact"
URI="coap://127.0.0.1:$COAP_PORT"
stop_mosquitto
# Leave a few KiB free, then post until the outbox refuses.
avail=$(df --output=avail -B1 "$MNT" | tail -1)
fallocate -l $((avail - 8192)) "$MNT/filler" 2>/dev/null ||
    head -c $((avail - 8192)) /dev/zero >"$MNT/filler"
accepted=0
busy=0
other=0
for seq in $(seq 1 200); do
    out=$(coap-client-notls -B 5 -m post -t 50 -e "$(status_json node-7 "$seq")" \
        "$URI/ferry/status" 2>&1)
    if [ -z "$out" ]; then
        accepted=$((accepted + 1))
        echo "$seq" >>"$TEST_TMP/accepted"
    elif [[ "$out" == *5.03* ]]; then
        busy=$((busy + 1))
    else
        other=$((other + 1))
        echo "unexpected answer: $out"
    fi
done
echo "disk full: $accepted accepted, $busy refused with 5.03, $other other"
check "records were refused with 5.03 once the disk was full" test "$busy" -gt 0
check "no record got an answer other than 2.04 or 5.03" test "$other" -eq 0
check "the gateway survived the full disk" kill -0 "$GW_PID"
rm -f "$MNT/filler"
for seq in $(seq 201 210); do
    out=$(coap-client-notls -B 5 -m post -t 50 -e "$(status_json node-7 "$seq")" \
        "$URI/ferry/status" 2>&1)
    if [ -z "$out" ]; then
        accepted=$((accepted + 1))
        echo "$seq" >>"$TEST_TMP/accepted"
    fi
done
check "records are accepted again once space returns" test "$(grep -c '^20[1-9]$\|^210$' "$TEST_TMP/accepted")" -eq 10
restart_mosquitto
want=$accepted
if wait_until 60 bash -c "[ \$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT COUNT(*) FROM records WHERE node=?\", (sys.argv[2],)).fetchone()[0])' '$DB' node-7) -ge $want ]"; then
    pass "every acknowledged record reached the cloud ($want)"
else
    fail "the cloud has $(inv_count node-7) of $want acknowledged records"
fi
missing=$(python3 - "$DB" "$TEST_TMP/accepted" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
have = {r[0] for r in db.execute("SELECT seq FROM records WHERE node='node-7'")}
want = {int(l) for l in open(sys.argv[2]) if l.strip()}
print(len(want - have))
PY
)
check "no acknowledged record is missing" test "$missing" -eq 0

finish
