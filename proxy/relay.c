/* Splicing an established connection: bytes move between the two
 * bufferevents without copies (evbuffer_add_buffer), except that plain
 * HTTP from the client passes through the per-request checker.
 *
 * Back-pressure: when the receiving side's output buffer holds more than
 * RELAY_HWM bytes, reading from the sending side stops, and resumes from
 * the receiving side's write callback once it has drained below half.
 * Half-close: EOF from one side becomes shutdown(SHUT_WR) on the other once
 * everything before it was written; the connection closes when both
 * directions are done. A request refused after others were forwarded is
 * a half-close the proxy makes itself (relay_refuse_request). */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "conn_internal.h"
#include "intercept.h"
#include "proto.h"

#define RELAY_HWM (256 * 1024)
#define RELAY_IO_MAX (128 * 1024)
/* libevent 2.1's evbuffer_read() takes at most this much per call
 * (EVBUFFER_MAX_READ), whatever max_single_read says. */
#define LIBEVENT_READ_CAP 4096
/* Client input may hold one whole request head for the checker. */
#define RELAY_CLIENT_READ_MAX (HTTP_HEAD_MAX + 8192)

enum conn_next relay_start(struct conn *c)
{
	if (conn_audit_connect(c, NULL) < 0)
		return conn_end(c, "audit log write failed: failing closed");
	if (c->hc.mode != HC_ABSOLUTE)
		http_checker_init(&c->hc, c->proto == &proto_http ? HC_HOST
								   : HC_OFF);
	c->hc.need_host = conn_by_name(c);
	c->state = CS_RELAY;
	/* Set-up state is dead weight in an idle tunnel. */
	free(c->aux);
	c->aux = NULL;
	c->last_active_ms = mono_ms();
	conn_set_timer(c, (uint64_t)c->px->cfg->idle_timeout * 1000);
	bufferevent_setwatermark(c->client, EV_READ, 0,
				 c->hc.mode == HC_OFF ? RELAY_HWM
						      : RELAY_CLIENT_READ_MAX);
	bufferevent_setwatermark(c->upstream, EV_READ, 0, RELAY_HWM);
	/* libevent reads and writes at most 16 KiB per call by default: a
	 * bulk transfer then pays four times the syscalls and loop turns. */
	bufferevent_set_max_single_read(c->client, RELAY_IO_MAX);
	bufferevent_set_max_single_read(c->upstream, RELAY_IO_MAX);
	bufferevent_set_max_single_write(c->client, RELAY_IO_MAX);
	bufferevent_set_max_single_write(c->upstream, RELAY_IO_MAX);
	bufferevent_setwatermark(c->client, EV_WRITE, RELAY_HWM / 2, 0);
	bufferevent_setwatermark(c->upstream, EV_WRITE, RELAY_HWM / 2, 0);
	/* EV_WRITE stays enabled on both from their creation (nothing
	 * disables it), so queued output is flushed; enabling it again would
	 * add a write event for an empty buffer (epoll_ctl, a wake-up and an
	 * epoll_ctl to take it off again). */
	bufferevent_enable(c->upstream, EV_READ);
	if (!c->up_eof)
		bufferevent_enable(c->client, EV_READ);
	if (c->proto == &proto_tls && !c->late_peek) {
		enum conn_next next = tls_watch_start(c);
		if (next != CONN_NEXT_WAIT)
			return next;
	}
	bool eof = c->up_eof;
	/* What the upstream sent while the client's first bytes were being
	 * checked (WAIT_FIRST) is relayed on the next loop turn: its socket
	 * may stay quiet, so no read would bring it out. */
	if (evbuffer_get_length(bufferevent_get_input(c->upstream)) > 0)
		bufferevent_trigger(c->upstream, EV_READ,
				    BEV_TRIG_DEFER_CALLBACKS);
	/* Bytes peeked (or sent early) go first. */
	if (evbuffer_get_length(bufferevent_get_input(c->client)) > 0)
		return relay_client_read(c); /* handles an earlier EOF */
	if (eof)
		return relay_eof(c, true);
	/* The upstream spoke first and closed (conn_upstream_first). */
	if (c->down_eof)
		return relay_eof(c, false);
	return CONN_NEXT_WAIT;
}

/* Queueing bytes for an idle socket would cost a turn of the event loop
 * (epoll_ctl, epoll_wait, writev, epoll_ctl) before they leave, which is
 * most of the latency a relay adds and a third of a short tunnel's system
 * calls. What the socket does not take is queued as before (back-pressure,
 * ordering and half-close all still go through the output buffer). */
void conn_move(struct evbuffer *in, struct bufferevent *to, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(to);
	if (evbuffer_get_length(out) == 0) {
		int w = evbuffer_write_atmost(in, bufferevent_getfd(to),
					      (ev_ssize_t)n);
		if (w > 0)
			n -= (size_t)w;
	}
	if (n)
		evbuffer_remove_buffer(in, out, n);
}

