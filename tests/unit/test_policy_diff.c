/* Widening analysis: which repo rules widen a base policy, which narrow
 * silently, attribution (file:line, overridden deny, via extends), report
 * mode, cidr probes, errors, and the printed forms. */
#include <stdio.h>
#include <string.h>

#include "../../common/util.h"
#include "../../policy/policy.h"
#include "policy_files.h"
#include "tap.h"

static char base_path[128];

/* Diff repo text against the one base file; returns the rc. */
static int diff(const char *repo, struct policy_diff *d,
		struct policy_errors *errs)
{
	return pf_diff(base_path, repo, d, errs);
}

static void expect_none(const char *repo, const char *what)
{
	pf_expect_none(base_path, repo, what);
}

static void narrowing(void)
{
	expect_none("version: 1\ndeny:\n  - \"**.example.com\"\n  - cidr: 10.0.0.0/8\n",
		    "deny rules only");
	expect_none("version: 1\nallow:\n  - host: api.example.com\n    ports: [443]\n",
		    "allow already in base");
	expect_none("version: 1\nallow:\n  - host: \"*.ok.example\"\n    ports: [443]\n",
		    "wildcard already covered by base **.");
	expect_none("version: 1\nallow:\n  - host: api.example.com\n    ports: [443]\n"
		    "deny:\n  - host: api.example.com\n    ports: [443]\n",
		    "allow cancelled by an equal deny");
	expect_none("version: 1\nextends: [same]\n", "preset the base already has");
	expect_none("version: 1\n", "empty file");
}

static void widening(void)
{
	const char *repo =
		"version: 1\n"                                 /* 1 */
		"allow:\n"                                     /* 2 */
		"  - host: new.example.com\n"                  /* 3 */
		"    ports: [443, 8443]\n"                     /* 4 */
		"  - host: api.example.com\n"                  /* 5 */
		"    ports: [443, 22]\n"                       /* 6 */
		"  - jira.corp.example\n"                      /* 7 */
		"  - \"**.svc.example\"\n"                     /* 8 */
		"  - cidr: 10.1.0.0/16\n"                      /* 9 */
		"    ports: [22]\n"                            /* 10 */
		"  - \"*.held.example\"\n";                    /* 11 */
	struct policy_diff d;
	struct policy_errors errs = {0};
	is_int(diff(repo, &d, &errs), 0, "widening file: computed");
	is_int(d.count, 5, "widening file: five items");

	const struct policy_widening *w = pf_find(&d, "new.example.com");
	ok(w && w->kind == WIDEN_ALLOW && w->line == 3 && w->nports == 2 &&
		   w->ports[0] == 443 && w->ports[1] == 8443 && !w->via_extends,
	   "new name: allow, line 3, ports 443 and 8443");
	w = pf_find(&d, "api.example.com");
	ok(w && w->nports == 1 && w->ports[0] == 22,
	   "base allows 443 already: only port 22 widens");
	w = pf_find(&d, "jira.corp.example");
	ok(w && w->overrides &&
		   strstr(w->overrides, "deny '**.corp.example'") &&
		   strstr(w->overrides, "base.yaml:"),
	   "more specific allow overriding a base deny names it (%s)",
	   w && w->overrides ? w->overrides : "none");
	w = pf_find(&d, "**.svc.example");
	ok(w && w->example && strstr(w->example, ".svc.example"),
	   "** rule probed under its suffix (%s)", w ? w->example : "none");
	w = pf_find(&d, "10.1.0.0/16");
	ok(w && w->cidr && w->ports[0] == 22, "cidr rule widens on port 22");
	/* base allows **.held.example and denies blocked.held.example
	 * exactly, which beats any wildcard: nothing new gets through. */
	ok(pf_find(&d, "*.held.example") == NULL,
	   "*.held.example adds nothing (base allows **., exact deny wins)");
	policy_diff_free(&d);
	policy_errors_free(&errs);

	/* A repo wildcard over a base deny of one more label: the synthetic
	 * one-label probe shows the override and names the deny. */
	is_int(diff("version: 1\nallow:\n  - \"*.deep.corp.example\"\n", &d,
		    &errs),
	       0, "override under wildcard: computed");
	w = pf_find(&d, "*.deep.corp.example");
	ok(w && w->example &&
		   !strcmp(w->example, "a.deep.corp.example:80") &&
		   w->overrides && strstr(w->overrides, "**.corp.example"),
	   "wildcard allow under a base ** deny (%s)", w ? w->example : "none");
	policy_diff_free(&d);
	policy_errors_free(&errs);
	/* Two labels: a *. rule never widens the second level. */
	is_int(diff("version: 1\nallow:\n  - \"**.two.example\"\n  - \"*.one.example\"\n",
		    &d, &errs),
	       0, "probe depth: computed");
	w = pf_find(&d, "**.two.example");
	ok(w && w->nports == 2, "** rule widens on both default ports");
	ok(pf_find(&d, "*.one.example") != NULL, "*. rule widens");
	policy_diff_free(&d);
	policy_errors_free(&errs);
	/* cidr: the first address outside what base allows is shown: base allows the
	 * first half of 10.9.0.0/16, the repo the whole /16. */
	is_int(diff("version: 1\nallow:\n  - cidr: 10.8.0.0/16\n    ports: [22]\n",
		    &d, &errs),
	       0, "cidr last address: computed");
	w = pf_find(&d, "10.8.0.0/16");
	ok(w && w->example && !strcmp(w->example, "10.8.128.0:22"),
	   "cidr: the first uncovered address shows the widening (%s)",
	   w ? w->example : "none");
	policy_diff_free(&d);
	policy_errors_free(&errs);
}

