#!/usr/bin/env bash
# ferry-edge on a GRUB environment block, the bootloader played by
# tests/tools/ferry-boot-harness through grub-editenv, which also reads the
# block back. See boot_lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v grub-editenv >/dev/null || die "grub-editenv missing (scripts/deps.sh installs it)"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
export BOOTLOADER=grub
source "$(dirname "${BASH_SOURCE[0]}")/boot_lib.sh"
run_boot_scenarios
finish
