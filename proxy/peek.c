/* The first bytes of a connection: the wire header of a transparent
 * stream, then the client's first flight, dispatched through the protocol
 * table to find the name it asks for and check it against the name the
 * connection stands for. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "../parse/wire.h"
#include "conn.h"
#include "../parse/http_req.h"
#include "proto.h"
#include "synth.h"

bool conn_by_name(const struct conn *c)
{
	return !(c->literal && !c->name_from_peek);
}

bool conn_same_name(const struct conn *c, const char *host, size_t len)
{
	return host_matches(c->name, host, len);
}

bool conn_set_target(struct conn *c, const char *host, size_t len,
		     uint16_t port, char *why, size_t whysz)
{
	c->port = port;
	struct ip_addr a;
	if (ip_parse_strict(host, len, &a)) {
		c->literal = true;
		c->literal_addr = a;
		ip_format(&a, c->name);
		return true;
	}
	if (ip_looks_numeric(host, len)) {
		fmt_buf(why, whysz,
			"'%.*s' is neither a host name nor a strict IP address",
			(int)(len > 80 ? 80 : len), host);
		return false;
	}
	if (policy_normalize_name(host, len, c->name, sizeof(c->name)) < 0) {
		c->name[0] = '\0';
		fmt_buf(why, whysz, "'%.*s' is not a valid host name",
			(int)(len > 80 ? 80 : len), host);
		return false;
	}
	return true;
}

bool conn_check_protocol(struct conn *c)
{
	if (!c->decided || c->decision != DECISION_ALLOW || !c->proto ||
	    !c->protocols_set)
		return true;
	/* A CONNECT is decided before its tunnel carries anything: the
	 * tunnel's first bytes are checked when they come (after_peek). */
	if (c->is_connect && !c->upstream)
		return true;
	uint8_t is = c->proto == &proto_tls    ? POLICY_PROTO_TLS
		     : c->proto == &proto_http ? POLICY_PROTO_HTTP
					       : POLICY_PROTO_TCP;
	if (c->protocols & (is | POLICY_PROTO_TCP))
		return true;
	char allowed[32], why[400];
	policy_protocols_str(c->protocols, allowed, sizeof(allowed));
	const char *seen = c->aux && c->aux->seen[0] ? c->aux->seen : "?";
	if (is == POLICY_PROTO_TCP)
		fmt_buf(why, sizeof(why),
			"stream is not TLS or HTTP/1 (%s) and the rule allows "
			"only %s",
			seen, allowed);
	else
		fmt_buf(why, sizeof(why), "stream is %s and the rule allows "
			"only %s", c->proto->name, allowed);
	conn_hint(c, "if %s:%u really needs %s, add protocols: [%s] to the "
		     "rule at %s:%u",
		  c->name, c->port,
		  is == POLICY_PROTO_TCP ? "another protocol" : c->proto->name,
		  is == POLICY_PROTO_TCP ? "tcp" : c->proto->name,
		  c->rule.file ? c->rule.file : "?", c->rule.line);
	conn_deny(c, DENY_POLICY, why);
	return false;
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

void conn_read_header(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	if (evbuffer_get_length(in) < WIRE_HEADER_LEN)
		return;
	struct wire_header h;
	enum wire_status st = wire_header_parse(
		evbuffer_pullup(in, WIRE_HEADER_LEN), WIRE_HEADER_LEN, &h);
	if (st != WIRE_OK) {
		char why[120];
		fmt_buf(why, sizeof(why), "bad wire header: %s",
			wire_status_str(st));
		conn_close(c, why);
		return;
	}
	evbuffer_drain(in, WIRE_HEADER_LEN);
	if (h.kind == WIRE_DNS) {
		dns_stream_start(c);
		return;
	}
	if (h.kind != WIRE_TCP) {
		conn_close(c, "control streams are not accepted by the proxy");
		return;
	}
	struct ip_addr dst = {.family = h.family == 4 ? AF_INET : AF_INET6};
	memcpy(dst.b, h.addr, h.family == 4 ? 4 : 16);
	c->port = h.port;
	if (synth_contains(c->px->synth, &dst)) {
		const char *name = synth_lookup(c->px->synth, &dst);
		if (name) {
			fmt_buf(c->name, sizeof(c->name), "%s", name);
		} else {
			/* Denied with the decision (conn_decide_and_resolve);
			 * the refusal speaks the client's protocol when its
			 * first bytes are there (or come within the grace). */
			c->synthetic_unknown = true;
			ip_format(&dst, c->name);
		}
	} else {
		c->literal = true;
		c->literal_addr = dst;
		ip_format(&dst, c->name);
	}
	conn_start_peek(c);
}

/* Server-speaks-first protocols (SMTP, MySQL, FTP, SSH) send nothing until
 * the server greets them, so a silent client must not hold the upstream
 * back. The policy is decided by name and port at once (a denial needs
 * nothing from the client), and an allowed upstream is resolved, checked
 * and connected while the client stays silent; its bytes still pass the
 * peek before any reaches it (WAIT_FIRST). */
