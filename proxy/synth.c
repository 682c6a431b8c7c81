/* The synthetic address pool: two O(1) maps over one set of entries.
 *
 *   address -> entry: an array indexed by the host offset inside the prefix
 *   name -> entry:    a chained hash table keyed by SipHash-2-4 with a
 *                     random key, because the guest chooses the names (any
 *                     label under an allowed "**." pattern) and must not be
 *                     able to pile them into one bucket.
 *
 * Entries sit on an LRU list; assign and lookup both count as use. When
 * every address is taken, the least recently used entry gives up its address
 * to the new name.
 *
 * Host offsets whose last octet is .0 or .255 are never handed out: some
 * clients and middleboxes treat such addresses as network or broadcast
 * addresses even inside a larger prefix, so a /15 yields 130,048 addresses
 * and a /28 (x.x.x.0 - x.x.x.15) yields 15.
 */
#include "synth.h"

#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "../common/util.h"

#define SYNTH_NAME_MAX 253 /* RFC 1035 presentation form, no trailing dot */
#define SYNTH_MIN_PREFIX 12 /* caps the offset array at 1M slots */
#define SYNTH_MAX_PREFIX 30

struct entry {
	char *name;       /* owned, lower case */
	uint32_t offset;  /* host offset inside the pool */
	uint64_t hash;
	struct entry *hnext;             /* hash chain */
	TAILQ_ENTRY(entry) lru; /* head = most recently used */
};

struct synth_pool {
	uint32_t base;     /* host order, masked to the prefix */
	unsigned prefix_len;
	uint32_t size;     /* 2^(32 - prefix_len) offsets */
	uint32_t next_off; /* next never-used offset */
	size_t used;
	struct entry **by_off; /* owned array, size entries */
	struct entry **buckets; /* owned array, nbuckets chains */
	size_t nbuckets;   /* power of two */
	TAILQ_HEAD(synth_lru, entry) lru;
	uint64_t key[2];
};

/* SipHash-2-4 (Aumasson, Bernstein), 64-bit output. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);     \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                         \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                         \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);     \
	} while (0)

static uint64_t siphash(const uint64_t k[2], const uint8_t *in, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ULL ^ k[0];
	uint64_t v1 = 0x646f72616e646f6dULL ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ULL ^ k[0];
	uint64_t v3 = 0x7465646279746573ULL ^ k[1];
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, full = len & ~(size_t)7;

	for (i = 0; i < full; i += 8) {
		m = 0;
		for (int j = 0; j < 8; j++)
			m |= (uint64_t)in[i + j] << (8 * j);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (int j = 0; i + (size_t)j < len; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static bool offset_usable(const struct synth_pool *p, uint32_t off)
{
	uint8_t last = (uint8_t)((p->base + off) & 0xff);
	return last != 0 && last != 255;
}

struct synth_pool *synth_new(const struct ip_addr *base, unsigned prefix_len)
{
	if (!base || base->family != AF_INET ||
	    prefix_len < SYNTH_MIN_PREFIX || prefix_len > SYNTH_MAX_PREFIX) {
		errno = EINVAL;
		return NULL;
	}
	struct synth_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	TAILQ_INIT(&p->lru);
	uint32_t b = (uint32_t)base->b[0] << 24 | (uint32_t)base->b[1] << 16 |
		     (uint32_t)base->b[2] << 8 | base->b[3];
	p->prefix_len = prefix_len;
	p->size = (uint32_t)1 << (32 - prefix_len);
	p->base = b & ~(p->size - 1);
	for (p->nbuckets = 16; p->nbuckets < p->size; p->nbuckets <<= 1)
		;
	p->by_off = calloc(p->size, sizeof(*p->by_off));
	p->buckets = calloc(p->nbuckets, sizeof(*p->buckets));
	if (!p->by_off || !p->buckets ||
	    getrandom(p->key, sizeof(p->key), 0) != sizeof(p->key)) {
		synth_free(p);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void synth_free(struct synth_pool *p)
{
	if (!p)
		return;
	for (struct entry *e = TAILQ_FIRST(&p->lru), *n; e; e = n) {
		n = TAILQ_NEXT(e, lru);
		free(e->name);
		free(e);
	}
	free(p->by_off);
	free(p->buckets);
	free(p);
}

static void lru_unlink(struct synth_pool *p, struct entry *e)
{
	TAILQ_REMOVE(&p->lru, e, lru);
}

static void lru_push(struct synth_pool *p, struct entry *e)
{
	TAILQ_INSERT_HEAD(&p->lru, e, lru);
}

static void touch(struct synth_pool *p, struct entry *e)
{
	if (TAILQ_FIRST(&p->lru) != e) {
		lru_unlink(p, e);
		lru_push(p, e);
	}
}

static void hash_remove(struct synth_pool *p, struct entry *e)
{
	struct entry **pp = &p->buckets[e->hash & (p->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	e->hnext = NULL;
}

static void to_addr(const struct synth_pool *p, uint32_t off,
		    struct ip_addr *out)
{
	uint32_t v = p->base + off;
	memset(out, 0, sizeof(*out));
	out->family = AF_INET;
	out->b[0] = (uint8_t)(v >> 24);
	out->b[1] = (uint8_t)(v >> 16);
	out->b[2] = (uint8_t)(v >> 8);
	out->b[3] = (uint8_t)v;
}

/* A free offset, or the LRU entry's offset (that entry is then dropped). */
static int take_offset(struct synth_pool *p, uint32_t *off)
{
	while (p->next_off < p->size) {
		uint32_t o = p->next_off++;
		if (offset_usable(p, o)) {
			*off = o;
			return 0;
		}
	}
	struct entry *old = TAILQ_LAST(&p->lru, synth_lru);
	if (!old)
		return -ENOSPC; /* only when no offset is usable at all */
	lru_unlink(p, old);
	hash_remove(p, old);
	p->by_off[old->offset] = NULL;
	*off = old->offset;
	free(old->name);
	free(old);
	p->used--;
	return 0;
}

