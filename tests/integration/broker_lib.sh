# shellcheck shell=bash
# shellcheck disable=SC2034 # EJ_*, BRIDGE_* are for the tests to read
# Brokers other than lib.sh's single mosquitto, for the broker tests
# (test_broker_*.sh). Source after lib.sh.
#
#   start_ejabberd USER PASSWORD
#       ejabberd 23.01 (Debian's) with mod_mqtt on a free 127.0.0.1 port,
#       everything (config, Mnesia spool, log) under $TEST_TMP/ejabberd. It
#       runs as an Erlang node that is not distributed (nonode@nohost): no
#       epmd, no node name to clash with another test's. USER is registered
#       (in the host "localhost") before the port opens to anyone else.
#       Sets EJ_PORT, EJ_PID, EJ_LOG.
#   start_bridged_pair
#       two mosquitto brokers, the second bridged to the first in both
#       directions for ferry/# (see below). Sets BRIDGE_A_PORT/PID,
#       BRIDGE_B_PORT/PID, BRIDGE_B_LOG; MOSQ_* name the second.
#   bridge_up SECS  until a message published on each broker reaches the other.
#   password_file NAME PASSWORD   a file of mode 600 holding PASSWORD; prints its path.
#   relay_drained GATEWAY   the gateway's latest batch was acknowledged and
#       nothing is left in its outbox: every record it took is stored.

password_file() {
    local f="$TEST_TMP/$1.pass"
    (
        umask 077
        printf '%s\n' "$2" >"$f"
    )
    echo "$f"
}

relay_drained() {
    grep -E 'relay: batch [^ ]+ (sent|acknowledged)' "$TEST_TMP/$1.log" | tail -n 1 |
        grep -q 'acknowledged, .* 0 pending'
}

start_ejabberd() {
    local user=$1 password=$2 dir="$TEST_TMP/ejabberd" attempt
    mkdir -p "$dir"
    EJ_LOG="$dir/ejabberd.log"
    for attempt in 1 2 3; do
        EJ_PORT=$(free_port tcp) || die "no free port"
        # mod_mqtt: Ferry's topics are up to 7 levels deep (default 8 is
        # enough, 16 leaves room); a chunk message is about 64 KiB.
        cat >"$dir/ejabberd.yml" <<EOF
hosts: ["localhost"]
loglevel: info
log_rotate_count: 0
certfiles: []
auth_method: internal
auth_password_format: plain
listen:
  -
    port: $EJ_PORT
    ip: "127.0.0.1"
    module: mod_mqtt
    max_payload_size: 1048576
modules:
  mod_mqtt:
    max_topic_depth: 16
EOF
        # -s ejabberd returns once the listeners are up; the -eval after it
        # registers the user, then says so. Nothing can reach the broker
        # before a client tries the user, which the test does only after.
        EJABBERD_CONFIG_PATH="$dir/ejabberd.yml" EJABBERD_LOG_PATH="$EJ_LOG" \
            ERL_LIBS=/usr/lib/x86_64-linux-gnu ERL_CRASH_DUMP="$dir/erl_crash.dump" \
            ERL_CRASH_DUMP_BYTES=0 \
            erl -noinput -mnesia dir "\"$dir/spool-$attempt\"" -s ejabberd \
            -eval "io:format(\"registered ~p~n\", [ejabberd_auth:try_register(<<\"$user\">>, <<\"localhost\">>, <<\"$password\">>)])" \
            >"$dir/erl.out" 2>&1 &
        EJ_PID=$!
        kill_at_exit "$EJ_PID"
        if ferry_wait_until 60 grep -q '^registered' "$dir/erl.out" &&
            grep -q '^registered ok' "$dir/erl.out" &&
            ss -Hltnp "sport = :$EJ_PORT" 2>/dev/null | grep -q "pid=$EJ_PID,"; then
            return 0
        fi
        echo "ejabberd did not start on port $EJ_PORT (attempt $attempt)" >&2
        kill "$EJ_PID" 2>/dev/null
        wait "$EJ_PID" 2>/dev/null
    done
    cat "$dir/erl.out" >&2
    die "ejabberd would not start; config: $dir/ejabberd.yml"
}

# The bridge is one connection, from the second broker to the first, with
# direction `both` for ferry/#: what a client publishes on either broker
# reaches subscribers on both. One connection and try_private (the first
# broker knows its peer is a bridge and sends it nothing it got from it) is
# what keeps a message from looping. What it guarantees: QoS 1 end to end
# while both brokers run (a message the bridge has not yet passed on is lost
# with the broker that held it: Ferry's senders resend what is not
# acknowledged); retained messages are kept by both brokers (a subscriber may
# get a retained document from each: Ferry's retained documents are
# idempotent); shared groups are each broker's own (serve instances split
# gateways by partitions: --partition).
start_bridged_pair() {
    start_mosquitto
    BRIDGE_A_PORT=$MOSQ_PORT
    BRIDGE_A_PID=$MOSQ_PID
    start_mosquitto "connection ferry-bridge" "address 127.0.0.1:$BRIDGE_A_PORT" \
        "topic ferry/# both 1" "cleansession true" "try_private true" \
        "restart_timeout 1" "bridge_protocol_version mqttv311"
    BRIDGE_B_PORT=$MOSQ_PORT
    BRIDGE_B_PID=$MOSQ_PID
    BRIDGE_B_LOG=$MOSQ_LOG
}

# One probe each way: a retained message published on one broker, read on
# the other once the bridge has passed it on (then cleared).
_bridge_probe() {
    local from=$1 to=$2 topic="ferry/probe/$RANDOM$RANDOM" got
    mosquitto_pub -p "$from" -t "$topic" -m ok -q 1 -r 2>/dev/null || return 1
    got=$(mosquitto_sub -p "$to" -t "$topic" -C 1 -W 2 2>/dev/null)
    mosquitto_pub -p "$from" -t "$topic" -n -q 1 -r 2>/dev/null
    [ "$got" = ok ]
}

bridge_up() {
    ferry_wait_until "$1" _bridge_probe "$BRIDGE_A_PORT" "$BRIDGE_B_PORT" &&
        ferry_wait_until "$1" _bridge_probe "$BRIDGE_B_PORT" "$BRIDGE_A_PORT"
}

