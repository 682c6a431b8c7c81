/* From an allowed name to a connected upstream socket: the policy
 * decision, resolution (only after the policy allowed the name, so denied
 * names never leave the host), classification of every answer, and a
 * non-blocking connect to the first checked address. The proxy connects
 * only to addresses it resolved and checked itself. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "conn.h"
#include "dns_cache.h"
#include "ipclass.h"
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
bool conn_decide(struct conn *c)
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
		conn_deny(c, DENY_POLICY, why);
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
	conn_deny(c, DENY_POLICY, why);
	return false;
}

void conn_decide_and_resolve(struct conn *c)
{
	if (c->synthetic_unknown) {
		char why[200];
		fmt_buf(why, sizeof(why),
			"unknown synthetic address %s (not handed out by this "
			"proxy's DNS, or recycled)",
			c->name);
		conn_hint(c,
			"resolve the name again through the sandbox's DNS");
		conn_deny(c, DENY_POLICY, why);
		return;
	}
	if (c->literal) {
		bool had_name = c->name_from_peek;
		c->name_from_peek = false; /* the address first */
		char name[256];
		memcpy(name, c->name, sizeof(name));
		ip_format(&c->literal_addr, c->name);
		if (!conn_decide(c))
			return;
		if (!had_name) {
			conn_connect_literal(c);
			return;
		}
		/* Then the name the client asked for; the proxy connects to
		 * its own resolution of it, never to the guest's address. */
		memcpy(c->name, name, sizeof(name));
		c->name_from_peek = true;
	}
	if (conn_decide(c))
		conn_resolve(c);
}

/* Why addr may not be connected to, or NULL when it may. */
static const char *unusable(struct conn *c, const struct ip_addr *a,
			    char *why, size_t whysz)
{
	char txt[IP_STR_MAX];
	ip_format(a, txt);
	if (proxy_is_self(c->px, a, c->port)) {
		fmt_buf(why, whysz, "%s:%u is the proxy's own listener", txt,
			c->port);
		return why;
	}
	struct ip_classification cl;
	ipclass_classify(a, &cl);
	if (cl.cls == IPC_GLOBAL)
		return NULL;
	if (cl.cls == IPC_METADATA) {
		fmt_buf(why, whysz,
			"resolves to the metadata address %s, which is never "
			"reachable",
			txt);
		return why;
	}
	/* Only an enforcing cidr: allow rule opens a special range: report
	 * mode never relaxes address classification. */
	struct policy_verdict v = policy_decide_addr(c->pol->policy, a, c->port);
	if (v.decision == DECISION_ALLOW)
		return NULL;
	fmt_buf(why, whysz,
		"resolves only to %s %s; add a cidr: rule to allow it",
		ipclass_name(cl.cls), txt);
	return why;
}

static void resolved(struct conn *c, enum resolve_status st,
		     const struct ip_addr *addrs, size_t n)
{
	struct conn_aux *x = c->aux;
	char why[300];
	if (st != RESOLVE_OK || n == 0) {
		fmt_buf(why, sizeof(why), "cannot resolve %s: %s", c->name,
			resolve_status_str(st == RESOLVE_OK ? RESOLVE_NODATA
							    : st));
		conn_deny(c, DENY_UPSTREAM, why);
		return;
	}
	x->n_addrs = 0;
	x->next_addr = 0;
	x->unusable[0] = '\0';
	for (size_t i = 0; i < n && x->n_addrs < RESOLVE_MAX_ADDRS; i++) {
		if (unusable(c, &addrs[i], why, sizeof(why))) {
			if (!x->unusable[0])
				fmt_buf(x->unusable, sizeof(x->unusable), "%s",
					why);
			continue;
		}
		x->addrs[x->n_addrs++] = addrs[i];
	}
	if (x->n_addrs == 0) {
		char reason[400];
		fmt_buf(reason, sizeof(reason), "%s %s", c->name, x->unusable);
		const char *file = policy_primary_file(c->pol->policy);
		conn_hint(c,
			"a private or special address needs a cidr: allow rule "
			"in %s as well as the host rule",
			file ? file : "your policy file (--policy)");
		c->policy_denied = false;
		conn_deny(c, DENY_POLICY, reason);
		return;
	}
	conn_connect_next(c);
}

