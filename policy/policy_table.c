/* Storage for a loaded policy: a bump arena for its strings and hash tables
 * keyed by a name, a wildcard suffix or a cidr prefix, so that a decision
 * costs a few lookups whatever the number of rules. */
#include <string.h>

#include "../common/util.h"
#include "policy_internal.h"

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};

#define ARENA_CHUNK (256u << 10)

void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct arena_chunk *c = a->head;
	if (!c || c->size - c->used < n) {
		size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->size = size;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
}

/* FNV-1a, then a final mix so that the low bits used for the index depend on
 * every byte. */
uint64_t policy_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

/* Slots hold a rule index and 32 bits of the hash, so that most probes are
 * settled without touching the rule. */
#define SLOT_IDX(s) ((uint32_t)(s))
#define SLOT_TAG(s) ((uint32_t)((s) >> 32))

static bool same_key(const struct rule *r, const void *key, size_t len)
{
	return r->keylen == len && memcmp(r->key, key, len) == 0;
}

int rule_table_build(struct rule_table *t, struct rule *rules, size_t nrules,
		     enum rule_kind kind)
{
	size_t n = 0;
	for (size_t i = 0; i < nrules; i++)
		n += rules[i].kind == kind;
	memset(t, 0, sizeof(*t));
	if (n == 0)
		return 0;
	size_t cap = 16;
	while (cap < n * 2)
		cap *= 2;
	if (cap > (size_t)UINT32_MAX)
		return -E2BIG;
	uint64_t *slots = malloc(cap * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	memset(slots, 0xff, cap * sizeof(*slots));
	t->mask = (uint32_t)(cap - 1);
	/* Walk backwards and prepend, so each chain lists rules in file order. */
	for (size_t i = nrules; i-- > 0;) {
		struct rule *r = &rules[i];
		if (r->kind != kind)
			continue;
		uint64_t h = policy_hash(r->key, r->keylen);
		size_t j = h & t->mask;
		for (;; j = (j + 1) & t->mask) {
			if (SLOT_IDX(slots[j]) == RULE_NONE) {
				r->next = RULE_NONE;
				slots[j] = ((uint64_t)(uint32_t)h << 32) | i;
				t->count++;
				break;
			}
			if (SLOT_TAG(slots[j]) == (uint32_t)h &&
			    same_key(&rules[SLOT_IDX(slots[j])], r->key,
				     r->keylen)) {
				r->next = SLOT_IDX(slots[j]);
				slots[j] = ((uint64_t)(uint32_t)h << 32) | i;
				break;
			}
		}
	}
	t->slots = slots;
	return 0;
}

uint32_t rule_table_find(const struct rule_table *t, const struct rule *rules,
			 const void *key, size_t len)
{
	if (!t->slots)
		return RULE_NONE;
	uint64_t h = policy_hash(key, len);
	for (size_t j = h & t->mask;; j = (j + 1) & t->mask) {
		uint64_t s = t->slots[j];
		if (SLOT_IDX(s) == RULE_NONE)
			return RULE_NONE;
		if (SLOT_TAG(s) == (uint32_t)h &&
		    same_key(&rules[SLOT_IDX(s)], key, len))
			return SLOT_IDX(s);
	}
}

void rule_table_free(struct rule_table *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}
