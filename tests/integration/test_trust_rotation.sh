#!/usr/bin/env bash
# Moving from a keyring to root documents, then rotating the release key and
# revoking the old one, with real processes: mosquitto, ferry-cloud serve,
# ferry-gateway and ferry-edge. The gateway and the node start from a plain
# keyring: release key K1's PEM (root version 0).
#
#   1. The node installs a release signed by K1. Root version 1 (root key R1,
#      release key K1, timestamp key T1), signed by R1 and K1, is published:
#      the gateway and the node take it over the air.
#   2. Root version 2 (root key R2, release key K2, K1 revoked), signed by R1
#      and R2, is published; the gateway takes it and the node learns it
#      through the gateway's ferry/meta resource.
#   3. A release signed by the revoked K1 is refused by the gateway; and a
#      rogue gateway that only knows root version 1 serves one to the node,
#      which refuses it itself (revoked-key) and downloads nothing.
#   4. A release signed by K2 installs.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/trust_lib.sh"

IMAGE_BYTES=$((32 * 1024))
K1_KID=$(basename "$PUB" .pub)
K1_KID=${K1_KID#release-}
new_key k2 release
K2_KEY=$NEW_KEY
K2_PUB=$NEW_PUB
new_key r2 root
R2_KEY=$NEW_KEY
R2_PUB=$NEW_PUB
KEYRING=$PUB # the gateway's and the node's --trust: root version 0
for v in 1 2 3; do
    head -c "$IMAGE_BYTES" /dev/urandom >"$TEST_TMP/r$v.bin"
done

start_serve s1
SERVE1=$SERVE_PID
start_gw_as gw1 "$COAP_PORT"
GW1=$GW_PID
wait_until 30 grep -q "coap: serving on" "$TEST_TMP/gw1.log" || die "the gateway did not start"

# --- 1. a release signed by K1, then the move to root version 1 -------------------------
release "$TEST_TMP/r1.bin" 1.0.1 1 --hw-model m1 >/dev/null || die "publishing 1.0.1 failed"
start_node n1 m1
if wait_fleet 60 success 1.0.1 n1; then
    pass "the node installs 1.0.1, signed by K1, trusting the keyring"
else
    fail "the node did not install 1.0.1: $FLEET_OFF"
fi
expect_status 0 "root version 1, signed by R1 and by K1, chains from the keyring and is published" \
    "$CLOUD" root publish --broker "$BROKER" --fleet "$FLEET" --root "$ROOT1" --trust "$KEYRING"
if wait_until 30 grep -q "meta: root version 1 taken" "$TEST_TMP/gw1.log" &&
    wait_until 30 grep -q "trust: root version 1 taken" "$NODES_DIR/n1.log"; then
    pass "the gateway and then the node move from the keyring to root version 1"
else
    fail "the keyring-only gateway or node did not take root version 1"
fi

# --- 2. root version 2: K2 in, K1 revoked ---------------------------------------------
ROOT2="$TEST_TMP/root-2.json"
make_root "$ROOT2" 2 "$R2_KEY" --root-key "$R2_PUB" --release-key "$K2_PUB" \
    --timestamp-key "$T1_PUB" --revoke "$K1_KID"
expect_status 1 "a root signed only by its own new key does not chain" \
    "$CLOUD" root publish --broker "$BROKER" --fleet "$FLEET" --root "$ROOT2" --trust "$ROOT1"
expect_output stderr "current root's keys" "... and says which signatures are missing"
"$CLOUD" root sign --key "$R1_KEY" --in "$ROOT2" --out "$ROOT2" >/dev/null || die "root sign failed"
expect_status 0 "signed by R1 too, root version 2 chains and is published" \
    "$CLOUD" root publish --broker "$BROKER" --fleet "$FLEET" --root "$ROOT2" --trust "$ROOT1"
if wait_until 30 grep -q "meta: root version 2 taken" "$TEST_TMP/gw1.log"; then
    pass "the gateway takes root version 2"
else
    fail "the gateway did not take root version 2"
fi
if wait_until 30 grep -q "trust: root version 2 taken" "$NODES_DIR/n1.log"; then
    pass "the node learns root version 2 through the gateway"
else
    fail "the node did not learn root version 2"
fi

# --- 3. releases signed by the revoked key ----------------------------------------------
"$CLOUD" sign --key "$KEY" --artifact "$TEST_TMP/r2.bin" --version 1.0.2 --seq 2 --hw-model m1 \
    --out "$TEST_TMP/k1.env" >/dev/null || die "sign failed"
expect_status 1 "ferry-cloud verify refuses K1's release under root version 2" \
    "$CLOUD" verify --trust "$ROOT2" --manifest "$TEST_TMP/k1.env" --artifact "$TEST_TMP/r2.bin"
expect_output stderr "revoked" "... as revoked"
release "$TEST_TMP/r2.bin" 1.0.2 2 --hw-model m1 --timestamp-key "$T1_KEY" >/dev/null ||
    die "publishing 1.0.2 failed"
if wait_until 30 grep -q "release: rejected on product 'firmware'.*revoked-key" "$TEST_TMP/gw1.log"
then
    pass "the gateway refuses a release signed by the revoked key"
else
    fail "the gateway did not refuse the release of the revoked key"
fi

# A rogue gateway of its own fleet, holding only root version 1, offers it.
ROGUE_PORT=$(free_port udp)
FLEET=rogue STORE="$TEST_TMP/store-rogue" DB="$TEST_TMP/rogue.db" start_serve rogue
ROGUE_SERVE=$SERVE_PID
PUB=$ROOT1 FLEET=rogue start_gw_as rogue "$ROGUE_PORT"
ROGUE_GW=$GW_PID
wait_until 30 grep -q "coap: serving on" "$TEST_TMP/rogue.log" || die "the rogue did not start"
ROGUE_REL=$(FLEET=rogue STORE="$TEST_TMP/store-rogue" release "$TEST_TMP/r2.bin" 1.0.2 2 \
    --hw-model m1 --timestamp-key "$T1_KEY") || die "publishing to the rogue fleet failed"
wait_until 30 cached rogue "$(sha_of "$TEST_TMP/r2.bin")" || die "the rogue never cached 1.0.2"
stop_node n1
NODE_GATEWAY[n1]="coap://127.0.0.1:$ROGUE_PORT"
start_node n1 m1
# Nothing in a manifest is read before its signature holds: the record names
# the key, not the release.
if wait_until 30 grep -q "rejected .*error revoked-key: .*key $K1_KID, which is revoked" \
    "$NODES_DIR/n1.log"; then
    pass "the node, knowing root version 2, refuses the release of the revoked key itself"
else
    fail "the node did not refuse $ROGUE_REL as revoked-key"
fi
check "... and downloads nothing of it" \
    test "$(grep -c "downloading release $ROGUE_REL" "$NODES_DIR/n1.log")" -eq 0
check "... and still runs 1.0.1" test "$(slot_holding n1 "$TEST_TMP/r1.bin")" = slot-b.img

# --- 4. a release signed by the new key ---------------------------------------------------
stop_node n1
NODE_GATEWAY[n1]="coap://127.0.0.1:$COAP_PORT"
start_node n1 m1
# The rogue fleet's timestamp came from another store with the same
# timestamp key, and versions are unix seconds at least: within the same
# second the next one would not be newer, and the node would rightly wait.
sleep 1
KEY=$K2_KEY release "$TEST_TMP/r3.bin" 1.0.3 3 --hw-model m1 --timestamp-key "$T1_KEY" \
    >/dev/null || die "publishing 1.0.3 failed"
if wait_fleet 60 success 1.0.3 n1; then
    pass "a release signed by K2 installs"
else
    fail "the node did not install 1.0.3: $FLEET_OFF"
fi

stop_all "${NODE_PID[@]}" "$GW1" "$SERVE1" "$ROGUE_GW" "$ROGUE_SERVE"
check "every process stops cleanly${STOP_BAD:+ (not: $STOP_BAD)}" test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
