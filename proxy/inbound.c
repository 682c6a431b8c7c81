/* Published ports: listeners on the host, each connection carried to the
 * guest through the bridge (proxy/inbound.h). */
#include "inbound.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../auditlog/audit.h"
#include "../common/clock.h"
#include "../common/util.h"
#include "../parse/inbound.h"
#include "proxy.h"

/* Bytes buffered towards one side before the other is no longer read. */
#define INBOUND_HIGH (256u * 1024)
#define INBOUND_LOW (INBOUND_HIGH / 2)
/* The bridge's answer to CONNECT: "OK <port>\n" (docs/vsock.md). */
#define INBOUND_REPLY_MAX 64

struct inbound_port {
	struct inbound_port *next;
	struct proxy *px;
	struct publish_spec spec;
	char canon[80];
	struct evconnlistener *lev[2]; /* owned; v4 and v6, either may be NULL */
	char addr_text[2][IP_STR_MAX];
};

enum side { CLIENT = 0, GUEST = 1 };

struct inbound_conn {
	struct inbound_conn *next;
	struct proxy *px;
	uint64_t id;
	struct bufferevent *bev[2]; /* owned */
	bool relaying;              /* the bridge said OK */
	bool eof[2];                /* side reached EOF */
	bool shut[2];               /* SHUT_WR sent to side */
	uint64_t bytes[2];          /* read from side */
	uint64_t start_ms;
	int first_eof;              /* side that ended first, -1: none */
	char peer[IP_STR_MAX + 8];
	char listen_addr[IP_STR_MAX];
	uint16_t host_port, guest_port;
};

struct inbound {
	struct inbound_port *ports;
	struct inbound_conn *conns;
	size_t n_conns; /* at most cfg->max_conns, like the egress side */
};

static struct inbound *state(struct proxy *px)
{
	if (!px->inbound)
		px->inbound = calloc(1, sizeof(*px->inbound));
	return px->inbound;
}

static void conn_unlink(struct inbound_conn *c)
{
	struct inbound *in = c->px->inbound;
	for (struct inbound_conn **pp = &in->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			in->n_conns--;
			return;
		}
}

/* The one close path: record, free. */
static void conn_end(struct inbound_conn *c, const char *reason)
{
	char why[160];
	if (!reason) {
		if (c->first_eof == GUEST && c->bytes[GUEST] == 0)
			fmt_buf(why, sizeof(why),
				"closed by the guest without a byte (nothing "
				"listening on guest port %u?)",
				c->guest_port);
		else
			fmt_buf(why, sizeof(why), "closed by the %s",
				c->first_eof == GUEST ? "guest"
						      : "host client");
		reason = why;
	}
	struct audit_record r;
	audit_record_init(&r);
	r.event = "inbound";
	r.conn = c->id;
	r.proto = "tcp";
	r.port = c->guest_port;
	r.addr = c->listen_addr;
	r.host_port = c->host_port;
	r.peer = c->peer;
	r.decision = "allow";
	r.reason = reason;
	r.bytes_up = (int64_t)c->bytes[GUEST];
	r.bytes_down = (int64_t)c->bytes[CLIENT];
	r.duration_ms = (int64_t)(mono_ms() - c->start_ms);
	proxy_audit(c->px, &r);
	conn_unlink(c);
	for (int i = 0; i < 2; i++)
		if (c->bev[i])
			bufferevent_free(c->bev[i]);
	free(c);
}

static int side_of(struct inbound_conn *c, struct bufferevent *bev)
{
	return bev == c->bev[CLIENT] ? CLIENT : GUEST;
}

/* Pass side s's EOF on once everything it sent has been written. */
static void maybe_shutdown(struct inbound_conn *c, int s)
{
	int o = !s;
	if (!c->eof[s] || c->shut[o] ||
	    evbuffer_get_length(bufferevent_get_output(c->bev[o])))
		return;
	shutdown(bufferevent_getfd(c->bev[o]), SHUT_WR);
	c->shut[o] = true;
}

static bool done(struct inbound_conn *c)
{
	return c->shut[CLIENT] && c->shut[GUEST];
}

