#!/bin/sh
# Print the versioned kernel package that linux-image-amd64 depends on, and
# its version, from the local apt cache (no network). mk/guest.mk writes this
# to build/guest/kernel-pkg only when it changes, so a new kernel in the
# archive rebuilds the image and nothing else does.
set -eu
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$pkg" ]; then
	echo "kernel-pkg: cannot resolve linux-image-amd64 (run apt-get update)" >&2
	exit 1
fi
ver=$(apt-cache show "$pkg" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
echo "$pkg $ver"
