#include "listener.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "../common/unix_listen.h"
#include "../common/util.h"
#include "conn.h"
#include "worker.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

/* One listener's share on one worker: its own evconnlistener (on the
 * worker's base), back-off and budget pause. Only that worker touches it
 * while the loops run. */
struct lslot {
	struct listener *l;
	struct worker *w;
	struct evconnlistener *lev; /* owned; TCP: closes its own fd */
	struct event *backoff;      /* owned */
	struct event *budget_timer; /* owned: the budget's second ended */
	unsigned backoff_ms;
	bool budget_paused; /* the record budget was spent: see record.c */
};

/* TCP: a socket per worker, bound to the same address and port with
 * SO_REUSEPORT (the kernel spreads new connections). Unix: one socket,
 * accepted on worker 0 only, which hands each stream to the workers in
 * turn (worker_handoff). The list is built before the workers start and
 * read-only until they ended. */
struct listener {
	struct listener *next;
	struct proxy *px;
	bool http_proxy;
	int unix_fd;         /* owned: the shared unix socket, -1 for TCP */
	char unix_path[108]; /* unlinked on drain/close; "" for TCP */
	struct lslot slot[]; /* px->n_workers */
};

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct lslot *s = arg;
	struct proxy *px = s->l->px;
	(void)sa;
	(void)salen;
	s->backoff_ms = 0;
	enum conn_origin o =
		s->l->http_proxy ? ORIGIN_HTTP_PROXY : ORIGIN_TRANSPARENT;
	if (s->l->unix_fd >= 0)
		worker_handoff(px, fd, o); /* only worker 0 accepts here */
	else
		conn_accept(s->w, fd, o);
	/* New connections wait in the backlog until the budget's second
	 * ends, not until the next tick (which could idle the listener for
	 * most of a second more). */
	if (!proxy_budget_ok(px)) {
		evconnlistener_disable(lev);
		s->budget_paused = true;
		unsigned ms = proxy_budget_wait_ms(px);
		struct timeval tv = {(time_t)(ms / 1000),
				     (suseconds_t)(ms % 1000) * 1000};
		evtimer_add(s->budget_timer, &tv);
	}
}

static void budget_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lslot *s = arg;
	(void)fd;
	(void)what;
	listeners_resume(s->w);
}

void listeners_resume(struct worker *w)
{
	struct proxy *px = w->px;
	if (px->draining || !proxy_budget_ok(px))
		return;
	for (struct listener *l = px->listeners; l; l = l->next) {
		struct lslot *s = &l->slot[w->idx];
		if (s->lev && s->budget_paused) {
			s->budget_paused = false;
			evconnlistener_enable(s->lev);
		}
	}
}

/* A paused listener resumes only when a connection's worth of descriptors
 * is free (the client's, a resolver socket, the upstream's): accepting
 * with one free would take a client it cannot serve. With several
 * workers one may still race another to them; this makes that rare. */
#define FD_HEADROOM 3

static bool fds_free(void)
{
	int fd[FD_HEADROOM];
	unsigned n = 0;
	while (n < FD_HEADROOM &&
	       (fd[n] = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0)) >= 0)
		n++;
	for (unsigned i = 0; i < n; i++)
		close(fd[i]);
	return n == FD_HEADROOM;
}

void listeners_fd_freed(struct worker *w)
{
	struct proxy *px = w->px;
	if (px->draining)
		return;
	for (struct listener *l = px->listeners; l; l = l->next) {
		struct lslot *s = &l->slot[w->idx];
		if (!s->lev || !evtimer_pending(s->backoff, NULL) ||
		    !fds_free())
			continue;
		/* A descriptor just closed: the next accept may work. The
		 * back-off stays as it is, so a failing retry waits longer. */
		evtimer_del(s->backoff);
		if (!s->budget_paused)
			evconnlistener_enable(s->lev);
	}
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lslot *s = arg;
	(void)fd;
	(void)what;
	if (s->l->px->draining || s->budget_paused)
		return;
	if (!fds_free()) {
		struct timeval tv = {0, (suseconds_t)s->backoff_ms * 1000};
		tv.tv_sec = tv.tv_usec / 1000000;
		tv.tv_usec %= 1000000;
		evtimer_add(s->backoff, &tv);
		return;
	}
	evconnlistener_enable(s->lev);
}

