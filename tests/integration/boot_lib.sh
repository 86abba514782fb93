# shellcheck shell=bash
# A node on a real bootloader environment, played by tests/tools/
# ferry-boot-harness (the boot script's algorithm, through fw_setenv or
# grub-editenv), with both slots on loop devices when this machine allows
# them (plain files otherwise). Source after lib.sh, start_mosquitto and
# relay_lib.sh, with BOOTLOADER=uboot or grub set. The scenarios:
#   a healthy update, confirmed in the bootloader too;
#   a failing health check: rolled back, and rebooted into the old slot;
#   an image that never reaches user space: the harness will not start
#     ferry-edge from it until its attempts run out, and the bootloader
#     falls back by itself;
#   ferry-edge refusing a bootloader that contradicts the mounted root.
# After each, the real tools read the environment back.

EDGE=$(ferry_bin ferry-edge)
HARNESS="$FERRY_SOURCE_DIR/tests/tools/ferry-boot-harness"
NODE=n1
STATE="$TEST_TMP/$NODE"
COAP_PORT=$(free_port udp)
SLOT_SIZE=$((2 * 1024 * 1024))
IMG_SIZE=65536

make_slots() {
    local i f dev
    for i in a b; do
        f="$TEST_TMP/disk-$i.img"
        head -c "$SLOT_SIZE" /dev/zero >"$f"
        dev=$(losetup -f --show "$f" 2>/dev/null) || dev=
        if [ -n "$dev" ]; then
            at_exit "losetup -d $dev"
            eval "SLOT_${i^^}=$dev"
        else
            eval "SLOT_${i^^}=$f"
        fi
    done
    echo "slots: A=$SLOT_A B=$SLOT_B"
    # The factory image in A.
    head -c "$IMG_SIZE" /dev/urandom >"$TEST_TMP/factory.bin"
    dd if="$TEST_TMP/factory.bin" of="$SLOT_A" conv=notrunc,fsync status=none
}

# The environment as the board's image makes it: slot A, no B yet.
make_env() {
    if [ "$BOOTLOADER" = uboot ]; then
        ENV_FILE="$TEST_TMP/fw_env.config"
        head -c 16384 /dev/zero >"$TEST_TMP/uboot-env0"
        head -c 16384 /dev/zero >"$TEST_TMP/uboot-env1"
        printf '%s 0x0 0x4000\n%s 0x0 0x4000\n' "$TEST_TMP/uboot-env0" "$TEST_TMP/uboot-env1" \
            >"$ENV_FILE"
        printf 'bootcmd=run ferry_boot\n' >"$TEST_TMP/uboot-default"
        fw_setenv -c "$ENV_FILE" -f "$TEST_TMP/uboot-default" BOOT_ORDER A 2>/dev/null ||
            die "fw_setenv cannot make the environment"
        fw_setenv -c "$ENV_FILE" BOOT_A_LEFT 3 && fw_setenv -c "$ENV_FILE" BOOT_B_LEFT 0
        ENV_FLAGS=(--bootloader uboot --uboot-env-config "$ENV_FILE")
        HARNESS_ENV=(--uboot "$ENV_FILE")
    else
        ENV_FILE="$TEST_TMP/grubenv"
        if ! grub-editenv "$ENV_FILE" create ||
            ! grub-editenv "$ENV_FILE" set saved_entry=ferry-A BOOT_ORDER=A BOOT_A_LEFT=3 BOOT_B_LEFT=0; then
            die "grub-editenv cannot make the block"
        fi
        ENV_FLAGS=(--bootloader grub --grub-env "$ENV_FILE")
        HARNESS_ENV=(--grub "$ENV_FILE")
    fi
}

# env_var NAME: the variable as the bootloader's own tool reads it.
env_var() {
    if [ "$BOOTLOADER" = uboot ]; then
        fw_printenv -c "$ENV_FILE" -n "$1" 2>/dev/null
    else
        grub-editenv "$ENV_FILE" list | sed -n "s/^$1=//p"
    fi
}

env_is() {
    local want="$1 $2 $3" got
    got="$(env_var BOOT_ORDER | tr ' ' _) $(env_var BOOT_A_LEFT) $(env_var BOOT_B_LEFT)"
    if [ "$got" = "$want" ]; then
        pass "the $BOOTLOADER environment reads '$want' (order, A left, B left)"
    else
        fail "the $BOOTLOADER environment reads '$got', expected '$want'"
    fi
}

cat >"$TEST_TMP/health.sh" <<'HEALTH'
#!/bin/sh
[ "$FERRY_VERSION" = 1.0.2 ] && exit 1
exit 0
HEALTH
chmod +x "$TEST_TMP/health.sh"

start_node() {
    "$HARNESS" "${HARNESS_ENV[@]}" --slot-a "$SLOT_A" --slot-b "$SLOT_B" \
        --work "$TEST_TMP/harness" -- \
        "$EDGE" --gateway "coap://127.0.0.1:$COAP_PORT" --id "$NODE" --hw-model m1 \
        --state-dir "$STATE" --trust "$PUB" --poll-interval 1 --request-timeout 5 \
        --max-image-mb 1 --block-size 1024 --health-cmd "$TEST_TMP/health.sh" \
        --slot-a "$SLOT_A" --slot-b "$SLOT_B" "${ENV_FLAGS[@]}" --log-level debug \
        >>"$TEST_TMP/harness.log" 2>>"$TEST_TMP/edge.log" &
    NODE_PID=$!
    kill_at_exit "$NODE_PID"
}

