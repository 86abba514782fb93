#!/usr/bin/env bash
# Cloud -> gateway over MQTT with TLS and client certificates, through a real
# mosquitto configured from certs/mosquitto-tls.conf.example with the ACL of
# certs/mkacl.sh: a release arrives intact; the broker keeps each identity to
# its own topics; and a gateway facing a bad CA, a wrong host name, an
# expired certificate of its own or a broker holding a client certificate
# is refused on every attempt, keeps trying and does not crash.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for tool in openssl mosquitto_pub mosquitto_sub; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

MIB=$((1024 * 1024))
PKI="$TEST_TMP/pki"
REFUSAL_SECS=15

# gw1 relays; gw2..gw4 each meet one fault below. expired-client is in the ACL
# too, so that only TLS can be what turns its expired certificate away.
FERRY_CLOUD=$(ferry_bin ferry-cloud) "$FERRY_SOURCE_DIR/certs/mkcerts.sh" "$PKI" --fleet f1 \
    --gateway gw1 --gateway gw2 --gateway gw3 --gateway gw4 --expired >/dev/null ||
    die "mkcerts failed"
"$FERRY_SOURCE_DIR/certs/mkacl.sh" --fleet f1 --gateway gw1 --gateway gw2 --gateway gw3 \
    --gateway gw4 --gateway expired-client >"$PKI/acl" || die "mkacl failed"

# The example config's lines with its paths pointed at $PKI, the server
# certificate and key replaced by $1 and $2; lib.sh supplies the listener.
tls_conf() {
    sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' -e '/^listener /d' \
        -e "s#certs/dev/server.crt#$1#" -e "s#certs/dev/server.key#$2#" \
        -e "s#certs/dev/#$PKI/#" "$FERRY_SOURCE_DIR/certs/mosquitto-tls.conf.example"
}
mapfile -t CONF < <(tls_conf "$PKI/server.crt" "$PKI/server.key")
start_mosquitto "${CONF[@]}"
PORT=$MOSQ_PORT
LOG=$MOSQ_LOG
BROKER="mqtts://localhost:$PORT"
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"

# ferry_tls NAME: ferry's flags for NAME.crt/.key in $PKI, in FLAGS.
ferry_tls() {
    FLAGS=(--ca-file "$PKI/ca.crt" --cert-file "$PKI/$1.crt" --key-file "$PKI/$1.key")
}
# mq_tls NAME: mosquitto_pub/sub flags for the main broker as NAME.crt/.key,
# in MQ.
mq_tls() {
    MQ=(-h localhost -p "$PORT" -V 5 --cafile "$PKI/ca.crt" --cert "$PKI/$1.crt"
        --key "$PKI/$1.key")
}
# mq NAME TOOL ARGS...: runs mosquitto_pub or mosquitto_sub as NAME.
mq() {
    mq_tls "$1"
    local tool=$2
    shift 2
    "$tool" "${MQ[@]}" "$@"
}
# shellcheck disable=SC2317 # called through wait_until
has() {
    grep -qF -- "$2" "$1"
}
# watch NAME ID FILTER...: a mosquitto_sub as NAME.crt printing "topic payload"
# lines into $TEST_TMP/ID.out; returns once the broker granted it. Sets SUB_PID.
watch() {
    local name=$1 id=$2 filter args=()
    shift 2
    for filter in "$@"; do
        args+=(-t "$filter")
    done
    mq_tls "$name"
    mosquitto_sub "${MQ[@]}" -i "$id" -v "${args[@]}" >"$TEST_TMP/$id.out" 2>&1 &
    SUB_PID=$!
    kill_at_exit "$SUB_PID"
    wait_until 10 has "$LOG" "Sending SUBACK to $id" || die "subscriber $id never subscribed"
}
unwatch() {
    kill "$SUB_PID" 2>/dev/null
    wait "$SUB_PID" 2>/dev/null
}

# --- only certificates from our CA get in --------------------------------------
expect_status 0 "a cloud certificate connects" \
    mq cloud mosquitto_pub -q 1 -t ferry/v1/f1/release/probe -m x
