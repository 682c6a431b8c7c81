/* The one dispatcher of the connection state machine. libevent and the
 * resolver call the callbacks below; each maps (state, event) to the step
 * that handles it and hands the step's answer (enum conn_next) to
 * conn_run(), which runs the following steps until one waits for an event.
 * So the order of a connection's steps is written here, once, and a step
 * never calls another file's step itself. */
#include "conn_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/util.h"

static enum conn_next step(struct conn *c, enum conn_next next)
{
	switch (next) {
	case CONN_NEXT_WAIT:
	case CONN_NEXT_CLOSE:
		return CONN_NEXT_WAIT;
	case CONN_NEXT_PEEK:
		return conn_start_peek(c);
	case CONN_NEXT_DECIDE:
		return conn_decide_target(c);
	case CONN_NEXT_RESOLVE:
		return conn_resolve(c);
	case CONN_NEXT_LITERAL:
		return conn_connect_literal(c);
	case CONN_NEXT_CONNECT:
		return conn_connect_next(c);
	case CONN_NEXT_CONNECTED:
		return conn_upstream_connected(c);
	case CONN_NEXT_ESTABLISHED:
		return http_proxy_established(c);
	case CONN_NEXT_WAIT_FIRST:
		return conn_wait_first(c);
	case CONN_NEXT_RELAY: {
		/* Every path gets here with the decision recorded, the first
		 * flight checked (still in the client's input) and the
		 * upstream connected: the one branch to TLS interception
		 * (secrets, inspect: true, inspect: all), which swaps the
		 * upstream for its session, or splicing. */
		enum conn_next n = conn_intercept(c);
		return n == CONN_NEXT_RELAY ? relay_start(c) : n;
	}
	case CONN_NEXT_DNS:
		return dns_stream_start(c);
	case CONN_NEXT_DENY:
		return refuse_start(c);
	}
	return CONN_NEXT_WAIT;
}

void conn_run(struct conn *c, enum conn_next next)
{
	if (c->running) {
		/* libevent ran a callback from inside a step (a connect that
		 * fails at once may report it before returning): the step
		 * that is running finishes first, then this. A refusal or a
		 * close outranks anything queued before it. */
		if (next != CONN_NEXT_WAIT &&
		    (c->queued == CONN_NEXT_WAIT || next == CONN_NEXT_DENY ||
		     next == CONN_NEXT_CLOSE))
			c->queued = next;
		return;
	}
	c->running = true;
	for (;;) {
		if (c->state == CS_CLOSED)
			break;
		if (next == CONN_NEXT_WAIT || next == CONN_NEXT_CLOSE) {
			if (c->queued == CONN_NEXT_WAIT)
				break;
			next = c->queued;
			c->queued = CONN_NEXT_WAIT;
			continue;
		}
		next = step(c, next);
	}
	c->running = false;
	c->queued = CONN_NEXT_WAIT;
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	enum conn_next next = CONN_NEXT_WAIT;
	switch (c->state) {
	case CS_READ_HEADER:
		next = conn_read_header(c);
		break;
	case CS_DNS:
		next = dns_stream_read(c);
		break;
	case CS_PROXY_HEAD:
		next = http_proxy_read(c);
		break;
	case CS_PEEK:
	case CS_WAIT_FIRST:
		next = conn_peek_step(c);
		break;
	case CS_RESOLVE:
	case CS_CONNECT:
	case CS_CLOSED:
		break; /* bytes wait in the input buffer (watermark-bounded) */
	case CS_RELAY:
		next = relay_client_read(c);
		break;
	case CS_FLUSH:
		next = refuse_client_read(c);
		break;
	}
	conn_run(c, next);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	enum conn_next next = CONN_NEXT_WAIT;
	if (c->state == CS_FLUSH)
		next = refuse_client_written(c);
	else if (c->state == CS_RELAY)
		next = relay_client_written(c);
	else if (c->state == CS_DNS)
		next = dns_stream_read(c); /* output drained: may read on */
	conn_run(c, next);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	enum conn_next next = CONN_NEXT_WAIT;
	if (what & BEV_EVENT_ERROR) {
		char why[160];
		fmt_buf(why, sizeof(why), "client error: %s",
			evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		conn_run(c, conn_end(c, c->state == CS_FLUSH ? c->aux->reason
							       : why));
		return;
	}
	if (!(what & BEV_EVENT_EOF))
		return;
	c->up_eof = true;
	switch (c->state) {
	case CS_RELAY:
		next = relay_eof(c, true);
		break;
	case CS_DNS:
		next = dns_stream_eof(c);
		break;
	case CS_FLUSH:
		next = refuse_client_eof(c);
		break;
	case CS_PEEK:
	case CS_WAIT_FIRST:
		/* A client may send its request and half-close at once. */
		if (evbuffer_get_length(bufferevent_get_input(c->client)) > 0)
			next = conn_peek_step(c);
		else
			next = conn_end(c, "client closed before sending "
					   "anything");
		break;
	case CS_RESOLVE:
	case CS_CONNECT:
		if (c->origin == ORIGIN_HTTP_PROXY && c->is_connect)
			next = conn_end(c, "client closed before the tunnel "
					   "was established");
		else if (c->early_upstream &&
			 evbuffer_get_length(bufferevent_get_input(
				 c->client)) == 0)
			next = conn_end(c, "client closed before sending "
					   "anything");
		/* else: keep going; the peek or relay sees the half-close */
		break;
	case CS_READ_HEADER:
	case CS_PROXY_HEAD:
		next = conn_end(c, "client closed before a complete header");
		break;
	case CS_CLOSED:
		break;
	}
	conn_run(c, next);
}

static void upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	enum conn_next next = CONN_NEXT_WAIT;
	if (bev != c->upstream)
		return;
	if (c->state == CS_RELAY)
		next = relay_upstream_read(c);
	else if (c->state == CS_WAIT_FIRST)
		next = conn_upstream_first(c, 0, 0);
	conn_run(c, next);
}

