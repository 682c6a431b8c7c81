/* sandbox-launch: run a command in a microvm sandbox whose only network is
 * the egress proxy. The steps, in order, are listed in docs/launcher.md;
 * each is one function below, and each helper lives in its own file
 * (launch.h). Runs as the invoking user: no root, setuid or capabilities.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../parse/cmd_channel.h"
#include "../common/termsafe.h"
#include "../common/clock.h"
#include "../common/util.h"
#include "../policy/policy.h"
#include "cmds.h"
#include "host_pkg.h"
#include "launch.h"
#include "launch_plan.h"
#include "virtiofs.h"
#include "locate.h"
#include "remembered.h"
#include "secrets.h"
#include "trust.h"

#define VERSION "0.1.0"
#define EXIT_LAUNCH_FAILED 125
#define PROXY_READY_MS 15000
#define SOCKETS_READY_MS 5000
#define QEMU_OWN_EXIT_MS 3000
#define STOP_GRACE_MS 2000

static struct launch_opts opts;
static int sigfd = -1;
static bool verbose;

/* Where things are. */
static struct launch_programs prog; /* locate.h */
static char workspace[PATH_MAX], cwd_guest[PATH_MAX];
static char state[PATH_MAX], run[PATH_MAX];
static struct launch_paths paths; /* in state and run (launch_plan.h) */
static char host_etc[PATH_MAX]; /* host_etc_prepare()'s; "" if none */
static char user_policy[PATH_MAX]; /* ~/.config/sandbox/policy.yaml */
static struct trust_result repo;   /* .sandbox/policy.yaml, once checked */

static struct run_registry reg; /* a named sandbox's registry entry */
static char agent_name[33];
static char default_name[40];

static struct child proxy = {.name = "sandbox-proxy"};
static struct child bridge = {.name = "sandbox-vsock"};
static struct child qemu = {.name = "qemu"};
static struct child virtiofsd = {.name = "virtiofsd"};
static char virtiofs_sock[PATH_MAX]; /* "" : the workspace is on 9p */
static bool first_byte_seen; /* console.log has grown (--timings) */

/* Docker's per-run data disk (docker_opts.c); a named sandbox keeps
 * Docker's data on its own disk. */
static char docker_disk[PATH_MAX];

static void teardown(void)
{
	struct child *const all[] = {&qemu, &virtiofsd, &bridge, &proxy};
	children_stop(all, ARRAY_SIZE(all), STOP_GRACE_MS, sigfd);
	if (docker_disk[0])
		unlink(docker_disk); /* a run that failed before the guest was up */
	if (state[0]) {
		state_dir_remove(state);
		state[0] = '\0';
	}
	int r = registry_end(&reg);
	if (r)
		fprintf(stderr, "sandbox-launch: warning: %s/meta.json: %s\n",
			reg.dir, strerror(-r));
	tty_restore();
}

static void __attribute__((format(printf, 1, 2), noreturn))
fail(const char *fmt, ...)
{
	tty_restore();
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sandbox-launch: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	teardown();
	exit(EXIT_LAUNCH_FAILED);
}

static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
	if (!verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "sandbox-launch: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* A terminating signal during set-up: tear down and exit like a shell. */
static void check_signals(void)
{
	struct signalfd_siginfo si;
	while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
		int s = (int)si.ssi_signo;
		if (s == SIGINT || s == SIGTERM || s == SIGHUP || s == SIGQUIT) {
			teardown();
			exit(128 + s);
		}
	}
}

/* ---- step 1: find the programs, the guest image and QEMU ------------ */

static void find_files(void)
{
	char err[2 * PATH_MAX + 256];
	if (locate_programs(&prog, opts.image, err, sizeof(err)))
		fail("%s", err);
}

/* ---- step 2: the workspace, the policy, the environment -------------- */

static void check_workspace(void)
{
	char err[2 * PATH_MAX + 128];
	if (workspace_resolve(opts.workspace, workspace, cwd_guest, err,
			      sizeof(err)))
		fail("%s", err);
}

