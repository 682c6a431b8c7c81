/* The workspace over virtiofs, run by an ordinary user (virtiofs.c).
 *
 * QEMU 7.2's C virtiofsd expects root. It runs here as the invoking user
 * inside two nested user namespaces:
 *   outer: uid 0 -> the user; gid 0 -> the user's group, gid 1 -> the
 *          first of the user's /etc/subgid ids (newgidmap allows
 *          setgroups() only when a subordinate id is mapped), so the
 *          helper can drop its supplementary groups (virtiofsd refuses to
 *          start with groups it cannot drop);
 *   inner: exactly one uid and one gid, the guest's owner ids
 *          (guest_uid/guest_gid), mapped to the user and the user's group.
 * Any other id is unmapped in the inner namespace, where virtiofsd runs,
 * so the kernel refuses to create a file as, or chown one to, anyone
 * else: a file on the host is always the invoking user's. A seccomp
 * filter in front of virtiofsd refuses setuid/setgid mode bits and
 * mknod (device nodes, FIFOs, sockets) and xattr writes (file
 * capabilities). sandbox=chroot keeps it inside the workspace.
 */
#ifndef LAUNCHER_VIRTIOFS_H
#define LAUNCHER_VIRTIOFS_H

#include <stdbool.h>
#include <stddef.h>

#include "launch.h"

#define VIRTIOFSD_PATH "/usr/lib/qemu/virtiofsd"

struct virtiofs_config {
	const char *virtiofsd;   /* binary */
	const char *source;      /* the workspace */
	const char *socket_path; /* the vhost-user socket QEMU connects to */
	unsigned guest_uid, guest_gid; /* the guest ids that are the user */
	bool refuse_flush; /* FUSE_FLUSH gets ENOSYS (virtiofs_seccomp.c) */
};

/* Listen on socket_path, then start virtiofsd on that socket (so QEMU can
 * connect at once) with its output in log_path. Returns 0, or a negative
 * errno with why saying in one line what is missing (no user namespaces,
 * no newgidmap, no /etc/subgid range, ...): the caller falls back to 9p. */
int virtiofs_start(struct child *c, const struct virtiofs_config *cfg,
		   const char *log_path, char *why, size_t whysz);

/* The workspace share of one run: starts virtiofsd (socket in state, log
 * in run) and fills sock, or leaves sock "" for 9p, with a one-line notice
 * saying why when virtiofs was wanted but cannot run here.
 * SANDBOX_WORKSPACE_FS=9p chooses 9p without a notice. */
void virtiofs_workspace(struct child *c, const char *state, const char *run,
			const char *workspace, unsigned guest_uid,
			unsigned guest_gid, char *sock, size_t socksz);

/* The seccomp filter (virtiofs_seccomp.c): installed in the helper just
 * before it executes virtiofsd; refuse_flush adds FUSE_FLUSH's ENOSYS.
 * 0 or -errno. */
int virtiofs_seccomp_install(bool refuse_flush);

/* virtiofs_flush.c. Whether a workspace on a filesystem of this statfs
 * f_type loses nothing when FUSE_FLUSH is refused: a local filesystem,
 * whose close() reports no write error the write itself did not. Unknown
 * types: false. */
bool virtiofs_flush_needless(unsigned long f_type);
/* The same for the filesystem path is on (statfs) and for every mount
 * below it (/proc/self/mountinfo); false when any of that cannot be
 * told. What the launcher decides for the workspace, at its start. */
bool virtiofs_flush_needless_at(const char *path);

#endif
