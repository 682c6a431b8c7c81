/* The launcher's supervisor (launcher/supervise.c): a child inherits a
 * readiness pipe as descriptor 3, and child_wait tells "ready", "ended
 * first" (with how), "timed out" and "a signal to stop" apart, woken by
 * SIGCHLD on a signalfd rather than a timer. Real processes (/bin/sh). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../../common/clock.h"
#include "../../launcher/launch.h"
#include "tap.h"

static int sigfd = -1;

static enum child_wait spawn_wait(const char *script, uint64_t ms,
				  struct child *c, int *sig)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
	int r = child_spawn_fds(c, argv, "/dev/null", &p[1], 1);
	close(p[1]);
	if (r) {
		close(p[0]);
		return -1;
	}
	enum child_wait w = child_wait(c, p[0], sigfd, mono_ms() + ms, sig);
	close(p[0]);
	return w;
}

int main(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	ok(sigfd >= 0, "signalfd");

	struct child c = {.name = "t"};
	int sig;
	char how[128];
	is_int(spawn_wait("echo ready >&3; exec sleep 60", 60000, &c, &sig),
	       CHILD_WAIT_READY, "a ready line on descriptor 3 is ready");
	struct child *const one[] = {&c};
	children_stop(one, 1, 5000, sigfd);
	ok(c.reaped, "stopped and reaped");

	is_int(spawn_wait("echo starting; exit 3", 60000, &c, &sig),
	       CHILD_WAIT_GONE, "ending without the line is gone");
	child_status_text(&c, how, sizeof(how));
	is_str(how, "exit status 3", "... with how it ended");

	is_int(spawn_wait("echo rea >&3; kill -9 $$", 60000, &c, &sig),
	       CHILD_WAIT_GONE, "half a line, then killed, is not ready");
	child_status_text(&c, how, sizeof(how));
	is_str(how, "killed by signal 9 (Killed)", "... killed by SIGKILL");

	is_int(spawn_wait("exec 3>&-; exec sleep 60", 60000, &c, &sig),
	       CHILD_WAIT_GONE,
	       "closing the pipe without the line is not ready either");
	ok(!c.reaped, "... while it still runs");
	children_stop(one, 1, 5000, sigfd);

	is_int(spawn_wait("exec sleep 60", 100, &c, &sig), CHILD_WAIT_TIMEOUT,
	       "silence until the deadline times out");
	children_stop(one, 1, 5000, sigfd);

	/* Waiting for an exit: SIGCHLD wakes it. */
	char *argv[] = {"/bin/sh", "-c", "exit 7", NULL};
	is_int(child_spawn(&c, argv, "/dev/null"), 0, "spawned");
	is_int(child_wait(&c, -1, sigfd, UINT64_MAX, &sig), CHILD_WAIT_GONE,
	       "an exit ends a wait without a deadline");
	child_status_text(&c, how, sizeof(how));
	is_str(how, "exit status 7", "... and its status is kept");

	char *sl[] = {"/bin/sleep", "60", NULL};
	is_int(child_spawn(&c, sl, "/dev/null"), 0, "spawned a sleeper");
	kill(getpid(), SIGTERM); /* blocked: pending on the signalfd */
	is_int(child_wait(&c, -1, sigfd, UINT64_MAX, &sig), CHILD_WAIT_SIGNAL,
	       "a signal to stop ends the wait");
	is_int(sig, SIGTERM, "... naming it");
	children_stop(one, 1, 5000, sigfd);
	ok(c.reaped, "and the sleeper is reaped");

	char *nx[] = {"/nonexistent/prog", NULL};
	is_int(child_spawn_fds(&c, nx, "/dev/null", (int[]){0}, 1), -ENOENT,
	       "an exec failure comes back as an error, fds passed or not");
	return done_testing();
}
