/* The TLS handshake watch: after a TLS stream's first ClientHello passed
 * the first-flight checks, the server's first flight is followed until
 * the handshake is past its plaintext part, so that no ClientHello the
 * proxy did not check reaches the server.
 *
 * RFC 8446 4.1.4: a server that needs another key share answers with a
 * HelloRetryRequest, and the client sends a second ClientHello, still in
 * plaintext. It must repeat the first's server_name, but a hostile client
 * may name another host there, and a front end that routes on the hello it
 * completes the handshake with would follow it. So, per connection:
 *
 *   SERVER  the first hello went on; the client's later bytes are held
 *           (a client may send its retry before the HelloRetryRequest
 *           arrives) until the server's first message is known:
 *           ServerHello (TLS 1.3 or 1.2) ends the watch, an alert closes
 *           the way to the server, a HelloRetryRequest goes to the client
 *           and the watch moves to RETRY; anything else refuses.
 *   RETRY   the client's bytes are held until its second ClientHello
 *           (after at most one change_cipher_spec) is complete; it passes
 *           the first hello's checks and must name the same server
 *           (first_flight_retry), or the stream is refused before any of
 *           it reaches the server. The server's bytes wait meanwhile.
 *   SERVER2 the retry went on; the server's answer must be a ServerHello
 *           (a second HelloRetryRequest is refused, RFC 8446 4.1.4).
 *
 * The watch is freed when it ends: the splice after it pays one pointer
 * test per read. */
#include "conn_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "../parse/tls_hello.h"
#include "../parse/tls_server_hello.h"
#include "proto.h"

#define CCS_LEN 6 /* one change_cipher_spec record: 14 03 0x 00 01 01 */

enum tw_phase {
	TW_SERVER,  /* first hello forwarded; waiting for the server */
	TW_RETRY,   /* HelloRetryRequest relayed; waiting for the retry */
	TW_SERVER2, /* retry forwarded; waiting for the server again */
	TW_CLOSED,  /* the server sent an alert: the client's bytes stop */
};

struct tls_watch {
	enum tw_phase phase;
	size_t client_pass; /* client bytes checked and free to go on */
	bool first_has_sni;
	char first_sni[256];
};

/* The retry may be framed as freely as the first hello (proto_tls's
 * bound), after one change_cipher_spec. */
static size_t retry_max(void)
{
	return proto_tls.max_peek + CCS_LEN;
}

/* The server's first message, with a change_cipher_spec and record
 * headers: bounds the server's bytes held while it is incomplete. */
#define SERVER_FLIGHT_MAX (TLS_SERVER_HELLO_MAX + 1024)

void tls_watch_free(struct conn *c)
{
	free(c->tlsw);
	c->tlsw = NULL;
}

enum conn_next tls_watch_start(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t len = evbuffer_get_length(in);
	struct tls_hello h;
	if (tls_hello_parse(evbuffer_pullup(in, -1), len, &h) != TLS_HELLO_OK)
		/* The peek passed these very bytes: cannot happen. */
		return conn_refuse(c, DENY_MALFORMED,
				   "ClientHello changed after it was checked");
	struct tls_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return conn_end(c, "out of memory");
	w->phase = TW_SERVER;
	w->client_pass = h.consumed;
	w->first_has_sni = h.has_sni;
	memcpy(w->first_sni, h.sni, sizeof(w->first_sni));
	c->tlsw = w;
	return CONN_NEXT_WAIT;
}

static void forward(struct conn *c, struct bufferevent *from,
		    struct bufferevent *to, size_t n)
{
	conn_move(bufferevent_get_input(from), to, n);
	if (from == c->client)
		c->bytes_up += n;
	else
		c->bytes_down += n;
}

/* Let the other side's held bytes be looked at again on the next turn:
 * its socket may stay quiet, so no read would bring them out. */
