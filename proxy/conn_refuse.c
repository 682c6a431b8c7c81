/* Refusals: the connect record says deny (unless only the upstream was
 * unreachable), the client gets the refusal in its own protocol (a 403 or
 * 400 page, a TLS alert, or nothing), and the connection closes once that
 * is out (FLUSH). */
#include "conn_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/util.h"
#include "proto.h"

/* A transparent connection refused before its client spoke (decided by
 * name and port at once) waits this long for the client's first bytes, so
 * that an HTTP or TLS client that was just about to speak gets a readable
 * 403 or an alert instead of a bare close. */
#define DENY_GRACE_MS 300

enum conn_next conn_refuse(struct conn *c, enum deny_kind kind,
			   const char *reason)
{
	if (c->state == CS_FLUSH)
		return CONN_NEXT_WAIT; /* one refusal per connection */
	struct conn_aux *a = conn_aux(c);
	if (!a)
		return conn_end(c, reason);
	if (reason != a->reason)
		fmt_buf(a->reason, sizeof(a->reason), "%s", reason);
	a->deny_kind = kind;
	return CONN_NEXT_DENY;
}

/* FLUSH: write the refusal in the client's protocol (c->proto), then close
 * once it is out. */
static enum conn_next respond(struct conn *c)
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
	if (evbuffer_get_length(out) == 0)
		return conn_end(c, a->reason);
	bufferevent_enable(c->client, EV_READ | EV_WRITE);
	conn_set_timer(c, PROXY_LINGER_MS);
	return CONN_NEXT_WAIT;
}

/* The client's first bytes during a deny grace wait: they name the
 * protocol the refusal is written in. */
static enum conn_next client_spoke(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t len = evbuffer_get_length(in);
	if (len)
		c->proto = proto_detect(evbuffer_pullup(in, -1), len);
	return respond(c);
}

enum conn_next refuse_start(struct conn *c)
{
	if (c->state == CS_FLUSH)
		return CONN_NEXT_WAIT; /* one refusal per connection */
	struct conn_aux *a = c->aux; /* conn_refuse() allocated it */
	enum deny_kind kind = a->deny_kind;
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
	/* Refused at once, before the client's first bytes were checked:
	 * the verdict is final and audited; only the wording waits. */
	if (c->early_upstream && !c->proto && !c->up_eof &&
	    evbuffer_get_length(bufferevent_get_input(c->client)) == 0) {
		a->deny_waiting = true;
		conn_set_timer(c, DENY_GRACE_MS);
		return CONN_NEXT_WAIT;
	}
	if (c->early_upstream && !c->proto)
		return client_spoke(c);
	return respond(c);
}

enum conn_next refuse_linger(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	if (c->upstream) {
		bufferevent_free(c->upstream);
		c->upstream = NULL;
	}
	c->state = CS_FLUSH;
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_enable(c->client, EV_READ | EV_WRITE);
	conn_set_timer(c, PROXY_LINGER_MS);
	return refuse_client_written(c);
}

enum conn_next refuse_client_read(struct conn *c)
{
	if (c->aux->deny_waiting)
		return client_spoke(c);
	struct evbuffer *in = bufferevent_get_input(c->client);
	evbuffer_drain(in, evbuffer_get_length(in));
	return CONN_NEXT_WAIT;
}

/* The response is out. Half-close and wait for the client's EOF so that
 * unread request bytes do not turn our close into a RST that destroys the
 * response before the client read it. */
enum conn_next refuse_client_written(struct conn *c)
{
	if (c->aux->deny_waiting || c->flushed ||
	    evbuffer_get_length(bufferevent_get_output(c->client)) > 0)
		return CONN_NEXT_WAIT;
	c->flushed = true;
	if (c->up_eof)
		return conn_end(c, c->aux->reason);
	shutdown(bufferevent_getfd(c->client), SHUT_WR);
	return CONN_NEXT_WAIT;
}

enum conn_next refuse_client_eof(struct conn *c)
{
	if (c->flushed || c->aux->deny_waiting)
		return conn_end(c, c->aux->reason);
	return CONN_NEXT_WAIT;
}
