/* The guest's filesystems.
 *
 * Root: a tmpfs at NEWROOT holding the synthesised /etc, /home, /var and
 * mount points; /usr is an overlay whose lower layer is the host's /usr
 * (9p tag "hostusr", exported read-only by QEMU: the host enforces that,
 * these mount options only match it) and whose upper layer is a separate
 * tmpfs, so writes to /usr stay in guest memory and vanish with the guest.
 * With sandbox.root=image the lower layer is the image's /usr instead
 * (rootimg.c), and the host's /usr is not shared at all.
 * The workspace (9p tag "workspace", mapped-xattr on the host) is mounted
 * read-write at the same absolute path as on the host.
 */
#include "guest.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"

#define P9_OPTS "trans=virtio,version=9p2000.L,msize=262144"

static int mnt(const char *src, const char *dst, const char *type,
	       unsigned long flags, const char *data, const char **what)
{
	if (mkdir(dst, 0755) < 0 && errno != EEXIST) {
		*what = dst;
		return -errno;
	}
	if (mount(src, dst, type, flags, data) < 0) {
		*what = dst;
		return -errno;
	}
	return 0;
}

int mount_early(const char **what)
{
	int r;
	if ((r = mnt("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     NULL, what)) ||
	    (r = mnt("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     NULL, what)) ||
	    (r = mnt("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755",
		     what)))
		return r;
	return 0;
}

/* mkdir -p below NEWROOT for an absolute path. */
static int mkdir_p(const char *abs, mode_t mode)
{
	char path[4096 + sizeof(NEWROOT)];
	if (fmt_buf(path, sizeof(path), "%s%s", NEWROOT, abs))
		return -ENAMETOOLONG;
	for (char *c = path + sizeof(NEWROOT); *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(path, mode) < 0 && errno != EEXIST)
			return -errno;
		*c = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int in_root(const char *rel, char *buf, size_t size)
{
	return fmt_buf(buf, size, "%s/%s", NEWROOT, rel);
}

/* The launcher's virtio-blk serial for a named sandbox's layer. */
#define UPPER_SERIAL "sandbox-upper"

/* The writable layer: a tmpfs that vanishes with the guest, or (a named
 * sandbox, sandbox.upper=disk) the ext4 disk the host keeps per sandbox.
 * Its directories are created on first use and kept afterwards. */
static int rw_mount(const struct boot_config *cfg, const char **what)
{
	int r;
	if (!cfg->upper_disk) {
		if ((r = mnt("tmpfs", "/rw", "tmpfs", MS_NOSUID | MS_NODEV,
			     "mode=0755", what)))
			return r;
	} else {
		/* The device node appears once virtio_blk has probed. */
		char dev[64] = "";
		for (int i = 0; i < 500; i++) {
			if (virtio_disk_by_serial(UPPER_SERIAL, dev,
						  sizeof(dev)) == 0 &&
			    access(dev, F_OK) == 0)
				break;
			dev[0] = '\0';
			usleep(10000);
		}
		if (!dev[0]) {
			*what = "writable layer: no virtio disk with serial "
				UPPER_SERIAL;
			return -ENOENT;
		}
		if ((r = mnt(dev, "/rw", "ext4", MS_NOSUID | MS_NODEV, NULL,
			     what)))
			return r;
		chmod("/rw", 0755);
		chown("/rw", 0, 0);
	}
	static const char *const dirs[] = {"/rw/upper", "/rw/work", "/rw/home",
					   "/rw/root"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (mkdir(dirs[i], 0755) < 0 && errno != EEXIST) {
			*what = dirs[i];
			return -errno;
		}
	}
	chmod("/rw/root", 0700);
	return 0;
}

int root_build(const struct boot_config *cfg, const char **what)
{
	int r;
	/* Upper layer and work dir live on their own tmpfs, outside the
	 * final root, so nothing in the guest can reach them except via
	 * the overlay. */
	if ((r = rw_mount(cfg, what)))
		return r;
	if (cfg->root_image)
		r = rootimg_mount("/lower", what);
	else
		r = mnt("hostusr", "/lower", "9p", MS_RDONLY | MS_NODEV,
			P9_OPTS ",cache=loose", what);
	if (r)
		return r;
	if ((r = mnt("tmpfs", NEWROOT, "tmpfs", MS_NODEV, "mode=0755", what)))
		return r;
	if ((r = mnt("overlay", NEWROOT "/usr", "overlay", MS_NODEV,
		     "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work",
		     what)))
		return r;
	/* The overlay keeps its own reference to the lower layer. */
	umount2("/lower", MNT_DETACH);

	static const char *const dirs[] = {
		"etc",	   "proc",   "sys",	"dev",	   "run",
		"tmp",	   "root",   "home",	"var",	   "var/tmp",
		"var/lib", "var/cache", "var/log", "mnt", "etc/ssl",
		"etc/ssl/certs"};
	char path[512];
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		in_root(dirs[i], path, sizeof(path));
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			*what = dirs[i];
			return -errno;
		}
	}
	if (cfg->root_image && (r = rootimg_populate(what)))
		return r;
	chmod(NEWROOT "/tmp", 01777);
	chmod(NEWROOT "/var/tmp", 01777);
	chmod(NEWROOT "/root", 0700);

	/* Merged /usr: the links Debian's usrmerge makes, for the ones the
	 * host's /usr has. */
	static const char *const links[][2] = {{"bin", "usr/bin"},
					       {"sbin", "usr/sbin"},
					       {"lib", "usr/lib"},
					       {"lib64", "usr/lib64"},
					       {"lib32", "usr/lib32"},
					       {"libx32", "usr/libx32"}};
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		char target[64];
		in_root(links[i][1], target, sizeof(target));
		if (access(target, F_OK) != 0)
			continue;
		in_root(links[i][0], path, sizeof(path));
		if (symlink(links[i][1], path) < 0) {
			*what = links[i][0];
			return -errno;
		}
	}

	if ((r = mnt("/proc", NEWROOT "/proc", NULL, MS_MOVE, NULL, what)) ||
	    (r = mnt("/sys", NEWROOT "/sys", NULL, MS_MOVE, NULL, what)) ||
	    (r = mnt("/dev", NEWROOT "/dev", NULL, MS_MOVE, NULL, what)) ||
	    (r = mnt("devpts", NEWROOT "/dev/pts", "devpts",
		     MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620",
		     what)) ||
	    (r = mnt("shm", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
		     "mode=1777", what)) ||
	    (r = mnt("run", NEWROOT "/run", "tmpfs", MS_NOSUID | MS_NODEV,
		     "mode=0755", what)) ||
	    (r = mnt("tmp", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
		     "mode=1777", what)))
		return r;
	/* A named sandbox keeps its home directories with its /usr layer. */
	if (cfg->upper_disk &&
	    ((r = mnt("/rw/home", NEWROOT "/home", NULL, MS_BIND, NULL, what)) ||
	     (r = mnt("/rw/root", NEWROOT "/root", NULL, MS_BIND, NULL, what))))
		return r;
	unlink(NEWROOT "/dev/ptmx");
	if (symlink("pts/ptmx", NEWROOT "/dev/ptmx") < 0) {
		*what = "/dev/ptmx";
		return -errno;
	}
	/* Last, so a workspace below /tmp or /run is not hidden. */
	if ((r = mkdir_p(cfg->workspace, 0755))) {
		*what = "workspace mount point";
		return r;
	}
	char ws[4096 + sizeof(NEWROOT)];
	if (fmt_buf(ws, sizeof(ws), "%s%s", NEWROOT, cfg->workspace))
		return -ENAMETOOLONG;
	/* nosuid/nodev here are a convenience; the host's mapped-xattr
	 * model is what keeps such files off the host. */
	if ((r = mnt("workspace", ws, "9p", MS_NOSUID | MS_NODEV,
		     P9_OPTS ",cache=mmap", what)))
		return r;

	return 0;
}

/* switch_root: the initramfs cannot be pivot_root'ed away, so move the new
 * root over / and chroot into it (what busybox switch_root does). */
int root_switch(const char **what)
{
	if (chdir(NEWROOT) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 ||
	    chroot(".") < 0 || chdir("/") < 0) {
		*what = "switch root";
		return -errno;
	}
	return 0;
}
