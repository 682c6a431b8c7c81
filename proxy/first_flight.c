/* The client's first flight: its first bytes are classified through the
 * protocol table (proto.c) and held to the checks that tie a stream to
 * the name it was decided for. The checks are written once, here, and
 * serve both moments a first flight is checked: the first peek (before
 * any upstream, or while an upstream opened early waits, WAIT_FIRST) and
 * the late peek (after a server greeting on a rule with tcp, relay.c). */
#include "conn_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "proto.h"

/* Classify and parse the first flight in buf. FF_PASS: pi is filled and
 * c->proto says what the stream is (proto_tcp when opaque). */
static enum ff_result classify(struct conn *c, const uint8_t *buf,
			       size_t len, struct peek_info *pi)
{
	/* Detect again each time: "GE" may be HTTP until "GE\x01" is not. */
	c->proto = proto_detect(buf, len);
	switch (c->proto->peek(buf, len, pi)) {
	case PEEK_MORE:
		if (c->proto->max_peek && len >= c->proto->max_peek) {
			conn_refuse(c, DENY_MALFORMED,
				    c->proto == &proto_tls
					    ? "ClientHello too large"
					    : "request head too large");
			return FF_REFUSED;
		}
		return FF_MORE;
	case PEEK_BAD:
		conn_refuse(c, pi->malformed ? DENY_MALFORMED : DENY_POLICY,
			    pi->why ? pi->why : "refused by protocol check");
		return FF_REFUSED;
	case PEEK_OK:
		break;
	}
	if (pi->opaque)
		c->proto = &proto_tcp;
	return FF_PASS;
}

/* A transparent connection to an IP literal adopts the name its client
 * asked for (which must then pass policy itself and is resolved by the
 * proxy), once, and only while no upstream depends on the address. */
static bool may_adopt(const struct conn *c, const struct peek_info *pi)
{
	return c->literal && !c->name_from_peek && !c->is_connect &&
	       c->origin == ORIGIN_TRANSPARENT &&
	       !ip_parse_strict(pi->name, pi->name_len, &(struct ip_addr){0});
}

/* The first-flight checks. Report mode never relaxes them: a mismatched,
 * missing or hidden (ECH) name means the policy cannot know what is being
 * reached. adopt: the name may still be adopted (the first peek). false:
 * conn_refuse() was called. */
static bool first_flight_checks(struct conn *c, const struct peek_info *pi,
				bool adopt)
{
	char why[400];
	if (c->proto == &proto_tls) {
		if (pi->has_name)
			fmt_buf(c->sni, sizeof(c->sni), "%s", pi->name);
		if (pi->ech) {
			conn_refuse(c, DENY_POLICY,
				    "TLS ClientHello offers ECH "
				    "(encrypted_client_hello): the real name "
				    "is hidden");
			return false;
		}
		if (!pi->has_name && conn_by_name(c)) {
			conn_refuse(c, DENY_POLICY,
				    "TLS ClientHello without SNI for a "
				    "connection by name");
			return false;
		}
	}
	if (c->proto == &proto_http && !pi->has_name && conn_by_name(c)) {
		conn_refuse(c, DENY_MALFORMED,
			    "HTTP request without Host for a connection by "
			    "name: the server would choose the site");
		return false;
	}
	if (!pi->has_name)
		return true;
	if (adopt && may_adopt(c, pi)) {
		char norm[256];
		if (ip_looks_numeric(pi->name, pi->name_len) ||
		    policy_normalize_name(pi->name, pi->name_len, norm,
					  sizeof(norm)) < 0) {
			fmt_buf(why, sizeof(why), "invalid name '%.80s' in %s",
				pi->name, c->proto->name);
			conn_refuse(c, DENY_MALFORMED, why);
			return false;
		}
		memcpy(c->name, norm, strlen(norm) + 1);
		c->name_from_peek = true;
		return true;
	}
	if (!host_matches(c->name, pi->name, pi->name_len) ||
	    (pi->name_port && pi->name_port != c->port)) {
		fmt_buf(why, sizeof(why),
			"%s names '%.100s' but the connection is for %s:%u",
			c->proto == &proto_tls ? "SNI" : "Host", pi->name,
			c->name, c->port);
		conn_hint(c, "connect to the host by the name the "
			     "request uses");
		conn_refuse(c, DENY_POLICY, why);
		return false;
	}
	return true;
}

