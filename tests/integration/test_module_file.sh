#!/usr/bin/env bash
# Update modules end to end with real processes (mosquitto, ferry-cloud
# serve, ferry-gateway, ferry-edge on the simulated bootloader) and the
# shipped modules of deploy/modules: a `file` release replaces a
# configuration file and is confirmed; one whose health check fails puts
# the previous file back; a `script` release runs, and one that exits 3
# fails saying so; a release for a module the node lacks fails with
# not-found. The image slots are never touched.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"

EDGE=$(ferry_bin ferry-edge)
NODE=n1
STATE="$TEST_TMP/$NODE"
COAP_PORT=$(free_port udp)
TARGET="$TEST_TMP/etc/app.conf"
mkdir -p "$TEST_TMP/etc"
printf 'colour=blue\n' >"$TARGET"

cat >"$TEST_TMP/health.sh" <<'EOF2'
#!/bin/sh
# 1.0.2's configuration is unhealthy; the check sees what the module put there.
[ "$FERRY_MODULE_NAME" = file ] && ! grep -q colour "$FERRY_ARG_PATH" && exit 1
[ "$FERRY_VERSION" = 1.0.2 ] && exit 1
exit 0
EOF2
chmod +x "$TEST_TMP/health.sh"

node_row() {
    "$CLOUD" status --db "$DB" --json 2>/dev/null | python3 -c '
import json, sys
for row in json.load(sys.stdin):
    if row.get("node") == sys.argv[1]:
        print(row.get("state", ""), row.get("version", ""), row.get("error", ""))
' "$NODE"
}

# shellcheck disable=SC2317 # called through wait_until
reported() {
    grep -q "status [0-9]*: $1 release [^ ]* version $2 .*${3:-}" "$TEST_TMP/edge.log"
}

start_serve s1
COAP_PORT=$COAP_PORT start_gateway gw1 --coap-addr 127.0.0.1
gateway_serving 30 || die "gateway not serving"
: >"$TEST_TMP/edge.log"
"$EDGE" --gateway "coap://127.0.0.1:$COAP_PORT" --id "$NODE" --hw-model m1 --state-dir "$STATE" \
    --trust "$PUB" --poll-interval 1 --request-timeout 5 --max-image-mb 1 \
    --health-cmd "$TEST_TMP/health.sh" --module-dir "$FERRY_SOURCE_DIR/deploy/modules" \
    --log-level debug >>"$TEST_TMP/edge.log" 2>&1 &
EDGE_PID=$!
kill_at_exit "$EDGE_PID"
wait_until 30 grep -q "status [0-9]*: idle" "$TEST_TMP/edge.log" || die "the node never went idle"

# module_release SEQ MODULE FILE [--module-arg ...]
module_release() {
    local seq=$1 module=$2 file=$3
    shift 3
    publish "$file" "$seq" --media-type "application/vnd.ferry.module.$module" "$@" >/dev/null ||
        die "publish $seq failed"
}

# --- a configuration file, replaced and confirmed ---------------------------------------
printf 'colour=green\nsize=large\n' >"$TEST_TMP/conf1"
module_release 1 file "$TEST_TMP/conf1" --module-arg "path=$TARGET" --module-arg mode=0600
if wait_until 60 reported success 1.0.1; then
    pass "the file module's release 1.0.1 was confirmed"
else
    fail "release 1.0.1 not confirmed: $(node_row)"
fi
check "the file holds the new configuration" cmp -s "$TEST_TMP/conf1" "$TARGET"
check "with the release's mode" test "$(stat -c %a "$TARGET")" = 600
check "and no copy is left beside it" test ! -e "$TARGET.ferry-prev"
check "the image slots were not touched" test ! -s "$STATE/slot-b.img"

# --- a failing health check puts the previous file back ----------------------------------
printf 'colour=red\n' >"$TEST_TMP/conf2"
module_release 2 file "$TEST_TMP/conf2" --module-arg "path=$TARGET"
if wait_until 60 reported rolled-back 1.0.2 "health check"; then
    pass "release 1.0.2 failed its health check and was rolled back"
else
    fail "release 1.0.2 not rolled back: $(node_row)"
fi
check "the file holds 1.0.1's configuration again" cmp -s "$TEST_TMP/conf1" "$TARGET"
check "... with its mode" test "$(stat -c %a "$TARGET")" = 600

# --- a maintenance script, and one that fails ---------------------------------------------
# shellcheck disable=SC2016 # expanded by the script, on the node
printf 'echo "ran by $FERRY_ARG_WHO" > "%s/script-ran"\n' "$TEST_TMP" >"$TEST_TMP/job.sh"
module_release 3 script "$TEST_TMP/job.sh" --module-arg who=operator
if wait_until 60 reported success 1.0.3; then
    pass "the script module's release 1.0.3 succeeded"
else
    fail "release 1.0.3 did not succeed: $(node_row)"
fi
check "the script ran, with its parameter" grep -q "ran by operator" "$TEST_TMP/script-ran"
printf 'exit 3\n' >"$TEST_TMP/bad.sh"
module_release 4 script "$TEST_TMP/bad.sh"
if wait_until 60 reported failed 1.0.4 "module script: install: exit 3"; then
    pass "a script that exits 3 fails its release, saying so"
else
    fail "release 1.0.4 did not fail as expected: $(node_row)"
fi

# --- a module this node does not have -------------------------------------------------------
module_release 5 docker "$TEST_TMP/conf1"
if wait_until 60 reported failed 1.0.5 "update module 'docker'"; then
    pass "a release for a missing module fails, naming it"
else
    fail "release 1.0.5 did not fail as expected: $(node_row)"
fi
check "... with error not-found" grep -q "version 1.0.5 .*error not-found" "$TEST_TMP/edge.log"

kill -TERM "$EDGE_PID"
wait "$EDGE_PID"
check "ferry-edge stops cleanly" test $? -eq 0
finish
