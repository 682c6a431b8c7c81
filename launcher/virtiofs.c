/* virtiofsd as the invoking user, in nested user namespaces (see
 * virtiofs.h for the id mapping and why it is nested).
 *
 * Order, and who does what:
 *   launcher: listen on the socket (0600), fork the helper;
 *   helper:   unshare(CLONE_NEWUSER) (outer), tell the launcher;
 *   launcher: write the helper's uid_map (its own uid only, which needs no
 *             privilege) and run newgidmap (its own gid plus one
 *             subordinate gid, which is what keeps setgroups() allowed);
 *   helper:   setgroups(0, NULL); unshare(CLONE_NEWUSER) (inner) and map
 *             only guest_uid/guest_gid to the outer 0 (the user); keep all
 *             capabilities of the inner namespace across exec (ambient:
 *             virtiofsd there is uid guest_uid, not 0, for the sandbox
 *             user's files to be the user's); no_new_privs; the seccomp
 *             filter; exec virtiofsd --fd=N (no socket or lock file of its
 *             own, so no private /run is needed).
 * Exec failures come back over a close-on-exec pipe, as in supervise.c.
 */
#include "virtiofs.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/unix_listen.h"
#include "../common/util.h"

#define NEWGIDMAP "/usr/bin/newgidmap"
#define SUBGID_FILE "/etc/subgid"

/* The first subordinate gid of the user (name or uid in /etc/subgid). */
static int subgid_first(uid_t uid, unsigned long *first)
{
	struct passwd *pw = getpwuid(uid);
	char uidstr[16];
	if (fmt_buf(uidstr, sizeof(uidstr), "%u", (unsigned)uid))
		return -EINVAL;
	_cleanup_fclose_ FILE *f = fopen(SUBGID_FILE, "re");
	if (!f)
		return -errno;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2, *end;
		if (!c1 || !(c2 = strchr(c1 + 1, ':')))
			continue;
		*c1 = '\0';
		if (strcmp(line, uidstr) && (!pw || strcmp(line, pw->pw_name)))
			continue;
		errno = 0;
		unsigned long start = strtoul(c1 + 1, &end, 10);
		unsigned long count = strtoul(c2 + 1, NULL, 10);
		if (errno || end != c2 || count == 0 || start > 0xfffffffeUL)
			continue;
		*first = start;
		return 0;
	}
	return -ENOENT;
}

static int write_str(const char *path, const char *s)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return write_all(fd, s, strlen(s));
}

/* Keep every capability the helper holds in the inner namespace across
 * exec although its uid there is not 0. */
static int caps_ambient_all(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	d[0].inheritable = d[0].permitted;
	d[1].inheritable = d[1].permitted;
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	for (unsigned long cap = 0; cap < 64; cap++) {
		if (!(d[cap / 32].permitted & (1u << (cap % 32))))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			return -errno;
	}
	return 0;
}

/* What the helper reports when it cannot exec virtiofsd. */
struct helper_err {
	int stage; /* index into helper_stage[] */
	int err;   /* errno */
};

static const char *const helper_stage[] = {
	"set-up", "unshare(CLONE_NEWUSER)", "setgroups", "inner user namespace",
	"capabilities", "seccomp filter", "exec",
};

static void __attribute__((noreturn))
helper_fail(int errfd, int stage, int err)
{
	struct helper_err he = {stage, err};
	(void)!write(errfd, &he, sizeof(he));
	_exit(127);
}