/* Policy arguments as the proxy takes them; file paths made absolute. */
static void policy_args(struct strv *a)
{
	struct strv abs = {0};
	for (size_t i = 0; i < opts.n_policies; i++) {
		char p[PATH_MAX];
		if (!realpath(opts.policies[i], p))
			fail("--policy %s: %s", opts.policies[i],
			     strerror(errno));
		strv_add(&abs, p);
	}
	plan_policy_args(a, (const char *const *)abs.v, abs.n,
			 repo.present ? repo.copy_path : NULL, &opts);
	bool failed = abs.failed || a->failed;
	strv_free(&abs);
	if (failed)
		fail("out of memory");
}

/* The user's own policy ($XDG_CONFIG_HOME/sandbox/policy.yaml, else
 * ~/.config/...), when there is one: merged before --policy files (and
 * after an agent's preset, which agent_apply puts first). */
static void add_user_policy(void)
{
	if (!user_policy_path(user_policy, sizeof(user_policy)))
		return;
	const char **p = realloc(opts.policies,
				 (opts.n_policies + 1) * sizeof(*p));
	if (!p)
		fail("out of memory");
	memmove(p + 1, p, opts.n_policies * sizeof(*p));
	p[0] = user_policy;
	opts.policies = p;
	opts.n_policies++;
	note("user policy: %s", user_policy);
}

/* The workspace's .sandbox/policy.yaml (launcher/trust.h): read once,
 * approved if it widens BASE (the policy files; --allow/--deny are not
 * part of it), copied into the run dir for the proxy. Before the proxy,
 * the guest and the raw terminal, so that a prompt can be answered. */
static void check_repo_policy(void)
{
	if (opts.no_repo_policy) {
		note("--no-repo-policy: ignoring %s/" TRUST_REPO_POLICY,
		     workspace);
		return;
	}
	char err[1024];
	int r = trust_for_run(&opts, workspace, run, &sigfd, &repo, err,
			      sizeof(err));
	if (r == -EINTR)
		check_signals(); /* Ctrl-C during the check or at the prompt */
	if (r < 0)
		fail("%s", err);
	if (repo.present)
		note("repository policy %s (sha256 %s)%s: %s", TRUST_REPO_POLICY,
		     repo.sha256,
		     repo.widens ? (repo.approved_now ? ", widening, approved now"
						      : ", widening, approved")
				 : ", narrowing only",
		     repo.copy_path);
}

static void env_unset(const char *name, void *arg)
{
	(void)arg;
	note("--env %s: not set here, not passed", name);
}

static const char *env_lookup(const char *name)
{
	const char *ph = launcher_secret_placeholder(name);
	return ph ? ph : getenv(name);
}

static void guest_env(struct strv *env, bool tty)
{
	plan_guest_env(env, &opts, tty, env_lookup, env_unset, NULL);
	if (env->failed)
		fail("out of memory");
}

/* ---- step 3: directories, the proxy --------------------------------- */

static void make_dirs(void)
{
	int r = run_dir_create(opts.name, run, sizeof(run));
	if (r)
		fail("cannot create the run directory under $XDG_STATE_HOME or "
		     "~/.local/state/sandbox/runs: %s",
		     strerror(-r));
	r = state_dir_create(opts.name, state, sizeof(state));
	if (r)
		fail("cannot create a private state directory under "
		     "$XDG_RUNTIME_DIR/sandbox or /tmp/sandbox-%u: %s%s",
		     (unsigned)getuid(), strerror(-r),
		     r == -EPERM ? " (it exists but is not yours, or not 0700)"
				 : "");
	char here[PATH_MAX];
	const char *what = "";
	if (plan_paths(&paths, state, run, opts.audit,
		       getcwd(here, sizeof(here)), &what))
		fail("%s path too long", what);
	/* The bridge's connector may connect only in here, and only to the
	 * listed ports: the proxy's two listeners are all it holds, the
	 * control sockets stay one level up (docs/vsock.md). */
	if (mkdir(paths.ports_dir, 0700) < 0)
		fail("cannot create %s: %s", paths.ports_dir, strerror(errno));
	note("run directory (logs, audit, kept): %s", run);
	note("state directory (sockets, removed at exit): %s", state);
	char err[1024] = ""; /* Docker's per-run disk (a named one has its own) */
	if (opts.docker && !reg.upper[0] &&
	    docker_disk_create(run, opts.disk_size_mb, docker_disk,
			       sizeof(docker_disk), err, sizeof(err)))
		fail("Docker's data disk: %s", err);
}

