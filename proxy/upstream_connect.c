/* From an allowed name to a connected upstream socket: resolution (only
 * after the policy allowed the name, so denied names never leave the
 * host), classification of every answer, and a non-blocking connect to
 * the first checked address. The proxy connects only to addresses it
 * resolved and checked itself. */
#include "conn_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "dns_cache.h"
#include "ipclass.h"

/* The one named exception to the classifier (policy.h,
 * POLICY_HOST_INTERNAL): that name, on a port the policy's host ports
 * open, may connect to exactly 127.0.0.1 or ::1. Never for an address
 * literal or any other name. */
static bool host_port_exception(const struct conn *c, const struct ip_addr *a)
{
	static const uint8_t v4[4] = {127, 0, 0, 1}, v6[16] = {[15] = 1};
	if (c->literal || strcmp(c->name, POLICY_HOST_INTERNAL) != 0 ||
	    !policy_host_port_open(c->pol->policy, c->port))
		return false;
	return (a->family == AF_INET && !memcmp(a->b, v4, 4)) ||
	       (a->family == AF_INET6 && !memcmp(a->b, v6, 16));
}

/* Why addr may not be connected to, or NULL when it may. */
static const char *unusable(struct conn *c, const struct ip_addr *a,
			    char *why, size_t whysz)
{
	/* Formatted only for a refusal: an allowed address is the common
	 * case, twice per connection. */
	char txt[IP_STR_MAX];
	if (proxy_is_self(c->px, a, c->port)) {
		ip_format(a, txt);
		fmt_buf(why, whysz, "%s:%u is the proxy's own listener", txt,
			c->port);
		return why;
	}
	struct ip_classification cl;
	ipclass_classify(a, &cl);
	if (cl.cls == IPC_GLOBAL)
		return NULL;
	if (host_port_exception(c, a))
		return NULL;
	if (cl.cls == IPC_METADATA) {
		ip_format(a, txt);
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
	ip_format(a, txt);
	fmt_buf(why, whysz,
		"resolves only to %s %s; add a cidr: rule to allow it",
		ipclass_name(cl.cls), txt);
	return why;
}

static enum conn_next resolved(struct conn *c, enum resolve_status st,
			       const struct ip_addr *addrs, size_t n)
{
	struct conn_aux *x = c->aux;
	char why[300];
	if (st != RESOLVE_OK || n == 0) {
		fmt_buf(why, sizeof(why), "cannot resolve %s: %s", c->name,
			resolve_status_str(st == RESOLVE_OK ? RESOLVE_NODATA
							    : st));
		return conn_refuse(c, DENY_UPSTREAM, why);
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
		return conn_refuse(c, DENY_POLICY, reason);
	}
	return CONN_NEXT_CONNECT;
}

static void on_resolved(void *arg, enum resolve_status st,
			const struct ip_addr *addrs, size_t n, uint32_t ttl)
{
	struct conn *c = arg;
	c->rq = NULL;
	/* Raw answers are kept; classification runs again on every use. */
	if (st == RESOLVE_OK)
		proxy_cache_put(c->px, c->name, addrs, n, ttl, mono_ms());
	conn_run(c, resolved(c, st, addrs, n));
}

/* Only ever called after conn_decide() allowed c->name under c's policy:
 * a cached answer never stands in for a decision. The name is on record
 * before it is looked up or a cached answer is used to connect. */
enum conn_next conn_resolve(struct conn *c)
{
	struct ip_addr cached[RESOLVE_MAX_ADDRS];
	size_t n = proxy_cache_get(c->px, c->name, mono_ms(),
				 cached, RESOLVE_MAX_ADDRS);
	if (conn_audit_resolve(c, n ? "cached answer" : NULL) < 0)
		return conn_end(c, "audit log write failed: failing closed");
	c->state = CS_RESOLVE;
	if (n) {
		c->aux->from_cache = true;
		return resolved(c, RESOLVE_OK, cached, n);
	}
	conn_set_timer(c, (uint64_t)c->px->cfg->connect_timeout * 1000 + 5000);
	c->rq = resolver_lookup(c->w->resolver, c->name, on_resolved, c);
	if (!c->rq)
		return conn_refuse(c, DENY_UPSTREAM, "cannot start resolution");
	return CONN_NEXT_WAIT;
}

enum conn_next conn_connect_literal(struct conn *c)
{
	/* On record before the first packet to the guest's address. */
	if (conn_audit_resolve(c, "address, no lookup") < 0)
		return conn_end(c, "audit log write failed: failing closed");
	c->aux->addrs[0] = c->literal_addr;
	c->aux->n_addrs = 1;
	c->aux->next_addr = 0;
	return CONN_NEXT_CONNECT;
}

enum conn_next conn_connect_next(struct conn *c)
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
		c->upstream = bufferevent_socket_new(c->w->base, -1,
						     BEV_OPT_CLOSE_ON_FREE);
		if (!c->upstream)
			break;
		conn_setup_upstream(c, c->upstream);
		c->state = CS_CONNECT;
		conn_set_timer(c, (uint64_t)c->px->cfg->connect_timeout * 1000);
		/* A connect that fails at once may be reported from inside
		 * this call (libevent after 2.1.12): the event callback only
		 * queues CONN_NEXT_CONNECT, which runs after this returns. */
		if (bufferevent_socket_connect(c->upstream,
					       (struct sockaddr *)&ss,
					       (int)sl) == 0)
			return CONN_NEXT_WAIT;
		fmt_buf(x->connect_err, sizeof(x->connect_err), "%s: %s",
			c->addr_str,
			evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		bufferevent_free(c->upstream);
		c->upstream = NULL;
	}
	/* Cached addresses that all failed: ask again next time. */
	if (x->from_cache && x->connect_err[0])
		proxy_cache_drop(c->px, c->name);
	if (x->n_addrs == 1 && x->unusable[0] && !x->connect_err[0])
		return conn_refuse(c, DENY_POLICY, x->unusable);
	fmt_buf(why, sizeof(why), "cannot connect to %s:%u (%s)", c->name,
		c->port, x->connect_err[0] ? x->connect_err : "no address");
	return conn_refuse(c, DENY_UPSTREAM, why);
}

enum conn_next conn_upstream_connected(struct conn *c)
{
	evtimer_del(c->timer);
	int one = 1;
	setsockopt(bufferevent_getfd(c->upstream), IPPROTO_TCP, TCP_NODELAY,
		   &one, sizeof(one));
	if (c->origin == ORIGIN_HTTP_PROXY)
		return CONN_NEXT_ESTABLISHED;
	return c->early_upstream ? CONN_NEXT_WAIT_FIRST : CONN_NEXT_RELAY;
}
