#!/bin/sh
# Build a read-only root filesystem image for `sandbox-launch --image`.
#
#   images/build.sh NAME OUTDIR
#
# Reads images/NAME/image.conf (KIND=debian or KIND=host) and its lists, and
# writes OUTDIR/NAME.img (ext4, no journal: it is only ever mounted
# read-only) and OUTDIR/NAME.json (what is in it, with versions). Both
# appear atomically; a failed build leaves the previous image in place.
#
# KIND=debian: debootstrap --variant=minbase SUITE from the Debian mirror
#   this machine's apt uses (`apt-cache policy`), apt-get install the
#   packages in images/NAME/debs, then from the npm registry npm's own
#   configured registry) NODE and NPM (image.conf) and the packages in
#   images/NAME/npm, globally into /usr/local. Needs root (debootstrap and
#   chroot) and takes minutes.
# KIND=host: the host programs in images/NAME/files with their libraries,
#   plus a static busybox. Seconds; for the tests.
#
# mkfs.ext4 -d packs the tree without a loop mount. Owners come from the
# tree (root for a debootstrap root; -E root_owner for the top directory).
set -eu

name=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
src=$here/$name

die() {
	echo "image: $*" >&2
	exit 1
}

[ -f "$src/image.conf" ] || die "no image named '$name' (images/$name/image.conf missing)"
KIND= SUITE=bookworm NODE= NPM= NPM_ALLOW_SCRIPTS=
# shellcheck disable=SC1090
. "$src/image.conf"

# A list file without comments and blank lines.
list() {
	[ -f "$1" ] || return 0
	sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$1"
}

mkdir -p "$out"
root=$out/$name.root
manifest_tmp=$out/$name.json.tmp
start=$(date +%s)

proc_mounted=
cleanup() {
	if [ -n "$proc_mounted" ]; then
		umount "$root/proc" 2>/dev/null || umount -l "$root/proc" || true
	fi
}
trap cleanup EXIT INT TERM

# ---- KIND=debian --------------------------------------------------------

# The mirror URI apt uses here for SUITE (main) and its security suite.
apt_uri() {
	apt-cache policy | awk -v s="$1/main" '$3 == s && $4 == "amd64" { print $2; exit }'
}

in_root() {
	chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		"$@"
}

build_debian() {
	[ "$(id -u)" = 0 ] || die "KIND=debian needs root (debootstrap, chroot): run sudo make image"
	command -v debootstrap >/dev/null || die "debootstrap missing: run make deps"
	mirror=${DEBIAN_MIRROR:-$(apt_uri "$SUITE")}
	[ -n "$mirror" ] || die "no apt source for $SUITE/main amd64 on this machine (set DEBIAN_MIRROR)"
	security=$(apt_uri "$SUITE-security")
	registry=${NPM_REGISTRY:-$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)}

	rm -rf "$root"
	mkdir -p "$root" "$out/cache/debs"
	echo "image: debootstrap --variant=minbase $SUITE from $mirror"
	debootstrap --variant=minbase --cache-dir="$(cd "$out/cache/debs" && pwd)" \
		"$SUITE" "$root" "$mirror" >"$out/$name.debootstrap.log" 2>&1 ||
		{ tail -n 20 "$out/$name.debootstrap.log" >&2; die "debootstrap failed (log: $out/$name.debootstrap.log)"; }

	{
		echo "deb $mirror $SUITE main"
		echo "deb $mirror $SUITE-updates main"
		[ -z "$security" ] || echo "deb $security $SUITE-security main"
	} >"$root/etc/apt/sources.list"
	# Name resolution for the build only; the guest writes its own.
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	mount -t proc proc "$root/proc"
	proc_mounted=1

	debs=$(list "$src/debs" | tr '\n' ' ')
	echo "image: apt-get install $debs"
	in_root apt-get update -qq
	# shellcheck disable=SC2086
	in_root apt-get install -y -qq --no-install-recommends $debs >/dev/null

	# The build trusts what the host trusts (a TLS-inspecting egress has
	# its own CA); the image keeps Debian's bundle, and in the guest
	# sandbox-init writes the host's bundle over it.
	cp /etc/ssl/certs/ca-certificates.crt "$root/tmp/build-ca.crt"
	npm_env="npm_config_registry=$registry npm_config_cache=/tmp/npm-cache npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false npm_config_cafile=/tmp/build-ca.crt NODE_EXTRA_CA_CERTS=/tmp/build-ca.crt"
	if [ -n "$NODE" ]; then
		echo "image: npm install -g $NODE"
		# shellcheck disable=SC2086
		in_root env $npm_env npm install -g --no-progress "$NODE" >/dev/null
		in_root node --version >/dev/null || die "node from $NODE does not run"
	fi
	if [ -n "$NPM" ]; then
		echo "image: npm install -g $NPM"
		# shellcheck disable=SC2086
		in_root env $npm_env npm install -g --no-progress "$NPM" >/dev/null
	fi
	pkgs=$(list "$src/npm" | tr '\n' ' ')
	if [ -n "$pkgs" ]; then
		echo "image: npm install -g $pkgs"
		# shellcheck disable=SC2086
		in_root env $npm_env npm install -g --no-progress \
			${NPM_ALLOW_SCRIPTS:+--allow-scripts=$NPM_ALLOW_SCRIPTS} $pkgs >/dev/null
	fi

	# Versions, before the package lists go.
	in_root dpkg-query -W -f '${Package}\t${Version}\n' >"$out/$name.debs.tsv"
	in_root npm ls -g --json --depth=0 >"$out/$name.npm.json" || true
	in_root node --version >"$out/$name.node.txt"
	printf '%s\n' "$mirror" >"$out/$name.mirror.txt"

	# npm in the guest: the system bundle, which is the one init writes.
	mkdir -p "$root/usr/local/etc"
	echo "cafile=/etc/ssl/certs/ca-certificates.crt" >"$root/usr/local/etc/npmrc"

	in_root apt-get clean
	rm -rf "$root/var/lib/apt/lists/"* "$root/tmp/npm-cache" "$root/root/.npm" \
		"$root/tmp/build-ca.crt" \
		"$root/var/cache/debconf/"*-old "$root/etc/resolv.conf"
	umount "$root/proc"
	proc_mounted=
}

