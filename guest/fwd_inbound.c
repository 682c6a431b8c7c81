/* Published ports, the guest's end: the host (sandbox-proxy, through the
 * bridge's host-to-guest CONNECT) opens a vsock stream to
 * INBOUND_VSOCK_PORT and writes the inbound header (parse/inbound.h)
 * naming a guest port; this forwarder connects to the guest's own
 * loopback on that port, 127.0.0.1 first, then ::1, and relays.
 *
 * Whatever the header says, the only destinations are the guest's own
 * loopback addresses: the stream cannot be used to reach anything else,
 * and a guest program connecting here itself (vsock loopback) is refused
 * because only the host's CID may open these streams. Runs as nobody. */
#include "guest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../common/util.h"
#include "../parse/inbound.h"

/* How long the host has to send the header. */
#define INBOUND_HEADER_TIMEOUT_S 10

static int connect_loopback(int family, uint16_t port)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		s->sin6_addr = in6addr_loopback;
		len = sizeof(*s);
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void serve_inbound(int v)
{
	struct timeval tv = {.tv_sec = INBOUND_HEADER_TIMEOUT_S};
	setsockopt(v, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	uint8_t hdr[INBOUND_HEADER_LEN];
	uint16_t port = 0;
	if (read_full(v, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr) ||
	    inbound_header_parse(hdr, sizeof(hdr), &port) != INBOUND_OK)
		_exit(1);
	tv.tv_sec = 0;
	setsockopt(v, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int c = connect_loopback(AF_INET, port);
	if (c < 0)
		c = connect_loopback(AF_INET6, port);
	if (c < 0)
		_exit(1); /* the host sees the stream close with no byte */
	_exit(relay(v, c) ? 1 : 0);
}

static void inbound_loop(int lfd) __attribute__((noreturn));
static void inbound_loop(int lfd)
{
	for (;;) {
		struct sockaddr_vm peer;
		socklen_t plen = sizeof(peer);
		int c = accept4(lfd, (struct sockaddr *)&peer, &plen,
				SOCK_CLOEXEC);
		if (c < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				usleep(10000);
			continue;
		}
		if (plen < sizeof(peer) || peer.svm_family != AF_VSOCK ||
		    peer.svm_cid != VSOCK_HOST_CID) {
			close(c);
			continue;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			serve_inbound(c);
			_exit(0);
		}
		close(c);
	}
}

int fwd_inbound_start(const char **what)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*what = "inbound vsock socket";
		return -errno;
	}
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
				 .svm_cid = VMADDR_CID_ANY,
				 .svm_port = INBOUND_VSOCK_PORT};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 128) < 0) {
		int e = errno;
		close(fd);
		*what = "inbound vsock listen";
		return -e;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(fd);
		*what = "inbound forwarder fork";
		return -e;
	}
	if (pid == 0) {
		forwarder_become("fwd-inbound");
		inbound_loop(fd);
	}
	close(fd);
	return 0;
}
