/* Test helper: the seccomp filter sandbox-launch puts in front of
 * virtiofsd (launcher/virtiofs_seccomp.c), installed in this process, then
 * each call virtiofsd could make for the guest, in DIR (a scratch folder):
 *   virtiofs_filter DIR [keep-flush]
 * FUSE_FLUSH is refused as the launcher decides for DIR (statfs of it and
 * of the mounts below it, launcher/virtiofs_flush.c), unless
 * keep-flush. Prints "name=result" lines, result "ok" or the errno's name
 * (and flush_refused=yes|no first), for
 * tests/integration/test_virtiofs_filter.py to judge. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../../launcher/virtiofs.h"

static void say(const char *name, int r)
{
	printf("%s=%s\n", name, r < 0 ? strerrorname_np(errno) : "ok");
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "keep-flush"))) {
		fputs("usage: virtiofs_filter DIR [keep-flush]\n", stderr);
		return 2;
	}
	int dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool refuse = argc == 2 && virtiofs_flush_needless_at(argv[1]);
	printf("flush_refused=%s\n", refuse ? "yes" : "no");
	if (dfd < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    virtiofs_seccomp_install(refuse) != 0) {
		perror("virtiofs_filter: set-up");
		return 2;
	}
	int fd = openat(dfd, "plain", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	say("create", fd);
	say("write", fd < 0 ? -1 : (int)write(fd, "x", 1));
	say("fsync", fsync(fd));
	say("fdatasync", fdatasync(fd));
	say("syncfs", syncfs(fd));
	say("chmod_plain", fchmod(fd, 0600));
	say("chmod_suid", fchmod(fd, 04755));
	say("chmodat_sgid", fchmodat(dfd, "plain", 02755, 0));
	say("create_suid",
	    openat(dfd, "suid", O_WRONLY | O_CREAT | O_CLOEXEC, 04755));
	say("mknod_fifo", mknodat(dfd, "fifo", S_IFIFO | 0644, 0));
	say("setxattr", fsetxattr(fd, "user.x", "1", 1, 0));
	/* virtiofsd's FUSE_FLUSH: close(dup(fd)) must fail with ENOSYS;
	 * other ways to copy a descriptor, and closing one, still work. */
	errno = 0;
	int flush = close(dup(fd));
	say("flush", flush);
	int d2 = dup2(fd, 100);
	say("dup2", d2);
	say("close", d2 < 0 ? -1 : close(d2));
	int d3 = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	say("dupfd", d3);
	say("close_dupfd", d3 < 0 ? -1 : close(d3));
	say("unlink", unlinkat(dfd, "plain", 0));
	return 0;
}
