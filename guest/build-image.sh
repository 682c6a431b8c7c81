#!/bin/sh
# Build the guest kernel and initramfs from Debian packages.
#
#   guest/build-image.sh OUTDIR INIT_BINARY
#
# OUTDIR/kernel-pkg names the kernel package, its version and its Debian
# suite (see kernel-pkg.sh). The .deb is fetched once with `apt-get
# download` into OUTDIR/cache (the only network use; for a suite other than
# bookworm through the private apt configuration in OUTDIR/apt-SUITE,
# guest/kernel-apt.sh) and unpacked with dpkg -x. The modules the guest
# needs are resolved through modules.dep (depmod -b) with `modprobe
# --show-depends`, which prints them in load order; sandbox-init loads
# them in that order.
#
# OUTDIR/alternatives (optional) lists the host's alternatives to mirror.
#
# Outputs: OUTDIR/vmlinuz (Debian's bzImage), OUTDIR/vmlinux (the same
# kernel unpacked: what the launcher boots, guest/kernel-elf.sh),
# OUTDIR/initramfs.cpio (not compressed), OUTDIR/kernel-version.
set -eu

out=$1
init=$2
here=$(dirname "$0")

# Roots of the module closure. Dependencies (virtio, vsock, 9pnet, netfs,
# nf_conntrack, ...) come from modules.dep.
ROOTS="virtio_mmio vmw_vsock_virtio_transport 9pnet_virtio 9p virtiofs fuse
overlay dummy nf_tables nft_chain_nat nft_redir nft_nat nf_nat nf_conntrack
nft_ct nft_reject_inet nft_reject_ipv4 nft_fib_ipv4 virtio_blk ext4
crc32c_generic"

# Roots of what Docker needs on top (sandbox-launch --docker): its bridge
# networks (bridge, veth, br_netfilter), and the xtables matches and
# targets its iptables-nft rules use (nft_compat runs them). Written to
# load-order-docker, minus what load-order has; sandbox-init loads it only
# with sandbox.docker=on (guest/docker.c).
DOCKER_ROOTS="bridge veth br_netfilter nft_compat nft_masq xt_addrtype
xt_conntrack xt_MASQUERADE xt_nat xt_tcpudp xt_comment nf_conntrack_netlink"

read -r pkg pkgver suite <"$out/kernel-pkg"
aptopts=
case "${suite:-bookworm}" in
bookworm) ;;
*) aptopts=$(sh "$here/kernel-apt.sh" "$suite" "$out/apt-$suite") ;;
esac
cache=$out/cache
mkdir -p "$cache"

deb=$(ls "$cache/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
case "$deb" in *"_$(echo "$pkgver" | sed 's/:/%3a/')_"*) ;; *) deb= ;; esac
if [ -z "$deb" ]; then
	rm -f "$cache/${pkg}_"*.deb
	echo "guest: apt-get download $pkg=$pkgver"
	# shellcheck disable=SC2086
	(cd "$cache" && apt-get $aptopts download -q "$pkg=$pkgver") ||
		{ echo "guest: apt-get download $pkg failed (is apt reachable?${aptopts:+ or do the private lists name a version the mirror dropped? make guest-refresh})" >&2; exit 1; }
	deb=$(ls "$cache/${pkg}_"*.deb | head -n1)
fi

root=$cache/root-$pkg-$pkgver
if [ ! -f "$root/.unpacked" ]; then
	rm -rf "$root"
	mkdir -p "$root"
	dpkg -x "$deb" "$root"
	kver=$(ls "$root/lib/modules" | head -n1)
	depmod -b "$root" "$kver"
	touch "$root/.unpacked"
fi
kver=$(ls "$root/lib/modules" | head -n1)

stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/lib/modules" "$stage/etc" "$stage/dev" \
	"$stage/proc" "$stage/sys" "$stage/newroot"