static void __attribute__((noreturn))
helper(const struct virtiofs_config *cfg, int lfd, int logfd, int readyfd,
       int gofd, int errfd, pid_t parent)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		helper_fail(errfd, 0, errno);
	if (unshare(CLONE_NEWUSER) < 0)
		helper_fail(errfd, 1, errno);
	char b = 1;
	if (write(readyfd, &b, 1) != 1 || read(gofd, &b, 1) != 1)
		_exit(127); /* the launcher reports its own failure */
	if (setgroups(0, NULL) < 0)
		helper_fail(errfd, 2, errno);
	char map[64];
	int r;
	if (unshare(CLONE_NEWUSER) < 0)
		helper_fail(errfd, 3, errno);
	if ((r = write_str("/proc/self/setgroups", "deny")) ||
	    (r = fmt_buf(map, sizeof(map), "%u 0 1\n", cfg->guest_uid)) ||
	    (r = write_str("/proc/self/uid_map", map)) ||
	    (r = fmt_buf(map, sizeof(map), "%u 0 1\n", cfg->guest_gid)) ||
	    (r = write_str("/proc/self/gid_map", map)))
		helper_fail(errfd, 3, -r);
	/* virtiofsd holds an O_PATH descriptor for each inode the guest
	 * knows: the user's soft limit (often 1024) is soon reached. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((r = caps_ambient_all()))
		helper_fail(errfd, 4, -r);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(logfd, 1) < 0 ||
	    dup2(logfd, 2) < 0 || fcntl(lfd, F_SETFD, 0) < 0)
		helper_fail(errfd, 0, errno);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		helper_fail(errfd, 5, errno);
	if ((r = virtiofs_seccomp_install(cfg->refuse_flush)))
		helper_fail(errfd, 5, -r);
	char fdarg[32], src[4200];
	if (fmt_buf(fdarg, sizeof(fdarg), "--fd=%d", lfd) ||
	    fmt_buf(src, sizeof(src), "source=%s", cfg->source))
		helper_fail(errfd, 0, ENAMETOOLONG);
	/* cache=auto: the guest revalidates after a second, so edits made on
	 * the host show up; the guest's own writes go straight through (no
	 * writeback), so the host sees the agent's edits as they happen.
	 * --rlimit-nofile=0: an ordinary user cannot raise the hard limit (the
	 * soft one is raised to it above). */
	char *const argv[] = {(char *)cfg->virtiofsd, fdarg,
			      "-o", src,
			      "-o", "sandbox=chroot",
			      "-o", "cache=auto",
			      "--rlimit-nofile=0",
			      NULL};
	execv(argv[0], argv);
	helper_fail(errfd, 6, errno);
}

