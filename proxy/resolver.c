/* c-ares on the proxy's libevent loop.
 *
 * c-ares tells us which sockets it wants watched through the sock-state
 * callback (one libevent event per fd) and how long until its next timeout
 * (one timer, re-armed after every call into c-ares).
 *
 * User callbacks never run inside c-ares: the c-ares completion only copies
 * the result into the query and activates the query's own event, which then
 * calls the user. That is what makes the callback always asynchronous (c-ares
 * may complete inside ares_getaddrinfo, e.g. on ENOMEM), and what makes
 * resolver_cancel and resolver_free safe from inside any user callback.
 *
 * Query life: QUEUED (waiting for an in-flight slot, on r->queued) ->
 * PENDING (owned by c-ares; cancel only marks it, the c-ares completion frees
 * it) -> READY (result stored, event active, on r->ready)
 * -> DELIVERING (off every list, user callback running; freed after it
 * returns). A query is never touched after the user callback returns.
 */
#include "resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "../common/util.h"
#include "../policy/policy.h"

/* 2 s per try, 2 tries. c-ares doubles the timeout on each retry to the same
 * server, so an unresponsive server fails after about 2 + 4 = 6 s. */
#define RESOLVER_TIMEOUT_MS 2000
#define RESOLVER_TRIES 2
#define RESOLVER_TTL_MAX 300
#define RESOLVER_TTL_MIN 1
/* Lookups handed to c-ares at once (each is an A and an AAAA query); the
 * rest wait in FIFO order. A burst of hundreds of queries on one UDP socket
 * overflows socket buffers on loopback and turns into timeouts. */
#define RESOLVER_MAX_INFLIGHT 64

struct sock_watch {
	ares_socket_t fd;
	struct event *ev; /* owned */
	struct sock_watch *next;
};

enum query_state { Q_QUEUED, Q_PENDING, Q_CANCELLED, Q_READY, Q_DELIVERING };

struct resolver_query {
	struct resolver *r;
	enum query_state state;
	resolver_cb cb;
	void *arg;
	struct event *done; /* owned; activated when the result is stored */
	TAILQ_ENTRY(resolver_query) link; /* on r->queued or r->ready */
	char *name; /* owned while QUEUED */
	enum resolve_status st;
	struct ip_addr addrs[RESOLVE_MAX_ADDRS];
	size_t n;
	uint32_t ttl;
};

struct resolver {
	struct event_base *base;
	ares_channel ch;
	bool ch_ok;
	bool destroying;
	struct event *timer;        /* owned */
	struct sock_watch *watches; /* owned list */
	TAILQ_HEAD(, resolver_query) ready;  /* owned list of READY queries */
	TAILQ_HEAD(, resolver_query) queued; /* owned FIFO, QUEUED */
	unsigned inflight; /* PENDING and CANCELLED queries c-ares holds */
};

static void pump(struct resolver *r);

static void rearm_timer(struct resolver *r)
{
	struct timeval tv;
	if (r->destroying)
		return;
	if (ares_timeout(r->ch, NULL, &tv))
		evtimer_add(r->timer, &tv);
	else
		evtimer_del(r->timer);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	(void)fd;
	(void)what;
	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	pump(r);
	rearm_timer(r);
}

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;
	ares_process_fd(r->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	pump(r);
	rearm_timer(r);
}

/* c-ares opens, closes or changes interest in a socket. Freeing the event
 * of the fd being processed is fine: libevent does not touch an event after
 * its callback has been entered. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable,
			  int writable)
{
	struct resolver *r = data;
	struct sock_watch **pp = &r->watches, *w;
	while (*pp && (*pp)->fd != fd)
		pp = &(*pp)->next;
	w = *pp;
	if (w) {
		event_del(w->ev);
		if (!readable && !writable) {
			*pp = w->next;
			event_free(w->ev);
			free(w);
			return;
		}
	} else {
		if (!readable && !writable)
			return;
		w = calloc(1, sizeof(*w));
		if (!w)
			return; /* the query then times out: fail closed */
		w->fd = fd;
		w->ev = event_new(r->base, fd, EV_READ | EV_PERSIST, on_sock, r);
		if (!w->ev) {
			free(w);
			return;
		}
		w->next = r->watches;
		r->watches = w;
	}
	short what = EV_PERSIST | (readable ? EV_READ : 0) |
		     (writable ? EV_WRITE : 0);
	event_assign(w->ev, r->base, fd, what, on_sock, r);
	event_add(w->ev, NULL);
}

static void ready_unlink(struct resolver_query *q)
{
	TAILQ_REMOVE(&q->r->ready, q, link);
}

static void queued_unlink(struct resolver_query *q)
{
	TAILQ_REMOVE(&q->r->queued, q, link);
}

