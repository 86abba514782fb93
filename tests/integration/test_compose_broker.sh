#!/usr/bin/env bash
# The compose demo's broker as docker/compose.yaml runs it: docker/mosquitto.conf
# with the PKI and ACL its `pki` service makes (certs/mkcerts.sh with the name
# "broker", certs/mkacl.sh), run here by a real mosquitto with the paths
# pointed at a test folder. It used to let anonymous clients in with no ACL:
# anyone on the compose network could publish a release or read any status.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for tool in openssl mosquitto_pub mosquitto_sub; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
PKI="$TEST_TMP/pki"
CONF="$FERRY_SOURCE_DIR/docker/mosquitto.conf"
COMPOSE="$FERRY_SOURCE_DIR/docker/compose.yaml"

# What the pki service runs, as it runs it.
bash "$FERRY_SOURCE_DIR/certs/mkcerts.sh" "$PKI" --fleet demo --gateway gw-1 \
    --server-name broker >/dev/null 2>&1 || die "mkcerts.sh failed"
bash "$FERRY_SOURCE_DIR/certs/mkacl.sh" --fleet demo --gateway gw-1 >"$PKI/acl" ||
    die "mkacl.sh failed"
check "the pki service makes the broker's certificate for the name 'broker'" \
    bash -c "openssl x509 -in '$PKI/server.crt' -noout -ext subjectAltName | grep -q 'DNS:broker'"
check "compose runs the same scripts with the same names" \
    bash -c "grep -q 'mkcerts.sh /pki --fleet demo --gateway gw-1' '$COMPOSE' &&
             grep -q -- '--server-name broker' '$COMPOSE' &&
             grep -q 'mkacl.sh --fleet demo --gateway gw-1 >/pki/acl' '$COMPOSE'"
check "every program in compose reaches the broker over TLS with a certificate" \
    bash -c "! grep -q 'mqtt://' '$COMPOSE' &&
             [ \$(grep -c 'mqtts://broker:8883' '$COMPOSE') -eq \$(grep -c -- '--cert-file /pki/' '$COMPOSE') ]"

# docker/mosquitto.conf with its paths in $PKI; lib.sh supplies the listener
# on a free loopback port (and `user root`, to read the test's files).
mapfile -t LINES < <(sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' -e '/^listener /d' \
    -e "s#/mosquitto/pki/#$PKI/#" "$CONF")
start_mosquitto "${LINES[@]}"

# as NAME TOOL ARGS...: mosquitto_pub/sub with NAME's certificate.
as() {
    local name=$1 tool=$2
    shift 2
    "$tool" -h localhost -p "$MOSQ_PORT" -V 5 --cafile "$PKI/ca.crt" --cert "$PKI/$name.crt" \
        --key "$PKI/$name.key" "$@"
}
T=ferry/v1/demo

expect_status 0 "the cloud identity connects and may publish a release" \
    as cloud mosquitto_pub -q 1 -r -t "$T/release/firmware" -m '{"release":"cloud"}'
as gw-gw-1 mosquitto_sub -q 1 -t "$T/release/firmware" -C 1 -W 5 >"$TEST_TMP/r1.out" 2>/dev/null
check "gw-1 reads the fleet's releases" grep -q '"release":"cloud"' "$TEST_TMP/r1.out"
as gw-gw-1 mosquitto_pub -q 1 -r -t "$T/release/firmware" -m '{"release":"forged"}' 2>/dev/null
as cloud mosquitto_sub -q 1 -t "$T/release/firmware" -C 1 -W 5 >"$TEST_TMP/r2.out" 2>/dev/null
check "a gateway cannot publish a release" grep -q '"release":"cloud"' "$TEST_TMP/r2.out"
as cloud mosquitto_pub -q 1 -t "$T/status/gw-2" -m 'x' 2>/dev/null
as gw-gw-1 mosquitto_pub -q 1 -r -t "$T/node/gw-2/n1" -m '{"forged":1}' 2>/dev/null
as cloud mosquitto_sub -q 1 -t "$T/node/+/+" -C 1 -W 3 >"$TEST_TMP/n.out" 2>/dev/null
check "gw-1 cannot write another gateway's node states" test ! -s "$TEST_TMP/n.out"

check "an anonymous client is refused" bash -c "! mosquitto_pub -h localhost -p $MOSQ_PORT -V 5 \
    --cafile '$PKI/ca.crt' -t $T/release/x -m x 2>/dev/null"
check "a plain MQTT client is refused" bash -c "! mosquitto_pub -h 127.0.0.1 -p $MOSQ_PORT -V 5 \
    -t $T/release/x -m x 2>/dev/null"

finish
