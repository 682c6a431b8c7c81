#!/bin/sh
# Install the Debian packages the project builds, tests and benchmarks with.
# Idempotent: only missing packages are installed, so a second run is quick.
set -eu

PACKAGES="
build-essential pkg-config chromium
libevent-dev libssl-dev libc-ares-dev libyaml-dev publicsuffix
clang-14 libclang-rt-14-dev
python3 python3-pytest
curl openssl dnsmasq-base socat jq procps psmisc iproute2
haproxy squid-openssl tinyproxy wrk hyperfine
qemu-system-x86 kmod cpio busybox-static nftables musl-tools debootstrap e2fsprogs
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run 'sudo make deps' (or install them with apt-get)" >&2
	exit 1
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
