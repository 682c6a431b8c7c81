/* Name resolution with c-ares, driven by the proxy's libevent loop.
 * Only names that passed policy are ever given to it. */
#ifndef PROXY_RESOLVER_H
#define PROXY_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ipaddr.h"

struct event_base;
struct resolver;
struct resolver_query;

enum resolve_status {
	RESOLVE_OK = 0,
	RESOLVE_NXDOMAIN, /* the name does not exist */
	RESOLVE_NODATA,   /* exists, but no A/AAAA */
	RESOLVE_FAIL,     /* timeout, SERVFAIL, refused, ... */
	RESOLVE_CANCELLED,
};

#define RESOLVE_MAX_ADDRS 16

/* addrs (IPv4 first, then IPv6) valid only during the call. ttl in seconds. */
typedef void (*resolver_cb)(void *arg, enum resolve_status st,
			    const struct ip_addr *addrs, size_t n,
			    uint32_t ttl);

/* server: "HOST:PORT" or "[V6]:PORT" of the upstream DNS server, or NULL
 * for the system's configuration. Returns NULL and sets *err. */
struct resolver *resolver_new(struct event_base *base, const char *server,
			      int *err);
/* Cancels outstanding queries (their callbacks are not called). */
void resolver_free(struct resolver *r);

/* Start a lookup (A and AAAA). The callback runs later from the event loop,
 * never from inside this call. Returns NULL on allocation failure. */
struct resolver_query *resolver_lookup(struct resolver *r, const char *name,
				       resolver_cb cb, void *arg);

/* The callback will not be called after this. */
void resolver_cancel(struct resolver_query *q);

const char *resolve_status_str(enum resolve_status st);

#endif
