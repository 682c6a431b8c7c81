/* Private to the vsock multiplexer (vsock_table.c, vsock_to_host.c,
 * vsock_to_guest.c, vsock_mux.c): the connection table and the helpers the
 * two directions and the loop share. Not for other modules. */
#ifndef VSOCK_MUX_INT_H
#define VSOCK_MUX_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vsock_mux.h"

#define RXQ 0
#define TXQ 1
/* epoll tags below this are fixed fds, anything else is a connection. */
enum { TAG_VHOST = 1, TAG_KICK0 = 2, TAG_KICK1 = 3, TAG_LISTEN = 4, TAG_MAX = 16 };
#define HOST_PORT_FIRST (1u << 30)

/* --verbose lines, and the one line hostile input is always worth. */
void mux_logv(struct vsock_mux *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void mux_logw(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- vsock_table.c: the connection table ---- */
void mux_hash_add(struct vsock_mux *m, struct vsock_conn *c);
void mux_hash_del(struct vsock_mux *m, struct vsock_conn *c);
void mux_all_add(struct vsock_mux *m, struct vsock_conn *c);
/* Connections with RX work, in order. */
void mux_enqueue(struct vsock_mux *m, struct vsock_conn *c);
struct vsock_conn *mux_dequeue(struct vsock_mux *m);
/* An RST for a flow we have no connection for. */
void mux_queue_rst(struct vsock_mux *m, uint32_t host_port,
		   uint32_t guest_port);
/* Bring epoll registration and the RX queue in line with the state. */
void mux_update(struct vsock_mux *m, struct vsock_conn *c);
void mux_kill_conn(struct vsock_mux *m, struct vsock_conn *c, bool rst,
		   const char *why);
/* Free dead connections that owe the guest nothing. */
void mux_reap(struct vsock_mux *m);
void mux_check_finished(struct vsock_mux *m, struct vsock_conn *c);

/* The payload bytes of descriptor segments [first, first + count) of e,
 * after the packet header, up to len bytes, as an iovec. */
unsigned mux_payload_iov(const struct vring_elem *e, unsigned first,
			 unsigned count, size_t len,
			 struct iovec iov[VRING_MAX_SEGS]);

#endif
