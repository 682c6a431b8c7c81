/* Whether FUSE_FLUSH may be refused in front of virtiofsd
 * (virtiofs_seccomp.c): only when the workspace, and everything mounted
 * below it, is on a filesystem known to be local, whose close() reports
 * no write error the write itself did not. On NFS, SMB, FUSE and anything
 * unknown a close() can report a deferred write-back error, and the
 * guest's close() must see it. Decided once, at the launch: a mount made
 * below the workspace later is not seen.
 */
#include "virtiofs.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

#include "../common/util.h"

bool virtiofs_flush_needless(unsigned long f_type)
{
	/* statfs(2)'s magic numbers; spelled out, as not every one is in
	 * <linux/magic.h> (ZFS never is). */
	static const unsigned long local[] = {
		0xEF53,     /* ext2, ext3, ext4 */
		0x58465342, /* xfs */
		0x9123683E, /* btrfs */
		0x01021994, /* tmpfs */
		0xF2F52010, /* f2fs */
		0x2FC12FC1, /* zfs */
		0xCA451A4E, /* bcachefs */
		0x3153464A, /* jfs */
		0x52654973, /* reiserfs */
	};
	for (size_t i = 0; i < ARRAY_SIZE(local); i++)
		if (f_type == local[i])
			return true;
	return false;
}

static bool local_at(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 &&
	       virtiofs_flush_needless((unsigned long)sf.f_type);
}

/* mountinfo's mount point, field 5, with its octal escapes (\040 for a
 * space, \011, \012, \134) undone in place. */
static char *mount_point(char *line)
{
	char *p = line;
	for (int field = 1; field < 5; field++) {
		p = strchr(p, ' ');
		if (!p)
			return NULL;
		p++;
	}
	char *end = strchr(p, ' ');
	if (!end)
		return NULL;
	*end = '\0';
	char *w = p;
	for (char *r = p; *r; w++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' &&
		    r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 +
				    (r[3] - '0'));
			r += 4;
		} else {
			*w = *r++;
		}
	}
	*w = '\0';
	return p;
}

/* virtiofsd serves what is mounted below the source too: a folder of the
 * workspace with an NFS share on it needs FLUSH as much as a workspace on
 * NFS. Every mount point strictly below root must be local as well; one
 * that cannot be read or told is not. */
static bool mounts_below_local(const char *root)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	size_t rlen = strlen(root);
	bool local = true;
	char *line = NULL;
	size_t cap = 0;
	while (local && getline(&line, &cap, f) > 0) {
		const char *mp = mount_point(line);
		bool below = mp && (rlen == 1 ? mp[1] != '\0'
					      : strncmp(mp, root, rlen) == 0 &&
							mp[rlen] == '/');
		local = mp && (!below || local_at(mp));
	}
	free(line);
	fclose(f);
	return local;
}

bool virtiofs_flush_needless_at(const char *path)
{
	char root[PATH_MAX];
	return realpath(path, root) && local_at(root) &&
	       mounts_below_local(root);
}
