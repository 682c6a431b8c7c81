/* The policy loader: exact error messages with line:col, all errors of a
 * file reported, refusal of over-broad and non-name patterns, name
 * normalisation (IDN), extends and its cycles, and the shipped presets. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/util.h"
#include "../../policy/policy.h"
#include "policy_files.h"
#include "tap.h"

static struct policy_errors errs;

/* Load yaml; returns the policy (or NULL) and leaves errors in errs. */
static struct policy *load_dir(const char *yaml, const char *dir)
{
	policy_errors_free(&errs);
	struct policy_builder *b = policy_builder_new(dir);
	policy_builder_add_buffer(b, "t.yaml", yaml, strlen(yaml), &errs);
	return policy_builder_finish(b, &errs);
}

static struct policy *load(const char *yaml)
{
	return load_dir(yaml, NULL);
}

static const char *err(size_t i)
{
	return i < errs.count ? errs.msgs[i] : "(no such error)";
}

/* One bad document, one expected first error. */
static void bad(const char *yaml, const char *want, const char *what)
{
	struct policy *p = load(yaml);
	ok(p == NULL, "%s: refused", what);
	is_str(err(0), want, "%s: message", what);
	policy_free(p);
}

static void normalize(void)
{
	char out[256];
	static const struct {
		const char *in, *want;
	} good[] = {
		{"Example.COM.", "example.com"},
		{"bücher.de", "xn--bcher-kva.de"},
		{"BÜCHER.de", "xn--bcher-kva.de"},
		{"münchen.example", "xn--mnchen-3ya.example"},
		{"例え.jp", "xn--r8jz45g.jp"},
		{"пример.рф", "xn--e1afmkfd.xn--p1ai"},
		{"xn--bcher-kva.de", "xn--bcher-kva.de"},
		{"_dmarc.example.com", "_dmarc.example.com"},
		{"localhost", "localhost"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		int r = policy_normalize_name(good[i].in, strlen(good[i].in), out, sizeof(out));
		ok(r > 0, "normalise '%s'", good[i].in);
		is_str(r > 0 ? out : "", good[i].want, "  to '%s'", good[i].want);
	}
	static const char *const badnames[] = {
		"", ".", "a..b", ".a.b", "a b.com", "a\xff.com", "a\xc3.com",
		"exa/mple.com", "ex*ample.com", "a.com..",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
	};
	for (size_t i = 0; i < ARRAY_SIZE(badnames); i++)
		is_int(policy_normalize_name(badnames[i], strlen(badnames[i]), out, sizeof(out)),
		       -EINVAL, "refuse name '%s'", badnames[i]);
	char l63[64];
	memset(l63, 'a', 63);
	l63[63] = '\0';
	ok(policy_normalize_name(l63, 63, out, sizeof(out)) == 63, "63-byte label is fine");
	char longname[300] = "";
	size_t n = 0;
	for (int i = 0; i < 4; i++)
		fmt_append(longname, sizeof(longname), &n, "%s.", l63);
	/* 4*64 = 256 bytes with dots: over 253. */
	is_int(policy_normalize_name(longname, n, out, sizeof(out)), -EINVAL, "name over 253 bytes");
	ok(policy_normalize_name("Ab.c", 2, out, sizeof(out)) == 2 && !strcmp(out, "ab"),
	   "length is honoured, not the NUL");

	/* A policy written with a Unicode name matches the punycode query. */
	struct policy *p = load("version: 1\nallow: [\"Bücher.DE.\"]\n");
	ok(p && policy_decide_name(p, "xn--bcher-kva.de", 443).decision == DECISION_ALLOW,
	   "IDN rule matches the punycode name");
	policy_free(p);
}

static void errors(void)
{
	bad("version: 1\nallow:\n  - host: a.example\n    hots: 1\n",
	    "t.yaml:4:5: unknown key 'hots' in a rule (expected host, cidr, ports, protocols, mode or inspect)",
	    "unknown rule key");
	bad("version: 1\nalow: [a.example]\n",
	    "t.yaml:2:1: unknown key 'alow' (expected version, mode, extends, allow, deny, host_ports, secrets or inspect)",
	    "unknown top-level key");
	bad("version: 2\n", "t.yaml:1:10: unsupported version (this program reads version: 1)",
	    "version 2");
	bad("allow: [a.example]\n", "t.yaml:1:1: missing 'version: 1'", "no version");
	bad("", "t.yaml:1:1: empty policy; expected a mapping starting with 'version: 1'", "empty file");
	bad("version: 1\nmode: learn\n", "t.yaml:2:7: mode must be 'enforce' or 'report', not 'learn'",
	    "bad mode");
	bad("version: 1\nallow:\n  - host: a.example\n    ports: [0]\n",
	    "t.yaml:4:13: port must be a number 1-65535, not '0'", "port 0");
	bad("version: 1\nallow:\n  - host: a.example\n    ports: [65536]\n",
	    "t.yaml:4:13: port must be a number 1-65535, not '65536'", "port too big");
	bad("version: 1\nallow:\n  - host: a.example\n    ports: []\n",
	    "t.yaml:4:12: empty ports list would match nothing; leave ports: out for the default [80, 443]",
	    "empty ports");
	bad("version: 1\nallow:\n  - host: a.example\n    ports: 443\n",
	    "t.yaml:4:12: expected a list of ports, e.g. ports: [443], or ports: any", "ports scalar");
	bad("version: 1\nallow:\n  - ports: [443]\n", "t.yaml:3:5: a rule needs host: or cidr:",
	    "no host");
	bad("version: 1\nallow:\n  - host: a.example\n    cidr: 10.0.0.0/8\n",
	    "t.yaml:3:5: a rule has host: or cidr:, not both", "host and cidr");
	bad("version: 1\nallow: a.example\n", "t.yaml:2:8: expected a list after allow:",
	    "allow not a list");
	bad("version: 1\nversion: 1\n", "t.yaml:2:1: duplicate key 'version'", "duplicate key");
	bad("version: 1\nallow: [a.example\n",
	    "t.yaml:3:1: YAML syntax: did not find expected ',' or ']' while parsing a flow sequence",
	    "syntax error");
	bad("version: 1\n---\nversion: 1\n", "t.yaml:2:1: only one YAML document per policy file",
	    "two documents");
	bad("version: 1\nallow: &x [a.example]\ndeny: *x\n",
	    "t.yaml:3:7: YAML aliases are not supported; expected a list after deny:", "alias");
	bad("- a.example\n",
	    "t.yaml:1:1: expected a mapping with version:, mode:, extends:, allow: and deny:",
	    "top level is a list");
	bad("version: 1\ndeny:\n  - cidr: 10.1.2.3/8\n",
	    "t.yaml:3:5: deny cidr '10.1.2.3/8': host bits are set after the prefix length (write the network address, e.g. 10.0.0.0/8)",
	    "host bits");
	bad("version: 1\nallow:\n  - cidr: 10.0.0.0/33\n",
	    "t.yaml:3:5: allow cidr '10.0.0.0/33': prefix length above 32 for an IPv4 address",
	    "prefix too long");
	bad("version: 1\nallow:\n  - cidr: 0.0.0.0/0\n",
	    "t.yaml:3:5: allow cidr '0.0.0.0/0': over-broad: refusing to allow every address",
	    "allow everything");
	bad("version: 1\nallow:\n  - cidr: 10.0.0.010/32\n",
	    "t.yaml:3:5: allow cidr '10.0.0.010/32': not an IP address (cidr: takes a dotted quad or an IPv6 address, optionally with /prefix-length)",
	    "leading zeros are not an address");

	/* Every error of a file is reported, in order. */
	struct policy *p = load("version: 1\n"
				"mode: enforce\n"
				"allow:\n"
				"  - \"*\"\n"
				"  - good.example\n"
				"  - 127.0.0.1\n"
				"  - 127.1\n"
				"  - host: x.example\n"
				"    bogus: true\n"
				"deny:\n"
				"  - \"**.com\"\n"
				"  - 2130706433\n"
				"  - 0x7f.0.0.1\n");
	ok(p == NULL, "a file with several errors is refused");
	is_int(errs.count, 6, "all six errors reported");
	is_str(err(0), "t.yaml:4:5: allow pattern '*': refusing to allow every host name; list the names needed",
	       "1st: bare *");
	is_str(err(1), "t.yaml:6:5: allow pattern '127.0.0.1': an IP address is not a host name; write it as cidr: (e.g. cidr: 192.0.2.1/32)",
	       "2nd: IP literal");
	is_str(err(2), "t.yaml:7:5: allow pattern '127.1': neither a host name nor an IP address (numeric forms like 127.1 or 2130706433 are refused; use a dotted quad in cidr:)",
	       "3rd: 127.1");
	is_str(err(3), "t.yaml:9:5: unknown key 'bogus' in a rule (expected host, cidr, ports, protocols, mode or inspect)",
	       "4th: unknown key");
	ok(strstr(err(4), "t.yaml:12:5: deny pattern '2130706433': neither") == err(4), "5th: %s", err(4));
	ok(strstr(err(5), "t.yaml:13:5: deny pattern '0x7f.0.0.1': neither") == err(5), "6th: %s", err(5));
	policy_free(p);
}

static void overbroad(void)
{
	static const char *const refused[] = {
		"*", "**", "*.com", "**.com", "*.co.uk", "**.co.uk", "**.github.io",
		"*.com.au", "**.uk", "foo*.example.com", "a.*.example.com", "*example.com",
		"***.example.com",
	};
	char yaml[256];
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		fmt_buf(yaml, sizeof(yaml), "version: 1\nallow: [\"%s\"]\n", refused[i]);
		struct policy *p = load(yaml);
		ok(p == NULL && errs.count == 1, "allow '%s' refused (%s)", refused[i], err(0));
		policy_free(p);
	}
	is_str((load("version: 1\nallow: [\"*.co.uk\"]\n"), err(0)),
	       "t.yaml:2:9: allow pattern '*.co.uk': over-broad: the wildcard's suffix is a public suffix (anyone can register names under it)",
	       "public suffix message");
	static const char *const accepted[] = {
		"**.example.co.uk", "*.example.com", "co.uk", "**.api.github.com",
		"**.user.github.io",
	};
	for (size_t i = 0; i < ARRAY_SIZE(accepted); i++) {
		fmt_buf(yaml, sizeof(yaml), "version: 1\nallow: [\"%s\"]\n", accepted[i]);
		struct policy *p = load(yaml);
		ok(p != NULL, "allow '%s' accepted (%s)", accepted[i], err(0));
		policy_free(p);
	}
	struct policy *p = load("version: 1\ndeny: [\"**.com\", \"*.co.uk\", \"**.zip\"]\n");
	ok(p != NULL, "broad deny patterns are fine");
	ok(p && policy_decide_name(p, "a.b.zip", 443).decision == DECISION_DENY, "deny **.zip");
	policy_free(p);
}