run mosquitto_pub -h localhost -p "$PORT" -V 5 --cafile "$PKI/ca.crt" -q 1 \
    -t ferry/v1/f1/release/probe -m x
check "a client without a certificate is refused" test "$RUN_RC" -ne 0

mkdir -p "$TEST_TMP/rogue"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=rogue CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign" \
    -keyout "$TEST_TMP/rogue/ca.key" -out "$TEST_TMP/rogue/ca.crt" 2>/dev/null ||
    die "cannot make the rogue CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=ferry-cloud" \
    -keyout "$TEST_TMP/rogue/cloud.key" -out "$TEST_TMP/rogue/cloud.csr" 2>/dev/null ||
    die "cannot make the rogue client key"
openssl x509 -req -in "$TEST_TMP/rogue/cloud.csr" -CA "$TEST_TMP/rogue/ca.crt" \
    -CAkey "$TEST_TMP/rogue/ca.key" -set_serial 7 -days 2 \
    -extfile <(echo "extendedKeyUsage=clientAuth") -out "$TEST_TMP/rogue/cloud.crt" \
    2>/dev/null || die "cannot make the rogue client certificate"
run mosquitto_pub -h localhost -p "$PORT" -V 5 --cafile "$PKI/ca.crt" \
    --cert "$TEST_TMP/rogue/cloud.crt" --key "$TEST_TMP/rogue/cloud.key" -q 1 \
    -t ferry/v1/f1/release/probe -m x
check "a certificate named ferry-cloud from another CA is refused" test "$RUN_RC" -ne 0

# --- a 4 MiB release over mqtts:// ------------------------------------------------
head -c $((4 * MIB)) /dev/urandom >"$TEST_TMP/a1.bin"
SHA1=$(sha_of "$TEST_TMP/a1.bin")
ferry_tls cloud
start_serve s1 "${FLAGS[@]}"
publish "$TEST_TMP/a1.bin" 1 --product firmware "${FLAGS[@]}" >/dev/null ||
    die "publish over TLS failed: $(tail -3 "$TEST_TMP/publish.log")"
ferry_tls gw-gw1
start_gateway gw1 "${FLAGS[@]}"
GW1_PID=$GW_PID
if wait_until 120 cached gw1 "$SHA1"; then
    pass "the gateway fetched a 4 MiB release over TLS"
else
    fail "gateway never cached $SHA1 over TLS"
fi
check "the artifact fetched over TLS is byte-identical" \
    cmp "$TEST_TMP/a1.bin" "$TEST_TMP/gw1/cache/$SHA1"
check "the broker knows the gateway by its certificate's CN" has "$LOG" "u'gw1')"
check "the broker knows the cloud by its certificate's CN" has "$LOG" "u'ferry-cloud')"

# --- a gateway cannot replace the retained release --------------------------------
RELEASE=ferry/v1/f1/release/firmware
mq cloud mosquitto_sub -t "$RELEASE" -C 1 -W 10 -N >"$TEST_TMP/genuine.env" ||
    die "no retained release to read"
check "the genuine release is retained" test -s "$TEST_TMP/genuine.env"
# QoS 1, so the broker has handled it once mosquitto_pub returns; its exit
# status says nothing (0 even when refused), what the broker keeps does.
mq gw-gw1 mosquitto_pub -q 1 -r -t "$RELEASE" -m forged-release 2>/dev/null
mq cloud mosquitto_sub -t "$RELEASE" -C 1 -W 10 -N >"$TEST_TMP/after.env"
check "the retained release is still the genuine one after gw1 tried to replace it" \
    cmp "$TEST_TMP/genuine.env" "$TEST_TMP/after.env"
check "the broker logged gw1's release publish as denied" \
    grep -q "Denied PUBLISH .*'$RELEASE'" "$LOG"

