/* Guest -> host: the TX virtqueue's packets, checked by the pure parser
 * (parse/vsock_pkt.c), turned into connection state and socket writes. */
#include "vsock_mux_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "vsock_connector.h"

/* ---- guest -> host ------------------------------------------------- */

static void guest_request(struct vsock_mux *m, const struct vsock_hdr *h)
{
	if (m->nconns >= VSOCK_MUX_MAX_CONNS) {
		mux_logw("too many connections, refusing guest port %u", h->src_port);
		mux_queue_rst(m, h->dst_port, h->src_port);
		return;
	}
	int fd = vsock_connector_connect(m->connector_fd, h->dst_port);
	if (fd < 0) {
		mux_logv(m, "guest:%u -> host port %u refused: %s", h->src_port,
		     h->dst_port, strerror(-fd));
		mux_queue_rst(m, h->dst_port, h->src_port);
		return;
	}
	struct vsock_conn *c = vsock_conn_new(h->dst_port, h->src_port, fd);
	if (!c) {
		close(fd);
		mux_queue_rst(m, h->dst_port, h->src_port);
		return;
	}
	c->state = CONN_ESTABLISHED;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pending = CONN_TX_RESPONSE;
	mux_hash_add(m, c);
	mux_all_add(m, c);
	mux_logv(m, "guest:%u -> host port %u connected", h->src_port, h->dst_port);
	mux_update(m, c);
}


static void guest_packet(struct vsock_mux *m, const struct vring_elem *e)
{
	uint8_t raw[VSOCK_HDR_LEN];
	size_t got = vring_elem_read(e, 0, raw, sizeof(raw));
	struct vsock_hdr h;
	const char *why;
	enum vsock_pkt_status st =
		vsock_pkt_parse(raw, got < sizeof(raw) ? got : e->out_bytes,
				m->dev->guest_cid, &h, &why);
	if (st == VSOCK_PKT_SHORT) {
		mux_logw("dropping guest packet: %s", why);
		return;
	}
	struct vsock_conn *c = vsock_mux_lookup(m, h.dst_port, h.src_port);
	if (c && c->state == CONN_DEAD)
		c = NULL; /* its RST is on the way; treat as unknown */
	if (st != VSOCK_PKT_OK) {
		mux_logw("bad packet from guest port %u: %s", h.src_port, why);
		if (c)
			mux_kill_conn(m, c, true, why);
		else if (h.op != VSOCK_OP_RST)
			mux_queue_rst(m, h.dst_port, h.src_port);
		return;
	}
	if (h.op == VSOCK_OP_REQUEST && !c) {
		guest_request(m, &h);
		return;
	}
	if (!c) {
		if (h.op != VSOCK_OP_RST)
			mux_queue_rst(m, h.dst_port, h.src_port);
		return;
	}
	/* Payload as iovecs straight into guest memory, no copy. */
	struct iovec iov[VRING_MAX_SEGS];
	unsigned n = mux_payload_iov(e, 0, e->n_out, h.len, iov);
	bool was_init = c->state == CONN_LOCAL_INIT;
	enum vsock_conn_action act = vsock_conn_from_guest(c, &h, iov, n, &why);
	if (act == CONN_ACT_CLOSED) {
		mux_kill_conn(m, c, false, why);
		return;
	}
	if (act == CONN_ACT_RESET) {
		mux_logw("reset %u<->guest:%u: %s", c->local_port, c->peer_port, why);
		mux_kill_conn(m, c, true, why);
		return;
	}
	if (h.op == VSOCK_OP_RW)
		m->bytes_to_host += h.len;
	if (was_init && c->state == CONN_ESTABLISHED) {
		char ok[32];
		if (fmt_buf(ok, sizeof(ok), "OK %u\n", c->local_port) == 0 &&
		    vsock_conn_queue_local(c, ok, strlen(ok)) == 0 &&
		    vsock_conn_flush(c) == 0)
			mux_logv(m, "host -> guest port %u established", c->peer_port);
		else
			mux_kill_conn(m, c, true, "cannot answer the CONNECT client");
	}
	if (c->state == CONN_CLOSING && !c->deadline_ms)
		c->deadline_ms = m->now_ms + VSOCK_CONN_TIMEOUT_MS;
	mux_check_finished(m, c);
	mux_update(m, c);
}

void vsock_mux_process_tx(struct vsock_mux *m)
{
	struct vu_queue *q = &m->dev->q[TXQ];
	struct vring_elem e;
	bool pushed = false;
	while (vu_queue_live(q)) {
		enum vring_pop_status st = vring_pop(&q->vr, &m->dev->mem, &e);
		if (st == VRING_POP_BROKEN) {
			mux_logw("tx ring stopped: %s", q->vr.why);
			break;
		}
		if (st == VRING_POP_EMPTY) {
			if (!vring_rearm(&q->vr))
				break;
			continue;
		}
		guest_packet(m, &e);
		vring_push(&q->vr, e.head, 0);
		m->pkts_to_host++;
		pushed = true;
	}
	if (pushed && vu_queue_notify(q))
		m->calls[TXQ]++;
}