static void reports_and_extends(void)
{
	struct policy_diff d;
	struct policy_errors errs = {0};
	is_int(diff("version: 1\nmode: report\ndeny: [x.example]\n", &d, &errs),
	       0, "report mode: computed");
	ok(d.count >= 1 && d.items[0].kind == WIDEN_REPORT_MODE &&
		   d.items[0].line == 2,
	   "top-level mode: report is the first item, line 2");
	policy_diff_free(&d);

	is_int(diff("version: 1\ndeny:\n  - host: t.example\n    mode: report\n",
		    &d, &errs),
	       0, "report rule: computed");
	ok(d.count == 1 && d.items[0].kind == WIDEN_REPORT_RULE &&
		   d.items[0].line == 3,
	   "a deny rule in report mode widens (would-deny)");
	policy_diff_free(&d);

	is_int(diff("version: 1\nextends: [wide]\n", &d, &errs), 0,
	       "extends: computed");
	const struct policy_widening *w = pf_find(&d, "wide.example");
	ok(w && w->via_extends && strstr(w->file, "wide.yaml"),
	   "an extended preset's allow is reported with its file");
	policy_diff_free(&d);

	/* Print both forms into memory and check them. */
	is_int(diff("version: 1\nallow:\n  - host: api.example.com\n    ports: [8443]\n",
		    &d, &errs),
	       0, "print: computed");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	policy_diff_print(f, &d, false);
	policy_diff_print(f, &d, true);
	fclose(f);
	ok(buf && strstr(buf, "+ allow api.example.com ports 8443 (.sandbox/policy.yaml:3)\n"),
	   "human form: + allow ... (file:line)");
	ok(buf && strstr(buf, "{\"kind\":\"allow\",\"pattern\":\"api.example.com\","
			      "\"cidr\":false,\"ports\":[8443],"
			      "\"file\":\".sandbox/policy.yaml\",\"line\":3"),
	   "json form");
	free(buf);
	policy_diff_free(&d);

	/* A widening allow rule with protocols: [tcp] says so. */
	is_int(diff("version: 1\nallow:\n  - host: git.example.com\n"
		    "    ports: [22]\n    protocols: [tcp]\n",
		    &d, &errs),
	       0, "protocols: computed");
	buf = NULL;
	f = open_memstream(&buf, &len);
	policy_diff_print(f, &d, false);
	policy_diff_print(f, &d, true);
	fclose(f);
	ok(buf && strstr(buf, "+ allow git.example.com ports 22 protocols tcp "
			      "(.sandbox/policy.yaml:3)\n"),
	   "human form names the protocols");
	ok(buf && strstr(buf, ",\"protocols\":[\"tcp\"]}"),
	   "json form names the protocols");
	free(buf);
	policy_diff_free(&d);
	policy_errors_free(&errs);
}