static void kick(struct bufferevent *bev)
{
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

/* RETRY: check the client's second ClientHello once it is complete. */
static enum conn_next retry_step(struct conn *c)
{
	struct tls_watch *w = c->tlsw;
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t len = evbuffer_get_length(in);
	size_t max = retry_max();
	size_t n = len < max ? len : max;
	const uint8_t *buf = evbuffer_pullup(in, (ssize_t)n);
	size_t off = 0;
	char why[300];

	if (n == 0)
		goto more;
	if (buf[0] == 21)
		return conn_end(c, "client sent an alert after the "
				   "HelloRetryRequest");
	if (buf[0] == 20) { /* RFC 8446 D.4: one CCS may come first */
		if (n < CCS_LEN)
			goto more;
		if (buf[1] != 3 || buf[3] != 0 || buf[4] != 1 || buf[5] != 1)
			return conn_refuse(c, DENY_MALFORMED,
					   "malformed change_cipher_spec "
					   "before the second ClientHello");
		off = CCS_LEN;
	}
	struct tls_hello h;
	switch (tls_hello_parse(buf + off, n - off, &h)) {
	case TLS_HELLO_INCOMPLETE:
		goto more;
	case TLS_HELLO_OK:
		break;
	case TLS_HELLO_NOT_TLS:
		return conn_refuse(c, DENY_MALFORMED,
				   "after a HelloRetryRequest the client sent "
				   "something other than a ClientHello");
	case TLS_HELLO_MALFORMED:
	case TLS_HELLO_TOO_LARGE:
	default:
		fmt_buf(why, sizeof(why), "second ClientHello: %s",
			h.why ? h.why : "malformed");
		return conn_refuse(c, DENY_MALFORMED, why);
	}
	if (!first_flight_retry(c, buf + off, h.consumed,
				w->first_has_sni ? w->first_sni : NULL))
		return CONN_NEXT_DENY;
	forward(c, c->client, c->upstream, off + h.consumed);
	w->phase = TW_SERVER2;
	w->client_pass = 0;
	kick(c->upstream); /* the server's bytes held during RETRY */
	return CONN_NEXT_WAIT;
more:
	if (n >= max)
		return conn_refuse(c, DENY_MALFORMED,
				   "second ClientHello too large");
	if (c->up_eof)
		return conn_end(c, "client closed in the middle of its second "
				   "ClientHello");
	return CONN_NEXT_WAIT;
}

enum conn_next tls_watch_client(struct conn *c)
{
	struct tls_watch *w = c->tlsw;
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t len = evbuffer_get_length(in);
	switch (w->phase) {
	case TW_CLOSED:
		evbuffer_drain(in, len);
		return CONN_NEXT_WAIT;
	case TW_RETRY:
		return retry_step(c);
	case TW_SERVER:
	case TW_SERVER2:
		break;
	}
	size_t n = len < w->client_pass ? len : w->client_pass;
	if (n) {
		forward(c, c->client, c->upstream, n);
		w->client_pass -= n;
	}
	return CONN_NEXT_WAIT; /* the rest waits for the server's answer */
}

/* The watch is over: what the client sent meanwhile goes on as usual. */
static void watch_end(struct conn *c)
{
	tls_watch_free(c);
	if (c->up_shut) /* the client's EOF was passed on already */
		evbuffer_drain(bufferevent_get_input(c->client),
			       evbuffer_get_length(
				       bufferevent_get_input(c->client)));
	else
		kick(c->client);
}

enum conn_next tls_watch_upstream(struct conn *c, bool *pass)
{
	struct tls_watch *w = c->tlsw;
	struct evbuffer *in = bufferevent_get_input(c->upstream);
	*pass = false;
	if (w->phase == TW_RETRY)
		return CONN_NEXT_WAIT; /* the server waits for the retry */
	if (w->phase == TW_CLOSED) {
		*pass = true;
		return CONN_NEXT_WAIT;
	}
	size_t len = evbuffer_get_length(in);
	size_t n = len < SERVER_FLIGHT_MAX ? len : SERVER_FLIGHT_MAX;
	struct tls_server_hello sh;
	char why[300];
	switch (tls_server_hello_parse(evbuffer_pullup(in, (ssize_t)n), n,
				       &sh)) {
	case TLS_SH_MORE:
		if (n >= SERVER_FLIGHT_MAX)
			return conn_refuse(c, DENY_MALFORMED,
					   "server's first TLS message too "
					   "large");
		return CONN_NEXT_WAIT;
	case TLS_SH_MALFORMED:
		fmt_buf(why, sizeof(why), "server's TLS handshake: %s",
			sh.why ? sh.why : "malformed");
		return conn_refuse(c, DENY_MALFORMED, why);
	case TLS_SH_ALERT:
		/* The handshake failed: the alert goes to the client, and
		 * nothing the client sends any more reaches the server. */
		w->phase = TW_CLOSED;
		evbuffer_drain(bufferevent_get_input(c->client),
			       evbuffer_get_length(
				       bufferevent_get_input(c->client)));
		*pass = true;
		return CONN_NEXT_WAIT;
	case TLS_SH_SERVER_HELLO:
		/* TLS 1.3: all that follows is encrypted; TLS 1.2: the
		 * client's next messages name nothing, and a renegotiation
		 * is encrypted. */
		watch_end(c);
		*pass = true;
		return CONN_NEXT_WAIT;
	case TLS_SH_HRR:
		break;
	}
	if (w->phase == TW_SERVER2)
		return conn_refuse(c, DENY_POLICY,
				   "a second HelloRetryRequest (RFC 8446 "
				   "4.1.4 allows one)");
	if (sh.more_in_record)
		return conn_refuse(c, DENY_MALFORMED,
				   "handshake data after the "
				   "HelloRetryRequest in its record");
	forward(c, c->upstream, c->client, sh.consumed);
	w->phase = TW_RETRY;
	/* Replaces the idle timer: its next firing is the retry's deadline
	 * (the idle timer is re-armed only when it fires). */
	conn_set_timer(c, (uint64_t)c->px->cfg->handshake_timeout * 1000);
	kick(c->client); /* a retry sent before the HelloRetryRequest came */
	return CONN_NEXT_WAIT;
}

enum conn_next tls_watch_timer(struct conn *c)
{
	/* No clock comparison: libevent's timer may fire a millisecond
	 * before mono_ms() reaches a deadline computed from it. */
	if (c->tlsw->phase != TW_RETRY)
		return CONN_NEXT_WAIT;
	return conn_refuse(c, DENY_MALFORMED,
			   "handshake timeout: second ClientHello incomplete "
			   "after a HelloRetryRequest");
}
