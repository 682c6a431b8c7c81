/* Connection lifecycle: accept, the audit records every connection
 * writes, the one close path and the deferred free, and what the rest of
 * the proxy does to all connections at once (conn.h). The state machine's
 * steps live in the files conn_internal.h lists; conn_dispatch.c runs
 * them. */
#include "conn_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "../auditlog/audit.h"
#include "proto.h"

/* Bytes buffered from the client before a decision: the largest thing a
 * peek may need (a ClientHello or an HTTP head) plus slack. */
#define PEEK_BUFFER_MAX (HTTP_HEAD_MAX + 8192)

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
	r->src = c->src_str[0] ? c->src_str : NULL;
	r->container = c->ctr_name[0] ? c->ctr_name : NULL;
	r->container_id = c->ctr_id[0] ? c->ctr_id : NULL;
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
	if (c->state == CS_CLOSED)
		return;
	struct proxy *px = c->px;
	struct audit_record r;
	dns_stream_flush(c); /* counts of repeats come before the close */
	audit_record_for(c, "close", &r);
	if (c->decided || c->connect_audited)
		r.decision = policy_decision_str(c->decided ? c->decision
							    : DECISION_DENY);
	/* A later request refused (relay_refuse_request): the close record
	 * is the refusal's, whatever ended the wait for earlier answers. */
	r.reason = c->refused_later && c->aux ? c->aux->reason : reason;
	r.bytes_up = (int64_t)c->bytes_up;
	r.bytes_down = (int64_t)c->bytes_down;
	r.duration_ms = (int64_t)(mono_ms() - c->start_ms);
	proxy_audit(px, &r);
	proxy_log(px, "conn %llu closed: %s", (unsigned long long)c->id,
		  reason);

	/* Everything but struct conn and its timer goes now: no callback
	 * can reach a closed connection any more. */
	c->state = CS_CLOSED;
	if (c->rq) {
		resolver_cancel(c->rq);
		c->rq = NULL;
	}
	if (c->dns)
		dns_stream_free(c->dns); /* clears c->dns */
	if (c->client) {
		bufferevent_free(c->client);
		c->client = NULL;
	}
	if (c->upstream) {
		bufferevent_free(c->upstream);
		c->upstream = NULL;
	}
	free(c->hc_out);
	c->hc_out = NULL;
	tls_watch_free(c);
	free(c->aux);
	c->aux = NULL;
	policy_ref_put(c->pol);
	c->pol = NULL;
	px->n_conns--; /* atomic */
	c->w->n_conns--;
	/* The free waits for the next loop turn: whoever called this may
	 * still look at c (its state says CLOSED). */
	evtimer_del(c->timer);
	event_active(c->timer, EV_TIMEOUT, 0);
	proxy_conn_gone(c->w);
}

enum conn_next conn_end(struct conn *c, const char *reason)
{
	conn_close(c, reason);
	return CONN_NEXT_CLOSE;
}

void conn_free(struct conn *c)
{
	LIST_REMOVE(c, link);
	event_free(c->timer);
	free(c);
}

void conn_accept(struct worker *w, int fd, enum conn_origin origin)
{
	struct proxy *px = w->px;
	const char *refuse = NULL;
	/* Counted first: N workers accepting at once cannot pass
	 * --max-conns together. */
	size_t was = atomic_fetch_add(&px->n_conns, 1);
	if (!proxy_may_act(px))
		refuse = "audit log unwritable: refusing connections";
	else if (px->draining)
		refuse = "shutting down";
	else if (was >= px->cfg->max_conns)
		refuse = "too many connections (--max-conns)";
	if (refuse) {
		px->n_conns--;
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
		px->n_conns--;
		close(fd);
		return;
	}
	c->px = px;
	c->w = w;
	c->id = ++px->next_conn_id;
	c->origin = origin;
	c->start_ms = c->phase_start_ms = c->last_active_ms = mono_ms();
	/* fd is non-blocking and close-on-exec already: evconnlistener
	 * accepts with accept4(SOCK_NONBLOCK | SOCK_CLOEXEC). A TCP one has
	 * TCP_NODELAY from its listening socket (listener.c); the upstream
	 * side sets it too: a relay must not hold a small segment back
	 * waiting for an ACK (Nagle). */
	c->client = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = conn_timer_new(c);
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
		px->n_conns--;
		return;
	}
	c->pol = proxy_policy_get(px);
	LIST_INSERT_HEAD(&w->conns, c, link);
	w->n_conns++;
	proxy_log(px, "conn %llu on worker %u", (unsigned long long)c->id,
		  w->idx);

	c->state = origin == ORIGIN_TRANSPARENT ? CS_READ_HEADER
						: CS_PROXY_HEAD;
	if (origin == ORIGIN_HTTP_PROXY)
		c->proto = &proto_http; /* refusals are HTTP responses */
	conn_setup_client(c);
	bufferevent_setwatermark(c->client, EV_READ, 0, PEEK_BUFFER_MAX);
	/* EV_WRITE is enabled from bufferevent_socket_new() on, so output
	 * is flushed when there is some; enabling it again here would add
	 * the write event now, for an empty buffer (an epoll_ctl, a wake-up
	 * and another epoll_ctl per connection). */
	bufferevent_enable(c->client, EV_READ);
	conn_set_timer(c, (uint64_t)px->cfg->handshake_timeout * 1000);
}

size_t conn_count(struct proxy *px)
{
	return atomic_load(&px->n_conns);
}

/* Closing does not unlink (the deferred free does), so these loops are
 * safe against the connections they close. */
static size_t close_all(struct worker *w, const char *reason)
{
	size_t n = 0;
	struct conn *c;
	LIST_FOREACH(c, &w->conns, link) {
		if (c->state == CS_CLOSED)
			continue;
		conn_close(c, reason);
		n++;
	}
	return n;
}

/* One walk run on every worker's own loop (worker_call_all). */
struct walk {
	const char *reason;
	_Atomic size_t n;
};

static void close_all_on(struct worker *w, void *arg)
{
	struct walk *k = arg;
	k->n += close_all(w, k->reason);
}

size_t conn_close_all(struct proxy *px, const char *reason)
{
	struct walk k = {.reason = reason};
	worker_call_all(px, close_all_on, &k);
	return k.n;
}

static void close_idle_dns_on(struct worker *w, void *arg)
{
	struct walk *k = arg;
	struct conn *c;
	LIST_FOREACH(c, &w->conns, link) {
		if (c->state == CS_DNS && dns_stream_idle(c)) {
			conn_close(c, k->reason);
			k->n++;
		}
	}
}

size_t conn_close_idle_dns(struct proxy *px, const char *reason)
{
	struct walk k = {.reason = reason};
	worker_call_all(px, close_idle_dns_on, &k);
	return k.n;
}

void conn_tick(struct worker *w)
{
	struct conn *c;
	LIST_FOREACH(c, &w->conns, link) {
		if (c->dns && c->state != CS_CLOSED)
			conn_run(c, dns_stream_tick(c));
	}
}

void conn_shutdown(struct proxy *px, const char *reason)
{
	for (unsigned i = 0; i < px->n_workers; i++) {
		struct worker *w = &px->workers[i];
		close_all(w, reason);
		while (!LIST_EMPTY(&w->conns))
			conn_free(LIST_FIRST(&w->conns));
	}
}
