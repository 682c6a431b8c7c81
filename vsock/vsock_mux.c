/* vsock multiplexer: the epoll loop joining vhost-user, vrings and unix
 * sockets, and host-initiated connections ("CONNECT P"). Policy for a
 * misbehaving guest: a bad packet resets its flow, a bad ring stops that
 * ring; the bridge itself keeps running. The table is in vsock_table.c,
 * the two directions in vsock_to_host.c and vsock_to_guest.c. */
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
	mux_all_add(m, c);
	mux_update(m, c);
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
			mux_kill_conn(m, c, false, "CONNECT client left");
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
			mux_kill_conn(m, c, false, "no free local port");
			return;
		}
		c->state = CONN_LOCAL_INIT;
		c->pending = CONN_TX_REQUEST;
		c->deadline_ms = m->now_ms + VSOCK_CONN_TIMEOUT_MS;
		mux_hash_add(m, c);
		mux_logv(m, "host -> guest port %u (local %u)", port, c->local_port);
		mux_update(m, c);
		return;
	}
	mux_kill_conn(m, c, false, "bad CONNECT line");
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
			mux_kill_conn(m, c, true, "write to the unix socket failed");
			return;
		}
	}
	mux_check_finished(m, c);
	mux_update(m, c);
}

static void kick(struct vsock_mux *m, unsigned idx)
{
	uint64_t v;
	int fd = m->dev->q[idx].kick_fd;
	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		mux_logw("reading kick fd %u: %s", idx, strerror(errno));
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
				mux_logw("cannot watch kick fd %u: %s", idx,
				     strerror(errno));
		}
	}
	if (q->vr.broken)
		mux_logw("%s ring stopped: %s", idx ? "tx" : "rx", q->vr.why);
	/* Scan on start/enable: a kick may have arrived before (#247). */
	m->scan[idx] = true;
}

static void timeouts(struct vsock_mux *m)
{
	struct vsock_conn *c;
	LIST_FOREACH(c, &m->all, all_link) {
		if (c->credit_wait_ms && m->now_ms >= c->credit_wait_ms &&
		    c->state != CONN_DEAD)
			mux_update(m, c); /* may queue the CREDIT_REQUEST */
		if (!c->deadline_ms || m->now_ms < c->deadline_ms ||
		    c->state == CONN_DEAD)
			continue;
		mux_kill_conn(m, c, true, c->state == CONN_LOCAL_INIT
					      ? "guest did not answer the REQUEST"
					      : "timed out");
	}
}

/* epoll timeout (ms) until the earliest deadline or credit wait, -1 for
 * none. Connection deadlines only need 200 ms precision. */
static int next_timeout(struct vsock_mux *m)
{
	uint64_t now = mono_ms(), next = UINT64_MAX;
	struct vsock_conn *c;
	LIST_FOREACH(c, &m->all, all_link) {
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
	struct vsock_conn *c;
	while ((c = LIST_FIRST(&m->all))) {
		LIST_REMOVE(c, all_link);
		vsock_conn_free(c);
	}
	if (m->epfd >= 0)
		close(m->epfd);
	m->epfd = -1;
}

static void log_stats(struct vsock_mux *m)
{
	mux_logv(m, "packets to guest %llu, to host %llu; interrupts rx %llu tx %llu; "
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
		m->now_ms = mono_ms();
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
		mux_reap(m);
	}
}
