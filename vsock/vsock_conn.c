/* Connection state machine; see vsock_conn.h for the counters. */
#include "vsock_conn.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Room for the "OK <port>\n" reply on top of guest payload. */
#define BUF_SLACK 64u

struct vsock_conn *vsock_conn_new(uint32_t local_port, uint32_t peer_port,
				  int fd)
{
	struct vsock_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->local_port = local_port;
	c->peer_port = peer_port;
	c->fd = fd;
	c->buf_alloc = VSOCK_CONN_BUF_ALLOC;
	return c;
}

void vsock_conn_free(struct vsock_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c);
}

uint32_t vsock_conn_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	if (in_flight > c->peer_buf_alloc)
		return 0; /* peer shrank its buffer or reports a bogus fwd_cnt */
	return c->peer_buf_alloc - in_flight;
}

uint32_t vsock_conn_guest_view_free(const struct vsock_conn *c)
{
	uint32_t in_flight = c->rx_cnt - c->last_fwd_sent;
	return in_flight > c->buf_alloc ? 0 : c->buf_alloc - in_flight;
}

void vsock_conn_fill_hdr(struct vsock_conn *c, struct vsock_hdr *h,
			 uint64_t guest_cid, uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = VSOCK_HOST_CID;
	h->dst_cid = guest_cid;
	h->src_port = c->local_port;
	h->dst_port = c->peer_port;
	h->type = VSOCK_TYPE_STREAM;
	h->op = op;
	h->buf_alloc = c->buf_alloc;
	h->fwd_cnt = c->fwd_cnt;
	c->last_fwd_sent = c->fwd_cnt;
}

static uint32_t buf_cap(const struct vsock_conn *c)
{
	return c->buf_alloc + BUF_SLACK;
}

static int buf_append(struct vsock_conn *c, const uint8_t *p, size_t len)
{
	if (!c->buf) {
		c->buf = malloc(buf_cap(c));
		if (!c->buf)
			return -ENOMEM;
	}
	if (len > buf_cap(c) - c->buf_used)
		return -ENOBUFS;
	while (len) {
		uint32_t tail = (c->buf_head + c->buf_used) % buf_cap(c);
		size_t n = buf_cap(c) - tail;
		if (n > len)
			n = len;
		memcpy(c->buf + tail, p, n);
		c->buf_used += (uint32_t)n;
		p += n;
		len -= n;
	}
	return 0;
}

/* Account n bytes written to the unix socket: the non-payload prefix first. */
static void wrote(struct vsock_conn *c, size_t n)
{
	size_t extra = n < c->buf_extra ? n : c->buf_extra;
	c->buf_extra -= (uint32_t)extra;
	c->fwd_cnt += (uint32_t)(n - extra);
}

int vsock_conn_queue_local(struct vsock_conn *c, const void *data, size_t len)
{
	if (len > BUF_SLACK || c->buf_extra + len > BUF_SLACK)
		return -ENOBUFS;
	int r = buf_append(c, data, len);
	if (r == 0)
		c->buf_extra += (uint32_t)len;
	return r;
}

int vsock_conn_flush(struct vsock_conn *c)
{
	if (c->fd < 0)
		return -EBADF;
	while (c->buf_used) {
		uint32_t cap = buf_cap(c);
		size_t n = cap - c->buf_head;
		if (n > c->buf_used)
			n = c->buf_used;
		ssize_t w = send(c->fd, c->buf + c->buf_head, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		c->buf_head = (c->buf_head + (uint32_t)w) % cap;
		c->buf_used -= (uint32_t)w;
		wrote(c, (size_t)w);
	}
	c->buf_head = 0;
	if (c->peer_shut_send && !c->shut_wr_done) {
		/* The guest half-closed: pass its EOF on, keep reading. */
		if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN)
			return -errno;
		c->shut_wr_done = true;
	}
	return 0;
}

static enum vsock_conn_action reset(const char **why, const char *reason)
{
	*why = reason;
	return CONN_ACT_RESET;
}

static enum vsock_conn_action guest_data(struct vsock_conn *c,
					 const struct vsock_hdr *h,
					 const struct iovec *iov,
					 unsigned iovcnt, const char **why)
{
	if (c->state != CONN_ESTABLISHED || c->peer_shut_send)
		return reset(why, "data on a connection not open for it");
	if (h->len > vsock_conn_guest_view_free(c) ||
	    h->len > c->buf_alloc - (c->rx_cnt - c->fwd_cnt))
		return reset(why, "guest sent more than its credit");
	c->rx_cnt += h->len;

	size_t done = 0;
	if (c->buf_used == 0 && h->len) {
		ssize_t w;
		do {
			struct msghdr mh = {.msg_iov = (struct iovec *)iov,
					    .msg_iovlen = iovcnt};
			w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		} while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN)
			return reset(why, "write to the unix socket failed");
		if (w > 0) {
			done = (size_t)w;
			wrote(c, done);
		}
	}
	/* Keep the rest; credit guarantees it fits in buf_alloc. */
	size_t skip = done;
	for (unsigned i = 0; i < iovcnt; i++) {
		size_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		if (buf_append(c, (const uint8_t *)iov[i].iov_base + skip,
			       l - skip) < 0)
			return reset(why, "out of buffer memory");
		skip = 0;
	}
	return CONN_ACT_NONE;
}

