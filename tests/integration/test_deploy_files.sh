#!/usr/bin/env bash
# The deployment files stay true to the programs: every example configuration
# is accepted by its program (which then gets as far as connecting), the
# systemd units pass `systemd-analyze verify` and keep their sandbox,
# `cmake --install` lays everything out, and the compose file is valid.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLOUD=$(ferry_bin ferry-cloud)
GATEWAY=$(ferry_bin ferry-gateway)
EDGE=$(ferry_bin ferry-edge)
EXAMPLES="$FERRY_SOURCE_DIR/deploy/config"
UNITS="$FERRY_SOURCE_DIR/deploy/systemd"

"$CLOUD" keygen --out-dir "$TEST_TMP/keys" >/dev/null || die "keygen failed"
PUB=$(ls "$TEST_TMP"/keys/release-*.pub)
FERRY_CLOUD="$CLOUD" bash "$FERRY_SOURCE_DIR/certs/mkcerts.sh" "$TEST_TMP/pki" \
    --fleet plant-a --gateway gw-1 >/dev/null 2>&1 || die "mkcerts.sh failed"
PKI="$TEST_TMP/pki"
SYSTEM_STATE_BEFORE=$(ls -d /var/lib/ferry-* /var/cache/ferry-* 2>/dev/null)

# --- as written, each example parses and then fails on its first missing file ----------
expect_status 1 "ferry-gateway takes its example config" \
    "$GATEWAY" --config "$EXAMPLES/ferry-gateway.json.example" \
    --state-dir "$TEST_TMP/ex/gw-state" --cache-dir "$TEST_TMP/ex/gw-cache"
expect_output stderr "/etc/ferry/" "... and fails only on a file the example names"
# The state each example names lives under /var/lib; a test must not touch
# the machine's real state, so those folders point into TEST_TMP. What is
# checked is the parse and the first missing file the example names.
expect_status 1 "ferry-cloud serve takes its example config" \
    "$CLOUD" serve --config "$EXAMPLES/ferry-cloud-serve.json.example" \
    --store "$TEST_TMP/ex/store" --db "$TEST_TMP/ex/inventory.db"
expect_output stderr "/etc/ferry/tls/ca.crt" "... and fails only on a file the example names"
expect_status 1 "ferry-cloud publish takes its example config" \
    "$CLOUD" publish --config "$EXAMPLES/ferry-cloud-publish.json.example" \
    --store "$TEST_TMP/ex/store" --artifact "$PUB" --version 1.0.0 --seq 1
expect_output stderr "/etc/ferry/keys/release-signing.key" "... and fails only on the signing key"
expect_status 1 "ferry-cloud timestamp takes its example config" \
    "$CLOUD" timestamp --config "$EXAMPLES/ferry-cloud-timestamp.json.example"
expect_output stderr "/etc/ferry/keys/timestamp.key" "... and fails only on the timestamp key"
expect_status 1 "ferry-edge takes its example config" "$EDGE" --config "$EXAMPLES/ferry-edge.json.example" \
    --state-dir "$TEST_TMP/ex/edge-state"
expect_output stderr "/etc/ferry/release-keys.pub" "... and fails only on a file the example names"
expect_status 1 "ferry-edge takes its example config for a U-Boot board" \
    "$EDGE" --config "$EXAMPLES/ferry-edge-uboot.json.example" --state-dir "$TEST_TMP/ex/edge-uboot"
expect_output stderr "/etc/ferry/release-keys.pub" "... and fails only on a file the example names"

# Strictness is what makes the checks above mean something.
python3 - "$EXAMPLES/ferry-gateway.json.example" "$TEST_TMP/typo.json" <<'EOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["cache-quota"] = 5
json.dump(cfg, open(sys.argv[2], "w"))
EOF
expect_status 2 "an unknown key in a config file stops the program" "$GATEWAY" --config "$TEST_TMP/typo.json"
expect_output stderr "cache-quota" "... naming the key"

# --- with the files in place, each starts and tries to connect --------------------------
# runs_until_connecting LOG CMD...: CMD is still running after 2 s and its log
# shows it trying its peer; it is stopped then.
runs_until_connecting() {
    local log=$1 pid
    shift
    "$@" >"$log" 2>&1 &
    pid=$!
    sleep 2
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid"
        echo "exited early with $?: $(tail -3 "$log")"
        return 1
    fi
    kill -TERM "$pid"
    wait "$pid"
}

check "ferry-gateway runs from its example with local files" runs_until_connecting \
    "$TEST_TMP/gw.log" "$GATEWAY" --config "$EXAMPLES/ferry-gateway.json.example" \
    --trust "$PUB" --ca-file "$PKI/ca.crt" --cert-file "$PKI/gw-gw-1.crt" \
    --key-file "$PKI/gw-gw-1.key" --cache-dir "$TEST_TMP/gw/cache" \
    --state-dir "$TEST_TMP/gw/state" --coap-addr 127.0.0.1 --coap-port "$(free_port udp)"
check "... trying the example's broker" grep -q "cannot connect to" "$TEST_TMP/gw.log"

