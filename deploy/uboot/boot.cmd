# Ferry's A/B boot script for U-Boot: it picks the slot to boot and counts
# the attempts, so an image that never reaches user space falls back by
# itself. ferry-edge (--bootloader uboot) changes the same variables through
# libubootenv. Make the image U-Boot sources with:
#
#   mkimage -A arm -T script -C none -n "Ferry A/B" -d boot.cmd boot.scr
#
# (-A arm64, -A x86... for the board's architecture) and have the board's
# bootcmd load boot.scr and `source` it.
#
# Variables (the environment, as fw_printenv shows it):
#   BOOT_ORDER    the slots to try, in order: "A B", "B A", "A"...
#   BOOT_A_LEFT   boots slot A may still take (0..9: U-Boot's setexpr works
#   BOOT_B_LEFT   in hex, which agrees with decimal below 10)
# Absent, they start as "A B", 3 and 3.
#
# The board provides, once, in its default environment:
#   ferry_boot_A  loads slot A's kernel and boots it with ${ferry_bootargs}
#   ferry_boot_B  appended to its bootargs, for example
#     setenv ferry_boot_A 'load mmc 0:2 ${kernel_addr_r} /boot/Image;
#       setenv bootargs root=/dev/mmcblk0p2 rootwait ${ferry_bootargs}; booti ${kernel_addr_r} - ${fdt_addr}'
# ferry_bootargs is "ferry.slot=A" or "ferry.slot=B": ferry-edge reads it
# from /proc/cmdline to know which slot booted.

test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3

# The first slot in the order with an attempt left; spend one.
setenv ferry_slot
for s in ${BOOT_ORDER}; do
    if test -z "${ferry_slot}"; then
        if test "${s}" = "A"; then
            if test ${BOOT_A_LEFT} -gt 0; then
                setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
                setenv ferry_slot A
            fi
        elif test "${s}" = "B"; then
            if test ${BOOT_B_LEFT} -gt 0; then
                setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
                setenv ferry_slot B
            fi
        fi
    fi
done

# None left: every slot in the order gets its attempts back (rather than
# halting a device that might boot next time), and the board resets.
if test -z "${ferry_slot}"; then
    echo "Ferry: no slot has boot attempts left; every slot in BOOT_ORDER gets 3 again"
    test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
    for s in ${BOOT_ORDER}; do
        if test "${s}" = "A"; then
            setenv BOOT_A_LEFT 3
        elif test "${s}" = "B"; then
            setenv BOOT_B_LEFT 3
        fi
    done
    saveenv
    reset
fi

setenv ferry_bootargs "ferry.slot=${ferry_slot}"
echo "Ferry: booting slot ${ferry_slot} (attempts left: A ${BOOT_A_LEFT}, B ${BOOT_B_LEFT})"
saveenv
run ferry_boot_${ferry_slot}
echo "Ferry: slot ${ferry_slot} did not boot; resetting"
reset
