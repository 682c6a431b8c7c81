/* Hash table (chained, power-of-two buckets) plus an LRU list; one
 * allocation per entry, sized to its name and answers. */
#include "dns_cache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

struct entry {
	struct entry *hnext;            /* bucket chain */
	TAILQ_ENTRY(entry) lru;         /* LRU list, newest first */
	uint64_t expires_ms;
	uint32_t hash;
	size_t n;
	struct ip_addr *addrs; /* points into this allocation */
	char name[];
};

struct dns_cache {
	struct entry **buckets; /* owned array; entries owned via the LRU list */
	size_t mask;
	size_t count, max;
	TAILQ_HEAD(cache_lru, entry) lru; /* newest first */
};

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h;
}

struct dns_cache *dns_cache_new(size_t max_entries)
{
	if (max_entries == 0)
		return NULL;
	struct dns_cache *dc = calloc(1, sizeof(*dc));
	if (!dc)
		return NULL;
	size_t nb = 16;
	while (nb < max_entries * 2)
		nb <<= 1;
	dc->buckets = calloc(nb, sizeof(*dc->buckets));
	if (!dc->buckets) {
		free(dc);
		return NULL;
	}
	TAILQ_INIT(&dc->lru);
	dc->mask = nb - 1;
	dc->max = max_entries;
	return dc;
}

static void lru_unlink(struct dns_cache *dc, struct entry *e)
{
	TAILQ_REMOVE(&dc->lru, e, lru);
}

static void lru_push(struct dns_cache *dc, struct entry *e)
{
	TAILQ_INSERT_HEAD(&dc->lru, e, lru);
}

static struct entry **find(struct dns_cache *dc, const char *name,
			   uint32_t h)
{
	struct entry **pp = &dc->buckets[h & dc->mask];
	for (; *pp; pp = &(*pp)->hnext)
		if ((*pp)->hash == h && strcmp((*pp)->name, name) == 0)
			break;
	return pp;
}

static void remove_entry(struct dns_cache *dc, struct entry **pp)
{
	struct entry *e = *pp;
	*pp = e->hnext;
	lru_unlink(dc, e);
	dc->count--;
	free(e);
}

void dns_cache_free(struct dns_cache *dc)
{
	if (!dc)
		return;
	struct entry *e = TAILQ_FIRST(&dc->lru);
	while (e) {
		struct entry *next = TAILQ_NEXT(e, lru);
		free(e);
		e = next;
	}
	free(dc->buckets);
	free(dc);
}

void dns_cache_drop(struct dns_cache *dc, const char *name)
{
	if (!dc)
		return;
	uint32_t h = hash_name(name);
	struct entry **pp = find(dc, name, h);
	if (*pp)
		remove_entry(dc, pp);
}

void dns_cache_put(struct dns_cache *dc, const char *name,
		   const struct ip_addr *addrs, size_t n, uint32_t ttl,
		   uint64_t now_ms)
{
	if (!dc)
		return;
	dns_cache_drop(dc, name);
	if (n == 0 || ttl == 0)
		return;
	if (dc->count >= dc->max) {
		struct entry *old = TAILQ_LAST(&dc->lru, cache_lru);
		dns_cache_drop(dc, old->name);
	}
	size_t nl = strlen(name) + 1;
	/* Addresses first after the header keeps them aligned. */
	struct entry *e = malloc(sizeof(*e) + nl + n * sizeof(*addrs) +
				 _Alignof(struct ip_addr));
	if (!e)
		return;
	uintptr_t at = (uintptr_t)(e->name + nl);
	at = (at + _Alignof(struct ip_addr) - 1) &
	     ~(uintptr_t)(_Alignof(struct ip_addr) - 1);
	e->addrs = (struct ip_addr *)at;
	memcpy(e->name, name, nl);
	memcpy(e->addrs, addrs, n * sizeof(*addrs));
	e->n = n;
	e->hash = hash_name(name);
	e->expires_ms = now_ms + (uint64_t)ttl * 1000;
	struct entry **b = &dc->buckets[e->hash & dc->mask];
	e->hnext = *b;
	*b = e;
	lru_push(dc, e);
	dc->count++;
}

size_t dns_cache_get(struct dns_cache *dc, const char *name, uint64_t now_ms,
		     struct ip_addr *out, size_t max)
{
	if (!dc)
		return 0;
	uint32_t h = hash_name(name);
	struct entry **pp = find(dc, name, h);
	struct entry *e = *pp;
	if (!e)
		return 0;
	if (now_ms >= e->expires_ms) {
		remove_entry(dc, pp);
		return 0;
	}
	lru_unlink(dc, e);
	lru_push(dc, e);
	size_t n = e->n < max ? e->n : max;
	memcpy(out, e->addrs, n * sizeof(*out));
	return n;
}

size_t dns_cache_count(const struct dns_cache *dc)
{
	return dc ? dc->count : 0;
}
