/* Synthesise a minimal /etc in the new root. Nothing of the host's /etc is
 * shared: the CA bundle, services and protocols are public data baked into
 * the initramfs at build time. */
#include "guest.h"

#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"

static int write_text(const char *rel, const char *text, mode_t mode)
{
	char path[256];
	if (fmt_buf(path, sizeof(path), "%s/%s", NEWROOT, rel))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd =
		open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	return write_all(fd, text, strlen(text));
}

static int copy_file(const char *from, const char *rel)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = read_file(from, 16u << 20, &buf, &len);
	if (r == -ENOENT)
		return 0; /* optional */
	if (r)
		return r;
	char path[256];
	if (fmt_buf(path, sizeof(path), "%s/%s", NEWROOT, rel))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd =
		open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	return write_all(fd, buf, len);
}

/* An account file (passwd, group, shadow) that may already hold entries
 * of the image or of earlier boots of a named sandbox (users and groups a
 * package added): keep them, minus any that claims the sandbox user's name
 * or id, add each default entry whose name is missing, then the sandbox
 * user's own. id_field is the 0-based field holding the id (0: none). */
struct account_file {
	const char *rel;
	mode_t mode;
	unsigned id_field;
	const char *defaults; /* lines, each added when its name is missing */
};

static bool field_eq(const char *line, size_t len, unsigned field,
		     const char *want)
{
	const char *f = line, *end = line + len;
	for (unsigned i = 0; i < field; i++) {
		f = memchr(f, ':', (size_t)(end - f));
		if (!f)
			return false;
		f++;
	}
	size_t n = strlen(want);
	return (size_t)(end - f) >= n && memcmp(f, want, n) == 0 &&
	       (f + n == end || f[n] == ':');
}

static bool has_name(const char *text, const char *name)
{
	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		if (field_eq(l, len, 0, name))
			return true;
		l += len + (nl ? 1 : 0);
	}
	return false;
}

static int account_merge(const struct account_file *f, const char *user,
			 const char *id, const char *ours)
{
	char path[256], tmp[280];
	if (fmt_buf(path, sizeof(path), "%s/%s", NEWROOT, f->rel) ||
	    fmt_buf(tmp, sizeof(tmp), "%s.sandbox-new", path))
		return -ENAMETOOLONG;
	_cleanup_free_ char *old = NULL;
	size_t old_len = 0;
	int r = read_file(path, 4u << 20, &old, &old_len);
	if (r && r != -ENOENT)
		return r;
	_cleanup_free_ char *out = malloc(old_len + strlen(f->defaults) +
					  strlen(ours) + 2);
	if (!out)
		return -ENOMEM;
	size_t n = 0;
	for (const char *l = old ? old : ""; *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		bool drop = len == 0 || field_eq(l, len, 0, user) ||
			    (f->id_field && field_eq(l, len, f->id_field, id) &&
			     !field_eq(l, len, 0, "root"));
		if (!drop) {
			memcpy(out + n, l, len);
			n += len;
			out[n++] = '\n';
		}
		l += len + (nl ? 1 : 0);
	}
	out[n] = '\0';
	for (const char *d = f->defaults; *d;) {
		const char *nl = strchr(d, '\n');
		size_t len = (size_t)(nl - d) + 1;
		char name[64];
		size_t nlen = strcspn(d, ":");
		if (nlen < sizeof(name)) {
			memcpy(name, d, nlen);
			name[nlen] = '\0';
			if (!has_name(out, name)) {
				memcpy(out + n, d, len);
				n += len;
				out[n] = '\0';
			}
		}
		d += len;
	}
	memcpy(out + n, ours, strlen(ours));
	n += strlen(ours);
	_cleanup_close_ int fd =
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, f->mode);
	if (fd < 0)
		return -errno;
	if ((r = write_all(fd, out, n)) || fchmod(fd, f->mode) < 0)
		return r ? r : -errno;
	if (rename(tmp, path) < 0)
		return -errno;
	return 0;
}

