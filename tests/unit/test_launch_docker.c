/* sandbox-launch --docker: its options, the QEMU command line it makes,
 * and the agent descriptor's docker: key. */
#include <string.h>

#include "../../launcher/agents.h"
#include "../../launcher/launch.h"
#include "tap.h"

static const char *after(const struct strv *a, const char *opt, int nth)
{
	for (size_t i = 0; i + 1 < a->n; i++)
		if (!strcmp(a->v[i], opt) && nth-- == 0)
			return a->v[i + 1];
	return "";
}

static int count(const struct strv *a, const char *needle)
{
	int n = 0;
	for (size_t i = 0; i < a->n; i++)
		n += strstr(a->v[i], needle) != NULL;
	return n;
}

int main(void)
{
	struct launch_opts o;
	char err[256];
	char *argv[] = {"sandbox-launch", "--docker", "--disk-size", "4G",
			"--registry-mirror", "https://mirror.test:5000/",
			"--", "true", NULL};
	is_int(launch_opts_parse(8, argv, &o, err, sizeof(err)), LAUNCH_OPTS_OK,
	       "--docker --disk-size --registry-mirror parse");
	ok(o.docker && o.disk_size_mb == 4096 &&
		   !strcmp(o.registry_mirror, "https://mirror.test:5000/"),
	   "values kept");
	launch_opts_free(&o);

	char *bad[] = {"sandbox-launch", "--disk-size", "12", "--", "true", NULL};
	is_int(launch_opts_parse(5, bad, &o, err, sizeof(err)), LAUNCH_OPTS_USAGE,
	       "a disk under 1 GB is refused");
	ok(strstr(err, "--disk-size 12") != NULL, "says which: %s", err);
	launch_opts_free(&o);

	unsigned mb = 0;
	is_int(launch_disk_size_parse("2048", &mb), 0, "MB");
	is_int(mb, 2048, "2048 MB");
	is_int(launch_disk_size_parse("16g", &mb), 0, "GB");
	is_int(mb, 16384, "16G");
	ok(launch_disk_size_parse("", &mb) && launch_disk_size_parse("-1G", &mb) &&
		   launch_disk_size_parse("1T", &mb) &&
		   launch_disk_size_parse("2000G", &mb) &&
		   launch_disk_size_parse("1G ", &mb) &&
		   launch_disk_size_parse("99999999999999999999", &mb),
	   "junk, negative, other units and too large refused");

	ok(launch_mirror_valid("http://127.0.0.1:5000") &&
		   launch_mirror_valid("https://mirror.gcr.io"),
	   "mirror URLs");
	/* It ends up inside a JSON string and on the kernel command line. */
	ok(!launch_mirror_valid("ftp://x") && !launch_mirror_valid("https://a\"b") &&
		   !launch_mirror_valid("https://a b") &&
		   !launch_mirror_valid("https://a\\b") &&
		   !launch_mirror_valid("https://a sandbox.uid=0"),
	   "quotes, spaces, backslashes and other schemes refused");

	struct qemu_config qc = {
		.qemu = "qemu-system-x86_64", .kernel = "/g/vmlinuz",
		.initrd = "/g/initramfs.cpio", .workspace = "/home/u/a",
		.vhost_sock = "/run/s/vhost.sock", .console_log = "/r/console.log",
		.hostname = "box", .accel = ACCEL_TCG, .memory_mb = 512, .cpus = 1,
		.uid = 1001, .gid = 1002, .docker = true,
		.docker_disk = "/r/docker.img",
		.registry_mirror = "http://127.0.0.1:5000",
	};
	struct strv a = {0};
	is_int(qemu_cmd_build(&qc, &a), 0, "command line with Docker");
	ok(strstr(after(&a, "-append", 0), " sandbox.docker=on") &&
		   strstr(after(&a, "-append", 0),
			  " sandbox.docker_mirror=http://127.0.0.1:5000"),
	   "guest told: %s", after(&a, "-append", 0));
	ok(count(&a, "serial=sandbox-docker") == 1 &&
		   count(&a, "file=/r/docker.img,") == 1,
	   "the data disk is attached once");
	strv_free(&a);

	qc.docker = false;
	struct strv b = {0};
	is_int(qemu_cmd_build(&qc, &b), 0, "command line without Docker");
	ok(!count(&b, "docker"), "no Docker parameter or disk without --docker");
	strv_free(&b);

	struct agent ag;
	unsigned line, col;
	const char *why;
	static const char yes[] = "command: [x]\npreset: p\ndocker: true\n";
	is_int(agent_parse(yes, sizeof(yes) - 1, &ag, &line, &col, &why),
	       AGENT_OK, "docker: true");
	ok(ag.docker, "asks for Docker");
	static const char on[] = "command: [x]\npreset: p\ndocker: yes\n";
	is_int(agent_parse(on, sizeof(on) - 1, &ag, &line, &col, &why),
	       AGENT_BAD_VALUE, "docker: yes refused");
	is_int(line, 3, "at its line");
	return done_testing();
}