static void errors(void)
{
	struct policy_diff d;
	struct policy_errors errs = {0};
	int r = diff("version: 1\nalow: []\n", &d, &errs);
	is_int(r, -EINVAL, "bad repo file: -EINVAL");
	ok(errs.count >= 1 && strstr(errs.msgs[0], ".sandbox/policy.yaml:2:1:"),
	   "error names the repo file, line and column (%s)",
	   errs.count ? errs.msgs[0] : "none");
	is_int(d.count, 0, "no items on error");
	policy_errors_free(&errs);

	r = diff("version: 1\nallow: [\"**\"]\n", &d, &errs);
	is_int(r, -EINVAL, "over-broad repo allow: refused, not diffed");
	policy_errors_free(&errs);

	const char *const missing[] = {"/nonexistent/base.yaml"};
	r = policy_diff_compute(missing, 1, pf_presets(), "r", "version: 1\n", 11,
				&d, &errs);
	ok(r < 0, "missing base file: error (%d)", r);
	policy_errors_free(&errs);
}

/* Issue 15's attacks: a file that denies exactly what a sampling check
 * would probe, report mode in a deny-only file, CIDR sets, hostile
 * bytes, look-alike names, and size. */
static void attacks(void)
{
	struct policy_diff d;
	struct policy_errors errs = {0};
	char *repo = malloc(1 << 16);
	size_t n = 0;
	fmt_append(repo, 1 << 16, &n,
		   "version: 1\nallow:\n"
		   "  - host: \"**.attacker.example\"\n    ports: any\n"
		   "  - cidr: 127.0.0.0/8\n    ports: any\n"
		   "deny:\n"
		   "  - zz-sandbox-probe.attacker.example\n"
		   "  - zz-sandbox-probe.zz-sandbox-probe.attacker.example\n"
		   "  - cidr: 127.0.0.0\n  - cidr: 127.255.255.255\n");
	/* and every short label the exact check might pick first */
	for (char c = 'a'; c <= 'z'; c++)
		fmt_append(repo, 1 << 16, &n, "  - %c.attacker.example\n"
			   "  - a.%c.attacker.example\n", c, c);
	is_int(diff(repo, &d, &errs), 0, "probe-denying file: computed");
	const struct policy_widening *w = pf_find(&d, "**.attacker.example");
	ok(w && w->example && strstr(w->example, ".attacker.example"),
	   "**.attacker.example widens despite denies of the probes (%s)",
	   w ? w->example : "none");
	w = pf_find(&d, "127.0.0.0/8");
	ok(w && w->example && strcmp(w->example, "127.0.0.0") &&
		   strncmp(w->example, "127.255.255.255", 15),
	   "127.0.0.0/8 widens despite denies of its ends (%s)",
	   w ? w->example : "none");
	policy_diff_free(&d);
	free(repo);

	is_int(diff("version: 1\nmode: report\ndeny:\n  - host: \"**\"\n"
		    "  - cidr: 0.0.0.0/0\n",
		    &d, &errs),
	       0, "deny-only report file: computed");
	ok(d.count >= 1 && d.items[0].kind == WIDEN_REPORT_MODE,
	   "a deny-only file in report mode widens (report mode)");
	policy_diff_free(&d);
	is_int(diff("version: 1\ndeny:\n  - host: \"**\"\n    mode: report\n"
		    "  - cidr: 0.0.0.0/0\n    mode: report\n    ports: any\n",
		    &d, &errs),
	       0, "report-mode deny rules: computed");
	ok(d.count >= 2, "report-mode denies of ** and 0.0.0.0/0 widen (%zu)",
	   d.count);
	policy_diff_free(&d);

	int r = diff("version: 1\nallow:\n  - cidr: 0.0.0.0/1\n"
		     "  - cidr: 128.0.0.0/1\n", &d, &errs);
	ok(r == -EINVAL && errs.count && strstr(errs.msgs[0], "over-broad") &&
		   strstr(errs.msgs[0], "100%"),
	   "0.0.0.0/1 + 128.0.0.0/1 refused as over-broad (%s)",
	   errs.count ? errs.msgs[0] : "no error");
	policy_errors_free(&errs);

	/* ESC ] 52 (clipboard), ESC [ 2K (erase line), C1 CSI, RLO. */
	static const char hostile[] =
		"version: 1\n\"\\e]52;c;ZWNobyBwd25lZA==\\a\\e[2Kapproved"
		"\\x9b" "31m\\u202e\": 1\n";
	r = diff(hostile, &d, &errs);
	bool clean = r == -EINVAL && errs.count > 0;
	for (size_t i = 0; i < errs.count; i++)
		clean &= !strchr(errs.msgs[i], 0x1b) &&
			 !strchr(errs.msgs[i], 0x07) &&
			 !strstr(errs.msgs[i], "\xc2\x9b") &&
			 !strstr(errs.msgs[i], "\xe2\x80\xae");
	ok(clean && strstr(errs.msgs[0], "\\x1b]52") &&
		   strstr(errs.msgs[0], "\\u{202e}"),
	   "load errors carry no terminal controls (%s)",
	   errs.count ? errs.msgs[0] : "none");
	policy_errors_free(&errs);

	/* Cyrillic look-alike of apple.com */
	is_int(diff("version: 1\nallow:\n  - \"\xd0\xb0\xd1\x80\xd1\x80\xd3\x8f"
		    "\xd0\xb5.com\"\n", &d, &errs),
	       0, "homograph: computed");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	policy_diff_print(f, &d, false);
	fclose(f);
	ok(buf && strstr(buf, "+ allow xn--") && strstr(buf, "shown as") &&
		   strstr(buf, "WARNING: mixes scripts"),
	   "punycode first, Unicode beside it, mixed-script warning: %s", buf);
	free(buf);
	policy_diff_free(&d);

	/* More rules than a repository may have: refused, not diffed. */
	size_t cap = 200u << 10;
	repo = malloc(cap);
	n = 0;
	fmt_append(repo, cap, &n, "version: 1\ndeny:\n");
	for (int i = 0; i < POLICY_REPO_MAX_RULES + 1; i++)
		fmt_append(repo, cap, &n, "  - h%d.example\n", i);
	r = diff(repo, &d, &errs);
	ok(r == -E2BIG && errs.count && strstr(errs.msgs[0], "at most 4096"),
	   "too many rules: refused with a clear error (%s)",
	   errs.count ? errs.msgs[0] : "none");
	policy_errors_free(&errs);
	free(repo);
}

