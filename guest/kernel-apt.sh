#!/bin/sh
# Set up a private apt configuration for one Debian suite and print the
# apt-get/apt-cache options that use it.
#
#   guest/kernel-apt.sh SUITE APTDIR
#
# Everything apt reads or writes for it lives in APTDIR: the sources file
# (GUEST_KERNEL_MIRROR, default deb.debian.org, component main, checked
# against Debian's archive keyring from the debian-archive-keyring package
# apt itself depends on), the lists, the package cache, and an empty dpkg
# status, so neither the host's sources, preferences nor installed
# packages change what it resolves, and it changes nothing of the host's.
# APTDIR must not contain spaces (the options are word-split).
set -eu
suite=$1
aptdir=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
mirror=${GUEST_KERNEL_MIRROR:-http://deb.debian.org/debian}
case "$aptdir" in *[[:space:]]*)
	echo "kernel-apt: $aptdir: a path with spaces is not supported" >&2; exit 1 ;;
esac
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] ||
	{ echo "kernel-apt: $keyring missing (apt-get install debian-archive-keyring)" >&2; exit 1; }
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" \
	"$aptdir/sources.list.d" "$aptdir/preferences.d"
: >>"$aptdir/status"
line="deb [signed-by=$keyring] $mirror $suite main"
[ "$(cat "$aptdir/sources.list" 2>/dev/null)" = "$line" ] ||
	echo "$line" >"$aptdir/sources.list"
# As root apt downloads as _apt, which may not write into a build tree.
sandbox=
[ "$(id -u)" != 0 ] || sandbox="-o APT::Sandbox::User=root"
echo "-o Dir::Etc::sourcelist=$aptdir/sources.list -o Dir::Etc::sourceparts=$aptdir/sources.list.d" \
	"-o Dir::Etc::preferences=$aptdir/preferences -o Dir::Etc::preferencesparts=$aptdir/preferences.d" \
	"-o Dir::State::Lists=$aptdir/lists -o Dir::State::status=$aptdir/status" \
	"-o Dir::Cache=$aptdir/cache $sandbox"
