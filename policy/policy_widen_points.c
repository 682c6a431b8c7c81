/* The points of the widening scan: one name or address of every class
 * the rules can tell apart (why these are enough: policy_widen.c). */
#include <string.h>
#include <sys/socket.h>

#include "../common/util.h"
#include "policy_widen.h"

/* ---- names ----------------------------------------------------------- */

static bool is_key(const struct policy *p, const char *k, size_t len)
{
	for (int kind = RULE_EXACT; kind <= RULE_STAR2; kind++)
		if (rule_table_find(&p->tables[kind], p->rules, k, len) !=
		    RULE_NONE)
			return true;
	return false;
}

/* The i-th label in shortlex order over a-z ("a", ..., "z", "aa", ...). */
static size_t nth_label(size_t i, char *out)
{
	size_t len = 1, span = 26;
	while (i >= span && len < 8) {
		i -= span;
		len++;
		span *= 26;
	}
	for (size_t k = len; k-- > 0;) {
		out[k] = (char)('a' + i % 26);
		i /= 26;
	}
	out[len] = '\0';
	return len;
}

/* Prepend the shortest fresh label to suffix (len bytes; the result in
 * out): fresh means the result is no key of comb. False when the result
 * would be longer than a name may be. */
static bool fresh_child(const struct policy *p, const char *suffix,
			size_t len, char *out)
{
	for (size_t i = 0;; i++) {
		char lab[16];
		size_t ll = nth_label(i, lab);
		size_t total = ll + (len ? 1 + len : 0);
		if (total > 253)
			return false;
		memcpy(out, lab, ll);
		if (len) {
			out[ll] = '.';
			memcpy(out + ll + 1, suffix, len);
		}
		out[total] = '\0';
		if (!is_key(p, out, total))
			return true;
	}
}

static void points_under(struct scan *s, const char *key, size_t len)
{
	struct widen_point pt = {0};
	if (len) {
		memcpy(pt.name, key, len);
		pt.name[len] = '\0';
		widen_check_point(s, &pt);
	}
	char one[256];
	if (s->err || !fresh_child(s->comb, key, len, one))
		return;
	memcpy(pt.name, one, strlen(one) + 1);
	widen_check_point(s, &pt);
	if (!s->err && fresh_child(s->comb, one, strlen(one), pt.name))
		widen_check_point(s, &pt);
}

void widen_scan_names(struct scan *s)
{
	const struct policy *c = s->comb;
	points_under(s, "", 0);
	for (size_t i = 0; i < c->nrules && !widen_stopped(s); i++) {
		const struct rule *r = &c->rules[i];
		if (r->kind == RULE_CIDR ||
		    rule_table_find(&c->tables[r->kind], c->rules, r->key,
				    r->keylen) != i)
			continue; /* one visit per key */
		points_under(s, r->key, r->keylen);
	}
}

/* ---- addresses ------------------------------------------------------- */

typedef unsigned __int128 u128;

struct pfx {
	u128 lo, hi;
	uint8_t len;
	bool pseudo; /* ::ffff:0:0/96: covered, never a class of its own */
};

static u128 addr_val(const uint8_t *b, unsigned bytes)
{
	u128 v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v = v << 8 | b[i];
	return v;
}

static struct pfx make_pfx(const uint8_t *b, unsigned len, unsigned bits)
{
	struct pfx p = {.len = (uint8_t)len};
	p.lo = addr_val(b, bits / 8);
	u128 host = len >= bits	      ? 0
		    : bits - len == 128 ? ~(u128)0
					: (((u128)1 << (bits - len)) - 1);
	p.lo &= ~host;
	p.hi = p.lo | host;
	return p;
}

static int pfx_cmp(const void *a, const void *b)
{
	const struct pfx *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return (int)x->len - (int)y->len;
}

void widen_scan_family(struct scan *s, int family)
{
	unsigned bits = family == AF_INET ? 32 : 128;
	const struct policy *c = s->comb;
	size_t n = 0;
	struct pfx *v = calloc(c->nrules + 2, sizeof(*v));
	if (!v) {
		s->err = -ENOMEM;
		return;
	}
	uint8_t zero[16] = {0};
	v[n++] = make_pfx(zero, 0, bits);
	if (family == AF_INET6) {
		uint8_t m[16] = {[10] = 0xff, [11] = 0xff};
		v[n] = make_pfx(m, 96, bits);
		v[n++].pseudo = true;
	}
	for (size_t i = 0; i < c->nrules; i++) {
		const struct rule *r = &c->rules[i];
		if (r->kind == RULE_CIDR && r->key[0] == family)
			v[n++] = make_pfx((const uint8_t *)r->key + 2,
					  r->prefix_len, bits);
	}
	qsort(v, n, sizeof(*v), pfx_cmp);
	for (size_t i = 0; i < n && !widen_stopped(s); i++) {
		if (v[i].pseudo || (i && !pfx_cmp(&v[i - 1], &v[i])))
			continue;
		/* The first address of v[i] outside the prefixes inside it. */
		u128 cand = v[i].lo;
		bool found = true;
		for (size_t j = i + 1; j < n && v[j].lo <= v[i].hi; j++) {
			if (v[j].lo == v[i].lo && v[j].len == v[i].len)
				continue; /* the same prefix again */
			if (v[j].lo > cand)
				break;
			if (v[j].hi < cand)
				continue;
			if (v[j].hi >= v[i].hi) {
				found = false;
				break;
			}
			cand = v[j].hi + 1;
		}
		if (!found)
			continue;
		struct widen_point pt = {.is_addr = true};
		pt.addr.family = (uint16_t)family;
		for (unsigned k = bits / 8; k-- > 0;) {
			pt.addr.b[k] = (uint8_t)cand;
			cand >>= 8;
		}
		widen_check_point(s, &pt);
	}
	free(v);
}

