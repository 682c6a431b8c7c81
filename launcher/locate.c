/* Where the programs, the guest and QEMU are (locate.h). */
#include "locate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/datadir.h"
#include "../common/util.h"
#include "image.h"

static int path_in(char *out, const char *dir, const char *name, char *err,
		   size_t errsz)
{
	if (fmt_buf(out, PATH_MAX, "%s/%s", dir, name)) {
		fmt_buf(err, errsz, "path too long: %s/%s", dir, name);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int find_qemu(struct launch_programs *o, char *err, size_t errsz)
{
	const char *q = getenv("SANDBOX_QEMU");
	if (q && *q) {
		if (fmt_buf(o->qemu_bin, sizeof(o->qemu_bin), "%s", q) ||
		    access(o->qemu_bin, X_OK)) {
			fmt_buf(err, errsz,
				"SANDBOX_QEMU=%s is not an executable", q);
			return -ENOENT;
		}
		return 0;
	}
	const char *path = getenv("PATH");
	char dirs[4096];
	if (!path || fmt_buf(dirs, sizeof(dirs), "%s", path))
		fmt_buf(dirs, sizeof(dirs), "/usr/local/bin:/usr/bin");
	for (char *save, *d = strtok_r(dirs, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		if (fmt_buf(o->qemu_bin, sizeof(o->qemu_bin),
			    "%s/qemu-system-x86_64", d) == 0 &&
		    access(o->qemu_bin, X_OK) == 0)
			return 0;
	}
	fmt_buf(err, errsz, "qemu-system-x86_64 not found: install "
			    "qemu-system-x86 (make deps)");
	return -ENOENT;
}

int locate_programs(struct launch_programs *o, const char *image,
		    char *err, size_t errsz)
{
	int r = program_dir(o->exe_dir, sizeof(o->exe_dir));
	if (r) {
		fmt_buf(err, errsz, "cannot find my own executable: %s",
			strerror(-r));
		return r;
	}
	if ((r = path_in(o->proxy_bin, o->exe_dir, "sandbox-proxy", err,
			 errsz)) ||
	    (r = path_in(o->vsock_bin, o->exe_dir, "sandbox-vsock", err,
			 errsz)))
		return r;
	if (access(o->proxy_bin, X_OK) || access(o->vsock_bin, X_OK)) {
		fmt_buf(err, errsz,
			"sandbox-proxy and sandbox-vsock must be next to "
			"sandbox-launch in %s: run make",
			o->exe_dir);
		return -ENOENT;
	}

	if (data_dir(DATA_GUEST, o->guest_dir, sizeof(o->guest_dir)) ==
	    -ENAMETOOLONG) {
		fmt_buf(err, errsz, "%s is too long", data_dir_env(DATA_GUEST));
		return -ENAMETOOLONG;
	}
	/* The unpacked ELF kernel when the guest dir has it (make guest
	 * writes it: guest/kernel-elf.sh): under TCG the bzImage spends
	 * seconds decompressing itself before its first message. A guest
	 * dir with only the bzImage (made by hand, or an older install)
	 * still boots. */
	if ((r = path_in(o->kernel, o->guest_dir, "vmlinux", err, errsz)))
		return r;
	if (access(o->kernel, R_OK) &&
	    (r = path_in(o->kernel, o->guest_dir, "vmlinuz", err, errsz)))
		return r;
	/* Likewise the uncompressed initramfs (make guest writes it: the
	 * guest's gunzip took 0.3-0.4 s of a TCG boot), then the gzipped one
	 * an older build or install has. */
	if ((r = path_in(o->initrd, o->guest_dir, "initramfs.cpio", err,
			 errsz)))
		return r;
	if (access(o->initrd, R_OK) &&
	    (r = path_in(o->initrd, o->guest_dir, "initramfs.cpio.gz", err,
			 errsz)))
		return r;
	if (access(o->kernel, R_OK) || access(o->initrd, R_OK)) {
		fmt_buf(err, errsz,
			"guest kernel or initramfs not found in %s: run make "
			"guest (and make install), or set SANDBOX_GUEST_DIR",
			o->guest_dir);
		return -ENOENT;
	}
	o->image_path[0] = '\0';
	if (image) {
		char dir[PATH_MAX];
		if (data_dir(DATA_IMAGES, dir, sizeof(dir)) == -ENAMETOOLONG) {
			fmt_buf(err, errsz, "%s is too long",
				data_dir_env(DATA_IMAGES));
			return -ENAMETOOLONG;
		}
		if ((r = image_resolve(image, dir, o->image_path,
				       sizeof(o->image_path), err, errsz)))
			return r < 0 ? r : -ENOENT;
	}
	return find_qemu(o, err, errsz);
}
