/* Synthesise a minimal /etc in the new root. Nothing of the host's /etc is
 * shared: the CA bundle, services and protocols are public data baked into
 * the initramfs at build time. */
#include "guest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
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

/* The initramfs's /etc/alternatives (the host's links into /usr, taken
 * at `make guest` by guest/alternatives.sh) into the new root. The target
 * check repeats the build script's: nothing but a path under /usr. */
static int alternatives_copy(void)
{
	if (mkdir(NEWROOT "/etc/alternatives", 0755) < 0 && errno != EEXIST)
		return -errno;
	DIR *d = opendir("/etc/alternatives");
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		char src[512], dst[512], target[1024];
		if (e->d_name[0] == '.' ||
		    fmt_buf(src, sizeof(src), "/etc/alternatives/%s", e->d_name) ||
		    fmt_buf(dst, sizeof(dst), "%s/etc/alternatives/%s", NEWROOT,
			    e->d_name))
			continue;
		ssize_t n = readlink(src, target, sizeof(target) - 1);
		if (n <= 5)
			continue;
		target[n] = '\0';
		if (strncmp(target, "/usr/", 5) || strstr(target, "/../") ||
		    strstr(target, "/./"))
			continue;
		if (symlink(target, dst) < 0 && errno != EEXIST && !r)
			r = -errno;
	}
	closedir(d);
	return r;
}

int etc_write(const struct boot_config *cfg, const char **what)
{
	const char *sh = access(NEWROOT "/usr/bin/bash", X_OK) == 0 ? "/bin/bash"
								     : "/bin/sh";
	char passwd[1024], group[512], hosts[512], home[128];
	if (fmt_buf(passwd, sizeof(passwd),
		    "root:x:0:0:root:/root:%s\n"
		    "%s:x:%u:%u:sandbox user:/home/%s:%s\n"
		    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		    sh, cfg->user, (unsigned)cfg->uid, (unsigned)cfg->gid,
		    cfg->user, sh) ||
	    fmt_buf(group, sizeof(group),
		    "root:x:0:\n%s:x:%u:\nnogroup:x:65534:\n", cfg->user,
		    (unsigned)cfg->gid) ||
	    fmt_buf(hosts, sizeof(hosts),
		    "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n"
		    "::1\tlocalhost ip6-localhost ip6-loopback\n",
		    cfg->hostname) ||
	    fmt_buf(home, sizeof(home), "%s/home/%s", NEWROOT, cfg->user))
		return -ENAMETOOLONG;

	static const char nsswitch[] =
		"passwd: files\ngroup: files\nshadow: files\n"
		"hosts: files dns\nnetworks: files\nprotocols: files\n"
		"services: files\nethers: files\nrpc: files\n";
	static const char ldconf[] =
		"/usr/local/lib\n/usr/local/lib/x86_64-linux-gnu\n"
		"/usr/lib/x86_64-linux-gnu\n/usr/lib\n";
	struct {
		const char *rel, *text;
		mode_t mode;
	} files[] = {
		{"etc/passwd", passwd, 0644},
		{"etc/group", group, 0644},
		{"etc/shadow", "root:*:1::::::\n", 0640},
		{"etc/hosts", hosts, 0644},
		{"etc/hostname", cfg->hostname, 0644},
		/* The DNS forwarder; the only resolver the guest has. */
		{"etc/resolv.conf", "nameserver " FWD_DNS_ADDR "\n", 0644},
		{"etc/nsswitch.conf", nsswitch, 0644},
		{"etc/ld.so.conf", ldconf, 0644},
		{"etc/shells", "/bin/sh\n/bin/bash\n/usr/bin/bash\n", 0644},
	};
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		if ((r = write_text(files[i].rel, files[i].text, files[i].mode))) {
			*what = files[i].rel;
			return r;
		}
	if ((r = copy_file("/etc/ca-certificates.crt",
			   "etc/ssl/certs/ca-certificates.crt")) ||
	    (r = copy_file("/etc/services", "etc/services")) ||
	    (r = copy_file("/etc/protocols", "etc/protocols"))) {
		*what = "copying baked-in /etc data";
		return r;
	}
	/* An image brings its own /etc/alternatives (rootimg.c). */
	if (!cfg->root_image && (r = alternatives_copy())) {
		*what = "etc/alternatives";
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
	return 0;
}
