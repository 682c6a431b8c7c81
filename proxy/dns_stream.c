/* A guest DNS stream (WIRE_DNS): 2-byte length-prefixed queries, answered
 * as the design says. Denied names get NXDOMAIN and never leave the host;
 * allowed names are resolved upstream first (so a name that does not
 * exist gets NXDOMAIN, and the proxy's later lookup is warm), then A is
 * answered with a synthetic address and every other type (AAAA, HTTPS,
 * SVCB, ...) with an empty NOERROR answer -- which also keeps ECH keys
 * from the guest. Answers may go out of order; ids tell them apart.
 *
 * Audit: every message's decision is recorded before anything is done
 * about it -- an allowed name before it is sent upstream, so a stream that
 * fails afterwards (the client closing, a write failing, a timeout) cannot
 * leave a name unrecorded. Records go through the stream's aggregator
 * (audit_agg.h): repeats within an interval are counted, and a stream that
 * spent its record budget waits. While the log cannot be written the
 * stream neither answers nor queries upstream; it pauses, and the tick
 * (record.c) resumes it. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "../auditlog/audit.h"
#include "audit_agg.h"
#include "../parse/dns_msg.h"
#include "conn_internal.h"
#include "synth.h"

#define DNS_MAX_INFLIGHT 64
#define DNS_SYNTH_TTL 60
#define DNS_OUT_HWM (256 * 1024)

struct dns_job {
	struct dns_stream *s;
	LIST_ENTRY(dns_job) link; /* s->jobs */
	struct resolver_query *rq;
	struct dns_query q;
	struct policy_verdict v;
};

struct dns_stream {
	struct conn *c;
	LIST_HEAD(, dns_job) jobs; /* owned */
	unsigned inflight;
	bool reading_paused;
	struct audit_agg agg; /* repeats of this stream's records */
};

static const char *qtype_str(uint16_t t, char *buf, size_t bufsz)
{
	switch (t) {
	case DNS_TYPE_A: return "A";
	case DNS_TYPE_AAAA: return "AAAA";
	case DNS_TYPE_CNAME: return "CNAME";
	case DNS_TYPE_PTR: return "PTR";
	case DNS_TYPE_MX: return "MX";
	case DNS_TYPE_TXT: return "TXT";
	case DNS_TYPE_SRV: return "SRV";
	case DNS_TYPE_SVCB: return "SVCB";
	case DNS_TYPE_HTTPS: return "HTTPS";
	case DNS_TYPE_ANY: return "ANY";
	default:
		fmt_buf(buf, bufsz, "TYPE%u", t);
		return buf;
	}
}

/* Record the decision about one message; 0 when it is on record (act on
 * it), negative when the log cannot be written (do nothing). */
static int audit_query(struct conn *c, const struct dns_query *q,
		       const char *name, const struct policy_verdict *v,
		       const char *reason)
{
	char rule[512], qt[16];
	struct audit_record r;
	audit_record_init(&r);
	r.event = "dns";
	r.conn = c->id;
	r.proto = "dns";
	r.host = name && *name ? name : NULL;
	r.qtype = q ? qtype_str(q->qtype, qt, sizeof(qt)) : NULL;
	r.decision = policy_decision_str(v ? v->decision : DECISION_DENY);
	r.rule = v ? policy_rule_str(&v->rule, rule, sizeof(rule)) : NULL;
	r.reason = reason;
	return proxy_audit_stream(c->px, &c->dns->agg, &r);
}

static void answer(struct conn *c, const struct dns_query *q, bool valid,
		   uint8_t rcode, const uint8_t (*a)[4], size_t n)
{
	uint8_t msg[2 + 1024];
	int len = dns_build_response(q, valid, rcode, a, n, DNS_SYNTH_TTL,
				     msg + 2, sizeof(msg) - 2);
	if (len < 0)
		return;
	msg[0] = (uint8_t)(len >> 8);
	msg[1] = (uint8_t)len;
	bufferevent_write(c->client, msg, (size_t)len + 2);
}

static void job_free(struct dns_job *j)
{
	struct dns_stream *s = j->s;
	if (j->rq)
		resolver_cancel(j->rq);
	LIST_REMOVE(j, link);
	s->inflight--;
	free(j);
}

/* A whole message (or a zero-length one, which ends the stream) waits in
 * the input. */
