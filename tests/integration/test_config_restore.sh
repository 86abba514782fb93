#!/usr/bin/env bash
# Configuration kept upstream, with real processes: two nodes report their
# properties files (STATE/node.cfg) through the gateway; the cloud keeps
# each node's last healthy copy. Node n1's file is then damaged: ferry-edge
# runs on its flags, leaves the file alone and reports nothing. The
# operator restores it with `ferry-cloud restore-config`: a release for the
# `file` module meant for n1 alone, which n1 installs (the file is whole
# again, its own keys included) and n2 passes over. A start with only
# --state-dir then runs from the restored file.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"

EDGE=$(ferry_bin ferry-edge)
COAP_PORT=$(free_port udp)
MODULES="$FERRY_SOURCE_DIR/deploy/modules"

# make_nodecfg NODE: the node's properties file as a provisioning tool would
# write it, with a key of the site's own; CRC-32 (IEEE) over what precedes it.
make_nodecfg() {
    mkdir -p "$TEST_TMP/$1"
    python3 - "$TEST_TMP/$1/node.cfg" "$1" "coap://127.0.0.1:$COAP_PORT" "$PUB" <<'PY'
import sys, zlib
path, node, gateway, trust = sys.argv[1:]
body = ("format=1\nid=%s\nhw_model=m1\ngateway=%s\ntrust=%s\nsite=plant-7\nline=4\n"
        % (node, gateway, trust)).encode()
open(path, "wb").write(body + b"crc32=%08x\n" % zlib.crc32(body))
PY
}

# start_node NODE [FLAGS...]: ferry-edge on its state folder; log in NODE.log.
start_node() {
    local node=$1
    shift
    "$EDGE" --state-dir "$TEST_TMP/$node" --poll-interval 1 --request-timeout 5 \
        --max-image-mb 1 --module-dir "$MODULES" --log-level debug "$@" \
        >>"$TEST_TMP/$node.log" 2>&1 &
    eval "PID_${node}=$!"
    kill_at_exit "$!"
}

stop_node() {
    local pid
    eval "pid=\$PID_$1"
    kill -TERM "$pid"
    wait "$pid"
}

kept() {
    "$CLOUD" config --db "$DB" --node "$1" >"$TEST_TMP/kept-$1" 2>/dev/null
}

start_serve s1
COAP_PORT=$COAP_PORT start_gateway gw1 --coap-addr 127.0.0.1
gateway_serving 30 || die "gateway not serving"
for n in n1 n2; do
    make_nodecfg "$n"
    start_node "$n"
done

# --- each node's properties reach the cloud -------------------------------------------
for n in n1 n2; do
    if wait_until 30 kept "$n"; then
        pass "the cloud keeps $n's properties file"
    else
        fail "no properties file kept for $n"
    fi
done
# What each node runs with (ferry-edge wrote back the merged file at its start).
for n in n1 n2; do
    cp "$TEST_TMP/$n/node.cfg" "$TEST_TMP/$n.original"
done
check "n1's copy is its file, its own keys included" \
    bash -c "tail -n +2 '$TEST_TMP/kept-n1' | cmp -s - '$TEST_TMP/n1.original'"
check "... which has the site's key" grep -qx "site=plant-7" "$TEST_TMP/kept-n1"
check "the copy says where the file lives" grep -q "from $TEST_TMP/n1/node.cfg" "$TEST_TMP/kept-n1"
check "the gateway relayed the reports" log_has gw1 "config: node n1 reported its properties"

# --- n1's file is damaged: ferry-edge runs on its flags and reports nothing ----------------
stop_node n1
printf 'garbage' >>"$TEST_TMP/n1/node.cfg"
cp "$TEST_TMP/n1/node.cfg" "$TEST_TMP/n1.damaged"
: >"$TEST_TMP/n1.log"
start_node n1 --id n1 --hw-model m1 --gateway "coap://127.0.0.1:$COAP_PORT" --trust "$PUB"
wait_until 30 grep -q "status [0-9]*: idle" "$TEST_TMP/n1.log" || die "n1 did not start"
check "n1 says its node.cfg is damaged" grep -q "node.cfg is damaged" "$TEST_TMP/n1.log"
check "n1 sends no report of a damaged file" grep -q "configuration report: .* not sent" \
    "$TEST_TMP/n1.log"
kept n1
check "the cloud still keeps n1's good copy" \
    bash -c "tail -n +2 '$TEST_TMP/kept-n1' | cmp -s - '$TEST_TMP/n1.original'"

# --- the operator restores it --------------------------------------------------------------
run "$CLOUD" restore-config --db "$DB" --node n1 --broker "$BROKER" --fleet "$FLEET" \
    --store "$STORE" --key "$KEY" --version 1.0.9 --seq 9 --hw-model m1
if [ "$RUN_RC" -eq 0 ]; then
    pass "ferry-cloud restore-config published n1's properties"
else
    fail "restore-config failed: $(cat "$RUN_STDERR")"
fi
# shellcheck disable=SC2317 # called through wait_until
restored() {
    grep -q "status [0-9]*: success release [^ ]* version 1.0.9" "$TEST_TMP/n1.log"
}
if wait_until 60 restored; then
    pass "n1 installed the restore through the file module and confirmed it"
else
    fail "n1 did not take the restore"
fi
check "n1's node.cfg is whole again, byte for byte" cmp -s "$TEST_TMP/n1/node.cfg" \
    "$TEST_TMP/n1.original"
check "n1 reports its restored file" grep -q "configuration report: stored upstream" \
    "$TEST_TMP/n1.log"
sleep 2 # n2 has polled the release by now
check "n2 passed over the release meant for n1" bash -c "! grep -q 'version 1.0.9' '$TEST_TMP/n2.log'"
check "n2's file is untouched" cmp -s "$TEST_TMP/n2/node.cfg" "$TEST_TMP/n2.original"

# --- and the restored file is what n1 runs from next --------------------------------------
stop_node n1
: >"$TEST_TMP/n1.log"
start_node n1
if wait_until 30 grep -q "node n1, model m1, gateway coap://127.0.0.1:$COAP_PORT" "$TEST_TMP/n1.log"; then
    pass "n1 starts with only --state-dir, from the restored file"
else
    fail "n1 did not start from the restored file"
fi
check "no damage reported this time" bash -c "! grep -q 'node.cfg is damaged' '$TEST_TMP/n1.log'"
check "its site's own keys are still there" grep -qx "site=plant-7" "$TEST_TMP/n1/node.cfg"
stop_node n1
check "n1 stops cleanly" test $? -eq 0
finish