void conn_send(struct bufferevent *to, const void *p, size_t n)
{
	if (evbuffer_get_length(bufferevent_get_output(to)) == 0) {
		ssize_t w = send(bufferevent_getfd(to), p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p = (const char *)p + w;
			n -= (size_t)w;
		}
	}
	/* A failed send leaves the error for the bufferevent's own write. */
	if (n)
		bufferevent_write(to, p, n);
}

/* A bufferevent read of `just` bytes that filled libevent's 4 KiB cap
 * means more is probably waiting; without this a bulk transfer costs an
 * epoll_wait, a FIONREAD ioctl, a readv and a writev per 4 KiB. Read the
 * rest now, in one readv of up to RELAY_IO_MAX straight into the
 * receiving side's output buffer (after what is queued there, so order
 * holds; bufferevents only let their own reads append to an input
 * buffer), never past its high-water mark. EOF is left for the
 * bufferevent to see on its next read. Returns the bytes read, or -1
 * when the read failed and the connection was closed (conn_close). */
static ssize_t read_more(struct conn *c, struct bufferevent *from,
			 struct bufferevent *to, size_t just)
{
	struct evbuffer *out = bufferevent_get_output(to);
	size_t queued = evbuffer_get_length(out);
	if (just < LIBEVENT_READ_CAP || queued >= RELAY_HWM)
		return 0;
	size_t room = RELAY_HWM - queued;
	if (room > RELAY_IO_MAX)
		room = RELAY_IO_MAX;
	struct evbuffer_iovec v[2];
	int nv = evbuffer_reserve_space(out, (ev_ssize_t)room, v, 2);
	if (nv <= 0)
		return 0;
	struct iovec iov[2];
	for (int i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	ssize_t r = readv(bufferevent_getfd(from), iov, nv);
	if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR) {
		char why[160];
		fmt_buf(why, sizeof(why), "%s error: %s",
			from == c->client ? "client" : "upstream",
			strerror(errno));
		evbuffer_commit_space(out, v, 0);
		conn_close(c, why);
		return -1;
	}
	size_t got = r > 0 ? (size_t)r : 0, left = got;
	int used = 0;
	for (; used < nv && left > 0; used++) {
		if (v[used].iov_len > left)
			v[used].iov_len = left;
		left -= v[used].iov_len;
	}
	evbuffer_commit_space(out, v, used);
	return (ssize_t)got;
}

/* Refused later: the upstream has every byte forwarded before the
 * refused request; tell it the requests ended. */
static void shut_upstream(struct conn *c)
{
	if (c->up_shut || !c->upstream ||
	    evbuffer_get_length(bufferevent_get_output(c->upstream)) > 0)
		return;
	shutdown(bufferevent_getfd(c->upstream), SHUT_WR);
	c->up_shut = true;
}

enum conn_next relay_refuse_request(struct conn *c, enum deny_kind kind,
				    const char *why)
{
	c->proto = &proto_http; /* a status is an HTTP response */
	if (c->bytes_up == 0)
		return conn_refuse(c, kind, why);
	/* A status now would be read as the answer to an earlier request,
	 * whose real answer may still be on its way. The refused head and
	 * everything after it never leave and nothing more is read from the
	 * client; the upstream gets the end of the requests it did get, and
	 * its answers are relayed until it closes (relay_eof: then FLUSH's
	 * linger) or --drain-timeout (as long as a stopping proxy gives its
	 * connections to finish) has passed since the refusal: a server that
	 * never closes or a client that never reads cannot keep the
	 * connection. An HTTP client retries an idempotent request on a new
	 * connection, where it is first and gets the status. */
	struct conn_aux *a = conn_aux(c);
	if (!a)
		return conn_end(c, why);
	fmt_buf(a->reason, sizeof(a->reason),
		"%s; the connection was ended instead of answered (earlier "
		"requests' answers relayed first)",
		why);
	c->decision = DECISION_DENY; /* the close record is the refusal's */
	c->refused_later = true;
	struct evbuffer *in = bufferevent_get_input(c->client);
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_disable(c->client, EV_READ);
	proxy_log(c->px, "conn %llu: %s", (unsigned long long)c->id,
		  a->reason);
	conn_set_timer(c, (uint64_t)c->px->cfg->drain_timeout * 1000);
	bufferevent_setwatermark(c->upstream, EV_WRITE, 0, 0);
	shut_upstream(c);
	if (c->down_shut) /* the upstream closed, all relayed, already */
		return refuse_linger(c);
	return CONN_NEXT_WAIT;
}

