#include "unix_listen.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

int unix_listen_0600(const char *path, int backlog, int type_flags)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, len + 1);
	struct stat st;
	if (lstat(path, &st) == 0) {
		/* Only a stale socket is ours to remove. */
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		unlink(path);
	}
	_cleanup_close_ int fd =
		socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
	if (fd < 0)
		return -errno;
	mode_t old = umask(0177); /* created 0600: only our user connects */
	int r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, backlog) < 0)
		return -errno;
	return take_fd(&fd);
}
