/* sandbox-launch stop / rm / prune. */
#include "cmds.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/util.h"
#include "remembered.h"

#define STOP_WAIT_MS 15000

static const char stop_usage[] =
	"usage: sandbox-launch stop NAME...\n"
	"\n"
	"Stops running sandboxes: SIGTERM to the main command (as a Ctrl-C would),\n"
	"then, if it is still running, the VM. The writable layer is kept; run\n"
	"starts it again.\n";
static const char rm_usage[] =
	"usage: sandbox-launch rm [--force] NAME...\n"
	"\n"
	"Removes sandboxes: their writable layer (installed packages, home\n"
	"directory), metadata and registry entry. The workspace is never touched;\n"
	"run logs stay in $XDG_STATE_HOME/sandbox/runs ('runs prune --name NAME\n"
	"--older-than 0d' removes them after). A running sandbox is refused\n"
	"unless --force, which stops it first.\n";
static const char prune_usage[] =
	"usage: sandbox-launch prune [--dry-run]\n"
	"\n"
	"Removes every stopped sandbox (as rm does); running ones are kept.\n"
	"--dry-run only lists what would go.\n";

static const char reset_usage[] =
	"usage: sandbox-launch reset NAME...\n"
	"\n"
	"Discards a stopped sandbox's writable layer (what its commands changed\n"
	"outside the workspace: installed packages, the home directory) and gives\n"
	"it an empty one, as on its first run, and forgets the settings it was\n"
	"made with (--memory, --cpus, --policy files: see list), so that its next\n"
	"run may give others. Its name, workspace and recorded command are kept;\n"
	"the workspace is never touched. It also lets the sandbox start over\n"
	"another root (--image) than before.\n"
	"A running sandbox is refused: stop it first. Takes well under a second.\n"
	"\n"
	"Example: sandbox-launch reset myrepo-1a2b3c\n";

static bool want_help(int argc, char **argv, const char *usage)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return true;
		}
	return false;
}

static int find(const char *cmd, const char *name, char *dir, size_t n,
		struct sandbox_meta *m)
{
	if (!launch_name_valid(name) || sandbox_dir(name, dir, n, false) ||
	    sandbox_meta_read(dir, m)) {
		fprintf(stderr, "sandbox-launch %s: no sandbox named %s "
				"(sandbox-launch list shows them)\n",
			cmd, name);
		return -ENOENT;
	}
	return 0;
}

static bool wait_stopped(const char *dir, int ms)
{
	for (int t = 0; t < ms; t += 50) {
		if (!sandbox_running(dir))
			return true;
		poll(NULL, 0, 50);
	}
	return !sandbox_running(dir);
}

/* The launcher forwards the first SIGTERM to the command and stops the
 * VM on the second (or 5 s later); SIGKILL is the last resort, and
 * PDEATHSIG then takes QEMU, the bridge and the proxy with it. */
static int stop_one(const char *dir, const struct sandbox_meta *m)
{
	if (!sandbox_running(dir))
		return 0;
	if (m->pid <= 0)
		return -ESRCH;
	kill(m->pid, SIGTERM);
	if (wait_stopped(dir, STOP_WAIT_MS / 2))
		return 0;
	kill(m->pid, SIGTERM);
	if (wait_stopped(dir, STOP_WAIT_MS / 2))
		return 0;
	kill(m->pid, SIGKILL);
	return wait_stopped(dir, 2000) ? 0 : -ETIMEDOUT;
}

int cmd_stop(int argc, char **argv)
{
	if (want_help(argc, argv, stop_usage))
		return 0;
	if (argc < 2) {
		fprintf(stderr, "sandbox-launch stop: no sandbox name given "
				"(try --help)\n");
		return 2;
	}
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		char dir[PATH_MAX];
		struct sandbox_meta m;
		if (find("stop", argv[i], dir, sizeof(dir), &m)) {
			rc = 1;
			continue;
		}
		if (!sandbox_running(dir)) {
			printf("%s: not running\n", argv[i]);
			continue;
		}
		int r = stop_one(dir, &m);
		if (r) {
			fprintf(stderr, "sandbox-launch stop: %s: %s\n",
				argv[i], strerror(-r));
			rc = 1;
		} else {
			printf("%s: stopped\n", argv[i]);
		}
	}
	return rc;
}

/* Takes dir's lock for a removal or reset: a sandbox that runs, or is
 * just starting (the launcher takes the lock before anything else), is
 * never touched. With force, a running one is stopped first. Returns the
 * lock fd, or -1 after saying why. */