/* RUN/policy.txt: what the proxy was given, for a later reader of the
 * audit log. A run whose record cannot be written does not start. */
static void write_policy_record(const struct strv *pa)
{
	int r = run_write_policy_record(paths.policy_record, pa);
	if (r)
		fail("%s: %s", paths.policy_record, strerror(-r));
}

/* Start a helper daemon (argv a, consumed; the plan gave it --ready-fd
 * PLAN_READY_FD) with its output in log, and wait for its "ready" line on
 * the pipe; if it dies first or the time runs out, show the end of its log
 * and fail naming it. */
/* extra_fd (or -1): inherited as descriptor PLAN_READY_FD + 1. */
static void spawn_until_ready(struct child *ch, struct strv *a, const char *log,
			      unsigned timeout_ms, int extra_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		fail("cannot start %s: pipe: %s", ch->name, strerror(errno));
	_cleanup_close_ int rd = p[0];
	const int fds[2] = {p[1], extra_fd};
	int r = child_spawn_fds(ch, a->v, log, fds, extra_fd >= 0 ? 2 : 1);
	close(p[1]); /* else its end of file would never come */
	if (r)
		fail("cannot start %s: %s", a->v[0], strerror(-r));
	strv_free(a);
	int sig;
	char how[128];
	switch (child_wait(ch, rd, sigfd, mono_ms() + timeout_ms, &sig)) {
	case CHILD_WAIT_READY:
		return;
	case CHILD_WAIT_SIGNAL:
		teardown();
		exit(128 + sig);
	case CHILD_WAIT_GONE:
		child_status_text(ch, how, sizeof(how));
		log_print_tail(log, 2000);
		fail("%s did not start: it ended before it was ready (%s; "
		     "log: %s)",
		     ch->name, how, log);
	case CHILD_WAIT_TIMEOUT:
		log_print_tail(log, 2000);
		fail("%s did not start: not ready within %u s (log: %s)",
		     ch->name, timeout_ms / 1000, log);
	}
}


static void start_proxy(void)
{
	struct strv pa = {0}, a = {0};
	policy_args(&pa);
	write_policy_record(&pa);
	plan_proxy_argv(&a, prog.proxy_bin, &paths, &opts, &pa, verbose);
	strv_free(&pa);
	char serr[300];
	int sfd = launcher_secrets_proxy_args(&a, run, opts.upstream_ca,
					      PLAN_READY_FD + 1, serr,
					      sizeof(serr));
	if (sfd == -2)
		fail("%s", serr);
	if (a.failed)
		fail("out of memory");
	spawn_until_ready(&proxy, &a, paths.proxy_log, PROXY_READY_MS, sfd);
	if (sfd >= 0)
		close(sfd);
	timings_mark("proxy ready");
	note("sandbox-proxy ready (pid %d), audit log %s", (int)proxy.pid,
	     paths.audit);
}

/* ---- step 4: the bridge and QEMU ------------------------------------ */

/* Over the host's /usr, dpkg in the guest needs the host's database and
 * apt its configuration (host_pkg.h). A host without them (not Debian)
 * still boots, with a notice: only package installs are affected. */
static void prepare_host_pkg(void)
{
	struct stat st;
	if (opts.image || stat(HOST_DPKG_DIR, &st) < 0 || !S_ISDIR(st.st_mode))
		return;
	char err[PATH_MAX + 256];
	if (fmt_buf(host_etc, sizeof(host_etc), "%s/host-etc", run))
		fail("run directory path too long");
	if (host_etc_prepare(host_etc, err, sizeof(err))) {
		fprintf(stderr, "sandbox-launch: notice: %s; apt and dpkg in the "
				"guest will not know the host's packages\n",
			err);
		host_etc[0] = '\0';
	}
}


