/* Fuzz the policy loader: any bytes as a YAML policy must either load or be
 * refused with at least one error, never crash, leak or hang; a loaded
 * policy must answer questions. The same bytes are also diffed as a
 * repository file, tried as a command-line rule and as a name to
 * normalise. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_errors errs = {0};
	struct policy_builder *b = policy_builder_new(NULL);
	if (!b)
		return 0;
	int r = policy_builder_add_buffer(b, "fuzz.yaml", (const char *)data,
					  size, &errs);
	struct policy *p = policy_builder_finish(b, &errs);
	/* Fail closed: an error means no policy, and no policy means an error. */
	if ((r == -EINVAL && p) || (!p && errs.count == 0 && r != -ENOMEM))
		abort();
	if (p) {
		struct policy_verdict v = policy_decide_name(p, "www.example.com", 443);
		if (v.decision > DECISION_WOULD_DENY)
			abort();
		struct ip_addr a = {.family = AF_INET, .b = {10, 1, 2, 3}};
		policy_decide_addr(p, &a, 22);
		/* Secrets: each names a variable and 1..max exact hosts. */
		size_t ns;
		const struct policy_secret *sec = policy_secrets(p, &ns);
		if (ns > POLICY_SECRETS_MAX)
			abort();
		for (size_t i = 0; i < ns; i++) {
			if (!sec[i].var[0] || sec[i].nhosts == 0 ||
			    sec[i].nhosts > POLICY_SECRET_HOSTS_MAX)
				abort();
			for (size_t j = 0; j < sec[i].nhosts; j++)
				if (strpbrk(sec[i].hosts[j].name, "*:/_ "))
					abort();
		}
		policy_free(p);
	}
	policy_errors_free(&errs);

	/* The same bytes as a repository file over an empty base: the exact
	 * widening scan must finish on anything that loads. */
	struct policy_diff d;
	if (policy_diff_compute(NULL, 0, NULL, "repo.yaml", (const char *)data,
				size, &d, &errs) == 0) {
		for (size_t i = 0; i < d.count; i++)
			free(policy_widening_key(&d.items[i]));
		policy_diff_free(&d);
	}
	policy_errors_free(&errs);

	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char out[256];
	int n = policy_normalize_name(s, size, out, sizeof(out));
	if (n >= 0 && (strlen(out) != (size_t)n || n > 253))
		abort();
	if (n >= 0 && policy_normalize_name(out, (size_t)n, out, sizeof(out)) != n)
		abort(); /* normalising a normal name changes nothing */
	b = policy_builder_new(NULL);
	if (b) {
		policy_builder_add_rule(b, size & 1, s, "--allow", &errs);
		policy_free(policy_builder_finish(b, &errs));
		policy_errors_free(&errs);
	}
	free(s);
	return 0;
}
