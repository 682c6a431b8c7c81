/* Host -> guest: socket data, credit updates and RSTs into the RX
 * virtqueue's buffers. */
#include "vsock_mux_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "vsock_connector.h"

/* ---- host -> guest ------------------------------------------------- */

static void put_hdr(const struct vring_elem *e, const struct vsock_hdr *h)
{
	uint8_t raw[VSOCK_HDR_LEN];
	vsock_pkt_write(raw, h);
	vring_elem_write(e, 0, raw, sizeof(raw));
}

/* Read unix data straight into the guest buffer. Returns the RW payload
 * length, 0 when the buffer was not used. */
static uint32_t fill_data(struct vsock_mux *m, struct vsock_conn *c,
			  const struct vring_elem *e)
{
	uint32_t max = e->in_bytes - VSOCK_HDR_LEN;
	uint32_t credit = vsock_conn_peer_credit(c);
	if (max > credit)
		max = credit;
	if (max > VSOCK_MAX_PAYLOAD)
		max = VSOCK_MAX_PAYLOAD;
	if (max == 0) {
		c->rx_ready = false;
		return 0;
	}
	struct iovec iov[VRING_MAX_SEGS];
	unsigned n = mux_payload_iov(e, e->n_out, e->n_in, max, iov);
	ssize_t r;
	do
		r = readv(c->fd, iov, (int)n);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		c->rx_ready = false;
		if (errno != EAGAIN)
			mux_kill_conn(m, c, true, "read from the unix socket failed");
		return 0;
	}
	if (r == 0) {
		mux_logv(m, "%u<->guest:%u: unix side sent EOF", c->local_port,
		     c->peer_port);
		vsock_conn_local_eof(c);
		return 0;
	}
	return (uint32_t)r;
}

/* Produce one packet for c into e. Returns bytes written to e, 0 if the
 * buffer was not used. */
static uint32_t produce(struct vsock_mux *m, struct vsock_conn *c,
			const struct vring_elem *e)
{
	static const struct {
		unsigned bit;
		uint16_t op;
	} ctl[] = {
		{CONN_TX_RST, VSOCK_OP_RST},
		{CONN_TX_REQUEST, VSOCK_OP_REQUEST},
		{CONN_TX_RESPONSE, VSOCK_OP_RESPONSE},
		{CONN_TX_CREDIT_UPDATE, VSOCK_OP_CREDIT_UPDATE},
		{CONN_TX_CREDIT_REQUEST, VSOCK_OP_CREDIT_REQUEST},
	};
	struct vsock_hdr h;
	uint64_t cid = m->dev->guest_cid;
	for (size_t i = 0; i < ARRAY_SIZE(ctl); i++) {
		if (!(c->pending & ctl[i].bit))
			continue;
		c->pending &= ~ctl[i].bit;
		if (ctl[i].bit == CONN_TX_RST)
			c->pending = 0;
		vsock_conn_fill_hdr(c, &h, cid, ctl[i].op);
		put_hdr(e, &h);
		return VSOCK_HDR_LEN;
	}
	if (c->rx_ready && (c->state != CONN_ESTABLISHED || c->local_eof ||
			    c->peer_shut_rcv))
		c->rx_ready = false; /* nothing may be sent any more */
	if (c->rx_ready) {
		uint32_t n = fill_data(m, c, e);
		if (n) {
			vsock_conn_fill_hdr(c, &h, cid, VSOCK_OP_RW);
			h.len = n;
			put_hdr(e, &h);
			vsock_conn_sent(c, n);
			m->bytes_to_guest += n;
			return VSOCK_HDR_LEN + n;
		}
	}
	/* Data comes first, the SHUTDOWN that ends it after. */
	if ((c->pending & CONN_TX_SHUTDOWN) && !c->rx_ready) {
		c->pending &= ~CONN_TX_SHUTDOWN;
		vsock_conn_fill_hdr(c, &h, cid, VSOCK_OP_SHUTDOWN);
		h.flags = c->shutdown_flags;
		put_hdr(e, &h);
		return VSOCK_HDR_LEN;
	}
	return 0;
}

/* Up to this many RX buffers are filled from one readv(): a Linux guest
 * posts 4 KiB buffers, so one read per buffer was a syscall per 4 KiB. */
#define RX_BATCH 32

static size_t cap_total(const uint32_t *cap, unsigned n)
{
	size_t t = 0;
	for (unsigned i = 0; i < n; i++)
		t += cap[i];
	return t;
}

/* Can c's next packets only be data (no control packet owed before it)? */
static bool data_only(const struct vsock_conn *c)
{
	return c->rx_ready && !(c->pending & ~(unsigned)CONN_TX_SHUTDOWN) &&
	       c->state == CONN_ESTABLISHED && !c->local_eof &&
	       !c->peer_shut_rcv;
}

/* Fill first and as many more RX buffers as the credit covers from one
 * readv() of c's socket, one RW packet per buffer. Buffers that got no
 * bytes are given back. Returns the number of packets pushed. */