void conn_start_peek(struct conn *c)
{
	c->phase_start_ms = mono_ms();
	c->peek_started = false;
	if (c->upstream) { /* CONNECT tunnel: connected before the peek */
		conn_wait_first(c);
		return;
	}
	c->state = CS_PEEK;
	if (evbuffer_get_length(bufferevent_get_input(c->client)) > 0) {
		conn_peek_step(c);
		return;
	}
	c->early_upstream = true;
	conn_decide_and_resolve(c); /* c may be gone */
}

void conn_wait_first(struct conn *c)
{
	c->state = CS_WAIT_FIRST;
	c->phase_start_ms = mono_ms();
	c->peek_started = false;
	bufferevent_enable(c->upstream, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->client)) > 0) {
		conn_peek_step(c);
		return;
	}
	if (c->up_eof) {
		conn_close(c, "client closed before sending anything");
		return;
	}
	/* Neither side spoke yet: an idle connection, as a relay would be. */
	conn_set_timer(c, (uint64_t)c->px->cfg->idle_timeout * 1000);
}

/* The upstream spoke first: the stream is opaque TCP, decided by name and
 * port; the client's first bytes are checked when they come (late peek).
 * Returns false when c was closed. */
static bool start_opaque(struct conn *c)
{
	c->proto = &proto_tcp;
	c->late_peek = true;
	c->early_upstream = false;
	if (conn_audit_connect(c, NULL) < 0) {
		conn_close(c, "audit log write failed: failing closed");
		return false;
	}
	/* Client input is empty and open, the record written: this cannot
	 * close c. */
	conn_start_relay(c);
	return true;
}

void conn_upstream_first(struct conn *c, short what, int err)
{
	if (what & BEV_EVENT_ERROR) {
		char why[160];
		fmt_buf(why, sizeof(why), "upstream error: %s",
			evutil_socket_error_to_string(err));
		conn_deny(c, DENY_UPSTREAM, why);
		return;
	}
	if (c->peek_started) {
		/* The client's first message is being checked: what the
		 * upstream sent waits for the verdict (conn_start_relay). */
		if (what & BEV_EVENT_EOF)
			conn_deny(c, DENY_UPSTREAM,
				  "upstream closed before the client's first "
				  "message was checked");
		else
			bufferevent_disable(c->upstream, EV_READ);
		return;
	}
	/* TLS and HTTP clients speak first: a server that greets is some
	 * other protocol, which only a rule with tcp lets through. */
	c->proto = &proto_tcp;
	struct conn_aux *a = conn_aux(c);
	if (a)
		fmt_buf(a->seen, sizeof(a->seen),
			"the upstream spoke first, before the client");
	if (!conn_check_protocol(c))
		return;
	if (!start_opaque(c))
		return;
	if (what & BEV_EVENT_EOF)
		relay_eof(c, false);
}

/* Take the name a TLS or HTTP client asked for. Transparent connections to
 * an IP literal adopt it (it must then pass policy itself and is resolved
 * by the proxy); everything else must match the connection's name. */
static bool check_peeked_name(struct conn *c, const struct peek_info *pi)
{
	char why[400];
	if (c->literal && !c->name_from_peek && !c->is_connect &&
	    c->origin == ORIGIN_TRANSPARENT &&
	    !ip_parse_strict(pi->name, pi->name_len, &(struct ip_addr){0})) {
		char norm[256];
		if (ip_looks_numeric(pi->name, pi->name_len) ||
		    policy_normalize_name(pi->name, pi->name_len, norm,
					  sizeof(norm)) < 0) {
			fmt_buf(why, sizeof(why), "invalid name '%.80s' in %s",
				pi->name, c->proto->name);
			conn_deny(c, DENY_MALFORMED, why);
			return false;
		}
		memcpy(c->name, norm, strlen(norm) + 1);
		c->name_from_peek = true;
		return true;
	}
	if (!conn_same_name(c, pi->name, pi->name_len) ||
	    (pi->name_port && pi->name_port != c->port)) {
		fmt_buf(why, sizeof(why),
			"%s names '%.100s' but the connection is for %s:%u",
			c->proto == &proto_tls ? "SNI" : "Host", pi->name,
			c->name, c->port);
		conn_hint(c, "connect to the host by the name the "
				  "request uses");
		conn_deny(c, DENY_POLICY, why);
		return false;
	}
	return true;
}

/* Report mode never relaxes these checks: a mismatched, missing or hidden
 * (ECH) name means the policy cannot know what is being reached. */
