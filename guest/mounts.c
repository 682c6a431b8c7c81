/* The guest's filesystems.
 *
 * Root: a tmpfs at NEWROOT holding mount points; /usr, /etc, /var, /opt
 * and /srv are overlays whose upper layers are on the writable layer /rw
 * (a tmpfs that vanishes with the guest, or a named sandbox's disk). /usr's
 * lower layer is the host's /usr (9p tag "hostusr", exported read-only by
 * QEMU: the host enforces that, these mount options only match it); the
 * others start empty, apart from what etc_write() synthesises and, for
 * /etc, the host's alternatives baked into the initramfs (ETC_LOWER). With
 * sandbox.root=image the image's directories are the lower layers instead
 * (rootimg.c), and the host's /usr is not shared at all.
 * The workspace (tag "workspace": virtiofs with sandbox.wsfs=virtiofs, else
 * 9p with mapped-xattr on the host) is mounted read-write at the same
 * absolute path as on the host.
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

/* The parts of the root a sandbox may change. Each is an overlay whose
 * upper layer lives on the writable layer (/rw/NAME/upper), over a
 * read-only lower layer: the host's /usr or the image's directory, else an
 * empty one. A named sandbox keeps all of them together, so what dpkg
 * records in /var/lib/dpkg always describes the files in /usr, and
 * configuration, services' data and installed packages persist alike. */
static const char *const layered[] = {"usr", "etc", "var", "opt", "srv"};

/* Host root with sandbox.hostpkg=on: the host's package state under
 * overlays of their own inside /etc and /var (the share's directory below
 * /lower, mount point in the new root, name of its layer on /rw). The
 * hostetc share also holds the host's system accounts, which etc_write()
 * reads from HOST_ETC_LOWER. */
static const char *const host_pkg_layers[][3] = {
	{HOST_ETC_LOWER "/apt", "etc/apt", "etc-apt"},
	{"/lower/hostdpkg", "var/lib/dpkg", "var-lib-dpkg"},
};

static int mkdir_at(const char *dir, const char *name, mode_t mode,
		    char *path, size_t size)
{
	if (fmt_buf(path, size, "%s/%s", dir, name))
		return -ENAMETOOLONG;
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* upper and work directories of one layer on /rw. */
static int layer_dirs(const char *name, const char **what)
{
	char dir[128], sub[160];
	int r;
	if ((r = mkdir_at("/rw", name, 0755, dir, sizeof(dir))) ||
	    (r = mkdir_at(dir, "upper", 0755, sub, sizeof(sub))) ||
	    (r = mkdir_at(dir, "work", 0755, sub, sizeof(sub))))
		*what = "writable layer directories";
	return r;
}

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
		/* Layers made before /etc and /var persisted held only /usr,
		 * as /rw/upper and /rw/work: they become the usr layer. */
		struct stat st;
		if (stat("/rw/upper", &st) == 0 && stat("/rw/usr", &st) < 0 &&
		    (mkdir("/rw/usr", 0755) < 0 ||
		     rename("/rw/upper", "/rw/usr/upper") < 0 ||
		     rename("/rw/work", "/rw/usr/work") < 0)) {
			*what = "moving an older writable layer to /rw/usr";
			return -errno;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(layered); i++)
		if ((r = layer_dirs(layered[i], what)))
			return r;
	if (cfg->host_pkg && !cfg->root_image)
		for (size_t i = 0; i < ARRAY_SIZE(host_pkg_layers); i++)
			if ((r = layer_dirs(host_pkg_layers[i][2], what)))
				return r;
	static const char *const dirs[] = {"/rw/home", "/rw/root",
					   "/rw/empty"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (mkdir(dirs[i], 0755) < 0 && errno != EEXIST) {
			*what = dirs[i];
			return -errno;
		}
	}
	chmod("/rw/root", 0700);
	return 0;
}

/* Mount an overlay of lower under /rw/layer at NEWROOT/at. */
static int overlay_at(const char *lower, const char *layer, const char *at,
		      const char **what)
{
	char opts[512], dst[256];
	if (fmt_buf(opts, sizeof(opts),
		    "lowerdir=%s,upperdir=/rw/%s/upper,workdir=/rw/%s/work",
		    lower, layer, layer) ||
	    fmt_buf(dst, sizeof(dst), "%s/%s", NEWROOT, at))
		return -ENAMETOOLONG;
	return mnt("overlay", dst, "overlay", MS_NODEV, opts, what);
}

