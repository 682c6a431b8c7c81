/* The policy pointer, the synthetic pool and the DNS cache as every
 * worker reaches them (shared.h, proxy.h). The locks are held for a
 * table lookup only, never across a callback or I/O. */
#include "shared.h"

#include <pthread.h>

#include "../common/util.h"
#include "dns_cache.h"
#include "synth.h"

struct policy_ref *proxy_policy_get(struct proxy *px)
{
	pthread_mutex_lock(&px->policy_lock);
	struct policy_ref *r = policy_ref_get(px->policy);
	pthread_mutex_unlock(&px->policy_lock);
	return r;
}

void proxy_policy_set(struct proxy *px, struct policy_ref *ref)
{
	pthread_mutex_lock(&px->policy_lock);
	struct policy_ref *old = px->policy;
	px->policy = ref;
	pthread_mutex_unlock(&px->policy_lock);
	/* Connections decided under the old policy keep their reference. */
	policy_ref_put(old);
}

int proxy_synth_assign(struct proxy *px, const char *name,
		       struct ip_addr *out)
{
	pthread_mutex_lock(&px->shared_lock);
	int r = synth_assign(px->synth, name, out);
	pthread_mutex_unlock(&px->shared_lock);
	return r;
}

bool proxy_synth_name(struct proxy *px, const struct ip_addr *a, char *buf,
		      size_t bufsz)
{
	pthread_mutex_lock(&px->shared_lock);
	const char *name = synth_lookup(px->synth, a);
	if (name)
		fmt_buf(buf, bufsz, "%s", name);
	pthread_mutex_unlock(&px->shared_lock);
	return name != NULL;
}

void proxy_cache_put(struct proxy *px, const char *name,
		     const struct ip_addr *addrs, size_t n, uint32_t ttl,
		     uint64_t now_ms)
{
	pthread_mutex_lock(&px->shared_lock);
	dns_cache_put(px->dns_cache, name, addrs, n, ttl, now_ms);
	pthread_mutex_unlock(&px->shared_lock);
}

size_t proxy_cache_get(struct proxy *px, const char *name, uint64_t now_ms,
		       struct ip_addr *out, size_t max)
{
	pthread_mutex_lock(&px->shared_lock);
	size_t n = dns_cache_get(px->dns_cache, name, now_ms, out, max);
	pthread_mutex_unlock(&px->shared_lock);
	return n;
}

void proxy_cache_drop(struct proxy *px, const char *name)
{
	pthread_mutex_lock(&px->shared_lock);
	dns_cache_drop(px->dns_cache, name);
	pthread_mutex_unlock(&px->shared_lock);
}