static void move(struct inbound_conn *c, int s)
{
	int o = !s;
	struct evbuffer *in = bufferevent_get_input(c->bev[s]);
	struct evbuffer *out = bufferevent_get_output(c->bev[o]);
	c->bytes[s] += evbuffer_get_length(in);
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= INBOUND_HIGH)
		bufferevent_disable(c->bev[s], EV_READ);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct inbound_conn *c = arg;
	int s = side_of(c, bev);
	if (s == GUEST && !c->relaying) {
		struct evbuffer *in = bufferevent_get_input(bev);
		size_t n = 0;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
		if (!line) {
			if (evbuffer_get_length(in) > INBOUND_REPLY_MAX)
				conn_end(c, "bad answer from the vsock bridge");
			return;
		}
		bool okay = strncmp(line, "OK ", 3) == 0;
		free(line);
		if (!okay) {
			conn_end(c, "the vsock bridge refused the connection");
			return;
		}
		c->relaying = true;
		bufferevent_set_timeouts(bev, NULL, NULL);
		bufferevent_enable(c->bev[CLIENT], EV_READ);
	}
	move(c, s);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct inbound_conn *c = arg;
	int o = side_of(c, bev), s = !o;
	if (c->relaying && !c->eof[s])
		bufferevent_enable(c->bev[s], EV_READ);
	maybe_shutdown(c, s);
	if (done(c))
		conn_end(c, NULL);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct inbound_conn *c = arg;
	int s = side_of(c, bev);
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_TIMEOUT) {
		conn_end(c, "the guest did not accept in time");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		char why[160];
		int e = EVUTIL_SOCKET_ERROR();
		if (s == GUEST && !c->relaying &&
		    (e == ECONNRESET || e == EPIPE))
			fmt_buf(why, sizeof(why),
				"the guest refused the connection");
		else if (s == GUEST && !c->relaying)
			fmt_buf(why, sizeof(why),
				"vsock bridge unreachable: %s", strerror(e));
		else
			fmt_buf(why, sizeof(why), "%s error: %s",
				s == GUEST ? "guest" : "host client",
				strerror(e));
		conn_end(c, why);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		if (s == GUEST && !c->relaying) {
			conn_end(c, "the guest refused the connection");
			return;
		}
		if (c->first_eof < 0)
			c->first_eof = s;
		c->eof[s] = true;
		move(c, s);
		maybe_shutdown(c, s);
		if (done(c))
			conn_end(c, NULL);
	}
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct inbound_port *p = arg;
	struct proxy *px = p->px;
	(void)salen;
	/* A connection is recorded when it ends; while the log cannot be
	 * written none is taken (fail closed, like every other path). */
	if (px->draining || !proxy_may_act(px) ||
	    px->inbound->n_conns >= px->cfg->max_conns) {
		close(fd);
		return;
	}
	struct inbound_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->px = px;
	c->id = ++px->next_conn_id;
	c->first_eof = -1;
	c->start_ms = mono_ms();
	c->guest_port = p->spec.guest_port;
	c->host_port = p->spec.host_port;
	fmt_buf(c->listen_addr, sizeof(c->listen_addr), "%s",
		p->addr_text[lev == p->lev[1]]);
	struct ip_addr ip;
	uint16_t pport = 0;
	char t[IP_STR_MAX] = "?";
	if (ip_from_sockaddr((struct sockaddr_storage *)sa, &ip, &pport) == 0)
		ip_format(&ip, t);
	fmt_buf(c->peer, sizeof(c->peer),
		ip.family == AF_INET6 ? "[%s]:%u" : "%s:%u", t, pport);
	c->next = px->inbound->conns;
	px->inbound->conns = c;
	px->inbound->n_conns++;

	evutil_make_socket_nonblocking(fd);
	c->bev[CLIENT] = bufferevent_socket_new(px->base, fd,
						BEV_OPT_CLOSE_ON_FREE);
	c->bev[GUEST] = bufferevent_socket_new(px->base, -1,
					       BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev[CLIENT] || !c->bev[GUEST]) {
		if (!c->bev[CLIENT])
			close(fd);
		conn_end(c, "out of memory");
		return;
	}
	for (int i = 0; i < 2; i++) {
		bufferevent_setcb(c->bev[i], on_read, on_write, on_event, c);
		bufferevent_setwatermark(c->bev[i], EV_WRITE, INBOUND_LOW, 0);
	}
	/* The client is read only once the guest accepted. */
	bufferevent_disable(c->bev[CLIENT], EV_READ);
	bufferevent_enable(c->bev[GUEST], EV_READ);
	struct timeval tv = {.tv_sec = px->cfg->connect_timeout};
	bufferevent_set_timeouts(c->bev[GUEST], &tv, NULL);

	struct sockaddr_un un = {.sun_family = AF_UNIX};
	fmt_buf(un.sun_path, sizeof(un.sun_path), "%s", px->cfg->guest_connect);
	uint8_t hdr[INBOUND_HEADER_LEN];
	char line[32];
	fmt_buf(line, sizeof(line), "CONNECT %u\n", INBOUND_VSOCK_PORT);
	struct evbuffer *out = bufferevent_get_output(c->bev[GUEST]);
	if (inbound_header_encode(c->guest_port, hdr) != 0 ||
	    evbuffer_add(out, line, strlen(line)) != 0 ||
	    evbuffer_add(out, hdr, sizeof(hdr)) != 0) {
		conn_end(c, "out of memory");
		return;
	}
	if (bufferevent_socket_connect(c->bev[GUEST], (struct sockaddr *)&un,
				       sizeof(un)) < 0) {
		char why[160];
		fmt_buf(why, sizeof(why), "vsock bridge unreachable: %s",
			strerror(errno));
		conn_end(c, why);
	}
}

