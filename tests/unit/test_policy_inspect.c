/* inspect: true on an allow rule (policy_inspect.c): the loader's checks
 * and the widening a repository's inspected host is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "../../policy/policy.h"
#include "policy_files.h"
#include "tap.h"

static char base_path[128], base_insp_path[128], base_all_path[128];

static void loader(void)
{
	struct policy *p = pf_load_ok("version: 1\nallow:\n"
				      "  - host: API.Example.com\n"
				      "    inspect: true\n"
				      "  - host: quiet.example.com\n"
				      "    inspect: false\n"
				      "  - host: api.example.com\n"
				      "    ports: [8443]\n    inspect: true\n",
				      "inspect: true");
	size_t n = 0;
	const struct policy_inspect *h = policy_inspected(p, &n);
	is_int(n, 1, "one inspected host, a repeat kept once");
	if (n == 1) {
		is_str(h[0].name, "api.example.com", "normalised");
		is_int(h[0].line, 4, "line of inspect:");
		is_int(h[0].col, 5, "column of inspect:");
	}
	ok(policy_is_inspected(p, "api.example.com"), "is inspected");
	ok(!policy_is_inspected(p, "quiet.example.com"),
	   "inspect: false inspects nothing");
	struct policy_verdict v = policy_decide_name(p, "api.example.com", 443);
	ok(v.decision == DECISION_ALLOW, "the rule still allows its host");
	policy_free(p);

	/* Each one must fail closed, naming the place and the reason. */
	static const struct {
		const char *yaml, *want;
	} bad[] = {
		{"version: 1\nallow:\n  - host: '*.example.com'\n    inspect: true\n",
		 "an inspected host is one exact name, no wildcard"},
		{"version: 1\nallow:\n  - host: '**.example.com'\n    inspect: true\n",
		 "one exact name"},
		{"version: 1\nallow:\n  - host: co.uk\n    inspect: true\n",
		 "a public suffix cannot be an inspected host"},
		{"version: 1\nallow:\n  - host: localhost\n    inspect: true\n",
		 "an inspected host needs at least two labels"},
		{"version: 1\nallow:\n  - host: a_b.example.com\n    inspect: true\n",
		 "'_' is not allowed in an inspected host"},
		{"version: 1\nallow:\n  - cidr: 10.0.0.0/8\n    inspect: true\n",
		 "allow rule with host:"},
		{"version: 1\ndeny:\n  - host: api.example.com\n    inspect: true\n",
		 "allow rule with host:"},
		{"version: 1\nallow:\n  - host: api.example.com\n    inspect: yes\n",
		 "inspect must be true or false"},
		{"version: 1\nallow:\n  - host: api.example.com\n    inspect: [true]\n",
		 "inspect"},
		{"version: 1\nallow:\n  - host: api.example.com\n    inspect: all\n",
		 "inspect must be true or false"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		pf_expect_refused(bad[i].yaml, bad[i].want, ":4:");
}

static void widening(void)
{
	struct policy_diff d;
	/* BASE allows the host; the repository inspects it. */
	is_int(pf_diff(base_path, "version: 1\nallow:\n"
				  "  - host: api.example.com\n"
				  "    inspect: true\n",
		       &d, NULL),
	       0, "diff computed");
	is_int(d.count, 1, "a repository's inspected host widens");
	if (d.count) {
		const struct policy_widening *w = &d.items[0];
		is_int(w->kind, WIDEN_INSPECT, "as inspect");
		is_str(w->pattern, "api.example.com", "naming the host");
		is_int(w->line, 4, "and the line");
		char *k = policy_widening_key(w);
		ok(k && strstr(k, "inspect api.example.com"),
		   "approval key names it: %s", k ? k : "(null)");
		free(k);
		char *out = NULL;
		size_t ol = 0;
		FILE *f = open_memstream(&out, &ol);
		policy_diff_print(f, &d, false);
		fclose(f);
		ok(out && strstr(out, "+ inspect api.example.com"),
		   "diff shows it: %s", out ? out : "");
		free(out);
	}
	policy_diff_free(&d);

	/* A host BASE inspects already: nothing. */
	is_int(pf_diff(base_insp_path, "version: 1\nallow:\n"
				       "  - host: api.example.com\n"
				       "    inspect: true\n",
		       &d, NULL),
	       0, "diff computed");
	is_int(d.count, 0, "a host BASE inspects does not widen");
	policy_diff_free(&d);
}


/* inspect: all at the top level: the CA's names are the allowed names. */
static void all(void)
{
	struct policy *p = pf_load_ok("version: 1\ninspect: all\nallow:\n"
				      "  - API.example.com\n"
				      "  - '*.pkg.example.org'\n"
				      "  - '**.cdn.example.net'\n"
				      "  - api.example.com\n"
				      "  - cidr: 10.1.0.0/16\n"
				      "deny:\n  - co.uk\n",
				      "inspect: all");
	const struct policy_inspect *at = NULL;
	ok(policy_inspects_all(p, &at) && at && at->line == 2 &&
		   at->col == 10,
	   "inspects all, at 2:10");
	size_t n = 0;
	const char *const *names = policy_ca_names(p, &n);
	is_int(n, 3, "three CA names: exact, wildcard suffixes, once each");
	if (n == 3) {
		is_str(names[0], "api.example.com", "exact, normalised");
		is_str(names[1], "pkg.example.org", "*. suffix");
		is_str(names[2], "cdn.example.net", "**. suffix");
	}
	policy_free(p);
	p = pf_load_ok("version: 1\nallow:\n  - api.example.com\n",
		       "without inspect: all");
	ok(p && !policy_inspects_all(p, NULL) &&
		   !policy_ca_names(p, &n) && n == 0,
	   "without it: no CA names");
	policy_free(p);

	static const struct {
		const char *yaml, *want;
	} bad[] = {
		{"version: 1\ninspect: all\nallow:\n  - localhost\n",
		 "4:5: allow 'localhost': a name the sandbox CA signs under "
		 "inspect: all needs at least two labels"},
		{"version: 1\ninspect: all\nallow:\n  - a_b.example.com\n",
		 "4:5: allow 'a_b.example.com': '_' is not allowed"},
		{"version: 1\ninspect: all\nallow:\n  - '*.x_y.example.com'\n",
		 "'_' is not allowed"},
		{"version: 1\ninspect: all\nallow:\n  - github.io\n",
		 "public suffix cannot be a name the sandbox CA signs"},
		{"version: 1\ninspect: all\nmode: report\nallow:\n  - a.example.com\n",
		 "2:10: inspect: all cannot be used with mode: report"},
		{"version: 1\ninspect: true\nallow:\n  - a.example.com\n",
		 "2:10: inspect: at the top level takes only 'all'"},
		{"version: 1\ninspect: [all]\nallow:\n  - a.example.com\n",
		 "2:10: expected inspect: all"},
		{"version: 1\ninspect: all\ninspect: all\n",
		 "3:1: duplicate key 'inspect'"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		pf_expect_refused(bad[i].yaml, bad[i].want, NULL);

	/* Too many names for the constraints: refused at inspect: all. */
	char *big = malloc(64 * 1024);
	size_t len = 0;
	len += (size_t)snprintf(big + len, 64 * 1024 - len,
				"version: 1\ninspect: all\nallow:\n");
	for (int i = 0; i <= POLICY_CA_NAMES_MAX; i++)
		len += (size_t)snprintf(big + len, 64 * 1024 - len,
					"  - h%d.example.com\n", i);
	pf_expect_refused(big, "2:10: inspect: all: more than", NULL);
	free(big);

	/* A repository adding inspect: all widens, once. */
	struct policy_diff d;
	is_int(pf_diff(base_path, "version: 1\ninspect: all\nallow:\n"
				  "  - api.example.com\n",
		       &d, NULL),
	       0, "diff computed");
	is_int(d.count, 1, "inspect: all widens");
	if (d.count) {
		const struct policy_widening *w = &d.items[0];
		is_int(w->kind, WIDEN_INSPECT, "as inspect");
		is_str(w->pattern, "all", "all");
		is_int(w->line, 2, "at its line");
		char *k = policy_widening_key(w);
		ok(k && strstr(k, "inspect all"), "approval key: %s",
		   k ? k : "(null)");
		free(k);
		char *out = NULL;
		size_t ol = 0;
		FILE *f = open_memstream(&out, &ol);
		policy_diff_print(f, &d, false);
		fclose(f);
		ok(out && strstr(out, "+ inspect all: the sandbox CA may sign "
				      "every allowed name"),
		   "diff shows it: %s", out ? out : "");
		free(out);
	}
	policy_diff_free(&d);
	is_int(pf_diff(base_all_path, "version: 1\ninspect: all\nallow:\n"
				      "  - api.example.com\n",
		       &d, NULL),
	       0, "diff computed");
	is_int(d.count, 0, "BASE inspecting all already: no widening");
	policy_diff_free(&d);
}

int main(void)
{
	pf_setup("test_policy_insp");
	pf_write(base_path, sizeof(base_path), "base.yaml",
		 "version: 1\nallow:\n  - api.example.com\n");
	pf_write(base_insp_path, sizeof(base_insp_path), "base_insp.yaml",
		 "version: 1\nallow:\n  - host: api.example.com\n"
		 "    inspect: true\n");
	pf_write(base_all_path, sizeof(base_all_path), "base_all.yaml",
		 "version: 1\ninspect: all\nallow:\n  - api.example.com\n");
	loader();
	widening();
	all();
	pf_cleanup();
	return done_testing();
}
