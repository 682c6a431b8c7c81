/* vsock multiplexer: the epoll loop joining vhost-user, vrings and unix
 * sockets. Policy for a misbehaving guest: a bad packet resets its flow, a
 * bad ring stops that ring; the bridge itself keeps running. */
#include "vsock_mux.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "vsock_connector.h"

#define RXQ 0
#define TXQ 1
/* epoll tags below this are fixed fds, anything else is a connection. */
enum { TAG_VHOST = 1, TAG_KICK0 = 2, TAG_KICK1 = 3, TAG_LISTEN = 4, TAG_MAX = 16 };
#define HOST_PORT_FIRST (1u << 30)

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void logv(struct vsock_mux *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void logv(struct vsock_mux *m, const char *fmt, ...)
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
static void logw(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logw(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sandbox-vsock: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static unsigned hkey(uint32_t local, uint32_t peer)
{
	return (local * 2654435761u ^ peer * 40503u) % VSOCK_MUX_HASH;
}

struct vsock_conn *vsock_mux_lookup(struct vsock_mux *m, uint32_t local_port,
				    uint32_t peer_port)
{
	for (struct vsock_conn *c = m->hash[hkey(local_port, peer_port)]; c;
	     c = c->hnext)
		if (c->local_port == local_port && c->peer_port == peer_port)
			return c;
	return NULL;
}

static void hash_add(struct vsock_mux *m, struct vsock_conn *c)
{
	unsigned k = hkey(c->local_port, c->peer_port);
	c->hnext = m->hash[k];
	m->hash[k] = c;
	c->hashed = true;
}

static void hash_del(struct vsock_mux *m, struct vsock_conn *c)
{
	if (!c->hashed)
		return;
	for (struct vsock_conn **pp = &m->hash[hkey(c->local_port, c->peer_port)];
	     *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	c->hashed = false;
}

static void all_add(struct vsock_mux *m, struct vsock_conn *c)
{
	c->anext = m->all;
	c->aprev = NULL;
	if (m->all)
		m->all->aprev = c;
	m->all = c;
	m->nconns++;
}

static void enqueue(struct vsock_mux *m, struct vsock_conn *c)
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

static struct vsock_conn *dequeue(struct vsock_mux *m)
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

static void queue_rst(struct vsock_mux *m, uint32_t host_port,
		      uint32_t guest_port)
{
	if (m->rst_n == VSOCK_MUX_RSTQ) {
		logw("RST queue full, dropping RST to guest port %u", guest_port);
		return;
	}
	unsigned i = (m->rst_head + m->rst_n++) % VSOCK_MUX_RSTQ;
	m->rstq[i].host_port = host_port;
	m->rstq[i].guest_port = guest_port;
}

/* Bring epoll registration and the RX queue in line with the state. */
static void update(struct vsock_mux *m, struct vsock_conn *c)
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
			logw("epoll_ctl on port %u: %s", c->local_port,
			     strerror(errno));
	}
	if (c->fd < 0 || c->state == CONN_DEAD)
		want = 0;
	c->events = want;
	if (c->pending || c->rx_ready)
		enqueue(m, c);
}

static void kill_conn(struct vsock_mux *m, struct vsock_conn *c, bool rst,
		      const char *why)
{
	logv(m, "close %u<->guest:%u: %s", c->local_port, c->peer_port, why);
	if (c->fd >= 0 && c->events)
		epoll_ctl(m->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->events = 0;
	/* A connection the guest never heard of needs no RST. */
	bool known = c->state != CONN_HOST_CONNECT;
	vsock_conn_kill(c, rst && known, why);
	if (c->pending)
		enqueue(m, c);
}

/* Free dead connections that owe the guest nothing. */
static void reap(struct vsock_mux *m)
{
	struct vsock_conn *c = m->all;
	while (c) {
		struct vsock_conn *next = c->anext;
		if (c->state == CONN_DEAD && !c->pending && !c->queued) {
			hash_del(m, c);
			if (c->aprev)
				c->aprev->anext = c->anext;
			else
				m->all = c->anext;
			if (c->anext)
				c->anext->aprev = c->aprev;
			m->nconns--;
			vsock_conn_free(c);
		}
		c = next;
	}
}

static void check_finished(struct vsock_mux *m, struct vsock_conn *c)
{
	if (c->state != CONN_DEAD && vsock_conn_finished(c))
		kill_conn(m, c, true, "closed in both directions");
}

/* ---- guest -> host ------------------------------------------------- */

static void guest_request(struct vsock_mux *m, const struct vsock_hdr *h)
{
	if (m->nconns >= VSOCK_MUX_MAX_CONNS) {
		logw("too many connections, refusing guest port %u", h->src_port);
		queue_rst(m, h->dst_port, h->src_port);
		return;
	}
	int fd = vsock_connector_connect(m->connector_fd, h->dst_port);
	if (fd < 0) {
		logv(m, "guest:%u -> host port %u refused: %s", h->src_port,
		     h->dst_port, strerror(-fd));
		queue_rst(m, h->dst_port, h->src_port);
		return;
	}
	struct vsock_conn *c = vsock_conn_new(h->dst_port, h->src_port, fd);
	if (!c) {
		close(fd);
		queue_rst(m, h->dst_port, h->src_port);
		return;
	}
	c->state = CONN_ESTABLISHED;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->pending = CONN_TX_RESPONSE;
	hash_add(m, c);
	all_add(m, c);
	logv(m, "guest:%u -> host port %u connected", h->src_port, h->dst_port);
	update(m, c);
}

/* The payload of a packet as iovecs straight into guest memory (no copy):
 * segments [first, first + count) of e, skipping the 44-byte header that
 * starts the first of them, at most len bytes. The segments were
 * bounds-checked against the memory table when the chain was popped. */
static unsigned payload_iov(const struct vring_elem *e, unsigned first,
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
		logw("dropping guest packet: %s", why);
		return;
	}
	struct vsock_conn *c = vsock_mux_lookup(m, h.dst_port, h.src_port);
	if (c && c->state == CONN_DEAD)
		c = NULL; /* its RST is on the way; treat as unknown */
	if (st != VSOCK_PKT_OK) {
		logw("bad packet from guest port %u: %s", h.src_port, why);
		if (c)
			kill_conn(m, c, true, why);
		else if (h.op != VSOCK_OP_RST)
			queue_rst(m, h.dst_port, h.src_port);
		return;
	}
	if (h.op == VSOCK_OP_REQUEST && !c) {
		guest_request(m, &h);
		return;
	}
	if (!c) {
		if (h.op != VSOCK_OP_RST)
			queue_rst(m, h.dst_port, h.src_port);
		return;
	}
	/* Payload as iovecs straight into guest memory, no copy. */
	struct iovec iov[VRING_MAX_SEGS];
	unsigned n = payload_iov(e, 0, e->n_out, h.len, iov);
	bool was_init = c->state == CONN_LOCAL_INIT;
	enum vsock_conn_action act = vsock_conn_from_guest(c, &h, iov, n, &why);
	if (act == CONN_ACT_CLOSED) {
		kill_conn(m, c, false, why);
		return;
	}
	if (act == CONN_ACT_RESET) {
		logw("reset %u<->guest:%u: %s", c->local_port, c->peer_port, why);
		kill_conn(m, c, true, why);
		return;
	}
	if (h.op == VSOCK_OP_RW)
		m->bytes_to_host += h.len;
	if (was_init && c->state == CONN_ESTABLISHED) {
		char ok[32];
		if (fmt_buf(ok, sizeof(ok), "OK %u\n", c->local_port) == 0 &&
		    vsock_conn_queue_local(c, ok, strlen(ok)) == 0 &&
		    vsock_conn_flush(c) == 0)
			logv(m, "host -> guest port %u established", c->peer_port);
		else
			kill_conn(m, c, true, "cannot answer the CONNECT client");
	}
	if (c->state == CONN_CLOSING && !c->deadline_ms)
		c->deadline_ms = m->now_ms + VSOCK_CONN_TIMEOUT_MS;
	check_finished(m, c);
	update(m, c);
}

void vsock_mux_process_tx(struct vsock_mux *m)
{
	struct vu_queue *q = &m->dev->q[TXQ];
	struct vring_elem e;
	bool pushed = false;
	while (vu_queue_live(q)) {
		enum vring_pop_status st = vring_pop(&q->vr, &m->dev->mem, &e);
		if (st == VRING_POP_BROKEN) {
			logw("tx ring stopped: %s", q->vr.why);
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
	unsigned n = payload_iov(e, e->n_out, e->n_in, max, iov);
	ssize_t r;
	do
		r = readv(c->fd, iov, (int)n);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		c->rx_ready = false;
		if (errno != EAGAIN)
			kill_conn(m, c, true, "read from the unix socket failed");
		return 0;
	}
	if (r == 0) {
		logv(m, "%u<->guest:%u: unix side sent EOF", c->local_port,
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

void vsock_mux_process_rx(struct vsock_mux *m)
{
	struct vu_queue *q = &m->dev->q[RXQ];
	struct vring_elem e;
	bool pushed = false;
	while (vu_queue_live(q) && (m->rst_n || m->q_head)) {
		enum vring_pop_status st = vring_pop(&q->vr, &m->dev->mem, &e);
		if (st == VRING_POP_BROKEN) {
			logw("rx ring stopped: %s", q->vr.why);
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
			logw("rx ring stopped: %s", q->vr.why);
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
		struct vsock_conn *c = dequeue(m);
		uint32_t len = produce(m, c, &e);
		if (len) {
			vring_push(&q->vr, e.head, len);
			m->pkts_to_guest++;
			pushed = true;
		} else {
			vring_unpop(&q->vr);
		}
		check_finished(m, c);
		update(m, c);
	}
	if (pushed && vu_queue_notify(q))
		m->calls[RXQ]++;
}

/* ---- host-initiated connections ----------------------------------- */

static void host_accept(struct vsock_mux *m)
{
	int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (m->nconns >= VSOCK_MUX_MAX_CONNS) {
		close(fd);
		return;
	}
	struct vsock_conn *c = vsock_conn_new(0, 0, fd);
	if (!c) {
		close(fd);
		return;
	}
	c->state = CONN_HOST_CONNECT;
	c->deadline_ms = m->now_ms + VSOCK_CONN_TIMEOUT_MS;
	all_add(m, c);
	update(m, c);
}

static uint32_t alloc_port(struct vsock_mux *m, uint32_t peer)
{
	for (unsigned tries = 0; tries < 4096; tries++) {
		uint32_t p = m->next_local_port++;
		if (m->next_local_port >= (1u << 31))
			m->next_local_port = HOST_PORT_FIRST;
		if (!vsock_mux_lookup(m, p, peer))
			return p;
	}
	return 0;
}

static void host_connect_line(struct vsock_mux *m, struct vsock_conn *c)
{
	size_t len = strlen(c->line);
	/* Byte by byte so that data after '\n' stays in the socket. */
	while (len < VSOCK_CONNECT_LINE_MAX) {
		char ch;
		ssize_t r = recv(c->fd, &ch, 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			kill_conn(m, c, false, "CONNECT client left");
			return;
		}
		c->line[len++] = ch;
		c->line[len] = 0;
		uint32_t port;
		size_t used;
		int p = vsock_connect_line_parse(c->line, len, &port, &used);
		if (p < 0)
			break;
		if (p == 0)
			continue;
		c->local_port = alloc_port(m, port);
		c->peer_port = port;
		if (!c->local_port) {
			kill_conn(m, c, false, "no free local port");
			return;
		}
		c->state = CONN_LOCAL_INIT;
		c->pending = CONN_TX_REQUEST;
		c->deadline_ms = m->now_ms + VSOCK_CONN_TIMEOUT_MS;
		hash_add(m, c);
		logv(m, "host -> guest port %u (local %u)", port, c->local_port);
		update(m, c);
		return;
	}
	kill_conn(m, c, false, "bad CONNECT line");
}

/* ---- loop ---------------------------------------------------------- */

static void conn_event(struct vsock_mux *m, struct vsock_conn *c, uint32_t ev)
{
	if (c->state == CONN_DEAD || c->fd < 0)
		return;
	if (c->state == CONN_HOST_CONNECT) {
		host_connect_line(m, c);
		return;
	}
	if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (c->events & EPOLLIN))
		c->rx_ready = true;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
		if (c->buf_used && vsock_conn_flush(c) < 0) {
			kill_conn(m, c, true, "write to the unix socket failed");
			return;
		}
	}
	check_finished(m, c);
	update(m, c);
}

static void kick(struct vsock_mux *m, unsigned idx)
{
	uint64_t v;
	int fd = m->dev->q[idx].kick_fd;
	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		logw("reading kick fd %u: %s", idx, strerror(errno));
	m->kicks[idx]++;
	m->scan[idx] = true;
}

static void on_queue(void *opaque, unsigned idx)
{
	struct vsock_mux *m = opaque;
	struct vu_queue *q = &m->dev->q[idx];
	int fd = q->started ? q->kick_fd : -1;
	if (fd != m->kick_reg[idx]) {
		/* The old fd was closed by vhost_user.c, which removed it. */
		m->kick_reg[idx] = -1;
		if (fd >= 0) {
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
			struct epoll_event ev = {
				.events = EPOLLIN,
				.data.u64 = idx == 0 ? TAG_KICK0 : TAG_KICK1};
			if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
				m->kick_reg[idx] = fd;
			else
				logw("cannot watch kick fd %u: %s", idx,
				     strerror(errno));
		}
	}
	if (q->vr.broken)
		logw("%s ring stopped: %s", idx ? "tx" : "rx", q->vr.why);
	/* Scan on start/enable: a kick may have arrived before (#247). */
	m->scan[idx] = true;
}

static void timeouts(struct vsock_mux *m)
{
	for (struct vsock_conn *c = m->all; c; c = c->anext) {
		if (c->credit_wait_ms && m->now_ms >= c->credit_wait_ms &&
		    c->state != CONN_DEAD)
			update(m, c); /* may queue the CREDIT_REQUEST */
		if (!c->deadline_ms || m->now_ms < c->deadline_ms ||
		    c->state == CONN_DEAD)
			continue;
		kill_conn(m, c, true, c->state == CONN_LOCAL_INIT
					      ? "guest did not answer the REQUEST"
					      : "timed out");
	}
}

/* epoll timeout (ms) until the earliest deadline or credit wait, -1 for
 * none. Connection deadlines only need 200 ms precision. */
static int next_timeout(struct vsock_mux *m)
{
	uint64_t now = now_ms(), next = UINT64_MAX;
	for (struct vsock_conn *c = m->all; c; c = c->anext) {
		if (c->deadline_ms && now + 200 < next)
			next = now + 200;
		if (c->credit_wait_ms && c->credit_wait_ms < next)
			next = c->credit_wait_ms;
	}
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)(next - now);
}

static int add_fixed(struct vsock_mux *m, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	return epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int vsock_mux_init(struct vsock_mux *m, struct vu_dev *dev, int connector_fd,
		   int listen_fd)
{
	memset(m, 0, sizeof(*m));
	m->dev = dev;
	m->listen_fd = listen_fd;
	m->next_local_port = HOST_PORT_FIRST;
	m->kick_reg[0] = m->kick_reg[1] = -1;
	m->connector_fd = connector_fd;
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->epfd < 0)
		return -errno;
	dev->on_queue = on_queue;
	dev->opaque = m;
	int r = 0;
	if (dev->sock >= 0)
		r = add_fixed(m, dev->sock, TAG_VHOST);
	if (r == 0 && listen_fd >= 0)
		r = add_fixed(m, listen_fd, TAG_LISTEN);
	return r;
}

void vsock_mux_destroy(struct vsock_mux *m)
{
	while (m->all) {
		struct vsock_conn *c = m->all;
		m->all = c->anext;
		vsock_conn_free(c);
	}
	if (m->epfd >= 0)
		close(m->epfd);
	m->epfd = -1;
}

static void log_stats(struct vsock_mux *m)
{
	logv(m, "packets to guest %llu, to host %llu; interrupts rx %llu tx %llu; "
		"kicks rx %llu tx %llu; wake-ups %llu",
	     (unsigned long long)m->pkts_to_guest,
	     (unsigned long long)m->pkts_to_host,
	     (unsigned long long)m->calls[RXQ], (unsigned long long)m->calls[TXQ],
	     (unsigned long long)m->kicks[RXQ], (unsigned long long)m->kicks[TXQ],
	     (unsigned long long)m->wakeups);
}

int vsock_mux_run(struct vsock_mux *m, const char **why)
{
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(m->epfd, evs, ARRAY_SIZE(evs),
				   next_timeout(m));
		if (n < 0 && errno != EINTR) {
			*why = "epoll_wait failed";
			return -errno;
		}
		m->now_ms = now_ms();
		m->wakeups++;
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_VHOST) {
				int r = vu_dev_handle_one(m->dev, why);
				if (r == -ECONNRESET) {
					log_stats(m);
					return 0;
				}
				if (r < 0)
					return r;
			} else if (tag == TAG_KICK0 || tag == TAG_KICK1) {
				kick(m, tag == TAG_KICK0 ? 0 : 1);
			} else if (tag == TAG_LISTEN) {
				host_accept(m);
			} else if (tag >= TAG_MAX) {
				conn_event(m, evs[i].data.ptr, evs[i].events);
			}
		}
		if (m->scan[TXQ]) {
			m->scan[TXQ] = false;
			vsock_mux_process_tx(m);
		}
		m->scan[RXQ] = false;
		vsock_mux_process_rx(m);
		timeouts(m);
		vsock_mux_process_rx(m);
		reap(m);
	}
}
