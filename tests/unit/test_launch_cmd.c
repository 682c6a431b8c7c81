/* sandbox-launch: argv parsing and the QEMU command line. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "../../launcher/launch.h"
#include "tap.h"

static enum launch_opts_status parse(struct launch_opts *o, char *err,
				     size_t errsz, int argc, ...)
{
	static char *argv[32];
	va_list ap;
	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	return launch_opts_parse(argc, argv, o, err, errsz);
}

static bool has(const struct strv *a, const char *s)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->v[i], s))
			return true;
	return false;
}

static const char *after(const struct strv *a, const char *opt, int nth)
{
	for (size_t i = 0; i + 1 < a->n; i++)
		if (!strcmp(a->v[i], opt) && nth-- == 0)
			return a->v[i + 1];
	return "";
}

int main(void)
{
	struct launch_opts o;
	char err[256];

	is_int(parse(&o, err, sizeof(err), 9, "sandbox-launch", "--policy", "a.yaml",
		     "--allow", "x.test", "--deny", "y.test", "--", "sh"),
	       LAUNCH_OPTS_OK, "options then -- command");
	is_int(o.n_policies, 1, "one policy");
	is_int(o.n_rules, 2, "two rules");
	ok(o.rules[0].allow && !o.rules[1].allow, "allow then deny, in order");
	is_str(o.cmd[0], "sh", "command");
	is_int(o.cmd_argc, 1, "argc");
	is_str(o.name, "sandbox", "default name");
	ok(!o.root, "the command runs as the invoking user by default");
	launch_opts_free(&o);

	is_int(parse(&o, err, sizeof(err), 4, "sandbox-launch", "--root", "--",
		     "id"),
	       LAUNCH_OPTS_OK, "--root");
	ok(o.root, "--root sets root");
	is_str(o.cmd[0], "id", "--root takes no value");
	launch_opts_free(&o);

	is_int(parse(&o, err, sizeof(err), 9, "sandbox-launch", "-p", "8080:8000",
		     "--publish", "[::1]:9000:90", "--host-port", "5432", "--",
		     "true"),
	       LAUNCH_OPTS_OK, "-p, --publish, --host-port");
	ok(o.n_publish == 2 && !strcmp(o.publish[0], "8080:8000") &&
		   !strcmp(o.publish[1], "[::1]:9000:90"),
	   "both published ports, in order");
	ok(o.n_host_ports == 1 && !strcmp(o.host_ports[0], "5432"),
	   "the host port");
	launch_opts_free(&o);
	is_int(parse(&o, err, sizeof(err), 5, "sandbox-launch", "-p",
		     "localhost:8080:80", "--", "true"),
	       LAUNCH_OPTS_USAGE, "-p with a name for HOST_IP");
	ok(strstr(err, "--publish localhost:8080:80: HOST_IP") != NULL,
	   "says which part: %s", err);
	launch_opts_free(&o);
	is_int(parse(&o, err, sizeof(err), 5, "sandbox-launch", "--host-port",
		     "65536", "--", "true"),
	       LAUNCH_OPTS_USAGE, "--host-port out of range");
	ok(strstr(err, "--host-port 65536") != NULL, "names it: %s", err);
	launch_opts_free(&o);

	is_int(parse(&o, err, sizeof(err), 4, "sandbox-launch", "ls", "--allow", "x"),
	       LAUNCH_OPTS_OK, "options after the command belong to it");
	is_int(o.n_rules, 0, "no rules taken from the command's argv");
	is_int(o.cmd_argc, 3, "command keeps its options");
	launch_opts_free(&o);

	/* The audit log rotates by default; both settable, 0 turns it off. */
	is_int(parse(&o, err, sizeof(err), 2, "sandbox-launch", "true"),
	       LAUNCH_OPTS_OK, "no audit options");
	is_int(o.audit_max_bytes, 16 << 20, "rotates at 16 MiB by default");
	is_int(o.audit_keep, 8, "keeps 8 rotated files by default");
	launch_opts_free(&o);
	is_int(parse(&o, err, sizeof(err), 6, "sandbox-launch", "--audit-max-bytes",
		     "0", "--audit-keep", "3", "true"),
	       LAUNCH_OPTS_OK, "--audit-max-bytes 0 --audit-keep 3");
	ok(o.audit_max_bytes == 0 && o.audit_keep == 3, "both taken");
	launch_opts_free(&o);
	is_int(parse(&o, err, sizeof(err), 4, "sandbox-launch", "--audit-max-bytes",
		     "100", "true"),
	       LAUNCH_OPTS_USAGE, "a rotation size under 8192");
	ok(strstr(err, "--audit-max-bytes 100") != NULL, "names it: %s", err);
	launch_opts_free(&o);
	is_int(parse(&o, err, sizeof(err), 4, "sandbox-launch", "--audit-keep",
		     "1001", "true"),
	       LAUNCH_OPTS_USAGE, "too many kept files");
	launch_opts_free(&o);
	is_int(parse(&o, err, sizeof(err), 4, "sandbox-launch", "--audit-max-bytes",
		     "-1", "true"),
	       LAUNCH_OPTS_USAGE, "a negative size");
	launch_opts_free(&o);

	is_int(parse(&o, err, sizeof(err), 4, "sandbox-launch", "--memory", "12", "true"),
	       LAUNCH_OPTS_USAGE, "memory too small");
	ok(strstr(err, "--memory 12") != NULL, "error names the option: %s", err);
	launch_opts_free(&o);
	is_int(parse(&o, err, sizeof(err), 4, "sandbox-launch", "--env", "1X=2", "true"),
	       LAUNCH_OPTS_USAGE, "bad env name");
	launch_opts_free(&o);
	is_int(parse(&o, err, sizeof(err), 4, "sandbox-launch", "--name", "a b", "true"),
	       LAUNCH_OPTS_USAGE, "bad name");
	launch_opts_free(&o);
	is_int(parse(&o, err, sizeof(err), 2, "sandbox-launch", "--bogus"),
	       LAUNCH_OPTS_USAGE, "unknown option");
	ok(strstr(err, "--bogus") != NULL, "names it: %s", err);
	launch_opts_free(&o);
	is_int(parse(&o, err, sizeof(err), 1, "sandbox-launch"), LAUNCH_OPTS_USAGE,
	       "no command");
	launch_opts_free(&o);
	is_int(parse(&o, err, sizeof(err), 2, "sandbox-launch", "--policy"),
	       LAUNCH_OPTS_USAGE, "missing value");
	ok(strstr(err, "needs a value") != NULL, "says so: %s", err);
	launch_opts_free(&o);
	ok(launch_env_valid("FOO") && launch_env_valid("FOO=a=b") &&
		   !launch_env_valid("=x") && !launch_env_valid("A-B"),
	   "env names");

	ok(qemu_workspace_problem("/home/u/repo") == NULL, "plain path ok");
	ok(qemu_workspace_problem("/usr/src") != NULL, "under /usr refused");
	ok(qemu_workspace_problem("/home/u/my repo") != NULL, "space refused");
	ok(qemu_workspace_problem("/") != NULL, "/ refused");

	struct qemu_config qc = {
		.qemu = "qemu-system-x86_64", .kernel = "/g/vmlinuz",
		.initrd = "/g/initramfs.cpio", .workspace = "/home/u/a,b",
		.vhost_sock = "/run/s/vhost.sock", .console_log = "/r/console.log",
		.hostname = "box", .accel = ACCEL_TCG, .memory_mb = 512, .cpus = 1,
		.uid = 1001, .gid = 1002,
	};
	struct strv a = {0};
	is_int(qemu_cmd_build(&qc, &a), 0, "TCG command line");
	is_str(after(&a, "-accel", 0), "tcg", "tcg");
	is_str(after(&a, "-cpu", 0), "max,erms=off,fsrm=off",
	       "TCG CPU without ERMS/FSRM (rep movsb is byte by byte there)");
	ok(strstr(after(&a, "-append", 0), "tsc_early_khz=2000000 lpj=4000000"),
	   "TCG keeps the TSC options");
	ok(strstr(after(&a, "-append", 0), " cryptomgr.notests ") != NULL,
	   "no crypto self-tests at boot");
	ok(strstr(after(&a, "-append", 0), " initcall_blacklist=jent_mod_init ") != NULL,
	   "no jitter entropy start-up test at boot");
	ok(strstr(after(&a, "-append", 0),
		  "sandbox.workspace=/home/u/a,b sandbox.uid=1001 sandbox.gid=1002 "
		  "sandbox.hostname=box"),
	   "guest parameters: %s", after(&a, "-append", 0));
	is_str(after(&a, "-fsdev", 1),
	       "local,id=ws,path=/home/u/a,,b,security_model=mapped-xattr",
	       "workspace share: mapped-xattr, comma escaped");
	is_str(after(&a, "-fsdev", 0),
	       "local,id=usr,path=/usr,security_model=none,readonly=on",
	       "/usr read-only");
	ok(has(&a, "virtio-mmio.force-legacy=false"), "modern virtio-mmio");
	ok(has(&a, "memory-backend-memfd,id=mem,size=512M,share=on"),
	   "shared memfd RAM");
	ok(has(&a, "vhost-user-vsock-device,chardev=vs"), "vsock device");
	ok(!has(&a, "-netdev") && !has(&a, "-nic"), "no network card");
	is_int(a.v[a.n] == NULL, 1, "NULL-terminated");
	strv_free(&a);

	qc.accel = ACCEL_KVM;
	is_int(qemu_cmd_build(&qc, &a), 0, "KVM command line");
	is_str(after(&a, "-accel", 0), "kvm", "kvm");
	is_str(after(&a, "-cpu", 0), "host", "KVM: the host's CPU");
	ok(!strstr(after(&a, "-append", 0), "tsc_early_khz"), "no TCG options");
	strv_free(&a);

	qc.workspace = "/etc";
	is_int(qemu_cmd_build(&qc, &a), -EINVAL, "refuses a reserved workspace");
	strv_free(&a);

	ok(accel_kvm_failed("qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0"),
	   "the MSR failure is a KVM failure");
	ok(!accel_kvm_failed("qemu-system-x86_64: -fsdev: cannot open"),
	   "other errors are not");
	return done_testing();
}
