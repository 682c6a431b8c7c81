/* Find the root image for --image and check it before QEMU sees it, so a
 * wrong argument is one clear line here and not a guest that powers off. */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"
#include "launch.h"

#define EXT4_SB_OFFSET 1024
#define EXT4_MAGIC_OFFSET 56 /* s_magic in the superblock, little endian */
#define EXT4_MAGIC 0xEF53

int image_arg_is_path(const char *arg)
{
	size_t n = strlen(arg);
	return strchr(arg, '/') != NULL ||
	       (n >= 4 && !strcmp(arg + n - 4, ".img"));
}

static int check_ext4(const char *path, char *err, size_t errsz)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		fmt_buf(err, errsz, "image %s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fmt_buf(err, errsz, "image %s is not a regular file", path);
		return -EINVAL;
	}
	uint8_t magic[2];
	if (pread(fd, magic, sizeof(magic), EXT4_SB_OFFSET + EXT4_MAGIC_OFFSET) !=
		    (ssize_t)sizeof(magic) ||
	    (magic[0] | magic[1] << 8) != EXT4_MAGIC) {
		fmt_buf(err, errsz,
			"image %s is not an ext4 filesystem image (build one "
			"with make image, see docs/images.md)",
			path);
		return -EINVAL;
	}
	return 0;
}

int image_resolve(const char *arg, const char *images_dir, char *out,
		  size_t outsz, char *err, size_t errsz)
{
	char path[PATH_MAX];
	err[0] = '\0';
	if (!*arg) {
		fmt_buf(err, errsz, "--image needs a NAME or a PATH");
		return -EINVAL;
	}
	if (image_arg_is_path(arg)) {
		if (fmt_buf(path, sizeof(path), "%s", arg)) {
			fmt_buf(err, errsz, "--image: path too long");
			return -ENAMETOOLONG;
		}
		if (access(path, F_OK) < 0) {
			int e = errno;
			fmt_buf(err, errsz, "image %s: %s", arg, strerror(e));
			return -e;
		}
	} else {
		if (!launch_name_valid(arg)) {
			fmt_buf(err, errsz,
				"--image %s: a NAME is 1-32 of A-Z a-z 0-9 - _ "
				"(or give a PATH containing /)",
				arg);
			return -EINVAL;
		}
		if (fmt_buf(path, sizeof(path), "%s/%s.img", images_dir, arg)) {
			fmt_buf(err, errsz, "--image: path too long");
			return -ENAMETOOLONG;
		}
		if (access(path, F_OK) < 0) {
			if (!strcmp(arg, "agents"))
				fmt_buf(err, errsz,
					"image '%s' not built: run make image "
					"(looked for %s)",
					arg, path);
			else
				fmt_buf(err, errsz,
					"image '%s' not built: run make image "
					"IMAGE=%s (looked for %s)",
					arg, arg, path);
			return -ENOENT;
		}
	}
	char *abs = realpath(path, NULL);
	if (!abs) {
		int e = errno;
		fmt_buf(err, errsz, "image %s: %s", path, strerror(e));
		return -e;
	}
	int r = fmt_buf(out, outsz, "%s", abs) ? -ENAMETOOLONG : 0;
	free(abs);
	if (r) {
		fmt_buf(err, errsz, "image %s: path too long", path);
		return r;
	}
	return check_ext4(out, err, errsz);
}