/* The lower layer of one layered directory. */
static const char *lower_of(const struct boot_config *cfg, const char *name,
			    char *buf, size_t size)
{
	struct stat st;
	if (!strcmp(name, "usr"))
		return cfg->root_image ? ROOTIMG_DIR "/usr" : "/lower/usr";
	/* The host's alternatives, in the initramfs (guest/build-image.sh);
	 * an image brings its own /etc. */
	if (!cfg->root_image && !strcmp(name, "etc") &&
	    stat(ETC_LOWER, &st) == 0 && S_ISDIR(st.st_mode))
		return ETC_LOWER;
	if (cfg->root_image &&
	    fmt_buf(buf, size, "%s/%s", ROOTIMG_DIR, name) == 0 &&
	    stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
		return buf;
	return "/rw/empty";
}

/* The host's package state (sandbox.hostpkg=on), each share read-only and
 * the lower layer of its own overlay. */
static int host_pkg_mount(const char **what)
{
	int r;
	if ((r = mnt("hostetc", HOST_ETC_LOWER, "9p",
		     MS_RDONLY | MS_NODEV | MS_NOSUID | MS_NOEXEC,
		     P9_OPTS ",cache=loose", what)) ||
	    (r = mnt("hostdpkg", "/lower/hostdpkg", "9p",
		     MS_RDONLY | MS_NODEV | MS_NOSUID | MS_NOEXEC,
		     P9_OPTS ",cache=loose", what)))
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(host_pkg_layers); i++) {
		const char *lower = host_pkg_layers[i][0];
		const char *at = host_pkg_layers[i][1];
		char target[64];
		if (fmt_buf(target, sizeof(target), "/%s", at))
			return -ENAMETOOLONG;
		if ((r = mkdir_p(target, 0755))) {
			*what = at;
			return r;
		}
		if ((r = overlay_at(lower, host_pkg_layers[i][2], at, what)))
			return r;
	}
	/* hostetc stays until etc_write() has read the accounts. */
	umount2("/lower/hostdpkg", MNT_DETACH);
	return 0;
}

int root_build(const struct boot_config *cfg, const char **what)
{
	int r;
	/* Upper layers and work dirs live on /rw, outside the final root,
	 * so nothing in the guest can reach them except via the overlays. */
	if ((r = rw_mount(cfg, what)))
		return r;
	if (mkdir("/lower", 0755) < 0 && errno != EEXIST) {
		*what = "/lower";
		return -errno;
	}
	if (cfg->root_image)
		r = rootimg_mount(what);
	else
		r = mnt("hostusr", "/lower/usr", "9p", MS_RDONLY | MS_NODEV,
			P9_OPTS ",cache=loose", what);
	if (r)
		return r;
	if ((r = mnt("tmpfs", NEWROOT, "tmpfs", MS_NODEV, "mode=0755", what)))
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(layered); i++) {
		char buf[64];
		const char *lower = lower_of(cfg, layered[i], buf, sizeof(buf));
		if ((r = overlay_at(lower, layered[i], layered[i], what)))
			return r;
	}
	if (cfg->host_pkg && !cfg->root_image && (r = host_pkg_mount(what)))
		return r;
	/* The overlays keep their own references to the lower layers. */
	umount2(cfg->root_image ? ROOTIMG_DIR : "/lower/usr", MNT_DETACH);

	/* Mount points on the tmpfs root, and what the layered directories
	 * must hold (created in their upper layers when the lower lacks
	 * them). */
	static const char *const dirs[] = {
		"proc",	   "sys",     "dev",	   "run",     "tmp",
		"root",	   "home",    "mnt",	   "var/tmp", "var/lib",
		"var/cache", "var/log", "etc/ssl", "etc/ssl/certs"};
	char path[512];
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		in_root(dirs[i], path, sizeof(path));
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			*what = dirs[i];
			return -errno;
		}
	}
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
	/* nosuid/nodev here are a convenience; what keeps such files off
	 * the host is the host side: 9p's mapped-xattr model, or virtiofsd's
	 * id mapping and filter (launcher/virtiofs.h). */
	if (cfg->ws_virtiofs)
		r = mnt("workspace", ws, "virtiofs", MS_NOSUID | MS_NODEV, NULL,
			what);
	else
		r = mnt("workspace", ws, "9p", MS_NOSUID | MS_NODEV,
			P9_OPTS ",cache=mmap", what);
	if (r)
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
