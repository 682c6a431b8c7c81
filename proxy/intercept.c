/* TLS interception sessions (intercept.h). */
#include "intercept.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../auditlog/audit.h"
#include "../common/util.h"
#include "../parse/http_req.h"
#include "http_check.h"
#include "intercept_ca.h"
#include "proxy.h"
#include "secrets.h"

/* Bytes queued towards one side before the other side stops being read. */
#define ICPT_HWM (1024 * 1024)
#define ICPT_LWM (256 * 1024)
/* A rewritten head: the head plus every value in place of a placeholder. */
#define ICPT_OUT_MAX (HTTP_HEAD_MAX + SECRET_MAX * SECRET_LEN_MAX * 2)

struct session {
	LIST_ENTRY(session) link;
	struct intercept *ic;
	struct proxy *px;
	uint64_t conn;
	char name[256];
	uint16_t port;
	char addr[IP_STR_MAX];
	struct bufferevent *down; /* owned: TLS server to the guest */
	struct bufferevent *up;   /* owned: TLS client to the upstream */
	struct http_checker hc;
	uint8_t *out;     /* owned: rewritten head, ICPT_OUT_MAX */
	uint8_t *out2;    /* owned: with the secrets' headers set, likewise */
	uint32_t audited; /* secrets whose use is on record */
	bool inspect;     /* an inspected host: one request record a head */
	bool closing;     /* flushing a last answer to the guest */
	/* Bytes went up: a refusal can no longer be answered with a status
	 * (the guest would read it as an earlier request's answer). */
	bool forwarded;
	/* A later request was refused (refuse_later): nothing more is read
	 * from the guest, the upstream has been told the requests ended
	 * (up_shut), and its answers are relayed until it closes or
	 * --drain-timeout; then the guest gets the end of the stream
	 * (lingering: its bytes are read and dropped until its end). */
	bool draining, up_shut, lingering;
	struct event *deadline; /* owned: draining's bound */
	/* owned: waits for room for a close_notify (half_close) on shut_bev,
	 * the side whose output is all written */
	struct event *shut_ev;
	struct bufferevent *shut_bev;
};

struct intercept {
	struct icpt_ca *ca;         /* owned */
	SSL_CTX *srv;               /* owned: guest-facing */
	SSL_CTX *cli;               /* owned: upstream-facing, verifying */
	const struct secrets *sec;  /* not owned: the proxy's table */
	char **inspect;             /* owned: inspected hosts, normalised */
	size_t n_inspect;
	char **all;                 /* owned: inspect: all's CA names */
	size_t n_all;
	bool inspect_all;
	LIST_HEAD(, session) sessions;
};

/* HTTP/1.1 only, whatever the guest offers: the head rewriter reads
 * HTTP/1 (docs/secrets.md "Why HTTP/1.1"). A client offering only h2
 * gets no ALPN answer and speaks HTTP/1.1 by default. */
