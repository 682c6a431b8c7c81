"""End-to-end tests of sandbox-launch --image under TCG (docs/images.md).

The test image (images/test: host ip, nft, ldconfig with their libraries,
busybox and marker files) is built by images/build.sh into a temporary
directory, which takes about a second. Boots: (1) as a non-root host user,
with the image by NAME through SANDBOX_IMAGES_DIR: the image's /usr and
/etc are what the guest sees, the host's /usr is not shared, the
workspace is; (2) as root in the guest (the launcher run by root): writes
to /usr land in the overlay, and every way root has to write to the image
(mounting it read-write, writing the block device, after BLKROSET) fails,
so its hash on the host is unchanged; (3) again, showing (2)'s writes are
gone. Plus the errors for missing and bad images, which need no boot.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_launch_basic import LAUNCH, SRC, Env, require  # noqa: E402

# On the host, never in the test image: the guest must not see it.
HOST_ONLY = "/usr/bin/python3"


@pytest.fixture(scope="module")
def images():
    """A directory holding test.img, built by images/build.sh."""
    require()
    d = tempfile.mkdtemp(prefix="sbx-images-", dir="/tmp")
    os.chmod(d, 0o755)
    r = subprocess.run(["sh", os.path.join(SRC, "images", "build.sh"), "test", d],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    img = os.path.join(d, "test.img")
    os.chmod(img, 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def env():
    e = Env()
    yield e
    e.cleanup()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_with_images(env, images, args, **kw):
    """Run the launcher as the test user with SANDBOX_IMAGES_DIR set."""
    argv = env.argv(args)
    i = argv.index("env") + 1
    argv.insert(i, "SANDBOX_IMAGES_DIR=" + images)
    kw.setdefault("timeout", 240)
    kw.setdefault("capture_output", True)
    kw.setdefault("cwd", env.ws)
    return subprocess.run(argv, **kw)


# ------------------------------------------------------------ no boot

def test_build_writes_manifest(images):
    with open(os.path.join(images, "test.json")) as f:
        m = json.load(f)
    assert m["name"] == "test" and m["kind"] == "host"
    assert "/usr/sbin/nft" in m["host_files"]
    # Only the image and its manifest are left; the tree is removed.
    assert sorted(os.listdir(images)) == ["test.img", "test.json"]
    with open(os.path.join(images, "test.img"), "rb") as f:
        f.seek(1024 + 56)
        assert f.read(2) == b"\x53\xef"  # ext4 magic


def test_missing_and_bad_images_are_one_clear_line(env, images):
    empty = tempfile.mkdtemp(prefix="sbx-noimg-", dir="/tmp")
    try:
        r = run_with_images(env, empty, ["--image", "agents", "--", "true"])
        assert r.returncode == 125
        assert r.stderr.decode().startswith(
            "sandbox-launch: image 'agents' not built: run make image ")
        assert r.stderr.count(b"\n") == 1
        r = run_with_images(env, empty, ["--image", "nosuch", "--", "true"])
        assert r.returncode == 125
        assert b"image 'nosuch' not built: run make image IMAGE=nosuch" in r.stderr
        assert r.stderr.count(b"\n") == 1
    finally:
        os.rmdir(empty)
    r = env.run(["--image", "/nonexistent/x.img", "--", "true"])
    assert r.returncode == 125
    assert r.stderr == b"sandbox-launch: image /nonexistent/x.img: No such file or directory\n"
    notimg = os.path.join(env.ws, "not.img")
    with open(notimg, "wb") as f:
        f.write(b"\0" * 4096)
    env.own(notimg)
    r = env.run(["--image", notimg, "--", "true"])
    assert r.returncode == 125
    assert b"is not an ext4 filesystem image" in r.stderr
    assert r.stderr.count(b"\n") == 1
    r = env.run(["--image", "bad name", "--", "true"])
    assert r.returncode == 125 and b"--image bad name" in r.stderr
    # Each failed before anything was started (no run directory).
    assert env.runs() == []


# ------------------------------------------------------------ boots

PROBE_USER = r"""
echo "name=$(cat /usr/share/sandbox-image/name)"
echo "etc=$(cat /etc/sandbox-image-etc)"
test -e %(host_only)s && echo host-usr-visible || echo host-usr-absent
grep -q ' /usr overlay ' /proc/mounts && echo usr-overlay
grep -q hostusr /proc/mounts && echo hostusr-mounted
echo "from-host=$(cat from-host.txt)"
echo guest-wrote > from-guest.txt
touch /usr/bin/x 2>/dev/null && echo user-wrote-usr || echo user-usr-denied
id -u
"""


def test_image_is_the_root(env, images):
    with open(os.path.join(env.ws, "from-host.txt"), "w") as f:
        f.write("hello")
    env.own(os.path.join(env.ws, "from-host.txt"))
    assert os.path.exists(HOST_ONLY)
    before = sha256(os.path.join(images, "test.img"))
    r = run_with_images(env, images, ["--image", "test", "--", "sh", "-c",
                                      PROBE_USER % {"host_only": HOST_ONLY}])
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr)
    lines = out.split("\n")
    assert "name=test" in lines
    assert "etc=image test" in lines          # the image's own /etc
    assert "host-usr-absent" in lines         # host /usr is not shared
    assert "usr-overlay" in lines
    assert "hostusr-mounted" not in lines
    assert "from-host=hello" in lines         # the workspace, as usual
    assert "user-usr-denied" in lines
    assert str(env.uid) in lines
    with open(os.path.join(env.ws, "from-guest.txt")) as f:
        assert f.read() == "guest-wrote\n"
    assert sha256(os.path.join(images, "test.img")) == before


PROBE_ROOT = r"""
id -u
dev=
for b in /sys/block/vd*; do
    [ "$(cat $b/serial 2>/dev/null)" = sandbox-rootimg ] && dev=/dev/${b##*/}
done
echo "dev=$dev"
echo overlay > /usr/share/sandbox-image/name && echo "usr-now=$(cat /usr/share/sandbox-image/name)"
echo new > /usr/share/sandbox-image/added && echo added-file
mkdir -p /mnt/rw
# busybox mount falls back to read-only when rw is refused: try a write.
try_fs() {
    mount -t ext4 -o rw "$dev" /mnt/rw 2>/dev/null || { echo "$1-mount-refused"; return; }
    grep " /mnt/rw " /proc/mounts | cut -d' ' -f4 | cut -d, -f1 | sed "s/^/$1-mounted-/"
    echo x > /mnt/rw/usr/share/sandbox-image/name 2>/dev/null && sync && echo "$1-wrote-fs"
    umount /mnt/rw
}
try_fs first
dd if=/dev/zero of="$dev" bs=4096 seek=8 count=16 conv=notrunc,fsync 2>/dev/null && echo dd-ok || echo dd-refused
blockdev --setrw "$dev" && echo setrw-ok
dd if=/dev/zero of="$dev" bs=4096 seek=8 count=16 oflag=direct conv=notrunc,fsync 2>/dev/null && echo dd2-ok || echo dd2-refused
try_fs second
echo probe-done
"""


def test_image_read_only_for_root_and_writes_discarded(env, images):
    if os.geteuid() != 0:
        pytest.skip("root in the guest needs the launcher run by root")
    img = os.path.join(images, "test.img")
    before = sha256(img)
    ws = tempfile.mkdtemp(prefix="sbx-rootws-", dir="/tmp")
    try:
        r = subprocess.run(
            ["env", "HOME=" + env.home, "XDG_STATE_HOME=" + env.state,
             "XDG_RUNTIME_DIR=", "SANDBOX_IMAGES_DIR=" + images, LAUNCH,
             "--image", img, "--workspace", ws, "--", "sh", "-c", PROBE_ROOT],
            capture_output=True, timeout=240, cwd=ws)
    finally:
        shutil.rmtree(ws, ignore_errors=True)
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr)
    lines = out.split("\n")
    assert lines[0] == "0"
    assert any(l.startswith("dev=/dev/vd") for l in lines), out
    assert "usr-now=overlay" in lines and "added-file" in lines
    assert "first-mounted-rw" not in lines and "first-wrote-fs" not in lines, out
    assert "dd-refused" in lines
    # BLKROSET is root's to flip in the guest; QEMU still refuses the I/O.
    assert "setrw-ok" in lines
    assert "dd2-refused" in lines, out
    assert "second-wrote-fs" not in lines, out
    assert "probe-done" in lines
    assert sha256(img) == before

    # A fresh run sees the image as built: the overlay writes are gone.
    r = run_with_images(env, images, ["--image", "test", "--", "sh", "-c",
                                      "cat /usr/share/sandbox-image/name; "
                                      "ls /usr/share/sandbox-image"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n")[:1] == ["test"]
    assert b"added" not in r.stdout
    assert sha256(img) == before