static void port_free(struct inbound_port *p)
{
	for (int i = 0; i < 2; i++)
		if (p->lev[i])
			evconnlistener_free(p->lev[i]);
	free(p);
}

/* Bind family:addr:port. 0 or -errno. */
static int bind_one(struct inbound_port *p, int i, int family,
		    const uint8_t *addr)
{
	struct ip_addr ip = {.family = family};
	memcpy(ip.b, addr, family == AF_INET ? 4 : 16);
	ip_format(&ip, p->addr_text[i]);
	struct sockaddr_storage ss;
	size_t len = ip_to_sockaddr(&ip, p->spec.host_port, &ss);
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) < 0 ||
	    listen(fd, 128) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	p->lev[i] = evconnlistener_new(p->px->base, on_accept, p,
				       LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (!p->lev[i]) {
		close(fd);
		return -ENOMEM;
	}
	return 0;
}

static struct inbound_port *find(struct inbound *in,
				 const struct publish_spec *s,
				 struct inbound_port ***prev)
{
	for (struct inbound_port **pp = &in->ports; *pp; pp = &(*pp)->next) {
		const struct publish_spec *t = &(*pp)->spec;
		if (t->host_port == s->host_port && t->has_addr == s->has_addr &&
		    (!s->has_addr || (t->family == s->family &&
				      !memcmp(t->addr, s->addr, 16)))) {
			if (prev)
				*prev = pp;
			return *pp;
		}
	}
	return NULL;
}

