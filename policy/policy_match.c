/* Decisions. A name is looked up as itself, then as "*." over its parent,
 * then as "**." over each proper suffix from the longest to the shortest:
 * that order is the specificity order, so the first level where a rule
 * matches decides, and within a level a deny beats an allow. */
#include <string.h>
#include <sys/socket.h>

#include "../common/util.h"
#include "policy_internal.h"

static bool port_ok(const struct rule *r, uint16_t port)
{
	if (port == 0 || r->any_port)
		return true;
	for (size_t i = 0; i < r->nports; i++)
		if (r->ports[i] == port)
			return true;
	return false;
}

static struct policy_verdict verdict(const struct rule *r)
{
	struct policy_verdict v = {
		.decision = r->allow ? DECISION_ALLOW
			    : r->report > 0 ? DECISION_WOULD_DENY
					    : DECISION_DENY,
		.rule = {.file = r->file, .line = r->line, .col = r->col,
			 .pattern = r->pattern, .allow = r->allow,
			 .protocols = r->protocols},
	};
	return v;
}

/* Evaluate one chain of equally specific rules; true when one matched. */
static bool chain(const struct policy *p, uint32_t i, uint16_t port,
		  struct policy_verdict *out)
{
	const struct rule *allow = NULL;
	uint8_t protocols = 0;
	for (; i != RULE_NONE; i = p->rules[i].next) {
		const struct rule *r = &p->rules[i];
		if (!port_ok(r, port))
			continue;
		if (!r->allow) {
			*out = verdict(r);
			return true;
		}
		if (!allow)
			allow = r;
		protocols |= r->protocols;
	}
	if (allow) {
		/* Equally specific allow rules are a union (docs/policy.md,
		 * Merging): a preset's [tls, http] beside a user's [tcp] for
		 * the same name and port lets tcp through. */
		*out = verdict(allow);
		out->rule.protocols = protocols;
	}
	return allow != NULL;
}

static struct policy_verdict fallback(const struct policy *p)
{
	struct policy_verdict v = {
		.decision = p && p->mode == POLICY_REPORT ? DECISION_WOULD_DENY
							  : DECISION_DENY,
	};
	return v;
}

struct policy_verdict policy_decide_name(const struct policy *p,
					 const char *name, uint16_t port)
{
	struct policy_verdict v;
	if (!p || !name)
		return fallback(p);
	if (policy_host_internal_decide(p, name, port, &v))
		return v;
	size_t len = strlen(name);
	const struct rule_table *t = p->tables;
	if (chain(p, rule_table_find(&t[RULE_EXACT], p->rules, name, len), port,
		  &v))
		return v;
	/* The parent of a single-label name is the empty suffix, which is
	 * where deny "*" and "**" live. */
	const char *dot = memchr(name, '.', len);
	const char *suf = dot ? dot + 1 : name + len;
	if (chain(p, rule_table_find(&t[RULE_STAR1], p->rules, suf,
				     len - (size_t)(suf - name)),
		  port, &v))
		return v;
	if (!t[RULE_STAR2].slots)
		return fallback(p);
	size_t labels = 0; /* of the current suffix */
	for (const char *c = suf; c < name + len; c++)
		labels += *c == '.';
	labels += suf < name + len;
	/* Suffixes from the longest down to the empty one; only label counts
	 * that some "**." key has are looked up. */
	for (;;) {
		if (p->star2_labels[labels < 128 ? labels : 127] &&
		    chain(p, rule_table_find(&t[RULE_STAR2], p->rules, suf,
					     len - (size_t)(suf - name)),
			  port, &v))
			return v;
		if (labels == 0)
			break;
		dot = memchr(suf, '.', len - (size_t)(suf - name));
		suf = dot ? dot + 1 : name + len;
		labels--;
	}
	return fallback(p);
}

void policy_cidr_key(const struct ip_addr *a, unsigned prefix_len,
		     uint8_t key[CIDR_KEY_LEN])
{
	memset(key, 0, CIDR_KEY_LEN);
	key[0] = (uint8_t)a->family;
	key[1] = (uint8_t)prefix_len;
	unsigned bytes = a->family == AF_INET ? 4 : 16;
	for (unsigned i = 0; i < bytes && i * 8 < prefix_len; i++) {
		unsigned bits = prefix_len - i * 8;
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		key[2 + i] = a->b[i] & mask;
	}
}

struct policy_verdict policy_decide_addr(const struct policy *p,
					 const struct ip_addr *addr,
					 uint16_t port)
{
	struct policy_verdict v;
	if (!p || !addr || !p->tables[RULE_CIDR].slots)
		return fallback(p);
	struct ip_addr a = *addr;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	/* ::ffff:a.b.c.d is the IPv4 host; rules written for it must apply. */
	if (a.family == AF_INET6 && memcmp(a.b, mapped, 12) == 0) {
		memmove(a.b, a.b + 12, 4);
		memset(a.b + 4, 0, 12);
		a.family = AF_INET;
	}
	const uint8_t *lens = a.family == AF_INET ? p->cidr_lens4 : p->cidr_lens6;
	int max = a.family == AF_INET ? 32 : 128;
	if (a.family != AF_INET && a.family != AF_INET6)
		return fallback(p);
	for (int l = max; l >= 0; l--) {
		if (!lens[l])
			continue;
		uint8_t key[CIDR_KEY_LEN];
		policy_cidr_key(&a, (unsigned)l, key);
		if (chain(p, rule_table_find(&p->tables[RULE_CIDR], p->rules,
					     key, CIDR_KEY_LEN),
			  port, &v))
			return v;
	}
	return fallback(p);
}

enum policy_mode policy_mode(const struct policy *p)
{
	return p ? p->mode : POLICY_ENFORCE;
}

const char *policy_primary_file(const struct policy *p)
{
	return p ? p->primary : NULL;
}

void policy_get_stats(const struct policy *p, struct policy_stats *st)
{
	if (p)
		*st = p->stats;
	else
		memset(st, 0, sizeof(*st));
}

const char *policy_decision_str(enum policy_decision d)
{
	switch (d) {
	case DECISION_ALLOW:
		return "allow";
	case DECISION_WOULD_DENY:
		return "would-deny";
	case DECISION_DENY:
		break;
	}
	return "deny";
}

char *policy_rule_str(const struct policy_rule_ref *r, char *out, size_t outsz)
{
	if (!out || outsz == 0)
		return out;
	if (!r || !r->file)
		fmt_buf(out, outsz, "default");
	else if (r->line == 0)
		fmt_buf(out, outsz, "%s", r->file);
	else
		fmt_buf(out, outsz, "%s:%u", r->file, r->line);
	return out;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (int k = 0; k < RULE_KINDS; k++)
		rule_table_free(&p->tables[k]);
	free(p->rules);
	arena_free(&p->arena);
	free(p);
}
