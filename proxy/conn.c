/* Connection lifecycle: accept, the bufferevent callbacks that dispatch on
 * the state, timers, refusals and the one close path. The steps themselves
 * live in peek.c (wire header, first bytes), upstream.c (decision,
 * resolution, connect), relay.c, http_proxy.c and dns_stream.c. */
#include "conn.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "../auditlog/audit.h"
#include "proto.h"

/* Bytes buffered from the client before a decision: the largest thing a
 * peek may need (a ClientHello or an HTTP head) plus slack. */
#define PEEK_BUFFER_MAX (HTTP_HEAD_MAX + 8192)
#define FLUSH_TIMEOUT_MS 3000
/* A transparent connection refused before its client spoke (decided by
 * name and port at once) waits this long for the client's first bytes, so
 * that an HTTP or TLS client that was just about to speak gets a readable
 * 403 or an alert instead of a bare close. */
#define DENY_GRACE_MS 300


void conn_set_timer(struct conn *c, uint64_t ms)
{
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
			     .tv_usec = (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(c->timer, &tv);
}

struct conn_aux *conn_aux(struct conn *c)
{
	if (!c->aux)
		c->aux = calloc(1, sizeof(*c->aux));
	return c->aux;
}

void conn_hint(struct conn *c, const char *fmt, ...)
{
	struct conn_aux *a = conn_aux(c);
	if (!a)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(a->hint, sizeof(a->hint), fmt, ap);
	va_end(ap);
	if (n < 0)
		a->hint[0] = '\0';
}

static const char *proto_name(const struct conn *c)
{
	if (c->state == CS_DNS || c->dns)
		return "dns";
	if (c->proto)
		return c->proto->name;
	if (c->is_connect)
		return "connect";
	return c->origin == ORIGIN_HTTP_PROXY ? "http" : NULL;
}

/* The fields every record about this connection carries: the connect
 * record and the close record must describe it the same way. */
static void audit_record_for(const struct conn *c, const char *event,
			     struct audit_record *r)
{
	audit_record_init(r);
	r->event = event;
	r->conn = c->id;
	r->proto = proto_name(c);
	r->host = c->name[0] ? c->name : NULL;
	r->port = c->port ? c->port : -1;
	r->sni = c->sni[0] ? c->sni : NULL;
	r->addr = c->addr_str[0] ? c->addr_str : NULL;
}

int conn_audit_connect(struct conn *c, const char *reason)
{
	if (c->connect_audited)
		return 0;
	c->connect_audited = true;
	char rule[512];
	struct audit_record r;
	audit_record_for(c, "connect", &r);
	r.decision = policy_decision_str(c->decided ? c->decision
						    : DECISION_DENY);
	r.rule = c->decided && !c->rule_absent
			 ? policy_rule_str(&c->rule, rule, sizeof(rule))
			 : NULL;
	r.reason = reason;
	return proxy_audit(c->px, &r);
}

int conn_audit_resolve(struct conn *c, const char *reason)
{
	char rule[512];
	struct audit_record r;
	audit_record_for(c, "resolve", &r);
	r.addr = NULL;
	r.decision = policy_decision_str(c->decision);
	r.rule = c->rule_absent ? NULL
				: policy_rule_str(&c->rule, rule, sizeof(rule));
	r.reason = reason;
	return proxy_audit(c->px, &r);
}

void conn_close(struct conn *c, const char *reason)
{
	struct proxy *px = c->px;
	struct audit_record r;
	dns_stream_flush(c); /* counts of repeats come before the close */
	audit_record_for(c, "close", &r);
	if (c->decided || c->connect_audited)
		r.decision = policy_decision_str(c->decided ? c->decision
							    : DECISION_DENY);
	r.reason = reason;
	r.bytes_up = (int64_t)c->bytes_up;
	r.bytes_down = (int64_t)c->bytes_down;
	r.duration_ms = (int64_t)(mono_ms() - c->start_ms);
	proxy_audit(px, &r);
	proxy_log(px, "conn %llu closed: %s", (unsigned long long)c->id,
		  reason);

	if (c->rq)
		resolver_cancel(c->rq);
	if (c->dns)
		dns_stream_free(c->dns);
	if (c->client)
		bufferevent_free(c->client);
	if (c->upstream)
		bufferevent_free(c->upstream);
	if (c->timer)
		event_free(c->timer);
	free(c->hc_out);
	free(c->aux);
	LIST_REMOVE(c, link);
	px->n_conns--;
	policy_ref_put(c->pol);
	free(c);
	proxy_conn_gone(px);
}

/* FLUSH: write the refusal in the client's protocol (c->proto), then close
 * once it is out. */
static void deny_respond(struct conn *c)
{
	struct conn_aux *a = c->aux;
	enum deny_kind kind = a->deny_kind;
	a->deny_waiting = false;
	evtimer_del(c->timer);
	char resp[2048], hint[512];
	size_t n = 0;
	if (c->proto && c->proto->deny_response) {
		int status = kind == DENY_POLICY      ? 403
			     : kind == DENY_MALFORMED ? 400
						      : 502;
		const char *h = a->hint[0] ? a->hint : NULL;
		if (c->policy_denied) {
			struct policy_verdict v = {c->decision, c->rule};
			deny_hint(c->pol->policy, &v, c->name, c->port, hint,
				  sizeof(hint));
			h = hint;
		}
		struct deny_text t = {
			.host = c->name[0] ? c->name : NULL,
			.port = c->port,
			.decision = kind == DENY_UPSTREAM
					    ? NULL
					    : policy_decision_str(DECISION_DENY),
			.reason = a->reason,
			.hint = h,
		};
		n = c->proto->deny_response(status, &t, resp, sizeof(resp));
	}
	struct evbuffer *out = bufferevent_get_output(c->client);
	if (n)
		evbuffer_add(out, resp, n);
	evbuffer_drain(bufferevent_get_input(c->client),
		       evbuffer_get_length(bufferevent_get_input(c->client)));
	if (evbuffer_get_length(out) == 0) {
		conn_close(c, a->reason);
		return;
	}
	bufferevent_enable(c->client, EV_READ | EV_WRITE);
	conn_set_timer(c, FLUSH_TIMEOUT_MS);
}

/* The client's first bytes during a deny grace wait: they name the
 * protocol the refusal is written in. */
static void deny_client_spoke(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t len = evbuffer_get_length(in);
	if (len)
		c->proto = proto_detect(evbuffer_pullup(in, -1), len);
	deny_respond(c);
}

void conn_deny(struct conn *c, enum deny_kind kind, const char *reason)
{
	if (c->state == CS_FLUSH)
		return;
	struct conn_aux *a = conn_aux(c);
	if (!a) {
		conn_close(c, reason);
		return;
	}
	fmt_buf(a->reason, sizeof(a->reason), "%s", reason);
	/* An unreachable upstream keeps the policy's decision in the record;
	 * every other refusal is a deny, whatever the policy said (report
	 * mode never relaxes protocol-integrity or address checks). */
	if (kind != DENY_UPSTREAM) {
		if (!c->decided) {
			c->decided = true;
			memset(&c->rule, 0, sizeof(c->rule));
			c->rule_absent = true;
		}
		c->decision = DECISION_DENY;
	}
	conn_audit_connect(c, a->reason);
	if (c->rq) {
		resolver_cancel(c->rq);
		c->rq = NULL;
	}
	if (c->upstream) {
		bufferevent_free(c->upstream);
		c->upstream = NULL;
	}
	c->state = CS_FLUSH;
	evtimer_del(c->timer);
	a->deny_kind = kind;
	/* Refused at once, before the client's first bytes were checked:
	 * the verdict is final and audited; only the wording waits. */
	if (c->early_upstream && !c->proto && !c->up_eof &&
	    evbuffer_get_length(bufferevent_get_input(c->client)) == 0) {
		a->deny_waiting = true;
		conn_set_timer(c, DENY_GRACE_MS);
		return;
	}
	if (c->early_upstream && !c->proto) {
		deny_client_spoke(c);
		return;
	}
	deny_respond(c);
}

/* FLUSH: the response is out. Half-close and wait for the client's EOF so
 * that unread request bytes do not turn our close into a RST that destroys
 * the response before the client read it. */
static void flush_done(struct conn *c)
{
	if (c->flushed)
		return;
	c->flushed = true;
	if (c->up_eof) {
		conn_close(c, c->aux->reason);
		return;
	}
	shutdown(bufferevent_getfd(c->client), SHUT_WR);
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	switch (c->state) {
	case CS_READ_HEADER:
		conn_read_header(c);
		break;
	case CS_DNS:
		dns_stream_read(c);
		break;
	case CS_PROXY_HEAD:
		http_proxy_read(c);
		break;
	case CS_PEEK:
	case CS_WAIT_FIRST:
		conn_peek_step(c);
		break;
	case CS_RESOLVE:
	case CS_CONNECT:
		break; /* bytes wait in the input buffer (watermark-bounded) */
	case CS_RELAY:
		relay_client_read(c);
		break;
	case CS_FLUSH: {
		if (c->aux->deny_waiting) {
			deny_client_spoke(c);
			break;
		}
		struct evbuffer *in = bufferevent_get_input(c->client);
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	}
	}
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (c->state == CS_FLUSH) {
		if (!c->aux->deny_waiting &&
		    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			flush_done(c);
	} else if (c->state == CS_RELAY) {
		relay_client_written(c);
	} else if (c->state == CS_DNS) {
		dns_stream_read(c); /* output drained: may resume reading */
	}
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (what & BEV_EVENT_ERROR) {
		char why[160];
		fmt_buf(why, sizeof(why), "client error: %s",
			evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		conn_close(c, c->state == CS_FLUSH ? c->aux->reason : why);
		return;
	}
	if (!(what & BEV_EVENT_EOF))
		return;
	c->up_eof = true;
	switch (c->state) {
	case CS_RELAY:
		relay_eof(c, true);
		break;
	case CS_DNS:
		dns_stream_eof(c);
		break;
	case CS_FLUSH:
		if (c->flushed || c->aux->deny_waiting)
			conn_close(c, c->aux->reason);
		break;
	case CS_PEEK:
	case CS_WAIT_FIRST:
		/* A client may send its request and half-close at once. */
		if (evbuffer_get_length(bufferevent_get_input(c->client)) > 0)
			conn_peek_step(c);
		else
			conn_close(c, "client closed before sending anything");
		break;
	case CS_RESOLVE:
	case CS_CONNECT:
		if (c->origin == ORIGIN_HTTP_PROXY && c->is_connect)
			conn_close(c, "client closed before the tunnel was "
				      "established");
		else if (c->early_upstream &&
			 evbuffer_get_length(bufferevent_get_input(
				 c->client)) == 0)
			conn_close(c, "client closed before sending anything");
		/* else: keep going; the peek or relay sees the half-close */
		break;
	case CS_READ_HEADER:
	case CS_PROXY_HEAD:
		conn_close(c, "client closed before a complete header");
		break;
	}
}

static void upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (c->state == CS_RELAY)
		relay_upstream_read(c);
	else if (c->state == CS_WAIT_FIRST)
		conn_upstream_first(c, 0, 0);
}

static void upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (c->state == CS_RELAY)
		relay_upstream_written(c);
}

static void upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	int err = EVUTIL_SOCKET_ERROR();
	if (c->state == CS_CONNECT) {
		if (what & BEV_EVENT_CONNECTED) {
			conn_upstream_connected(c);
		} else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
			fmt_buf(c->aux->connect_err, sizeof(c->aux->connect_err),
				"%s: %s", c->addr_str,
				evutil_socket_error_to_string(err));
			conn_connect_next(c);
		}
		return;
	}
	(void)bev;
	if (c->state == CS_WAIT_FIRST) {
		conn_upstream_first(c, what, err);
		return;
	}
	if (c->state != CS_RELAY)
		return;
	if (what & BEV_EVENT_ERROR) {
		char why[160];
		fmt_buf(why, sizeof(why), "upstream error: %s",
			evutil_socket_error_to_string(err));
		conn_close(c, why);
	} else if (what & BEV_EVENT_EOF) {
		relay_eof(c, false);
	}
}

