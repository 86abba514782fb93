#!/usr/bin/env bash
# Installs the Debian 12 packages Ferry needs to build, test and run its demo,
# but only those that are missing, so a second run costs a dpkg query.
set -euo pipefail

PKGS=(
    build-essential cmake pkg-config clang clang-format libclang-rt-14-dev shellcheck
    libpaho-mqtt-dev libssl-dev mosquitto mosquitto-clients ejabberd
    libmbedtls-dev libcjson-dev libcoap3-dev libcoap3-bin
    libcunit1-dev libsqlite3-dev libpq-dev postgresql-15 zlib1g-dev openssl python3 iproute2 procps tzdata
    libubootenv-dev libubootenv-tool grub-common u-boot-tools u-boot-qemu qemu-system-arm
    libmicrohttpd-dev curl chromium chromium-driver python3-selenium
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