/* EMFILE and friends: stop accepting for a while rather than spin on a
 * listener the kernel keeps reporting readable. */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct lslot *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return;
	evconnlistener_disable(lev);
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (s->backoff_ms > BACKOFF_MAX_MS)
		s->backoff_ms = BACKOFF_MAX_MS;
	fprintf(stderr, "sandbox-proxy: accept: %s; pausing %u ms\n",
		strerror(err), s->backoff_ms);
	struct timeval tv = {0, (suseconds_t)s->backoff_ms * 1000};
	tv.tv_sec = tv.tv_usec / 1000000;
	tv.tv_usec %= 1000000;
	evtimer_add(s->backoff, &tv);
}

static int open_unix(const struct listen_spec *ls, char *err, size_t errsz)
{
	int fd = unix_listen_0600(ls->path, 512, SOCK_NONBLOCK);
	if (fd == -EEXIST)
		fmt_buf(err, errsz, "%s exists and is not a socket", ls->path);
	else if (fd < 0)
		fmt_buf(err, errsz, "%s: %s", ls->spec, strerror(-fd));
	return fd;
}

/* port: ls->port for the first socket (first: its address is recorded
 * for the self-connection check), the port it got for the others (so
 * "tcp:HOST:0" gives every worker the same port). reuseport with
 * more than one worker: only sockets of the same user can join the
 * group (Linux), so no other user can take the proxy's connections. */
static int open_tcp(struct proxy *px, const struct listen_spec *ls,
		    uint16_t *port, bool first, bool reuseport, char *err,
		    size_t errsz,
		    char *shown, size_t shownsz)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char portstr[8];
	fmt_buf(portstr, sizeof(portstr), "%u", *port);
	int gr = getaddrinfo(ls->host, portstr, &hints, &res);
	if (gr != 0) {
		fmt_buf(err, errsz, "%s: %s", ls->spec, gai_strerror(gr));
		return -EINVAL;
	}
	_cleanup_close_ int fd = socket(res->ai_family,
					SOCK_STREAM | SOCK_NONBLOCK |
						SOCK_CLOEXEC,
					0);
	int one = 1;
	/* TCP_NODELAY on the listening socket: Linux copies it to every
	 * socket accepted from it, so conn_accept() needs no setsockopt per
	 * connection (the relay must not hold a small segment back for an
	 * ACK). */
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
				     sizeof(one)) < 0) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, 1024) < 0) {
		int e = errno;
		freeaddrinfo(res);
		fmt_buf(err, errsz, "%s: %s", ls->spec, strerror(e));
		return -e;
	}
	freeaddrinfo(res);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		fmt_buf(err, errsz, "%s: getsockname: %s", ls->spec,
			strerror(errno));
		return -errno;
	}
	struct self_addr self = {0};
	if (ip_from_sockaddr(&ss, &self.addr, &self.port) == 0 && first &&
	    px->n_self < PROXY_MAX_SELF) {
		static const uint8_t zero[16];
		self.wildcard = memcmp(self.addr.b, zero, 16) == 0;
		px->self[px->n_self++] = self;
	}
	*port = self.port;
	char txt[IP_STR_MAX];
	ip_format(&self.addr, txt);
	fmt_buf(shown, shownsz,
		self.addr.family == AF_INET6 ? "tcp:[%s]:%u" : "tcp:%s:%u",
		txt, self.port);
	return take_fd(&fd);
}

static void slot_free(struct lslot *s)
{
	if (s->lev)
		evconnlistener_free(s->lev);
	if (s->backoff)
		event_free(s->backoff);
	if (s->budget_timer)
		event_free(s->budget_timer);
	s->lev = NULL;
	s->backoff = s->budget_timer = NULL;
}

