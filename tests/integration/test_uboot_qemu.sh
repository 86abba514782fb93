#!/usr/bin/env bash
# The real U-Boot (Debian's u-boot-qemu, qemu_arm, emulated) runs the shipped
# deploy/uboot/boot.cmd against an environment in its flash that Ferry wrote
# through libubootenv (ferry-bootctl: ferry-edge's own bootloader code). It
# boots the slot Ferry chose, spending one of its attempts, and when that
# slot never gets to a kernel it counts the attempts down and falls back by
# itself. The board's kernels are stand-ins: ferry_boot_A/ferry_boot_B print
# a line with the kernel command line and power off.
#
# QEMU 7.2's CFI flash emulation breaks U-Boot's saveenv ("pflash_write:
# Write to buffer emulation is flawed": the second sector times out and the
# environment is left half written), so the board runs with -snapshot and
# each power-on starts from the environment as Ferry wrote it. To show the
# count across failed boots anyway, the stand-in for a kernel that panics
# re-enters the boot script, as the reset after a panic would, with the
# attempts already spent still in U-Boot's memory. Persistence across power
# cycles is what test_boot_uboot shows, with fw_setenv playing saveenv.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UBOOT_BIN=/usr/lib/u-boot/qemu_arm/u-boot.bin
for tool in qemu-system-arm mkimage fw_setenv fw_printenv; do
    command -v "$tool" >/dev/null || die "$tool missing (scripts/deps.sh installs it)"
done
[ -f "$UBOOT_BIN" ] || die "$UBOOT_BIN missing (u-boot-qemu; scripts/deps.sh installs it)"
BOOTCTL=$(ferry_bin ferry-bootctl)

# qemu_arm keeps its environment at the start of the second flash bank
# (pflash1, mapped at 0x04000000), 256 KiB; boot.scr goes 1 MiB further in.
FLASH="$TEST_TMP/flash1.img"
CONFIG="$TEST_TMP/fw_env.config"
truncate -s 64M "$FLASH"
mkimage -A arm -T script -C none -n "Ferry A/B" -d "$FERRY_SOURCE_DIR/deploy/uboot/boot.cmd" \
    "$TEST_TMP/boot.scr" >/dev/null || die "mkimage failed"
dd if="$TEST_TMP/boot.scr" of="$FLASH" bs=1M seek=1 conv=notrunc status=none
echo "$FLASH 0x0 0x40000 0x40000" >"$CONFIG"
cat >"$TEST_TMP/board.env" <<'ENV'
bootdelay=0
bootcmd=source 0x04100000
ferry_boot_A=echo FERRY-KERNEL-A ${ferry_bootargs}; poweroff
ferry_boot_B=echo FERRY-KERNEL-B ${ferry_bootargs}; poweroff
ENV
if ! fw_setenv -c "$CONFIG" -f "$TEST_TMP/board.env" BOOT_ORDER A 2>/dev/null ||
    ! fw_setenv -c "$CONFIG" BOOT_A_LEFT 3 || ! fw_setenv -c "$CONFIG" BOOT_B_LEFT 0; then
    die "fw_setenv cannot make the board's environment"
fi

RUN=0
# Powers the board on until it powers itself off; the console in $CONSOLE.
power_on() {
    RUN=$((RUN + 1))
    CONSOLE="$TEST_TMP/console-$RUN"
    timeout 60 qemu-system-arm -M virt -nographic -nic none -snapshot -bios "$UBOOT_BIN" \
        -drive if=pflash,unit=1,file="$FLASH",format=raw </dev/null 2>&1 | tr -d '\r' >"$CONSOLE"
}

# The "Ferry: booting slot ..." lines and the kernels' lines, in order.
boots() {
    grep -oE 'Ferry: booting slot [AB] \(attempts left: A [0-9]+, B [0-9]+\)|FERRY-[A-Z]+-[AB]' \
        "$CONSOLE" | tr '\n' '|'
}

expect_boots() {
    if [ "$(boots)" = "$1" ]; then
        pass "$2"
    else
        fail "$2: U-Boot said '$(boots)'"
        grep -v '^  0' "$CONSOLE" | head -30 | sed 's/^/    console: /'
    fi
}

started=$SECONDS
# --- the factory environment: slot A ------------------------------------------------------
power_on
expect_boots "Ferry: booting slot A (attempts left: A 2, B 0)|FERRY-KERNEL-A|" \
    "U-Boot sourced boot.scr and booted slot A, spending an attempt"
check "the kernel command line carries ferry.slot=A" grep -q "FERRY-KERNEL-A ferry.slot=A" "$CONSOLE"

# --- Ferry arms slot B for a trial of two boots, as ferry-edge does -----------------------
check "Ferry marks B bad before writing it" "$BOOTCTL" --uboot "$CONFIG" set-state B bad
check "Ferry arms B, two attempts" "$BOOTCTL" --uboot "$CONFIG" set-primary B 2
check "fw_printenv reads Ferry's environment" \
    test "$(fw_printenv -c "$CONFIG" BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT | tr '\n' ' ')" = \
    "BOOT_ORDER=B A BOOT_A_LEFT=3 BOOT_B_LEFT=2 "
power_on
expect_boots "Ferry: booting slot B (attempts left: A 3, B 1)|FERRY-KERNEL-B|" \
    "U-Boot booted the slot Ferry chose, spending one of its attempts"
check "... with ferry.slot=B on the kernel command line" grep -q "FERRY-KERNEL-B ferry.slot=B" "$CONSOLE"

# --- B never gets to a kernel: U-Boot counts its attempts down and falls back --------------
fw_setenv -c "$CONFIG" ferry_boot_B 'echo FERRY-PANIC-B; source 0x04100000' || die "fw_setenv failed"
power_on
want="Ferry: booting slot B (attempts left: A 3, B 1)|FERRY-PANIC-B|"
want+="Ferry: booting slot B (attempts left: A 3, B 0)|FERRY-PANIC-B|"
want+="Ferry: booting slot A (attempts left: A 2, B 0)|FERRY-KERNEL-A|"
expect_boots "$want" "with B's two attempts spent, U-Boot fell back to A by itself"

# --- Ferry's start after the fallback (B bad, A good and primary): U-Boot follows ---------
check "Ferry drops B" "$BOOTCTL" --uboot "$CONFIG" set-state B bad
check "Ferry renews A" "$BOOTCTL" --uboot "$CONFIG" set-primary A 3
check "Ferry reads A as primary, B as bad" \
    test "$("$BOOTCTL" --uboot "$CONFIG" get-primary) $("$BOOTCTL" --uboot "$CONFIG" get-state B)" \
    = "A bad"
power_on
expect_boots "Ferry: booting slot A (attempts left: A 2, B 0)|FERRY-KERNEL-A|" \
    "U-Boot boots A as Ferry left it, never B"
echo "four power-ons of the emulated board took $((SECONDS - started)) s"
finish
