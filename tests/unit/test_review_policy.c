/* Regression tests from the adversarial review of the policy engine: each
 * case is an attack that used to widen (or silently fail to narrow) what a
 * policy lets through. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "../../common/util.h"
#include "../../policy/policy.h"
#include "tap.h"

static struct policy *load(const char *yaml, size_t *nerr)
{
	struct policy_errors errs = {0};
	struct policy_builder *b = policy_builder_new(NULL);
	policy_builder_add_buffer(b, "t.yaml", yaml, strlen(yaml), &errs);
	struct policy *p = policy_builder_finish(b, &errs);
	for (size_t i = 0; i < errs.count; i++)
		tap_diag("load error: %s", errs.msgs[i]);
	if (nerr)
		*nerr = errs.count;
	policy_errors_free(&errs);
	return p;
}

static const char *addr_dec(const struct policy *p, const char *txt,
			    uint16_t port)
{
	struct ip_addr a;
	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, txt, a.b) == 1) {
		a.family = AF_INET;
	} else {
		inet_pton(AF_INET6, txt, a.b);
		a.family = AF_INET6;
	}
	return policy_decision_str(policy_decide_addr(p, &a, port).decision);
}

/* Addresses are decided with ::ffff:a.b.c.d unwrapped to IPv4, so a rule
 * written in the mapped form used to be keyed as IPv6 and never matched:
 * a deny carving a hole out of an allowed range silently did nothing. */
static void mapped_cidr_rules(void)
{
	struct policy *p = load("version: 1\n"
				"allow:\n"
				"  - cidr: 10.0.0.0/8\n"
				"deny:\n"
				"  - cidr: ::ffff:10.1.0.0/112\n",
				NULL);
	ok(p != NULL, "mapped cidr policy loads");
	is_str(addr_dec(p, "10.1.0.5", 443), "deny",
	       "deny ::ffff:10.1.0.0/112 denies 10.1.0.5");
	is_str(addr_dec(p, "::ffff:10.1.0.5", 443), "deny",
	       "and its mapped spelling");
	is_str(addr_dec(p, "10.2.0.5", 443), "allow",
	       "the rest of 10/8 stays allowed");
	policy_free(p);

	p = load("version: 1\nallow:\n  - cidr: ::ffff:127.0.0.1\n", NULL);
	ok(p != NULL, "mapped single address loads");
	is_str(addr_dec(p, "127.0.0.1", 80), "allow",
	       "allow ::ffff:127.0.0.1 means 127.0.0.1");
	policy_free(p);

	size_t nerr = 0;
	p = load("version: 1\nallow:\n  - cidr: ::ffff:0.0.0.0/96\n", &nerr);
	ok(p == NULL && nerr == 1,
	   "allow ::ffff:0.0.0.0/96 (every IPv4 address) is over-broad");
	policy_free(p);
}

/* "**.amazonaws.com" is not itself a public suffix, but public suffixes
 * lie below it (s3.amazonaws.com, *.compute.amazonaws.com): the rule
 * allowed every S3 bucket anyone can create. */
static void public_suffix_below_wildcard(void)
{
	static const char *const refused[] = {
		"**.amazonaws.com", "**.kawasaki.jp",
		"**.AmazonAWS.com.",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char y[256];
		size_t nerr = 0;
		fmt_buf(y, sizeof(y), "version: 1\nallow:\n  - \"%s\"\n",
			 refused[i]);
		struct policy *p = load(y, &nerr);
		ok(p == NULL && nerr == 1, "allow %s is refused", refused[i]);
		policy_free(p);
	}
	static const char *const fine[] = {
		"**.githubcopilot.com", "**.city.kawasaki.jp",
		"*.amazonaws.com", "**.bucket.s3.amazonaws.com",
	};
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		char y[256];
		fmt_buf(y, sizeof(y), "version: 1\nallow:\n  - \"%s\"\n",
			 fine[i]);
		struct policy *p = load(y, NULL);
		ok(p != NULL, "allow %s still loads", fine[i]);
		policy_free(p);
	}
	struct policy *p = load("version: 1\ndeny:\n  - \"**.amazonaws.com\"\n",
				NULL);
	ok(p != NULL, "deny **.amazonaws.com is fine");
	policy_free(p);
}

int main(void)
{
	mapped_cidr_rules();
	public_suffix_below_wildcard();
	return done_testing();
}
