#!/bin/sh
# Unpack a bzImage's compressed kernel into the ELF vmlinux it carries.
#
#   guest/kernel-elf.sh BZIMAGE OUT
#
# Under TCG the guest spends most of its boot before the kernel's first
# message decompressing itself (Debian compresses with xz: about 6 s here,
# three times the kernel's own boot). QEMU loads an uncompressed ELF
# kernel straight into guest memory and enters it through the PVH entry
# point (the Xen PHYS32_ENTRY note, CONFIG_PVH), so the guest starts with
# its kernel in place. The payload is found from the boot protocol header
# (setup_sects at 0x1f1, payload_offset/payload_length at 0x248/0x24c,
# protocol 2.08+), not by searching for a magic number. Fails, saying
# why, when the payload is in a format this does not unpack or the result
# is not an ELF kernel with a PVH entry; OUT is then left absent.
set -eu
in=$1
out=$2
rm -f "$out" "$out.tmp"

u8() { od -An -tu1 -j "$1" -N1 "$in" | tr -d ' '; }
u32() { od -An -tu4 -j "$1" -N4 --endian=little "$in" | tr -d ' '; }
fail() { echo "kernel-elf: $in: $*" >&2; rm -f "$out.tmp"; exit 1; }

[ "$(od -An -c -j 514 -N4 "$in" | tr -d ' ')" = "HdrS" ] ||
	fail "no bzImage boot header (HdrS at 0x202)"
ver=$(od -An -tu2 -j 518 -N2 --endian=little "$in" | tr -d ' ')
[ "$ver" -ge 520 ] || fail "boot protocol $ver is older than 2.08 (no payload fields)"
setup=$(u8 497)
[ "$setup" -ne 0 ] || setup=4
start=$(( (setup + 1) * 512 + $(u32 584) ))
len=$(u32 588)
size=$(wc -c <"$in")
[ "$len" -ge 8 ] || fail "payload length $len is too short"
[ $((start + len)) -le "$size" ] ||
	fail "payload ($len bytes at $start) runs past the file's $size bytes (truncated?)"

payload() { tail -c +"$((start + 1))" "$in" | head -c "$len"; }
magic=$(payload | od -An -tx1 -N6 | tr -d ' \n')
case "$magic" in
fd377a585a00) payload | xz -dc >"$out.tmp" 2>/dev/null || true ;;
1f8b*) payload | gzip -dc >"$out.tmp" 2>/dev/null || true ;;
28b52ffd*)
	command -v zstd >/dev/null || fail "zstd payload and no zstd (apt-get install zstd)"
	payload | zstd -dcq >"$out.tmp" 2>/dev/null || true ;;
*) fail "payload format $magic not unpacked here (xz, gzip, zstd are)" ;;
esac
# The kernel's build appends the unpacked size to the payload (its last
# four bytes, little-endian): a short or corrupt unpack is caught here
# whatever the format (the tools stop at the appended bytes, or complain
# about them, so their exit status alone does not tell).
want=$(od -An -tu4 -j "$((start + len - 4))" -N4 --endian=little "$in" | tr -d ' ')
got=$(wc -c <"$out.tmp")
[ "$got" -eq "$want" ] ||
	fail "unpacked $got bytes where the image says $want (truncated or corrupt)"
[ "$(od -An -tx1 -N4 "$out.tmp" | tr -d ' \n')" = "7f454c46" ] ||
	fail "the unpacked payload is not an ELF file"
readelf -n "$out.tmp" 2>/dev/null | awk '
	$1 == "Xen" && ($0 ~ /0x00000012/ || $0 ~ /PHYS32_ENTRY/) { ok = 1 }
	END { exit !ok }' || fail "the kernel has no PVH entry note (CONFIG_PVH)"
mv "$out.tmp" "$out"