/* newgidmap PID 0 GID 1 1 SUBGID 1: the outer namespace's groups. */
static int run_newgidmap(pid_t pid, gid_t gid, unsigned long subgid)
{
	char p[16], g[16], s[24];
	if (fmt_buf(p, sizeof(p), "%d", (int)pid) ||
	    fmt_buf(g, sizeof(g), "%u", (unsigned)gid) ||
	    fmt_buf(s, sizeof(s), "%lu", subgid))
		return -EINVAL;
	char *const argv[] = {NEWGIDMAP, p, "0", g, "1", "1", s, "1", NULL};
	pid_t c = fork();
	if (c < 0)
		return -errno;
	if (c == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	if (waitpid(c, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EPERM;
}

int virtiofs_start(struct child *c, const struct virtiofs_config *cfg,
		   const char *log_path, char *why, size_t whysz)
{
	unsigned long subgid = 0;
	int r;
	if (access(cfg->virtiofsd, X_OK) < 0) {
		fmt_buf(why, whysz, "%s: %s", cfg->virtiofsd, strerror(errno));
		return -ENOENT;
	}
	if (access(NEWGIDMAP, X_OK) < 0) {
		fmt_buf(why, whysz, "%s missing (Debian package uidmap)",
			NEWGIDMAP);
		return -ENOENT;
	}
	if ((r = subgid_first(getuid(), &subgid))) {
		fmt_buf(why, whysz, "no subordinate gid range for uid %u in %s",
			(unsigned)getuid(), SUBGID_FILE);
		return r;
	}
	_cleanup_close_ int logfd =
		open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0) {
		fmt_buf(why, whysz, "%s: %s", log_path, strerror(errno));
		return -errno;
	}
	_cleanup_close_ int lfd = unix_listen_0600(cfg->socket_path, 1, 0);
	if (lfd < 0) {
		fmt_buf(why, whysz, "%s: %s", cfg->socket_path, strerror(-lfd));
		return lfd;
	}
	int ready[2], go[2], err[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(go, O_CLOEXEC) < 0) {
		close(ready[0]);
		close(ready[1]);
		return -errno;
	}
	if (pipe2(err, O_CLOEXEC) < 0) {
		close(ready[0]);
		close(ready[1]);
		close(go[0]);
		close(go[1]);
		return -errno;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		close(err[0]);
		helper(cfg, lfd, logfd, ready[1], go[0], err[1], parent);
	}
	close(ready[1]);
	close(go[0]);
	close(err[1]);
	_cleanup_close_ int rfd = ready[0], gfd = go[1], efd = err[0];
	if (pid < 0) {
		fmt_buf(why, whysz, "fork: %s", strerror(errno));
		return -errno;
	}
	setpgid(pid, pid);
	c->pid = pid;
	c->reaped = false;
	char b;
	char map[64];
	r = 0;
	if (read_retry(rfd, &b, 1) == 1) {
		char path[64];
		if ((r = fmt_buf(map, sizeof(map), "0 %u 1\n", (unsigned)getuid())) ||
		    (r = fmt_buf(path, sizeof(path), "/proc/%d/uid_map", (int)pid)) ||
		    (r = write_str(path, map)))
			fmt_buf(why, whysz, "writing the uid map: %s", strerror(-r));
		else if ((r = run_newgidmap(pid, getgid(), subgid)))
			fmt_buf(why, whysz, "%s refused the gid map "
				"(see %s)", NEWGIDMAP, SUBGID_FILE);
		else if (write_retry(gfd, &b, 1) != 1)
			r = -EPIPE;
	}
	close(take_fd(&gfd));
	struct helper_err he;
	ssize_t n = read_full(efd, &he, sizeof(he));
	if (n == sizeof(he) || r) {
		if (!r) {
			int s = he.stage >= 0 && (size_t)he.stage < ARRAY_SIZE(helper_stage)
					? he.stage : 0;
			fmt_buf(why, whysz, "%s: %s", helper_stage[s],
				strerror(he.err));
			r = -he.err;
		}
		kill(pid, SIGKILL);
		waitpid(pid, &c->status, 0);
		c->reaped = true;
		unlink(cfg->socket_path);
		return r ? r : -EPERM;
	}
	return 0;
}

void virtiofs_workspace(struct child *c, const char *state, const char *run,
			const char *workspace, unsigned guest_uid,
			unsigned guest_gid, char *sock, size_t socksz)
{
	char log[PATH_MAX], why[512] = "";
	const char *want = getenv("SANDBOX_WORKSPACE_FS");
	sock[0] = '\0';
	if (want && !strcmp(want, "9p"))
		return;
	if (fmt_buf(sock, socksz, "%s/virtiofs.sock", state) ||
	    fmt_buf(log, sizeof(log), "%s/virtiofsd.log", run)) {
		sock[0] = '\0';
		fputs("sandbox-launch: notice: workspace over 9p: state "
		      "directory path too long for virtiofs\n", stderr);
		return;
	}
	struct virtiofs_config vc = {
		.virtiofsd = VIRTIOFSD_PATH,
		.source = workspace,
		.socket_path = sock,
		.guest_uid = guest_uid,
		.guest_gid = guest_gid,
		.refuse_flush = virtiofs_flush_needless_at(workspace),
	};
	if (virtiofs_start(c, &vc, log, why, sizeof(why)) == 0)
		return;
	sock[0] = '\0';
	fprintf(stderr, "sandbox-launch: notice: workspace over 9p (slower): "
			"virtiofs cannot run here: %s\n", why);
}
