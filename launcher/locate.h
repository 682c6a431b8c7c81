/* Where sandbox-launch finds what it starts: its two helper programs (next
 * to its own executable), the guest kernel and initramfs (common/datadir.h),
 * an --image root filesystem, and QEMU ($SANDBOX_QEMU, else PATH). */
#ifndef LAUNCHER_LOCATE_H
#define LAUNCHER_LOCATE_H

#include <limits.h>
#include <stddef.h>

struct launch_programs {
	char exe_dir[PATH_MAX];
	char proxy_bin[PATH_MAX], vsock_bin[PATH_MAX];
	char guest_dir[PATH_MAX], kernel[PATH_MAX], initrd[PATH_MAX];
	char image_path[PATH_MAX]; /* image resolved; "" without one */
	char qemu_bin[PATH_MAX];
};

/* Fill out; image is --image NAME or PATH, or NULL. Returns 0, or a
 * negative errno with err saying what is missing and what to do. */
int locate_programs(struct launch_programs *out, const char *image,
		    char *err, size_t errsz);

#endif