int synth_assign(struct synth_pool *p, const char *name, struct ip_addr *out)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len > SYNTH_NAME_MAX)
		return -EINVAL;
	char lower[SYNTH_NAME_MAX + 1];
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	lower[len] = '\0';

	uint64_t h = siphash(p->key, (const uint8_t *)lower, len);
	struct entry **bucket = &p->buckets[h & (p->nbuckets - 1)];
	for (struct entry *e = *bucket; e; e = e->hnext) {
		if (e->hash == h && strcmp(e->name, lower) == 0) {
			touch(p, e);
			to_addr(p, e->offset, out);
			return 0;
		}
	}

	struct entry *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->name = strdup(lower);
	if (!e->name) {
		free(e);
		return -ENOMEM;
	}
	uint32_t off;
	int r = take_offset(p, &off);
	if (r < 0) {
		free(e->name);
		free(e);
		return r;
	}
	e->offset = off;
	e->hash = h;
	e->hnext = *bucket; /* bucket stays valid: take_offset only unlinks */
	*bucket = e;
	p->by_off[off] = e;
	lru_push(p, e);
	p->used++;
	to_addr(p, off, out);
	return 0;
}

static bool offset_of(const struct synth_pool *p, const struct ip_addr *a,
		      uint32_t *off)
{
	if (!a || a->family != AF_INET)
		return false;
	uint32_t v = (uint32_t)a->b[0] << 24 | (uint32_t)a->b[1] << 16 |
		     (uint32_t)a->b[2] << 8 | a->b[3];
	if ((v & ~(p->size - 1)) != p->base)
		return false;
	*off = v - p->base;
	return true;
}

const char *synth_lookup(struct synth_pool *p, const struct ip_addr *a)
{
	uint32_t off;
	if (!offset_of(p, a, &off) || !p->by_off[off])
		return NULL;
	touch(p, p->by_off[off]);
	return p->by_off[off]->name;
}

bool synth_contains(const struct synth_pool *p, const struct ip_addr *a)
{
	uint32_t off;
	return offset_of(p, a, &off);
}

