/* sandbox.root=image: the root filesystem image as the lower layer.
 *
 * The launcher attaches the image (`sandbox-launch --image`) as a virtio-blk
 * disk with serial ROOTIMG_SERIAL, opened read-only by QEMU: the host
 * enforces that, whatever the guest does with the block device. We find the
 * disk by that serial, not by its /dev/vdX name, because other disks (a
 * persistent writable layer) may be probed first. The image is mounted
 * read-only at ROOTIMG_DIR; its /usr becomes the overlay's lower layer in
 * place of the host's /usr, and its /etc and dpkg database are copied into
 * the tmpfs root before etc_write() puts the synthesised identity, network
 * and CA files over them (the image is built by us, so its alternatives
 * links, apt and npm configuration are wanted).
 */
#include "guest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"

#define ROOTIMG_DIR "/img"
#define DISK_WAIT_MS 3000
#define COPY_MAX_DEPTH 32

int virtio_disk_by_serial(const char *want, char *dev, size_t size)
{
	DIR *d = opendir("/sys/block");
	if (!d)
		return -errno;
	int r = -ENOENT;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "vd", 2) != 0)
			continue;
		char path[300], serial[64];
		if (fmt_buf(path, sizeof(path), "/sys/block/%s/serial", e->d_name))
			continue;
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, serial, sizeof(serial) - 1);
		if (n <= 0)
			continue;
		serial[n] = '\0';
		serial[strcspn(serial, "\n")] = '\0';
		if (strcmp(serial, want) != 0)
			continue;
		r = fmt_buf(dev, size, "/dev/%s", e->d_name) ? -ENAMETOOLONG : 0;
		break;
	}
	closedir(d);
	return r;
}

int rootimg_mount(const char *lower, const char **what)
{
	char dev[300];
	int r;
	/* virtio_blk probes while its module loads; the wait only covers a
	 * slow devtmpfs. */
	for (int waited = 0;; waited += 10) {
		r = virtio_disk_by_serial(ROOTIMG_SERIAL, dev, sizeof(dev));
		if (r == 0 && access(dev, F_OK) == 0)
			break;
		if (waited >= DISK_WAIT_MS) {
			*what = "root image: no virtio disk with serial "
				ROOTIMG_SERIAL;
			return r ? r : -ENOENT;
		}
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
	}
	if (mkdir(ROOTIMG_DIR, 0755) < 0 && errno != EEXIST) {
		*what = ROOTIMG_DIR;
		return -errno;
	}
	/* No journal replay on a read-only disk; setuid programs of the
	 * image (su, ping) keep working, device nodes do not. */
	if (mount(dev, ROOTIMG_DIR, "ext4", MS_RDONLY | MS_NODEV, "noload") < 0) {
		*what = "root image: mount ext4 (is it an ext4 image?)";
		return -errno;
	}
	char usr[] = ROOTIMG_DIR "/usr";
	struct stat st;
	if (stat(usr, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*what = "root image: no /usr directory in the image";
		return -ENOTDIR;
	}
	if (mkdir(lower, 0755) < 0 && errno != EEXIST) {
		*what = lower;
		return -errno;
	}
	if (mount(usr, lower, NULL, MS_BIND, NULL) < 0) {
		*what = "root image: bind /usr";
		return -errno;
	}
	return 0;
}

/* Copy directories, regular files and symlinks with owners and modes;
 * anything else (device nodes, sockets, FIFOs) is skipped. */
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
		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		struct stat st;
		if (fstatat(sfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(dfd, n, st.st_mode & 07777) < 0 && errno != EEXIST) {
				r = -errno;
				break;
			}
			_cleanup_close_ int s2 =
				openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			_cleanup_close_ int d2 =
				openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (s2 < 0 || d2 < 0) {
				r = -errno;
				break;
			}
			if ((r = copy_tree(s2, d2, depth + 1)))
				break;
			if (fchown(d2, st.st_uid, st.st_gid) < 0 ||
			    fchmod(d2, st.st_mode & 07777) < 0)
				r = -errno;
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t len = readlinkat(sfd, n, target, sizeof(target) - 1);
			if (len < 0) {
				r = -errno;
				break;
			}
			target[len] = '\0';
			unlinkat(dfd, n, 0);
			if (symlinkat(target, dfd, n) < 0 ||
			    fchownat(dfd, n, st.st_uid, st.st_gid,
				     AT_SYMLINK_NOFOLLOW) < 0)
				r = -errno;
		} else if (S_ISREG(st.st_mode)) {
			_cleanup_close_ int in =
				openat(sfd, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			_cleanup_close_ int out =
				openat(dfd, n, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
				       0600);
			if (in < 0 || out < 0) {
				r = -errno;
				break;
			}
			char buf[65536];
			ssize_t got;
			while ((got = read(in, buf, sizeof(buf))) > 0)
				if ((r = write_all(out, buf, (size_t)got)))
					break;
			if (!r && got < 0)
				r = -errno;
			if (!r && (fchown(out, st.st_uid, st.st_gid) < 0 ||
				   fchmod(out, st.st_mode & 07777) < 0))
				r = -errno;
		}
	}
	closedir(d);
	return r;
}

static int copy_dir(const char *from, const char *to)
{
	_cleanup_close_ int s = open(from, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s < 0)
		return errno == ENOENT ? 0 : -errno; /* optional */
	if (mkdir(to, 0755) < 0 && errno != EEXIST)
		return -errno;
	_cleanup_close_ int d = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return -errno;
	return copy_tree(s, d, 0);
}

int rootimg_populate(const char **what)
{
	static const char *const dirs[][2] = {
		{ROOTIMG_DIR "/etc", NEWROOT "/etc"},
		/* So that apt/dpkg in the guest know what is installed. */
		{ROOTIMG_DIR "/var/lib/dpkg", NEWROOT "/var/lib/dpkg"},
	};
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if ((r = copy_dir(dirs[i][0], dirs[i][1]))) {
			*what = dirs[i][0];
			return r;
		}
	/* The overlay and the bind keep their own references. */
	umount2(ROOTIMG_DIR, MNT_DETACH);
	return 0;
}
