/* sandbox.root=image: the root filesystem image as the lower layer.
 *
 * The launcher attaches the image (`sandbox-launch --image`) as a virtio-blk
 * disk with serial ROOTIMG_SERIAL, opened read-only by QEMU: the host
 * enforces that, whatever the guest does with the block device. We find the
 * disk by that serial, not by its /dev/vdX name, because other disks (a
 * persistent writable layer) may be probed first. The image is mounted
 * read-only at ROOTIMG_DIR; its /usr, /etc, /var, /opt and /srv become the
 * lower layers of the root's overlays (mounts.c), in place of the host's
 * /usr and empty directories, and etc_write() then puts the synthesised
 * identity, network and CA files over them (the image is built by us, so
 * its users, alternatives links, apt and npm configuration are wanted).
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

#define DISK_WAIT_MS 3000

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

int rootimg_mount(const char **what)
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
	struct stat st;
	if (stat(ROOTIMG_DIR "/usr", &st) < 0 || !S_ISDIR(st.st_mode)) {
		*what = "root image: no /usr directory in the image";
		return -ENOTDIR;
	}
	return 0;
}
