/* The two narrow hooks between a connection and the secrets module
 * (docs/secrets.md): hand an allowed connection to a secret host to
 * interception instead of connecting it, and refuse placeholders in any
 * request head the relay sees in clear. */
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <unistd.h>

#include "../common/util.h"
#include "conn_internal.h"
#include "intercept.h"
#include "proto.h"
#include "secrets.h"

bool conn_intercept(struct conn *c, const struct ip_addr *a,
		    enum conn_next *next)
{
	struct proxy *px = c->px;
	if (!px->icpt || !conn_by_name(c))
		return false;
	/* An absolute-form request through the explicit proxy is plain
	 * HTTP: it stays on the relay, whose head check refuses
	 * placeholders. Only TLS (or a stream not seen yet: a CONNECT
	 * tunnel, a silent client) is taken. */
	if (c->origin == ORIGIN_HTTP_PROXY && !c->is_connect)
		return false;
	if (!c->is_connect && c->proto && c->proto != &proto_tls)
		return false;
	if (!intercept_wanted(px->icpt, c->name))
		return false;
	int fd = intercept_start(px, c->id, c->name, c->port, a);
	if (fd >= 0) {
		c->upstream = bufferevent_socket_new(px->base, fd,
						     BEV_OPT_CLOSE_ON_FREE);
		if (!c->upstream)
			close(fd);
	}
	if (!c->upstream) {
		*next = conn_refuse(c, DENY_UPSTREAM,
				    "cannot start TLS interception");
		return true;
	}
	conn_setup_upstream(c, c->upstream);
	c->state = CS_CONNECT;
	conn_set_timer(c, (uint64_t)px->cfg->connect_timeout * 1000);
	/* The socketpair is connected already; the connection learns it
	 * the way it learns of any connect, from its event callback. */
	bufferevent_trigger_event(c->upstream, BEV_EVENT_CONNECTED,
				  BEV_TRIG_DEFER_CALLBACKS);
	*next = CONN_NEXT_WAIT;
	return true;
}

bool conn_head_secrets_ok(struct conn *c, const uint8_t *head, size_t len)
{
	const struct secret_table *t = secrets_table(c->px->secrets);
	size_t out_len, which;
	uint32_t used;
	if (!t || secret_subst_head(t, NULL, head, len, NULL, 0, &out_len,
				    &used, &which) != SUBST_FOREIGN)
		return true;
	char why[400];
	fmt_buf(why, sizeof(why),
		"the placeholder of secret %s was sent in clear to %s: "
		"exfiltration attempt refused (secrets go only over TLS to "
		"their hosts)",
		t->s[which].var, c->name);
	c->proto = &proto_http;
	(void)conn_refuse(c, DENY_POLICY, why);
	return false;
}
