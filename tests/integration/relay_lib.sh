# shellcheck shell=bash
# shellcheck disable=SC2034 # DB and PUB are for the tests and scripts/lib/ferry.sh to read
# Shared set-up for the cloud -> gateway relay tests: a fleet "f1", a signing
# key, and helpers to start `ferry-cloud serve` and `ferry-gateway` against the
# broker lib.sh started (on scripts/lib/ferry.sh's primitives). Source after
# lib.sh and start_mosquitto.

CLOUD=$(ferry_bin ferry-cloud)
GATEWAY=$(ferry_bin ferry-gateway)
FLEET=f1
STORE="$TEST_TMP/store"
# The inventory: an SQLite file, or, run under tests/unit/pg_server.sh
# (FERRY_TEST_PG: a PostgreSQL server of its own), a database there.
if [ -n "${FERRY_TEST_PG:-}" ]; then
    createdb -h "$FERRY_TEST_PG" -U ferry inventory || die "createdb failed"
    DB="postgresql://ferry@/inventory?host=$FERRY_TEST_PG"
else
    DB="$TEST_TMP/inventory.db"
fi
BROKER=${BROKER:-mqtt://127.0.0.1:$MOSQ_PORT}
CHUNK=${CHUNK:-65536}

ferry_keygen "$TEST_TMP/keys" || die "keygen failed"
KEY=$FERRY_KEY
PUB=$FERRY_PUB

# wait_until SECS CMD...: polls CMD every 50 ms; fails after SECS.
wait_until() {
    FERRY_POLL=0.05 FERRY_WAIT_PID='' ferry_wait_until "$@"
}

# log_lines FILE: how many lines FILE holds now (0 if it does not exist yet).
log_lines() {
    ferry_log_lines "$1"
}

# wait_log SECS FILE FROM PATTERN: waits until a line of FILE after line FROM
# matches PATTERN (the logs are appended to across restarts).
wait_log() {
    wait_until "$1" ferry_log_has "$2" "$3" "$4"
}

# start_serve NAME [extra flags...]: sets SERVE_PID (log in $TEST_TMP/serve-NAME.log).
# serve_subscribed [SECS] waits until that instance's subscriptions are granted.
start_serve() {
    local name=$1
    shift
    SERVE_LOG="$TEST_TMP/serve-$name.log"
    SERVE_LOG_FROM=$(log_lines "$SERVE_LOG")
    ferry_start_serve "$SERVE_LOG" --log-level debug "$@"
    SERVE_PID=$FERRY_PID
    kill_at_exit "$SERVE_PID"
}

serve_subscribed() {
    wait_log "${1:-30}" "$SERVE_LOG" "$SERVE_LOG_FROM" "subscribed to all"
}

# start_gateway ID [extra flags...]: sets GW_PID; cache and state under $TEST_TMP/ID.
# gateway_serving [SECS] waits until that gateway answers CoAP.
start_gateway() {
    local id=$1
    shift
    GW_LOG="$TEST_TMP/$id.log"
    GW_LOG_FROM=$(log_lines "$GW_LOG")
    ferry_start_gateway "$id" "$TEST_TMP/$id" "$GW_LOG" \
        --coap-port "${COAP_PORT:-$(free_port udp)}" --chunk-size "$CHUNK" --log-level debug "$@"
    GW_PID=$FERRY_PID
    kill_at_exit "$GW_PID"
}

gateway_serving() {
    wait_log "${1:-30}" "$GW_LOG" "$GW_LOG_FROM" "coap: serving on"
}

# publish FILE SEQ [extra flags...]: signs and publishes; prints the release id.
publish() {
    local file=$1 seq=$2
    shift 2
    "$CLOUD" publish --broker "$BROKER" --fleet "$FLEET" --store "$STORE" --key "$KEY" \
        --artifact "$file" --version "1.0.$seq" --seq "$seq" --hw-model m1 "$@" \
        2>>"$TEST_TMP/publish.log"
}

sha_of() {
    sha256sum "$1" | cut -d' ' -f1
}

cached() {
    [ -f "$TEST_TMP/$1/cache/$2" ]
}

partial_bytes() {
    local f="$TEST_TMP/$1/cache/partial/$2.part"
    [ -f "$f" ] && stat -c %s "$f" || echo 0
}

log_has() {
    grep -qF -- "$2" "$TEST_TMP/$1.log"
}

# Sum of chunk payload bytes a gateway's logs say it took into its partials.
received_bytes() {
    # verdict=0 is GW_FETCH_NEXT: a chunk taken into the partial. Duplicates
    # and chunks ahead of the end, which a loaded machine's timeouts bring,
    # are dropped on arrival and say nothing about what a restart refetched.
    grep -ho 'fetch: received chunk offset=[0-9]* len=[0-9]* verdict=0' "$TEST_TMP/$1.log" |
        sed 's/.*len=//; s/ .*//' | awk '{s += $1} END {print s + 0}'
}

# send_batch GATEWAY RECORD...: one status batch on the gateway's topic, as
# if the gateway sent it (the records are JSON objects; ids count up).
BATCH=0
send_batch() {
    local gw=$1 recs
    shift
    BATCH=$((BATCH + 1))
    recs=$(
        IFS=,
        echo "$*"
    )
    mosquitto_pub -p "$MOSQ_PORT" -q 1 -t "ferry/v1/$FLEET/status/$gw" \
        -m "{\"format\":1,\"batch\":\"$gw:1:$BATCH\",\"records\":[$recs]}" ||
        die "mosquitto_pub failed"
}
