"""Which kernel the launcher boots: the unpacked ELF `vmlinux` that
`make guest` writes beside Debian's bzImage (guest/kernel-elf.sh; under
TCG the bzImage spends seconds decompressing itself), and the bzImage
when a guest dir has only that. The fake QEMU writes its command line."""
import os

from sbxtest import run
from sbxtest.launcher import QEMU_ARGV_EXITS, fake_vm


def kernel_arg(env, tmp_path, request, files):
    x = fake_vm(env, tmp_path, request, QEMU_ARGV_EXITS, marker="qemu-argv")
    guest = tmp_path / "guest"
    for f in ("vmlinux", "vmlinuz"):
        if f not in files and (guest / f).exists():
            (guest / f).unlink()
        elif f in files:
            (guest / f).write_bytes(b"not a kernel")
    r = run([x.bin, "--workspace", str(x.ws), "--", "true"], env=x.env,
            timeout=60)
    assert x.marker.exists(), r.stderr.decode(errors="replace")
    argv = x.marker.read_text().splitlines()
    return argv[argv.index("-kernel") + 1], guest, r


def test_boots_the_unpacked_kernel_when_there(env, tmp_path, request):
    k, guest, _ = kernel_arg(env, tmp_path, request, ("vmlinux", "vmlinuz"))
    assert k == str(guest / "vmlinux")


def test_boots_the_bzimage_when_alone(env, tmp_path, request):
    k, guest, _ = kernel_arg(env, tmp_path, request, ("vmlinuz",))
    assert k == str(guest / "vmlinuz")


def test_no_kernel_names_the_guest_dir(env, tmp_path, request):
    x = fake_vm(env, tmp_path, request, QEMU_ARGV_EXITS, marker="qemu-argv")
    os.unlink(tmp_path / "guest" / "vmlinuz")
    r = run([x.bin, "--workspace", str(x.ws), "--", "true"], env=x.env,
            timeout=60)
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0
    assert not x.marker.exists()
    assert "guest kernel or initramfs not found in %s" % (tmp_path / "guest") \
        in err, err