static void start_vm(enum accel accel)
{
	struct strv a = {0};
	plan_bridge_argv(&a, prog.vsock_bin, &paths, verbose);
	if (a.failed)
		fail("out of memory");
	spawn_until_ready(&bridge, &a, paths.vsock_log, SOCKETS_READY_MS, -1);
	timings_mark("bridge ready");

	uid_t uid = getuid();
	gid_t gid = getgid();
	/* sandbox-init takes 1..65533; root or nobody on the host becomes
	 * the guest's default user (the host still sees files as ours). */
	/* The guest id that is the invoking user on the workspace: the one
	 * the command runs as (the session's, below; launcher/virtiofs.h). */
	virtiofs_workspace(&virtiofsd, state, run, workspace,
			   opts.root ? 0 : uid <= 65533 ? uid : 1000,
			   opts.root ? 0 : gid <= 65533 ? gid : 1000,
			   virtiofs_sock, sizeof(virtiofs_sock));
	timings_mark(virtiofs_sock[0] ? "virtiofsd started" : "workspace on 9p");
	struct qemu_config qc = {
		.qemu = prog.qemu_bin,
		.kernel = prog.kernel,
		.initrd = prog.initrd,
		.workspace = workspace,
		.vhost_sock = paths.vhost_sock,
		.console_log = paths.console_log,
		.hostname = opts.name,
		.accel = accel,
		.memory_mb = opts.memory_mb ? opts.memory_mb : 1024,
		.cpus = opts.cpus ? opts.cpus : (accel == ACCEL_KVM ? 2 : 1),
		.uid = uid >= 1 && uid <= 65533 ? uid : 1000,
		.gid = gid >= 1 && gid <= 65533 ? gid : 1000,
		.root_image = opts.image ? prog.image_path : NULL,
		.upper_disk = reg.upper[0] ? reg.upper : NULL,
		.docker = opts.docker,
		.docker_disk = docker_disk[0] ? docker_disk : NULL,
		.registry_mirror = opts.registry_mirror,
		.host_etc = host_etc[0] ? host_etc : NULL,
		.host_dpkg = host_etc[0] ? HOST_DPKG_DIR : NULL,
		.virtiofs_sock = virtiofs_sock[0] ? virtiofs_sock : NULL,
	};
	int r = qemu_cmd_build(&qc, &a);
	if (r)
		fail("cannot build the QEMU command line: %s", strerror(-r));
	if (verbose) {
		fprintf(stderr, "sandbox-launch: starting (%s):",
			accel == ACCEL_KVM ? "KVM" : "TCG");
		for (size_t i = 0; i < a.n; i++)
			fprintf(stderr, " %s", a.v[i]);
		fputc('\n', stderr);
	}
	r = child_spawn(&qemu, a.v, paths.qemu_log);
	strv_free(&a);
	if (r)
		fail("cannot start %s: %s", prog.qemu_bin, strerror(-r));
	timings_mark("QEMU exec");
	first_byte_seen = false;
}

static bool vm_gone(void)
{
	struct stat st;
	if (!first_byte_seen && stat(paths.console_log, &st) == 0 &&
	    st.st_size > 0) {
		first_byte_seen = true;
		timings_mark("first guest byte");
	}
	return child_gone(&qemu) || child_gone(&bridge) ||
	       (virtiofs_sock[0] && child_gone(&virtiofsd));
}

static void stop_vm(void)
{
	struct child *const vm[] = {&qemu, &virtiofsd, &bridge};
	children_stop(vm, ARRAY_SIZE(vm), STOP_GRACE_MS, sigfd);
	unlink(paths.vhost_sock);
	unlink(paths.ctl_sock);
}

/* ---- step 5: the control channel ------------------------------------ */

static int connect_guest(void)
{
	enum accel accel = accel_choose();
	for (;;) {
		start_vm(accel);
		uint64_t deadline = mono_ms() + opts.boot_timeout * 1000ull;
		int fd = control_connect(paths.ctl_sock, CONTROL_VSOCK_PORT, deadline,
					 sigfd, vm_gone);
		if (fd >= 0)
			return fd;
		if (fd == -EINTR)
			check_signals();
		if (fd == -EINTR) {
			teardown();
			exit(128 + SIGTERM);
		}
		_cleanup_free_ char *qlog = NULL;
		read_file(paths.qemu_log, 1u << 20, &qlog, NULL);
		if (fd == -ECHILD && accel == ACCEL_KVM && qlog &&
		    accel_kvm_failed(qlog)) {
			note("KVM does not work here; using TCG from now on");
			accel_remember_broken();
			stop_vm();
			accel = ACCEL_TCG;
			continue;
		}
		log_print_tail(paths.console_log, 3000);
		log_print_tail(paths.qemu_log, 1000);
		if (fd == -ECHILD)
			fail("the VM stopped before the guest was up (logs in %s)",
			     run);
		if (fd == -ETIMEDOUT)
			fail("the guest did not come up within %u s (logs in %s; "
			     "raise --boot-timeout on a slow machine)",
			     opts.boot_timeout, run);
		fail("cannot reach the guest through %s: %s", paths.ctl_sock,
		     strerror(-fd));
	}
}