static void upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (bev == c->upstream && c->state == CS_RELAY)
		conn_run(c, relay_upstream_written(c));
}

static void upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	int err = EVUTIL_SOCKET_ERROR();
	enum conn_next next = CONN_NEXT_WAIT;
	/* Only the current upstream's events count: a connect that failed
	 * at once may report it from inside bufferevent_socket_connect(),
	 * before the step that called it has returned (conn_run queues). */
	if (bev != c->upstream)
		return;
	switch (c->state) {
	case CS_CONNECT:
		if (what & BEV_EVENT_CONNECTED) {
			next = CONN_NEXT_CONNECTED;
		} else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
			fmt_buf(c->aux->connect_err, sizeof(c->aux->connect_err),
				"%s: %s", c->addr_str,
				evutil_socket_error_to_string(err));
			next = CONN_NEXT_CONNECT;
		}
		break;
	case CS_WAIT_FIRST:
		next = conn_upstream_first(c, what, err);
		break;
	case CS_RELAY:
		if (what & BEV_EVENT_ERROR) {
			char why[160];
			fmt_buf(why, sizeof(why), "upstream error: %s",
				evutil_socket_error_to_string(err));
			next = conn_end(c, why);
		} else if (what & BEV_EVENT_EOF) {
			next = relay_eof(c, false);
		}
		break;
	default:
		break;
	}
	conn_run(c, next);
}

void conn_setup_upstream(struct conn *c, struct bufferevent *bev)
{
	bufferevent_setcb(bev, upstream_read_cb, upstream_write_cb,
			  upstream_event_cb, c);
}

void conn_setup_client(struct conn *c)
{
	bufferevent_setcb(c->client, client_read_cb, client_write_cb,
			  client_event_cb, c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	enum conn_next next = CONN_NEXT_WAIT;
	uint64_t now = mono_ms();
	switch (c->state) {
	case CS_CLOSED:
		conn_free(c); /* the deferred free conn_close() scheduled */
		return;
	case CS_READ_HEADER:
	case CS_PROXY_HEAD:
		next = conn_end(c, "handshake timeout: no complete header");
		break;
	case CS_PEEK:
	case CS_WAIT_FIRST:
		next = conn_peek_timeout(c);
		break;
	case CS_RESOLVE:
		next = conn_refuse(c, DENY_UPSTREAM,
				   "name resolution timed out");
		break;
	case CS_CONNECT:
		fmt_buf(c->aux->connect_err, sizeof(c->aux->connect_err),
			"%s: connect timed out", c->addr_str);
		next = CONN_NEXT_CONNECT;
		break;
	case CS_RELAY:
	case CS_DNS: {
		if (c->refused_later) { /* relay_refuse_request's bound */
			next = conn_end(c, "answers before a refused request "
					   "cut at --drain-timeout");
			break;
		}
		if (c->tlsw &&
		    (next = tls_watch_timer(c)) != CONN_NEXT_WAIT)
			break;
		uint64_t idle = (uint64_t)c->px->cfg->idle_timeout * 1000;
		uint64_t quiet = now - c->last_active_ms;
		if (quiet >= idle && (c->state == CS_RELAY ||
				      dns_stream_idle(c)))
			next = conn_end(c, "idle timeout");
		else
			conn_set_timer(c, quiet >= idle ? idle : idle - quiet);
		break;
	}
	case CS_FLUSH:
		next = conn_end(c, c->aux->reason);
		break;
	}
	conn_run(c, next);
}

struct event *conn_timer_new(struct conn *c)
{
	return evtimer_new(c->w->base, timer_cb, c);
}
