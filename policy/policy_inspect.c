/* `inspect: true` on an allow rule (policy.h, docs/secrets.md "Inspected
 * hosts"): hosts the proxy intercepts with the sandbox CA to check and
 * record every request, with or without a secret. The CA's name
 * constraints permit each one and its subtree, so the host is checked as
 * strictly as a secret host: one exact name, two labels or more, never
 * a public suffix. */
#include "policy_internal.h"

#include <errno.h>
#include <string.h>

#include "../common/util.h"

int policy_builder_add_inspect(struct policy_builder *b, const char *host,
			       size_t hostlen, const char *file,
			       unsigned line, unsigned col,
			       struct policy_errors *errs)
{
	char name[256], buf[200];
	const char *why = policy_ca_host_check(b, host, hostlen,
					       "an inspected host", name,
					       sizeof(name), buf, sizeof(buf));
	if (why) {
		policy_err(b, errs, file, line, col,
			   "inspected host '%.*s': %s",
			   (int)(hostlen > 100 ? 100 : hostlen), host, why);
		return -EINVAL;
	}
	for (size_t i = 0; i < b->n_inspect; i++)
		if (!strcmp(b->inspect[i].name, name))
			return 0;
	if (b->n_inspect == POLICY_INSPECT_MAX) {
		policy_err(b, errs, file, line, col,
			   "more than %d inspected hosts", POLICY_INSPECT_MAX);
		return -E2BIG;
	}
	struct policy_inspect *h = &b->inspect[b->n_inspect];
	h->name = arena_strndup(&b->arena, name, strlen(name));
	h->file = arena_strndup(&b->arena, file, strlen(file));
	if (!h->name || !h->file)
		return -ENOMEM;
	h->line = line;
	h->col = col;
	b->n_inspect++;
	return 0;
}

const struct policy_inspect *policy_inspected(const struct policy *p,
					      size_t *n)
{
	*n = p ? p->n_inspect : 0;
	return p ? p->inspect : NULL;
}

bool policy_is_inspected(const struct policy *p, const char *name)
{
	for (size_t i = 0; p && i < p->n_inspect; i++)
		if (!strcmp(p->inspect[i].name, name))
			return true;
	return false;
}

int policy_builder_inspect_all(struct policy_builder *b, const char *file,
			       unsigned line, unsigned col)
{
	b->inspect_all.name = "all";
	b->inspect_all.file = arena_strndup(&b->arena, file, strlen(file));
	b->inspect_all.line = line;
	b->inspect_all.col = col;
	return b->inspect_all.file ? 0 : -ENOMEM;
}

/* Under inspect: all the CA may sign any allowed name, so its name
 * constraints are the allowed names, fixed at start: every host allow
 * rule must name a subtree the CA may safely be limited to. A wildcard
 * rule's suffix is the subtree (*.example.com and **.example.com permit
 * example.com and below: a DNS constraint cannot say "below only" for
 * every client). cidr: rules stay allowed (they open private ranges for
 * names); a TLS connection by address is refused at run time, since the
 * CA excludes every address. */
void policy_inspect_all_finish(struct policy_builder *b,
			       struct policy_errors *errs)
{
	const struct policy_inspect *at = &b->inspect_all;
	if (!at->name)
		return;
	if (b->mode == POLICY_REPORT) {
		policy_err(b, errs, at->file, at->line, at->col,
			   "inspect: all cannot be used with mode: report "
			   "(names the policy does not allow would go through "
			   "without a name the sandbox CA may sign, "
			   "uninspected)");
		return;
	}
	b->ca_names = arena_alloc(&b->arena,
				  POLICY_CA_NAMES_MAX * sizeof(char *));
	if (!b->ca_names) {
		policy_err(b, errs, at->file, at->line, at->col,
			   "out of memory");
		return;
	}
	for (size_t i = 0; i < b->nrules; i++) {
		const struct rule *r = &b->rules[i];
		if (!r->allow || r->kind == RULE_CIDR)
			continue;
		char name[256], why[200];
		fmt_buf(name, sizeof(name), "%.*s", (int)r->keylen, r->key);
		if (policy_ca_name_why(b, name,
				       "a name the sandbox CA signs under "
				       "inspect: all",
				       why, sizeof(why))) {
			policy_err(b, errs, r->file, r->line, r->col,
				   "allow '%s': %s (%s:%u: inspect: all)",
				   r->pattern, why, at->file, at->line);
			continue;
		}
		bool dup = false;
		for (size_t k = 0; k < b->n_ca_names && !dup; k++)
			dup = !strcmp(b->ca_names[k], name);
		if (dup)
			continue;
		if (b->n_ca_names == POLICY_CA_NAMES_MAX) {
			policy_err(b, errs, at->file, at->line, at->col,
				   "inspect: all: more than %d allowed names "
				   "for the sandbox CA's name constraints; "
				   "use wildcard rules or fewer names",
				   POLICY_CA_NAMES_MAX);
			return;
		}
		b->ca_names[b->n_ca_names] =
			arena_strndup(&b->arena, name, strlen(name));
		if (!b->ca_names[b->n_ca_names++]) {
			policy_err(b, errs, at->file, at->line, at->col,
				   "out of memory");
			return;
		}
	}
}

bool policy_inspects_all(const struct policy *p,
			 const struct policy_inspect **at)
{
	if (at)
		*at = p && p->inspect_all.name ? &p->inspect_all : NULL;
	return p && p->inspect_all.name;
}

const char *const *policy_ca_names(const struct policy *p, size_t *n)
{
	*n = p && p->inspect_all.name ? p->n_ca_names : 0;
	return *n ? p->ca_names : NULL;
}
