/* The vsock multiplexer's connection table: hash by port pair, the list of
 * every connection, the RX work queue, the RST queue, and the one path that
 * closes and frees a connection. */
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

void mux_logv(struct vsock_mux *m, const char *fmt, ...)
{
	if (!m->verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("sandbox-vsock: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Hostile input is always worth one line, verbose or not. */
void mux_logw(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sandbox-vsock: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static unsigned mux_hkey(uint32_t local, uint32_t peer)
{
	return (local * 2654435761u ^ peer * 40503u) % VSOCK_MUX_HASH;
}

struct vsock_conn *vsock_mux_lookup(struct vsock_mux *m, uint32_t local_port,
				    uint32_t peer_port)
{
	for (struct vsock_conn *c = m->hash[mux_hkey(local_port, peer_port)]; c;
	     c = c->hnext)
		if (c->local_port == local_port && c->peer_port == peer_port)
			return c;
	return NULL;
}

void mux_hash_add(struct vsock_mux *m, struct vsock_conn *c)
{
	unsigned k = mux_hkey(c->local_port, c->peer_port);
	c->hnext = m->hash[k];
	m->hash[k] = c;
	c->hashed = true;
}

void mux_hash_del(struct vsock_mux *m, struct vsock_conn *c)
{
	if (!c->hashed)
		return;
	for (struct vsock_conn **pp = &m->hash[mux_hkey(c->local_port, c->peer_port)];
	     *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	c->hashed = false;
}

void mux_all_add(struct vsock_mux *m, struct vsock_conn *c)
{
	LIST_INSERT_HEAD(&m->all, c, all_link);
	m->nconns++;
}

void mux_enqueue(struct vsock_mux *m, struct vsock_conn *c)
{
	if (c->queued)
		return;
	c->queued = true;
	c->qnext = NULL;
	if (m->q_tail)
		m->q_tail->qnext = c;
	else
		m->q_head = c;
	m->q_tail = c;
}

struct vsock_conn *mux_dequeue(struct vsock_mux *m)
{
	struct vsock_conn *c = m->q_head;
	if (!c)
		return NULL;
	m->q_head = c->qnext;
	if (!m->q_head)
		m->q_tail = NULL;
	c->queued = false;
	c->qnext = NULL;
	return c;
}

void mux_queue_rst(struct vsock_mux *m, uint32_t host_port,
		      uint32_t guest_port)
{
	if (m->rst_n == VSOCK_MUX_RSTQ) {
		mux_logw("RST queue full, dropping RST to guest port %u", guest_port);
		return;
	}
	unsigned i = (m->rst_head + m->rst_n++) % VSOCK_MUX_RSTQ;
	m->rstq[i].host_port = host_port;
	m->rstq[i].guest_port = guest_port;
}

/* Bring epoll registration and the RX queue in line with the state. */
void mux_update(struct vsock_mux *m, struct vsock_conn *c)
{
	uint32_t want = 0;
	if (c->state != CONN_DEAD && c->fd >= 0) {
		bool open_rx = c->state == CONN_ESTABLISHED && !c->local_eof &&
			       !c->peer_shut_rcv && !c->rx_ready;
		if (open_rx)
			vsock_conn_credit_check(c, m->now_ms);
		else
			c->credit_wait_ms = 0;
		if (c->state == CONN_HOST_CONNECT ||
		    (open_rx && vsock_conn_peer_credit(c) > 0))
			want |= EPOLLIN;
		if (c->buf_used)
			want |= EPOLLOUT;
		if (vsock_conn_want_credit_update(c))
			c->pending |= CONN_TX_CREDIT_UPDATE;
	}
	if (want != c->events && c->fd >= 0) {
		struct epoll_event ev = {.events = want, .data.ptr = c};
		int op = !want ? EPOLL_CTL_DEL
			 : c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
		/* Registered only while we want something, so that a
		 * hung-up socket we are not reading cannot spin the loop. */
		if (epoll_ctl(m->epfd, op, c->fd, &ev) < 0)
			mux_logw("epoll_ctl on port %u: %s", c->local_port,
			     strerror(errno));
	}
	if (c->fd < 0 || c->state == CONN_DEAD)
		want = 0;
	c->events = want;
	if (c->pending || c->rx_ready)
		mux_enqueue(m, c);
}

void mux_kill_conn(struct vsock_mux *m, struct vsock_conn *c, bool rst,
		      const char *why)
{
	mux_logv(m, "close %u<->guest:%u: %s", c->local_port, c->peer_port, why);
	if (c->fd >= 0 && c->events)
		epoll_ctl(m->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->events = 0;
	/* A connection the guest never heard of needs no RST. */
	bool known = c->state != CONN_HOST_CONNECT;
	vsock_conn_kill(c, rst && known, why);
	if (c->pending)
		mux_enqueue(m, c);
}

/* Free dead connections that owe the guest nothing. */
void mux_reap(struct vsock_mux *m)
{
	struct vsock_conn *c = LIST_FIRST(&m->all);
	while (c) {
		struct vsock_conn *next = LIST_NEXT(c, all_link);
		if (c->state == CONN_DEAD && !c->pending && !c->queued) {
			mux_hash_del(m, c);
			LIST_REMOVE(c, all_link);
			m->nconns--;
			vsock_conn_free(c);
		}
		c = next;
	}
}

void mux_check_finished(struct vsock_mux *m, struct vsock_conn *c)
{
	if (c->state != CONN_DEAD && vsock_conn_finished(c))
		mux_kill_conn(m, c, true, "closed in both directions");
}

/* The payload of a packet as iovecs straight into guest memory (no copy):
 * segments [first, first + count) of e, skipping the 44-byte header that
 * starts the first of them, at most len bytes. The segments were
 * bounds-checked against the memory table when the chain was popped. */
unsigned mux_payload_iov(const struct vring_elem *e, unsigned first,
			    unsigned count, size_t len,
			    struct iovec iov[VRING_MAX_SEGS])
{
	unsigned n = 0;
	size_t off = VSOCK_HDR_LEN;
	for (unsigned i = first; i < first + count && len; i++) {
		if (off >= e->seg[i].len) {
			off -= e->seg[i].len;
			continue;
		}
		size_t l = e->seg[i].len - off;
		if (l > len)
			l = len;
		iov[n++] = (struct iovec){e->seg[i].base + off, l};
		len -= l;
		off = 0;
	}
	return n;
}
