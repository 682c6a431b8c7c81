/* Child processes of the launcher: the proxy, the bridge and QEMU.
 *
 * Each child gets PR_SET_PDEATHSIG(SIGKILL), so a SIGKILLed launcher
 * leaves no process behind, and its own process group, so that a Ctrl-C
 * on the host terminal reaches the launcher (which forwards it to the
 * guest) rather than killing QEMU under it. Exec failures come back over
 * a close-on-exec pipe, so "not found" is an error here, not a log line.
 */
#include "launch.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/termsafe.h"
#include "../common/util.h"

static void __attribute__((noreturn))
child_exec(char *const argv[], int logfd, int errfd, pid_t parent)
{
	int e;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		goto fail;
	/* The parent may have died before prctl. */
	if (getppid() != parent)
		_exit(127);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(logfd, 1) < 0 ||
	    dup2(logfd, 2) < 0)
		goto fail;
	execv(argv[0], argv);
fail:
	e = errno;
	(void)!write(errfd, &e, sizeof(e));
	_exit(127);
}

int child_spawn(struct child *c, char *const argv[], const char *log_path)
{
	_cleanup_close_ int logfd =
		open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return -errno;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		close(p[0]);
		child_exec(argv, logfd, p[1], parent);
	}
	close(p[1]);
	/* Also set from here: no window where a terminal signal to our
	 * group could reach the child. */
	setpgid(pid, pid);
	int e = 0;
	ssize_t n = read_retry(p[0], &e, sizeof(e));
	close(p[0]);
	c->pid = pid;
	c->reaped = false;
	if (n == sizeof(e)) {
		waitpid(pid, &c->status, 0);
		c->reaped = true;
		return -e;
	}
	return 0;
}

bool child_gone(struct child *c)
{
	if (c->pid <= 0 || c->reaped)
		return true;
	pid_t r = waitpid(c->pid, &c->status, WNOHANG);
	if (r == c->pid || (r < 0 && errno == ECHILD)) {
		c->reaped = true;
		return true;
	}
	return false;
}

void children_stop(struct child *const cs[], size_t n, int grace_ms)
{
	for (size_t i = 0; i < n; i++)
		if (!child_gone(cs[i]))
			kill(cs[i]->pid, SIGTERM);
	uint64_t deadline = mono_ms() + (uint64_t)grace_ms;
	for (;;) {
		bool all = true;
		for (size_t i = 0; i < n; i++)
			all &= child_gone(cs[i]);
		if (all)
			return;
		if (mono_ms() >= deadline)
			break;
		poll(NULL, 0, 10);
	}
	for (size_t i = 0; i < n; i++) {
		if (child_gone(cs[i]))
			continue;
		kill(cs[i]->pid, SIGKILL);
		waitpid(cs[i]->pid, &cs[i]->status, 0);
		cs[i]->reaped = true;
	}
}

/* The last lines of a log, for an error message. */
void log_print_tail(const char *path, size_t bytes)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	if (read_file(path, 64u << 20, &text, &len) || len == 0)
		return;
	size_t from = len > bytes ? len - bytes : 0;
	while (from > 0 && from < len && text[from - 1] != '\n')
		from++;
	/* The guest writes console.log, and the logs quote what it sent:
	 * escaped, so that it cannot drive the terminal. */
	fprintf(stderr, "--- last lines of %s ---\n", path);
	term_fputs(text + from, stderr, true);
	if (text[len - 1] != '\n')
		fputc('\n', stderr);
}
