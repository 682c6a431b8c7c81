/* Sockets and the byte relay shared by the forwarders. */
#include "guest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/util.h"

/* The kernel's default vsock buffer (256 KiB) is the credit the host may
 * have in flight towards us; under TCG the host then stalls on our credit
 * updates. 4 MiB is only a bound: memory is used as data waits unread. */
#define VSOCK_BUF_SIZE (4ull << 20)
/* Fewer, larger read/write calls: each syscall is expensive under TCG. */
#define RELAY_BUF (256u * 1024)

static void vsock_set_buffer(int fd)
{
	unsigned long long v = VSOCK_BUF_SIZE;
	/* MAX first: SIZE is clamped to it. Best effort, the default works. */
	setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &v, sizeof(v));
	setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, sizeof(v));
}

int vsock_connect(unsigned int port)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Before connect: the REQUEST already carries buf_alloc. */
	vsock_set_buffer(fd);
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
				 .svm_cid = VSOCK_HOST_CID,
				 .svm_port = port};
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int listen_tcp(const char *addr, uint16_t port, int type)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 128) < 0)) {
		int e = errno ? errno : EINVAL;
		close(fd);
		return -e;
	}
	return fd;
}

/* One direction of the relay. Bytes move through a pipe with splice()
 * when the kernel can: vsock -> pipe is still a copy, but pipe -> TCP is
 * not, which saves one of the guest's three copies per byte (the guest CPU
 * is the bottleneck under TCG). Otherwise through buf. */
struct half {
	int from, to;
	int pipe[2]; /* -1: not splicing */
	char buf[RELAY_BUF];
	size_t off, len; /* len: bytes in buf, or in the pipe */
	int eof;  /* read side reached EOF */
	int done; /* EOF passed on with shutdown(SHUT_WR) */
};

static void half_pipe_close(struct half *h)
{
	if (h->pipe[0] >= 0) {
		close(h->pipe[0]);
		close(h->pipe[1]);
	}
	h->pipe[0] = h->pipe[1] = -1;
}

static void half_pipe_open(struct half *h)
{
	h->pipe[0] = h->pipe[1] = -1;
	if (pipe2(h->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		h->pipe[0] = h->pipe[1] = -1;
		return;
	}
	/* A bigger pipe, like a bigger buffer, means fewer calls. */
	fcntl(h->pipe[1], F_SETPIPE_SZ, (int)RELAY_BUF);
}

static int half_read(struct half *h)
{
	if (h->pipe[0] >= 0) {
		ssize_t n = splice(h->from, NULL, h->pipe[1], NULL, RELAY_BUF,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n >= 0 || errno == EAGAIN || errno == EINTR) {
			if (n < 0)
				return 0;
			if (n == 0)
				h->eof = 1;
			h->len = (size_t)n;
			return 0;
		}
		/* This pair cannot splice (nothing was moved): copy. */
		half_pipe_close(h);
	}
	ssize_t n = read(h->from, h->buf, sizeof(h->buf));
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
	if (n == 0)
		h->eof = 1;
	h->off = 0;
	h->len = (size_t)n;
	return 0;
}

static int half_write(struct half *h)
{
	while (h->len > 0) {
		ssize_t n;
		if (h->pipe[0] >= 0)
			n = splice(h->pipe[0], NULL, h->to, NULL, h->len,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		else
			n = write(h->to, h->buf + h->off, h->len);
		if (n < 0)
			return (errno == EAGAIN || errno == EINTR) ? 0 : -errno;
		h->off += (size_t)n;
		h->len -= (size_t)n;
	}
	if (h->eof && !h->done) {
		shutdown(h->to, SHUT_WR);
		h->done = 1;
	}
	return 0;
}

/* Copy bytes both ways until both directions reached EOF, passing each
 * EOF on as a half-close. Non-blocking, so a peer that stops reading only
 * stalls its own direction. Returns 0, or a negative errno on error. */
int relay(int a, int b)
{
	static struct half h[2];
	/* Field by field, not memset: the 2 x 256 KiB buffers are untouched
	 * (zero) pages in a new relay process and stay so while splice()
	 * works; writing them costs 128 page faults per connection. */
	for (int i = 0; i < 2; i++) {
		h[i].from = i ? b : a;
		h[i].to = i ? a : b;
		h[i].off = h[i].len = 0;
		h[i].eof = h[i].done = 0;
	}
	half_pipe_open(&h[0]);
	half_pipe_open(&h[1]);
	fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK);
	fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK);
	while (!h[0].done || !h[1].done) {
		struct pollfd p[4];
		int n = 0, idx[4];
		for (int i = 0; i < 2; i++) {
			if (h[i].done)
				continue;
			if (h[i].len > 0) {
				p[n] = (struct pollfd){.fd = h[i].to, .events = POLLOUT};
			} else {
				p[n] = (struct pollfd){.fd = h[i].from, .events = POLLIN};
			}
			idx[n++] = i;
		}
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int k = 0; k < n; k++) {
			struct half *x = &h[idx[k]];
			if (!p[k].revents)
				continue;
			int r = 0;
			if (x->len == 0 && !x->eof)
				r = half_read(x);
			if (!r)
				r = half_write(x);
			if (r) {
				half_pipe_close(&h[0]);
				half_pipe_close(&h[1]);
				return r;
			}
		}
	}
	half_pipe_close(&h[0]);
	half_pipe_close(&h[1]);
	return 0;
}
