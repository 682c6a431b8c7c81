#!/bin/sh
# Drop the signature appended to a kernel module, in place.
#
#   guest/module-unsign.sh MODULE...
#
# Debian signs its modules; the kernel checks each signature as it loads
# the module (a SHA-256 of the whole file and an RSA verification),
# which under TCG was 0.15-0.2 s of the 0.7-0.9 s sandbox-init spends
# loading modules. The modules come from the same Debian package as the
# kernel, and the initramfs that holds them is as trusted as the kernel
# and /init beside it: the check protects nothing here. The kernel does
# not enforce signatures (no Secure Boot lockdown in the guest); it loads
# an unsigned module and sets the E taint flag.
#
# The layout (the kernel's scripts/sign-file): the ELF module, the PKCS#7
# signature, struct module_signature (12 bytes, its last 4 the
# signature's length, big-endian; the signer and key id lengths are 0 for
# PKCS#7), then "~Module signature appended~\n". A module without that
# trailer is left as it is; anything else unexpected fails, saying why,
# and leaves the file unchanged.
set -eu
magic='~Module signature appended~'
fail() { echo "module-unsign: $1: $2" >&2; exit 1; }

# The 12 bytes of struct module_signature, as decimal numbers.
trailer_bytes() { tail -c 40 "$1" | head -c 12 | od -An -tu1; }

unsign() {
	f=$1
	size=$(stat -c %s "$f")
	[ "$size" -gt 40 ] || return 0
	[ "$(tail -c 28 "$f" | head -c 27)" = "$magic" ] &&
		[ "$(tail -c 1 "$f" | od -An -tu1 | tr -d ' ')" = 10 ] || return 0
	# shellcheck disable=SC2046
	set -- $(trailer_bytes "$f")
	if [ "$4" -ne 0 ] || [ "$5" -ne 0 ]; then
		fail "$f" "signer or key id in the signature trailer (not PKCS#7)"
	fi
	siglen=$(( ($9 << 24) | (${10} << 16) | (${11} << 8) | ${12} ))
	keep=$((size - 40 - siglen))
	if [ "$siglen" -eq 0 ] || [ "$keep" -le 64 ]; then
		fail "$f" "signature length $siglen does not fit a $size-byte file"
	fi
	[ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] ||
		fail "$f" "not an ELF module"
	truncate -s "$keep" "$f"
}

for f in "$@"; do
	unsign "$f"
done