static unsigned fill_batch(struct vsock_mux *m, struct vsock_conn *c,
			   struct vu_queue *q, const struct vring_elem *first)
{
	static struct vring_elem e[RX_BATCH];
	static struct iovec iov[RX_BATCH * VRING_MAX_SEGS];
	uint32_t cap[RX_BATCH];
	uint32_t credit = vsock_conn_peer_credit(c);
	unsigned ne = 0, niov = 0;
	e[0] = *first;
	for (;;) {
		uint32_t max = e[ne].in_bytes - VSOCK_HDR_LEN;
		if (max > VSOCK_MAX_PAYLOAD)
			max = VSOCK_MAX_PAYLOAD;
		if (max > credit)
			max = credit;
		cap[ne] = max;
		credit -= max;
		niov += mux_payload_iov(&e[ne], e[ne].n_out, e[ne].n_in, max,
					iov + niov);
		ne++;
		/* readv() takes at most IOV_MAX segments, and a guest may
		 * chain up to VRING_MAX_SEGS per buffer. */
		if (!credit || ne == RX_BATCH ||
		    niov > IOV_MAX - VRING_MAX_SEGS)
			break;
		if (vring_pop(&q->vr, &m->dev->mem, &e[ne]) != VRING_POP_OK)
			break; /* empty (re-armed by the caller) or broken */
		if (e[ne].in_bytes < VSOCK_HDR_LEN || e[ne].n_out) {
			vring_break(&q->vr, "rx buffer too small or not writable");
			break;
		}
	}
	if (q->vr.broken) {
		mux_logw("rx ring stopped: %s", q->vr.why);
		return 0;
	}
	if (cap[0] == 0) {
		c->rx_ready = false;
		for (unsigned i = 0; i < ne; i++)
			vring_unpop(&q->vr);
		return 0;
	}
	ssize_t r;
	do
		r = readv(c->fd, iov, (int)niov);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		c->rx_ready = false;
		if (r == 0) {
			mux_logv(m, "%u<->guest:%u: unix side sent EOF",
				 c->local_port, c->peer_port);
			vsock_conn_local_eof(c);
		} else if (errno != EAGAIN) {
			mux_kill_conn(m, c, true, "read from the unix socket failed");
		}
		for (unsigned i = 0; i < ne; i++)
			vring_unpop(&q->vr);
		return 0;
	}
	size_t left = (size_t)r;
	unsigned used = 0;
	for (; used < ne && left; used++) {
		uint32_t n = left < cap[used] ? (uint32_t)left : cap[used];
		struct vsock_hdr h;
		vsock_conn_fill_hdr(c, &h, m->dev->guest_cid, VSOCK_OP_RW);
		h.len = n;
		put_hdr(&e[used], &h);
		vsock_conn_sent(c, n);
		m->bytes_to_guest += n;
		vring_push(&q->vr, e[used].head, VSOCK_HDR_LEN + n);
		left -= n;
	}
	/* The buffers after the data, last popped first. */
	for (unsigned i = used; i < ne; i++)
		vring_unpop(&q->vr);
	/* A short read drained the socket: level-triggered epoll says when
	 * there is more, which saves the readv() that would get EAGAIN. */
	if (left == 0 && used == ne && (size_t)r < cap_total(cap, ne))
		c->rx_ready = false;
	return used;
}

void vsock_mux_process_rx(struct vsock_mux *m)
{
	struct vu_queue *q = &m->dev->q[RXQ];
	struct vring_elem e;
	bool pushed = false;
	while (vu_queue_live(q) && (m->rst_n || m->q_head)) {
		enum vring_pop_status st = vring_pop(&q->vr, &m->dev->mem, &e);
		if (st == VRING_POP_BROKEN) {
			mux_logw("rx ring stopped: %s", q->vr.why);
			break;
		}
		if (st == VRING_POP_EMPTY) {
			/* Wait for the guest to refill; kick re-armed. */
			if (!vring_rearm(&q->vr))
				break;
			continue;
		}
		if (e.in_bytes < VSOCK_HDR_LEN || e.n_out) {
			vring_break(&q->vr, "rx buffer too small or not writable");
			mux_logw("rx ring stopped: %s", q->vr.why);
			break;
		}
		if (m->rst_n) {
			struct vsock_hdr h = {
				.src_cid = VSOCK_HOST_CID,
				.dst_cid = m->dev->guest_cid,
				.src_port = m->rstq[m->rst_head].host_port,
				.dst_port = m->rstq[m->rst_head].guest_port,
				.type = VSOCK_TYPE_STREAM,
				.op = VSOCK_OP_RST,
			};
			m->rst_head = (m->rst_head + 1) % VSOCK_MUX_RSTQ;
			m->rst_n--;
			put_hdr(&e, &h);
			vring_push(&q->vr, e.head, VSOCK_HDR_LEN);
			m->pkts_to_guest++;
			pushed = true;
			continue;
		}
		struct vsock_conn *c = mux_dequeue(m);
		if (data_only(c)) {
			unsigned n = fill_batch(m, c, q, &e);
			m->pkts_to_guest += n;
			pushed |= n > 0;
			mux_check_finished(m, c);
			mux_update(m, c);
			continue;
		}
		uint32_t len = produce(m, c, &e);
		if (len) {
			vring_push(&q->vr, e.head, len);
			m->pkts_to_guest++;
			pushed = true;
		} else {
			vring_unpop(&q->vr);
		}
		mux_check_finished(m, c);
		mux_update(m, c);
	}
	if (pushed && vu_queue_notify(q))
		m->calls[RXQ]++;
}
