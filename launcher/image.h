/* sandbox-launch --image NAME|PATH: a read-only root filesystem image
 * (docs/images.md). */
#ifndef LAUNCHER_IMAGE_H
#define LAUNCHER_IMAGE_H

#include <stddef.h>

/* The virtio-blk serial sandbox-init looks for (guest/guest.h). */
#define ROOTIMG_SERIAL "sandbox-rootimg"

/* Is arg a PATH (contains '/' or ends in ".img") rather than a NAME? */
int image_arg_is_path(const char *arg);

/* Resolves --image ARG to the absolute path of a readable ext4 image:
 * a NAME is images_dir/NAME.img, a PATH is used as is. images_dir is
 * $SANDBOX_IMAGES_DIR or <bin>/../images. Returns 0, or a negative errno
 * with one line (no newline) in err saying what to do. */
int image_resolve(const char *arg, const char *images_dir, char *out,
		  size_t outsz, char *err, size_t errsz);

#endif