static void listener_free(struct listener *l)
{
	for (unsigned i = 0; i < l->px->n_workers; i++)
		slot_free(&l->slot[i]);
	if (l->unix_fd >= 0)
		close(l->unix_fd);
	if (l->unix_path[0])
		unlink(l->unix_path);
	free(l);
}

/* The worker's share of l on fd (TCP: the slot owns fd; unix: l does). */
static int slot_open(struct listener *l, unsigned i, int fd)
{
	struct lslot *s = &l->slot[i];
	struct worker *w = &l->px->workers[i];
	s->l = l;
	s->w = w;
	s->lev = evconnlistener_new(
		w->base, accept_cb, s,
		(l->unix_fd < 0 ? LEV_OPT_CLOSE_ON_FREE : 0) |
			LEV_OPT_CLOSE_ON_EXEC,
		-1, fd);
	if (!s->lev) {
		if (l->unix_fd < 0)
			close(fd);
		return -ENOMEM;
	}
	s->backoff = evtimer_new(w->base, backoff_cb, s);
	s->budget_timer = evtimer_new(w->base, budget_timer_cb, s);
	if (!s->backoff || !s->budget_timer)
		return -ENOMEM;
	evconnlistener_set_error_cb(s->lev, accept_error_cb);
	return 0;
}

int listener_open(struct proxy *px, const struct listen_spec *ls, char *err,
		  size_t errsz)
{
	char shown[160];
	unsigned n = px->n_workers;
	struct listener *l =
		calloc(1, sizeof(*l) + n * sizeof(struct lslot));
	if (!l) {
		fmt_buf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	l->px = px;
	l->http_proxy = ls->http_proxy;
	l->unix_fd = -1;
	if (ls->type == LISTEN_UNIX) {
		int fd = open_unix(ls, err, errsz);
		if (fd < 0) {
			free(l);
			return fd;
		}
		l->unix_fd = fd;
		memcpy(l->unix_path, ls->path, strlen(ls->path) + 1);
		fmt_buf(shown, sizeof(shown), "unix:%s", ls->path);
	}
	uint16_t port = ls->port;
	/* A unix socket is accepted on worker 0 only, which hands each
	 * stream on (worker_handoff). */
	unsigned n_slots = l->unix_fd >= 0 ? 1 : n;
	for (unsigned i = 0; i < n_slots; i++) {
		int fd = l->unix_fd;
		if (fd < 0) {
			fd = open_tcp(px, ls, &port, i == 0, n > 1, err, errsz,
				      shown, sizeof(shown));
			if (fd < 0) {
				listener_free(l);
				return fd;
			}
		}
		if (slot_open(l, i, fd) < 0) {
			listener_free(l);
			fmt_buf(err, errsz, "%s: cannot create listener",
				ls->spec);
			return -ENOMEM;
		}
	}
	l->next = px->listeners;
	px->listeners = l;
	fprintf(stderr, "sandbox-proxy: listening on %s (%s)\n", shown,
		ls->http_proxy ? "http-proxy" : "transparent");
	return 0;
}

static void drain_on(struct worker *w, void *arg)
{
	(void)arg;
	for (struct listener *l = w->px->listeners; l; l = l->next)
		slot_free(&l->slot[w->idx]);
}

void listeners_drain(struct proxy *px)
{
	worker_call_all(px, drain_on, NULL);
	/* Every worker let go of the unix sockets: close them now, so new
	 * connections are refused rather than left in a backlog. */
	for (struct listener *l = px->listeners; l; l = l->next) {
		if (l->unix_fd >= 0)
			close(l->unix_fd);
		l->unix_fd = -1;
		if (l->unix_path[0])
			unlink(l->unix_path);
		l->unix_path[0] = '\0';
	}
}

void listeners_close(struct proxy *px)
{
	while (px->listeners) {
		struct listener *l = px->listeners;
		px->listeners = l->next;
		listener_free(l);
	}
}
