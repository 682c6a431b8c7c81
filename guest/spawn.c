/* Start the command from a SPEC: as the sandbox user, with a clean
 * environment, in its own session, on a PTY or on three pipes. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "../common/util.h"

#define PROXY_URL "http://127.0.0.1:3128"

static char envbuf[8][4200];
static const char *envp[CONTROL_MAX_ENV + 32];

/* Clean environment: the defaults below, then what the SPEC passes (a
 * later NAME= replaces an earlier one). */
static void build_env(const struct control_spec *s, const char *home,
		      const char *user, const char *shell)
{
	size_t n = 0;
	fmt_buf(envbuf[0], sizeof(envbuf[0]), "HOME=%s", home);
	fmt_buf(envbuf[1], sizeof(envbuf[1]), "USER=%s", user);
	fmt_buf(envbuf[2], sizeof(envbuf[2]), "LOGNAME=%s", user);
	fmt_buf(envbuf[3], sizeof(envbuf[3]), "SHELL=%s", shell);
	const char *defaults[] = {
		s->uid == 0 ? "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
			      "/usr/bin:/sbin:/bin"
			    : "PATH=/usr/local/bin:/usr/bin:/bin",
		envbuf[0], envbuf[1], envbuf[2], envbuf[3],
		s->tty ? "TERM=xterm-256color" : "TERM=dumb",
		"LANG=C.UTF-8",
		"HTTP_PROXY=" PROXY_URL, "HTTPS_PROXY=" PROXY_URL,
		"http_proxy=" PROXY_URL, "https_proxy=" PROXY_URL,
		"NO_PROXY=localhost,127.0.0.0/8,::1",
		"no_proxy=localhost,127.0.0.0/8,::1"};
	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++)
		envp[n++] = defaults[i];
	for (uint32_t i = 0; i < s->envc; i++) {
		const char *e = s->env[i];
		size_t klen = (size_t)(strchr(e, '=') - e) + 1;
		size_t j;
		for (j = 0; j < n; j++)
			if (!strncmp(envp[j], e, klen))
				break;
		envp[j] = e;
		if (j == n)
			n++;
	}
	envp[n] = NULL;
}

static void child(const struct control_spec *s, const char *workspace,
		  int slave, int in, int out, int err, int errpipe)
	__attribute__((noreturn));
static void child(const struct control_spec *s, const char *workspace,
		  int slave, int in, int out, int err, int errpipe)
{
	int e;
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int sig = 1; sig < 32; sig++)
		signal(sig, SIG_DFL);
	setsid();
	if (slave >= 0) {
		if (ioctl(slave, TIOCSCTTY, 0) < 0)
			goto fail;
		in = out = err = slave;
	}
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		goto fail;
	/* fgetpwent, not getpwuid: no NSS in a static binary. */
	struct passwd *pw = NULL;
	FILE *pf = fopen("/etc/passwd", "re");
	while (pf && (pw = fgetpwent(pf)) && pw->pw_uid != s->uid)
		;
	const char *home = pw ? pw->pw_dir : "/";
	const char *user = pw ? pw->pw_name : "unknown";
	const char *shell = pw ? pw->pw_shell : "/bin/sh";
	if (setgroups(0, NULL) < 0 || setresgid(s->gid, s->gid, s->gid) < 0 ||
	    setresuid(s->uid, s->uid, s->uid) < 0)
		goto fail;
	if (chdir(s->cwd[0] ? s->cwd : workspace) < 0)
		goto fail;
	build_env(s, home, user, shell);
	extern char **environ;
	environ = (char **)envp;
	execvp(s->argv[0], (char *const *)s->argv);
fail:
	e = errno;
	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
}

int spawn_command(const struct control_spec *s, const char *workspace,
		  struct spawned *sp)
{
	int errp[2], in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	int master = -1, slave = -1;
	if (pipe2(errp, O_CLOEXEC) < 0)
		return -errno;
	if (s->tty) {
		master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0)
			goto fail;
		const char *name = ptsname(master);
		if (!name || (slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
			goto fail;
		struct winsize ws = {.ws_row = s->rows, .ws_col = s->cols};
		ioctl(master, TIOCSWINSZ, &ws);
	} else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
		   pipe2(err, O_CLOEXEC) < 0) {
		goto fail;
	}
	pid_t pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0)
		child(s, workspace, slave, in[0], out[1], err[1], errp[1]);
	close(errp[1]);
	int e = 0;
	ssize_t n = read(errp[0], &e, sizeof(e));
	close(errp[0]);
	if (slave >= 0)
		close(slave);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	sp->pid = pid;
	sp->master = master;
	sp->in = in[1];
	sp->out = out[0];
	sp->err = err[0];
	sp->exec_errno = n == sizeof(e) ? e : 0;
	return 0;
fail:
	e = errno;
	int fds[] = {errp[0], errp[1], in[0], in[1], out[0], out[1],
		     err[0], err[1], master, slave};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return -e;
}