node_row() {
    "$CLOUD" status --db "$DB" --json 2>/dev/null | python3 -c '
import json, sys
for row in json.load(sys.stdin):
    if row.get("node") == sys.argv[1]:
        print(row.get("state", ""), row.get("version", ""))
' "$NODE"
}

node_is() {
    [ "$(node_row)" = "$1 $2" ]
}

# reported STATE VERSION [TEXT]: ferry-edge journaled such a record (a final
# state followed at once by idle is gone from the inventory's latest row).
reported() {
    grep -q "status [0-9]*: $1 release [^ ]* version $2 .*${3:-}" "$TEST_TMP/edge.log"
}

harness_has() {
    grep -qF -- "$1" "$TEST_TMP/harness.log"
}

# release SEQ [PREFIX]: an image of IMG_SIZE bytes (starting with PREFIX).
release() {
    local seq=$1 f="$TEST_TMP/r$1.bin" prefix=${2:-}
    { printf '%s' "$prefix"; head -c $((IMG_SIZE - ${#prefix})) /dev/urandom; } >"$f"
    publish "$f" "$seq" >/dev/null || die "publish $seq failed"
}

slot_holds() {
    cmp -s -n "$IMG_SIZE" "$2" "$1"
}

run_boot_scenarios() {
    make_slots
    make_env
    start_serve s1
    COAP_PORT=$COAP_PORT start_gateway gw1 --coap-addr 127.0.0.1
    gateway_serving 30 || die "gateway not serving"

    # --- the running root and the bootloader disagree: refused at start -------
    echo "ferry.slot=B" >"$TEST_TMP/cmdline-wrong"
    if [ -b "$SLOT_A" ]; then
        dev=$(stat -L -c '%t %T' "$SLOT_A")
        printf '26 1 %d:%d / / rw - ext4 %s rw\n' "0x${dev% *}" "0x${dev#* }" "$SLOT_A" \
            >"$TEST_TMP/mountinfo-a"
        expect_status 1 "ferry-edge refuses to start when / is slot A but the bootloader says B" \
            "$EDGE" --gateway "coap://127.0.0.1:$COAP_PORT" --id "$NODE" --hw-model m1 \
            --state-dir "$TEST_TMP/refused" --trust "$PUB" --slot-a "$SLOT_A" --slot-b "$SLOT_B" \
            "${ENV_FLAGS[@]}" --reboot-cmd true --kernel-cmdline "$TEST_TMP/cmdline-wrong" \
            --mountinfo "$TEST_TMP/mountinfo-a"
        expect_output stderr "is mounted at /" "the refusal names the mounted slot"
    else
        echo "SKIP: no loop devices, the mounted-root check needs a block device"
    fi

    start_node
    if wait_until 30 node_is idle ""; then
        pass "the node started from slot A under the $BOOTLOADER harness"
    else
        fail "no idle record: $(node_row)"
    fi
    env_is A 3 0

    # --- a healthy update ----------------------------------------------------------
    release 1
    if wait_until 60 node_is success 1.0.1; then
        pass "release 1.0.1 installed, booted on trial and confirmed"
    else
        fail "release 1.0.1 not confirmed: $(node_row)"
    fi
    check "the harness rebooted into slot B" harness_has "boot 2: slot B"
    check "slot B holds release 1.0.1" slot_holds "$SLOT_B" "$TEST_TMP/r1.bin"
    # Confirmed: B good and first, A (the factory image) the fallback.
    env_is B_A 3 3

    # --- a failing health check: rolled back, rebooted into B ------------------------
    release 2
    if wait_until 60 reported rolled-back 1.0.2 "health check"; then
        pass "release 1.0.2 failed its health check and rolled back"
    else
        fail "release 1.0.2 did not roll back: $(node_row)"
    fi
    if wait_until 30 harness_has "boot 4: slot B"; then
        pass "the harness booted A on trial, then B again"
    else
        fail "no reboot back into slot B"
    fi
    check "slot B still holds release 1.0.1" slot_holds "$SLOT_B" "$TEST_TMP/r1.bin"
    # Idle comes from the process started after the reboot, once its boot
    # step renewed B's attempts.
    if wait_until 30 node_is idle 1.0.1; then
        pass "the node runs 1.0.1 again"
    else
        fail "the node does not report 1.0.1: $(node_row)"
    fi
    env_is B 0 3

    # --- an image that never reaches user space ------------------------------------------
    release 3 FERRY-TEST-NEVER-BOOTS
    if wait_until 60 reported rolled-back 1.0.3 "the bootloader fell back to slot B"; then
        pass "release 1.0.3, which never boots, rolled back: the bootloader fell back by itself"
    else
        fail "release 1.0.3 did not roll back: $(node_row)"
    fi
    check "the harness never started ferry-edge from slot A" \
        harness_has "slot A: never reaches user space"
    if wait_until 30 node_is idle 1.0.1; then
        pass "the inventory shows the node on 1.0.1 after the fallback"
    else
        fail "the node does not report 1.0.1 after the fallback: $(node_row)"
    fi
    env_is B 0 3
    check "slot B still holds release 1.0.1" slot_holds "$SLOT_B" "$TEST_TMP/r1.bin"

    kill -TERM "$NODE_PID"
    wait "$NODE_PID"
    check "the harness and ferry-edge stop cleanly" test $? -eq 0
    grep -E "^(boot|reboot|slot|ferry)" "$TEST_TMP/harness.log" | sed 's/^/    harness: /'
}