int main(int argc, char **argv)
{
	program_name = "sandbox-launch";
	char err[512];
	bool named;
	int sub = subcommand_dispatch(&argc, &argv, &named);
	if (sub >= 0)
		return sub;
	switch (launch_opts_parse(argc, argv, &opts, err, sizeof(err))) {
	case LAUNCH_OPTS_OK:
		break;
	case LAUNCH_OPTS_USAGE:
		fprintf(stderr, "sandbox-launch: %s\n", err);
		return 2;
	case LAUNCH_OPTS_NOMEM:
		fprintf(stderr, "sandbox-launch: out of memory\n");
		return EXIT_LAUNCH_FAILED;
	}
	if (opts.help) {
		fputs(launch_usage, stdout);
		return 0;
	}
	if (opts.version) {
		printf("sandbox-launch " VERSION "\n");
		return 0;
	}
	verbose = opts.verbose;
	timings_mark("start");

	/* Signals arrive on a signalfd from here on, so that every wait
	 * below can notice them and tear down in order. */
	sigfd = signals_to_fd();
	if (sigfd < 0)
		fail("signalfd: %s", strerror(-sigfd));

	/* A named sandbox made over an image runs over it again: its layer
	 * only makes sense over the root it was made on. Before the agent
	 * check, which looks in the image for the agent. */
	static char recorded_image[PATH_MAX];
	if (!opts.image && opts.name && (named || name_given(argv, &opts)) &&
	    sandbox_recorded_image(opts.name, recorded_image,
				   sizeof(recorded_image)) == 1)
		opts.image = recorded_image;
	find_files();
	/* The --policy files, before a preset or the user's policy joins
	 * them at the front: what a named sandbox remembers. */
	size_t n_cli_policies = opts.n_policies;
	if (opts.image == recorded_image)
		note("sandbox %s was made over the image %s: using it",
		     opts.name, recorded_image);
	add_user_policy();
	char aerr[2048];
	/* Before agent_apply, which replaces opts.cmd. */
	bool explicit_name = name_given(argv, &opts);
	int ar = agent_apply(&opts, argv, agent_name,
			     sizeof(agent_name), aerr, sizeof(aerr));
	if (ar < 0) {
		fprintf(stderr, "sandbox-launch: %s\n", aerr);
		/* Not installed: as a shell says of a missing command. */
		return ar == -ENOPKG ? 127 : EXIT_LAUNCH_FAILED;
	}
	named = named || ar == 1 || explicit_name;
	if (launcher_secrets_prepare(&opts, aerr, sizeof(aerr)) < 0)
		fail("%s", aerr);
	check_workspace();
	if (named && !explicit_name) {
		sandbox_default_name(workspace, default_name,
				     sizeof(default_name));
		opts.name = default_name;
	}
	if (named) {
		int rr = registry_begin(&reg, opts.name, workspace, agent_name,
					&opts, aerr, sizeof(aerr));
		if (rr == -EBUSY) {
			/* Running already: this command joins it, like exec,
			 * unless it asks for what the running one does not
			 * have (launcher/join.c). An image taken from its
			 * record is its own, not an option this run adds. */
			if (opts.image == recorded_image)
				opts.image = NULL;
			if (join_refused(&reg.meta, &opts, workspace, aerr,
					 sizeof(aerr))) {
				fprintf(stderr, "sandbox-launch: %s\n", aerr);
				return EXIT_LAUNCH_FAILED;
			}
			if (launcher_secrets_any())
				fail("--secret: sandbox %s is running already; "
				     "its secrets are given when it starts",
				     opts.name);
			note("sandbox %s is running; running %s in it",
			     opts.name, opts.cmd[0]);
			launcher_policy_secrets_hide(&opts, launcher_notice);
			struct strv env = {0};
			guest_env(&env, isatty(0) && isatty(1));
			return exec_in(&reg.meta, opts.cmd,
				       (const char *const *)env.v, env.n,
				       opts.root, sigfd);
		}
		if (rr)
			fail("%s", aerr);
		/* How it was made (remembered.h): conflicts refused,
		 * what is not given taken from the record. */
		struct remembered_ctx rc = {&opts, n_cli_policies};
		if (remembered_for_run(&reg, &rc, aerr, sizeof(aerr)))
			fail("%s", aerr);
		if (registry_upper(&reg, aerr, sizeof(aerr)))
			fail("sandbox %s: %s", opts.name, aerr);
	}
	/* The policy, checked (every error shown, nothing started yet), and
	 * its files' secrets hidden before any child runs. */
	if (launcher_policy_secrets(&opts, NULL, true, launcher_notice, aerr,
				    sizeof(aerr)) < 0)
		fail("%s", aerr);
	bool tty = isatty(0) && isatty(1);
	struct strv env = {0};

	make_dirs();
	prepare_host_pkg();
	check_repo_policy();
	/* The approved repository policy may add secrets or hosts; the
	 * guest's environment is made after it, with every placeholder. */
	if (repo.present &&
	    launcher_policy_secrets(&opts, repo.copy_path, false, launcher_notice,
				    aerr, sizeof(aerr)) < 0)
		fail("%s", aerr);
	guest_env(&env, tty);
	fmt_buf(reg.meta.proxy_control, sizeof(reg.meta.proxy_control), "%s",
		paths.proxy_ctl);
	if (repo.present && reg.meta.n_policies < SANDBOX_MAX_LIST)
		fmt_buf(reg.meta.policies[reg.meta.n_policies++],
			sizeof(reg.meta.policies[0]), "%s", repo.copy_path);
	int rs = registry_started(&reg, state, run, paths.audit);
	if (rs)
		fail("sandbox %s: %s/meta.json: %s (exec, list and policy "
		     "would not find this run)",
		     opts.name, reg.dir, strerror(-rs));
	start_proxy();
	if (launcher_secrets_guest_env(&env, run, aerr, sizeof(aerr)) < 0)
		fail("%s", aerr);
	int ctl = connect_guest();
	timings_mark("guest up (control channel)");
	/* QEMU has it open: the space goes when QEMU exits. */
	if (docker_disk[0] && unlink(docker_disk) == 0)
		docker_disk[0] = '\0';
	note("guest up; running %s", opts.cmd[0]);

	uid_t uid = getuid();
	gid_t gid = getgid();
	struct session_params sp = {
		.argv = opts.cmd,
		.env = (const char *const *)env.v,
		.envc = env.n,
		.cwd = cwd_guest,
		/* Root on the host stays root in the guest (its workspace may
		 * be root's own 0700 directory); nobody becomes the default.
		 * --root: what the host enforces does not depend on the guest
		 * user (docs/launcher.md), so it is just another uid. */
		.uid = opts.root ? 0 : uid <= 65533 ? uid : 1000,
		.gid = opts.root ? 0 : gid <= 65533 ? gid : 1000,
		.tty = tty,
	};
	if (tty && tty_raw_enter(0) < 0)
		sp.tty = tty = false;
	struct session_result res;
	int r = control_session(ctl, &sp, sigfd, &res);
	timings_mark("command ended");
	tty_restore();
	close(ctl);
	strv_free(&env);

	/* The guest powers off after EXIT (syncing the workspace first);
	 * give it a moment before stopping QEMU. */
	int sig;
	if (res.end != SESSION_INTERRUPTED)
		child_wait(&qemu, -1, sigfd, mono_ms() + QEMU_OWN_EXIT_MS, &sig);
	teardown();
	note("logs and audit kept in %s", run);
	if (opts.timings)
		timings_print(paths.console_log);

	if (r < 0 || res.end == SESSION_LOST) {
		fprintf(stderr, "sandbox-launch: %s (logs in %s)\n",
			res.why[0] ? res.why : strerror(-r), run);
		log_print_tail(paths.console_log, 1500);
		return EXIT_LAUNCH_FAILED;
	}
	launch_opts_free(&opts);
	if (res.end == SESSION_INTERRUPTED)
		fprintf(stderr, "sandbox-launch: %s; stopped the sandbox\n",
			res.why);
	return session_exit_status(&res);
}
