/* The Docker options (launch.h): their values (pure, unit-tested) and
 * the per-run data disk. */
#include "launch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "sandboxes.h"

int docker_disk_create(const char *run_dir, unsigned size_mb, char *path,
		       size_t pathsz, char *err, size_t errsz)
{
	/* The run directory, not the state directory, which may be a tmpfs;
	 * main.c unlinks it once QEMU holds it open. */
	if (fmt_buf(path, pathsz, "%s/docker.img", run_dir)) {
		fmt_buf(err, errsz, "%s/docker.img: path too long", run_dir);
		return -ENAMETOOLONG;
	}
	return ext4_sparse_create(path, size_mb ? size_mb : LAUNCH_DOCKER_DISK_MB,
				  "sandbox-docker", err, errsz);
}

int launch_disk_size_parse(const char *s, unsigned *mb)
{
	if (!s[0] || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if ((end[0] == 'G' || end[0] == 'g') && !end[1])
		n *= 1024;
	else if ((end[0] == 'M' || end[0] == 'm') && !end[1])
		;
	else if (end[0])
		return -EINVAL;
	/* ext4 and Docker need some room; beyond 1 TiB is a typo. */
	if (n < 1024 || n > 1024ull * 1024)
		return -EINVAL;
	*mb = (unsigned)n;
	return 0;
}

bool launch_mirror_valid(const char *s)
{
	size_t n = strlen(s);
	if (n >= 256 || (strncmp(s, "http://", 7) && strncmp(s, "https://", 8)))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789.-_:/~%",
			    s[i]))
			return false;
	return true;
}
