/* The bridge's connector: it connects only to listed ports, the bridge
 * takes only well-formed answers (one fd with status 0, none with an
 * errno), and a malformed request stops the connector. Plus the seccomp
 * filter builder's bounds. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../vsock/seccomp.h"
#include "../../vsock/vsock_connector.h"
#include "tap.h"

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int listen_at(const char *dir, unsigned port)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (fmt_buf(sa.sun_path, sizeof(sa.sun_path), "%s/vsock_%u", dir, port))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 4) < 0)
		return -1;
	return fd;
}

/* Send a reply as a (broken) connector would: status + nfd copies of fd. */
static void fake_reply(int sock, const void *status, size_t len, int fd, int nfd)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = {(void *)status, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfd) {
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(nfd * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
		for (int i = 0; i < nfd; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
	}
	if (sendmsg(sock, &mh, 0) < 0)
		perror("sendmsg");
}

static void fake_connector(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		ok(0, "socketpair");
		return;
	}
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int32_t st0 = 0, st_err = -ECONNREFUSED, st_pos = 5, st_huge = -100000;
	int base = count_fds();

	fake_reply(sv[1], &st0, 4, -1, 0);
	is_int(vsock_connector_connect(sv[0], 1080), -EPROTO, "status 0 without an fd");
	fake_reply(sv[1], &st_err, 4, devnull, 1);
	is_int(vsock_connector_connect(sv[0], 1080), -EPROTO, "an errno with an fd");
	fake_reply(sv[1], &st0, 4, devnull, 2);
	is_int(vsock_connector_connect(sv[0], 1080), -EPROTO, "two fds");
	fake_reply(sv[1], &st_pos, 4, -1, 0);
	is_int(vsock_connector_connect(sv[0], 1080), -EPROTO, "positive status");
	fake_reply(sv[1], &st_huge, 4, -1, 0);
	is_int(vsock_connector_connect(sv[0], 1080), -EPROTO, "status beyond errno range");
	fake_reply(sv[1], &st0, 3, devnull, 1);
	is_int(vsock_connector_connect(sv[0], 1080), -EPROTO, "3-byte reply");
	uint8_t eight[8] = {0};
	fake_reply(sv[1], eight, 8, devnull, 1);
	is_int(vsock_connector_connect(sv[0], 1080), -EPROTO, "8-byte reply");
	is_int(count_fds(), base, "every fd that came with a bad reply was closed");
	fake_reply(sv[1], &st_err, 4, -1, 0);
	is_int(vsock_connector_connect(sv[0], 1080), -ECONNREFUSED, "a plain errno passes through");
	fake_reply(sv[1], &st0, 4, devnull, 1);
	int fd = vsock_connector_connect(sv[0], 1080);
	ok(fd >= 0, "status 0 with one fd: the fd");
	if (fd >= 0)
		close(fd);
	/* what the bridge asked for */
	uint32_t asked[16];
	ssize_t n = recv(sv[1], asked, sizeof(asked), MSG_DONTWAIT);
	ok(n == 4 && asked[0] == 1080, "requests are 4 bytes: the port");
	close(sv[1]);
	ok(vsock_connector_connect(sv[0], 1080) < 0, "connector gone: refused, no hang");
	close(sv[0]);
	close(devnull);
}

static void real_connector(void)
{
	char dir[] = "/tmp/sbx-conn-XXXXXX";
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}
	int l7 = listen_at(dir, 7), l8 = listen_at(dir, 8);
	ok(l7 >= 0 && l8 >= 0, "listeners at vsock_7 and vsock_8");
	struct vsock_connector_cfg cfg = {.dir = dir, .nports = 2};
	cfg.ports[0] = 7;
	cfg.ports[1] = 9; /* listed, but nothing listens */
	ok(vsock_connector_allows(&cfg, 7) && !vsock_connector_allows(&cfg, 8),
	   "allows: listed only");
	pid_t pid;
	int s = vsock_connector_start(&cfg, &pid);
	ok(s >= 0, "connector started");
	if (s < 0)
		return;
	int fd = vsock_connector_connect(s, 7);
	ok(fd >= 0, "listed port 7 connects");
	if (fd >= 0) {
		ok(fcntl(fd, F_GETFL) & O_NONBLOCK, "the socket is non-blocking");
		(void)!write(fd, "x", 1);
		int a = accept(l7, NULL, NULL);
		char c = 0;
		ok(a >= 0 && read(a, &c, 1) == 1 && c == 'x', "bytes reach the listener");
		if (a >= 0)
			close(a);
		close(fd);
	}
	is_int(vsock_connector_connect(s, 8), -EACCES, "unlisted port 8: EACCES");
	fcntl(l8, F_SETFL, O_NONBLOCK);
	int a8 = accept(l8, NULL, NULL);
	ok(a8 < 0 && errno == EAGAIN, "and its listener saw nothing");
	is_int(vsock_connector_connect(s, 9), -ENOENT, "listed port without a socket: ENOENT");
	is_int(vsock_connector_connect(s, 0xffffffffu), -EACCES, "port 2^32-1: EACCES");
	/* A malformed request (2 bytes) stops the connector. */
	(void)!send(s, "ab", 2, 0);
	int status = 0;
	pid_t w = waitpid(pid, &status, 0);
	ok(w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 1,
	   "malformed request: connector exits 1 (wait %d, status 0x%x)", (int)w,
	   status);
	ok(vsock_connector_connect(s, 7) < 0, "then every request fails");
	close(s);
	cfg.nports = 0;
	is_int(vsock_connector_start(&cfg, &pid), -EINVAL, "no ports: refused");
	cfg.nports = VSOCK_CONNECTOR_MAX_PORTS + 1;
	is_int(vsock_connector_start(&cfg, &pid), -EINVAL, "too many ports: refused");
	close(l7);
	close(l8);
	char p[64];
	for (unsigned port = 7; port <= 8; port++)
		if (fmt_buf(p, sizeof(p), "%s/vsock_%u", dir, port) == 0)
			unlink(p);
	rmdir(dir);
}

static void filter_builder(void)
{
	struct sock_filter f[160];
	int nb = vsock_seccomp_build(SECCOMP_ROLE_BRIDGE, f, 160);
	ok(nb > 0 && nb < 160, "bridge filter builds (%d instructions)", nb);
	ok(f[0].code == (BPF_LD | BPF_W | BPF_ABS) && f[0].k == 4,
	   "first it loads the architecture");
	ok(f[nb - 1].code == (BPF_RET | BPF_K) &&
		   f[nb - 1].k == 0x80000000u /* SECCOMP_RET_KILL_PROCESS */,
	   "the default is kill");
	int nc = vsock_seccomp_build(SECCOMP_ROLE_CONNECTOR, f, 160);
	ok(nc > 0 && nc < nb, "connector filter is smaller (%d)", nc);
	is_int(vsock_seccomp_build(SECCOMP_ROLE_BRIDGE, f, 10), -E2BIG,
	       "too small a buffer: E2BIG, no overflow");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	fake_connector();
	real_connector();
	filter_builder();
	return done_testing();
}
