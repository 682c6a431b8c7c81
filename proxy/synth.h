/* Synthetic addresses: the proxy answers the guest's A queries for allowed
 * names with addresses from a private pool (198.18.0.0/15 by default) and
 * maps them back to the name when the guest connects. The guest never learns
 * a real address, so every TCP flow names the host it is for. */
#ifndef PROXY_SYNTH_H
#define PROXY_SYNTH_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/ipaddr.h"

struct synth_pool;

/* base/prefix_len: an IPv4 prefix, e.g. 198.18.0.0/15. */
struct synth_pool *synth_new(const struct ip_addr *base, unsigned prefix_len);
void synth_free(struct synth_pool *p);

/* The address for name (normalised); the same name keeps its address while
 * it is in the pool. When the pool is full the least recently used mapping
 * is recycled. Returns 0 or -ENOMEM. */
int synth_assign(struct synth_pool *p, const char *name, struct ip_addr *out);

/* The name behind a, or NULL when a is not a currently assigned address.
 * The string stays valid until the mapping is recycled: copy it. */
const char *synth_lookup(struct synth_pool *p, const struct ip_addr *a);

bool synth_contains(const struct synth_pool *p, const struct ip_addr *a);

#endif
