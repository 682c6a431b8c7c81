"""The seccomp filter sandbox-launch puts in front of virtiofsd
(launcher/virtiofs_seccomp.c), tried directly: tests/tools/virtiofs_filter
installs it and makes the calls virtiofsd makes for a guest, in a scratch
folder; the oracle is what the calls return and what is on disk after.

Refused: setuid/setgid modes (chmod and create), FIFOs, xattr writes.
syncfs gets ENOSYS (the guest kernel then stops sending FUSE_SYNCFS, so a
guest's sync(1) does not flush the host's whole filesystem); fsync and
fdatasync of a file still work, as do plain files and modes. virtiofsd's
FUSE_FLUSH, close(dup(fd)), gets ENOSYS on a local filesystem (the guest
kernel then stops sending a FLUSH on every close); dup2, F_DUPFD and close
still work. On a filesystem not known to be local, FLUSH stays (close can
report a write error there), and so it does when one is mounted anywhere
below the folder.
"""
import os
import stat
import subprocess

import pytest

SRC = os.environ.get("SANDBOX_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SANDBOX_BUILD") or os.path.join(SRC, "build")
TOOL = os.path.join(BUILD, "tools", "virtiofs_filter")


def run(d, *args, prefix=()):
    r = subprocess.run([*prefix, TOOL, str(d), *args], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return dict(l.split("=", 1) for l in r.stdout.split())


def test_filter(tmp_path):
    got = run(tmp_path)
    for call in ("create", "write", "fsync", "fdatasync", "chmod_plain",
                 "dup2", "close", "dupfd", "close_dupfd", "unlink"):
        assert got[call] == "ok", (call, got)
    assert got["syncfs"] == "ENOSYS", got
    assert got["flush_refused"] == "yes", got  # ext4 or tmpfs here
    assert got["flush"] == "ENOSYS", got
    for call in ("chmod_suid", "chmodat_sgid", "create_suid", "mknod_fifo",
                 "setxattr"):
        assert got[call] == "EPERM", (call, got)
    # What is on disk agrees: no setuid file, no FIFO, the plain file gone.
    assert sorted(os.listdir(tmp_path)) == []


def test_without_the_filter_the_calls_work(tmp_path):
    """Positive control: the same calls without the filter do what they
    say (so the refusals above are the filter's)."""
    p = tmp_path / "f"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.fchmod(fd, 0o4755)
        assert stat.S_IMODE(os.fstat(fd).st_mode) & stat.S_ISUID
        os.fsync(fd)
        libc_syncfs = subprocess.run(["sync", "-f", str(p)])
        assert libc_syncfs.returncode == 0
    finally:
        os.close(fd)
    os.mkfifo(tmp_path / "fifo")
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)


def test_flush_kept_where_close_can_fail(tmp_path):
    """keep-flush (what the launcher chooses for NFS, SMB, FUSE and any
    filesystem it does not know to be local): close(dup(fd)) works, the
    rest of the filter is the same."""
    got = run(tmp_path, "keep-flush")
    assert got["flush_refused"] == "no" and got["flush"] == "ok", got
    assert got["syncfs"] == "ENOSYS" and got["chmod_suid"] == "EPERM", got


def in_mount_ns(d, script):
    """The tool run on d in a mount namespace of the test's own, after the
    shell's script (d is its $0) has mounted what it mounts."""
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    return run(d, prefix=("unshare", "--mount", "--propagation", "private",
                          "sh", "-c", script + ' && exec "$@"', str(d)))


def test_unknown_filesystem_keeps_flush(tmp_path):
    """The launcher's choice for a filesystem missing from its list of
    local ones (ramfs, in a mount namespace of the test's own): FLUSH
    kept."""
    got = in_mount_ns(tmp_path, 'mount -t ramfs none "$0"')
    assert got["flush_refused"] == "no" and got["flush"] == "ok", got


def test_unknown_filesystem_below_keeps_flush(tmp_path):
    """virtiofsd serves what is mounted below the workspace too: a ramfs
    (standing for NFS or SMB) on a folder two levels down, whose name
    needs mountinfo's escapes, keeps FLUSH for the whole share."""
    (tmp_path / "deps" / "a share").mkdir(parents=True)
    got = in_mount_ns(tmp_path, 'mount -t ramfs none "$0/deps/a share"')
    assert got["flush_refused"] == "no" and got["flush"] == "ok", got


def test_local_filesystem_below_refuses_flush(tmp_path):
    """A local one below (tmpfs) changes nothing; nor does an unknown one
    beside the workspace rather than below it (a sibling whose name
    starts with the workspace's)."""
    ws = tmp_path / "ws"
    (ws / "cache").mkdir(parents=True)
    (tmp_path / "ws2").mkdir()
    got = in_mount_ns(ws, 'mount -t tmpfs none "$0/cache" && '
                          'mount -t ramfs none "$0"2')
    assert got["flush_refused"] == "yes" and got["flush"] == "ENOSYS", got
