/* The explicit HTTP proxy front, for tools that honour HTTPS_PROXY:
 *   CONNECT host:port  -> policy -> resolve/classify/connect -> 200, then
 *                         the tunnel's first bytes are peeked like a
 *                         transparent connection (SNI or Host must equal
 *                         the CONNECT host);
 *   GET http://host/.. -> policy -> connect, and every request on the
 *                         client connection must name the same authority;
 *                         each is rewritten to origin-form (relay.c).
 * https:// absolute URIs, origin-form requests and malformed heads get a
 * 400; refusals a 403 that says which rule to change. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <string.h>

#include "../common/util.h"
#include "../parse/http_req.h"
#include "conn_internal.h"
#include "proto.h"

static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

enum conn_next http_proxy_read(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return CONN_NEXT_WAIT;
	size_t take = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	const uint8_t *buf = evbuffer_pullup(in, (ssize_t)take);
	struct http_request rq;
	char why[400];
	switch (http_request_parse(buf, take, &rq)) {
	case HTTP_OK:
		break;
	case HTTP_INCOMPLETE:
		if (take >= HTTP_HEAD_MAX)
			return conn_refuse(c, DENY_MALFORMED,
					   "request head too large");
		return CONN_NEXT_WAIT;
	case HTTP_TOO_LARGE:
		return conn_refuse(c, DENY_MALFORMED, "request head too large");
	case HTTP_NOT_HTTP:
	case HTTP_MALFORMED:
	default:
		fmt_buf(why, sizeof(why), "malformed request: %s",
			rq.why ? rq.why : "unparseable");
		return conn_refuse(c, DENY_MALFORMED, why);
	}
	if (!rq.has_target_host)
		return conn_refuse(c, DENY_MALFORMED,
				   "a proxy request needs CONNECT host:port or "
				   "an absolute http:// URI");
	if (rq.scheme_https)
		return conn_refuse(c, DENY_MALFORMED,
				   "https:// URIs must be requested with "
				   "CONNECT");
	uint16_t port = rq.target_port;
	if (rq.is_connect && port == 0)
		return conn_refuse(c, DENY_MALFORMED, "CONNECT needs host:port");
	if (!rq.is_connect && port == 0)
		port = 80;
	if (!conn_set_target(c, (const char *)buf + rq.target_host.off,
			     rq.target_host.len, port, why, sizeof(why)))
		return conn_refuse(c, DENY_MALFORMED, why);
	c->is_connect = rq.is_connect;
	if (rq.is_connect) {
		/* The tunnel's own bytes (possibly sent early) stay. */
		evbuffer_drain(in, rq.head_len);
	} else {
		/* The checker re-reads this head, checks and rewrites it. */
		http_checker_init(&c->hc, HC_ABSOLUTE);
	}
	return CONN_NEXT_DECIDE;
}

enum conn_next http_proxy_established(struct conn *c)
{
	if (!c->is_connect)
		return CONN_NEXT_RELAY;
	conn_send(c->client, established, sizeof(established) - 1);
	/* From here on a refusal speaks the tunnelled protocol. */
	c->proto = NULL;
	return CONN_NEXT_PEEK;
}