# --- a gateway writes only its own status, whatever user name it claims ----------
watch cloud status-watch 'ferry/v1/f1/status/+'
# Published in this order on one broker: once the last arrives, the others
# would have arrived before it.
mq gw-gw1 mosquitto_pub -q 1 -t ferry/v1/f1/status/gw2 -m forged-by-gw1 2>/dev/null
mq gw-gw1 mosquitto_pub -u gw2 -q 1 -t ferry/v1/f1/status/gw2 -m claimed-gw2 2>/dev/null
mq gw-gw1 mosquitto_pub -q 1 -t ferry/v1/f1/status/gw1 -m own-by-gw1
if wait_until 10 has "$TEST_TMP/status-watch.out" "ferry/v1/f1/status/gw1 own-by-gw1"; then
    pass "gw1's status on its own topic arrives"
else
    fail "gw1's own status never arrived"
fi
unwatch
check "gw1 cannot write gw2's status topic" \
    bash -c "! grep -q forged-by-gw1 '$TEST_TMP/status-watch.out'"
check "gw1 cannot write gw2's status by claiming user name gw2" \
    bash -c "! grep -q claimed-gw2 '$TEST_TMP/status-watch.out'"

# --- a gateway reads only its own stream, even subscribed to everything -------------
# Mosquitto 2.0 grants any subscription and checks 'read' per message.
watch gw-gw1 data-watch 'ferry/v1/f1/#'
mq cloud mosquitto_pub -q 1 -t ferry/v1/f1/stream/data/gw2 -m data-for-gw2
mq cloud mosquitto_pub -q 1 -t ferry/v1/f1/stream/data/gw1 -m data-for-gw1
if wait_until 10 has "$TEST_TMP/data-watch.out" "ferry/v1/f1/stream/data/gw1 data-for-gw1"; then
    pass "gw1 reads its own stream data"
else
    fail "gw1 never saw its own stream data"
fi
unwatch
check "gw1 does not read gw2's stream data" \
    bash -c "! grep -q data-for-gw2 '$TEST_TMP/data-watch.out'"

# --- refusals, on every attempt ------------------------------------------------------
# Each faulty gateway gets a broker of its own, so that broker's log shows
# what happened to that gateway's attempts. (a) uses the main broker: only
# it aborts handshakes there.

# refusal_broker CERT KEY: a broker like the main one with another server
# certificate; sets R_PORT and R_LOG.
refusal_broker() {
    mapfile -t CONF < <(tls_conf "$1" "$2")
    start_mosquitto "${CONF[@]}"
    R_PORT=$MOSQ_PORT
    R_LOG=$MOSQ_LOG
}

# (b) the broker's certificate is from our CA but names another host.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=broker.invalid" \
    -keyout "$PKI/other-name.key" -out "$PKI/other-name.csr" 2>/dev/null ||
    die "cannot make the wrong-name key"
openssl x509 -req -in "$PKI/other-name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -set_serial 9 -days 2 -out "$PKI/other-name.crt" 2>/dev/null \
    -extfile <(printf 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:broker.invalid\n') ||
    die "cannot make the wrong-name server certificate"
refusal_broker "$PKI/other-name.crt" "$PKI/other-name.key"
NAME_PORT=$R_PORT
NAME_LOG=$R_LOG
run mosquitto_pub -h localhost -p "$NAME_PORT" -V 5 --cafile "$PKI/ca.crt" --insecure \
    --cert "$PKI/gw-gw3.crt" --key "$PKI/gw-gw3.key" -q 1 -t ferry/v1/f1/status/gw3 -m x
check "(b) the wrong-name broker admits gw3 when host names are not checked" \
    test "$RUN_RC" -eq 0 -a "$(grep -c "New client connected.*u'gw3')" "$NAME_LOG")" -eq 1
# (c) a sound broker; the gateway's own certificate has expired.
refusal_broker "$PKI/server.crt" "$PKI/server.key"
EXPIRED_PORT=$R_PORT
EXPIRED_LOG=$R_LOG
# (d) the broker presents a gateway's certificate (clientAuth only), as one
# holding a stolen gateway key would.
refusal_broker "$PKI/gw-gw2.crt" "$PKI/gw-gw2.key"
STOLEN_PORT=$R_PORT
STOLEN_LOG=$R_LOG

