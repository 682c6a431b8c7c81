"""A named sandbox is a persistent machine (issue 14): its writable layer
covers /usr, /etc, /var, /opt and /srv (plus /home and /root), so a package
installed with dpkg stays installed, with dpkg's database consistent with
the files, in both root modes:

- over the host's /usr, the host's /var/lib/dpkg and a credential-free copy
  of /etc/apt are the read-only lower layers of the guest's, with the
  host's system accounts (never a person's) for dpkg's statoverrides;
- over an image, the image's /etc, /var, /opt and /srv are the lower
  layers, so its own users and groups are kept and the sandbox's added.

Synthesised files (/etc/hosts) are rewritten at each boot; an unnamed run
sees nothing of a named sandbox's layer. The package is built here with
dpkg-deb (no network): a script and a postinst that writes to /var/lib.
A later run of the image sandbox without --image runs over the image it
was made on. Six boots, about two minutes under TCG.
"""
import os
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_launch_basic import SRC, Env, require  # noqa: E402

IMAGE = os.path.join(SRC, "build", "images", "test.img")
PROBE_OK = "sbx-hello says hi"


def build_deb(ws, uid, gid):
    root = os.path.join(ws, "pkg")
    os.makedirs(os.path.join(root, "DEBIAN"))
    os.makedirs(os.path.join(root, "usr", "bin"))
    with open(os.path.join(root, "DEBIAN", "control"), "w") as f:
        f.write("Package: sbx-hello\nVersion: 1.0\nArchitecture: all\n"
                "Maintainer: tests <tests@example.invalid>\n"
                "Description: sandbox persistence test package\n")
    with open(os.path.join(root, "DEBIAN", "postinst"), "w") as f:
        f.write("#!/bin/sh\nmkdir -p /var/lib/sbx-hello\n"
                "echo configured > /var/lib/sbx-hello/state\n")
    with open(os.path.join(root, "usr", "bin", "sbx-hello"), "w") as f:
        f.write("#!/bin/sh\necho '%s'\n" % PROBE_OK)
    os.chmod(os.path.join(root, "DEBIAN", "postinst"), 0o755)
    os.chmod(os.path.join(root, "usr", "bin", "sbx-hello"), 0o755)
    deb = os.path.join(ws, "sbx-hello.deb")
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", root, deb],
                   check=True, capture_output=True)
    if os.geteuid() == 0:
        os.chown(deb, uid, gid)
    return deb


def checks(out):
    """CHECK name=value lines of a probe's output."""
    c = {}
    for line in out.splitlines():
        if line.startswith("CHECK ") and "=" in line:
            k, v = line[6:].split("=", 1)
            c[k] = v
    return c


SAY = 'say() { echo "CHECK $1=$2"; }; '