check "ferry-cloud serve runs from its example with local files" runs_until_connecting \
    "$TEST_TMP/serve.log" "$CLOUD" serve --config "$EXAMPLES/ferry-cloud-serve.json.example" \
    --ca-file "$PKI/ca.crt" --cert-file "$PKI/cloud.crt" --key-file "$PKI/cloud.key" \
    --store "$TEST_TMP/store" --db "$TEST_TMP/inventory.db"
check "... trying the example's broker" grep -qi "broker.example.net" "$TEST_TMP/serve.log"

check "ferry-edge runs from its example with local files" runs_until_connecting \
    "$TEST_TMP/edge.log" "$EDGE" --config "$EXAMPLES/ferry-edge.json.example" \
    --trust "$PUB" --state-dir "$TEST_TMP/edge" \
    --gateway "coap://127.0.0.1:$(free_port udp)" --request-timeout 1s

# --- systemd units ------------------------------------------------------------------------
for unit in ferry-gateway ferry-cloud-serve; do
    for directive in "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" \
        "PrivateTmp=yes" "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
        "Restart=on-failure" "User=ferry" "CapabilityBoundingSet=" "ReadWritePaths=/var/lib/"; do
        if ! grep -q "^$directive" "$UNITS/$unit.service"; then
            fail "$unit.service lacks $directive"
            continue 2
        fi
    done
    pass "$unit.service keeps its sandbox"
done
if command -v systemd-analyze >/dev/null; then
    # verify wants ExecStart's program to exist: point it at the built one.
    mkdir -p "$TEST_TMP/units"
    sed "s|^ExecStart=ferry-gateway|ExecStart=$GATEWAY|" "$UNITS/ferry-gateway.service" \
        >"$TEST_TMP/units/ferry-gateway.service"
    sed "s|^ExecStart=ferry-cloud|ExecStart=$CLOUD|" "$UNITS/ferry-cloud-serve.service" \
        >"$TEST_TMP/units/ferry-cloud-serve.service"
    sed "s|^ExecStart=ferry-cloud|ExecStart=$CLOUD|" "$UNITS/ferry-cloud-timestamp@.service" \
        >"$TEST_TMP/units/ferry-cloud-timestamp@.service"
    cp "$UNITS/ferry-cloud-timestamp@.timer" "$TEST_TMP/units/"
    check "systemd-analyze verify accepts both units" systemd-analyze verify \
        "$TEST_TMP/units/ferry-gateway.service" "$TEST_TMP/units/ferry-cloud-serve.service"
    check "... and the timestamp timer with its service" systemd-analyze verify \
        "$TEST_TMP/units/ferry-cloud-timestamp@firmware.timer"
else
    echo "SKIP: no systemd-analyze"
fi

# --- cmake --install ---------------------------------------------------------------------
INST="$TEST_TMP/prefix"
check "cmake --install into a prefix" cmake --install "$FERRY_BUILD_DIR" --prefix "$INST"
missing=""
for f in bin/ferry-cloud bin/ferry-gateway bin/ferry-edge \
    lib/systemd/system/ferry-gateway.service lib/systemd/system/ferry-cloud-serve.service \
    lib/systemd/system/ferry-cloud-timestamp@.service \
    lib/systemd/system/ferry-cloud-timestamp@.timer \
    share/doc/ferry/examples/ferry-cloud-timestamp.json.example \
    lib/sysusers.d/ferry.conf share/doc/ferry/examples/README.md \
    share/doc/ferry/examples/ferry-gateway.json.example \
    share/doc/ferry/examples/ferry-cloud-serve.json.example \
    share/doc/ferry/examples/ferry-cloud-publish.json.example \
    share/doc/ferry/examples/ferry-edge.json.example \
    share/doc/ferry/examples/ferry-edge-uboot.json.example share/doc/ferry/examples/uboot/boot.cmd \
    share/doc/ferry/examples/grub/ferry.cfg \
    share/doc/ferry/examples/custom/ferry-bootloader-example lib/ferry/modules/file \
    lib/ferry/modules/script; do
    [ -e "$INST/$f" ] || missing="$missing $f"
done
check "... binaries in bin/, units, sysusers and examples in place (missing:${missing:- none})" \
    test -z "$missing"
check "... the installed program runs" "$INST/bin/ferry-cloud" status --help

# --- compose ---------------------------------------------------------------------------------
COMPOSE=()
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
fi
if [ ${#COMPOSE[@]} -gt 0 ]; then
    check "the compose file is valid" "${COMPOSE[@]}" -f "$FERRY_SOURCE_DIR/docker/compose.yaml" config -q
    services=" $("${COMPOSE[@]}" -f "$FERRY_SOURCE_DIR/docker/compose.yaml" config --services | tr '\n' ' ')"
    absent=""
    for svc in keys broker cloud gateway node-1 node-2 node-3 node-busy node-unhealthy node-sensor; do
        [[ "$services" == *" $svc "* ]] || absent="$absent $svc"
    done
    check "it has the broker, cloud, gateway and the demo's six nodes (absent:${absent:- none})" \
        test -z "$absent"
else
    echo "SKIP: neither 'docker compose' nor docker-compose"
fi

check "no example run made state under the machine's /var/lib or /var/cache" \
    test "$(ls -d /var/lib/ferry-* /var/cache/ferry-* 2>/dev/null)" = "$SYSTEM_STATE_BEFORE"

finish