# gateway_at PORT ID [flags...]: start_gateway ID against the broker on PORT.
declare -A REFUSED_PID
gateway_at() {
    local port=$1 id=$2
    shift 2
    BROKER="mqtts://localhost:$port" start_gateway "$id" "$@"
    REFUSED_PID[$id]=$GW_PID
}
gateway_at "$PORT" gw2 --ca-file "$TEST_TMP/rogue/ca.crt" --cert-file "$PKI/gw-gw2.crt" \
    --key-file "$PKI/gw-gw2.key"
ferry_tls gw-gw3
gateway_at "$NAME_PORT" gw3 "${FLAGS[@]}"
ferry_tls expired
gateway_at "$EXPIRED_PORT" expired-client "${FLAGS[@]}"
ferry_tls gw-gw4
gateway_at "$STOLEN_PORT" gw4 "${FLAGS[@]}"
sleep "$REFUSAL_SECS"

# refused ID WHAT BROKER_LOG BROKER_SAYS [GATEWAY_SAYS]: ID's gateway tried at
# least 3 times, never connected and still runs; its broker logged
# BROKER_SAYS for at least 3 attempts, and so did the gateway GATEWAY_SAYS
# when given. Then the gateway must stop cleanly.
refused() {
    local id=$1 what=$2 blog=$3 bsays=$4 gsays=${5:-} log="$TEST_TMP/$1.log"
    local pid=${REFUSED_PID[$1]} attempts
    attempts=$(grep -c "uplink: cannot connect to " "$log")
    echo "$what: $attempts attempts; the gateway said:"
    grep -o "uplink: cannot connect to .*" "$log" | sort | uniq -c | sed 's/^/    /'
    check "$what: at least 3 attempts in ${REFUSAL_SECS}s" test "$attempts" -ge 3
    check "$what: the broker logged '$bsays' at least 3 times" \
        test "$(grep -cF -- "$bsays" "$blog")" -ge 3
    if [ -n "$gsays" ]; then
        check "$what: the gateway logged '$gsays' at least 3 times" \
            test "$(grep -cF -- "$gsays" "$log")" -ge 3
    else
        echo "    note: the gateway's reason is the one a closed port gives; Paho passes no TLS detail"
    fi
    check "$what: never connected" bash -c "! grep -q 'uplink: connected' '$log'"
    check "$what: the gateway is still running" kill -0 "$pid"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    local rc=$?
    check "$what: the gateway stops cleanly (exit $rc)" test "$rc" -eq 0
    check "$what: no sanitizer report" bash -c "! grep -q Sanitizer '$log'"
}
refused gw2 "(a) broker certificate from a CA the gateway does not trust" "$LOG" \
    "tlsv1 alert unknown ca" "tls: certificate verify failed"
# The handshake completes, then Paho checks the name and hangs up unheard.
refused gw3 "(b) broker certificate for another host name" "$NAME_LOG" \
    "Client <unknown> closed its connection."
refused expired-client "(c) expired client certificate" "$EXPIRED_LOG" \
    "certificate verify failed"
refused gw4 "(d) broker presenting a client-only certificate" "$STOLEN_LOG" \
    "sslv3 alert unsupported certificate" "tls: certificate verify failed"
check "(b) nobody but the control got in to the wrong-name broker" \
    test "$(grep -c "New client connected" "$NAME_LOG")" -eq 1
check "(c) nobody got in to the expired certificate's broker" \
    bash -c "! grep -q 'New client connected' '$EXPIRED_LOG'"

check "gw1 stayed connected through all of it" \
    bash -c "! grep -qE 'uplink: (lost |cannot connect to )' '$TEST_TMP/gw1.log'"

# --- the connected ends stop cleanly out of a TLS session ---------------------------
# stops NAME PID LOG: SIGTERM, then exit status 0 and no sanitizer report.
stops() {
    local name=$1 pid=$2 log=$3 rc
    check "$name is still running" kill -0 "$pid"
    kill -TERM "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    check "$name stops cleanly out of its TLS session (exit $rc)" test "$rc" -eq 0
    check "$name's log has no sanitizer report" bash -c "! grep -q Sanitizer '$log'"
}
stops gw1 "$GW1_PID" "$TEST_TMP/gw1.log"
stops "ferry-cloud serve" "$SERVE_PID" "$TEST_TMP/serve-s1.log"

finish