/* A preset file, in the presets folder of pf_setup(). */
static void put(const char *name, const char *text)
{
	char rel[128], path[256];
	fmt_buf(rel, sizeof(rel), "presets/%s", name);
	pf_write(path, sizeof(path), rel, text);
}

static void extends(void)
{
	pf_setup("test_policy");
	put("base.yaml", "version: 1\nallow: [base.example]\n");
	put("mid.yaml", "version: 1\nextends: [base]\nallow: [mid.example]\ndeny: [base.example]\n");
	put("loop1.yaml", "version: 1\nextends: [loop2]\n");
	put("loop2.yaml", "version: 1\nextends: loop1\n");
	put("broken.yaml", "version: 1\nallow: [\"*\"]\n");

	struct policy *p = load_dir("version: 1\nextends: [mid, base]\nallow: [top.example]\n", pf_presets());
	ok(p != NULL, "extends chain loads (%s)", err(0));
	ok(p && policy_decide_name(p, "mid.example", 443).decision == DECISION_ALLOW, "preset rule merged");
	ok(p && policy_decide_name(p, "top.example", 443).decision == DECISION_ALLOW, "own rule");
	struct policy_verdict v = policy_decide_name(p, "base.example", 443);
	ok(v.decision == DECISION_DENY, "deny in a preset beats an allow in another");
	char want[256], buf[256];
	fmt_buf(want, sizeof(want), "%s/mid.yaml:4", pf_presets());
	is_str(policy_rule_str(&v.rule, buf, sizeof(buf)), want, "rule names the preset file");
	is_str(policy_primary_file(p), "t.yaml", "primary file is the non-preset one");
	struct policy_stats st;
	policy_get_stats(p, &st);
	is_int(st.files, 3, "base loaded once despite two extends");
	policy_free(p);

	p = load_dir("version: 1\nextends: [loop1]\n", pf_presets());
	ok(p == NULL, "extends cycle refused");
	fmt_buf(want, sizeof(want), "%s/loop2.yaml:2:10: extends cycle: loop1 <- loop2 <- loop1", pf_presets());
	is_str(err(0), want, "cycle message names the chain");

	p = load_dir("version: 1\nextends: [nosuch, ../etc/passwd]\n", pf_presets());
	ok(p == NULL, "unknown preset refused");
	fmt_buf(want, sizeof(want), "t.yaml:2:11: extends: unknown preset 'nosuch' (%s/nosuch.yaml: No such file or directory)", pf_presets());
	is_str(err(0), want, "unknown preset message");
	is_str(err(1), "t.yaml:2:19: bad preset name '../etc/passwd' (lower-case letters, digits, '-' and '_')",
	       "no paths in preset names");

	p = load_dir("version: 1\nextends: [broken]\n", pf_presets());
	fmt_buf(want, sizeof(want), "%s/broken.yaml:2:9: allow pattern '*'", pf_presets());
	ok(p == NULL && strncmp(err(0), want, strlen(want)) == 0, "errors inside a preset name the preset (%s)", err(0));

	p = load("version: 1\nextends: [base]\n");
	is_str(err(0), "t.yaml:2:11: extends: 'base': no preset directory configured", "no preset dir");

	/* Files merge in order; an error in one does not hide the others'. */
	put("a.yaml", "version: 1\nallow: [a.example]\n");
	put("b.yaml", "version: 1\nallow: [\"**\"]\n");
	put("c.yaml", "version: 1\ndeny: [a.example]\nbad: 1\n");
	char pa[128], pb[128], pc[128];
	fmt_buf(pa, sizeof(pa), "%s/a.yaml", pf_presets());
	fmt_buf(pb, sizeof(pb), "%s/b.yaml", pf_presets());
	fmt_buf(pc, sizeof(pc), "%s/c.yaml", pf_presets());
	const char *const two[] = {pa, pc};
	const char *const three[] = {pa, pb, pc};
	policy_errors_free(&errs);
	p = policy_load_files(three, 3, NULL, &errs);
	ok(p == NULL && errs.count == 2, "errors from two files reported (%zu)", errs.count);
	policy_errors_free(&errs);
	put("c.yaml", "version: 1\ndeny: [a.example]\n");
	p = policy_load_files(two, 2, NULL, &errs);
	ok(p && policy_decide_name(p, "a.example", 443).decision == DECISION_DENY, "merged deny wins");
	is_str(policy_primary_file(p), pc, "primary is the last file");
	policy_free(p);
	policy_errors_free(&errs);
	const char *const missing[] = {"/nonexistent/policy.yaml"};
	p = policy_load_files(missing, 1, NULL, &errs);
	is_str(err(0), "/nonexistent/policy.yaml: cannot read: No such file or directory", "missing file");
	pf_cleanup();
}