static void query_free(struct resolver_query *q)
{
	if (q->done)
		event_free(q->done);
	free(q->name);
	free(q);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct resolver_query *q = arg;
	(void)fd;
	(void)what;
	ready_unlink(q);
	q->state = Q_DELIVERING;
	q->cb(q->arg, q->st, q->addrs, q->n, q->ttl);
	query_free(q);
}

static void add_addr(struct resolver_query *q, const struct ip_addr *a)
{
	for (size_t i = 0; i < q->n; i++)
		if (ip_equal(&q->addrs[i], a))
			return;
	if (q->n < RESOLVE_MAX_ADDRS)
		q->addrs[q->n++] = *a;
}

static void take_result(struct resolver_query *q, struct ares_addrinfo *res)
{
	long ttl = RESOLVER_TTL_MAX;
	/* Two passes put IPv4 first whatever order c-ares sorted them in. */
	static const int families[] = {AF_INET, AF_INET6};
	for (size_t f = 0; f < ARRAY_SIZE(families); f++) {
		for (struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next) {
			if (n->ai_family != families[f] || !n->ai_addr ||
			    n->ai_addrlen > sizeof(struct sockaddr_storage))
				continue;
			struct sockaddr_storage ss;
			struct ip_addr a;
			memset(&ss, 0, sizeof(ss));
			memcpy(&ss, n->ai_addr, n->ai_addrlen);
			if (ip_from_sockaddr(&ss, &a, NULL) < 0)
				continue;
			add_addr(q, &a);
			if (n->ai_ttl < ttl)
				ttl = n->ai_ttl;
		}
	}
	for (struct ares_addrinfo_cname *c = res->cnames; c; c = c->next)
		if (c->ttl < ttl)
			ttl = c->ttl;
	if (ttl < RESOLVER_TTL_MIN)
		ttl = RESOLVER_TTL_MIN;
	q->ttl = (uint32_t)ttl;
	q->st = q->n ? RESOLVE_OK : RESOLVE_NODATA;
}

static void ares_done(void *arg, int status, int timeouts,
		      struct ares_addrinfo *res)
{
	struct resolver_query *q = arg;
	(void)timeouts;
	q->r->inflight--;
	if (q->state == Q_CANCELLED || q->r->destroying) {
		if (res)
			ares_freeaddrinfo(res);
		query_free(q);
		return;
	}
	if (status == ARES_SUCCESS && res)
		take_result(q, res);
	else if (status == ARES_ENOTFOUND)
		q->st = RESOLVE_NXDOMAIN;
	else if (status == ARES_ENODATA)
		q->st = RESOLVE_NODATA;
	else
		q->st = RESOLVE_FAIL;
	if (res)
		ares_freeaddrinfo(res);
	q->state = Q_READY;
	TAILQ_INSERT_HEAD(&q->r->ready, q, link);
	event_active(q->done, EV_TIMEOUT, 0);
}

/* "A.B.C.D:PORT" or "[V6]:PORT", strictly: c-ares' own parser accepts
 * more (no port, hostnames ignored) and we want a typo to be an error. */
static int check_server(const char *s)
{
	const char *host = s, *colon;
	size_t hlen;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL;
		hlen = (size_t)(colon - s);
	}
	struct ip_addr a;
	if (!ip_parse_strict(host, hlen, &a))
		return -EINVAL;
	if ((*s == '[') != (a.family == AF_INET6))
		return -EINVAL;
	const char *p = colon + 1;
	unsigned long port = 0;
	if (!*p || strlen(p) > 5)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port == 0 || port > 65535)
		return -EINVAL;
	return 0;
}

static int ares_to_errno(int st)
{
	return st == ARES_ENOMEM ? -ENOMEM : -EINVAL;
}

static int library_init(void)
{
	static bool done;
	if (done)
		return 0;
	int st = ares_library_init(ARES_LIB_INIT_ALL);
	if (st != ARES_SUCCESS)
		return ares_to_errno(st);
	done = true;
	return 0;
}

