#include "host_pkg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"

#define COPY_MAX_DEPTH 8
#define COPY_MAX_FILE (4u << 20)

int host_apt_is_secret(const char *name)
{
	/* apt_auth.conf(5): auth.conf and every file in auth.conf.d. */
	return !strcmp(name, "auth.conf") || !strcmp(name, "auth.conf.d");
}

bool host_apt_text_has_credentials(const char *text, size_t len)
{
	/* scheme://userinfo@host: the authority runs from "//" to the next
	 * '/', whitespace, quote or end; an '@' inside it is userinfo. */
	for (size_t i = 0; i + 2 < len; i++) {
		if (text[i] != ':' || text[i + 1] != '/' || text[i + 2] != '/')
			continue;
		for (size_t j = i + 3; j < len; j++) {
			char c = text[j];
			if (c == '@')
				return true;
			if (c == '/' || c == ' ' || c == '\t' || c == '\n' ||
			    c == '\r' || c == '"' || c == '\'' || c == ']' ||
			    c == ';')
				break;
		}
	}
	return false;
}

static int copy_file_at(int sfd, int dfd, const char *name)
{
	_cleanup_close_ int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW |
							  O_CLOEXEC);
	if (in < 0)
		return errno == EACCES ? 0 : -errno; /* not ours to read */
	_cleanup_free_ char *buf = malloc(COPY_MAX_FILE + 1);
	if (!buf)
		return -ENOMEM;
	size_t total = 0;
	ssize_t n;
	while ((n = read(in, buf + total, COPY_MAX_FILE + 1 - total)) > 0)
		if ((total += (size_t)n) > COPY_MAX_FILE)
			return -EFBIG;
	if (n < 0)
		return -errno;
	/* A URL with a user or password in it (a token in a sources line, a
	 * proxy's password in apt.conf.d) is a credential: the file stays
	 * on the host. */
	if (host_apt_text_has_credentials(buf, total))
		return 0;
	_cleanup_close_ int out = openat(
		dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		0644);
	if (out < 0)
		return -errno;
	return write_all(out, buf, total);
}

static int copy_tree(int sfd, int dfd, int depth)
{
	if (depth > COPY_MAX_DEPTH)
		return -ELOOP;
	int dup_fd = dup(sfd);
	if (dup_fd < 0)
		return -errno;
	DIR *d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return -errno;
	}
	int r = 0;
	struct dirent *e;
	while (!r && (e = readdir(d))) {
		const char *n = e->d_name;
		if (!strcmp(n, ".") || !strcmp(n, "..") || host_apt_is_secret(n))
			continue;
		struct stat st;
		if (fstatat(sfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
		} else if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int s2 = openat(
				sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (s2 < 0) {
				if (errno != EACCES)
					r = -errno;
				continue;
			}
			if (mkdirat(dfd, n, 0755) < 0) {
				r = -errno;
				continue;
			}
			_cleanup_close_ int d2 = openat(
				dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = d2 < 0 ? -errno : copy_tree(s2, d2, depth + 1);
		} else if (S_ISLNK(st.st_mode)) {
			/* Links into /usr (keyrings) resolve in the guest too. */
			char target[4096];
			ssize_t len = readlinkat(sfd, n, target, sizeof(target) - 1);
			if (len < 0) {
				r = -errno;
				continue;
			}
			target[len] = '\0';
			if (symlinkat(target, dfd, n) < 0)
				r = -errno;
		} else if (S_ISREG(st.st_mode)) {
			r = copy_file_at(sfd, dfd, n);
		}
	}
	closedir(d);
	return r;
}

size_t host_system_accounts(const char *text, int is_group, char *out,
			    size_t outsz)
{
	size_t n = 0;
	if (!outsz)
		return 0;
	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		const char *next = l + len + (nl ? 1 : 0);
		/* name:x:ID:... ; find the start of field 3 and 4. */
		const char *f = l, *end = l + len;
		const char *fields[4] = {l, NULL, NULL, NULL};
		for (int i = 1; i < 4; i++) {
			f = memchr(f, ':', (size_t)(end - f));
			if (!f)
				break;
			fields[i] = ++f;
		}
		if (fields[3] && fields[2] < fields[3] - 1) {
			char *stop;
			unsigned long id = strtoul(fields[2], &stop, 10);
			bool ok = stop == fields[3] - 1 &&
				  (id < 1000 || id == 65534);
			/* A group keeps name:x:GID: and loses its members. */
			size_t keep = is_group ? (size_t)(fields[3] - l) : len;
			if (ok && *l != '+' && *l != '-' && n + keep + 2 < outsz) {
				memcpy(out + n, l, keep);
				n += keep;
				out[n++] = '\n';
			}
		}
		l = next;
	}
	out[n] = '\0';
	return n;
}

static int write_accounts(const char *src, int is_group, const char *dst)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_file(src, 8u << 20, &text, &len);
	if (r)
		return r;
	_cleanup_free_ char *out = malloc(len + 2);
	if (!out)
		return -ENOMEM;
	size_t n = host_system_accounts(text, is_group, out, len + 2);
	_cleanup_close_ int fd =
		open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	return write_all(fd, out, n);
}

static int host_apt_copy(const char *dst)
{
	_cleanup_close_ int s =
		open(HOST_APT_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s < 0)
		return -errno;
	if (mkdir(dst, 0755) < 0)
		return -errno;
	_cleanup_close_ int d = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return d < 0 ? -errno : copy_tree(s, d, 0);
}

int host_etc_prepare(const char *dst, char *err, size_t errsz)
{
	char path[4096];
	if (mkdir(dst, 0700) < 0) {
		fmt_buf(err, errsz, "%s: %s", dst, strerror(errno));
		return -errno;
	}
	static const struct {
		const char *what, *name;
		int is_group;
	} parts[] = {{HOST_APT_DIR, "apt", -1},
		     {"/etc/passwd", "passwd", 0},
		     {"/etc/group", "group", 1}};
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		int r = fmt_buf(path, sizeof(path), "%s/%s", dst, parts[i].name);
		if (!r)
			r = parts[i].is_group < 0
				    ? host_apt_copy(path)
				    : write_accounts(parts[i].what,
						     parts[i].is_group, path);
		if (r) {
			fmt_buf(err, errsz, "copying %s to %s: %s",
				parts[i].what, path, strerror(-r));
			return r;
		}
	}
	/* The dynamic loader's cache describes the host's /usr, which is the
	 * guest's: with it the guest need not run ldconfig over 9p at boot
	 * (seconds under TCG). Optional: without it the guest runs ldconfig. */
	_cleanup_close_ int etc = open("/etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int out = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (etc >= 0 && out >= 0 && copy_file_at(etc, out, "ld.so.cache") < 0)
		unlinkat(out, "ld.so.cache", 0);
	return 0;
}
