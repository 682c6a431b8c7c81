/* The one context of a running sandbox-proxy. Everything mutable lives
 * here (or in a connection hanging off it); there are no other globals.
 * Single-threaded: one libevent loop drives listeners, connections, the
 * resolver and signals, so "atomic" swaps are plain pointer assignments
 * made between callbacks. */
#ifndef PROXY_PROXY_H
#define PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/ipaddr.h"
#include "../policy/policy.h"
#include "config.h"

struct event_base;
struct event;
struct audit;
struct audit_record;
struct resolver;
struct dns_cache;
struct synth_pool;
struct listener;
struct conn;
struct control;

/* A loaded policy shared by reference: a connection keeps the policy it was
 * decided under (and the rule strings its verdict points into) even after a
 * SIGHUP swapped in a new one. */
struct policy_ref {
	struct policy *policy; /* owned */
	unsigned refs;
};

struct policy_ref *policy_ref_get(struct policy_ref *r);
void policy_ref_put(struct policy_ref *r);

/* A local address:port some listener accepts on; connecting there would
 * loop a connection back into the proxy. */
struct self_addr {
	struct ip_addr addr;
	uint16_t port;
	bool wildcard; /* bound to 0.0.0.0 / :: : every local address */
};

#define PROXY_MAX_SELF 32

struct proxy {
	struct event_base *base;
	const struct proxy_config *cfg;
	const char *presets_dir;

	struct policy_ref *policy; /* current; one reference held here */
	struct audit *audit;       /* owned */
	struct resolver *resolver; /* owned */
	struct dns_cache *dns_cache; /* owned: answers for allowed names */
	struct synth_pool *synth;  /* owned */
	struct control *control;  /* owned, NULL without --control */

	struct listener *listeners; /* owned list */
	struct self_addr self[PROXY_MAX_SELF];
	size_t n_self;
	struct ip_addr local_addrs[PROXY_MAX_SELF]; /* getifaddrs() at start */
	size_t n_local;

	struct conn *conns; /* owned list of live connections */
	size_t n_conns;
	uint64_t next_conn_id;

	bool draining;     /* SIGTERM seen: no new connections */
	bool audit_failed; /* an audit write failed: fail closed */
	struct event *drain_timer;
	struct event *sig_hup, *sig_term, *sig_int;
};

/* Write an audit record; on failure switch the proxy to fail-closed mode
 * (refuse new connections, say so on stderr once) and return the error. */
int proxy_audit(struct proxy *px, const struct audit_record *r);

/* A "policy" event: the policy was loaded, reloaded, changed or cut. */
void proxy_audit_policy(struct proxy *px, const char *decision,
			const char *reason);

/* Verbose diagnostics to stderr (only with --verbose). */
void proxy_log(struct proxy *px, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Is addr:port one of the proxy's own listening endpoints? */
bool proxy_is_self(const struct proxy *px, const struct ip_addr *a,
		   uint16_t port);

/* Called when a connection ends (drain bookkeeping). */
void proxy_conn_gone(struct proxy *px);

#endif