static bool exists_in_root(const char *rel)
{
	char path[256];
	return fmt_buf(path, sizeof(path), "%s/%s", NEWROOT, rel) == 0 &&
	       access(path, F_OK) == 0;
}

/* A file rewritten at boot may be a symlink in the image or one an agent
 * made (resolv.conf -> ../run/...): replace the link, never write through
 * it. */
static void in_etc_unlink(const char *rel, char *path, size_t size)
{
	struct stat st;
	if (fmt_buf(path, size, "%s/%s", NEWROOT, rel) == 0 &&
	    lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		unlink(path);
}

/* Write rel only when the root does not have it yet: the image's own, or
 * one an agent edited in a named sandbox, wins. */
static int write_if_missing(const char *rel, const char *text, mode_t mode)
{
	char path[256];
	if (fmt_buf(path, sizeof(path), "%s/%s", NEWROOT, rel))
		return -ENAMETOOLONG;
	if (access(path, F_OK) == 0)
		return 0;
	return write_text(rel, text, mode);
}

int etc_write(const struct boot_config *cfg, const char **what)
{
	const char *sh = access(NEWROOT "/usr/bin/bash", X_OK) == 0 ? "/bin/bash"
								     : "/bin/sh";
	char user_pw[256], user_gr[128], user_sh[64], id[16], gid[16];
	char hosts[512], home[128];
	if (fmt_buf(user_pw, sizeof(user_pw),
		    "%s:x:%u:%u:sandbox user:/home/%s:%s\n", cfg->user,
		    (unsigned)cfg->uid, (unsigned)cfg->gid, cfg->user, sh) ||
	    fmt_buf(user_gr, sizeof(user_gr), "%s:x:%u:\n", cfg->user,
		    (unsigned)cfg->gid) ||
	    fmt_buf(user_sh, sizeof(user_sh), "%s:*:1::::::\n", cfg->user) ||
	    fmt_buf(id, sizeof(id), "%u", (unsigned)cfg->uid) ||
	    fmt_buf(gid, sizeof(gid), "%u", (unsigned)cfg->gid) ||
	    fmt_buf(hosts, sizeof(hosts),
		    "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n"
		    "::1\tlocalhost ip6-localhost ip6-loopback\n",
		    cfg->hostname) ||
	    fmt_buf(home, sizeof(home), "%s/home/%s", NEWROOT, cfg->user)) {
		*what = "account and host lines";
		return -ENAMETOOLONG;
	}
	char root_pw[160];
	if (fmt_buf(root_pw, sizeof(root_pw),
		    "root:x:0:0:root:/root:%s\n"
		    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		    sh)) {
		*what = "etc/passwd";
		return -ENAMETOOLONG;
	}

	/* Accounts: the image's and those packages added are kept; the
	 * sandbox user is (re)defined on every boot, since its uid follows
	 * the invoking host user. */
	const struct account_file accounts[] = {
		{"etc/passwd", 0644, 2, root_pw},
		{"etc/group", 0644, 2, "root:x:0:\nnogroup:x:65534:\n"},
		{"etc/shadow", 0640, 0, "root:*:1::::::\n"},
	};
	const char *ours[] = {user_pw, user_gr, user_sh};
	const char *ids[] = {id, gid, ""};
	/* Over the host's /usr with its package state: the host's system
	 * accounts too, so files and dpkg's statoverrides resolve. */
	const char *host_accounts[] = {HOST_ETC_LOWER "/passwd",
				       HOST_ETC_LOWER "/group", NULL};
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(accounts); i++) {
		_cleanup_free_ char *host = NULL, *defaults = NULL;
		size_t hlen = 0;
		struct account_file f = accounts[i];
		if (cfg->host_pkg && !cfg->root_image && host_accounts[i] &&
		    read_file(host_accounts[i], 4u << 20, &host, &hlen) == 0) {
			size_t dlen = strlen(f.defaults);
			if (!(defaults = malloc(dlen + hlen + 2)))
				return -ENOMEM;
			memcpy(defaults, f.defaults, dlen);
			memcpy(defaults + dlen, host, hlen);
			defaults[dlen + hlen] = '\0';
			if (hlen && host[hlen - 1] != '\n')
				memcpy(defaults + dlen + hlen, "\n", 2);
			f.defaults = defaults;
		}
		if ((r = account_merge(&f, cfg->user, ids[i], ours[i]))) {
			*what = accounts[i].rel;
			return r;
		}
	}

	static const char nsswitch[] =
		"passwd: files\ngroup: files\nshadow: files\n"
		"hosts: files dns\nnetworks: files\nprotocols: files\n"
		"services: files\nethers: files\nrpc: files\n";
	/* The include keeps libraries that installed packages register in
	 * ld.so.conf.d (in a named sandbox, across boots). */
	static const char ldconf[] =
		"include /etc/ld.so.conf.d/*.conf\n"
		"/usr/local/lib\n/usr/local/lib/x86_64-linux-gnu\n"
		"/usr/lib/x86_64-linux-gnu\n/usr/lib\n";
	/* Rewritten on every boot: they describe this run (its name, its
	 * only resolver), not the machine's history. */
	struct {
		const char *rel, *text;
		mode_t mode;
	} files[] = {
		{"etc/hosts", hosts, 0644},
		{"etc/hostname", cfg->hostname, 0644},
		/* The DNS forwarder; the only resolver the guest has. */
		{"etc/resolv.conf", "nameserver " FWD_DNS_ADDR "\n", 0644},
		{"etc/nsswitch.conf", nsswitch, 0644},
		{"etc/ld.so.conf", ldconf, 0644},
	};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char path[256];
		in_etc_unlink(files[i].rel, path, sizeof(path));
		if ((r = write_text(files[i].rel, files[i].text, files[i].mode))) {
			*what = files[i].rel;
			return r;
		}
	}
	if ((r = write_if_missing("etc/shells",
				  "/bin/sh\n/bin/bash\n/usr/bin/bash\n", 0644))) {
		*what = "etc/shells";
		return r;
	}
	/* The CA bundle is the baked-in public one on every boot; services
	 * and protocols only where the root has none. */
	if ((r = copy_file("/etc/ca-certificates.crt",
			   "etc/ssl/certs/ca-certificates.crt")) ||
	    (!exists_in_root("etc/services") &&
	     (r = copy_file("/etc/services", "etc/services"))) ||
	    (!exists_in_root("etc/protocols") &&
	     (r = copy_file("/etc/protocols", "etc/protocols")))) {
		*what = "copying baked-in /etc data";
		return r;
	}
	/* The host's loader cache, for the host's /usr (launcher/host_pkg.c):
	 * fresh on every boot of a sandbox whose /etc starts empty. */
	if (cfg->host_pkg && !cfg->root_image && !cfg->upper_disk &&
	    (r = copy_file(HOST_ETC_LOWER "/ld.so.cache", "etc/ld.so.cache"))) {
		*what = "etc/ld.so.cache";
		return r;
	}
	symlink("certs/ca-certificates.crt", NEWROOT "/etc/ssl/cert.pem");
	symlink("/proc/self/mounts", NEWROOT "/etc/mtab");

	if (mkdir(home, 0755) < 0 && errno != EEXIST) {
		*what = "home directory";
		return -errno;
	}
	if (chown(home, cfg->uid, cfg->gid) < 0) {
		*what = "home directory";
		return -errno;
	}
	/* The accounts are read; the /etc/apt overlay keeps its own
	 * reference to the share. */
	if (cfg->host_pkg)
		umount2(HOST_ETC_LOWER, MNT_DETACH);
	return 0;
}