void conn_setup_upstream(struct conn *c, struct bufferevent *bev)
{
	bufferevent_setcb(bev, upstream_read_cb, upstream_write_cb,
			  upstream_event_cb, c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	uint64_t now = mono_ms();
	switch (c->state) {
	case CS_READ_HEADER:
	case CS_PROXY_HEAD:
		conn_close(c, "handshake timeout: no complete header");
		break;
	case CS_PEEK:
	case CS_WAIT_FIRST:
		conn_peek_timeout(c);
		break;
	case CS_RESOLVE:
		conn_deny(c, DENY_UPSTREAM, "name resolution timed out");
		break;
	case CS_CONNECT:
		fmt_buf(c->aux->connect_err, sizeof(c->aux->connect_err),
			"%s: connect timed out", c->addr_str);
		conn_connect_next(c);
		break;
	case CS_RELAY:
	case CS_DNS: {
		uint64_t idle = (uint64_t)c->px->cfg->idle_timeout * 1000;
		uint64_t quiet = now - c->last_active_ms;
		if (quiet >= idle && (c->state == CS_RELAY ||
				      dns_stream_idle(c)))
			conn_close(c, "idle timeout");
		else
			conn_set_timer(c, quiet >= idle ? idle : idle - quiet);
		break;
	}
	case CS_FLUSH:
		conn_close(c, c->aux->reason);
		break;
	}
}

void conn_accept(struct proxy *px, int fd, enum conn_origin origin)
{
	const char *refuse = NULL;
	if (!proxy_may_act(px))
		refuse = "audit log unwritable: refusing connections";
	else if (px->draining)
		refuse = "shutting down";
	else if (px->n_conns >= px->cfg->max_conns)
		refuse = "too many connections (--max-conns)";
	if (refuse) {
		close(fd);
		/* While the log cannot be written this only counts the
		 * refusal for the gap record. */
		struct audit_record r;
		audit_record_init(&r);
		r.event = "close";
		r.reason = refuse;
		proxy_audit(px, &r);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->px = px;
	c->id = ++px->next_conn_id;
	c->origin = origin;
	c->start_ms = c->phase_start_ms = c->last_active_ms = mono_ms();
	evutil_make_socket_nonblocking(fd);
	/* The upstream side has it too: a relay must not hold a small
	 * segment back waiting for an ACK (Nagle). Fails harmlessly on a
	 * unix socket. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->client = bufferevent_socket_new(px->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(px->base, timer_cb, c);
	c->aux = calloc(1, sizeof(*c->aux));
	if (!c->client || !c->timer || !c->aux) {
		if (c->client)
			bufferevent_free(c->client);
		else
			close(fd);
		if (c->timer)
			event_free(c->timer);
		free(c->aux);
		free(c);
		return;
	}
	c->pol = policy_ref_get(px->policy);
	LIST_INSERT_HEAD(&px->conns, c, link);
	px->n_conns++;

	c->state = origin == ORIGIN_TRANSPARENT ? CS_READ_HEADER
						: CS_PROXY_HEAD;
	if (origin == ORIGIN_HTTP_PROXY)
		c->proto = &proto_http; /* refusals are HTTP responses */
	bufferevent_setcb(c->client, client_read_cb, client_write_cb,
			  client_event_cb, c);
	bufferevent_setwatermark(c->client, EV_READ, 0, PEEK_BUFFER_MAX);
	bufferevent_enable(c->client, EV_READ | EV_WRITE);
	conn_set_timer(c, (uint64_t)px->cfg->handshake_timeout * 1000);
}