# modprobe prints "insmod PATH" in dependency order for each root ("builtin
# NAME" for what the kernel has built in: Linux 6.12's fuse and virtiofs);
# keep the first occurrence of each module (across all lists). Compressed
# modules (6.12's .ko.xz) are unpacked here, once, rather than by the guest
# kernel at every boot; the lists and sandbox-init only know NAME.ko.
# closure LIST ROOTS...: append the closure of ROOTS to LIST.
closure() {
	list=$1
	shift
	: >"$stage/lib/modules/$list"
	# Not a pipeline: an exit in one would leave only its subshell, and
	# the build would go on without the module.
	: >"$out/deps.tmp"
	for m in "$@"; do
		modprobe -d "$root" -S "$kver" --show-depends "$m" >>"$out/deps.tmp" ||
			{ echo "guest: module $m not found in $pkg" >&2; exit 1; }
	done
	awk '$1 == "insmod" { print $2 }' "$out/deps.tmp" >"$out/paths.tmp"
	while read -r path; do
		name=$(basename "$path")
		unpack="cat"
		case "$name" in
		*.ko) ;;
		*.ko.xz) unpack="xz -dc" ;;
		*.ko.gz) unpack="gzip -dc" ;;
		*.ko.zst) unpack="zstd -dcq" ;;
		*) echo "guest: $path: not a module format unpacked here (.ko, .ko.xz, .ko.gz, .ko.zst)" >&2
		   exit 1 ;;
		esac
		name=${name%.ko*}.ko
		if ! cat "$stage/lib/modules/load-order"* | grep -qx "$name"; then
			$unpack <"$path" >"$stage/lib/modules/$name" ||
				{ echo "guest: $path: $unpack failed" >&2; exit 1; }
			echo "$name" >>"$stage/lib/modules/$list"
		fi
	done <"$out/paths.tmp"
	rm -f "$out/deps.tmp" "$out/paths.tmp"
}
# shellcheck disable=SC2086
closure load-order $ROOTS
# shellcheck disable=SC2086
closure load-order-docker $DOCKER_ROOTS
# Their signatures would be checked at every load, for nothing here
# (guest/module-unsign.sh says why).
sh "$here/module-unsign.sh" "$stage"/lib/modules/*.ko

cp "$init" "$stage/init"
chmod 755 "$stage/init"
cp /bin/busybox "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
# Public CA bundle baked in at build time, so the guest never sees host /etc.
cp /etc/ssl/certs/ca-certificates.crt "$stage/etc/ca-certificates.crt"
for f in services protocols; do
	[ -f "/etc/$f" ] && cp "/etc/$f" "$stage/etc/$f"
done
# The host's alternatives into /usr (guest/alternatives.sh made the list),
# in the lower layer of the guest's /etc overlay (guest/mounts.c): the
# guest sees them without making ~500 links on every boot.
mkdir -p "$stage/lower/etc/alternatives"
if [ -f "$out/alternatives" ]; then
	while read -r name target; do
		ln -s "$target" "$stage/lower/etc/alternatives/$name"
	done <"$out/alternatives"
fi

# The same inputs make the same archive: every file's time is the
# kernel's own (its packaged mtime), or SOURCE_DATE_EPOCH.
epoch=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$root/boot/vmlinuz-$kver")}
find "$stage" -exec touch -h -d "@$epoch" {} +
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0 --reproducible) >"$out/initramfs.cpio.tmp"
# Not compressed: under TCG the kernel's gunzip of it took 0.3-0.4 s of
# every boot; QEMU copies the 10 MB into guest memory in milliseconds.
mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
rm -f "$out/initramfs.cpio.gz" # what builds before this one wrote
cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
# What the launcher boots: the same kernel unpacked (guest/kernel-elf.sh).
sh "$here/kernel-elf.sh" "$out/vmlinuz" "$out/vmlinux"
echo "$kver" >"$out/kernel-version"
echo "guest: kernel $kver ($pkg $pkgver, ${suite:-bookworm}), $(wc -l <"$stage/lib/modules/load-order") modules (+$(wc -l <"$stage/lib/modules/load-order-docker") for Docker), initramfs $(du -k "$out/initramfs.cpio" | cut -f1) KiB"
