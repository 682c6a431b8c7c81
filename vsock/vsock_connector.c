/* The bridge's connector process (see vsock_connector.h for the why).
 *
 * Trust: the connector believes nothing the bridge says. A request is
 * exactly four bytes; anything else ends the connector (the bridge is then
 * broken or taken over, and a bridge without a connector only loses its
 * own guest's network). */
#include "vsock_connector.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/util.h"
#include "seccomp.h"

/* The bridge's end waits at most this long for an answer; connect() on a
 * unix socket never blocks (non-blocking socket), so this only matters if
 * the connector is gone or stuck. */
#define CONNECTOR_REPLY_TIMEOUT_S 2

int vsock_connector_allows(const struct vsock_connector_cfg *cfg, uint32_t port)
{
	for (size_t i = 0; i < cfg->nports && i < VSOCK_CONNECTOR_MAX_PORTS; i++)
		if (cfg->ports[i] == port)
			return 1;
	return 0;
}

static int send_reply(int sock, int32_t status, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {&status, sizeof(status)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(status) ? 0 : -EPIPE;
}

static int connect_port(const char *dir, uint32_t port)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (fmt_buf(sa.sun_path, sizeof(sa.sun_path), "%s/vsock_%u", dir,
		    port) < 0)
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* EAGAIN: backlog full; refusing beats blocking the bridge. */
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static void __attribute__((noreturn))
serve(int sock, const struct vsock_connector_cfg *cfg)
{
	unsigned long long refused = 0;
	for (;;) {
		uint32_t port;
		ssize_t n = recv(sock, &port, sizeof(port), MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			_exit(0); /* the bridge is gone */
		if (n != (ssize_t)sizeof(port)) {
			fprintf(stderr, "sandbox-vsock: connector: malformed request "
					"(%zd bytes, want 4); stopping\n", n);
			_exit(1);
		}
		int fd = -EACCES;
		if (vsock_connector_allows(cfg, port)) {
			fd = connect_port(cfg->dir, port);
		} else if (++refused <= 10 || refused % 10000 == 0) {
			/* The guest picks the port: a line each would let it
			 * fill the disk with the log. */
			fprintf(stderr, "sandbox-vsock: connector: guest port %u "
					"is not a proxy port, refused (%llu so far)\n",
				port, refused);
		}
		int r = send_reply(sock, fd < 0 ? fd : 0, fd);
		if (fd >= 0)
			close(fd);
		if (r < 0)
			_exit(0);
	}
}

/* In the child: keep only the pair (moved to fd 3) and stdio. */
static void __attribute__((noreturn))
child(int sock, pid_t parent, const struct vsock_connector_cfg *cfg)
{
	/* Die with the bridge, even if it is killed outright. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
		_exit(1);
	if (sock != 3) {
		if (dup2(sock, 3) < 0)
			_exit(1);
		close(sock);
	}
	/* QEMU's vhost-user connection, the listeners: none of our business. */
	if (close_range(4, ~0u, 0) < 0)
		_exit(1);
	int r = vsock_seccomp_install(SECCOMP_ROLE_CONNECTOR);
	if (r < 0) {
		fprintf(stderr, "sandbox-vsock: connector: seccomp: %s\n",
			strerror(-r));
		_exit(1);
	}
	serve(3, cfg);
}

int vsock_connector_start(const struct vsock_connector_cfg *cfg, pid_t *pid)
{
	if (!cfg->dir || cfg->nports == 0 ||
	    cfg->nports > VSOCK_CONNECTOR_MAX_PORTS)
		return -EINVAL;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* Blocking requests, bounded: a dead or stuck connector refuses. */
	struct timeval tv = {.tv_sec = CONNECTOR_REPLY_TIMEOUT_S};
	if (setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		int e = -errno;
		close(sv[0]);
		close(sv[1]);
		return e;
	}
	pid_t parent = getpid();
	fflush(NULL);
	pid_t p = fork();
	if (p < 0) {
		int e = -errno;
		close(sv[0]);
		close(sv[1]);
		return e;
	}
	if (p == 0) {
		close(sv[0]);
		child(sv[1], parent, cfg);
	}
	close(sv[1]);
	*pid = p;
	return sv[0];
}

int vsock_connector_connect(int sock, uint32_t port)
{
	ssize_t n;
	do
		n = send(sock, &port, sizeof(port), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(port))
		return n < 0 && errno != EPIPE ? -errno : -EPROTO;

	int32_t status;
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {&status, sizeof(status)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;

	/* Take every fd that came, keep at most the one we expect. */
	int fd = -1, extra = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd < 0) {
				fd = f;
			} else {
				close(f);
				extra++;
			}
		}
	}
	/* A status is 0 with exactly one fd, or a plain -errno with none. */
	bool ok = n == (ssize_t)sizeof(status) &&
		  !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && !extra &&
		  (status == 0) == (fd >= 0) && status <= 0 && status > -4096;
	if (!ok) {
		if (fd >= 0)
			close(fd);
		return -EPROTO;
	}
	return status < 0 ? status : fd;
}
