"""Which kernel and initramfs the launcher boots: the unpacked ELF
`vmlinux` that `make guest` writes beside Debian's bzImage
(guest/kernel-elf.sh; under TCG the bzImage spends seconds decompressing
itself), and the bzImage when a guest dir has only that; the uncompressed
`initramfs.cpio`, and the `initramfs.cpio.gz` an older build or install
has. The fake QEMU writes its command line."""
import lzma
import os
import struct
import subprocess
import time

import pytest

from sbxtest import free_port, run
from sbxtest.launcher import QEMU_ARGV_EXITS, fake_vm


def kernel_arg(env, tmp_path, request, files, opt="-kernel"):
    x = fake_vm(env, tmp_path, request, QEMU_ARGV_EXITS, marker="qemu-argv")
    guest = tmp_path / "guest"
    for f in ("vmlinux", "vmlinuz", "initramfs.cpio", "initramfs.cpio.gz"):
        if f not in files and (guest / f).exists():
            (guest / f).unlink()
        elif f in files:
            (guest / f).write_bytes(b"not a kernel")
    r = run([x.bin, "--workspace", str(x.ws), "--", "true"], env=x.env,
            timeout=60)
    assert x.marker.exists(), r.stderr.decode(errors="replace")
    argv = x.marker.read_text().splitlines()
    return argv[argv.index(opt) + 1], guest, r


def test_boots_the_unpacked_kernel_when_there(env, tmp_path, request):
    k, guest, _ = kernel_arg(env, tmp_path, request, ("vmlinux", "vmlinuz", "initramfs.cpio"))
    assert k == str(guest / "vmlinux")


def test_boots_the_bzimage_when_alone(env, tmp_path, request):
    k, guest, _ = kernel_arg(env, tmp_path, request, ("vmlinuz", "initramfs.cpio"))
    assert k == str(guest / "vmlinuz")


def test_boots_the_uncompressed_initramfs_when_there(env, tmp_path, request):
    i, guest, _ = kernel_arg(env, tmp_path, request,
                             ("vmlinux", "initramfs.cpio", "initramfs.cpio.gz"),
                             opt="-initrd")
    assert i == str(guest / "initramfs.cpio")


def test_boots_an_older_gzipped_initramfs_when_alone(env, tmp_path, request):
    i, guest, _ = kernel_arg(env, tmp_path, request,
                             ("vmlinux", "initramfs.cpio.gz"), opt="-initrd")
    assert i == str(guest / "initramfs.cpio.gz")


@pytest.mark.parametrize("missing", ["vmlinuz", "initramfs.cpio"])
def test_no_kernel_or_initramfs_names_the_guest_dir(env, tmp_path, request,
                                                   missing):
    x = fake_vm(env, tmp_path, request, QEMU_ARGV_EXITS, marker="qemu-argv")
    os.unlink(tmp_path / "guest" / missing)
    r = run([x.bin, "--workspace", str(x.ws), "--", "true"], env=x.env,
            timeout=60)
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0
    assert not x.marker.exists()
    assert "guest kernel or initramfs not found in %s" % (tmp_path / "guest") \
        in err, err


# guest/kernel-elf.sh on bzImages made here: a boot protocol header whose
# payload is an xz stream of a small ELF (with or without the PVH note)
# followed by the unpacked size, as the kernel's build lays it out.
NOTE = """
.section .note.Xen, "a"
.balign 4
.long 4, 4, {type}
.asciz "Xen"
.long 0x1000000
.text
.globl _start
_start: hlt
"""


def small_elf(tmp_path, note_type):
    src = tmp_path / ("k%x.s" % note_type)
    src.write_text(NOTE.format(type=note_type))
    out = tmp_path / ("k%x" % note_type)
    subprocess.run(["gcc", "-nostdlib", "-static", "-o", str(out), str(src)],
                   check=True, timeout=60)
    return out.read_bytes()


