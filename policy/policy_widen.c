/* The exact widening scan: every (name or address, port) that BASE+REPO
 * lets through and BASE does not, found from the rules' structure rather
 * than by sampling.
 *
 * Why a finite set of points is enough (names). A decision for a name n
 * depends only on which rule keys match n: an exact key equal to n, a "*."
 * key equal to n's parent, "**." keys equal to a proper suffix of n (and
 * on the port, below). Let KEYS be every key of every kind in BASE+REPO
 * (BASE's rules are a subset) and let s be the longest label-aligned
 * suffix of n that is in KEYS or is the empty suffix; write n = h.s with
 * d labels in h.
 *   d = 0: n = s is a key and is itself a point.
 *   d = 1: n = L.s with L.s not in KEYS (s is the longest). Take the
 *     point F.s with F chosen so that F.s is not in KEYS: neither is an
 *     exact key, both have parent s, and both have the same proper
 *     suffixes in KEYS (s and the suffixes of s). Same rules match.
 *   d >= 2: no suffix of n longer than s is in KEYS, so n is no exact key
 *     and its parent is no "*." key; its "**." matches are s and the
 *     suffixes of s. The point F.G.s with G.s and F.G.s not in KEYS has
 *     exactly the same matches.
 * So the points {s, F.s, F.G.s : s in KEYS or s empty} meet every class
 * of names that the two policies can tell apart. F and G are the shortest
 * labels that are fresh for s; when even that name is longer than 253
 * bytes the class is empty (a longer label cannot help).
 *
 * Addresses. A decision for an address a depends on which rule prefixes
 * contain a. For a rule prefix P (or /0), the addresses in P outside every
 * longer rule prefix inside P are all contained in exactly the prefixes
 * that contain P, so one of them stands for all; it is found by a sweep
 * over the prefixes sorted by network address. IPv4-mapped IPv6 addresses
 * are decided as IPv4, so ::ffff:0:0/96 counts as covered for IPv6.
 *
 * Ports. Rather than choosing representative ports, each point is decided
 * for all 65536 ports at once on bitmaps, with the engine's own order:
 * levels from the most specific, the first level with a rule for the
 * port decides, in a level the first deny (in chain order) beats allows.
 * Bit 0 is port 0, "any port" (a DNS question), which every rule matches.
 *
 * Only points that some REPO allow or report-mode rule matches can
 * change: a point no REPO rule matches sees the same rules in both.
 * The cost is linear in the keys (a few lookups per key and label) plus,
 * per point considered, the rules that match it; the property test in
 * tests/unit/test_policy_widen.c checks this against brute force. */
#include <string.h>
#include <sys/socket.h>

#include "../common/util.h"
#include "policy_internal.h"

#define PWORDS (65536 / 64)
#define MAX_LEVELS 260

struct scan {
	const struct policy *base, *comb, *repo;
	widen_hit_fn hit;
	void *harg;
	bool (*stop)(void *);
	void *sarg;
	unsigned tick;
	int err;
	/* scratch bitmaps, PWORDS words each (owned) */
	uint64_t *pass_b, *pass_c, *undec, *claimed, *lpass, *allow;
};

static inline void bit_set(uint64_t *m, unsigned i)
{
	m[i / 64] |= 1ull << (i % 64);
}

static inline bool bit_get(const uint64_t *m, unsigned i)
{
	return m[i / 64] >> (i % 64) & 1;
}

/* One level (a chain of equally specific rules) applied to the ports
 * still undecided. */
static void apply_level(struct scan *s, const struct policy *p, uint32_t i,
			uint64_t *pass)
{
	memset(s->claimed, 0, PWORDS * 8);
	memset(s->lpass, 0, PWORDS * 8);
	memset(s->allow, 0, PWORDS * 8);
	bool any_allow = false, all_claimed = false;
	for (; i != RULE_NONE; i = p->rules[i].next) {
		const struct rule *r = &p->rules[i];
		if (r->allow) {
			if (r->any_port) {
				memset(s->allow, 0xff, PWORDS * 8);
				any_allow = true;
				continue;
			}
			bit_set(s->allow, 0);
			for (size_t j = 0; j < r->nports; j++)
				bit_set(s->allow, r->ports[j]);
			continue;
		}
		if (all_claimed)
			continue;
		bool rep = r->report > 0;
		if (r->any_port) {
			for (size_t w = 0; w < PWORDS; w++) {
				if (rep)
					s->lpass[w] |= ~s->claimed[w];
				s->claimed[w] = ~0ull;
			}
			all_claimed = true;
			continue;
		}
		for (size_t j = 0; j <= r->nports; j++) {
			unsigned port = j < r->nports ? r->ports[j] : 0;
			if (bit_get(s->claimed, port))
				continue;
			bit_set(s->claimed, port);
			if (rep)
				bit_set(s->lpass, port);
		}
	}
	(void)any_allow;
	for (size_t w = 0; w < PWORDS; w++) {
		uint64_t lp = s->lpass[w] | (s->allow[w] & ~s->claimed[w]);
		pass[w] |= s->undec[w] & lp;
		s->undec[w] &= ~(s->claimed[w] | s->allow[w]);
	}
}

static void eval(struct scan *s, const struct policy *p, const uint32_t *lv,
		 size_t n, uint64_t *pass)
{
	memset(pass, 0, PWORDS * 8);
	memset(s->undec, 0xff, PWORDS * 8);
	for (size_t i = 0; i < n; i++)
		apply_level(s, p, lv[i], pass);
	if (p->mode == POLICY_REPORT)
		for (size_t w = 0; w < PWORDS; w++)
			pass[w] |= s->undec[w];
}