/* Every shipped preset and example loads without error. */
static void presets(void)
{
	const char *dir = "policies";
	DIR *d = opendir(dir);
	ok(d != NULL, "policies/ exists (run from the source tree)");
	if (!d)
		return;
	struct dirent *e;
	size_t n = 0;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".yaml"))
			continue;
		char path[512];
		fmt_buf(path, sizeof(path), "%s/%s", dir, e->d_name);
		policy_errors_free(&errs);
		const char *const one[] = {path};
		struct policy *p = policy_load_files(one, 1, dir, &errs);
		ok(p != NULL, "preset %s loads (%s)", e->d_name, err(0));
		n++;
		policy_free(p);
	}
	closedir(d);
	ok(n >= 9, "at least nine presets (%zu)", n);
	policy_errors_free(&errs);
	const char *const ex[] = {"policies/examples/project.yaml"};
	struct policy *p = policy_load_files(ex, 1, dir, &errs);
	ok(p != NULL, "example policy loads (%s)", err(0));
	policy_free(p);
}

/* Issue 8: the protocols: key. */
static uint8_t protos_of(const struct policy *p, const char *name,
			 uint16_t port)
{
	struct policy_verdict v = policy_decide_name(p, name, port);
	return v.decision == DECISION_ALLOW ? v.rule.protocols : 0;
}