static void after_peek(struct conn *c, const struct peek_info *pi)
{
	if (c->synthetic_unknown) {
		conn_decide_and_resolve(c); /* denies, naming the address */
		return;
	}
	if (c->proto == &proto_tls) {
		if (pi->has_name)
			fmt_buf(c->sni, sizeof(c->sni), "%s", pi->name);
		if (pi->ech) {
			conn_deny(c, DENY_POLICY,
				  "TLS ClientHello offers ECH "
				  "(encrypted_client_hello): the real name "
				  "is hidden");
			return;
		}
		if (!pi->has_name && conn_by_name(c)) {
			conn_deny(c, DENY_POLICY,
				  "TLS ClientHello without SNI for a "
				  "connection by name");
			return;
		}
	}
	if (c->proto == &proto_http && !pi->has_name && conn_by_name(c)) {
		conn_deny(c, DENY_MALFORMED,
			  "HTTP request without Host for a connection by "
			  "name: the server would choose the site");
		return;
	}
	bool adopted = c->name_from_peek;
	if (pi->has_name && !check_peeked_name(c, pi))
		return;
	adopted = c->name_from_peek && !adopted;
	c->early_upstream = false;
	if (c->upstream && adopted) {
		/* Opened for the guest's address before the client named a
		 * host: the name is decided and resolved by the proxy now. */
		bufferevent_free(c->upstream);
		c->upstream = NULL;
		c->addr_str[0] = '\0';
	}
	if (c->upstream) {
		/* CONNECT or WAIT_FIRST: decided and connected already. */
		if (conn_check_protocol(c))
			conn_start_relay(c);
	} else {
		conn_decide_and_resolve(c);
	}
}

void conn_peek_step(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return;
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
	/* Detect again each time: "GE" may be HTTP until "GE\x01" is not. */
	c->proto = proto_detect(buf, len);
	struct peek_info pi;
	switch (c->proto->peek(buf, len, &pi)) {
	case PEEK_MORE:
		if (c->proto->max_peek && len >= c->proto->max_peek) {
			conn_deny(c, DENY_MALFORMED,
				  c->proto == &proto_tls
					  ? "ClientHello too large"
					  : "request head too large");
		} else if (c->up_eof) {
			conn_close(c, "client closed in the middle of its "
				      "first message");
		}
		return;
	case PEEK_BAD:
		conn_deny(c, pi.malformed ? DENY_MALFORMED : DENY_POLICY,
			  pi.why ? pi.why : "refused by protocol check");
		return;
	case PEEK_OK:
		evtimer_del(c->timer);
		if (pi.opaque)
			c->proto = &proto_tcp;
		if (c->proto == &proto_tcp)
			note_seen(c, buf, len, &pi);
		after_peek(c, &pi);
		return;
	}
}

void conn_peek_timeout(struct conn *c)
{
	if (!c->peek_started) {
		/* WAIT_FIRST: neither side spoke for the idle timeout. The
		 * upstream was opened, so it is recorded like an idle relay. */
		c->proto = &proto_tcp;
		c->early_upstream = false;
		conn_audit_connect(c, NULL);
		conn_close(c, "idle timeout");
		return;
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
	conn_deny(c, DENY_MALFORMED, why);
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
int conn_late_peek(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return 0;
	const uint8_t *buf = evbuffer_pullup(in, -1);
	const struct proto *p = proto_detect(buf, len);
	if (p == &proto_tcp) {
		c->late_peek = false;
		return 1;
	}
	struct peek_info pi;
	char why[400];
	c->proto = p;
	switch (p->peek(buf, len, &pi)) {
	case PEEK_MORE:
		if (p->max_peek && len >= p->max_peek) {
			conn_deny(c, DENY_MALFORMED,
				  p == &proto_tls ? "ClientHello too large"
						  : "request head too large");
			return -1;
		}
		return 0;
	case PEEK_BAD:
		conn_deny(c, pi.malformed ? DENY_MALFORMED : DENY_POLICY,
			  pi.why ? pi.why : "refused by protocol check");
		return -1;
	case PEEK_OK:
		break;
	}
	c->late_peek = false;
	if (pi.opaque) { /* HTTP/2 prior knowledge: a tcp rule's stream */
		c->proto = &proto_tcp;
		return 1;
	}
	if (p == &proto_tls) {
		if (pi.has_name)
			fmt_buf(c->sni, sizeof(c->sni), "%s", pi.name);
		if (pi.ech) {
			conn_deny(c, DENY_POLICY,
				  "TLS ClientHello offers ECH "
				  "(encrypted_client_hello): the real name "
				  "is hidden");
			return -1;
		}
		if (!pi.has_name && conn_by_name(c)) {
			conn_deny(c, DENY_POLICY,
				  "TLS ClientHello without SNI for a "
				  "connection by name");
			return -1;
		}
	}
	if (p == &proto_http && !pi.has_name && conn_by_name(c)) {
		conn_deny(c, DENY_MALFORMED,
			  "HTTP request without Host for a connection by "
			  "name: the server would choose the site");
		return -1;
	}
	if (pi.has_name && (!conn_same_name(c, pi.name, pi.name_len) ||
			    (pi.name_port && pi.name_port != c->port))) {
		fmt_buf(why, sizeof(why),
			"%s names '%.100s' but the connection is for %s:%u",
			p == &proto_tls ? "SNI" : "Host", pi.name, c->name,
			c->port);
		conn_hint(c, "connect to the host by the name the "
				  "request uses");
		conn_deny(c, DENY_POLICY, why);
		return -1;
	}
	return 1;
}