int inbound_add(struct proxy *px, const char *spec, char *err, size_t errsz)
{
	struct inbound *in = state(px);
	if (!in) {
		fmt_buf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	if (!px->cfg->guest_connect) {
		fmt_buf(err, errsz, "publish %s: no way to the guest (give "
			"--guest-connect PATH)", spec);
		return -EINVAL;
	}
	struct inbound_port *p = calloc(1, sizeof(*p));
	if (!p) {
		fmt_buf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	p->px = px;
	const char *why = NULL;
	if (publish_spec_parse(spec, &p->spec, &why) < 0) {
		fmt_buf(err, errsz, "publish '%s': %s", spec, why);
		free(p);
		return -EINVAL;
	}
	publish_spec_format(&p->spec, p->canon, sizeof(p->canon));
	if (find(in, &p->spec, NULL)) {
		fmt_buf(err, errsz, "publish %s: host port %u is already "
			"published", p->canon, p->spec.host_port);
		free(p);
		return -EEXIST;
	}
	int r;
	if (p->spec.has_addr) {
		r = bind_one(p, 0, p->spec.family, p->spec.addr);
		if (r < 0)
			goto fail;
	} else {
		static const uint8_t v4[4] = {127, 0, 0, 1};
		static const uint8_t v6[16] = {[15] = 1};
		r = bind_one(p, 0, AF_INET, v4);
		if (r < 0)
			goto fail;
		r = bind_one(p, 1, AF_INET6, v6);
		/* A host without IPv6 loopback still publishes on 127.0.0.1. */
		if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT)
			r = 0;
		else if (r < 0)
			goto fail;
	}
	p->next = in->ports;
	in->ports = p;
	return 0;
fail:;
	int i = p->lev[0] ? 1 : 0;
	const char *a = p->addr_text[i];
	bool v6 = strchr(a, ':') != NULL;
	fmt_buf(err, errsz, "publish %s: cannot listen on %s%s%s:%u: %s%s",
		p->canon, v6 ? "[" : "", a, v6 ? "]" : "", p->spec.host_port,
		strerror(-r),
		r == -EADDRINUSE ? " (another program has that port; pick "
				   "another HOST_PORT)"
				 : "");
	port_free(p);
	return r;
}

int inbound_remove(struct proxy *px, const char *spec, char *err,
		   size_t errsz)
{
	struct inbound *in = state(px);
	struct publish_spec s;
	const char *why = NULL;
	if (!in) {
		fmt_buf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	if (publish_spec_parse(spec, &s, &why) < 0) {
		fmt_buf(err, errsz, "publish '%s': %s", spec, why);
		return -EINVAL;
	}
	struct inbound_port **pp = NULL, *p = find(in, &s, &pp);
	if (!p || p->spec.guest_port != s.guest_port) {
		char canon[80];
		publish_spec_format(&s, canon, sizeof(canon));
		fmt_buf(err, errsz, "%s is not published", canon);
		return -ENOENT;
	}
	*pp = p->next;
	port_free(p);
	return 0;
}

void inbound_list(struct proxy *px, struct evbuffer *out)
{
	struct inbound *in = px->inbound;
	size_t n = 0;
	for (struct inbound_port *p = in ? in->ports : NULL; p; p = p->next)
		n++;
	evbuffer_add_printf(out, "ok ports=%zu", n);
	const char *sep = ": ";
	/* Oldest first, as they were added. */
	for (size_t k = n; k > 0; k--) {
		struct inbound_port *p = in->ports;
		for (size_t j = 1; j < k; j++)
			p = p->next;
		evbuffer_add_printf(out, "%s%s", sep, p->canon);
		sep = "; ";
	}
	evbuffer_add(out, "\n", 1);
}

/* A spec is one word of printable ASCII: it is echoed in replies. */
static bool word_ok(const char *s)
{
	if (!*s || strlen(s) > 80)
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s > '~')
			return false;
	return true;
}

void inbound_control(struct proxy *px, const char *arg, struct evbuffer *out)
{
	char err[300];
	const char *sp = strchr(arg, ' ');
	size_t vlen = sp ? (size_t)(sp - arg) : strlen(arg);
	const char *spec = sp ? sp + 1 : "";
	while (*spec == ' ')
		spec++;
	if (vlen == 4 && !strncmp(arg, "list", 4) && !*spec) {
		inbound_list(px, out);
		return;
	}
	bool add = vlen == 3 && !strncmp(arg, "add", 3);
	bool rm = vlen == 2 && !strncmp(arg, "rm", 2);
	if ((!add && !rm) || !word_ok(spec)) {
		evbuffer_add_printf(out, "error usage: port add|rm "
					 "[HOST_IP:]HOST_PORT:GUEST_PORT, "
					 "port list\n");
		return;
	}
	int r = add ? inbound_add(px, spec, err, sizeof(err))
		    : inbound_remove(px, spec, err, sizeof(err));
	if (r < 0) {
		evbuffer_add_printf(out, "error %s\n", err);
		return;
	}
	struct audit_record rec;
	audit_record_init(&rec);
	rec.event = "policy";
	rec.decision = "allow";
	rec.reason = add ? "port published" : "port unpublished";
	rec.rule = spec;
	proxy_audit(px, &rec);
	evbuffer_add_printf(out, "ok %s %s\n", add ? "published" : "removed",
			    spec);
}

void inbound_close_all(struct proxy *px)
{
	struct inbound *in = px->inbound;
	if (!in)
		return;
	while (in->ports) {
		struct inbound_port *p = in->ports;
		in->ports = p->next;
		port_free(p);
	}
	while (in->conns)
		conn_end(in->conns, "proxy shutting down");
	free(in);
	px->inbound = NULL;
}
