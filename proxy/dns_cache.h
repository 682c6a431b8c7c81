/* A small positive-answer cache for upstream connections: name -> the
 * addresses c-ares returned, kept for the answer's TTL, bounded, LRU.
 *
 * It only saves the DNS round trip. It is filled with answers for names the
 * policy had allowed, and read only after conn_decide() allowed the name
 * again under the connection's own policy (so a name a SIGHUP denied is
 * refused before the cache is consulted), and every cached address is
 * classified again for each connection. Pure: no I/O, the caller passes the
 * time, so expiry is testable. */
#ifndef PROXY_DNS_CACHE_H
#define PROXY_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/ipaddr.h"

struct dns_cache;

/* max_entries > 0; NULL when out of memory. */
struct dns_cache *dns_cache_new(size_t max_entries);
void dns_cache_free(struct dns_cache *dc);

/* Remember addrs[0..n) for name (normalised) until now_ms + ttl seconds.
 * Replaces an entry for the same name; evicts the least recently used one
 * when full. n == 0 or ttl == 0 stores nothing (and drops an old entry).
 * Silently does nothing when out of memory: the cache is an optimisation. */
void dns_cache_put(struct dns_cache *dc, const char *name,
		   const struct ip_addr *addrs, size_t n, uint32_t ttl,
		   uint64_t now_ms);

/* Copy up to max addresses of a fresh entry for name into out; returns how
 * many (0: none cached, or it expired, which drops it). */
size_t dns_cache_get(struct dns_cache *dc, const char *name, uint64_t now_ms,
		     struct ip_addr *out, size_t max);

/* Forget name (e.g. none of its cached addresses accepted a connection). */
void dns_cache_drop(struct dns_cache *dc, const char *name);

size_t dns_cache_count(const struct dns_cache *dc);

#endif
