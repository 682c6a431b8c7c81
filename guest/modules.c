/* Load the kernel modules baked into the initramfs, in the order the
 * image builder resolved from modules.dep. */
#include "guest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/util.h"

static int load_one(const char *dir, const char *name)
{
	char path[512];
	if (fmt_buf(path, sizeof(path), "%s/%s", dir, name))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* The guest makes its own eth0; the default dummy0 would be noise. */
	const char *params = strcmp(name, "dummy.ko") ? "" : "numdummies=0";
	if (syscall(SYS_finit_module, fd, params, 0) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Modules only a run with a disk needs (sandbox.root=image,
 * sandbox.upper=disk or sandbox.docker=on): the ext4 stack and virtio_blk.
 * A row per module, so that other features add theirs. Loading is most of
 * init's own work under TCG; a plain run skips these. */
static const char *const disk_only[] = {
	"virtio_blk.ko", "crc16.ko", "mbcache.ko", "jbd2.ko", "ext4.ko",
};

static bool skipped(const char *name, bool need_disk)
{
	if (need_disk)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(disk_only); i++)
		if (!strcmp(name, disk_only[i]))
			return true;
	return false;
}

int modules_load_list(const char *dir, const char *list_name, bool need_disk,
		      const char **failed)
{
	static char name[256];
	char list[512];
	if (fmt_buf(list, sizeof(list), "%s/%s", dir, list_name))
		return -ENAMETOOLONG;
	_cleanup_fclose_ FILE *f = fopen(list, "re");
	if (!f) {
		*failed = list_name;
		return -errno;
	}
	while (fgets(name, sizeof(name), f)) {
		name[strcspn(name, "\n")] = '\0';
		if (!name[0] || skipped(name, need_disk))
			continue;
		int r = load_one(dir, name);
		if (r) {
			*failed = name;
			return r;
		}
	}
	return 0;
}

int modules_load(const char *dir, bool need_disk, const char **failed)
{
	return modules_load_list(dir, "load-order", need_disk, failed);
}