struct resolver *resolver_new(struct event_base *base, const char *server,
			      int *err)
{
	int st, e;
	if ((e = library_init()) < 0) {
		*err = e;
		return NULL;
	}
	if (server && (e = check_server(server)) < 0) {
		*err = e;
		return NULL;
	}
	struct resolver *r = calloc(1, sizeof(*r));
	if (!r) {
		*err = -ENOMEM;
		return NULL;
	}
	r->base = base;
	TAILQ_INIT(&r->ready);
	TAILQ_INIT(&r->queued);
	r->timer = evtimer_new(base, on_timer, r);
	if (!r->timer) {
		free(r);
		*err = -ENOMEM;
		return NULL;
	}

	struct ares_options o;
	memset(&o, 0, sizeof(o));
	/* DNS only ("b"): the host's /etc/hosts is not the guest's business.
	 * No search domains: the guest's names are looked up as given. */
	char lookups[] = "b";
	o.sock_state_cb = sock_state_cb;
	o.sock_state_cb_data = r;
	o.timeout = RESOLVER_TIMEOUT_MS;
	o.tries = RESOLVER_TRIES;
	o.lookups = lookups;
	o.ndomains = 0;
	o.domains = NULL;
	o.flags = ARES_FLAG_NOSEARCH;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
		   ARES_OPT_TRIES | ARES_OPT_LOOKUPS | ARES_OPT_DOMAINS |
		   ARES_OPT_FLAGS;
	st = ares_init_options(&r->ch, &o, mask);
	if (st != ARES_SUCCESS) {
		event_free(r->timer);
		free(r);
		*err = ares_to_errno(st);
		return NULL;
	}
	r->ch_ok = true;
	if (server) {
		st = ares_set_servers_ports_csv(r->ch, server);
		if (st != ARES_SUCCESS) {
			resolver_free(r);
			*err = ares_to_errno(st);
			return NULL;
		}
	}
	return r;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	/* c-ares completes every pending query with ARES_EDESTRUCTION here;
	 * ares_done sees destroying and frees them without a callback. */
	r->destroying = true;
	if (r->ch_ok)
		ares_destroy(r->ch);
	struct resolver_query *q;
	while ((q = TAILQ_FIRST(&r->ready))) {
		ready_unlink(q);
		query_free(q);
	}
	while ((q = TAILQ_FIRST(&r->queued))) {
		queued_unlink(q);
		query_free(q);
	}
	while (r->watches) {
		struct sock_watch *w = r->watches;
		r->watches = w->next;
		event_free(w->ev);
		free(w);
	}
	event_free(r->timer);
	free(r);
}

static void start(struct resolver_query *q)
{
	struct ares_addrinfo_hints hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	q->state = Q_PENDING;
	q->r->inflight++;
	/* May call ares_done before returning; that only schedules q->done. */
	ares_getaddrinfo(q->r->ch, q->name, NULL, &hints, ares_done, q);
}

static void pump(struct resolver *r)
{
	bool started = false;
	struct resolver_query *q;
	while ((q = TAILQ_FIRST(&r->queued)) &&
	       r->inflight < RESOLVER_MAX_INFLIGHT && !r->destroying) {
		queued_unlink(q);
		start(q);
		started = true;
	}
	if (started)
		rearm_timer(r);
}

struct resolver_query *resolver_lookup(struct resolver *r, const char *name,
				       resolver_cb cb, void *arg)
{
	struct resolver_query *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->state = Q_QUEUED;
	q->name = strdup(name);
	q->done = event_new(r->base, -1, 0, on_done, q);
	if (!q->name || !q->done) {
		query_free(q);
		return NULL;
	}
	/* The one name that stands for the host's loopback (policy.h): it
	 * never goes upstream. Callers ask only after the policy allowed
	 * it, and the classifier lets loopback through only for it on an
	 * open host port (upstream.c). */
	if (!strcmp(name, POLICY_HOST_INTERNAL)) {
		struct ip_addr v4 = {.family = AF_INET, .b = {127, 0, 0, 1}};
		struct ip_addr v6 = {.family = AF_INET6, .b = {[15] = 1}};
		add_addr(q, &v4);
		add_addr(q, &v6);
		q->st = RESOLVE_OK;
		q->ttl = RESOLVER_TTL_MIN;
		q->state = Q_READY;
		TAILQ_INSERT_HEAD(&r->ready, q, link);
		event_active(q->done, EV_TIMEOUT, 0);
		return q;
	}
	TAILQ_INSERT_TAIL(&r->queued, q, link);
	pump(r);
	return q;
}

void resolver_cancel(struct resolver_query *q)
{
	if (!q)
		return;
	switch (q->state) {
	case Q_QUEUED:
		queued_unlink(q);
		query_free(q);
		break;
	case Q_PENDING:
		q->state = Q_CANCELLED; /* c-ares still holds it */
		break;
	case Q_READY:
		ready_unlink(q);
		query_free(q);
		break;
	case Q_CANCELLED:
	case Q_DELIVERING:
		break;
	}
}

const char *resolve_status_str(enum resolve_status st)
{
	switch (st) {
	case RESOLVE_OK:
		return "ok";
	case RESOLVE_NXDOMAIN:
		return "nxdomain";
	case RESOLVE_NODATA:
		return "nodata";
	case RESOLVE_FAIL:
		return "fail";
	case RESOLVE_CANCELLED:
		return "cancelled";
	}
	return "unknown";
}
