/* The policy decision for a connection's target: an IP literal needs a
 * cidr: rule, a name a host rule, and a literal whose client then named a
 * host needs both (the stricter verdict is recorded). What the allowing
 * rule lets through (protocols:) is checked once the stream's protocol is
 * established. Denied names never leave the host: resolution comes only
 * after an allow. */
#include "conn_internal.h"

#include <string.h>
#include <sys/socket.h>

#include "../common/util.h"
#include "proto.h"

static int severity(enum policy_decision d)
{
	return d == DECISION_DENY ? 2 : d == DECISION_WOULD_DENY ? 1 : 0;
}

static void set_verdict(struct conn *c, const struct policy_verdict *v)
{
	c->decided = true;
	c->rule_absent = false;
	c->decision = v->decision;
	c->rule = v->rule;
}

/* What a verdict that lets c through allows, narrowed by any earlier one
 * (an address's cidr: rule, then the name the client gave). */
static void add_protocols(struct conn *c, const struct policy_verdict *v)
{
	uint8_t m = v->decision == DECISION_ALLOW ? v->rule.protocols
						  : POLICY_PROTO_ALL;
	c->protocols = c->protocols_set ? (uint8_t)(c->protocols & m) : m;
	c->protocols_set = true;
}

/* Decide the connection's target for its port. A literal needs a cidr:
 * rule; a name needs a host rule (a cidr: rule never allows a name). */
static bool decide(struct conn *c)
{
	const struct policy *p = c->pol->policy;
	char why[400];
	if (c->literal && !c->name_from_peek) {
		struct policy_verdict v =
			policy_decide_addr(p, &c->literal_addr, c->port);
		set_verdict(c, &v);
		if (v.decision != DECISION_DENY) {
			add_protocols(c, &v);
			return conn_check_protocol(c);
		}
		const char *file = policy_primary_file(p);
		conn_hint(c,
			"connections to an IP address need a cidr: rule; add "
			"\"cidr: %s/%u\" with ports [%u] to the allow list in "
			"%s",
			c->name, c->literal_addr.family == AF_INET ? 32 : 128,
			c->port, file ? file : "your policy file (--policy)");
		if (v.rule.file) {
			if (c->aux)
				c->aux->hint[0] = '\0';
			c->policy_denied = true;
		}
		fmt_buf(why, sizeof(why), "IP address %s:%u is not allowed",
			c->name, c->port);
		conn_refuse(c, DENY_POLICY, why);
		return false;
	}
	struct policy_verdict v = policy_decide_name(p, c->name, c->port);
	/* A literal that passed its cidr: rule and then named a host: both
	 * must hold, and the record shows the stricter of the two. */
	if (!(c->decided && severity(c->decision) > severity(v.decision)))
		set_verdict(c, &v);
	if (v.decision != DECISION_DENY) {
		add_protocols(c, &v);
		return conn_check_protocol(c);
	}
	set_verdict(c, &v);
	c->policy_denied = true;
	fmt_buf(why, sizeof(why), "%s %s:%u",
		v.rule.file ? "denied by rule for" : "no rule allows", c->name,
		c->port);
	conn_refuse(c, DENY_POLICY, why);
	return false;
}

enum conn_next conn_decide_target(struct conn *c)
{
	if (c->synthetic_unknown) {
		char why[200];
		fmt_buf(why, sizeof(why),
			"unknown synthetic address %s (not handed out by this "
			"proxy's DNS, or recycled)",
			c->name);
		conn_hint(c,
			"resolve the name again through the sandbox's DNS");
		return conn_refuse(c, DENY_POLICY, why);
	}
	if (c->literal) {
		bool had_name = c->name_from_peek;
		c->name_from_peek = false; /* the address first */
		char name[256];
		memcpy(name, c->name, sizeof(name));
		ip_format(&c->literal_addr, c->name);
		if (!decide(c))
			return CONN_NEXT_DENY;
		if (!had_name)
			return CONN_NEXT_LITERAL;
		/* Then the name the client asked for; the proxy connects to
		 * its own resolution of it, never to the guest's address. */
		memcpy(c->name, name, sizeof(name));
		c->name_from_peek = true;
	}
	return decide(c) ? CONN_NEXT_RESOLVE : CONN_NEXT_DENY;
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
	conn_refuse(c, DENY_POLICY, why);
	return false;
}