static enum conn_next maybe_done(struct conn *c)
{
	if (c->up_shut && c->down_shut)
		return conn_end(c, c->eof_first ? c->eof_first : "closed");
	return CONN_NEXT_WAIT;
}

/* Forward what the checker allows. CONN_NEXT_WAIT: done, go on; anything
 * else: the connection is refused or closed, return it. */
static enum conn_next forward_checked(struct conn *c, struct evbuffer *in,
				      struct evbuffer *out)
{
	if (c->late_peek) {
		switch (first_flight_late(c)) {
		case FF_MORE:
			return CONN_NEXT_WAIT;
		case FF_REFUSED:
			return CONN_NEXT_DENY;
		case FF_PASS:
			break;
		}
		if (c->proto == &proto_http && c->hc.mode == HC_OFF) {
			/* Every later request is checked too. */
			http_checker_init(&c->hc, HC_HOST);
			c->hc.need_host = conn_by_name(c);
			bufferevent_setwatermark(c->client, EV_READ, 0,
						 RELAY_CLIENT_READ_MAX);
		}
		if (c->proto == &proto_tls) {
			/* A server that greets first made this a tcp rule's
			 * stream, spliced: TLS now would pass unread where
			 * interception wants it (inspect: all), so refuse. */
			char why[400];
			if (intercept_wants(c->px->icpt,
					    conn_by_name(c) ? c->name : NULL,
					    why, sizeof(why)) != ICPT_SPLICE)
				return conn_refuse(c, DENY_POLICY,
						   "TLS after the server spoke "
						   "first cannot be "
						   "intercepted; refused, not "
						   "spliced");
			enum conn_next next = tls_watch_start(c);
			if (next != CONN_NEXT_WAIT)
				return next;
		}
	}
	if (c->tlsw) /* a TLS handshake still in plaintext */
		return tls_watch_client(c);
	for (;;) {
		size_t len = evbuffer_get_length(in);
		if (len == 0)
			return CONN_NEXT_WAIT;
		if (c->hc.mode == HC_OFF) {
			conn_move(in, c->upstream, len);
			ssize_t more = read_more(c, c->client, c->upstream, len);
			if (more < 0)
				return CONN_NEXT_CLOSE;
			c->bytes_up += len + (size_t)more;
			return CONN_NEXT_WAIT;
		}
		if (c->hc.mode == HC_ABSOLUTE && !c->hc_out) {
			c->hc_out = malloc(HC_OUT_MAX);
			if (!c->hc_out)
				return conn_end(c, "out of memory");
		}
		size_t take = len < RELAY_CLIENT_READ_MAX ? len
							  : RELAY_CLIENT_READ_MAX;
		const uint8_t *buf = evbuffer_pullup(in, (ssize_t)take);
		struct hc_action act;
		unsigned heads = c->hc.requests;
		http_checker_step(&c->hc, buf, take, c->name, c->port,
				  c->hc_out, HC_OUT_MAX, &act);
		/* A further request on an open connection is a decision that
		 * stands on the connect record: it goes out only while the
		 * audit log can be written (record.c). */
		if (heads > 0 && c->hc.requests > heads &&
		    act.result != HC_REJECT && !proxy_may_act(c->px))
			return conn_end(c, "audit log unwritable: request not "
					   "forwarded");
		if (c->hc.requests > heads && act.result != HC_REJECT) {
			enum conn_next next =
				conn_head_in_clear(c, buf, act.consumed);
			if (next != CONN_NEXT_RELAY)
				return next;
		}
		switch (act.result) {
		case HC_NEED_MORE:
			return CONN_NEXT_WAIT;
		case HC_FORWARD:
			conn_move(in, c->upstream, act.consumed);
			c->bytes_up += act.consumed;
			break;
		case HC_REWRITE:
			evbuffer_add(out, c->hc_out, act.out_len);
			evbuffer_drain(in, act.consumed);
			c->bytes_up += act.out_len;
			break;
		case HC_REJECT: {
			char why[400];
			if (act.status == 403)
				fmt_buf(why, sizeof(why),
					"request %u for '%s': %s",
					c->hc.requests + 1, act.host, act.why);
			else
				fmt_buf(why, sizeof(why), "request %u: %s",
					c->hc.requests + 1, act.why);
			if (act.status == 403)
				conn_hint(c, "open a new connection for "
						  "each host");
			return relay_refuse_request(
				c,
				act.status == 403 ? DENY_POLICY
						  : DENY_MALFORMED,
				why);
		}
		}
	}
}