static int lock_stopped(const char *cmd, const char *name, const char *dir,
			const struct sandbox_meta *m, bool force)
{
	int fd = sandbox_lock(dir);
	if (fd == -EBUSY && force) {
		if (stop_one(dir, m)) {
			fprintf(stderr, "sandbox-launch %s: cannot stop %s\n",
				cmd, name);
			return -1;
		}
		fd = sandbox_lock(dir);
	}
	if (fd == -EBUSY) {
		fprintf(stderr,
			"sandbox-launch %s: %s is running (or starting): stop "
			"it first%s\n",
			cmd, name, !strcmp(cmd, "rm") ? ", or rm --force" : "");
		return -1;
	}
	if (fd < 0) {
		fprintf(stderr, "sandbox-launch %s: %s/lock: %s\n", cmd, dir,
			strerror(-fd));
		return -1;
	}
	return fd;
}

int cmd_rm(int argc, char **argv)
{
	if (want_help(argc, argv, rm_usage))
		return 0;
	bool force = false;
	int rc = 0, names = 0;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
			force = true;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
			continue;
		names++;
		char dir[PATH_MAX];
		struct sandbox_meta m;
		if (find("rm", argv[i], dir, sizeof(dir), &m)) {
			rc = 1;
			continue;
		}
		/* Held while the directory goes, so that no launcher can
		 * start it meanwhile (sandbox_lock sees the lock file gone). */
		_cleanup_close_ int lock = lock_stopped("rm", argv[i], dir, &m,
							force);
		if (lock < 0) {
			rc = 1;
			continue;
		}
		int r = sandbox_remove(dir);
		if (r) {
			fprintf(stderr, "sandbox-launch rm: %s: %s\n", dir,
				strerror(-r));
			rc = 1;
		} else {
			printf("%s: removed\n", argv[i]);
		}
	}
	if (!names) {
		fprintf(stderr, "sandbox-launch rm: no sandbox name given "
				"(try --help)\n");
		return 2;
	}
	return rc;
}

int cmd_prune(int argc, char **argv)
{
	if (want_help(argc, argv, prune_usage))
		return 0;
	bool dry = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run") || !strcmp(argv[i], "-n")) {
			dry = true;
		} else {
			fprintf(stderr, "sandbox-launch prune: unknown argument "
					"%s (try --help)\n",
				argv[i]);
			return 2;
		}
	}
	char base[PATH_MAX];
	if (sandboxes_base(base, sizeof(base), false))
		return 0;
	DIR *d = opendir(base);
	if (!d)
		return 0;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		char dir[PATH_MAX];
		if (e->d_name[0] == '.' ||
		    fmt_buf(dir, sizeof(dir), "%s/%s", base, e->d_name))
			continue;
		/* The lock, not a look at it: a sandbox starting right now
		 * holds it, and keeps it. */
		_cleanup_close_ int lock = sandbox_lock(dir);
		if (lock < 0)
			continue;
		if (dry) {
			printf("%s: would be removed\n", e->d_name);
			continue;
		}
		int r = sandbox_remove(dir);
		if (r) {
			fprintf(stderr, "sandbox-launch prune: %s: %s\n", dir,
				strerror(-r));
			rc = 1;
		} else {
			printf("%s: removed\n", e->d_name);
		}
	}
	closedir(d);
	return rc;
}

int cmd_reset(int argc, char **argv)
{
	if (want_help(argc, argv, reset_usage))
		return 0;
	if (argc < 2) {
		fprintf(stderr, "sandbox-launch reset: no sandbox name given "
				"(try --help)\n");
		return 2;
	}
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		char dir[PATH_MAX], err[1024] = "";
		struct sandbox_meta m;
		if (find("reset", argv[i], dir, sizeof(dir), &m)) {
			rc = 1;
			continue;
		}
		_cleanup_close_ int lock = lock_stopped("reset", argv[i], dir,
							&m, false);
		if (lock < 0) {
			rc = 1;
			continue;
		}
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int r = sandbox_upper_reset(dir, SANDBOX_UPPER_MB, err,
					    sizeof(err));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (!r && (r = remembered_forget(dir)))
			fmt_buf(err, sizeof(err), "%s/" REMEMBERED_FILE ": %s",
				dir, strerror(-r));
		if (r) {
			fprintf(stderr, "sandbox-launch reset: %s: %s\n",
				argv[i], err[0] ? err : strerror(-r));
			rc = 1;
			continue;
		}
		printf("%s: writable layer reset (%.2f s)\n", argv[i],
		       (double)(t1.tv_sec - t0.tv_sec) +
			       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	return rc;
}