# ---- KIND=host ----------------------------------------------------------

# Copy a host file to the same path in the root, following symlinks.
copy_host() {
	case "$1" in
	/usr/*) dst=$root$1 ;;
	/bin/* | /sbin/* | /lib/* | /lib64/*) dst=$root/usr$1 ;;
	*) die "$1: only files under /usr, /bin, /sbin, /lib, /lib64 can be copied" ;;
	esac
	mkdir -p "$(dirname "$dst")"
	cp -L "$1" "$dst"
}

build_host() {
	rm -rf "$root"
	mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$root/etc"
	for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
	: >"$out/$name.files.txt"
	list "$src/files" | while read -r f; do
		[ -x "$f" ] || die "$f (images/$name/files) is not a program on this host"
		copy_host "$f"
		echo "$f" >>"$out/$name.files.txt"
		ldd "$f" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' |
			while read -r lib; do copy_host "$lib"; done
	done
	cp /bin/busybox "$root/usr/bin/busybox"
	for app in $(/bin/busybox --list); do
		[ -e "$root/usr/bin/$app" ] || [ -e "$root/usr/sbin/$app" ] ||
			ln -s busybox "$root/usr/bin/$app"
	done
	echo "/bin/busybox" >>"$out/$name.files.txt"
	# images/NAME/etc/ (optional): the image's own /etc files (accounts).
	if [ -d "$src/etc" ]; then cp -R "$src/etc/." "$root/etc/"; fi
	# An empty dpkg database where dpkg is in the image.
	if [ -x "$root/usr/bin/dpkg" ]; then
		mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" \
			"$root/var/lib/dpkg/triggers"
		: >"$root/var/lib/dpkg/status"
		: >"$root/var/lib/dpkg/available"
	fi
	echo "image $name" >"$root/etc/sandbox-image-etc"
}

case "$KIND" in
debian) build_debian ;;
host) build_host ;;
*) die "images/$name/image.conf: KIND must be debian or host, not '$KIND'" ;;
esac

# Inside the image, so the guest can tell what it runs on.
mkdir -p "$root/usr/share/sandbox-image"
echo "$name" >"$root/usr/share/sandbox-image/name"

# ---- manifest -------------------------------------------------------------

python3 - "$name" "$KIND" "$out" "$src" >"$manifest_tmp" <<'PY'
import json, os, sys
name, kind, out, src = sys.argv[1:]
def read(p, default=""):
    try:
        with open(os.path.join(out, p)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default
m = {"name": name, "kind": kind}
if kind == "debian":
    conf = {}
    with open(os.path.join(src, "image.conf")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" in line:
                k, v = line.split("=", 1)
                conf[k] = v
    m["suite"] = conf.get("SUITE", "bookworm")
    m["mirror"] = read(name + ".mirror.txt")
    m["node"] = read(name + ".node.txt")
    m["debian_packages"] = dict(
        l.split("\t", 1) for l in read(name + ".debs.tsv").splitlines() if "\t" in l)
    npm = json.loads(read(name + ".npm.json", "{}") or "{}")
    m["npm_packages"] = {k: v.get("version", "")
                         for k, v in sorted(npm.get("dependencies", {}).items())}
    m["not_included"] = {
        "kiro-cli": "not on the npm registry (npm view kiro-cli, @kiro/cli: 404); "
                    "Kiro ships a native installer from kiro.dev"}
else:
    m["host_files"] = read(name + ".files.txt").splitlines()
json.dump(m, sys.stdout, indent=1, sort_keys=True)
sys.stdout.write("\n")
PY
cp "$manifest_tmp" "$root/usr/share/sandbox-image/manifest.json"

# ---- pack -----------------------------------------------------------------

kib=$(du -sk "$root" | cut -f1)
inodes=$(find "$root" | wc -l)
# ext4 metadata plus headroom: 10% and 32 MiB.
size=$((kib + kib / 10 + 32768))
inodes=$((inodes + inodes / 5 + 1024))
rm -f "$out/$name.img.tmp"
mkfs.ext4 -q -F -L "sbx-$name" -O ^has_journal -m 0 -N "$inodes" \
	-E root_owner=0:0 -d "$root" "$out/$name.img.tmp" "${size}k" ||
	die "mkfs.ext4 -d failed"
mv "$out/$name.img.tmp" "$out/$name.img"
mv "$manifest_tmp" "$out/$name.json"
rm -f "$out/$name.debs.tsv" "$out/$name.npm.json" "$out/$name.node.txt" \
	"$out/$name.mirror.txt" "$out/$name.files.txt"
# The tree is only an intermediate; the image is the product.
rm -rf "$root"
echo "image: $out/$name.img: $((size / 1024)) MiB ($((kib / 1024)) MiB of files), $(($(date +%s) - start)) s"
