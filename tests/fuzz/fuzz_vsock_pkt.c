/* Fuzz the vsock header parser, the CONNECT line parser and the guest
 * packet path of the connection state machine (over a socketpair). */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../vsock/vsock_conn.h"
#include "../../parse/vsock_pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vsock_hdr h;
	const char *why;
	uint32_t port;
	size_t used;
	vsock_connect_line_parse((const char *)data, size, &port, &used);
	enum vsock_pkt_status st = vsock_pkt_parse(data, size, 3, &h, &why);
	if (st == VSOCK_PKT_SHORT)
		return 0;
	uint8_t back[VSOCK_HDR_LEN];
	vsock_pkt_write(back, &h);
	if (memcmp(back, data, VSOCK_HDR_LEN) != 0)
		__builtin_trap(); /* write must invert parse */
	if (st != VSOCK_PKT_OK)
		return 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return 0;
	struct vsock_conn *c = vsock_conn_new(h.dst_port, h.src_port, sv[0]);
	if (!c) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	c->state = (enum vsock_conn_state)(h.flags % 3 + CONN_LOCAL_INIT);
	struct iovec iov = {(void *)(data + VSOCK_HDR_LEN), h.len};
	/* the same packet a few times: exercises credit and state changes */
	for (int i = 0; i < 3; i++) {
		if (vsock_conn_from_guest(c, &h, &iov, 1, &why) != CONN_ACT_NONE)
			break;
		vsock_conn_flush(c);
		vsock_conn_finished(c);
		vsock_conn_want_credit_update(c);
		vsock_conn_peer_credit(c);
	}
	vsock_conn_free(c);
	close(sv[1]);
	return 0;
}
