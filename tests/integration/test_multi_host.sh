#!/usr/bin/env bash
# Two `ferry-cloud serve` instances as if on two hosts: each in a network
# namespace of its own, reaching PostgreSQL and mosquitto over a veth pair
# at the host side's address (no loopback, no Unix socket shared). One
# instance's artifact store is empty (its copy "has not arrived"), the
# other's is the store `publish` writes. A gateway and two nodes run on the
# host; a staged rollout in two waves:
#   - the store-less instance starts alone, takes the rollout's decisions
#     and answers the gateway's stream request "busy"; the gateway asks
#     again within seconds (PROTOCOL.md, Artifact stream);
#   - the instance with the store starts; a retry reaches it through the
#     shared subscription and wave 1 installs;
#   - that instance is killed with -9 mid-rollout; the other carries on:
#     wave 2 opens, installs from the gateway's cache, the rollout
#     completes;
#   - the rollout's log holds each decision once, and the inventory every
#     status record of each node once (seqs 1..last, none twice, none
#     missing).
# Needs root (ip netns); exits 77 (skipped) otherwise.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
    echo "SKIP: network namespaces need root and iproute2"
    exit 77
fi
PGBIN=/usr/lib/postgresql/15/bin
[ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb missing (Debian package postgresql-15; make deps)"

# --- two "hosts": namespaces with a veth pair each, names unique per run -----------------
SUF=$(printf '%04x%04x' $((RANDOM)) $(($$ % 65536)))
O2=$((RANDOM % 200 + 20))
O3=$((RANDOM % 250))
NET="10.$O2.$O3"
declare -A NS=([a]="ferry-mh-$SUF-a" [b]="ferry-mh-$SUF-b")
declare -A HOST_IP=([a]="$NET.1" [b]="$NET.5") NS_IP=([a]="$NET.2" [b]="$NET.6")
for h in a b; do
    at_exit "ip netns del ${NS[$h]} 2>/dev/null"
    at_exit "ip link del fh$SUF$h 2>/dev/null"
    if ! ip netns add "${NS[$h]}" 2>/dev/null; then
        echo "SKIP: ip netns add is not permitted here"
        exit 77
    fi
    ip link add "fh$SUF$h" type veth peer name "fn$SUF$h" netns "${NS[$h]}" ||
        die "veth pair for ${NS[$h]}"
    ip addr add "${HOST_IP[$h]}/30" dev "fh$SUF$h" || die "host address ${HOST_IP[$h]}"
    ip link set "fh$SUF$h" up || die "host side up"
    ip -n "${NS[$h]}" addr add "${NS_IP[$h]}/30" dev "fn$SUF$h" || die "ns address"
    ip -n "${NS[$h]}" link set "fn$SUF$h" up || die "ns side up"
    ip -n "${NS[$h]}" link set lo up || die "ns loopback up"
done

# --- mosquitto: loopback for the host's gateway, the host sides for the instances -------
MQ_NS_PORT=$(free_port tcp)
start_mosquitto "listener $MQ_NS_PORT ${HOST_IP[a]}" "listener $MQ_NS_PORT ${HOST_IP[b]}"
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/rollout_lib.sh"

# --- PostgreSQL on TCP at the host sides only -------------------------------------------
PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/ferry-mh-pg.XXXXXX")
chown postgres "$PGDIR"
PGPORT=$(free_port tcp)
at_exit "runuser -u postgres -- $PGBIN/pg_ctl -D $PGDIR/data -m immediate stop >/dev/null 2>&1; rm -rf $PGDIR"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U ferry -E UTF8 --locale=C \
    --no-sync >"$PGDIR/initdb.log" 2>&1 || die "initdb: $(cat "$PGDIR/initdb.log")"
echo "host all ferry $NET.0/29 trust" >>"$PGDIR/data/pg_hba.conf"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 \
    -o "-k $PGDIR -p $PGPORT -c listen_addresses='${HOST_IP[a]},${HOST_IP[b]}' -c fsync=off" \
    start >/dev/null || die "PostgreSQL did not start: $(cat "$PGDIR/server.log")"
createdb -h "${HOST_IP[a]}" -p "$PGPORT" -U ferry inventory || die "createdb failed"
declare -A DB_OF=([a]="postgresql://ferry@${HOST_IP[a]}:$PGPORT/inventory"
    [b]="postgresql://ferry@${HOST_IP[b]}:$PGPORT/inventory")
DB=${DB_OF[a]} # the host's own commands (publish, rollout, status) reach it too
psql_n() {
    psql -h "${HOST_IP[a]}" -p "$PGPORT" -U ferry -d inventory -tAc "$1"
}

declare -A STORE_OF=([a]="$STORE" [b]="$TEST_TMP/store-b") SERVE_OF=()
mkdir -p "$STORE" "${STORE_OF[b]}"
# start_serve_on HOST: serve in that namespace, with that host's store; its
# own log in $TEST_TMP/serve-HOST.log; waits for its subscriptions.
start_serve_on() {
    local h=$1 from
    from=$(log_lines "$TEST_TMP/serve-$h.log")
    ip netns exec "${NS[$h]}" "$CLOUD" serve --broker "mqtt://${HOST_IP[$h]}:$MQ_NS_PORT" \
        --fleet "$FLEET" --store "${STORE_OF[$h]}" --db "${DB_OF[$h]}" --instance "host-$h" \
        --log-level debug >>"$TEST_TMP/serve-$h.log" 2>&1 &
    SERVE_OF[$h]=$!
    kill_at_exit "$!"
    wait_log 30 "$TEST_TMP/serve-$h.log" "$from" "subscribed to all" ||
        die "serve on host $h did not subscribe: $(tail -5 "$TEST_TMP/serve-$h.log")"
}

T0=$SECONDS
WAVES=50,100
ID=1
start_serve_on b
check "namespace b has its own address, on its veth only" \
    bash -c "ip netns exec '${NS[b]}' ip -o addr show | grep -v ' lo ' | grep -q '${NS_IP[b]}/30'"

# Two nodes, one in each wave (names chosen by the wave formula, not by Ferry).
N0='' N1=''
for i in $(seq 1 40); do
    case $(wave_of "$ID" "mh$i" "$WAVES") in
    0) [ -n "$N0" ] || N0="mh$i" ;;
    1) [ -n "$N1" ] || N1="mh$i" ;;
    esac
    [ -n "$N0" ] && [ -n "$N1" ] && break
