#!/usr/bin/env bash
# The artifact stream under a faulty or greedy peer, with real mosquitto,
# ferry-cloud serve and ferry-gateway processes:
#  - one of two serve instances sharing the fleet lacks the file and answers
#    error chunks: the gateway asks again at once instead of backing off for
#    up to 10 minutes, and the download completes;
#  - a gateway floods serve with stream requests: serve sends it no more than
#    its rate, and another gateway's download goes through meanwhile.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"

MIB=$((1024 * 1024))

# --- error chunks from an instance without the file ------------------------------------
head -c $((4 * MIB)) /dev/urandom >"$TEST_TMP/a1.bin"
SHA1=$(sha_of "$TEST_TMP/a1.bin")
start_serve full
serve_subscribed || die "serve (full) never subscribed"
mkdir -p "$TEST_TMP/empty-store"
"$CLOUD" serve --broker "$BROKER" --fleet "$FLEET" --store "$TEST_TMP/empty-store" \
    --db "$TEST_TMP/empty.db" --log-level debug >"$TEST_TMP/serve-empty.log" 2>&1 &
SERVE_EMPTY=$!
kill_at_exit "$SERVE_EMPTY"
wait_log 30 "$TEST_TMP/serve-empty.log" 0 "subscribed to all" ||
    die "serve (empty) never subscribed"
publish "$TEST_TMP/a1.bin" 1 >/dev/null || die "publish failed"
SECONDS=0
start_gateway gw1 --chunk-size 16384
if wait_until 45 cached gw1 "$SHA1"; then
    pass "the download completed while one instance answered errors (${SECONDS}s)"
else
    fail "the download did not complete in 45 s with one instance answering errors"
fi
check "the gateway was answered busy by the instance without the file" \
    grep -q "asking again shortly: busy: instance (unnamed) lacks artifact" "$TEST_TMP/gw1.log"
check "... and asked again instead of waiting out a back-off" \
    test "$(grep -c 'will try again in' "$TEST_TMP/gw1.log")" -eq 0
check "the artifact is byte-identical" cmp "$TEST_TMP/a1.bin" "$TEST_TMP/gw1/cache/$SHA1"
kill -TERM "$GW_PID"
wait "$GW_PID" 2>/dev/null
kill -TERM "$SERVE_EMPTY"
wait "$SERVE_EMPTY" 2>/dev/null

# --- a gateway flooding serve with requests ----------------------------------------------
# serve at 1 MiB/s per gateway (burst 2 MiB). "gw-evil" asks 200 times for the
# whole 4 MiB artifact in 2 MiB requests (400 MiB); no gateway listens on its
# data topic. Before, serve answered every request it could (about 40 MiB in
# 6 s here, bounded only by its MQTT client's buffer).
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null
start_serve fair --gateway-rate-mib 1
serve_subscribed || die "serve (fair) never subscribed"
head -c $((4 * MIB)) /dev/urandom >"$TEST_TMP/a2.bin"
SHA2=$(sha_of "$TEST_TMP/a2.bin")
publish "$TEST_TMP/a2.bin" 2 >/dev/null || die "publish 2 failed"
for i in $(seq 1 200); do
    printf '{"format":1,"sha256":"%s","offset":%d,"count":32,"chunk":65536}\n' \
        "$SHA1" $(((i % 2) * 2 * MIB))
done >"$TEST_TMP/flood.txt"
flood_start=$(log_lines "$SERVE_LOG")
mosquitto_pub -p "$MOSQ_PORT" -q 1 -t "ferry/v1/$FLEET/stream/req/gw-evil" -l <"$TEST_TMP/flood.txt" ||
    die "mosquitto_pub failed"
SECONDS=0
start_gateway gw2
if wait_until 60 cached gw2 "$SHA2"; then
    pass "another gateway's 4 MiB download completed during the flood (${SECONDS}s)"
else
    fail "the other gateway's download did not complete during the flood"
fi
sleep 2
elapsed=$((SECONDS + 1))
# Bytes serve sent each gateway since the flood began (its debug lines).
sent_to() {
    tail -n +"$((flood_start + 1))" "$SERVE_LOG" | grep -o "stream: $1 [0-9a-f]* offset [0-9]*: [0-9]* of [0-9]* chunks, [0-9]* bytes" |
        awk '{s += $(NF - 1)} END {print s + 0}'
}
evil=$(sent_to gw-evil)
limit=$(((elapsed + 2) * MIB))
echo "sent to gw-evil: $evil bytes in about ${elapsed}s (limit $limit); asked for $((200 * 2 * MIB))"
check "the flooding gateway got no more than its rate" test "$evil" -le "$limit"
check "... though it got some" test "$evil" -gt 0
check "the other gateway got its artifact whole" test "$(sent_to gw2)" -ge $((4 * MIB))

finish
