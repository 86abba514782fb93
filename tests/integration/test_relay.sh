#!/usr/bin/env bash
# Cloud -> gateway over MQTT with real mosquitto, ferry-cloud serve and
# ferry-gateway processes: late joiners, kill -9 resume, broker restart,
# tampering, downgrades, and two serve instances sharing a fleet.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"

MIB=$((1024 * 1024))

# --- a gateway started after the publish gets a 32 MiB release intact -------
head -c $((32 * MIB)) /dev/urandom >"$TEST_TMP/a1.bin"
start_serve s1
publish "$TEST_TMP/a1.bin" 1 >/dev/null || die "publish 1 failed"
SHA1=$(sha_of "$TEST_TMP/a1.bin")
check "store holds the artifact under its digest" cmp "$TEST_TMP/a1.bin" "$STORE/$SHA1"
start_gateway gw1
if wait_until 120 cached gw1 "$SHA1"; then
    pass "late-joining gateway fetched the release published before it started"
else
    fail "gateway never cached $SHA1"
fi
check "cached 32 MiB artifact is byte-identical" cmp "$TEST_TMP/a1.bin" "$TEST_TMP/gw1/cache/$SHA1"
check "nothing partial is left behind" test ! -e "$TEST_TMP/gw1/cache/partial/$SHA1.part"
# serve hashed its copy in slices before the first chunk, answering busy meanwhile.
check "serve answered the first request busy while it checked its copy" \
    grep -qF "is checking its copy of artifact ${SHA1:0:16}" "$TEST_TMP/serve-s1.log"
check "the gateway took that busy as a retry" \
    grep -qF "asking again shortly: busy: instance" "$TEST_TMP/gw1.log"
verified=$(grep -oE "artifact ${SHA1:0:16}\.\.\. verified in the store \($((32 * MIB)) bytes, [0-9]+ ms, [0-9]+ slices\)" \
    "$TEST_TMP/serve-s1.log" || true)
echo "serve: $verified"
check "serve reports the check of the 32 MiB entry with its duration" test -n "$verified"

# --- kill -9 at several points, then resume -----------------------------------
# Small chunks make the download long enough to interrupt it three times.
kill -TERM "$GW_PID"
wait "$GW_PID" 2>/dev/null
: >"$TEST_TMP/gw1.log"
head -c $((32 * MIB)) /dev/urandom >"$TEST_TMP/a2.bin"
SHA2=$(sha_of "$TEST_TMP/a2.bin")
publish "$TEST_TMP/a2.bin" 2 >/dev/null || die "publish 2 failed"
CHUNK=16384
kills=0
for pct in 20 45 70; do
    start_gateway gw1
    want=$((32 * MIB * pct / 100))
    if wait_until 120 bash -c "[ \$(stat -c %s '$TEST_TMP/gw1/cache/partial/$SHA2.part' 2>/dev/null || echo 0) -ge $want ]"; then
        kill -KILL "$GW_PID"
        wait "$GW_PID" 2>/dev/null
        if cached gw1 "$SHA2"; then
            fail "download finished before the kill at $pct%"
        else
            kills=$((kills + 1))
        fi
    else
        fail "partial never reached $pct%"
    fi
done
check "gateway was killed mid-download three times" test "$kills" -eq 3
start_gateway gw1
if wait_until 120 cached gw1 "$SHA2"; then
    pass "download completed after three kill -9"
else
    fail "download never completed after the kills"
fi
check "resumed artifact is byte-identical" cmp "$TEST_TMP/a2.bin" "$TEST_TMP/gw1/cache/$SHA2"
got=$(received_bytes gw1)
limit=$((32 * MIB + kills * CHUNK))
echo "received $got bytes in total for $((32 * MIB)) (limit $limit)"
check "bytes taken in cover the whole artifact" test "$got" -ge $((32 * MIB))
check "bytes taken in exceed the size by at most one chunk per restart" test "$got" -le "$limit"
check "the first artifact stays cached" test -f "$TEST_TMP/gw1/cache/$SHA1"
CHUNK=65536

# --- the broker restarts mid-transfer ------------------------------------------
head -c $((32 * MIB)) /dev/urandom >"$TEST_TMP/a3.bin"
SHA3=$(sha_of "$TEST_TMP/a3.bin")
kill -TERM "$GW_PID"
wait "$GW_PID" 2>/dev/null
publish "$TEST_TMP/a3.bin" 3 >/dev/null || die "publish 3 failed"
start_gateway gw1 --chunk-size 16384
if wait_until 60 bash -c "[ \$(stat -c %s '$TEST_TMP/gw1/cache/partial/$SHA3.part' 2>/dev/null || echo 0) -ge $((8 * MIB)) ]"; then
    restart_mosquitto
    pass "broker restarted mid-transfer"
else
    fail "transfer never reached 8 MiB before the broker restart"
fi
if wait_until 180 cached gw1 "$SHA3"; then
    pass "transfer completed across a broker restart"
else
    fail "transfer did not complete after the broker restart"
fi
check "artifact after the broker restart is byte-identical" cmp "$TEST_TMP/a3.bin" "$TEST_TMP/gw1/cache/$SHA3"