static void on_resolved(void *arg, enum resolve_status st,
			const struct ip_addr *addrs, size_t n, uint32_t ttl)
{
	struct conn *c = arg;
	c->rq = NULL;
	/* Raw answers are kept; classification runs again on every use. */
	if (st == RESOLVE_OK)
		dns_cache_put(c->px->dns_cache, c->name, addrs, n, ttl,
			      mono_ms());
	resolved(c, st, addrs, n);
}

/* Only ever called after conn_decide() allowed c->name under c's policy:
 * a cached answer never stands in for a decision. The name is on record
 * before it is looked up or a cached answer is used to connect. */
void conn_resolve(struct conn *c)
{
	struct ip_addr cached[RESOLVE_MAX_ADDRS];
	size_t n = dns_cache_get(c->px->dns_cache, c->name, mono_ms(),
				 cached, RESOLVE_MAX_ADDRS);
	if (conn_audit_resolve(c, n ? "cached answer" : NULL) < 0) {
		conn_close(c, "audit log write failed: failing closed");
		return;
	}
	c->state = CS_RESOLVE;
	if (n) {
		c->aux->from_cache = true;
		resolved(c, RESOLVE_OK, cached, n);
		return;
	}
	conn_set_timer(c, (uint64_t)c->px->cfg->connect_timeout * 1000 + 5000);
	c->rq = resolver_lookup(c->px->resolver, c->name, on_resolved, c);
	if (!c->rq)
		conn_deny(c, DENY_UPSTREAM, "cannot start resolution");
}

void conn_connect_literal(struct conn *c)
{
	/* On record before the first packet to the guest's address. */
	if (conn_audit_resolve(c, "address, no lookup") < 0) {
		conn_close(c, "audit log write failed: failing closed");
		return;
	}
	c->aux->addrs[0] = c->literal_addr;
	c->aux->n_addrs = 1;
	c->aux->next_addr = 0;
	conn_connect_next(c);
}

void conn_connect_next(struct conn *c)
{
	struct conn_aux *x = c->aux;
	char why[300];
	if (c->upstream) {
		bufferevent_free(c->upstream);
		c->upstream = NULL;
	}
	while (x->next_addr < x->n_addrs) {
		const struct ip_addr *a = &x->addrs[x->next_addr++];
		/* Literals reach here without passing on_resolved. */
		if (unusable(c, a, why, sizeof(why))) {
			fmt_buf(x->unusable, sizeof(x->unusable), "%s", why);
			continue;
		}
		struct sockaddr_storage ss;
		size_t sl = ip_to_sockaddr(a, c->port, &ss);
		ip_format(a, c->addr_str);
		if (conn_intercept(c, a))
			return;
		c->upstream = bufferevent_socket_new(c->px->base, -1,
						     BEV_OPT_CLOSE_ON_FREE);
		if (!c->upstream)
			break;
		conn_setup_upstream(c, c->upstream);
		c->state = CS_CONNECT;
		conn_set_timer(c, (uint64_t)c->px->cfg->connect_timeout * 1000);
		if (bufferevent_socket_connect(c->upstream,
					       (struct sockaddr *)&ss,
					       (int)sl) == 0)
			return;
		fmt_buf(x->connect_err, sizeof(x->connect_err), "%s: %s",
			c->addr_str,
			evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		bufferevent_free(c->upstream);
		c->upstream = NULL;
	}
	/* Cached addresses that all failed: ask again next time. */
	if (x->from_cache && x->connect_err[0])
		dns_cache_drop(c->px->dns_cache, c->name);
	if (x->n_addrs == 1 && x->unusable[0] && !x->connect_err[0]) {
		conn_deny(c, DENY_POLICY, x->unusable);
		return;
	}
	fmt_buf(why, sizeof(why), "cannot connect to %s:%u (%s)", c->name,
		c->port, x->connect_err[0] ? x->connect_err : "no address");
	conn_deny(c, DENY_UPSTREAM, why);
}

void conn_upstream_connected(struct conn *c)
{
	evtimer_del(c->timer);
	int one = 1;
	setsockopt(bufferevent_getfd(c->upstream), IPPROTO_TCP, TCP_NODELAY,
		   &one, sizeof(one));
	if (c->origin == ORIGIN_HTTP_PROXY)
		http_proxy_connected(c);
	else if (c->early_upstream)
		conn_wait_first(c);
	else
		conn_start_relay(c);
}