enum conn_next relay_client_read(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	struct evbuffer *out = bufferevent_get_output(c->upstream);
	if (c->refused_later) { /* never forwarded: relay_refuse_request */
		evbuffer_drain(in, evbuffer_get_length(in));
		return CONN_NEXT_WAIT;
	}
	c->last_active_ms = mono_ms();
	enum conn_next next = forward_checked(c, in, out);
	if (next != CONN_NEXT_WAIT)
		return next;
	if (evbuffer_get_length(out) >= RELAY_HWM) {
		bufferevent_disable(c->client, EV_READ);
		c->up_paused = true;
	}
	if (c->up_eof && !c->up_shut)
		return relay_eof(c, true);
	return CONN_NEXT_WAIT;
}

enum conn_next relay_upstream_read(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->upstream);
	struct evbuffer *out = bufferevent_get_output(c->client);
	c->last_active_ms = mono_ms();
	if (c->tlsw) {
		bool pass;
		enum conn_next next = tls_watch_upstream(c, &pass);
		if (!pass)
			return next;
	}
	size_t len = evbuffer_get_length(in);
	if (http_checker_waiting(&c->hc) && len > 0) {
		/* The answer to an Upgrade decides whether the client's held
		 * bytes pass unchecked (101) or are checked as requests. */
		size_t n = len < sizeof(c->hc.resp) ? len : sizeof(c->hc.resp);
		http_checker_response(&c->hc, evbuffer_pullup(in, (ssize_t)n),
				      n);
		if (!http_checker_waiting(&c->hc) &&
		    evbuffer_get_length(bufferevent_get_input(c->client)) > 0)
			bufferevent_trigger(c->client, EV_READ,
					    BEV_TRIG_DEFER_CALLBACKS);
	}
	conn_move(in, c->client, len);
	ssize_t more = read_more(c, c->upstream, c->client, len);
	if (more < 0)
		return CONN_NEXT_CLOSE;
	c->bytes_down += len + (size_t)more;
	if (evbuffer_get_length(out) >= RELAY_HWM) {
		bufferevent_disable(c->upstream, EV_READ);
		c->down_paused = true;
	}
	return CONN_NEXT_WAIT;
}

enum conn_next relay_upstream_written(struct conn *c)
{
	size_t left = evbuffer_get_length(bufferevent_get_output(c->upstream));
	c->last_active_ms = mono_ms();
	if (c->refused_later) {
		shut_upstream(c);
		return CONN_NEXT_WAIT;
	}
	if (c->up_paused && left < RELAY_HWM / 2) {
		c->up_paused = false;
		if (!c->up_eof) {
			bufferevent_enable(c->client, EV_READ);
			/* The checker may be holding a partial head. */
			if (evbuffer_get_length(
				    bufferevent_get_input(c->client)) > 0)
				return relay_client_read(c);
		}
	}
	if (c->up_eof && !c->up_shut && left == 0)
		return relay_eof(c, true);
	return CONN_NEXT_WAIT;
}

enum conn_next relay_client_written(struct conn *c)
{
	size_t left = evbuffer_get_length(bufferevent_get_output(c->client));
	c->last_active_ms = mono_ms();
	if (c->down_paused && left < RELAY_HWM / 2) {
		c->down_paused = false;
		if (!c->down_eof) {
			bufferevent_enable(c->upstream, EV_READ);
			if (evbuffer_get_length(
				    bufferevent_get_input(c->upstream)) > 0) {
				enum conn_next next = relay_upstream_read(c);
				if (next != CONN_NEXT_WAIT)
					return next;
			}
		}
	}
	if (c->down_eof && !c->down_shut && left == 0)
		return relay_eof(c, false);
	return CONN_NEXT_WAIT;
}

enum conn_next relay_eof(struct conn *c, bool from_client)
{
	if (!c->eof_first)
		c->eof_first = from_client ? "closed by client"
					   : "closed by upstream";
	if (from_client) {
		c->up_eof = true;
		if (c->refused_later) /* its bytes are not read: FLUSH's */
			return CONN_NEXT_WAIT;
		/* A partial request head left at EOF is never forwarded. */
		if (c->up_shut || evbuffer_get_length(bufferevent_get_output(
					  c->upstream)) > 0)
			return CONN_NEXT_WAIT; /* relay_upstream_written
						  finishes it */
		/* The last EOF closes the connection, and close() sends the
		 * FIN (both sides have read to their EOF, so no RST): the
		 * shutdown would be a system call for nothing. */
		if (!c->down_shut)
			shutdown(bufferevent_getfd(c->upstream), SHUT_WR);
		c->up_shut = true;
	} else {
		c->down_eof = true;
		if (c->down_shut || evbuffer_get_length(bufferevent_get_output(
					    c->client)) > 0)
			return CONN_NEXT_WAIT;
		if (c->refused_later)
			return refuse_linger(c);
		if (!c->up_shut)
			shutdown(bufferevent_getfd(c->client), SHUT_WR);
		c->down_shut = true;
	}
	return maybe_done(c);
}
