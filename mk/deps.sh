#!/bin/sh
# Install the Debian packages the project needs: `mk/deps.sh` (make deps)
# for building and running, `mk/deps.sh test` (make test-deps) for the tests
# and benchmarks as well.
# Idempotent: only missing packages are installed, so a second run is quick.
set -eu

# What building and running need (make deps): the compiler and libraries,
# the public suffix list (policy), QEMU, what make guest and make image use
# (kmod, cpio, debootstrap), mkfs.ext4 for named sandboxes' disks, and
# nftables, which the guest runs from the shared /usr to capture traffic,
# and uidmap (newgidmap), which runs the workspace's virtiofsd as the user.
# make guest also needs xz-utils and zstd (the guest kernel's compressed
# payload and modules) and debian-archive-keyring (the private apt
# configuration that fetches a kernel from bookworm-backports).
RUN_PACKAGES="
build-essential pkg-config ca-certificates
libevent-dev libssl-dev libc-ares-dev libyaml-dev publicsuffix
qemu-system-x86 kmod cpio nftables debootstrap e2fsprogs uidmap
xz-utils zstd debian-archive-keyring
"
# What only the tests, fuzzing and benchmarks need (make test, make fuzz,
# make bench): real peers (dnsmasq, OpenSSL, curl, socat), the proxies we
# measure against, clang for libFuzzer, Chromium for the HTML report test,
# busybox and musl for the test image and guest test programs, man-db for
# the installed man pages, and Debian's Docker (dockerd, containerd, runc,
# iptables) for tests/e2e/test_docker.py, which runs it from the host's
# /usr inside the guest (the tests never use a daemon on the host, which
# apt may start where systemd runs).
TEST_PACKAGES="
chromium clang-14 libclang-rt-14-dev
python3 python3-pytest
curl openssl dnsmasq-base socat jq procps psmisc iproute2
haproxy squid-openssl tinyproxy wrk hyperfine
busybox-static musl-tools man-db
docker.io containerd runc iptables tini
"

case "${1:-run}" in
run) PACKAGES=$RUN_PACKAGES ;;
test) PACKAGES="$RUN_PACKAGES $TEST_PACKAGES" ;;
*) echo "usage: mk/deps.sh [run|test]" >&2; exit 2 ;;
esac

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
	echo "deps: run 'sudo make ${1:+test-}deps' (or install them with apt-get)" >&2
	exit 1
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