def bzimage(payload, unpacked_size, cut=0):
    setup_sects = 1
    head = bytearray(512 * (setup_sects + 1))
    head[0x1f1] = setup_sects
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", head, 0x206, 0x020f)
    body = payload + struct.pack("<I", unpacked_size)
    struct.pack_into("<II", head, 0x248, 0, len(body))
    img = bytes(head) + body
    return img[:len(img) - cut] if cut else img


def unpack(env, tmp_path, img):
    src = tmp_path / "bzImage"
    src.write_bytes(img)
    out = tmp_path / "vmlinux"
    r = run(["sh", os.path.join(env.src, "guest", "kernel-elf.sh"), str(src),
             str(out)])
    return r.returncode, r.stderr.decode(errors="replace"), out


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c"], input=data, check=True,
                          capture_output=True, timeout=60).stdout


# Debian 12's 6.1 kernel is xz-compressed, bookworm-backports' 6.12 zstd.
@pytest.mark.parametrize("fmt", ["xz", "zstd"])
def test_kernel_elf_unpacks_a_pvh_kernel(env, tmp_path, fmt):
    elf = small_elf(tmp_path, 0x12)
    payload = lzma.compress(elf, format=lzma.FORMAT_XZ,
                            check=lzma.CHECK_CRC32) if fmt == "xz" else zstd(elf)
    rc, err, out = unpack(env, tmp_path, bzimage(payload, len(elf)))
    assert rc == 0, err
    assert out.read_bytes() == elf