static int alpn_select(SSL *ssl, const unsigned char **out,
		       unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	for (unsigned i = 0; i < inlen;) {
		unsigned n = in[i];
		if (i + 1 + n > inlen)
			break;
		if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

static bool inspected(const struct intercept *ic, const char *name)
{
	for (size_t i = 0; ic && i < ic->n_inspect; i++)
		if (!strcmp(ic->inspect[i], name))
			return true;
	return false;
}

/* Is name the CA name n or under it (what a DNS name constraint
 * permits)? */
static bool under(const char *name, const char *n)
{
	size_t a = strlen(name), b = strlen(n);
	return a == b ? !strcmp(name, n)
		      : a > b && name[a - b - 1] == '.' &&
				!strcmp(name + a - b, n);
}

struct intercept *intercept_new(const struct secrets *sec,
				const char *const *inspect, size_t n_inspect,
				bool all, const char *const *all_names,
				size_t n_all, const char *upstream_ca,
				const char *ca_out, char *err, size_t errsz)
{
	enum { HOSTS_MAX = SECRET_MAX * SECRET_HOSTS_MAX + ICPT_INSPECT_MAX +
			   ICPT_ALL_MAX };
	const char *hosts[HOSTS_MAX];
	size_t n = secrets_hosts(sec, hosts, HOSTS_MAX);
	struct intercept *ic = calloc(1, sizeof(*ic));
	if (!ic || n_inspect > ICPT_INSPECT_MAX || n_all > ICPT_ALL_MAX ||
	    !(ic->inspect = calloc(n_inspect + 1, sizeof(char *))) ||
	    !(ic->all = calloc(n_all + 1, sizeof(char *)))) {
		if (ic)
			free(ic->inspect);
		free(ic);
		fmt_buf(err, errsz, n_inspect > ICPT_INSPECT_MAX
					    ? "too many inspected hosts"
				    : n_all > ICPT_ALL_MAX
					    ? "inspect: all: too many names"
					    : "out of memory");
		return NULL;
	}
	ic->inspect_all = all;
	for (size_t i = 0; i < n_all; i++) {
		if (!(ic->all[i] = strdup(all_names[i]))) {
			fmt_buf(err, errsz, "out of memory");
			goto fail;
		}
		ic->n_all++;
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = !strcmp(hosts[k], all_names[i]);
		if (!dup && n < HOSTS_MAX)
			hosts[n++] = ic->all[i];
	}
	LIST_INIT(&ic->sessions);
	ic->sec = sec;
	/* The CA's name constraints: the secrets' hosts and the inspected
	 * ones, each once. */
	for (size_t i = 0; i < n_inspect; i++) {
		if (!(ic->inspect[i] = strdup(inspect[i]))) {
			fmt_buf(err, errsz, "out of memory");
			goto fail;
		}
		ic->n_inspect++;
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = !strcmp(hosts[k], inspect[i]);
		if (!dup && n < HOSTS_MAX)
			hosts[n++] = ic->inspect[i];
	}
	ic->ca = icpt_ca_new(hosts, n, err, errsz);
	if (!ic->ca)
		goto fail;
	ic->srv = SSL_CTX_new(TLS_server_method());
	ic->cli = SSL_CTX_new(TLS_client_method());
	if (!ic->srv || !ic->cli) {
		fmt_buf(err, errsz, "cannot make the TLS contexts");
		goto fail;
	}
	SSL_CTX_set_min_proto_version(ic->srv, TLS1_2_VERSION);
	SSL_CTX_set_min_proto_version(ic->cli, TLS1_2_VERSION);
	SSL_CTX_set_alpn_select_cb(ic->srv, alpn_select, NULL);
	SSL_CTX_set_options(ic->srv, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_options(ic->cli, SSL_OP_NO_RENEGOTIATION);
	static const unsigned char h11[] = "\x08http/1.1";
	SSL_CTX_set_alpn_protos(ic->cli, h11, sizeof(h11) - 1);
	SSL_CTX_set_verify(ic->cli, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_set_default_verify_paths(ic->cli) != 1) {
		fmt_buf(err, errsz, "cannot load the host trust store");
		goto fail;
	}
	if (upstream_ca &&
	    SSL_CTX_load_verify_locations(ic->cli, upstream_ca, NULL) != 1) {
		fmt_buf(err, errsz, "--upstream-ca %s: not a readable PEM "
				    "certificate bundle", upstream_ca);
		goto fail;
	}
	if (ca_out) {
		int e = icpt_ca_write_cert(ic->ca, ca_out);
		if (e < 0) {
			fmt_buf(err, errsz, "--ca-out %s: %s", ca_out,
				strerror(-e));
			goto fail;
		}
	}
	return ic;
fail:
	intercept_free(ic);
	return NULL;
}

static void session_free(struct session *s)
{
	LIST_REMOVE(s, link);
	if (s->deadline)
		event_free(s->deadline);
	if (s->shut_ev)
		event_free(s->shut_ev);
	if (s->down)
		bufferevent_free(s->down);
	if (s->up)
		bufferevent_free(s->up);
	if (s->out)
		explicit_bzero(s->out, ICPT_OUT_MAX);
	if (s->out2)
		explicit_bzero(s->out2, ICPT_OUT_MAX);
	free(s->out);
	free(s->out2);
	free(s);
}

void intercept_free(struct intercept *ic)
{
	if (!ic)
		return;
	while (!LIST_EMPTY(&ic->sessions))
		session_free(LIST_FIRST(&ic->sessions));
	SSL_CTX_free(ic->srv);
	SSL_CTX_free(ic->cli);
	icpt_ca_free(ic->ca);
	for (size_t i = 0; ic->inspect && i < ic->n_inspect; i++)
		free(ic->inspect[i]);
	free(ic->inspect);
	for (size_t i = 0; ic->all && i < ic->n_all; i++)
		free(ic->all[i]);
	free(ic->all);
	free(ic);
}

/* Does inspect: all cover name? Every name but the user's own machine
 * (host.sandbox.internal, host_ports:), which is never decrypted. */
static bool all_covers(const struct intercept *ic, const char *name)
{
	return ic->inspect_all && strcmp(name, POLICY_HOST_INTERNAL) != 0;
}

bool intercept_named(const struct intercept *ic, const char *name)
{
	return ic && (secret_table_has_host(secrets_table(ic->sec), name) ||
		      inspected(ic, name));
}

bool intercept_records(const struct intercept *ic, const char *name)
{
	return ic && (inspected(ic, name) || all_covers(ic, name));
}

enum icpt_want intercept_wants(const struct intercept *ic, const char *name,
			       char *why, size_t whysz)
{
	if (!ic)
		return ICPT_SPLICE;
	if (!name) {
		if (!ic->inspect_all)
			return ICPT_SPLICE;
		fmt_buf(why, whysz,
			"inspect: all: TLS to an address cannot be "
			"inspected (the sandbox CA signs no address) and is "
			"not spliced; connect by name");
		return ICPT_REFUSE;
	}
	if (intercept_named(ic, name))
		return ICPT_TAKE;
	if (!all_covers(ic, name))
		return ICPT_SPLICE;
	/* inspect: all: only a name the CA was made for, and one a leaf
	 * can carry. '_' is no host name: a DNS SAN with one is refused by
	 * some clients, accepted by others. */
	if (strchr(name, '_')) {
		fmt_buf(why, whysz,
			"inspect: all: '%s' has '_', which the sandbox CA does "
			"not sign; refused, not spliced",
			name);
		return ICPT_REFUSE;
	}
	for (size_t i = 0; i < ic->n_all; i++)
		if (under(name, ic->all[i]))
			return ICPT_TAKE;
	fmt_buf(why, whysz,
		"inspect: all: '%s' is not under the names the sandbox CA "
		"was made for at start (allowed later? restart the "
		"sandbox); refused, not spliced",
		name);
	return ICPT_REFUSE;
}

static int record(struct session *s, const char *decision,
		  const char *secret, const char *reason)
{
	struct audit_record r;
	audit_record_init(&r);
	r.event = "intercept";
	r.conn = s->conn;
	r.proto = "tls";
	r.host = s->name;
	r.port = s->port;
	r.addr = s->addr;
	r.decision = decision;
	r.reason = reason;
	r.intercepted = true;
	r.secret = secret;
	return proxy_audit(s->px, &r);
}

/* An inspected host's request: what a reviewer needs to see where the
 * guest went (method, host, path), never what it sent: the query string
 * is cut (query values carry tokens) and no header value is written. */
int intercept_record_request(struct proxy *px, uint64_t conn_id,
			     const char *name, uint16_t port,
			     const char *proto, bool intercepted,
			     const uint8_t *head, size_t len)
{
	struct http_request rq;
	if (http_request_parse(head, len, &rq) != HTTP_OK)
		return -EINVAL; /* the checker passed it: cannot happen */
	char method[32], path[1024];
	const struct http_span *t =
		rq.form == HTTP_FORM_ABSOLUTE ? &rq.path : &rq.target;
	size_t tl = t->len, ml = rq.method.len;
	const char *tp = (const char *)head + t->off;
	for (size_t i = 0; i < tl; i++)
		if (tp[i] == '?' || tp[i] == '#') {
			tl = i;
			break;
		}
	fmt_buf(method, sizeof(method), "%.*s", (int)(ml < 31 ? ml : 31),
		(const char *)head + rq.method.off);
	fmt_buf(path, sizeof(path), "%.*s", (int)(tl < 1023 ? tl : 1023),
		tl ? tp : "/");
	struct audit_record r;
	audit_record_init(&r);
	r.event = "request";
	r.conn = conn_id;
	r.proto = proto;
	r.host = name;
	r.port = port;
	r.decision = "allow";
	r.intercepted = intercepted;
	r.method = method;
	r.path = path;
	return proxy_audit(px, &r);
}

/* The guest gets status and a one-line reason, then the session ends. */
static void answer(struct session *s, int status, const char *why)
{
	char msg[600];
	char head[200];
	fmt_buf(msg, sizeof(msg), "sandbox-proxy: %s\n", why);
	fmt_buf(head, sizeof(head),
		"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
		"Connection: close\r\nContent-Length: %zu\r\n\r\n",
		status,
		status == 403   ? "Forbidden"
		: status == 431 ? "Request Header Fields Too Large"
		: status == 502 ? "Bad Gateway"
				: "Bad Request",
		strlen(msg));
	struct evbuffer *o = bufferevent_get_output(s->down);
	evbuffer_add(o, head, strlen(head));
	evbuffer_add(o, msg, strlen(msg));
	s->closing = true;
	if (s->up) {
		bufferevent_free(s->up);
		s->up = NULL;
	}
	bufferevent_disable(s->down, EV_READ);
	bufferevent_setwatermark(s->down, EV_WRITE, 0, 0);
}

static void end(struct session *s, const char *why)
{
	if (why)
		proxy_log(s->px, "conn %llu: intercept: %s",
			  (unsigned long long)s->conn, why);
	session_free(s);
}

/* close_notify, then FIN, on a side whose output is all written: the
 * peer sees the end of what it gets and may still send (TCP half-close;
 * TLS 1.3 allows it, and a TLS 1.2 server has answered what it read
 * before the alert). false: the socket has no room for the alert yet
 * (OpenSSL keeps the rest; the next SSL_shutdown() sends it and reads
 * nothing). */
static bool half_close(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	ERR_clear_error();
	int r = SSL_shutdown(ssl);
	bool again = r < 0 && SSL_get_error(ssl, r) == SSL_ERROR_WANT_WRITE;
	ERR_clear_error();
	if (!again)
		shutdown(bufferevent_getfd(bev), SHUT_WR);
	return !again;
}

static void shut_retry(evutil_socket_t fd, short what, void *arg);

static void shut_cancel(struct session *s)
{
	if (s->shut_ev)
		event_free(s->shut_ev);
	s->shut_ev = NULL;
	s->shut_bev = NULL;
}

/* Half-close bev now, or as soon as its socket has room. */
static void shut_side(struct session *s, struct bufferevent *bev)
{
	if (half_close(bev)) {
		if (s->shut_bev == bev)
			shut_cancel(s);
		return;
	}
	if (s->shut_bev != bev) {
		shut_cancel(s);
		s->shut_ev = event_new(s->px->base, bufferevent_getfd(bev),
				       EV_WRITE, shut_retry, s);
		s->shut_bev = s->shut_ev ? bev : NULL;
	}
	if (!s->shut_ev || event_add(s->shut_ev, NULL) < 0)
		shutdown(bufferevent_getfd(bev), SHUT_WR); /* no room kept */
}

static void shut_retry(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	(void)fd;
	(void)what;
	shut_side(s, s->shut_bev);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	(void)fd;
	(void)what;
	end(s, s->lingering ? NULL
			    : "answers before a refused request cut at "
			      "--drain-timeout");
}

/* The earlier answers are out and the upstream is gone: the guest gets
 * the end of the stream, and what it still sends is read and dropped
 * until its own end, so that closing with its bytes unread cannot reset
 * the connection under an answer it has not read yet. */
static void linger(struct session *s)
{
	struct timeval tv = {.tv_sec = PROXY_LINGER_MS / 1000,
			     .tv_usec = (PROXY_LINGER_MS % 1000) * 1000};
	s->lingering = true;
	evtimer_add(s->deadline, &tv);
	shut_side(s, s->down);
	bufferevent_enable(s->down, EV_READ);
}

/* The upstream has every byte forwarded before the refused request: tell
 * it the requests ended. */
static void up_sent_all(struct session *s)
{
	if (s->draining && !s->up_shut && s->up &&
	    evbuffer_get_length(bufferevent_get_output(s->up)) == 0) {
		s->up_shut = true;
		shut_side(s, s->up);
	}
}

/* A later request refused. A status now would be read as the answer to
 * an earlier request, whose real answer may still be on its way: the
 * refused head and everything after it are dropped and nothing more is
 * read from the guest, the upstream is told the requests ended, and the
 * guest gets every earlier answer whole, then the end of the stream (an
 * HTTP client retries an idempotent request on a new connection, where
 * it is first and gets the status). --drain-timeout bounds it: a server
 * that never closes or a guest that never reads cannot keep the session.
 * false: s is gone. */
static bool refuse_later(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->down);
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_disable(s->down, EV_READ);
	s->draining = true;
	struct timeval tv = {.tv_sec = (time_t)s->px->cfg->drain_timeout};
	s->deadline = evtimer_new(s->px->base, deadline_cb, s);
	if (!s->deadline || evtimer_add(s->deadline, &tv) < 0) {
		end(s, "out of memory");
		return false;
	}
	/* up_written then fires once the output is empty. */
	bufferevent_setwatermark(s->up, EV_WRITE, 0, 0);
	up_sent_all(s);
	return true;
}

/* Refuse request n. Only the first on the connection (nothing went up
 * before it) is answered with status and why; a later one ends the
 * connection instead (refuse_later). Every refusal is on record, and the
 * deny record says which (a failed write fails closed). false: s is
 * gone. */
static bool refuse(struct session *s, unsigned n, int status,
		   const char *secret, const char *why)
{
	char reason[600];
	fmt_buf(reason, sizeof(reason), "request %u: %s%s", n, why,
		s->forwarded ? "; the connection was ended instead of "
			       "answered (earlier requests' answers relayed "
			       "first)"
			     : "");
	if (record(s, "deny", secret, reason) < 0) {
		end(s, "audit log write failed");
		return false;
	}
	if (s->forwarded)
		return refuse_later(s);
	answer(s, status, reason);
	return true;
}

/* A head on its way up: replace placeholders, or refuse the request.
 * Returns false when the session was refused. */
static bool pass_head(struct session *s, const uint8_t *buf, size_t len,
		      struct evbuffer *to)
{
	const struct secret_table *t = secrets_table(s->ic->sec);
	size_t out_len = 0, which = 0;
	uint32_t used = 0;
	bool sets = false;
	for (size_t i = 0; t && i < t->n && !sets; i++)
		sets = t->s[i].header && secret_host_listed(&t->s[i], s->name);
	if ((!s->out && !(s->out = malloc(ICPT_OUT_MAX))) ||
	    (sets && !s->out2 && !(s->out2 = malloc(ICPT_OUT_MAX)))) {
		end(s, "out of memory");
		return false;
	}
	char why[400];
	const uint8_t *src = buf;
	size_t sub_len = 0;
	switch (t ? secret_subst_head(t, s->name, buf, len, s->out,
				      ICPT_OUT_MAX, &out_len, &used, &which)
		  : SUBST_NONE) {
	case SUBST_NONE:
		out_len = len;
		break;
	case SUBST_DONE:
		src = s->out;
		sub_len = out_len;
		break;
	case SUBST_FOREIGN:
		fmt_buf(why, sizeof(why),
			"the placeholder of secret %s was sent to %s, which "
			"is not one of its hosts: exfiltration attempt "
			"refused",
			t->s[which].var, s->name);
		refuse(s, s->hc.requests, 403, t->s[which].var, why);
		return false;
	case SUBST_TOO_LARGE:
	case SUBST_MALFORMED:
	default:
		refuse(s, s->hc.requests, 431, NULL,
		       "request head too large after substitution");
		return false;
	}
	/* The secrets' own headers (policy header:/format:), set whatever
	 * the guest sent under those names. */
	uint32_t set = 0;
	size_t set_len = 0;
	enum subst_status hs =
		sets ? secret_set_headers(t, s->name, src, out_len, s->out2,
					  ICPT_OUT_MAX, &set_len, &set)
		     : SUBST_NONE;
	if (hs == SUBST_DONE) {
		src = s->out2;
		out_len = set_len;
	} else if (hs != SUBST_NONE) {
		refuse(s, s->hc.requests, 431, NULL,
		       "request head too large with the secret's header");
		return false;
	}
	for (size_t i = 0; t && i < t->n && i < 32; i++) {
		if (!((used | set) & (1u << i)) || (s->audited & (1u << i)))
			continue;
		if (record(s, "allow", t->s[i].var,
			   (set & (1u << i)) ? "header set with the secret's value"
					     : "placeholder replaced by the secret's value") < 0) {
			end(s, "audit log write failed: failing closed");
			return false;
		}
		s->audited |= 1u << i;
	}
	/* On record before it leaves: no record, no request. */
	if (s->inspect &&
	    intercept_record_request(s->px, s->conn, s->name, s->port,
				     "https", true, buf, len) < 0) {
		explicit_bzero(s->out, sub_len);
		if (hs == SUBST_DONE)
			explicit_bzero(s->out2, set_len);
		end(s, "audit log write failed: failing closed");
		return false;
	}
	evbuffer_add(to, src, out_len);
	s->forwarded = true;
	explicit_bzero(s->out, sub_len);
	if (hs == SUBST_DONE)
		explicit_bzero(s->out2, set_len);
	return true;
}

/* Guest -> upstream, one request at a time. Returns false when s is gone
 * or closing. */
static bool forward_up(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->down);
	struct evbuffer *to = bufferevent_get_output(s->up);
	for (;;) {
		size_t len = evbuffer_get_length(in);
		if (len == 0)
			return true;
		size_t take = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
		const uint8_t *buf = evbuffer_pullup(in, (ssize_t)take);
		unsigned heads = s->hc.requests;
		struct hc_action act;
		http_checker_step(&s->hc, buf, take, s->name, s->port, NULL, 0,
				  &act);
		bool is_head = s->hc.requests > heads;
		if (is_head && heads > 0 && !proxy_may_act(s->px)) {
			end(s, "audit log unwritable: request not forwarded");
			return false;
		}
		switch (act.result) {
		case HC_NEED_MORE:
			return true;
		case HC_FORWARD:
		case HC_REWRITE:
			if (is_head) {
				if (!pass_head(s, buf, act.consumed, to))
					return false;
			} else {
				evbuffer_add(to, buf, act.consumed);
				s->forwarded = true;
			}
			evbuffer_drain(in, act.consumed);
			break;
		case HC_REJECT:
			refuse(s, s->hc.requests + 1, act.status, NULL, act.why);
			return false;
		}
		if (evbuffer_get_length(to) >= ICPT_HWM) {
			bufferevent_disable(s->down, EV_READ);
			return true;
		}
	}
}

static void down_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	if (s->draining) { /* never forwarded: see refuse_later */
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (!s->closing && s->up)
		forward_up(s);
}

static void up_read(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	if (http_checker_waiting(&s->hc) && len) {
		size_t n = len < 16 ? len : 16;
		http_checker_response(&s->hc, evbuffer_pullup(in, (ssize_t)n),
				      n);
	}
	evbuffer_add_buffer(bufferevent_get_output(s->down), in);
	if (evbuffer_get_length(bufferevent_get_output(s->down)) >= ICPT_HWM)
		bufferevent_disable(bev, EV_READ);
	if (!http_checker_waiting(&s->hc) && !s->closing && !s->draining &&
	    s->up)
		forward_up(s);
}

/* Output drained below the low mark: resume the other side. */
static void down_written(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	if (s->closing) {
		if (s->lingering ||
		    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
			return;
		if (s->draining)
			linger(s);
		else
			end(s, NULL);
		return;
	}
	if (s->up)
		bufferevent_enable(s->up, EV_READ);
}

static void up_written(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct session *s = arg;
	if (s->draining)
		up_sent_all(s);
	else if (!s->closing)
		bufferevent_enable(s->down, EV_READ);
}

static void ssl_why(struct bufferevent *bev, char *out, size_t n)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (v != X509_V_OK)
		fmt_buf(out, n, "certificate verification failed: %s",
			X509_verify_cert_error_string(v));
	else if (e)
		fmt_buf(out, n, "%s", ERR_reason_error_string(e)
					      ? ERR_reason_error_string(e)
					      : "TLS error");
	else
		fmt_buf(out, n, "%s", evutil_socket_error_to_string(
					      EVUTIL_SOCKET_ERROR()));
	while (bufferevent_get_openssl_error(bev))
		;
}

static void down_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	if (what & BEV_EVENT_CONNECTED)
		return; /* handshake with the guest done */
	if (what & BEV_EVENT_ERROR) {
		char why[300];
		ssl_why(bev, why, sizeof(why));
		end(s, why);
		return;
	}
	if (what & BEV_EVENT_EOF)
		end(s, NULL);
}

