/* The registry of named sandboxes (sandboxes.h). */
#include "sandboxes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/util.h"

int sandboxes_base(char *out, size_t outsz, bool create)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char state[PATH_MAX];
	if (xdg && xdg[0] == '/') {
		if (fmt_buf(state, sizeof(state), "%s", xdg))
			return -ENAMETOOLONG;
	} else if (home && home[0] == '/') {
		if (fmt_buf(state, sizeof(state), "%s/.local/state", home))
			return -ENAMETOOLONG;
	} else {
		return -ENOENT;
	}
	if (fmt_buf(out, outsz, "%s/sandbox/sandboxes", state))
		return -ENAMETOOLONG;
	if (!create)
		return 0;
	/* mkdir -p; the last two levels private. */
	char p[PATH_MAX];
	fmt_buf(p, sizeof(p), "%s", out);
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		*c = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(out, &st) < 0)
		return -errno;
	if (st.st_uid != getuid())
		return -EPERM;
	return chmod(out, 0700) < 0 ? -errno : 0;
}

int sandbox_dir(const char *name, char *out, size_t outsz, bool create)
{
	char base[PATH_MAX];
	int r = sandboxes_base(base, sizeof(base), create);
	if (r)
		return r;
	if (fmt_buf(out, outsz, "%s/%s", base, name))
		return -ENAMETOOLONG;
	if (create && mkdir(out, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

void sandbox_default_name(const char *workspace, char *out, size_t outsz)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *c = workspace; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	const char *base = strrchr(workspace, '/');
	base = base && base[1] ? base + 1 : "root";
	char clean[26];
	size_t n = 0;
	for (; *base && n < sizeof(clean) - 1; base++) {
		char c = *base;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			c = '-';
		clean[n++] = c;
	}
	clean[n] = '\0';
	fmt_buf(out, outsz, "%s-%06x", clean, h & 0xffffff);
}

static int lock_open(const char *dir)
{
	char p[PATH_MAX];
	if (fmt_buf(p, sizeof(p), "%s/lock", dir))
		return -ENAMETOOLONG;
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	return fd < 0 ? -errno : fd;
}

int sandbox_lock(const char *dir)
{
	int fd = lock_open(dir);
	if (fd < 0)
		return fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		return e == EWOULDBLOCK ? -EBUSY : -e;
	}
	/* rm and prune remove the directory while holding the lock: a lock
	 * on a file no longer at its path protects nothing. */
	char p[PATH_MAX];
	struct stat a, b;
	if (fmt_buf(p, sizeof(p), "%s/lock", dir) || fstat(fd, &a) < 0 ||
	    lstat(p, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

bool sandbox_running(const char *dir)
{
	char p[PATH_MAX];
	if (fmt_buf(p, sizeof(p), "%s/lock", dir))
		return false;
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		return errno == EWOULDBLOCK;
	flock(fd, LOCK_UN);
	return false;
}

int json_append_str(char *buf, size_t size, size_t *len, const char *s)
{
	int r = fmt_append(buf, size, len, "\"");
	for (; !r && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			r = fmt_append(buf, size, len, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			r = fmt_append(buf, size, len, "\\u%04x", c);
		else
			r = fmt_append(buf, size, len, "%c", c);
	}
	return r ? r : fmt_append(buf, size, len, "\"");
}

int sandbox_meta_write(const char *dir, const struct sandbox_meta *m)
{
	static char buf[64 * 1024];
	size_t n = 0;
	int r = 0;
#define STR(k, v)                                                              \
	(r = r ? r : fmt_append(buf, sizeof(buf), &n, "  \"%s\": ", k),        \
	 r = r ? r : json_append_str(buf, sizeof(buf), &n, v),                 \
	 r = r ? r : fmt_append(buf, sizeof(buf), &n, ",\n"))
	r = fmt_append(buf, sizeof(buf), &n, "{\n");
	STR("name", m->name);
	STR("workspace", m->workspace);
	STR("agent", m->agent);
	STR("command", m->command);
	r = r ? r : fmt_append(buf, sizeof(buf), &n, "  \"policies\": [");
	for (size_t i = 0; i < m->n_policies; i++) {
		r = r ? r : fmt_append(buf, sizeof(buf), &n, i ? ", " : "");
		r = r ? r : json_append_str(buf, sizeof(buf), &n, m->policies[i]);
	}
	r = r ? r : fmt_append(buf, sizeof(buf), &n, "],\n  \"args\": [");
	const char *w = m->args;
	for (size_t i = 0; i < m->n_args; i++, w += strlen(w) + 1) {
		r = r ? r : fmt_append(buf, sizeof(buf), &n, i ? ", " : "");
		r = r ? r : json_append_str(buf, sizeof(buf), &n, w);
	}
	r = r ? r : fmt_append(buf, sizeof(buf), &n,
			       "],\n  \"created\": %lld,\n  \"started\": %lld,\n"
			       "  \"pid\": %d,\n",
			       m->created, m->started, m->pid);
	STR("state", m->state);
	STR("state_dir", m->state_dir);
	STR("run_dir", m->run_dir);
	STR("proxy_control", m->proxy_control);
	r = r ? r : fmt_append(buf, sizeof(buf), &n, "  \"audit\": ");
	r = r ? r : json_append_str(buf, sizeof(buf), &n, m->audit);
	r = r ? r : fmt_append(buf, sizeof(buf), &n, "\n}\n");
#undef STR
	if (r)
		return r;
	char tmp[PATH_MAX], final[PATH_MAX];
	if (fmt_buf(tmp, sizeof(tmp), "%s/meta.json.tmp", dir) ||
	    fmt_buf(final, sizeof(final), "%s/meta.json", dir))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if ((r = write_all(fd, buf, n)))
		return r;
	return rename(tmp, final) < 0 ? -errno : 0;
}

/* One JSON string at *p (as written above); advances *p. */
static int str_parse(const char **p, char *out, size_t outsz)
{
	const char *s = *p;
	size_t n = 0;
	if (*s++ != '"')
		return -EINVAL;
	for (; *s && *s != '"'; s++) {
		char c = *s;
		if (c == '\\') {
			s++;
			if (*s == 'u') {
				unsigned v;
				if (sscanf(s + 1, "%4x", &v) != 1 || v > 0x7f)
					return -EINVAL;
				c = (char)v;
				s += 4;
			} else if (*s == '"' || *s == '\\') {
				c = *s;
			} else {
				return -EINVAL;
			}
		}
		if (n + 1 >= outsz)
			return -ENAMETOOLONG;
		out[n++] = c;
	}
	if (*s != '"')
		return -EINVAL;
	out[n] = '\0';
	*p = s + 1;
	return 0;
}

int sandbox_meta_read(const char *dir, struct sandbox_meta *m)
{
	memset(m, 0, sizeof(*m));
	char path[PATH_MAX];
	if (fmt_buf(path, sizeof(path), "%s/meta.json", dir))
		return -ENAMETOOLONG;
	_cleanup_free_ char *text = NULL;
	int r = read_file(path, 1u << 20, &text, NULL);
	if (r)
		return r;
	static const struct {
		const char *key;
		size_t off, size;
	} strs[] = {
#define F(k) {#k, offsetof(struct sandbox_meta, k), sizeof(((struct sandbox_meta *)0)->k)}
		F(name), F(workspace), F(agent), F(command), F(state),
		F(state_dir), F(run_dir), F(audit), F(proxy_control),
#undef F
	};
	for (char *save, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[32];
		const char *p = line;
		while (*p == ' ')
			p++;
		if (*p != '"')
			continue;
		if (str_parse(&p, key, sizeof(key)) || strncmp(p, ": ", 2))
			return -EINVAL;
		p += 2;
		for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
			if (!strcmp(key, strs[i].key) &&
			    str_parse(&p, (char *)m + strs[i].off, strs[i].size))
				return -EINVAL;
		if (!strcmp(key, "created"))
			m->created = atoll(p);
		else if (!strcmp(key, "started"))
			m->started = atoll(p);
		else if (!strcmp(key, "pid"))
			m->pid = atoi(p);
		else if (!strcmp(key, "args")) {
			if (*p++ != '[')
				return -EINVAL;
			size_t used = 0;
			while (*p == '"') {
				if (str_parse(&p, m->args + used,
					      sizeof(m->args) - used))
					return -EINVAL;
				used += strlen(m->args + used) + 1;
				m->n_args++;
				if (*p == ',')
					p += 2;
			}
		} else if (!strcmp(key, "policies")) {
			if (*p++ != '[')
				return -EINVAL;
			while (*p == '"' && m->n_policies < SANDBOX_MAX_LIST) {
				if (str_parse(&p, m->policies[m->n_policies],
					      sizeof(m->policies[0])))
					return -EINVAL;
				m->n_policies++;
				if (*p == ',')
					p += 2;
			}
		}
	}
	return m->name[0] ? 0 : -EINVAL;
}

static int run_quiet(char *const argv[], char *err, size_t errsz)
{
	int out = memfd_create("mkfs-out", MFD_CLOEXEC);
	if (out < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		close(out);
		return -errno;
	}
	if (pid == 0) {
		dup2(out, 1);
		dup2(out, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	char msg[512];
	ssize_t n = pread(out, msg, sizeof(msg) - 1, 0);
	close(out);
	msg[n > 0 ? n : 0] = '\0';
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	fmt_buf(err, errsz, "%s failed: %s", argv[0],
		msg[0] ? msg : "no output");
	return -EIO;
}

int ext4_sparse_create(const char *path, unsigned size_mb, const char *label,
		       char *err, size_t errsz)
{
	static const char *const mkfs[] = {"/usr/sbin/mkfs.ext4",
					   "/sbin/mkfs.ext4"};
	const char *bin = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(mkfs) && !bin; i++)
		if (access(mkfs[i], X_OK) == 0)
			bin = mkfs[i];
	if (!bin) {
		fmt_buf(err, errsz, "mkfs.ext4 not found: install e2fsprogs "
				    "(a named sandbox's writable layer and "
				    "Docker's data live in ext4 images)");
		return -ENOENT;
	}
	char tmp[PATH_MAX];
	if (fmt_buf(tmp, sizeof(tmp), "%s.new", path))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size_mb << 20) < 0) {
		fmt_buf(err, errsz, "%s: %s", tmp, strerror(errno));
		return -errno;
	}
	/* Sparse: the image only takes the space its files use. root owns
	 * its root directory, as in the guest. */
	char *argv[] = {(char *)bin, "-q", "-F", "-E",
			"root_owner=0:0,lazy_itable_init=1", "-m", "0",
			"-L", (char *)label, tmp, NULL};
	int r = run_quiet(argv, err, errsz);
	if (r) {
		unlink(tmp);
		return r;
	}
	return rename(tmp, path) < 0 ? -errno : 0;
}

int sandbox_upper_create(const char *dir, unsigned size_mb, char *path,
			 size_t pathsz, char *err, size_t errsz)
{
	if (fmt_buf(path, pathsz, "%s/upper.img", dir))
		return -ENAMETOOLONG;
	if (access(path, F_OK) == 0)
		return 0;
	return ext4_sparse_create(path, size_mb, "sandbox-upper", err, errsz);
}

int sandbox_upper_root(const char *dir, char *out, size_t outsz)
{
	char p[PATH_MAX];
	if (fmt_buf(p, sizeof(p), "%s/upper.root", dir))
		return -ENAMETOOLONG;
	_cleanup_free_ char *text = NULL;
	int r = read_file(p, 64 * 1024, &text, NULL);
	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	text[strcspn(text, "\n")] = '\0';
	return fmt_buf(out, outsz, "%s", text) ? -ENAMETOOLONG : 1;
}

int sandbox_upper_root_write(const char *dir, const char *root)
{
	char tmp[PATH_MAX], final[PATH_MAX], line[PATH_MAX + 128];
	if (fmt_buf(tmp, sizeof(tmp), "%s/upper.root.tmp", dir) ||
	    fmt_buf(final, sizeof(final), "%s/upper.root", dir) ||
	    fmt_buf(line, sizeof(line), "%s\n", root))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, line, strlen(line));
	if (r)
		return r;
	return rename(tmp, final) < 0 ? -errno : 0;
}

int sandbox_upper_reset(const char *dir, unsigned size_mb, char *err,
			size_t errsz)
{
	char p[PATH_MAX], img[PATH_MAX];
	/* The layer first: a record left without its layer is rewritten
	 * when the next run creates one (cmd_run.c), while a layer left
	 * without its record would be adopted over any root. */
	if (fmt_buf(p, sizeof(p), "%s/upper.root", dir) ||
	    fmt_buf(img, sizeof(img), "%s/upper.img", dir))
		return -ENAMETOOLONG;
	if ((unlink(img) < 0 && errno != ENOENT) ||
	    (unlink(p) < 0 && errno != ENOENT)) {
		int e = errno;
		fmt_buf(err, errsz, "%s: %s", dir, strerror(e));
		return -e;
	}
	return sandbox_upper_create(dir, size_mb, img, sizeof(img), err, errsz);
}

static int rm_tree(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
				       O_CLOEXEC);
	if (fd < 0)
		return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno
								      : 0;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int q = rm_tree(dirfd(d), e->d_name);
		r = r ? r : q;
	}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = r ? r : -errno;
	return r;
}

int sandbox_remove(const char *dir)
{
	return rm_tree(AT_FDCWD, dir);
}

void sandbox_audit_counts(const char *audit, unsigned long *allowed,
			  unsigned long *denied)
{
	*allowed = *denied = 0;
	_cleanup_fclose_ FILE *f = fopen(audit, "re");
	if (!f)
		return;
	char line[8192];
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "\"event\":\"connect\""))
			continue;
		if (strstr(line, "\"decision\":\"allow\""))
			(*allowed)++;
		else if (strstr(line, "\"decision\":\"deny\""))
			(*denied)++;
	}
}
