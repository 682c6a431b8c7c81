/* The state every worker of sandbox-proxy shares (worker.h): the
 * synthetic address pool and the DNS cache, each call under the proxy's
 * shared_lock, so a name keeps one synthetic address for the sandbox
 * whichever worker answered the guest's query and whichever accepts the
 * connection to it. The calls copy out; nothing returned points into the
 * shared tables. */
#ifndef PROXY_SHARED_H
#define PROXY_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/ipaddr.h"
#include "proxy.h"

/* synth_assign() (synth.h) under the lock. */
int proxy_synth_assign(struct proxy *px, const char *name,
		       struct ip_addr *out);
/* The name behind synthetic address a copied to buf: true, or false when
 * a is not assigned now. */
bool proxy_synth_name(struct proxy *px, const struct ip_addr *a, char *buf,
		      size_t bufsz);
/* dns_cache_put/get/drop (dns_cache.h) under the lock. */
void proxy_cache_put(struct proxy *px, const char *name,
		     const struct ip_addr *addrs, size_t n, uint32_t ttl,
		     uint64_t now_ms);
size_t proxy_cache_get(struct proxy *px, const char *name, uint64_t now_ms,
		       struct ip_addr *out, size_t max);
void proxy_cache_drop(struct proxy *px, const char *name);

#endif
