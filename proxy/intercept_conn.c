/* The two narrow hooks between a connection and interception
 * (docs/secrets.md): hand an allowed, connected TLS connection that a
 * secret, inspect: true or inspect: all wants to an interception session
 * instead of splicing it, and check every request head the relay sees in
 * clear (placeholders refused; an inspected host's head recorded). */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <unistd.h>

#include "../common/util.h"
#include "conn_internal.h"
#include "intercept.h"
#include "proto.h"
#include "secrets.h"

/* The dispatcher's RELAY step calls this first: every path gets here with
 * the decision recorded, the upstream connected to an address the proxy
 * resolved and checked, and the first flight checked (so c->proto says
 * what the stream is, for a CONNECT tunnel too). One branch for secrets,
 * inspect: true and inspect: all. CONN_NEXT_RELAY: relay (to the server,
 * or to the interception session that now holds the server's socket). */
enum conn_next conn_intercept(struct conn *c)
{
	struct proxy *px = c->px;
	char why[400];
	if (!px->icpt)
		return CONN_NEXT_RELAY;
	const char *name = conn_by_name(c) ? c->name : NULL;
	if (c->proto != &proto_tls) {
		/* Plain HTTP stays on the relay, whose head check refuses
		 * placeholders. Anything else to a host interception is for
		 * (a secret's host must not get an opaque stream) is closed,
		 * as a session that does not get TLS would be. */
		if (c->proto == &proto_http || !name ||
		    !intercept_named(px->icpt, name))
			return CONN_NEXT_RELAY;
		fmt_buf(why, sizeof(why),
			"%s is intercepted, and this stream is neither TLS nor "
			"HTTP", c->name);
		return conn_refuse(c, DENY_POLICY, why);
	}
	switch (intercept_wants(px->icpt, name, why, sizeof(why))) {
	case ICPT_SPLICE:
		return CONN_NEXT_RELAY;
	case ICPT_REFUSE:
		return conn_refuse(c, DENY_POLICY, why);
	case ICPT_TAKE:
		break;
	}
	/* TLS: the client speaks first, so the server has said nothing the
	 * session would miss. */
	if (evbuffer_get_length(bufferevent_get_input(c->upstream)) > 0)
		return conn_refuse(c, DENY_POLICY,
				   "the server spoke before the TLS client");
	/* The session takes the connected socket itself: detached from the
	 * bufferevent (its events deleted, so it is not closed on free), not
	 * dup()ed. With epoll's change list (worker.c) a dup is safe only
	 * while libevent happens to apply the deferred delete before its
	 * finalizer closes the original number; a registration left behind
	 * would report the session's socket under a number a later
	 * connection may reuse. */
	int up = bufferevent_getfd(c->upstream);
	if (bufferevent_setfd(c->upstream, -1) < 0)
		return conn_refuse(c, DENY_UPSTREAM,
				   "cannot start TLS interception");
	bufferevent_free(c->upstream);
	c->upstream = NULL;
	int fd = intercept_start(px, c->id, c->name, c->port, c->addr_str, up);
	if (fd >= 0) {
		c->upstream = bufferevent_socket_new(c->w->base, fd,
						     BEV_OPT_CLOSE_ON_FREE);
		if (!c->upstream)
			close(fd);
	}
	if (!c->upstream)
		return conn_refuse(c, DENY_UPSTREAM,
				   "cannot start TLS interception");
	conn_setup_upstream(c, c->upstream);
	return CONN_NEXT_RELAY;
}

enum conn_next conn_head_in_clear(struct conn *c, const uint8_t *head,
				  size_t len)
{
	const struct secret_table *t = secrets_table(c->px->secrets);
	size_t out_len, which;
	uint32_t used;
	if (t && secret_subst_head(t, NULL, head, len, NULL, 0, &out_len,
				   &used, &which) == SUBST_FOREIGN) {
		char why[400];
		fmt_buf(why, sizeof(why),
			"request %u: the placeholder of secret %s was sent in "
			"clear to %s: exfiltration attempt refused (secrets go "
			"only over TLS to their hosts)",
			c->hc.requests, t->s[which].var, c->name);
		return relay_refuse_request(c, DENY_POLICY, why);
	}
	/* An inspected host's request in clear is on record before it
	 * leaves, as on an intercepted connection. */
	if (intercept_records(c->px->icpt, c->name) &&
	    intercept_record_request(c->px, c->id, c->name, c->port, "http",
				     false, head, len) < 0)
		return conn_end(c, "audit log write failed: failing closed");
	return CONN_NEXT_RELAY;
}
