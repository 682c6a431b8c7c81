#include "listener.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "../common/unix_listen.h"
#include "../common/util.h"
#include "conn.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

struct listener {
	struct listener *next;
	struct proxy *px;
	struct evconnlistener *lev; /* owned; closes the fd */
	struct event *backoff;      /* owned */
	struct event *budget_timer; /* owned: the budget's second ended */
	unsigned backoff_ms;
	bool budget_paused; /* the record budget was spent: see record.c */
	bool http_proxy;
	char unix_path[108]; /* unlinked on close; "" for TCP */
};

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	(void)lev;
	(void)sa;
	(void)salen;
	l->backoff_ms = 0;
	conn_accept(l->px, fd,
		    l->http_proxy ? ORIGIN_HTTP_PROXY : ORIGIN_TRANSPARENT);
	/* New connections wait in the backlog until the budget's second
	 * ends, not until the next tick (which could idle the listener for
	 * most of a second more). */
	if (!proxy_budget_ok(l->px)) {
		evconnlistener_disable(lev);
		l->budget_paused = true;
		unsigned ms = proxy_budget_wait_ms(l->px);
		struct timeval tv = {(time_t)(ms / 1000),
				     (suseconds_t)(ms % 1000) * 1000};
		evtimer_add(l->budget_timer, &tv);
	}
}

static void budget_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	(void)fd;
	(void)what;
	listeners_resume(l->px);
}

void listeners_resume(struct proxy *px)
{
	if (px->draining || !proxy_budget_ok(px))
		return;
	for (struct listener *l = px->listeners; l; l = l->next) {
		if (l->budget_paused) {
			l->budget_paused = false;
			evconnlistener_enable(l->lev);
		}
	}
}

void listeners_fd_freed(struct proxy *px)
{
	if (px->draining)
		return;
	for (struct listener *l = px->listeners; l; l = l->next) {
		if (!evtimer_pending(l->backoff, NULL))
			continue;
		/* A descriptor just closed: the next accept may work. The
		 * back-off stays as it is, so a failing retry waits longer. */
		evtimer_del(l->backoff);
		if (!l->budget_paused)
			evconnlistener_enable(l->lev);
	}
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	(void)fd;
	(void)what;
	if (!l->px->draining && !l->budget_paused)
		evconnlistener_enable(l->lev);
}

/* EMFILE and friends: stop accepting for a while rather than spin on a
 * listener the kernel keeps reporting readable. */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return;
	evconnlistener_disable(lev);
	l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (l->backoff_ms > BACKOFF_MAX_MS)
		l->backoff_ms = BACKOFF_MAX_MS;
	fprintf(stderr, "sandbox-proxy: accept: %s; pausing %u ms\n",
		strerror(err), l->backoff_ms);
	struct timeval tv = {0, (suseconds_t)l->backoff_ms * 1000};
	tv.tv_sec = tv.tv_usec / 1000000;
	tv.tv_usec %= 1000000;
	evtimer_add(l->backoff, &tv);
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

static int open_tcp(struct proxy *px, const struct listen_spec *ls,
		    char *err, size_t errsz, char *shown, size_t shownsz)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	char port[8];
	fmt_buf(port, sizeof(port), "%u", ls->port);
	int gr = getaddrinfo(ls->host, port, &hints, &res);
	if (gr != 0) {
		fmt_buf(err, errsz, "%s: %s", ls->spec, gai_strerror(gr));
		return -EINVAL;
	}
	_cleanup_close_ int fd = socket(res->ai_family,
					SOCK_STREAM | SOCK_NONBLOCK |
						SOCK_CLOEXEC,
					0);
	int one = 1;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
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
	if (ip_from_sockaddr(&ss, &self.addr, &self.port) == 0 &&
	    px->n_self < PROXY_MAX_SELF) {
		static const uint8_t zero[16];
		self.wildcard = memcmp(self.addr.b, zero, 16) == 0;
		px->self[px->n_self++] = self;
	}
	char txt[IP_STR_MAX];
	ip_format(&self.addr, txt);
	fmt_buf(shown, shownsz,
		self.addr.family == AF_INET6 ? "tcp:[%s]:%u" : "tcp:%s:%u",
		txt, self.port);
	return take_fd(&fd);
}

int listener_open(struct proxy *px, const struct listen_spec *ls, char *err,
		  size_t errsz)
{
	char shown[160];
	int fd;
	if (ls->type == LISTEN_UNIX) {
		fd = open_unix(ls, err, errsz);
		fmt_buf(shown, sizeof(shown), "unix:%s", ls->path);
	} else {
		fd = open_tcp(px, ls, err, errsz, shown, sizeof(shown));
	}
	if (fd < 0)
		return fd;
	struct listener *l = calloc(1, sizeof(*l));
	if (!l) {
		close(fd);
		fmt_buf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	l->px = px;
	l->http_proxy = ls->http_proxy;
	if (ls->type == LISTEN_UNIX)
		memcpy(l->unix_path, ls->path, strlen(ls->path) + 1);
	l->lev = evconnlistener_new(px->base, accept_cb, l,
				    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
				    -1, fd);
	l->backoff = evtimer_new(px->base, backoff_cb, l);
	l->budget_timer = evtimer_new(px->base, budget_timer_cb, l);
	if (!l->lev || !l->backoff || !l->budget_timer) {
		if (l->lev)
			evconnlistener_free(l->lev);
		else
			close(fd);
		if (l->backoff)
			event_free(l->backoff);
		if (l->budget_timer)
			event_free(l->budget_timer);
		free(l);
		fmt_buf(err, errsz, "%s: cannot create listener", ls->spec);
		return -ENOMEM;
	}
	evconnlistener_set_error_cb(l->lev, accept_error_cb);
	l->next = px->listeners;
	px->listeners = l;
	fprintf(stderr, "sandbox-proxy: listening on %s (%s)\n", shown,
		ls->http_proxy ? "http-proxy" : "transparent");
	return 0;
}

void listeners_close(struct proxy *px)
{
	while (px->listeners) {
		struct listener *l = px->listeners;
		px->listeners = l->next;
		evconnlistener_free(l->lev);
		event_free(l->backoff);
		event_free(l->budget_timer);
		if (l->unix_path[0])
			unlink(l->unix_path);
		free(l);
	}
}
