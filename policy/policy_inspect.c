/* `inspect: true` on an allow rule (policy.h, docs/secrets.md "Inspected
 * hosts"): hosts the proxy intercepts with the sandbox CA to check and
 * record every request, with or without a secret. The CA's name
 * constraints permit each one and its subtree, so the host is checked as
 * strictly as a secret host: one exact name, two labels or more, never
 * a public suffix. */
#include "policy_internal.h"

#include <errno.h>
#include <string.h>

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
