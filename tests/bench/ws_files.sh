#!/bin/sh
# Run inside the guest by ws_bench.py: 5,000 small files (50 folders of
# 100) untarred, found, 1,100 of them read, then removed, in the workspace
# (the current directory) and in the guest's own tmpfs (/tmp).
# Prints "WS <place> <op> <ms>" lines. $1: the tarball (in the workspace);
# $2: rounds (default 1), each a tmpfs pass then a workspace pass, so the
# two alternate in one boot and a ratio can be taken per round.
set -eu
tarball=$(realpath "$1")
rounds=${2:-1}
ms() { echo $(( $(date +%s%N) / 1000000 )); }
run() { # place dir
	place=$1 dir=$2
	mkdir -p "$dir"
	cd "$dir"
	sync
	t=$(ms); tar -xf "$tarball"; sync; echo "WS $place untar $(( $(ms) - t ))"
	t=$(ms); find tree | wc -l >/dev/null; echo "WS $place find $(( $(ms) - t ))"
	t=$(ms); cat tree/d0[0-9]/* tree/d10/* >/dev/null; echo "WS $place cat $(( $(ms) - t ))"
	t=$(ms); rm -rf tree; sync; echo "WS $place rm $(( $(ms) - t ))"
	cd - >/dev/null
}
ws=$(pwd)
i=0
while [ "$i" -lt "$rounds" ]; do
	run tmpfs /tmp/wsbench
	run workspace "$ws/wsbench"
	i=$((i + 1))
done
rmdir "$ws/wsbench" /tmp/wsbench