static bool message_pending(struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	if (len < 2)
		return false;
	const uint8_t *p = evbuffer_pullup(in, 2);
	return len >= 2 + ((size_t)p[0] << 8 | p[1]);
}

/* Once the client half-closed and every query is answered: flush the
 * answers, then close. */
static enum conn_next finish_if_done(struct conn *c)
{
	struct dns_stream *s = c->dns;
	/* Queries that arrived before the client's EOF but wait for the
	 * budget or the log are still answered. */
	if (c->up_eof && s->inflight == 0 &&
	    !message_pending(bufferevent_get_input(c->client))) {
		/* Client half-closed: flush the answers, then close. */
		fmt_buf(c->aux->reason, sizeof(c->aux->reason),
			"dns stream closed by client");
		c->state = CS_FLUSH;
		conn_set_timer(c, 3000);
		if (evbuffer_get_length(bufferevent_get_output(c->client)) == 0)
			return conn_end(c, c->aux->reason);
	}
	return CONN_NEXT_WAIT;
}

static enum conn_next read_messages(struct conn *c);

static void on_resolved(void *arg, enum resolve_status st,
			const struct ip_addr *addrs, size_t n, uint32_t ttl)
{
	struct dns_job *j = arg;
	struct conn *c = j->s->c;
	(void)addrs;
	(void)n;
	(void)ttl;
	j->rq = NULL;
	uint8_t a[1][4];
	size_t na = 0;
	uint8_t rcode = DNS_RCODE_NOERROR;
	if (st == RESOLVE_NXDOMAIN) {
		rcode = DNS_RCODE_NXDOMAIN;
	} else if (st != RESOLVE_OK && st != RESOLVE_NODATA) {
		rcode = DNS_RCODE_SERVFAIL;
	} else if (j->q.qtype == DNS_TYPE_A && st == RESOLVE_OK) {
		struct ip_addr sa;
		if (proxy_synth_assign(c->px, j->q.qname, &sa) == 0) {
			memcpy(a[0], sa.b, 4);
			na = 1;
		} else {
			rcode = DNS_RCODE_SERVFAIL;
		}
	}
	/* The decision was recorded when the query went upstream; while
	 * the log cannot be written no answer goes out either. */
	if (proxy_may_act(c->px))
		answer(c, &j->q, true, rcode, (const uint8_t(*)[4])a, na);
	job_free(j);
	c->last_active_ms = mono_ms();
	enum conn_next next = finish_if_done(c);
	if (next == CONN_NEXT_WAIT && c->state == CS_DNS &&
	    c->dns->reading_paused)
		next = read_messages(c);
	conn_run(c, next);
}

static void handle_query(struct conn *c, const uint8_t *msg, size_t len)
{
	struct dns_stream *s = c->dns;
	struct dns_query q;
	memset(&q, 0, sizeof(q));
	switch (dns_query_parse(msg, len, &q)) {
	case DNS_MALFORMED:
		audit_query(c, NULL, NULL, NULL,
			    q.why ? q.why : "malformed DNS message");
		return; /* nothing to echo an error to */
	case DNS_FORMERR:
		if (audit_query(c, NULL, NULL, NULL,
				q.why ? q.why : "FORMERR") == 0)
			answer(c, &q, false, DNS_RCODE_FORMERR, NULL, 0);
		return;
	case DNS_NOTIMP:
		if (audit_query(c, NULL, NULL, NULL,
				q.why ? q.why : "NOTIMP") == 0)
			answer(c, &q, false, DNS_RCODE_NOTIMP, NULL, 0);
		return;
	case DNS_OK:
		break;
	}
	char name[256];
	if (q.qclass != DNS_CLASS_IN) {
		if (audit_query(c, &q, q.qname, NULL,
				"query class is not IN") == 0)
			answer(c, &q, true, DNS_RCODE_NOTIMP, NULL, 0);
		return;
	}
	if (q.qname_len == 0 || ip_looks_numeric(q.qname, q.qname_len) ||
	    policy_normalize_name(q.qname, q.qname_len, name, sizeof(name)) <
		    0) {
		if (audit_query(c, &q, q.qname, NULL,
				"not a valid host name") == 0)
			answer(c, &q, true, DNS_RCODE_NXDOMAIN, NULL, 0);
		return;
	}
	struct policy_verdict v = policy_decide_name(c->pol->policy, name, 0);
	if (v.decision == DECISION_DENY) {
		if (audit_query(c, &q, name, &v, "denied by policy") == 0)
			answer(c, &q, true, DNS_RCODE_NXDOMAIN, NULL, 0);
		return;
	}
	/* On record before the name leaves the host, whatever happens to
	 * the stream afterwards. */
	if (audit_query(c, &q, name, &v, NULL) < 0)
		return;
	struct dns_job *j = calloc(1, sizeof(*j));
	if (!j) {
		answer(c, &q, true, DNS_RCODE_SERVFAIL, NULL, 0);
		return;
	}
	j->s = s;
	j->q = q;
	memcpy(j->q.qname, name, strlen(name) + 1);
	j->q.qname_len = strlen(name);
	j->v = v;
	LIST_INSERT_HEAD(&s->jobs, j, link);
	s->inflight++;
	j->rq = resolver_lookup(c->w->resolver, name, on_resolved, j);
	if (!j->rq) {
		answer(c, &q, true, DNS_RCODE_SERVFAIL, NULL, 0);
		job_free(j);
	}
}