/* Server-speaks-first protocols (SMTP, MySQL, FTP, SSH) send nothing until
 * the server greets them, so a silent client must not hold the upstream
 * back. The policy is decided by name and port at once (a denial needs
 * nothing from the client), and an allowed upstream is resolved, checked
 * and connected while the client stays silent; its bytes still pass the
 * peek before any reaches it (WAIT_FIRST). */
enum conn_next conn_start_peek(struct conn *c)
{
	c->phase_start_ms = mono_ms();
	c->peek_started = false;
	if (c->upstream) /* CONNECT tunnel: connected before the peek */
		return CONN_NEXT_WAIT_FIRST;
	c->state = CS_PEEK;
	if (evbuffer_get_length(bufferevent_get_input(c->client)) > 0)
		return conn_peek_step(c);
	c->early_upstream = true;
	return CONN_NEXT_DECIDE;
}

enum conn_next conn_wait_first(struct conn *c)
{
	c->state = CS_WAIT_FIRST;
	c->phase_start_ms = mono_ms();
	c->peek_started = false;
	bufferevent_enable(c->upstream, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->client)) > 0)
		return conn_peek_step(c);
	if (c->up_eof)
		return conn_end(c, "client closed before sending anything");
	/* Neither side spoke yet: an idle connection, as a relay would be. */
	conn_set_timer(c, (uint64_t)c->px->cfg->idle_timeout * 1000);
	return CONN_NEXT_WAIT;
}

enum conn_next conn_upstream_first(struct conn *c, short what, int err)
{
	if (what & BEV_EVENT_ERROR) {
		char why[160];
		fmt_buf(why, sizeof(why), "upstream error: %s",
			evutil_socket_error_to_string(err));
		return conn_refuse(c, DENY_UPSTREAM, why);
	}
	if (c->peek_started) {
		/* The client's first message is being checked: what the
		 * upstream sent waits for the verdict (relay_start). */
		if (what & BEV_EVENT_EOF)
			return conn_refuse(c, DENY_UPSTREAM,
					   "upstream closed before the "
					   "client's first message was "
					   "checked");
		bufferevent_disable(c->upstream, EV_READ);
		return CONN_NEXT_WAIT;
	}
	/* TLS and HTTP clients speak first: a server that greets is some
	 * other protocol, which only a rule with tcp lets through. */
	c->proto = &proto_tcp;
	struct conn_aux *a = conn_aux(c);
	if (a)
		fmt_buf(a->seen, sizeof(a->seen),
			"the upstream spoke first, before the client");
	if (!conn_check_protocol(c))
		return CONN_NEXT_DENY;
	/* Opaque TCP, decided by name and port; the client's first bytes
	 * are checked when they come (late peek). */
	c->late_peek = true;
	c->early_upstream = false;
	if (conn_audit_connect(c, NULL) < 0)
		return conn_end(c, "audit log write failed: failing closed");
	if (what & BEV_EVENT_EOF)
		c->down_eof = true; /* relay_start passes it on */
	return CONN_NEXT_RELAY;
}

/* Remember what an opaque stream began with, for its refusal. */
static void note_seen(struct conn *c, const uint8_t *buf, size_t len,
		      const struct peek_info *pi)
{
	struct conn_aux *a = conn_aux(c);
	if (!a)
		return;
	if (pi && pi->opaque && pi->why)
		fmt_buf(a->seen, sizeof(a->seen), "%s", pi->why);
	else
		proto_describe(buf, len, a->seen, sizeof(a->seen));
}

static enum conn_next after_peek(struct conn *c, const struct peek_info *pi)
{
	if (c->synthetic_unknown)
		return CONN_NEXT_DECIDE; /* denies, naming the address */
	bool had_name = c->name_from_peek;
	if (!first_flight_checks(c, pi, true))
		return CONN_NEXT_DENY;
	bool adopted = c->name_from_peek && !had_name;
	c->early_upstream = false;
	if (c->upstream && adopted) {
		/* Opened for the guest's address before the client named a
		 * host: the name is decided and resolved by the proxy now. */
		bufferevent_free(c->upstream);
		c->upstream = NULL;
		c->addr_str[0] = '\0';
	}
	if (!c->upstream)
		return CONN_NEXT_DECIDE;
	/* CONNECT or WAIT_FIRST: decided and connected already. */
	return conn_check_protocol(c) ? CONN_NEXT_RELAY : CONN_NEXT_DENY;
}