@pytest.fixture(scope="module")
def runs():
    require()
    if not os.path.isfile(IMAGE):
        pytest.fail("%s missing: run `make image IMAGE=test`" % IMAGE)
    env = Env()
    deb = build_deb(env.ws, env.uid, env.gid)
    tok = uuid.uuid4().hex[:8]
    # A credential apt would use, readable by the test user: the guest
    # must not see it (host_etc_prepare leaves auth.conf.d out).
    # Two kinds: apt's auth.conf.d, and a token in a source's URL (here a
    # comment, so the host's apt never uses it; the copy leaves out any
    # file with a URL that carries a user or password).
    planted = {
        "/etc/apt/auth.conf.d/sbx-e2e-%s.conf" % tok:
            "machine example.invalid login sbx password %s\n" % tok,
        "/etc/apt/sources.list.d/sbx-e2e-%s.list" % tok:
            "# deb https://%s:@example.invalid/debian stable main\n" % tok,
    }
    made = []
    if os.geteuid() == 0:
        for path, text in planted.items():
            if os.path.isdir(os.path.dirname(path)):
                with open(path, "w") as f:
                    f.write(text)
                os.chmod(path, 0o644)
                made.append(path)
    made_secret = len(made) == len(planted)
    res = {"tok": tok, "made_secret": made_secret}
    try:
        def run(name, args, script):
            r = env.run(args + ["--", "sh", "-c", SAY + script],
                        timeout=240)
            assert r.returncode == 0, (name, r.stdout, r.stderr)
            res[name] = checks(r.stdout.decode())

        human = os.environ.get("SUDO_USER") or "sbxtest"
        run("host1", ["--name", "ph", "--root"],
            "dpkg -i %s >/dev/null 2>&1; say dpkg_i $?; "
            "echo m > /etc/sbx-marker; echo o > /opt/sbx-o; "
            "echo s > /srv/sbx-s; echo junk-%s >> /etc/hosts; "
            "ln -sfn /usr/bin/true /etc/alternatives/awk; "
            "say adm \"$(grep -c '^adm:' /etc/group)\"; "
            "say human \"$(grep -c '^%s:' /etc/passwd)\"; "
            "say secret \"$(grep -r %s /etc/apt 2>/dev/null | wc -l)\"; "
            "say bash_known \"$(dpkg-query -W -f '${Status}' bash)\""
            % (deb, tok, human, tok))
        run("host2", ["--name", "ph"],
            "say status \"$(dpkg-query -W -f '${Status}' sbx-hello)\"; "
            "say run \"$(sbx-hello)\"; "
            "say files \"$(cat /etc/sbx-marker /opt/sbx-o /srv/sbx-s "
            "/var/lib/sbx-hello/state | tr '\\n' ' ')\"; "
            "say junk \"$(grep -c junk-%s /etc/hosts)\"; "
            "say awk \"$(readlink /etc/alternatives/awk)\"" % tok)
        run("unnamed", ["--root"],
            "test -e /etc/sbx-marker; say marker $?; "
            "say awk \"$(readlink /etc/alternatives/awk)\"; "
            "dpkg-query -W sbx-hello >/dev/null 2>&1; say pkg $?")
        img = ["--image", IMAGE, "--name", "pi"]
        run("image1", img + ["--root"],
            "/usr/bin/dpkg -i --force-depends %s >/dev/null 2>&1; "
            "say dpkg_i $?; say apt \"$(grep -c '^_apt:' /etc/passwd)\"; "
            "say grp \"$(grep -c '^imagegrp:' /etc/group)\"" % deb)
        run("image2", img,
            "say status \"$(/usr/bin/dpkg-query -W -f '${Status}' sbx-hello)\"; "
            "say run \"$(sbx-hello)\"; "
            "say state \"$(cat /var/lib/sbx-hello/state)\"; "
            "say apt \"$(grep -c '^_apt:' /etc/passwd)\"; "
            "say me \"$(id -un)\"")
        # Without --image: the sandbox runs over the image it was made on.
        run("image3", ["--name", "pi"],
            "say image \"$(cat /usr/share/sandbox-image/name)\"; "
            "say status \"$(/usr/bin/dpkg-query -W -f '${Status}' sbx-hello)\"")
        yield res
    finally:
        for path in made:
            os.unlink(path)
        env.run(["rm", "ph"], timeout=60)
        env.run(["rm", "pi"], timeout=60)
        env.cleanup()


def test_host_mode_dpkg_knows_the_shared_usr(runs):
    c = runs["host1"]
    assert c.get("dpkg_i") == "0", c
    assert c.get("bash_known") == "install ok installed", c


def test_host_mode_package_persists_with_its_database(runs):
    c = runs["host2"]
    assert c.get("status") == "install ok installed", c
    assert c.get("run") == PROBE_OK, c
    assert c.get("files", "").strip() == "m o s configured", c


def test_changed_alternative_persists_over_the_hosts(runs):
    """/etc/alternatives comes from the host (a lower layer baked into the
    initramfs); a named sandbox's change to it is its own and stays, and
    an unnamed run sees the host's again."""
    assert runs["host2"].get("awk") == "/usr/bin/true", runs["host2"]
    assert runs["unnamed"].get("awk") == os.readlink("/etc/alternatives/awk"), runs["unnamed"]


def test_synthesised_files_are_rewritten_each_boot(runs):
    assert runs["host2"].get("junk") == "0", runs["host2"]


def test_host_system_accounts_but_no_person(runs):
    c = runs["host1"]
    assert c.get("adm") == "1", c
    assert c.get("human") == "0", c


def test_apt_credentials_never_reach_the_guest(runs):
    if not runs["made_secret"]:
        pytest.skip("needs root on the host to plant apt credentials")
    assert runs["host1"].get("secret") == "0", runs["host1"]


def test_unnamed_run_sees_nothing_of_a_named_layer(runs):
    c = runs["unnamed"]
    assert c.get("marker") == "1", c
    assert c.get("pkg") != "0", c


def test_named_sandbox_remembers_its_image(runs):
    c = runs["image3"]
    assert c.get("image") == "test", c
    assert c.get("status") == "install ok installed", c


def test_image_mode_keeps_image_accounts_and_the_package(runs):
    c1, c2 = runs["image1"], runs["image2"]
    assert c1.get("dpkg_i") == "0", c1
    assert c1.get("apt") == "1" and c1.get("grp") == "1", c1
    assert c2.get("status") == "install ok installed", c2
    assert c2.get("run") == PROBE_OK, c2
    assert c2.get("state") == "configured", c2
    assert c2.get("apt") == "1", c2
    assert c2.get("me") not in (None, "", "root"), c2
