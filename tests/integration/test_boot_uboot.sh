#!/usr/bin/env bash
# ferry-edge on U-Boot's environment (libubootenv, a redundant environment
# in two files), the bootloader played by tests/tools/ferry-boot-harness
# through fw_setenv, read back with fw_printenv. See boot_lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v fw_printenv >/dev/null || die "fw_printenv missing (scripts/deps.sh installs it)"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
export BOOTLOADER=uboot
source "$(dirname "${BASH_SOURCE[0]}")/boot_lib.sh"
run_boot_scenarios
finish
