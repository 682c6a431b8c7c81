/* Readiness over an inherited descriptor (ready_fd.h). */
#include "ready_fd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "util.h"

int ready_fd_parse(const char *s, int *fd)
{
	long v = 0;
	if (!s || !*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (*p - '0');
		if (v > INT_MAX)
			return -EINVAL;
	}
	/* 0-2 are stdio: a readiness line there would go to the log. */
	if (v < 3)
		return -EINVAL;
	int flags = fcntl((int)v, F_GETFD);
	if (flags < 0 || fcntl((int)v, F_SETFD, flags | FD_CLOEXEC) < 0)
		return -EBADF;
	*fd = (int)v;
	return 0;
}

int ready_fd_send(int fd)
{
	if (fd < 0)
		return 0;
	static const char line[] = "ready\n";
	int r = write_all(fd, line, sizeof(line) - 1);
	if (close(fd) < 0 && !r && errno != EINTR)
		r = -errno;
	return r;
}
