/* The policy matcher: every pattern form, specificity, ties, ports, report
 * mode, cidr rules and command-line rules, through the public interface. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "../../common/util.h"
#include "../../policy/policy.h"
#include "tap.h"

static struct policy *load(const char *yaml)
{
	struct policy_errors errs = {0};
	struct policy_builder *b = policy_builder_new(NULL);
	policy_builder_add_buffer(b, "t.yaml", yaml, strlen(yaml), &errs);
	struct policy *p = policy_builder_finish(b, &errs);
	for (size_t i = 0; i < errs.count; i++)
		tap_diag("load error: %s", errs.msgs[i]);
	policy_errors_free(&errs);
	return p;
}

static const char *dec(const struct policy *p, const char *name, uint16_t port)
{
	return policy_decision_str(policy_decide_name(p, name, port).decision);
}

static const char *pat(const struct policy *p, const char *name, uint16_t port)
{
	struct policy_verdict v = policy_decide_name(p, name, port);
	return v.rule.pattern ? v.rule.pattern : "(none)";
}

static void patterns(void)
{
	struct policy *p = load("version: 1\n"
				"allow:\n"
				"  - example.com\n"
				"  - \"*.one.example\"\n"
				"  - \"**.many.example\"\n");
	ok(p != NULL, "simple policy loads");
	is_str(dec(p, "example.com", 443), "allow", "exact name");
	is_str(dec(p, "www.example.com", 443), "deny", "exact does not cover subdomains");
	is_str(dec(p, "a.one.example", 443), "allow", "*. matches one more label");
	is_str(dec(p, "one.example", 443), "deny", "*. does not match the apex");
	is_str(dec(p, "a.b.one.example", 443), "deny", "*. does not match two more labels");
	is_str(dec(p, "a.many.example", 443), "allow", "**. matches one label");
	is_str(dec(p, "a.b.c.many.example", 443), "allow", "**. matches many labels");
	is_str(dec(p, "many.example", 443), "deny", "**. does not match the apex");
	is_str(dec(p, "xmany.example", 443), "deny", "never a substring match");
	is_str(dec(p, "example.com.evil", 443), "deny", "suffix must be whole labels");
	is_str(dec(p, "nothing.test", 443), "deny", "no rule: deny");
	struct policy_verdict v = policy_decide_name(p, "nothing.test", 443);
	ok(v.rule.file == NULL, "default decision names no rule");
	char buf[64];
	is_str(policy_rule_str(&v.rule, buf, sizeof(buf)), "default", "rule string of the default");
	v = policy_decide_name(p, "x.one.example", 80);
	is_str(policy_rule_str(&v.rule, buf, sizeof(buf)), "t.yaml:4", "verdict names file:line");
	is_int(v.rule.col, 5, "and the column");
	is_str(v.rule.pattern, "*.one.example", "and the pattern");
	policy_free(p);
}

static void specificity(void)
{
	struct policy *p = load("version: 1\n"
				"allow:\n"
				"  - jira.corp.example\n"
				"  - \"*.x.example\"\n"
				"  - \"**.api.big.example\"\n"
				"deny:\n"
				"  - \"**.corp.example\"\n"
				"  - \"**.x.example\"\n"
				"  - \"**.big.example\"\n");
	ok(p != NULL, "specificity policy loads");
	is_str(dec(p, "jira.corp.example", 443), "allow", "exact beats **.");
	is_str(dec(p, "wiki.corp.example", 443), "deny", "** deny covers the rest");
	is_str(dec(p, "a.jira.corp.example", 443), "deny", "exact does not extend to children");
	is_str(dec(p, "a.x.example", 443), "allow", "*. beats **. for the same suffix");
	is_str(dec(p, "b.a.x.example", 443), "deny", "**. applies beyond one label");
	is_str(dec(p, "v1.api.big.example", 443), "allow", "longer fixed suffix is more specific");
	is_str(dec(p, "api.big.example", 443), "deny", "shorter suffix for the apex of the longer");
	is_str(pat(p, "api.big.example", 443), "**.big.example", "and it names that rule");
	policy_free(p);

	p = load("version: 1\nallow: [dup.example, \"*.t.example\"]\n"
		 "deny: [dup.example, \"*.t.example\"]\n");
	is_str(dec(p, "dup.example", 443), "deny", "equal specificity: deny wins");
	is_str(dec(p, "a.t.example", 443), "deny", "equal wildcard: deny wins");
	ok(!policy_decide_name(p, "dup.example", 443).rule.allow, "and the deny rule is named");
	policy_free(p);

	p = load("version: 1\ndeny: [dup.example]\nallow: [dup.example]\n");
	is_str(dec(p, "dup.example", 443), "deny", "deny wins whatever the order");
	policy_free(p);
}

static void deny_everything(void)
{
	struct policy *p = load("version: 1\n"
				"allow: [ok.example, \"**.fine.example\"]\n"
				"deny:\n  - \"**\"\n  - host: \"*\"\n    ports: [443]\n");
	ok(p != NULL, "deny ** and * load");
	is_str(dec(p, "ok.example", 443), "allow", "exact allow beats deny **");
	is_str(dec(p, "a.b.fine.example", 443), "allow", "**.suffix beats bare **");
	is_str(dec(p, "other.example", 443), "deny", "deny ** names a rule");
	is_str(pat(p, "other.example", 443), "**", "the ** rule");
	is_str(pat(p, "localhost", 443), "*", "* matches single-label names");
	is_str(pat(p, "localhost", 80), "**", "and ** the rest");
	policy_free(p);
}

static void ports(void)
{
	struct policy *p = load("version: 1\n"
				"allow:\n"
				"  - host: git.example\n"
				"    ports: [22]\n"
				"  - web.example\n"
				"  - \"**.svc.example\"\n"
				"deny:\n"
				"  - host: mail.svc.example\n"
				"    ports: [25]\n");
	ok(p != NULL, "ports policy loads");
	is_str(dec(p, "git.example", 22), "allow", "listed port");
	is_str(dec(p, "git.example", 443), "deny", "explicit ports replace the default");
	is_str(dec(p, "git.example", 0), "allow", "port 0 (DNS) matches whatever the ports");
	is_str(dec(p, "web.example", 80), "allow", "default port 80");
	is_str(dec(p, "web.example", 443), "allow", "default port 443");
	is_str(dec(p, "web.example", 8080), "deny", "not other ports");
	is_str(dec(p, "mail.svc.example", 25), "deny", "deny on its port");
	is_str(dec(p, "mail.svc.example", 443), "allow",
	       "a rule whose ports do not match does not match: falls to **.");
	is_str(dec(p, "mail.svc.example", 0), "deny", "for DNS the more specific deny exists");
	policy_free(p);
}

static void report(void)
{
	struct policy *p = load("version: 1\nallow: [a.example]\n"
				"deny:\n  - host: b.example\n    mode: report\n  - c.example\n");
	is_int(policy_mode(p), POLICY_ENFORCE, "enforce by default");
	is_str(dec(p, "b.example", 443), "would-deny", "report-mode deny rule");
	is_str(dec(p, "c.example", 443), "deny", "enforced deny rule");
	is_str(dec(p, "z.example", 443), "deny", "default deny when enforcing");
	policy_free(p);
	p = load("version: 1\nmode: report\nallow: [a.example]\n"
		 "deny:\n  - b.example\n  - host: c.example\n    mode: enforce\n");
	is_int(policy_mode(p), POLICY_REPORT, "file mode report");
	is_str(dec(p, "z.example", 443), "would-deny", "default becomes would-deny");
	is_str(dec(p, "b.example", 443), "would-deny", "deny rules inherit the file mode");
	is_str(dec(p, "c.example", 443), "deny", "a rule can insist on enforce");
	is_str(dec(p, "a.example", 443), "allow", "allow is allow");
	policy_free(p);
}

static struct ip_addr addr(const char *s)
{
	struct ip_addr a = {0};
	if (strchr(s, ':')) {
		a.family = AF_INET6;
		inet_pton(AF_INET6, s, a.b);
	} else {
		a.family = AF_INET;
		inet_pton(AF_INET, s, a.b);
	}
	return a;
}

static const char *adec(const struct policy *p, const char *s, uint16_t port)
{
	struct ip_addr a = addr(s);
	return policy_decision_str(policy_decide_addr(p, &a, port).decision);
}

static void cidr(void)
{
	struct policy *p = load("version: 1\n"
				"allow:\n"
				"  - cidr: 10.0.0.0/8\n"
				"  - cidr: 192.0.2.0/24\n"
				"    ports: [22]\n"
				"  - cidr: 2001:db8::/32\n"
				"  - cidr: 127.0.0.1\n"
				"  - cidr: 198.51.100.0/24\n"
				"  - ten.example\n"
				"deny:\n"
				"  - cidr: 10.1.0.0/16\n"
				"  - cidr: 198.51.100.0/24\n"
				"  - cidr: 2001:db8:bad::/48\n");
	ok(p != NULL, "cidr policy loads");
	is_str(adec(p, "10.2.3.4", 443), "allow", "inside the /8");
	is_str(adec(p, "10.1.3.4", 443), "deny", "more specific deny /16");
	is_str(adec(p, "11.0.0.1", 443), "deny", "outside");
	is_str(adec(p, "192.0.2.9", 22), "allow", "listed port");
	is_str(adec(p, "192.0.2.9", 443), "deny", "unlisted port");
	is_str(adec(p, "127.0.0.1", 80), "allow", "bare address is a /32");
	is_str(adec(p, "127.0.0.2", 80), "deny", "and only that address");
	is_str(adec(p, "198.51.100.7", 443), "deny", "same prefix allow and deny: deny wins");
	is_str(adec(p, "2001:db8::1", 443), "allow", "IPv6 prefix");
	is_str(adec(p, "2001:db8:bad::1", 443), "deny", "IPv6 more specific deny");
	is_str(adec(p, "::ffff:10.2.3.4", 443), "allow", "v4-mapped IPv6 is the IPv4 host");
	is_str(adec(p, "::ffff:10.1.3.4", 443), "deny", "including for deny rules");
	is_str(dec(p, "10.2.3.4", 443), "deny", "cidr rules never match names");
	struct ip_addr a = addr("10.2.3.4");
	struct policy_verdict v = policy_decide_addr(p, &a, 443);
	is_str(v.rule.pattern, "10.0.0.0/8", "cidr verdict names its rule");
	is_int(v.rule.line, 3, "and its line");
	struct policy_stats st;
	policy_get_stats(p, &st);
	ok(st.allow_rules == 1 && st.deny_rules == 0 && st.cidr_rules == 8 && st.files == 1,
	   "stats count host and cidr rules (%zu %zu %zu %zu)", st.allow_rules,
	   st.deny_rules, st.cidr_rules, st.files);
	policy_free(p);
}

static void cli_rules(void)
{
	struct policy_errors errs = {0};
	struct policy_builder *b = policy_builder_new(NULL);
	is_int(policy_builder_add_rule(b, true, "git.example:22", "--allow", &errs), 0, "host:port");
	is_int(policy_builder_add_rule(b, true, "web.example", "--allow", &errs), 0, "host");
	is_int(policy_builder_add_rule(b, true, "10.0.0.0/8:22,80", "--allow", &errs), 0, "cidr:ports");
	is_int(policy_builder_add_rule(b, true, "[::1]:443", "--allow", &errs), 0, "[v6]:port");
	is_int(policy_builder_add_rule(b, false, "**.ads.example", "--deny", &errs), 0, "deny wildcard");
	is_int(errs.count, 0, "no errors so far");
	struct policy *p = policy_builder_finish(b, &errs);
	ok(p != NULL, "command-line rules build");
	is_str(dec(p, "git.example", 22), "allow", "git on 22");
	is_str(dec(p, "git.example", 443), "deny", "git not on 443");
	is_str(dec(p, "x.ads.example", 443), "deny", "deny rule");
	is_str(adec(p, "10.9.9.9", 80), "allow", "cidr with ports");
	is_str(adec(p, "10.9.9.9", 443), "deny", "cidr other port");
	is_str(adec(p, "::1", 443), "allow", "v6 host");
	char buf[64];
	struct policy_verdict v = policy_decide_name(p, "git.example", 22);
	is_str(policy_rule_str(&v.rule, buf, sizeof(buf)), "--allow", "origin named");
	ok(policy_primary_file(p) == NULL, "no primary file from the command line");
	policy_free(p);

	b = policy_builder_new(NULL);
	is_int(policy_builder_add_rule(b, true, "*", "--allow", &errs), -EINVAL, "bare * refused");
	is_int(policy_builder_add_rule(b, true, "x.example:0", "--allow", &errs), -EINVAL, "port 0 refused");
	is_int(policy_builder_add_rule(b, true, "2001:db8::1", "--allow", &errs), -EINVAL, "bare v6 refused");
	is_int(policy_builder_add_rule(b, true, "192.0.2.1", "--allow", &errs), -EINVAL, "bare v4 refused");
	is_int(errs.count, 4, "four errors");
	if (errs.count == 4) {
		is_str(errs.msgs[1], "--allow: 'x.example:0': bad port list '0' (numbers 1-65535 separated by commas, or 'any')",
		       "port error message");
		ok(strstr(errs.msgs[3], "cidr:") != NULL, "IP literal points to cidr: (%s)", errs.msgs[3]);
	}
	ok(policy_builder_finish(b, &errs) == NULL, "finish fails after errors");
	policy_errors_free(&errs);
}

static void big_chain(void)
{
	/* Many rules for one key and many keys: decisions stay correct. */
	struct policy_builder *b = policy_builder_new(NULL);
	struct policy_errors errs = {0};
	char spec[64];
	for (int i = 0; i < 20000; i++) {
		fmt_buf(spec, sizeof(spec), "h%d.block.example", i);
		policy_builder_add_rule(b, false, spec, "--deny", &errs);
	}
	for (int i = 0; i < 100; i++)
		policy_builder_add_rule(b, true, "same.example", "--allow", &errs);
	policy_builder_add_rule(b, false, "same.example:8443", "--deny", &errs);
	struct policy *p = policy_builder_finish(b, &errs);
	is_int(errs.count, 0, "20k rules load");
	is_str(dec(p, "h19999.block.example", 443), "deny", "last blocked name");
	is_str(pat(p, "h12345.block.example", 443), "h12345.block.example", "the right rule");
	is_str(dec(p, "same.example", 443), "allow", "long chain of allows");
	is_str(dec(p, "same.example", 8443), "deny", "deny found behind them");
	policy_free(p);
}

int main(void)
{
	patterns();
	specificity();
	deny_everything();
	ports();
	report();
	cidr();
	cli_rules();
	big_chain();
	return done_testing();
}
