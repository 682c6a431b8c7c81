#!/bin/sh
# The host's Debian alternatives for the guest, one "NAME TARGET" a line.
#
# With the host's /usr as the guest's root, /usr/bin/awk, editor, pager ...
# are symlinks into /etc/alternatives, which the guest synthesises rather
# than share. Only links whose target is an absolute path under /usr/ (no
# "." or ".." component) are kept: they name a file the guest sees anyway,
# so the list reveals nothing the shared /usr does not. Anything else
# (targets in /etc, /opt, a home directory) is left out. mk/guest.mk
# rebuilds the initramfs when this list changes.
set -eu
for f in /etc/alternatives/*; do
	[ -L "$f" ] || continue
	n=${f##*/}
	case "$n" in *[!A-Za-z0-9._+-]*) continue ;; esac
	t=$(readlink "$f")
	case "$t" in /usr/?*) ;; *) continue ;; esac
	case "$t/" in */./* | */../* | *//* | *[!A-Za-z0-9._+/-]*) continue ;; esac
	printf '%s %s\n' "$n" "$t"
done