@pytest.mark.parametrize("case, why", [
    ("no-pvh", "no PVH entry note"),
    ("size", "where the image says"),
    ("cut", "runs past the file"),
    ("format", "payload format"),
    ("header", "no bzImage boot header"),
])
def test_kernel_elf_refuses_with_the_reason(env, tmp_path, case, why):
    elf = small_elf(tmp_path, 0x12 if case != "no-pvh" else 0x11)
    xz = lzma.compress(elf, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
    img = {"no-pvh": lambda: bzimage(xz, len(elf)),
           "size": lambda: bzimage(xz, len(elf) + 1),
           "cut": lambda: bzimage(xz, len(elf), cut=100),
           "format": lambda: bzimage(b"\0" * 64, len(elf)),
           "header": lambda: b"\0" * 4096}[case]()
    rc, err, out = unpack(env, tmp_path, img)
    assert rc != 0
    assert why in err, err
    assert not out.exists() and not (tmp_path / "vmlinux.tmp").exists()


# guest/module-unsign.sh on modules laid out as the kernel's sign-file
# appends a signature: module, PKCS#7 blob, struct module_signature
# (signer and key id lengths 0, the blob's length big-endian), magic.
MODULE = b"\x7fELF" + bytes(range(256)) * 2


def signed(module=MODULE, sig=b"S" * 300, signer_len=0, sig_len=None):
    trailer = bytes([0, 0, 2, signer_len, 0, 0, 0, 0]) + struct.pack(
        ">I", len(sig) if sig_len is None else sig_len)
    return module + sig + trailer + b"~Module signature appended~\n"


def unsign(env, tmp_path, data):
    f = tmp_path / "m.ko"
    f.write_bytes(data)
    r = run(["sh", os.path.join(env.src, "guest", "module-unsign.sh"), str(f)])
    return r.returncode, r.stderr.decode(errors="replace"), f.read_bytes()


def test_module_unsign_keeps_the_module_whole(env, tmp_path):
    rc, err, out = unsign(env, tmp_path, signed())
    assert rc == 0, err
    assert out == MODULE


def test_module_unsign_leaves_an_unsigned_module(env, tmp_path):
    rc, err, out = unsign(env, tmp_path, MODULE)
    assert (rc, out) == (0, MODULE), err


@pytest.mark.parametrize("data, why", [
    (signed(signer_len=4), "not PKCS#7"),
    (signed(sig_len=10_000), "does not fit"),
    (signed(sig_len=0), "does not fit"),
    (signed(module=b"MZ" + MODULE[2:]), "not an ELF module"),
])
def test_module_unsign_refuses_with_the_reason(env, tmp_path, data, why):
    rc, err, out = unsign(env, tmp_path, data)
    assert rc != 0 and why in err, err
    assert out == data, "a refused file was changed"


# guest/kernel-apt.sh: the private apt configuration a kernel from another
# suite (GUEST_KERNEL_SUITE) is resolved and downloaded with. Nothing here
# touches the network: only the files and the options are checked.
def test_kernel_apt_keeps_everything_in_its_dir(env, tmp_path):
    d = tmp_path / "apt-bookworm-backports"
    r = run(["sh", os.path.join(env.src, "guest", "kernel-apt.sh"),
             "bookworm-backports", str(d)],
            env=dict(os.environ, GUEST_KERNEL_MIRROR="http://mirror.invalid/debian"))
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    opts = r.stdout.decode().split()
    vals = dict(o.split("=", 1) for o in opts if o != "-o")
    for k in ("Dir::Etc::sourcelist", "Dir::Etc::sourceparts",
              "Dir::Etc::preferences", "Dir::Etc::preferencesparts",
              "Dir::State::Lists", "Dir::State::status", "Dir::Cache"):
        assert vals[k].startswith(str(d) + "/"), (k, vals[k])
    assert (d / "status").read_bytes() == b""
    line = (d / "sources.list").read_text().split()
    assert line[-3:] == ["http://mirror.invalid/debian", "bookworm-backports", "main"]
    assert line[1] == "[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"


# A fabricated list, as the private apt configuration would have fetched it
# (apt-cache reads a Packages file without its Release).
PACKAGES = """Package: linux-image-amd64
Version: 6.12.95-1~bpo12+1
Architecture: amd64
Depends: linux-image-6.12.95+deb12-amd64 (= 6.12.95-1~bpo12+1)
Filename: pool/a.deb
Size: 1
Description: a

Package: linux-image-6.12.95+deb12-amd64
Version: 6.12.95-1~bpo12+1
Architecture: amd64
Filename: pool/b.deb
Size: 1
Description: b
"""


def test_kernel_pkg_refreshes_old_lists_and_keeps_them_offline(env, tmp_path):
    """guest/kernel-pkg.sh: lists more than a day old are fetched again;
    when the mirror cannot be reached (a closed loopback port here) the
    old ones resolve the kernel, with a warning, and the next make guest
    tries again. With no lists at all, it fails and says why."""
    port = free_port()  # nothing listens there: the mirror is unreachable
    d = tmp_path / "apt-bookworm-backports"
    menv = dict(os.environ, GUEST_KERNEL_MIRROR=f"http://127.0.0.1:{port}/debian")
    script = os.path.join(env.src, "guest", "kernel-pkg.sh")
    r = run(["sh", script, "bookworm-backports", str(d)], env=menv)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 1 and "failed (is the mirror reachable?)" in err, err
    (d / "lists").mkdir(exist_ok=True)  # the failed fetch removed it
    (d / "lists" / f"127.0.0.1:{port}_debian_dists_bookworm-backports_main_binary-amd64_Packages"
     ).write_text(PACKAGES)
    stamp = d / "updated"
    stamp.touch()
    old = time.time() - 2 * 86400
    os.utime(stamp, (old, old))
    r = run(["sh", script, "bookworm-backports", str(d)], env=menv)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err
    assert "more than a day old" in err and "using the lists fetched before" in err, err
    assert r.stdout.decode() == ("linux-image-6.12.95+deb12-amd64 "
                                 "6.12.95-1~bpo12+1 bookworm-backports\n")
    assert stamp.stat().st_mtime == old  # not marked fetched
    # Within a day of a fetch, no network at all.
    stamp.touch()
    r = run(["sh", script, "bookworm-backports", str(d)], env=menv)
    assert r.returncode == 0 and b"apt-get update" not in r.stderr, r.stderr
