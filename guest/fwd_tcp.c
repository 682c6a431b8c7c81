/* Transparent TCP forwarder: nftables redirects every outgoing TCP
 * connection here; each one becomes a vsock stream to the host proxy that
 * starts with the wire header naming the original destination. */
#include "guest.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/util.h"
#include "../parse/wire.h"

/* <linux/netfilter_ipv4.h> clashes with <netinet/in.h>. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif

static void serve_one(int c)
{
	struct sockaddr_in dst;
	socklen_t len = sizeof(dst);
	/* Without a NAT record the connection was made to the forwarder
	 * directly: there is no destination to name, so refuse it. */
	if (getsockopt(c, SOL_IP, SO_ORIGINAL_DST, &dst, &len) < 0 ||
	    dst.sin_family != AF_INET)
		_exit(1);
	struct wire_header h = {.version = WIRE_VERSION,
				.kind = WIRE_TCP,
				.family = 4,
				.port = ntohs(dst.sin_port)};
	memcpy(h.addr, &dst.sin_addr, 4);
	/* Where the connection came from (a container's bridge address, or
	 * a local one): the audit log's "src", a label, never policy. */
	struct sockaddr_in src;
	len = sizeof(src);
	if (getpeername(c, (struct sockaddr *)&src, &len) == 0 &&
	    src.sin_family == AF_INET && src.sin_port) {
		h.src_family = 4;
		h.src_port = ntohs(src.sin_port);
		memcpy(h.src_addr, &src.sin_addr, 4);
		/* and which container has that address, when Docker runs
		 * (docker_watch.c): "container" in the records. */
		docker_container_of(&src.sin_addr, h.ctr_id, sizeof(h.ctr_id),
				    h.ctr_name, sizeof(h.ctr_name));
	}
	uint8_t hdr[WIRE_HEADER_MAX];
	int hlen = wire_header_encode(&h, hdr);
	if (hlen < 0 && (h.ctr_id[0] || h.ctr_name[0])) {
		h.ctr_id[0] = h.ctr_name[0] = '\0'; /* a label is not worth a refusal */
		hlen = wire_header_encode(&h, hdr);
	}
	if (hlen < 0)
		_exit(1);
	int v = vsock_connect(VSOCK_PORT_TRANSPARENT);
	if (v < 0)
		_exit(1);
	if (write_all(v, hdr, (size_t)hlen) != 0)
		_exit(1);
	_exit(relay(c, v) ? 1 : 0);
}

/* Fork per connection: a hostile peer can crash only its own child. */
void accept_loop(int lfd, void (*serve)(int)) __attribute__((noreturn));
void accept_loop(int lfd, void (*serve)(int))
{
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				usleep(10000);
			continue;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			serve(c);
			_exit(0);
		}
		close(c);
	}
}

void fwd_tcp_run(int lfd)
{
	accept_loop(lfd, serve_one);
}

static void serve_proxy(int c)
{
	int v = vsock_connect(VSOCK_PORT_HTTP_PROXY);
	if (v < 0)
		_exit(1);
	_exit(relay(c, v) ? 1 : 0);
}

/* Explicit proxy forwarder: raw bytes to the proxy's HTTP proxy port. */
void fwd_proxy_run(int lfd)
{
	accept_loop(lfd, serve_proxy);
}
