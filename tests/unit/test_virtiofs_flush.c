/* Which workspace filesystems get FUSE_FLUSH refused in front of
 * virtiofsd (launcher/virtiofs_flush.c): only those known to be local,
 * where close() reports no write error the write did not. */
#include <stdbool.h>

#include "../../launcher/virtiofs.h"
#include "tap.h"

int main(void)
{
	static const struct {
		unsigned long f_type;
		bool needless;
		const char *name;
	} cases[] = {
		{0xEF53, true, "ext4"},
		{0x58465342, true, "xfs"},
		{0x9123683E, true, "btrfs"},
		{0x01021994, true, "tmpfs"},
		{0x2FC12FC1, true, "zfs"},
		{0x6969, false, "nfs"},
		{0xFF534D42, false, "cifs"},
		{0xFE534D42, false, "smb2"},
		{0x65735546, false, "fuse (sshfs, rclone, ...)"},
		{0x01021997, false, "9p"},
		{0x00C36400, false, "ceph"},
		{0x794C7630, false, "overlayfs (its layers are not known)"},
		{0x858458F6, false, "ramfs (not on the list: kept)"},
		{0, false, "zero"},
		{0xFFFFFFFFul, false, "unknown"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(virtiofs_flush_needless(cases[i].f_type) == cases[i].needless,
		   "%s: FLUSH %s", cases[i].name,
		   cases[i].needless ? "refused" : "kept");
	return done_testing();
}