static void up_event(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		char why[400];
		if (what & BEV_EVENT_ERROR) {
			char e[300];
			ssl_why(bev, e, sizeof(e));
			fmt_buf(why, sizeof(why), "upstream %s (%s:%u): %s",
				s->name, s->addr, s->port, e);
			if (record(s, "deny", NULL, why) < 0) {
				end(s, "audit log write failed");
				return;
			}
		}
		if (s->shut_bev == s->up)
			shut_cancel(s);
		bufferevent_free(s->up);
		s->up = NULL;
		/* What the upstream sent still reaches the guest. */
		s->closing = true;
		bufferevent_disable(s->down, EV_READ);
		bufferevent_setwatermark(s->down, EV_WRITE, 0, 0);
		if (evbuffer_get_length(bufferevent_get_output(s->down)) > 0)
			return;
		if (s->draining)
			linger(s);
		else
			end(s, NULL);
	}
}

int intercept_start(struct proxy *px, uint64_t conn_id, const char *name,
		    uint16_t port, const char *addr, int upstream_fd)
{
	struct intercept *ic = px->icpt;
	int sp[2];
	if (!ic) {
		close(upstream_fd);
		return -EINVAL;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sp) < 0) {
		int e = -errno;
		close(upstream_fd);
		return e;
	}
	struct session *s = calloc(1, sizeof(*s));
	SSL *down = SSL_new(ic->srv), *up = SSL_new(ic->cli);
	if (!s || !down || !up) {
		free(s);
		SSL_free(down);
		SSL_free(up);
		close(sp[0]);
		close(sp[1]);
		close(upstream_fd);
		return -ENOMEM;
	}
	LIST_INSERT_HEAD(&ic->sessions, s, link);
	s->ic = ic;
	s->px = px;
	s->conn = conn_id;
	fmt_buf(s->name, sizeof(s->name), "%s", name);
	s->inspect = intercept_records(ic, name);
	s->port = port;
	fmt_buf(s->addr, sizeof(s->addr), "%s", addr);
	http_checker_init(&s->hc, HC_HOST);
	s->hc.need_host = true;
	int e = -EINVAL;
	if (icpt_ca_use_leaf(ic->ca, down, name) < 0 ||
	    SSL_set_tlsext_host_name(up, name) != 1 ||
	    SSL_set1_host(up, name) != 1) {
		SSL_free(down);
		SSL_free(up);
		close(sp[1]);
		close(upstream_fd);
		goto fail;
	}
	s->down = bufferevent_openssl_socket_new(px->base, sp[1], down,
						 BUFFEREVENT_SSL_ACCEPTING,
						 BEV_OPT_CLOSE_ON_FREE);
	s->up = bufferevent_openssl_socket_new(px->base, upstream_fd, up,
					       BUFFEREVENT_SSL_CONNECTING,
					       BEV_OPT_CLOSE_ON_FREE);
	if (!s->down || !s->up) {
		if (!s->down) {
			SSL_free(down);
			close(sp[1]);
		}
		if (!s->up) {
			SSL_free(up);
			close(upstream_fd);
		}
		e = -ENOMEM;
		goto fail;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(s->down, 1);
	bufferevent_openssl_set_allow_dirty_shutdown(s->up, 1);
	bufferevent_setcb(s->down, down_read, down_written, down_event, s);
	bufferevent_setcb(s->up, up_read, up_written, up_event, s);
	bufferevent_setwatermark(s->down, EV_WRITE, ICPT_LWM, 0);
	bufferevent_setwatermark(s->up, EV_WRITE, ICPT_LWM, 0);
	bufferevent_enable(s->down, EV_READ | EV_WRITE);
	bufferevent_enable(s->up, EV_READ | EV_WRITE);
	if (record(s, "allow", NULL,
		   !s->inspect ? "TLS terminated for a secret host; "
				 "re-encrypted to the verified upstream"
		   : inspected(ic, name) || !ic->inspect_all
			   ? "TLS terminated for an inspected host; "
			     "re-encrypted to the verified upstream"
			   : "TLS terminated (inspect: all); re-encrypted to "
			     "the verified upstream") < 0) {
		e = -EIO;
		goto fail;
	}
	return sp[0];
fail:
	session_free(s);
	close(sp[0]);
	return e;
}