static void protocols(void)
{
	struct policy *p = load("version: 1\nallow:\n"
				"  - a.example\n"
				"  - host: b.example\n"
				"    ports: [22]\n"
				"    protocols: [tcp]\n"
				"  - host: b.example\n"
				"    protocols: [tls]\n"
				"  - cidr: 192.0.2.0/24\n"
				"    protocols: [http, tls]\n");
	ok(p != NULL, "protocols: loads (%s)", err(0));
	is_int(protos_of(p, "a.example", 443), POLICY_PROTO_DEFAULT,
	       "default protocols are tls, http");
	is_int(protos_of(p, "b.example", 22), POLICY_PROTO_TCP,
	       "tcp on port 22");
	is_int(protos_of(p, "b.example", 443), POLICY_PROTO_TLS,
	       "tls only on 443");
	struct ip_addr a;
	ok(ip_parse_strict("192.0.2.9", 9, &a), "address parses");
	struct policy_verdict v = policy_decide_addr(p, &a, 443);
	is_int(v.rule.protocols, POLICY_PROTO_DEFAULT, "cidr rule protocols");
	policy_free(p);

	/* Equally specific allow rules are a union. */
	p = load("version: 1\nallow:\n"
		 "  - c.example\n"
		 "  - host: c.example\n"
		 "    protocols: [tcp]\n");
	is_int(protos_of(p, "c.example", 443), POLICY_PROTO_ALL,
	       "two rules for one name and port: union");
	policy_free(p);

	char buf[40];
	is_str(policy_protocols_str(POLICY_PROTO_ALL, buf, sizeof(buf)),
	       "tls, http, tcp", "protocols_str");

	bad("version: 1\nallow:\n  - host: a.example\n    protocols: [tls, ssh]\n",
	    "t.yaml:4:22: unknown protocol 'ssh' (expected tls, http or tcp)",
	    "unknown protocol");
	bad("version: 1\nallow:\n  - host: a.example\n    protocols: [TLS]\n",
	    "t.yaml:4:17: unknown protocol 'TLS' (expected tls, http or tcp)",
	    "protocol names are lower case");
	bad("version: 1\nallow:\n  - host: a.example\n    protocols: []\n",
	    "t.yaml:4:16: empty protocols list would match nothing; leave "
	    "protocols: out for the default [tls, http]",
	    "empty protocols");
	bad("version: 1\nallow:\n  - host: a.example\n    protocols: tcp\n",
	    "t.yaml:4:16: expected a list of protocols, e.g. protocols: [tcp] "
	    "(tls, http or tcp)",
	    "a scalar is not a list");
	bad("version: 1\nallow:\n  - host: a.example\n    protocols: [tcp, tcp]\n",
	    "t.yaml:4:22: protocol 'tcp' listed twice", "duplicate protocol");
	bad("version: 1\ndeny:\n  - host: a.example\n    protocols: [tcp]\n",
	    "t.yaml:4:5: protocols: only applies to allow rules (a deny rule "
	    "refuses every protocol)",
	    "protocols on a deny rule");

	/* Command-line rules: HOST:PORTS:PROTOS. */
	struct policy_builder *b = policy_builder_new(NULL);
	policy_errors_free(&errs);
	ok(policy_builder_add_rule(b, true, "git.example:22:tcp", NULL, &errs) == 0,
	   "--allow git.example:22:tcp");
	ok(policy_builder_add_rule(b, true, "10.0.0.0/8:22:tcp,tls", NULL, &errs) == 0,
	   "--allow 10.0.0.0/8:22:tcp,tls");
	ok(policy_builder_add_rule(b, true, "[::1]:443:http", NULL, &errs) == 0,
	   "--allow [::1]:443:http");
	ok(policy_builder_add_rule(b, false, "d.example:22:tcp", NULL, &errs) < 0,
	   "--deny with protocols is refused");
	ok(policy_builder_add_rule(b, true, "e.example:22:ssh", NULL, &errs) < 0,
	   "--allow with an unknown protocol is refused");
	p = policy_builder_finish(b, &errs);
	ok(p == NULL, "the errors fail the policy");
	policy_free(p);
	b = policy_builder_new(NULL);
	policy_builder_add_rule(b, true, "git.example:22:tcp", NULL, &errs);
	policy_builder_add_rule(b, true, "10.0.0.0/8:22:tcp,tls", NULL, &errs);
	p = policy_builder_finish(b, &errs);
	is_int(protos_of(p, "git.example", 22), POLICY_PROTO_TCP,
	       "CLI rule protocols");
	ok(ip_parse_strict("10.1.2.3", 8, &a), "address parses");
	v = policy_decide_addr(p, &a, 22);
	is_int(v.rule.protocols, POLICY_PROTO_TCP | POLICY_PROTO_TLS,
	       "CLI cidr rule protocols");
	policy_free(p);
}

int main(void)
{
	normalize();
	errors();
	overbroad();
	extends();
	presets();
	protocols();
	policy_errors_free(&errs);
	return done_testing();
}