enum conn_next dns_stream_start(struct conn *c)
{
	struct dns_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return conn_end(c, "out of memory");
	s->c = c;
	c->dns = s;
	c->state = CS_DNS;
	c->last_active_ms = mono_ms();
	/* One whole message (64 KiB + prefix) must fit in the input. */
	bufferevent_setwatermark(c->client, EV_READ, 0, DNS_MSG_MAX + 2);
	conn_set_timer(c, (uint64_t)c->px->cfg->idle_timeout * 1000);
	return read_messages(c);
}

/* Handle every whole message buffered, unless back-pressure says wait. */
static enum conn_next read_messages(struct conn *c)
{
	struct dns_stream *s = c->dns;
	struct evbuffer *in = bufferevent_get_input(c->client);
	while (c->state == CS_DNS) {
		/* Back-pressure: too many lookups or unread answers, the
		 * stream's or the proxy's record budget spent, or the log
		 * unwritable (the tick resumes the last three). */
		if (s->inflight >= DNS_MAX_INFLIGHT ||
		    evbuffer_get_length(bufferevent_get_output(c->client)) >=
			    DNS_OUT_HWM ||
		    !proxy_may_act(c->px) ||
		    !audit_agg_budget_ok(&s->agg, mono_ms()) ||
		    !proxy_budget_ok(c->px)) {
			if (!s->reading_paused)
				bufferevent_disable(c->client, EV_READ);
			s->reading_paused = true;
			return CONN_NEXT_WAIT;
		}
		size_t len = evbuffer_get_length(in);
		if (len < 2)
			break;
		const uint8_t *p = evbuffer_pullup(in, 2);
		size_t mlen = (size_t)p[0] << 8 | p[1];
		if (mlen == 0)
			return conn_end(c, "zero-length DNS message");
		if (len < 2 + mlen)
			break;
		p = evbuffer_pullup(in, (ssize_t)(2 + mlen));
		c->last_active_ms = mono_ms();
		handle_query(c, p + 2, mlen);
		evbuffer_drain(in, 2 + mlen);
	}
	if (c->state != CS_DNS)
		return CONN_NEXT_WAIT;
	if (s->reading_paused && !c->up_eof) {
		s->reading_paused = false;
		bufferevent_enable(c->client, EV_READ);
	}
	return c->up_eof ? finish_if_done(c) : CONN_NEXT_WAIT;
}

enum conn_next dns_stream_read(struct conn *c)
{
	return read_messages(c);
}

enum conn_next dns_stream_eof(struct conn *c)
{
	return read_messages(c); /* complete messages buffered, then close */
}

bool dns_stream_idle(const struct conn *c)
{
	return !c->dns || c->dns->inflight == 0;
}

enum conn_next dns_stream_tick(struct conn *c)
{
	struct dns_stream *s = c->dns;
	if (proxy_audit_flush(c->px, &s->agg, false) < 0)
		return CONN_NEXT_WAIT;
	if (c->state == CS_DNS && s->reading_paused)
		return read_messages(c);
	return CONN_NEXT_WAIT;
}

void dns_stream_flush(struct conn *c)
{
	if (c->dns)
		proxy_audit_flush(c->px, &c->dns->agg, true);
}

void dns_stream_free(struct dns_stream *s)
{
	while (!LIST_EMPTY(&s->jobs))
		job_free(LIST_FIRST(&s->jobs));
	s->c->dns = NULL;
	free(s);
}
