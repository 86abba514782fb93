#!/usr/bin/env bash
# ferry-edge keeps its identity in STATE/node.cfg: written from the flags on
# first start, read back when a later start (another version, a factory
# image) gives only --state-dir, and never allowed to override a flag. A
# damaged file stops a start without flags, and is left alone by one with.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
EDGE=$(ferry_bin ferry-edge)
CLOUD=$(ferry_bin ferry-cloud)
"$CLOUD" keygen --out-dir "$TEST_TMP/keys" >/dev/null || die "keygen failed"
PUB=$(ls "$TEST_TMP"/keys/release-*.pub)
STATE="$TEST_TMP/state"
PORT=$(free_port udp) # nothing listens there: the node only has to start

# run_edge SECS ARGS...: runs ferry-edge for SECS, then stops it with SIGTERM.
run_edge() {
    local secs=$1
    shift
    "$EDGE" "$@" >>"$TEST_TMP/edge.log" 2>&1 &
    local pid=$!
    sleep "$secs"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
}

run_edge 1 --gateway "coap://127.0.0.1:$PORT" --id node-7 --hw-model meter-v2 \
    --hw-revision B --state-dir "$STATE" --trust "$PUB"
check "the first start exits cleanly on SIGTERM" test $? -eq 0
check "node.cfg was written" test -f "$STATE/node.cfg"
check "node.cfg names the node" grep -qx "id=node-7" "$STATE/node.cfg"
check "node.cfg names the revision" grep -qx "hw_revision=B" "$STATE/node.cfg"
check "node.cfg names the default product line" grep -qx "product=firmware" "$STATE/node.cfg"
check "node.cfg ends with its CRC" bash -c "tail -1 '$STATE/node.cfg' | grep -qE '^crc32=[0-9a-f]{8}$'"

: >"$TEST_TMP/edge.log"
run_edge 1 --state-dir "$STATE"
check "a start with only --state-dir runs from node.cfg" test $? -eq 0
check "and it knows who it is" grep -q "node-7" "$TEST_TMP/edge.log"

run_edge 1 --state-dir "$STATE" --gateway "coap://127.0.0.1:$((PORT + 1))"
check "a flag still overrides the file" grep -qx "gateway=coap://127.0.0.1:$((PORT + 1))" \
    "$STATE/node.cfg"

printf 'x' >>"$STATE/node.cfg"
expect_status 2 "a damaged node.cfg is refused" "$EDGE" --state-dir "$STATE"
expect_output stderr "node.cfg" "the error names node.cfg"
expect_output stderr "restore the file" "... and says how to go on"
# With the node's flags it runs, and leaves the damaged file for a restore.
cp "$STATE/node.cfg" "$TEST_TMP/damaged.cfg"
: >"$TEST_TMP/edge.log"
run_edge 1 --state-dir "$STATE" --gateway "coap://127.0.0.1:$PORT" --id node-7 \
    --hw-model meter-v2 --trust "$PUB"
check "a damaged node.cfg with the node's flags runs" test $? -eq 0
check "it warns that node.cfg is damaged" grep -q "node.cfg is damaged" "$TEST_TMP/edge.log"
check "the damaged file is left as it was" cmp -s "$STATE/node.cfg" "$TEST_TMP/damaged.cfg"
expect_status 2 "without node.cfg or flags, --id is required" "$EDGE" \
    --state-dir "$TEST_TMP/empty"
expect_output stderr "--id" "the error names --id"
expect_status 2 "an ACK timeout libcoap would ignore is refused" "$EDGE" \
    --state-dir "$TEST_TMP/ack" --gateway "coap://127.0.0.1:$PORT" --id n --hw-model m \
    --trust "$PUB" --ack-timeout-ms 500
expect_output stderr "--ack-timeout-ms: must be 1000..60000, got 500" "the error names the flag and the range"
expect_status 2 "a product line that is no identifier is refused" "$EDGE" \
    --state-dir "$TEST_TMP/prod" --gateway "coap://127.0.0.1:$PORT" --id n --hw-model m \
    --trust "$PUB" --product "a b"
expect_output stderr "--product: 'a b' is not an identifier" "the error names --product"
finish
