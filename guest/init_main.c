/* sandbox-init: PID 1 of the sandbox guest. See guest.h for the order of
 * the steps and docs/guest.md for the kernel command line. */
#include "guest.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../parse/cmd_channel.h"
#include "../common/util.h"

static struct boot_config cfg;

/* what is read through its address after r was computed: C leaves the
 * order of a call's argument evaluations open, so step(f(&what), ...,
 * what) could pass what as it was before f ran. */
static void step(int r, const char *step_name, const char *const *what)
{
	if (r)
		fatal("%s: %s: %s", step_name, *what ? *what : "?",
		      strerror(r < 0 ? -r : r));
}

static int control_listen(void)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
				 .svm_cid = VMADDR_CID_ANY,
				 .svm_port = CONTROL_VSOCK_PORT};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 4) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* sandbox.debug=script:PATH runs PATH as root with /bin/sh once the guest
 * is fully set up, output on the console, instead of the control channel. */
static void run_debug_script(void)
{
	const char *argv[] = {"/bin/sh", cfg.debug_script, NULL};
	log_msg("running debug script %s", cfg.debug_script);
	int r = run_wait(argv);
	log_msg("debug script exited with %d", r);
}

int main(void)
{
	const char *what = NULL;
	if (getpid() != 1) {
		fputs("sandbox-init: must run as PID 1 inside the sandbox guest\n",
		      stderr);
		return 2;
	}
	umask(022);
	step(mount_early(&what), "early mounts", &what);
	console_setup();
	timing_mark("init");

	/* read_file() trusts st_size, which is 0 for /proc files. */
	static char cmdline[65536];
	int cfd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t clen = cfd < 0 ? -1 : read(cfd, cmdline, sizeof(cmdline) - 1);
	if (clen < 0)
		fatal("read /proc/cmdline: %s", strerror(errno));
	close(cfd);
	cmdline[clen] = '\0';
	const char *why;
	if (cmdline_parse(cmdline, &cfg, &why))
		fatal("kernel command line: %s", why);
	fatal_set_shell(cfg.debug_shell);

	step(modules_load("/lib/modules",
			  cfg.root_image || cfg.upper_disk || cfg.docker,
			  &what),
	     "load module", &what);
	int r = docker_modules(&cfg, &what);
	step(r, "load Docker's modules", &what);
	timing_mark("modules");
	r = docker_disk_find(&cfg, &what);
	step(r, "Docker's data disk", &what);
	r = root_build(&cfg, &what);
	step(r, "build root", &what);
	r = docker_storage(&cfg, &what);
	step(r, "Docker's data root", &what);
	timing_mark("mounts");
	step(etc_write(&cfg, &what), "write /etc", &what);
	step(root_switch(&what), "switch root", &what);
	timing_mark("etc");
	if (sethostname(cfg.hostname, strlen(cfg.hostname)) < 0)
		fatal("sethostname: %s", strerror(errno));
	/* A fresh cache (the host's for its /usr, or a read-only image's)
	 * spares ldconfig's scan of /usr over 9p; a named sandbox's layer may
	 * hold libraries of its own, so it rebuilds its cache. */
	const char *ldconfig[] = {"/sbin/ldconfig", NULL};
	if ((cfg.upper_disk || access("/etc/ld.so.cache", F_OK) != 0) &&
	    run_wait(ldconfig) != 0)
		log_msg("ldconfig failed; programs fall back to the default "
			"library path");
	timing_mark("ldconfig");
	step(netcap_setup(&what), "network capture", &what);
	timing_mark("netcap");
	step(forwarders_start(&what), "forwarders", &what);
	timing_mark("forwarders");
	r = docker_start(&cfg, &what);
	step(r, "start dockerd", &what);
	if (cfg.docker)
		timing_mark("dockerd");

	if (cfg.debug_shell) {
		const char *sh[] = {"/bin/sh", NULL};
		log_msg("debug shell; exit to power off");
		run_wait(sh);
		power_off();
	}
	if (cfg.debug_script[0]) {
		log_msg("ready");
		run_debug_script();
		power_off();
	}

	int lfd = control_listen();
	if (lfd < 0)
		fatal("control channel: vsock port %d: %s", CONTROL_VSOCK_PORT,
		      strerror(-lfd));
	timing_mark("control");
	log_msg("ready: serving the control channel on vsock port %d",
		CONTROL_VSOCK_PORT);
	r = session_serve(lfd, &cfg);
	if (r < 0)
		log_msg("control channel: %s", strerror(-r));
	power_off();
}
