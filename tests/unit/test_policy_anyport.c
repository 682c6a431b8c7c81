/* "ports: any": a rule that matches every port, from YAML and the command
 * line, with the usual over-broad refusals and widening analysis. */
#include <string.h>

#include "../../common/util.h"
#include "../../policy/policy.h"
#include "tap.h"

static struct policy *yaml(const char *doc, struct policy_errors *errs)
{
	struct policy_builder *b = policy_builder_new(NULL);
	policy_builder_add_buffer(b, "p.yaml", doc, strlen(doc), errs);
	return policy_builder_finish(b, errs);
}

static struct policy *cli(bool allow, const char *spec,
			  struct policy_errors *errs)
{
	struct policy_builder *b = policy_builder_new(NULL);
	policy_builder_add_rule(b, allow, spec, NULL, errs);
	return policy_builder_finish(b, errs);
}

static bool has_err(const struct policy_errors *e, const char *needle)
{
	for (size_t i = 0; i < e->count; i++)
		if (strstr(e->msgs[i], needle))
			return true;
	return false;
}

static void test_yaml_any(void)
{
	struct policy_errors e = {0};
	struct policy *p = yaml("version: 1\nallow:\n"
				"  - host: git.example.com\n"
				"    ports: any\n"
				"  - example.org\n"
				"deny:\n"
				"  - cidr: 10.0.0.0/8\n"
				"    ports: any\n",
				&e);
	ok(p != NULL, "ports: any loads (%zu errors)", e.count);
	struct policy_verdict v = policy_decide_name(p, "git.example.com", 22);
	is_int(v.decision, DECISION_ALLOW, "any-port allow covers port 22");
	is_int(v.rule.line, 3, "named by its line");
	v = policy_decide_name(p, "git.example.com", 65535);
	is_int(v.decision, DECISION_ALLOW, "and port 65535");
	v = policy_decide_name(p, "example.org", 22);
	ok(v.decision == DECISION_DENY && !v.rule.file,
	   "a rule without ports still covers only 80/443");
	struct ip_addr a;
	ip_parse_strict("10.1.2.3", 8, &a);
	v = policy_decide_addr(p, &a, 5432);
	ok(v.decision == DECISION_DENY && v.rule.file && v.rule.line == 7,
	   "any-port cidr deny names its rule on port 5432");
	policy_free(p);
	policy_errors_free(&e);

	p = yaml("version: 1\nallow:\n  - host: x.example.com\n    ports: anything\n", &e);
	ok(!p && has_err(&e, "ports: any"), "a misspelt any is an error naming the syntax");
	policy_errors_free(&e);
}

static void test_cli_any(void)
{
	struct policy_errors e = {0};
	struct policy *p = cli(false, "**:any", &e);
	ok(p != NULL, "--deny '**:any' is accepted");
	struct policy_verdict v = policy_decide_name(p, "a.b.example", 8080);
	ok(v.decision == DECISION_DENY && v.rule.file &&
		   !strcmp(v.rule.file, "--deny"),
	   "deny **:any names the rule on port 8080");
	v = policy_decide_name(p, "a.b.example", 0);
	ok(v.rule.file != NULL, "and for DNS (any port)");
	policy_free(p);

	p = cli(false, "::/0:any", &e);
	struct ip_addr a;
	ip_parse_strict("2001:db8::1", 11, &a);
	v = policy_decide_addr(p, &a, 2222);
	ok(p && v.rule.file, "--deny '::/0:any' covers a v6 address on 2222");
	policy_free(p);
	p = cli(false, "[2001:db8::1]:any", &e);
	v = policy_decide_addr(p, &a, 9);
	ok(p && v.rule.file, "--deny '[v6]:any' covers port 9");
	policy_free(p);

	p = cli(true, "git.example.com:any", &e);
	v = policy_decide_name(p, "git.example.com", 22);
	is_int(v.decision, DECISION_ALLOW, "--allow host:any allows port 22");
	policy_free(p);
	policy_errors_free(&e);

	p = cli(true, "**:any", &e);
	ok(!p && e.count > 0, "--allow '**:any' is refused as over-broad");
	policy_errors_free(&e);
	p = cli(true, "*.com:any", &e);
	ok(!p && e.count > 0, "--allow '*.com:any' is refused (public suffix)");
	policy_errors_free(&e);
	p = cli(true, "0.0.0.0/0:any", &e);
	ok(!p && e.count > 0, "--allow 0.0.0.0/0:any is refused");
	policy_errors_free(&e);
	p = cli(false, "x.example:any,22", &e);
	ok(!p && has_err(&e, "'any'"), "any mixed with numbers is refused");
	policy_errors_free(&e);
}

static void test_specificity(void)
{
	/* Any-port does not change specificity: an exact allow on 443 still
	 * beats a wildcard any-port deny, and loses to an exact any-port
	 * deny (deny wins ties). */
	struct policy_errors e = {0};
	struct policy_builder *b = policy_builder_new(NULL);
	policy_builder_add_rule(b, false, "**.example.com:any", NULL, &e);
	policy_builder_add_rule(b, true, "api.example.com:443", NULL, &e);
	policy_builder_add_rule(b, true, "x.example.com:443", NULL, &e);
	policy_builder_add_rule(b, false, "x.example.com:any", NULL, &e);
	struct policy *p = policy_builder_finish(b, &e);
	is_int(policy_decide_name(p, "api.example.com", 443).decision,
	       DECISION_ALLOW, "exact allow beats a ** any-port deny");
	struct policy_verdict v = policy_decide_name(p, "api.example.com", 22);
	ok(v.decision == DECISION_DENY && v.rule.pattern &&
		   !strcmp(v.rule.pattern, "**.example.com"),
	   "other ports fall to the ** any-port deny");
	is_int(policy_decide_name(p, "x.example.com", 443).decision,
	       DECISION_DENY, "deny any-port wins a tie with allow 443");
	policy_free(p);
	policy_errors_free(&e);
}

static void test_diff_any(void)
{
	/* A repository file that opens a host on every port must be reported,
	 * including on a port no rule lists. */
	const char *repo = "version: 1\nallow:\n  - host: db.example.com\n    ports: any\n";
	struct policy_diff d = {0};
	struct policy_errors e = {0};
	int r = policy_diff_compute(NULL, 0, NULL, ".sandbox/policy.yaml", repo,
				    strlen(repo), &d, &e);
	is_int(r, 0, "diff computes");
	ok(d.count == 1 && d.items[0].kind == WIDEN_ALLOW && d.items[0].nports >= 1,
	   "an any-port allow is a widening");
	policy_diff_free(&d);
	policy_errors_free(&e);
}

int main(void)
{
	test_yaml_any();
	test_cli_any();
	test_specificity();
	test_diff_any();
	return done_testing();
}