/* The chains that match a name, most specific first (policy_match.c's
 * order). */
static size_t name_levels(const struct policy *p, const char *name,
			  uint32_t *lv)
{
	size_t n = 0, len = strlen(name);
	const struct rule_table *t = p->tables;
	uint32_t h = rule_table_find(&t[RULE_EXACT], p->rules, name, len);
	if (h != RULE_NONE)
		lv[n++] = h;
	const char *dot = memchr(name, '.', len);
	const char *suf = dot ? dot + 1 : name + len;
	h = rule_table_find(&t[RULE_STAR1], p->rules, suf,
			    len - (size_t)(suf - name));
	if (h != RULE_NONE)
		lv[n++] = h;
	if (!t[RULE_STAR2].slots)
		return n;
	for (;;) {
		h = rule_table_find(&t[RULE_STAR2], p->rules, suf,
				    len - (size_t)(suf - name));
		if (h != RULE_NONE && n < MAX_LEVELS)
			lv[n++] = h;
		if (suf == name + len)
			break;
		dot = memchr(suf, '.', len - (size_t)(suf - name));
		suf = dot ? dot + 1 : name + len;
	}
	return n;
}

static size_t addr_levels(const struct policy *p, const struct ip_addr *a,
			  uint32_t *lv)
{
	size_t n = 0;
	if (!p->tables[RULE_CIDR].slots)
		return 0;
	const uint8_t *lens = a->family == AF_INET ? p->cidr_lens4
						   : p->cidr_lens6;
	int max = a->family == AF_INET ? 32 : 128;
	for (int l = max; l >= 0; l--) {
		if (!lens[l])
			continue;
		uint8_t key[CIDR_KEY_LEN];
		policy_cidr_key(a, (unsigned)l, key);
		uint32_t h = rule_table_find(&p->tables[RULE_CIDR], p->rules,
					     key, CIDR_KEY_LEN);
		if (h != RULE_NONE)
			lv[n++] = h;
	}
	return n;
}

/* Could a REPO rule among these chains let anything through? */
static bool repo_may_widen(const struct policy *p, const uint32_t *lv,
			   size_t n)
{
	for (size_t k = 0; k < n; k++)
		for (uint32_t i = lv[k]; i != RULE_NONE; i = p->rules[i].next)
			if (p->rules[i].allow || p->rules[i].report > 0)
				return true;
	return false;
}

static bool stopped(struct scan *s)
{
	if (s->err)
		return true;
	if (s->stop && (++s->tick & 255) == 0 && s->stop(s->sarg))
		s->err = -EINTR;
	return s->err != 0;
}

static void check_point(struct scan *s, const struct widen_point *pt)
{
	uint32_t lv[MAX_LEVELS];
	size_t n = pt->is_addr ? addr_levels(s->repo, &pt->addr, lv)
			       : name_levels(s->repo, pt->name, lv);
	if (!repo_may_widen(s->repo, lv, n))
		return;
	n = pt->is_addr ? addr_levels(s->base, &pt->addr, lv)
			: name_levels(s->base, pt->name, lv);
	eval(s, s->base, lv, n, s->pass_b);
	n = pt->is_addr ? addr_levels(s->comb, &pt->addr, lv)
			: name_levels(s->comb, pt->name, lv);
	eval(s, s->comb, lv, n, s->pass_c);
	bool any = false;
	for (size_t w = 0; w < PWORDS; w++) {
		s->pass_c[w] &= ~s->pass_b[w];
		any |= s->pass_c[w] != 0;
	}
	if (any)
		s->err = s->hit(s->harg, pt, s->pass_c);
}

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
		check_point(s, &pt);
	}
	char one[256];
	if (s->err || !fresh_child(s->comb, key, len, one))
		return;
	memcpy(pt.name, one, strlen(one) + 1);
	check_point(s, &pt);
	if (!s->err && fresh_child(s->comb, one, strlen(one), pt.name))
		check_point(s, &pt);
}

static void scan_names(struct scan *s)
{
	const struct policy *c = s->comb;
	points_under(s, "", 0);
	for (size_t i = 0; i < c->nrules && !stopped(s); i++) {
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

static void scan_family(struct scan *s, int family)
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
	for (size_t i = 0; i < n && !stopped(s); i++) {
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
		check_point(s, &pt);
	}
	free(v);
}

int policy_widen_scan(const struct policy *base, const struct policy *comb,
		      const struct policy *repo, widen_hit_fn hit, void *harg,
		      bool (*stop)(void *), void *sarg)
{
	struct scan s = {.base = base, .comb = comb, .repo = repo,
			 .hit = hit, .harg = harg, .stop = stop, .sarg = sarg};
	uint64_t *mem = malloc(6 * PWORDS * 8);
	if (!mem)
		return -ENOMEM;
	s.pass_b = mem;
	s.pass_c = mem + PWORDS;
	s.undec = mem + 2 * PWORDS;
	s.claimed = mem + 3 * PWORDS;
	s.lpass = mem + 4 * PWORDS;
	s.allow = mem + 5 * PWORDS;
	scan_names(&s);
	if (!s.err)
		scan_family(&s, AF_INET);
	if (!s.err)
		scan_family(&s, AF_INET6);
	free(mem);
	return s.err;
}
