/* The one check of "a name the sandbox CA may sign" (docs/secrets.md):
 * a secret host, an inspected host and, under `inspect: all`, every
 * allowed name become permitted DNS subtrees of the CA's name
 * constraints, and a DNS constraint permits the whole subtree under the
 * name. So the name must be one real name a user owns: no '_' (not a
 * host name), two labels or more, never a public suffix (the CA could
 * then sign every name anyone registers under it). The PSL is loaded on
 * first use. */
#include "policy_internal.h"

#include <string.h>

#include "../common/util.h"

const char *policy_ca_name_why(struct policy_builder *b, const char *name,
			       const char *role, char *why, size_t whysz)
{
	if (strchr(name, '_')) {
		fmt_buf(why, whysz, "'_' is not allowed in %s", role);
		return why;
	}
	if (!strchr(name, '.')) {
		fmt_buf(why, whysz, "%s needs at least two labels", role);
		return why;
	}
	if (!b->psl)
		b->psl = psl_load(NULL);
	if (b->psl && psl_is_public_suffix(b->psl, name)) {
		fmt_buf(why, whysz,
			"a public suffix cannot be %s (the sandbox CA could "
			"then sign every name under it)",
			role);
		return why;
	}
	return NULL;
}

const char *policy_ca_host_check(struct policy_builder *b, const char *host,
				 size_t len, const char *role, char *out,
				 size_t outsz, char *why, size_t whysz)
{
	enum rule_kind kind;
	const char *e = policy_parse_host(host, len, false, &b->psl, &kind,
					  out, outsz);
	if (e)
		return e;
	if (kind != RULE_EXACT) {
		fmt_buf(why, whysz,
			"%s is one exact name, no wildcard (the sandbox CA "
			"may sign names under it already)",
			role);
		return why;
	}
	return policy_ca_name_why(b, out, role, why, whysz);
}
