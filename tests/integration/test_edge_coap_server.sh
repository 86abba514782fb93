#!/usr/bin/env bash
# ferry-edge against libcoap's stock coap-server (libcoap3-bin) instead of
# ferry-gateway: any server that answers Block2 requests will do (issue 12,
# point 5). The release's signed envelope and its artifact are PUT into
# coap-server's dynamic resources at the paths Ferry uses; the node learns
# of the release, downloads it with its window of non-confirmable block
# requests, verifies and installs it. Then a second node does the same
# through ferry-udp-proxy with loss, duplication and reordering both ways.
# coap-server knows nothing of status records: the nodes' own logs are the
# witness here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in coap-server-notls coap-client-notls; do
    command -v "$tool" >/dev/null || die "$tool (libcoap3-bin) is needed"
done
CLOUD=$(ferry_bin ferry-cloud)
EDGE=$(ferry_bin ferry-edge)
PROXY=$(ferry_bin ferry-udp-proxy)


"$CLOUD" keygen --out-dir "$TEST_TMP/keys" >/dev/null || die "keygen failed"
head -c $((200 * 1024 + 77)) /dev/urandom >"$TEST_TMP/art.bin"
SHA=$(sha256sum "$TEST_TMP/art.bin" | cut -d' ' -f1)
"$CLOUD" sign --key "$TEST_TMP"/keys/release-*.key --artifact "$TEST_TMP/art.bin" \
    --version 1.0.1 --seq 1 --hw-model m1 --out "$TEST_TMP/env.json" >/dev/null 2>&1 ||
    die "signing failed"

# coap-server on a free port, logging every PDU (-v 7).
for attempt in 1 2 3 4 5; do
    CS_PORT=$(free_port udp)
    coap-server-notls -A 127.0.0.1 -p "$CS_PORT" -d 4 -v 7 >"$TEST_TMP/server.log" 2>&1 &
    CS_PID=$!
    if ferry_wait_until 5 coap-client-notls -B 1 "coap://127.0.0.1:$CS_PORT/.well-known/core" \
        >/dev/null 2>&1; then
        kill_at_exit "$CS_PID"
        break
    fi
    kill "$CS_PID" 2>/dev/null
    wait "$CS_PID" 2>/dev/null
    [ "$attempt" -lt 5 ] || die "coap-server-notls would not start"
done
SERVER="coap://127.0.0.1:$CS_PORT"
expect_status 0 "the envelope is PUT into coap-server at ferry/manifest/firmware" \
    coap-client-notls -B 10 -m put -b 1024 -f "$TEST_TMP/env.json" "$SERVER/ferry/manifest/firmware"
expect_status 0 "the artifact is PUT into coap-server at ferry/artifact/<sha256>" \
    coap-client-notls -B 30 -m put -b 1024 -f "$TEST_TMP/art.bin" "$SERVER/ferry/artifact/$SHA"

# start_node NAME GATEWAY: a ferry-edge whose state and log are under $TEST_TMP.
start_node() {
    "$EDGE" --gateway "$2" --id "$1" --hw-model m1 --state-dir "$TEST_TMP/$1" \
        --trust "$TEST_TMP"/keys/release-*.pub --poll-interval 2 --request-timeout 5 \
        --max-image-mb 1 --log-level debug >"$TEST_TMP/$1.log" 2>&1 &
    NODE_PID=$!
    kill_at_exit "$NODE_PID"
}

succeeded() {
    grep -qs "status [0-9]*: success release firmware-1.0.1-1" "$TEST_TMP/$1.log"
}

# --- straight to coap-server ------------------------------------------------------
start_node n1 "$SERVER"
if ferry_wait_until 30 succeeded n1; then
    pass "n1 downloads, verifies and installs the release from a stock coap-server"
else
    fail "n1 did not succeed: $(grep 'status [0-9]*:' "$TEST_TMP/n1.log" | tail -3)"
fi
check "n1's slot B holds the artifact, byte for byte" cmp "$TEST_TMP/art.bin" "$TEST_TMP/n1/slot-b.img"
check "its block requests were non-confirmable GETs with an explicit Block2" \
    grep -q "t:NON c:GET .*Uri-Path:$SHA.*Block2:[0-9]*/_/1024" "$TEST_TMP/server.log"
check "it named itself with n=n1 on its manifest and artifact requests" bash -c "
    grep -q 't:CON c:GET .*Observe:0.*Uri-Path:firmware, Uri-Query:n=n1' '$TEST_TMP/server.log' &&
    grep -q 'Uri-Path:$SHA, Uri-Query:n=n1, Block2' '$TEST_TMP/server.log'"
# On a clean link a block is asked for again only when a timer fires before
# its answer comes (100 ms at the least): a loaded machine may cause a few.
blocks=$(grep -c "t:NON c:GET .*Uri-Path:$SHA" "$TEST_TMP/server.log")
want=$(((200 * 1024 + 77 + 1023) / 1024))
echo "block requests seen by coap-server: $blocks for $want blocks"
check "hardly any block was asked for twice on a clean link" test "$blocks" -le $((want * 11 / 10))
kill -TERM "$NODE_PID"
wait "$NODE_PID"
check "n1 stops cleanly on SIGTERM" test $? -eq 0

# --- through a lossy link -------------------------------------------------------------
PROXY_PORT=$(free_port udp)
"$PROXY" --listen "$PROXY_PORT" --target "127.0.0.1:$CS_PORT" --loss 10 --dup 5 --reorder 5 \
    --delay-ms 20 --jitter-ms 10 --seed 4711 >"$TEST_TMP/proxy.out" 2>"$TEST_TMP/proxy.log" &
PROXY_PID=$!
kill_at_exit "$PROXY_PID"
ferry_wait_until 10 bash -c "ss -Hlun 'sport = :$PROXY_PORT' | grep -q ." ||
    die "ferry-udp-proxy did not bind port $PROXY_PORT"
t0=$SECONDS
start_node n2 "coap://127.0.0.1:$PROXY_PORT"
if ferry_wait_until 60 succeeded n2; then
    pass "n2 installs the release from coap-server through 10 % loss, duplicates and reordering ($((SECONDS - t0)) s)"
else
    fail "n2 did not succeed: $(grep 'status [0-9]*:' "$TEST_TMP/n2.log" | tail -3)"
fi
check "n2's slot B holds the artifact, byte for byte" cmp "$TEST_TMP/art.bin" "$TEST_TMP/n2/slot-b.img"
kill -TERM "$NODE_PID"
wait "$NODE_PID"
check "n2 stops cleanly on SIGTERM" test $? -eq 0
kill -TERM "$PROXY_PID"
wait "$PROXY_PID"
sed 's/^/    proxy: /' "$TEST_TMP/proxy.out"
check "the proxy lost datagrams both ways" bash -c "
    grep -q '^up: .* lost [1-9]' '$TEST_TMP/proxy.out' &&
    grep -q '^down: .* lost [1-9]' '$TEST_TMP/proxy.out'"
check "no sanitizer report in the nodes' logs" bash -c "
    ! grep -q 'runtime error\|AddressSanitizer\|LeakSanitizer' '$TEST_TMP'/n1.log '$TEST_TMP'/n2.log"

finish