done
GWPORT=$(free_port udp)
start_gw_as gw1 "$GWPORT"
GW=$GW_PID
for n in "$N0" "$N1"; do
    NODE_GATEWAY[$n]="coap://127.0.0.1:$GWPORT"
    start_node "$n" m1
done
nodes_described() {
    [ "$(psql_n 'SELECT count(*) FROM node_info')" = 2 ]
}
if wait_until 30 nodes_described; then
    pass "both nodes described themselves, through serve on host b, into PostgreSQL"
else
    fail "the node descriptions did not reach the inventory"
fi

head -c $((192 * 1024)) /dev/urandom >"$TEST_TMP/v2.bin"
REL=$(release "$TEST_TMP/v2.bin" 2.0.0 2 --hw-model m1 --stage) || die "staging 2.0.0 failed"
SHA=$(sha256sum "$TEST_TMP/v2.bin" | cut -c1-16)
expect_status 0 "rollout create" "$CLOUD" rollout create --db "$DB" --store "$STORE" \
    --release "$REL" --waves "$WAVES" --success 100 --min-final 1 --soak 1s --reason "two hosts"

# --- host b lacks the artifact: busy, asked again --------------------------------------
if wait_until 30 grep -q "instance host-b lacks artifact $SHA" "$TEST_TMP/serve-b.log"; then
    pass "serve on host b, without the artifact, answers the gateway busy"
else
    fail "serve on host b never answered the stream request"
fi
if wait_until 10 grep -q "fetch: [0-9a-f]* at 0: asking again shortly: busy" "$TEST_TMP/gw1.log"; then
    pass "the gateway takes busy as a retry, not a failure"
else
    fail "the gateway did not retry after busy"
fi
check "the rollout started, decided on host b" test "$(rollout_get "$ID" 'r["state"]')" != created

# --- host a, with the store, serves a retry; wave 1 -------------------------------------
start_serve_on a
if wait_fleet 40 success 2.0.0 "$N0"; then
    pass "wave 1 installs once host a serves the artifact ($((SECONDS - T0)) s in)"
else
    fail "wave 1 did not install: $FLEET_OFF"
fi
check "host a streamed the artifact" grep -q "stream: gw1 $SHA offset 0" "$TEST_TMP/serve-a.log"
check "the gateway never gave the artifact up" \
    bash -c "! grep -q 'keeps answering errors' '$TEST_TMP/gw1.log'"

# --- kill -9 host a mid-rollout; host b carries on ---------------------------------------
kill -KILL "${SERVE_OF[a]}"
wait "${SERVE_OF[a]}" 2>/dev/null
expect_status 0 "status --rollout --wait: host b completes the rollout alone" \
    "$CLOUD" status --db "$DB" --rollout "$ID" --wait --timeout 60 --interval 500ms
expect_output stderr "rollout 1 completed: 2 of 2 targets succeeded" "its verdict says so"
actions=$(rollout_actions "$ID")
check "each decision once, by two instances on two hosts: $actions" \
    test "$actions" = "created started wave-opened completed"

# Every record once: seqs 1..last of each node, last from the node's own log.
records_once() {
    local n last got
    for n in "$N0" "$N1"; do
        last=$(node_last_seq "$n")
        got=$(psql_n "SELECT count(*) || '/' || count(DISTINCT seq) || '/' || min(seq) || '/'
                      || max(seq) FROM records WHERE node = '$n'")
        [ "$got" = "$last/$last/1/$last" ] || {
            RECORDS_OFF="$n: $got of $last"
            return 1
        }
    done
}
RECORDS_OFF=
if wait_until 20 records_once; then
    pass "every status record is in the inventory once ($N0: $(node_last_seq "$N0"), $N1: $(node_last_seq "$N1"))"
else
    fail "records: $RECORDS_OFF"
fi
check "both instances stored status batches" \
    bash -c "grep -q 'record(s) stored' '$TEST_TMP/serve-a.log' &&
             grep -q 'record(s) stored' '$TEST_TMP/serve-b.log'"

stop_all "${NODE_PID[@]}" "$GW" "${SERVE_OF[b]}"
check "every process stops cleanly${STOP_BAD:+ (not: $STOP_BAD)}" test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports
echo "test_multi_host: $((SECONDS - T0)) s from the first serve"
finish