enum vsock_conn_action vsock_conn_from_guest(struct vsock_conn *c,
					     const struct vsock_hdr *h,
					     const struct iovec *iov,
					     unsigned iovcnt, const char **why)
{
	*why = "";
	if (h->op == VSOCK_OP_RST) {
		*why = "guest reset the connection";
		return CONN_ACT_CLOSED;
	}
	/* Every packet carries the guest's current credit. */
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->credit_requested = false;

	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		if (c->state != CONN_LOCAL_INIT)
			return reset(why, "RESPONSE on an open connection");
		c->state = CONN_ESTABLISHED;
		c->deadline_ms = 0;
		return CONN_ACT_NONE;
	case VSOCK_OP_REQUEST:
		return reset(why, "REQUEST on an existing connection");
	case VSOCK_OP_RW:
		return guest_data(c, h, iov, iovcnt, why);
	case VSOCK_OP_CREDIT_UPDATE:
		return CONN_ACT_NONE;
	case VSOCK_OP_CREDIT_REQUEST:
		c->pending |= CONN_TX_CREDIT_UPDATE;
		return CONN_ACT_NONE;
	case VSOCK_OP_SHUTDOWN:
		if (c->state == CONN_LOCAL_INIT)
			return reset(why, "SHUTDOWN before RESPONSE");
		if (h->flags & VSOCK_SHUTDOWN_RCV)
			c->peer_shut_rcv = true;
		if (h->flags & VSOCK_SHUTDOWN_SEND)
			c->peer_shut_send = true;
		if (c->peer_shut_rcv && c->peer_shut_send &&
		    c->state == CONN_ESTABLISHED)
			c->state = CONN_CLOSING; /* guest close(): flush, then RST */
		if (vsock_conn_flush(c) < 0)
			return reset(why, "write to the unix socket failed");
		return CONN_ACT_NONE;
	default:
		return reset(why, "unexpected operation");
	}
}

void vsock_conn_local_eof(struct vsock_conn *c)
{
	c->local_eof = true;
	c->rx_ready = false;
	c->shutdown_flags = VSOCK_SHUTDOWN_SEND;
	if (c->peer_shut_send)
		c->shutdown_flags |= VSOCK_SHUTDOWN_RCV;
	c->pending |= CONN_TX_SHUTDOWN;
}

void vsock_conn_sent(struct vsock_conn *c, uint32_t n)
{
	c->tx_cnt += n;
}

/* Linux guests send CREDIT_UPDATE on their own once they have consumed
 * all but 64 KiB of what they last reported (virtio_transport.c), so a
 * reader that keeps reading always frees us. Asking the moment credit
 * runs out made a TCG guest answer every ~32 KiB: a TX packet, a kick and
 * an interrupt each, for nothing. We still ask, once, after a delay:
 * waiting silently forever can deadlock with a guest that only answers
 * requests (vhost-device #494). */
bool vsock_conn_credit_check(struct vsock_conn *c, uint64_t now_ms)
{
	if (vsock_conn_peer_credit(c) > 0) {
		c->credit_wait_ms = 0;
		return false;
	}
	if (c->credit_requested)
		return false;
	if (!c->credit_wait_ms) {
		c->credit_wait_ms = now_ms + VSOCK_CREDIT_REQUEST_DELAY_MS;
		return false;
	}
	if (now_ms < c->credit_wait_ms)
		return false;
	c->credit_wait_ms = 0;
	c->credit_requested = true;
	c->pending |= CONN_TX_CREDIT_REQUEST;
	return true;
}

bool vsock_conn_want_credit_update(const struct vsock_conn *c)
{
	return c->fwd_cnt != c->last_fwd_sent &&
	       vsock_conn_guest_view_free(c) < c->buf_alloc / 2;
}

bool vsock_conn_finished(const struct vsock_conn *c)
{
	if (c->buf_used)
		return false;
	if (c->state == CONN_CLOSING)
		return true;
	/* Both half-closes seen and the SHUTDOWN we owe already sent. */
	return c->state == CONN_ESTABLISHED && c->local_eof &&
	       c->peer_shut_send && !(c->pending & CONN_TX_SHUTDOWN);
}

void vsock_conn_kill(struct vsock_conn *c, bool send_rst, const char *why)
{
	if (c->state == CONN_DEAD)
		return;
	c->state = CONN_DEAD;
	c->close_reason = why;
	c->rx_ready = false;
	c->pending = send_rst ? CONN_TX_RST : 0;
	c->deadline_ms = 0;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

int vsock_connect_line_parse(const char *buf, size_t len, uint32_t *port,
			     size_t *consumed)
{
	static const char kw[] = "connect ";
	size_t kwlen = sizeof(kw) - 1;
	for (size_t i = 0; i < len && i < kwlen; i++)
		if (tolower((unsigned char)buf[i]) != kw[i])
			return -EINVAL;
	const char *nl = memchr(buf, '\n', len);
	if (!nl)
		return len >= VSOCK_CONNECT_LINE_MAX ? -EINVAL : 0;
	size_t line = (size_t)(nl - buf);
	if (line > VSOCK_CONNECT_LINE_MAX || line <= kwlen)
		return -EINVAL;
	size_t end = line;
	if (buf[end - 1] == '\r')
		end--;
	uint64_t v = 0;
	size_t i = kwlen;
	if (i >= end)
		return -EINVAL;
	for (; i < end; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(buf[i] - '0');
		if (v > UINT32_MAX)
			return -EINVAL;
	}
	*port = (uint32_t)v;
	*consumed = line + 1;
	return 1;
}
