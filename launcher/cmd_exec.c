/* sandbox-launch exec NAME [--] CMD...: another command in a running
 * sandbox, through its bridge's control socket (CONNECT 1024), served by
 * the guest side by side with the main command. */
#include "cmds.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../parse/cmd_channel.h"
#include "../common/clock.h"
#include "../common/util.h"

#define EXIT_LAUNCH_FAILED 125
#define EXEC_CONNECT_MS 10000

static const char exec_usage[] =
	"usage: sandbox-launch exec [--env NAME[=VALUE]]... [--root] NAME [--] CMD [ARGS...]\n"
	"\n"
	"Run CMD in the running sandbox NAME, next to its main command: same\n"
	"guest, same proxy and policy, same audit log. stdin/stdout/stderr and a\n"
	"terminal work as for the main command; exits with CMD's status. The\n"
	"sandbox keeps running when CMD ends; it stops when its main command does.\n"
	"\n"
	"  --env NAME[=VALUE]   pass a variable; NAME alone copies the host's value\n"
	"  --root               run CMD as root in the guest\n"
	"\n"
	"Example: sandbox-launch exec myrepo-1a2b3c -- bash\n";

int exec_in(const struct sandbox_meta *m, char *const cmd[],
	    const char *const env[], size_t envc, bool root, int sigfd)
{
	char ctl[PATH_MAX];
	if (!m->state_dir[0] ||
	    fmt_buf(ctl, sizeof(ctl), "%s/control.sock", m->state_dir)) {
		fprintf(stderr, "sandbox-launch: sandbox %s has no control "
				"socket recorded (is it still starting?)\n",
			m->name);
		return EXIT_LAUNCH_FAILED;
	}
	int fd = control_connect(ctl, CONTROL_VSOCK_PORT,
				 mono_ms() + EXEC_CONNECT_MS, sigfd, NULL);
	if (fd < 0) {
		fprintf(stderr, "sandbox-launch: cannot reach sandbox %s "
				"through %s: %s\n",
			m->name, ctl, strerror(-fd));
		return EXIT_LAUNCH_FAILED;
	}
	char here[PATH_MAX], cwd[PATH_MAX];
	size_t wl = strlen(m->workspace);
	if (!(getcwd(here, sizeof(here)) && realpath(here, cwd) &&
	      !strncmp(cwd, m->workspace, wl) &&
	      (cwd[wl] == '/' || cwd[wl] == '\0') &&
	      !qemu_workspace_problem(cwd)))
		fmt_buf(cwd, sizeof(cwd), "%s", m->workspace);
	uid_t uid = getuid();
	gid_t gid = getgid();
	bool tty = isatty(0) && isatty(1);
	struct session_params sp = {
		.argv = cmd,
		.env = env,
		.envc = envc,
		.cwd = cwd,
		.uid = root ? 0 : uid <= 65533 ? uid : 1000,
		.gid = root ? 0 : gid <= 65533 ? gid : 1000,
		.tty = tty,
	};
	if (tty && tty_raw_enter(0) < 0)
		sp.tty = false;
	struct session_result res;
	int r = control_session(fd, &sp, sigfd, &res);
	tty_restore();
	close(fd);
	if (r < 0 || res.end == SESSION_LOST) {
		fprintf(stderr, "sandbox-launch: exec in %s: %s\n", m->name,
			res.why[0] ? res.why : strerror(r < 0 ? -r : EPIPE));
		return EXIT_LAUNCH_FAILED;
	}
	return session_exit_status(&res);
}

int cmd_exec(int argc, char **argv)
{
	struct strv env = {0};
	bool root = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(exec_usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--root")) {
			root = true;
			continue;
		}
		if (!strcmp(argv[i], "--env") && i + 1 < argc &&
		    launch_env_valid(argv[i + 1])) {
			const char *e = argv[++i];
			const char *v = strchr(e, '=') ? NULL : getenv(e);
			if (strchr(e, '='))
				strv_add(&env, e);
			else if (v)
				strv_addf(&env, "%s=%s", e, v);
			continue;
		}
		fprintf(stderr, "sandbox-launch exec: unknown option %s (try "
				"--help)\n",
			argv[i]);
		return 2;
	}
	if (i >= argc || !launch_name_valid(argv[i])) {
		fprintf(stderr, "sandbox-launch exec: %s (try --help)\n",
			i >= argc ? "no sandbox name given"
				  : "not a sandbox name");
		return 2;
	}
	const char *name = argv[i++];
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		fprintf(stderr, "sandbox-launch exec: no command given\n");
		return 2;
	}
	const char *term = getenv("TERM"), *lang = getenv("LANG");
	if (isatty(0) && isatty(1) && term && *term)
		strv_addf(&env, "TERM=%s", term);
	if (lang && *lang)
		strv_addf(&env, "LANG=%s", lang);
	if (env.failed)
		return EXIT_LAUNCH_FAILED;

	char dir[PATH_MAX];
	struct sandbox_meta m;
	if (sandbox_dir(name, dir, sizeof(dir), false) ||
	    sandbox_meta_read(dir, &m)) {
		fprintf(stderr, "sandbox-launch exec: no sandbox named %s "
				"(sandbox-launch list shows them)\n",
			name);
		return EXIT_LAUNCH_FAILED;
	}
	if (!sandbox_running(dir)) {
		fprintf(stderr, "sandbox-launch exec: sandbox %s is stopped: "
				"start it with sandbox-launch run --name %s "
				"[--workspace %s] -- CMD\n",
			name, name, m.workspace);
		return EXIT_LAUNCH_FAILED;
	}
	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};
	for (size_t k = 0; k < ARRAY_SIZE(sigs); k++)
		sigaddset(&set, sigs[k]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0)
		return EXIT_LAUNCH_FAILED;
	signal(SIGPIPE, SIG_IGN);
	int r = exec_in(&m, argv + i, (const char *const *)env.v, env.n, root,
			sigfd);
	strv_free(&env);
	close(sigfd);
	return r;
}
