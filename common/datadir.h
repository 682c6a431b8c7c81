/* Where the programs find what they ship with: presets, the guest kernel
 * and initramfs, root images. One answer for every program, so that a
 * source tree and an installed copy both work with no environment set.
 *
 * For each kind, the first of these that is a directory wins:
 *   1. its environment variable (SANDBOX_PRESETS, SANDBOX_GUEST_DIR,
 *      SANDBOX_IMAGES_DIR), taken as given even when missing, so that a
 *      wrong setting is reported rather than silently replaced;
 *   2. the build tree, relative to the running program (build/bin, and
 *      build/<cfg>/bin for the sanitizer build);
 *   3. the installed layout, <bin>/../share/sandbox/<kind> (make install);
 *   4. /usr/share/sandbox/<kind>.
 */
#ifndef COMMON_DATADIR_H
#define COMMON_DATADIR_H

#include <stddef.h>

enum data_kind {
	DATA_PRESETS, /* policies/: presets and agents/ */
	DATA_GUEST,   /* vmlinux (or vmlinuz), initramfs.cpio, kernel-version */
	DATA_IMAGES,  /* NAME.img and NAME.json from make image */
};

/* The directory for kind, into buf. Returns 0, or -ENOENT when no
 * candidate exists (buf then holds the installed path, for messages), or
 * -ENAMETOOLONG. */
int data_dir(enum data_kind kind, char *buf, size_t size);

/* The environment variable that overrides kind. */
const char *data_dir_env(enum data_kind kind);

/* The directory the running program lives in. */
int program_dir(char *buf, size_t size);

#endif