# --- rejections keep the previous release -------------------------------------
current="$TEST_TMP/gw1/state/releases/firmware.env"
before=$(sha_of "$current")
"$CLOUD" keygen --out-dir "$TEST_TMP/otherkeys" >/dev/null
head -c 100000 /dev/urandom >"$TEST_TMP/evil.bin"
"$CLOUD" publish --broker "$BROKER" --fleet "$FLEET" --store "$STORE" \
    --key "$(ls "$TEST_TMP"/otherkeys/*.key)" --artifact "$TEST_TMP/evil.bin" --version 9.0.0 \
    --seq 99 --hw-model m1 >/dev/null 2>>"$TEST_TMP/publish.log"
if wait_until 20 log_has gw1 "unknown-key"; then
    pass "a manifest signed by an unknown key is rejected with its reason"
else
    fail "no unknown-key rejection logged"
fi
publish "$TEST_TMP/evil.bin" 1 >/dev/null
if wait_until 20 log_has gw1 "(downgrade)"; then
    pass "a downgrade is rejected with its reason"
else
    fail "no downgrade rejection logged"
fi
check "the held release is unchanged after the rejections" test "$(sha_of "$current")" = "$before"
check "the previous artifact is still cached" cmp "$TEST_TMP/a3.bin" "$TEST_TMP/gw1/cache/$SHA3"

# A chunk forged on the data topic fails its CRC and is dropped.
python3 - "$TEST_TMP/forged.bin" "$SHA3" <<'PY'
import struct, sys, zlib
sha = bytes.fromhex(sys.argv[2])
payload = b"x" * 1000
hdr = b"FRY1" + bytes([0, 0, 0, 0]) + sha + struct.pack(">QQII", 0, 32 << 20, len(payload),
                                                       zlib.crc32(payload) ^ 1)
open(sys.argv[1], "wb").write(hdr + payload)
PY
mosquitto_pub -p "$MOSQ_PORT" -t "ferry/v1/$FLEET/stream/data/gw1" -f "$TEST_TMP/forged.bin"
if wait_until 10 log_has gw1 "CRC mismatch"; then
    pass "a chunk with a bad CRC is dropped with a reason"
else
    fail "forged chunk not reported"
fi

# The cloud's copy is tampered with: serve hashes a store entry before its first
# chunk (answering "busy" while it does) and answers "busy" for a copy that
# does not match its name, so no
# tampered byte leaves the cloud; nothing enters the cache, the old release
# stays, and the gateway keeps asking until the copy is repaired. (The
# gateway's own whole-file hash, for bytes changed on the way, is test_gw_cache's
# wrong_bytes_never_get_a_final_name.)
kill -TERM "$GW_PID"
wait "$GW_PID" 2>/dev/null
head -c $((4 * MIB)) /dev/urandom >"$TEST_TMP/a4.bin"
SHA4=$(sha_of "$TEST_TMP/a4.bin")
publish "$TEST_TMP/a4.bin" 4 >/dev/null || die "publish 4 failed"
cp "$STORE/$SHA4" "$TEST_TMP/a4.good"
chmod u+w "$STORE/$SHA4"
printf '\xff' | dd of="$STORE/$SHA4" bs=1 seek=$((2 * MIB)) conv=notrunc status=none
start_gateway gw1
if wait_until 60 log_has gw1 "copy that does not verify of artifact ${SHA4:0:16}"; then
    pass "a tampered store entry is refused by serve's hash, and the gateway told busy"
else
    fail "tampered store entry not refused"
fi
check "the tampered artifact is not in the cache" test ! -e "$TEST_TMP/gw1/cache/$SHA4"
check "the previous artifact is still cached after the tampering" \
    cmp "$TEST_TMP/a3.bin" "$TEST_TMP/gw1/cache/$SHA3"
cp "$TEST_TMP/a4.good" "$STORE/$SHA4"
if wait_until 60 cached gw1 "$SHA4"; then
    pass "the artifact is fetched once the cloud's copy is repaired"
else
    fail "repaired artifact never cached"
fi

# --- two serve instances share the fleet; one dies mid-transfer ----------------
SERVE1=$SERVE_PID
start_serve s2
serve_subscribed || die "the second serve instance never subscribed"
head -c $((32 * MIB)) /dev/urandom >"$TEST_TMP/a5.bin"
SHA5=$(sha_of "$TEST_TMP/a5.bin")
kill -TERM "$GW_PID"
wait "$GW_PID" 2>/dev/null
publish "$TEST_TMP/a5.bin" 5 >/dev/null || die "publish 5 failed"
start_gateway gw1 --chunk-size 16384
if wait_until 60 bash -c "[ \$(stat -c %s '$TEST_TMP/gw1/cache/partial/$SHA5.part' 2>/dev/null || echo 0) -ge $((8 * MIB)) ]"; then
    kill -KILL "$SERVE1"
    wait "$SERVE1" 2>/dev/null
    pass "one of two serve instances killed mid-transfer"
else
    fail "transfer never reached 8 MiB with two serve instances"
fi
if wait_until 180 cached gw1 "$SHA5"; then
    pass "the surviving serve instance completed the transfer"
else
    fail "transfer stalled after one serve instance died"
fi
check "artifact served by two instances is byte-identical" cmp "$TEST_TMP/a5.bin" "$TEST_TMP/gw1/cache/$SHA5"
s1=$(grep -c "stream: gw1 ${SHA5:0:16}" "$TEST_TMP/serve-s1.log" || true)
s2=$(grep -c "stream: gw1 ${SHA5:0:16}" "$TEST_TMP/serve-s2.log" || true)
echo "requests for the last artifact answered: s1=$s1 s2=$s2"
check "the surviving instance answered requests for it" test "$s2" -gt 0

finish