/* protocols: a repository that lets through a protocol BASE does not at
 * a name and port BASE allows widens; one that narrows protocols does not. */
static void protocols(void)
{
	struct policy_diff d;
	struct policy_errors errs = {0};
	int r = diff("version: 1\nallow:\n  - host: api.example.com\n"
		     "    ports: [443]\n    protocols: [tcp]\n",
		     &d, &errs);
	is_int(r, 0, "tcp added to an allowed name and port: computed");
	const struct policy_widening *w = pf_find(&d, "api.example.com");
	ok(w && (w->protocols & POLICY_PROTO_TCP),
	   "adding tcp where BASE allows only tls and http widens");
	ok(w && w->nports == 1 && w->ports[0] == 443, "on port 443 only");
	if (w) {
		char *key = policy_widening_key(w);
		ok(key && strstr(key, "protocols tcp"),
		   "the approval key names the added protocol: %s",
		   key ? key : "(null)");
		free(key);
	}
	policy_diff_free(&d);
	policy_errors_free(&errs);

	expect_none("version: 1\nallow:\n  - host: api.example.com\n"
		    "    ports: [443]\n    protocols: [tls]\n",
		    "narrowing api.example.com to tls");
	expect_none("version: 1\nallow:\n  - host: api.example.com\n"
		    "    ports: [443]\n    protocols: [http, tls]\n",
		    "restating the default protocols");

	/* A deny beside it does not hide it: the deny is less specific. */
	r = diff("version: 1\nallow:\n  - host: x.ok.example\n"
		 "    protocols: [tcp]\ndeny:\n  - \"*.ok.example\"\n",
		 &d, &errs);
	w = pf_find(&d, "x.ok.example");
	ok(r == 0 && w && (w->protocols & POLICY_PROTO_TCP),
	   "tcp under a BASE **. allow widens despite the repo's own deny");
	policy_diff_free(&d);
	policy_errors_free(&errs);
}

int main(void)
{
	pf_setup("test_policy_diff");
	char p[256];
	pf_write(p, sizeof(p), "presets/same.yaml",
		 "version: 1\nallow:\n  - same.example\n");
	pf_write(p, sizeof(p), "presets/wide.yaml",
		 "version: 1\nallow:\n  - wide.example\n");
	pf_write(base_path, sizeof(base_path), "base.yaml",
		 "version: 1\nextends: [same]\nallow:\n"
		 "  - host: api.example.com\n    ports: [443]\n"
		 "  - \"**.ok.example\"\n  - \"**.held.example\"\n"
		 "  - cidr: 10.8.0.0/17\n    ports: [22]\n"
		 "deny:\n  - \"**.corp.example\"\n  - bad.ok.example\n"
		 "  - blocked.held.example\n");

	narrowing();
	widening();
	reports_and_extends();
	errors();
	attacks();
	protocols();

	pf_cleanup();
	return done_testing();
}
