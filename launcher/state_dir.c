/* Where a run keeps its files.
 *
 * State dir (private, removed at exit): the sockets QEMU, the bridge and
 * the proxy talk over; the proxy's vsock_P listeners in ports/, alone, as
 * that is the only directory the bridge's connector connects in. Under $XDG_RUNTIME_DIR/sandbox/ (a per-user tmpfs)
 * or /tmp/sandbox-$UID/; either base must be a real directory owned by us
 * with no access for others, or we refuse: another user who owned it could
 * swap our sockets.
 *
 * Run dir (kept): audit log, console log, daemon logs, the policy given.
 * $XDG_STATE_HOME/sandbox/runs/ID, default ~/.local/state/sandbox/runs/ID.
 */
#include "launch.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"

/* mkdir that accepts an existing directory only if it is ours and private. */
static int private_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid())
		return -EPERM;
	if (st.st_mode & 077)
		return -EPERM;
	return 0;
}

static int mkdir_p(char *path, mode_t mode)
{
	for (char *c = path + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		int r = mkdir(path, mode);
		*c = '/';
		if (r < 0 && errno != EEXIST)
			return -errno;
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int state_base(char *out, size_t outsz)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	if (xdg && xdg[0] == '/' && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode) &&
	    st.st_uid == getuid()) {
		if (fmt_buf(out, outsz, "%s/sandbox", xdg))
			return -ENAMETOOLONG;
	} else if (fmt_buf(out, outsz, "/tmp/sandbox-%u", (unsigned)getuid())) {
		return -ENAMETOOLONG;
	}
	return private_dir(out);
}

/* Sockets and logs, and one level of subdirectory (ports/). */
static void remove_tree(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno != EISDIR ||
			    depth == 0)
				continue;
			char sub[4096];
			if (fmt_buf(sub, sizeof(sub), "%s/%s", dir, e->d_name) == 0)
				remove_tree(sub, depth - 1);
		}
		closedir(d);
	}
	rmdir(dir);
}

void state_dir_remove(const char *dir)
{
	remove_tree(dir, 1);
}

/* NAME-PID-XXXXXX: the launcher's pid is the second-to-last field. */
static pid_t owner_pid(const char *entry)
{
	const char *last = strrchr(entry, '-');
	if (!last || last == entry)
		return 0;
	const char *p = last - 1;
	while (p > entry && *p != '-')
		p--;
	if (*p != '-')
		return 0;
	char *end;
	long pid = strtol(p + 1, &end, 10);
	return end == last && pid > 0 ? (pid_t)pid : 0;
}

static void remove_stale(const char *base)
{
	DIR *d = opendir(base);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		pid_t pid = owner_pid(e->d_name);
		/* Only a launcher that is gone for sure: pid reuse merely
		 * keeps a stale directory a little longer. */
		if (pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		char path[4096];
		if (fmt_buf(path, sizeof(path), "%s/%s", base, e->d_name) == 0)
			state_dir_remove(path);
	}
	closedir(d);
}

int state_dir_create(const char *name, char *out, size_t outsz)
{
	char base[4096];
	int r = state_base(base, sizeof(base));
	if (r)
		return r;
	remove_stale(base);
	if (fmt_buf(out, outsz, "%s/%s-%d-XXXXXX", base, name, (int)getpid()))
		return -ENAMETOOLONG;
	if (!mkdtemp(out))
		return -errno;
	return 0;
}

int run_base(char *out, size_t outsz, bool create)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	if (xdg && xdg[0] == '/') {
		if (fmt_buf(out, outsz, "%s/sandbox/runs", xdg))
			return -ENAMETOOLONG;
	} else if (home && home[0] == '/') {
		if (fmt_buf(out, outsz, "%s/.local/state/sandbox/runs", home))
			return -ENAMETOOLONG;
	} else {
		return -ENOENT;
	}
	return create ? mkdir_p(out, 0700) : 0;
}

int run_dir_create(const char *name, char *out, size_t outsz)
{
	char base[4096];
	int r = run_base(base, sizeof(base), true);
	if (r)
		return r;
	time_t t = time(NULL);
	struct tm tm;
	char stamp[32];
	if (!localtime_r(&t, &tm) ||
	    !strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm))
		return -EINVAL;
	if (fmt_buf(out, outsz, "%s/%s-%s-%d", base, stamp, name, (int)getpid()))
		return -ENAMETOOLONG;
	if (mkdir(out, 0700) < 0)
		return -errno;
	return 0;
}

int run_write_policy_record(const char *path, const struct strv *pa)
{
	_cleanup_close_ int fd =
		open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = fd < 0 ? -errno : 0;
	static const char head[] =
		"# Policy sources given to sandbox-proxy, in merge order\n"
		"# (built-in presets come in through 'extends:').\n";
	r = r ? r : write_all(fd, head, sizeof(head) - 1);
	for (size_t i = 0; !r && i + 1 < pa->n; i += 2) {
		char line[PATH_MAX + 32];
		r = fmt_buf(line, sizeof(line), "%s %s\n", pa->v[i],
			    pa->v[i + 1]);
		r = r ? r : write_all(fd, line, strlen(line));
	}
	return r;
}
