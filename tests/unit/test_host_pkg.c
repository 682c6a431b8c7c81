/* The host's package state for a guest over the host's /usr: which
 * accounts reach the guest (system ones only, without members), which
 * apt files never do, and the QEMU shares it becomes (read-only). */
#include <stdlib.h>
#include <string.h>

#include "../../launcher/host_pkg.h"
#include "../../launcher/launch.h"
#include "tap.h"

static void test_accounts(void)
{
	static const char passwd[] =
		"root:x:0:0:root:/root:/bin/bash\n"
		"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
		"_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
		"alice:x:1000:1000:Alice Liddell,,,:/home/alice:/bin/bash\n"
		"bob:x:999999:100::/home/bob:/bin/sh\n"
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
		"+nis::::::\n"
		"broken:x:12a:1::/:/bin/sh\n"
		"short:x\n"
		"noeol:x:7:7::/:/bin/sh";
	char out[1024];
	host_system_accounts(passwd, 0, out, sizeof(out));
	is_str(out,
	       "root:x:0:0:root:/root:/bin/bash\n"
	       "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
	       "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n"
	       "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	       "noeol:x:7:7::/:/bin/sh\n",
	       "passwd: system accounts only, people and NIS and junk dropped");

	static const char group[] = "root:x:0:\n"
				    "sudo:x:27:alice,bob\n"
				    "ssl-cert:x:103:postgres\n"
				    "alice:x:1000:\n"
				    "nogroup:x:65534:\n";
	host_system_accounts(group, 1, out, sizeof(out));
	is_str(out, "root:x:0:\nsudo:x:27:\nssl-cert:x:103:\nnogroup:x:65534:\n",
	       "group: system groups, members dropped (no person's name)");

	char tiny[20];
	host_system_accounts(passwd, 0, tiny, sizeof(tiny));
	ok(strlen(tiny) < sizeof(tiny) && strchr(tiny, 'r') == NULL,
	   "a line that does not fit is left out whole, not cut");
	host_system_accounts("", 0, out, sizeof(out));
	is_str(out, "", "empty input");
}

static void test_secrets(void)
{
	ok(host_apt_is_secret("auth.conf"), "auth.conf is a credential");
	ok(host_apt_is_secret("auth.conf.d"), "auth.conf.d is a credential");
	ok(!host_apt_is_secret("sources.list"), "sources.list is not");

	static const struct {
		const char *text;
		bool secret;
	} texts[] = {
		{"deb https://deb.debian.org/debian bookworm main\n", false},
		{"deb [signed-by=/usr/share/keyrings/k.gpg] "
		 "https://TOKEN:@packages.example.com/deb stable main\n", true},
		{"Types: deb\nURIs: https://user:pw@repo.example.com/x\n", true},
		{"Acquire::http::Proxy \"http://me:secret@proxy:3128\";\n", true},
		{"Acquire::http::Proxy \"http://proxy:3128\";\n", false},
		{"# mail me@example.com about https://x.example/y\n", false},
		{"deb http://ftp.example.org/a@b/debian stable main\n", false},
		{"deb cdrom:[Debian 12]/ bookworm main\n", false},
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		ok(host_apt_text_has_credentials(texts[i].text,
						 strlen(texts[i].text)) ==
			   texts[i].secret,
		   "%s credentials: %s", texts[i].secret ? "has" : "no",
		   texts[i].text);
}

static bool has(const struct strv *a, const char *s)
{
	for (size_t i = 0; i < a->n; i++)
		if (strstr(a->v[i], s))
			return true;
	return false;
}

static void test_qemu_shares(void)
{
	struct qemu_config c = {
		.qemu = "qemu", .kernel = "/k", .initrd = "/i",
		.workspace = "/tmp/ws", .vhost_sock = "/s/v", .console_log = "/r/c",
		.hostname = "h", .accel = ACCEL_TCG, .memory_mb = 512, .cpus = 1,
		.uid = 1000, .gid = 1000, .host_etc = "/r/host-etc",
		.host_dpkg = HOST_DPKG_DIR,
	};
	struct strv a = {0};
	is_int(qemu_cmd_build(&c, &a), 0, "builds with host package state");
	ok(has(&a, "local,id=etc,path=/r/host-etc,security_model=none,readonly=on"),
	   "hostetc is shared read-only");
	ok(has(&a, "local,id=dpkg,path=/var/lib/dpkg,security_model=none,readonly=on"),
	   "hostdpkg is shared read-only");
	ok(has(&a, "sandbox.hostpkg=on"), "the guest is told");
	strv_free(&a);

	c.root_image = "/img/test.img";
	struct strv b = {0};
	is_int(qemu_cmd_build(&c, &b), 0, "builds with an image");
	ok(!has(&b, "hostdpkg") && !has(&b, "hostpkg"),
	   "an image root never gets the host's package state");
	strv_free(&b);
}

int main(void)
{
	test_accounts();
	test_secrets();
	test_qemu_shares();
	return done_testing();
}
