#!/bin/sh
# Print the versioned kernel package that linux-image-amd64 depends on in
# a Debian suite, its version and the suite. mk/guest.mk writes this to
# build/guest/kernel-pkg only when it changes, so a new kernel in the
# archive (or another suite) rebuilds the image and nothing else does.
#
#   guest/kernel-pkg.sh SUITE APTDIR
#
# SUITE "bookworm" (or empty): the host's own apt cache, no network (the
# kernel of the host's release, as `apt-get update` last saw it).
# Any other suite (bookworm-backports: GUEST_KERNEL_SUITE in mk/guest.mk)
# comes from a private apt configuration under APTDIR (sources, lists,
# package cache, an empty dpkg status), so the host's apt sources stay
# untouched and a clean machine needs no set-up: its lists are fetched
# when APTDIR has none, and again when they are more than a day old (as
# apt's daily update would: a kernel security update then arrives with
# the next `make guest`; offline, the old lists are used with a warning).
# `make guest-refresh` fetches them now.
# guest/build-image.sh downloads the package with the same options
# (guest/kernel-apt.sh prints them).
set -eu
suite=${1:-bookworm}
aptdir=${2:-}
here=$(dirname "$0")

if [ "$suite" = bookworm ]; then
	opts=
else
	[ -n "$aptdir" ] || { echo "kernel-pkg: suite $suite needs an apt dir" >&2; exit 2; }
	opts=$(sh "$here/kernel-apt.sh" "$suite" "$aptdir")
	had_lists=no
	ls "$aptdir/lists/"*_Packages* >/dev/null 2>&1 && had_lists=yes
	if [ $had_lists = yes ] &&
		[ -n "$(find "$aptdir/updated" -mmin -1440 2>/dev/null)" ]; then
		: # fetched within a day
	else
		if [ $had_lists = yes ]; then
			echo "guest: apt-get update ($suite, lists more than a day old, or make guest-refresh)" >&2
		else
			echo "guest: apt-get update ($suite, private lists in $aptdir)" >&2
		fi
		# shellcheck disable=SC2086
		if apt-get -q --error-on=any $opts update >&2; then
			touch "$aptdir/updated"
		elif [ $had_lists = yes ]; then
			echo "kernel-pkg: warning: apt-get update of $suite failed; using the lists fetched before" >&2
		else
			echo "kernel-pkg: apt-get update of $suite failed (is the mirror reachable?)" >&2
			rm -rf "$aptdir/lists"
			exit 1
		fi
	fi
fi
# shellcheck disable=SC2086
pkg=$(apt-cache $opts depends linux-image-amd64 2>/dev/null |
	awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$pkg" ]; then
	echo "kernel-pkg: cannot resolve linux-image-amd64 in $suite (run apt-get update, or make guest-refresh)" >&2
	exit 1
fi
# shellcheck disable=SC2086
ver=$(apt-cache $opts show "$pkg" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
echo "$pkg $ver $suite"
