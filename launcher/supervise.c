/* Child processes of the launcher: the proxy, the bridge and QEMU.
 *
 * Each child gets PR_SET_PDEATHSIG(SIGKILL), so a SIGKILLed launcher
 * leaves no process behind, and its own process group, so that a Ctrl-C
 * on the host terminal reaches the launcher (which forwards it to the
 * guest) rather than killing QEMU under it. Exec failures come back over
 * a close-on-exec pipe, so "not found" is an error here, not a log line.
 *
 * Waiting is event-driven: SIGCHLD arrives on the launcher's signalfd
 * (the signal is blocked), and each wake-up reaps with waitpid(WNOHANG);
 * readiness is a line on a pipe the child inherits (common/ready_fd.h).
 * Signals coalesce, so the state is always checked before each wait.
 */
#include "launch.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/termsafe.h"
#include "../common/util.h"

/* fds[i] becomes the child's descriptor 3 + i, inherited across exec.
 * Each is first copied above every target, so that no dup2 overwrites a
 * source not yet moved (or the exec-error pipe). */
static int pass_fds(const int *fds, size_t n, int *errfd)
{
	int base = 3 + (int)n + 64, hi[8];
	if (n > ARRAY_SIZE(hi))
		return -EINVAL;
	if ((*errfd = fcntl(*errfd, F_DUPFD_CLOEXEC, base)) < 0)
		return -errno;
	for (size_t i = 0; i < n; i++)
		if ((hi[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, base)) < 0)
			return -errno;
	for (size_t i = 0; i < n; i++)
		if (dup2(hi[i], 3 + (int)i) < 0) /* without close-on-exec */
			return -errno;
	return 0;
}

static void __attribute__((noreturn))
child_exec(char *const argv[], int logfd, int errfd, pid_t parent,
	   const int *fds, size_t nfds)
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
	if (nfds && (e = pass_fds(fds, nfds, &errfd)) < 0) {
		errno = -e;
		goto fail;
	}
	execv(argv[0], argv);
fail:
	e = errno;
	(void)!write(errfd, &e, sizeof(e));
	_exit(127);
}

int signals_to_fd(void)
{
	sigset_t set;
	sigemptyset(&set);
	const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGCHLD};
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return fd;
}

int child_spawn(struct child *c, char *const argv[], const char *log_path)
{
	return child_spawn_fds(c, argv, log_path, NULL, 0);
}

int child_spawn_fds(struct child *c, char *const argv[], const char *log_path,
		    const int *fds, size_t nfds)
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
		child_exec(argv, logfd, p[1], parent, fds, nfds);
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

static bool terminating(int s)
{
	return s == SIGINT || s == SIGTERM || s == SIGHUP || s == SIGQUIT;
}

/* Wait for something on sigfd (and fd, when >= 0) until deadline_ms;
 * drain sigfd. Returns a terminating signal's number, or 0. */
static int wait_event(int sigfd, int fd, uint64_t deadline_ms, bool *fd_ready)
{
	struct pollfd p[2] = {{.fd = sigfd, .events = POLLIN},
			      {.fd = fd, .events = POLLIN}};
	uint64_t now = mono_ms();
	int ms = now >= deadline_ms ? 0
		 : deadline_ms - now > INT32_MAX ? INT32_MAX
						  : (int)(deadline_ms - now);
	*fd_ready = false;
	if (poll(p, fd >= 0 ? 2 : 1, ms) <= 0)
		return 0;
	*fd_ready = fd >= 0 && p[1].revents;
	int sig = 0;
	struct signalfd_siginfo si;
	while (sigfd >= 0 && read(sigfd, &si, sizeof(si)) == sizeof(si))
		if (terminating((int)si.ssi_signo) && !sig)
			sig = (int)si.ssi_signo;
	return sig;
}

enum child_wait child_wait(struct child *c, int ready_fd, int sigfd,
			   uint64_t deadline_ms, int *signo)
{
	*signo = 0;
	for (;;) {
		bool readable;
		if (ready_fd < 0 && child_gone(c))
			return CHILD_WAIT_GONE;
		if (mono_ms() >= deadline_ms)
			return CHILD_WAIT_TIMEOUT;
		int s = wait_event(sigfd, ready_fd, deadline_ms, &readable);
		if (s) {
			*signo = s;
			return CHILD_WAIT_SIGNAL;
		}
		/* Gone with nothing to read: its pipe may live on in a
		 * process it started, so its exit is the answer. */
		if (!readable && child_gone(c))
			return CHILD_WAIT_GONE;
		if (!readable)
			continue;
		char line[16];
		ssize_t n = read_retry(ready_fd, line, sizeof(line));
		if (n >= 6 && !memcmp(line, "ready\n", 6))
			return CHILD_WAIT_READY;
		if (n == -EAGAIN)
			continue;
		/* End of file (or garbage) without "ready": it died, or is
		 * about to. Its wait status, when it comes within a moment,
		 * says how. */
		uint64_t soon = mono_ms() + 1000;
		while (!child_gone(c) && mono_ms() < soon &&
		       !wait_event(sigfd, -1, soon, &readable))
			;
		return CHILD_WAIT_GONE;
	}
}

void child_status_text(const struct child *c, char *out, size_t outsz)
{
	if (!c->reaped)
		fmt_buf(out, outsz, "still running, without saying ready");
	else if (WIFEXITED(c->status))
		fmt_buf(out, outsz, "exit status %d", WEXITSTATUS(c->status));
	else if (WIFSIGNALED(c->status))
		fmt_buf(out, outsz, "killed by signal %d (%s)",
			WTERMSIG(c->status), strsignal(WTERMSIG(c->status)));
	else
		fmt_buf(out, outsz, "wait status %#x", (unsigned)c->status);
}

void children_stop(struct child *const cs[], size_t n, int grace_ms,
		   int sigfd)
{
	for (size_t i = 0; i < n; i++)
		if (!child_gone(cs[i]))
			kill(cs[i]->pid, SIGTERM);
	uint64_t deadline = mono_ms() + (uint64_t)grace_ms;
	for (;;) {
		bool all = true, unused;
		for (size_t i = 0; i < n; i++)
			all &= child_gone(cs[i]);
		if (all)
			return;
		if (mono_ms() >= deadline)
			break;
		/* SIGCHLD wakes this; a signal to stop is what we do. */
		if (sigfd >= 0)
			wait_event(sigfd, -1, deadline, &unused);
		else
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
