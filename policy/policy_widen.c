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
 * Ports. A port enters a decision only through membership in the port
 * lists of the rules that match the point. Ports that every one of those
 * rules lists alike (all or none) are decided alike: gather_ports() splits
 * the listed ports into such classes, and one port of each class, port 0
 * ("any port", a DNS question, which every rule matches) and one port no
 * rule lists (standing for all the others) are decided, in the engine's
 * own order: levels from the most specific, the first level with a rule
 * for the port decides, in a level the first deny (in chain order) beats
 * the allows. The rule that decided is kept for the caller to show.
 *
 * Protocols. A rule's `protocols:` set (tls, http, tcp) does not change
 * which rule decides: it is an attribute of the decision. Where allows
 * decide a port, what passes is the union of the sets of that level's
 * allow rules that list the port (policy_match.c's chain()); a report-mode
 * pass lets every protocol through (the proxy treats a would-deny so). So
 * each slot carries, beside pass or not, the set that passes, and a point
 * widens at a port where BASE+REPO passes a protocol that BASE does not:
 * a REPO rule that adds `tcp` to a name and port BASE allows for tls and
 * http widens exactly like a new port would. `tcp` lets every stream
 * through, so a set with it counts as all three.
 *
 * Only points that some REPO allow or report-mode rule matches can
 * change: a point no REPO rule matches sees the same rules in both.
 * The cost is linear in the keys (a few lookups per key and label) plus,
 * per point considered, the rules that match it; the property test in
 * tests/unit/test_policy_widen.c checks this against brute force. */
#include <string.h>
#include <sys/socket.h>

#include "../common/util.h"
#include "policy_widen.h"

#define MAX_LEVELS 260
/* Ports and slots visited before the scan gives up and says so (the
 * caller then asks, rather than deciding): a fraction of a second. */
#define WORK_MAX (8u << 20)

/* A protocol set as the proxy applies it: tcp lets every stream through. */
static uint8_t effective_protocols(uint8_t m)
{
	return m & POLICY_PROTO_TCP ? POLICY_PROTO_ALL : m;
}

/* Rule i of a level lists slot k: its protocols join the level's union
 * (an allow), and the first rule of its kind to list k claims it. */
static void level_slot(struct scan *s, const struct rule *r, uint32_t i,
		       size_t k, uint8_t *mark, uint32_t *who, uint8_t rep)
{
	if (r->allow)
		s->lproto[k] |= r->protocols;
	if (mark[k])
		return;
	mark[k] = 1;
	who[k] = i;
	s->lpass[k] |= rep;
}

/* One level (a chain of equally specific rules) applied to the slots
 * still undecided: the first deny in chain order claims a port (a
 * report-mode deny lets it through), else an allow lets it through, with
 * the union of the protocols of the level's allows that list the port. */
static void apply_level(struct scan *s, const struct policy *p, uint32_t i,
			uint8_t *pass, uint8_t *proto, uint32_t *by)
{
	size_t m = s->nq + 2;
	memset(s->claimed, 0, m);
	memset(s->lpass, 0, m);
	memset(s->allow, 0, m);
	memset(s->lproto, 0, m);
	bool all_claimed = false;
	for (; i != RULE_NONE; i = p->rules[i].next) {
		const struct rule *r = &p->rules[i];
		uint8_t *mark = r->allow ? s->allow : s->claimed;
		uint32_t *who = r->allow ? s->allow_by : s->claim_by;
		uint8_t rep = !r->allow && r->report > 0;
		/* Every allow counts (its protocols join the union), a deny
		 * after an any-port deny changes nothing. */
		if (!r->allow && all_claimed)
			continue;
		if (r->any_port) {
			for (size_t k = 0; k < m; k++)
				level_slot(s, r, i, k, mark, who, rep);
			if (!r->allow)
				all_claimed = true;
			s->work += m;
			continue;
		}
		for (size_t j = 0; j <= r->nports; j++)
			level_slot(s, r, i, j < r->nports ? s->slot[r->ports[j]] : 0,
				   mark, who, rep);
	}
	for (size_t k = 0; k < m; k++) {
		if (!s->undec[k] || !(s->claimed[k] || s->allow[k]))
			continue;
		s->undec[k] = 0;
		if (s->claimed[k]) {
			pass[k] = s->lpass[k];
			proto[k] = s->lpass[k] ? POLICY_PROTO_ALL : 0;
			by[k] = s->claim_by[k];
		} else {
			pass[k] = 1;
			proto[k] = effective_protocols(s->lproto[k]);
			by[k] = s->allow_by[k];
		}
	}
}

static void eval(struct scan *s, const struct policy *p, const uint32_t *lv,
		 size_t n, uint8_t *pass, uint8_t *proto, uint32_t *by)
{
	size_t m = s->nq + 2;
	memset(pass, 0, m);
	memset(proto, 0, m);
	memset(s->undec, 1, m);
	memset(by, 0xff, m * sizeof(*by)); /* RULE_NONE */
	for (size_t i = 0; i < n; i++)
		apply_level(s, p, lv[i], pass, proto, by);
	s->work += n * m;
	if (p->mode == POLICY_REPORT)
		for (size_t k = 0; k < m; k++)
			if (s->undec[k]) {
				pass[k] = 1;
				proto[k] = POLICY_PROTO_ALL;
			}
}

/* Grow the per-class arrays to hold class id c. */
static int class_room(struct scan *s, uint32_t c)
{
	if (c < s->ccap)
		return 0;
	size_t cap = s->ccap ? s->ccap * 2 : 4096;
	while (cap <= c)
		cap *= 2;
	uint32_t *n = realloc(s->cls_mem, cap * 3 * sizeof(*n));
	if (!n)
		return -ENOMEM;
	/* the three arrays live side by side: move them apart */
	memmove(n + 2 * cap, n + 2 * s->ccap, s->ccap * sizeof(*n));
	memmove(n + cap, n + s->ccap, s->ccap * sizeof(*n));
	s->cls_mem = n;
	s->born = n;
	s->split_round = n + cap;
	s->split_to = n + 2 * cap;
	s->ccap = cap;
	return 0;
}

/* Partition the ports the rules of these chains list into classes of
 * ports that every one of those rules lists alike (all or none): ports
 * of one class are decided alike at this point, so one slot stands for
 * each class. Classic partition refinement, linear in the listed ports.
 * Fills slot[], rep[] (a port of each slot), members[] from mstart[]. */
static int gather_ports(struct scan *s, const struct policy *p,
			const uint32_t *lv, size_t n)
{
	uint32_t classes = 0; /* class 0: ports no rule seen so far lists */
	if (class_room(s, 1) < 0)
		return -ENOMEM;
	s->split_round[0] = 0;
	for (size_t l = 0; l < n; l++)
		for (uint32_t i = lv[l]; i != RULE_NONE; i = p->rules[i].next) {
			const struct rule *r = &p->rules[i];
			uint32_t round = ++s->round;
			s->work += r->nports + 1;
			for (size_t j = 0; j < r->nports; j++) {
				uint16_t port = r->ports[j];
				uint32_t c = s->cls[port];
				if (c && s->born[c] == round)
					continue; /* listed twice in r */
				if (s->split_round[c] != round) {
					if (class_room(s, classes + 1) < 0)
						return -ENOMEM;
					s->split_round[c] = round;
					s->split_to[c] = ++classes;
					s->born[classes] = round;
					s->split_round[classes] = 0;
				}
				if (c == 0)
					s->listed[s->nlisted++] = port;
				s->cls[port] = s->split_to[c];
			}
		}
	/* Number the classes that still have ports, in order of first port. */
	s->nq = 0;
	s->round++;
	for (size_t i = 0; i < s->nlisted; i++) {
		uint32_t c = s->cls[s->listed[i]];
		if (s->split_round[c] != s->round) {
			s->split_round[c] = s->round;
			s->split_to[c] = (uint32_t)++s->nq;
			s->rep[s->nq] = s->listed[i];
			s->mstart[s->nq] = 0;
		}
		s->slot[s->listed[i]] = s->split_to[c];
		s->mstart[s->split_to[c]]++;
	}
	/* members of slot k: members[mstart[k] .. mstart[k+1]) */
	uint32_t sum = 0;
	for (size_t k = 1; k <= s->nq + 1; k++) {
		uint32_t c = k <= s->nq ? s->mstart[k] : 0;
		s->mstart[k] = sum;
		sum += c;
	}
	for (size_t i = 0; i < s->nlisted; i++) {
		uint32_t k = s->slot[s->listed[i]];
		s->members[s->mstart[k] + s->mfill[k]++] = s->listed[i];
	}
	return 0;
}

static void clear_ports(struct scan *s)
{
	for (size_t i = 0; i < s->nlisted; i++) {
		s->slot[s->listed[i]] = 0;
		s->cls[s->listed[i]] = 0;
	}
	for (size_t k = 0; k <= s->nq + 1; k++)
		s->mfill[k] = 0;
	s->nlisted = 0;
	s->nq = 0;
}

/* The chains that match a name, most specific first (policy_match.c's
 * order). */
static size_t name_levels(struct scan *s, const struct policy *p,
			  const char *name, uint32_t *lv)
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
	size_t labels = 0; /* of the current suffix */
	for (const char *c = suf; c < name + len; c++)
		labels += *c == '.';
	labels += suf < name + len;
	for (;;) {
		/* Only label counts some "**." key has, as the engine does;
		 * each lookup hashes the suffix: counted as work. */
		if (p->star2_labels[labels < 128 ? labels : 127]) {
			size_t sl = len - (size_t)(suf - name);
			s->work += 1 + sl / 8;
			h = rule_table_find(&t[RULE_STAR2], p->rules, suf, sl);
			if (h != RULE_NONE && n < MAX_LEVELS)
				lv[n++] = h;
		}
		if (suf == name + len)
			break;
		dot = memchr(suf, '.', len - (size_t)(suf - name));
		suf = dot ? dot + 1 : name + len;
		labels--;
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

bool widen_stopped(struct scan *s)
{
	if (!s->err && s->work > WORK_MAX)
		s->err = -ERANGE;
	if (s->err)
		return true;
	if (s->stop && (++s->tick & 255) == 0 && s->stop(s->sarg))
		s->err = -EINTR;
	return s->err != 0;
}

static bool lists_port(const struct rule *r, uint16_t port)
{
	if (r->any_port)
		return true;
	for (size_t j = 0; j < r->nports; j++)
		if (r->ports[j] == port)
			return true;
	return false;
}

/* Where BASE also passes a port and only protocols widen, the rule that
 * decided (the first allow of the level) may be BASE's own: show the allow
 * of that level that brings a new protocol. They all follow it in the
 * chain. */
static uint32_t protocol_source(const struct policy *p, uint32_t first,
				uint16_t port, uint8_t fresh)
{
	for (uint32_t i = first; i != RULE_NONE; i = p->rules[i].next) {
		const struct rule *r = &p->rules[i];
		if (r->allow && lists_port(r, port) &&
		    (effective_protocols(r->protocols) & fresh))
			return i;
	}
	return first;
}

void widen_check_point(struct scan *s, const struct widen_point *pt)
{
	uint32_t lb[MAX_LEVELS], lc[MAX_LEVELS];
	if (widen_stopped(s))
		return;
	size_t n = pt->is_addr ? addr_levels(s->repo, &pt->addr, lc)
			       : name_levels(s, s->repo, pt->name, lc);
	if (!repo_may_widen(s->repo, lc, n))
		return;
	size_t nb = pt->is_addr ? addr_levels(s->base, &pt->addr, lb)
				: name_levels(s, s->base, pt->name, lb);
	size_t nc = pt->is_addr ? addr_levels(s->comb, &pt->addr, lc)
				: name_levels(s, s->comb, pt->name, lc);
	/* comb has every rule of base: its chains list every port. */
	if ((s->err = gather_ports(s, s->comb, lc, nc)) < 0)
		return;
	size_t other = s->nq + 1;
	eval(s, s->base, lb, nb, s->pass_b, s->proto_b, s->by_b);
	eval(s, s->comb, lc, nc, s->pass_c, s->proto_c, s->by_c);
	/* The smallest port this point's rules do not list. */
	unsigned oport = 1;
	while (oport < 65536 && s->slot[oport])
		oport++;
	size_t n_w = 0;
	for (size_t k = 0; k <= other; k++) {
		/* Port 0 is a name lookup: no stream, so no protocol. */
		uint8_t fresh = !s->pass_c[k] ? 0
				: !s->pass_b[k] ? s->proto_c[k]
						: (uint8_t)(s->proto_c[k] &
							    ~s->proto_b[k]);
		if (!s->pass_c[k] || (s->pass_b[k] && (k == 0 || !fresh)))
			continue;
		if (k == other && oport == 65536)
			continue; /* every port is listed: no "other" */
		struct widen_entry *e = &s->widened[n_w++];
		e->port = k == 0 ? 0 : k == other ? (uint16_t)oport : s->rep[k];
		e->members = k == 0 || k == other ? NULL
						  : s->members + s->mstart[k];
		e->nmembers = e->members ? s->mstart[k + 1] - s->mstart[k] : 0;
		e->rule_comb = s->by_c[k];
		e->rule_base = s->by_b[k];
		e->new_protocols = k == 0 ? 0 : fresh;
		if (s->pass_b[k])
			e->rule_comb = protocol_source(s->comb, s->by_c[k],
						       e->port, fresh);
	}
	if (n_w)
		s->err = s->hit(s->harg, pt, s->widened, n_w);
	clear_ports(s);
}

int policy_widen_scan(const struct policy *base, const struct policy *comb,
		      const struct policy *repo, widen_hit_fn hit, void *harg,
		      bool (*stop)(void *), void *sarg)
{
	struct scan s = {.base = base, .comb = comb, .repo = repo,
			 .hit = hit, .harg = harg, .stop = stop, .sarg = sarg};
	enum { SLOTS = 65536 + 2 };
	s.slot = calloc(65536, sizeof(*s.slot));
	s.cls = calloc(65536, sizeof(*s.cls));
	s.listed = calloc(65536, sizeof(*s.listed));
	s.rep = calloc(SLOTS, sizeof(*s.rep));
	s.mstart = calloc(SLOTS, sizeof(*s.mstart));
	s.mfill = calloc(SLOTS, sizeof(*s.mfill));
	s.members = calloc(65536, sizeof(*s.members));
	s.widened = calloc(SLOTS, sizeof(*s.widened));
	uint8_t *mem = calloc(9, SLOTS);
	uint32_t *who = calloc(4 * (size_t)SLOTS, sizeof(*who));
	if (!s.slot || !s.cls || !s.listed || !s.rep || !s.mstart ||
	    !s.mfill || !s.members || !s.widened || !mem || !who) {
		s.err = -ENOMEM;
		goto out;
	}
	s.pass_b = mem;
	s.pass_c = mem + SLOTS;
	s.undec = mem + 2 * SLOTS;
	s.claimed = mem + 3 * SLOTS;
	s.lpass = mem + 4 * SLOTS;
	s.allow = mem + 5 * SLOTS;
	s.proto_b = mem + 6 * SLOTS;
	s.proto_c = mem + 7 * SLOTS;
	s.lproto = mem + 8 * SLOTS;
	s.by_b = who;
	s.by_c = who + SLOTS;
	s.claim_by = who + 2 * SLOTS;
	s.allow_by = who + 3 * SLOTS;
	widen_scan_names(&s);
	if (!s.err)
		widen_scan_family(&s, AF_INET);
	if (!s.err)
		widen_scan_family(&s, AF_INET6);
out:
	free(who);
	free(mem);
	free(s.slot);
	free(s.cls);
	free(s.listed);
	free(s.rep);
	free(s.mstart);
	free(s.mfill);
	free(s.members);
	free(s.cls_mem);
	free(s.widened);
	return s.err;
}