enum conn_next conn_peek_step(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return CONN_NEXT_WAIT;
	if (!c->peek_started) {
		/* First byte seen: the rest of the handshake budget applies
		 * (after a silence in WAIT_FIRST, all of it). */
		c->peek_started = true;
		if (c->state == CS_WAIT_FIRST)
			c->phase_start_ms = mono_ms();
		uint64_t budget = (uint64_t)c->px->cfg->handshake_timeout * 1000;
		uint64_t spent = mono_ms() - c->phase_start_ms;
		conn_set_timer(c, spent < budget ? budget - spent : 1);
	}
	const uint8_t *buf = evbuffer_pullup(in, -1);
	struct peek_info pi;
	switch (classify(c, buf, len, &pi)) {
	case FF_MORE:
		if (c->up_eof)
			return conn_end(c, "client closed in the middle of "
					   "its first message");
		return CONN_NEXT_WAIT;
	case FF_REFUSED:
		return CONN_NEXT_DENY;
	case FF_PASS:
		break;
	}
	evtimer_del(c->timer);
	if (c->proto == &proto_tcp)
		note_seen(c, buf, len, &pi);
	return after_peek(c, &pi);
}

enum conn_next conn_peek_timeout(struct conn *c)
{
	if (!c->peek_started) {
		/* WAIT_FIRST: neither side spoke for the idle timeout. The
		 * upstream was opened, so it is recorded like an idle relay. */
		c->proto = &proto_tcp;
		c->early_upstream = false;
		conn_audit_connect(c, NULL);
		return conn_end(c, "idle timeout");
	}
	/* Say what did come: a slow line protocol on a tcp rule is held
	 * until its first line ends, and this is where it shows. */
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t len = evbuffer_get_length(in);
	char seen[128], why[200];
	proto_describe(evbuffer_pullup(in, len < 16 ? (ssize_t)len : 16), len,
		       seen, sizeof(seen));
	fmt_buf(why, sizeof(why),
		"handshake timeout: first message incomplete (%s)", seen);
	return conn_refuse(c, DENY_MALFORMED, why);
}

/* A client that lets the server speak first and then sends a ClientHello
 * or an HTTP request gets the same checks as one that spoke at once;
 * otherwise a server banner would turn off the SNI/Host check
 * (domain fronting to a co-tenant of the allowed name's address). The name
 * can no longer be adopted (the upstream is already connected), so a
 * connection to an IP literal may only name that address. Only rules with
 * tcp get here (conn_upstream_first refuses the others). After a server
 * greeting, clients of SMTP, FTP, POP3 or IMAP send lines like "EHLO x"
 * that are not request lines (http_request_looks tells them apart). */
enum ff_result first_flight_late(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return FF_MORE;
	const uint8_t *buf = evbuffer_pullup(in, -1);
	if (proto_detect(buf, len) == &proto_tcp) {
		c->late_peek = false;
		return FF_PASS;
	}
	struct peek_info pi;
	enum ff_result r = classify(c, buf, len, &pi);
	if (r != FF_PASS)
		return r;
	c->late_peek = false;
	if (pi.opaque) /* HTTP/2 prior knowledge: a tcp rule's stream */
		return FF_PASS;
	return first_flight_checks(c, &pi, false) ? FF_PASS : FF_REFUSED;
}

/* RFC 8446 4.1.2: the retry repeats the first hello but for the key
 * share, the cookie, early data and padding. Its server_name must be the
 * first's byte for byte: the server may route on either hello. */
bool first_flight_retry(struct conn *c, const uint8_t *buf, size_t len,
			const char *first_sni)
{
	struct peek_info pi;
	char why[400];
	if (proto_tls.peek(buf, len, &pi) != PEEK_OK) {
		fmt_buf(why, sizeof(why), "second ClientHello: %s",
			pi.why ? pi.why : "malformed");
		conn_refuse(c, DENY_MALFORMED, why);
		return false;
	}
	bool same = first_sni ? pi.has_name && strcmp(pi.name, first_sni) == 0
			      : !pi.has_name;
	if (!same) {
		fmt_buf(why, sizeof(why),
			"second ClientHello (after a HelloRetryRequest) %s%.100s%s "
			"but the first %s%.100s%s",
			pi.has_name ? "names '" : "has no SNI",
			pi.has_name ? pi.name : "", pi.has_name ? "'" : "",
			first_sni ? "named '" : "had no SNI",
			first_sni ? first_sni : "", first_sni ? "'" : "");
		conn_refuse(c, DENY_POLICY, why);
		return false;
	}
	return first_flight_checks(c, &pi, false);
}
