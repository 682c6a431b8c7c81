/* secrets: in policy files (policy_secrets.c): the loader's checks, the
 * union over files, and the widening a repository's secret is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "../../policy/policy.h"
#include "policy_files.h"
#include "tap.h"

static char base_path[128], base_sec_path[128], base_hdr_path[128];

/* The diff against one base file, errors shown as diagnostics. */
static int diff(const char *base, const char *repo, struct policy_diff *d)
{
	return pf_diff(base, repo, d, NULL);
}

static void loader(void)
{
	struct policy *p = pf_load_ok("version: 1\nsecrets:\n"
				      "  - env: TESTKEY\n"
				      "    hosts: [API.Example.com, api.test]\n"
				      "  - env: GH_TOKEN\n    hosts:\n"
				      "      - api.github.com\n"
				      "      - api.github.com\n",
				      "secrets");
	size_t n = 0;
	const struct policy_secret *s = policy_secrets(p, &n);
	is_int(n, 2, "two secrets");
	if (n == 2) {
		is_str(s[0].var, "TESTKEY", "in file order");
		is_int(s[0].nhosts, 2, "with its hosts");
		is_str(s[0].hosts[0].name, "api.example.com", "normalised");
		is_int(s[0].hosts[0].line, 4, "host line");
		is_int(s[0].hosts[0].col, 13, "host column");
		is_int(s[1].nhosts, 1, "a repeated host is kept once");
	}
	policy_free(p);

	/* header: and format: */
	p = pf_load_ok("version: 1\nsecrets:\n  - env: TESTKEY\n"
		       "    hosts: [api.test]\n    header: Authorization\n"
		       "    format: \"token {value}\"\n"
		       "  - env: K2\n    hosts: [api.test]\n    header: X-Api-Key\n"
		       "  - env: K3\n    hosts: [api.test]\n",
		       "secrets with headers");
	s = policy_secrets(p, &n);
	ok(p && n == 3, "three of them");
	if (p && n == 3) {
		is_str(s[0].header, "Authorization", "header kept as written");
		is_str(s[0].format, "token {value}", "format");
		is_int(s[0].header_line, 5, "header line");
		is_str(s[1].format, "{value}", "format defaults to {value}");
		ok(s[2].header == NULL && s[2].format == NULL,
		   "no header: none set");
	}
	policy_free(p);

	static const struct {
		const char *text, *msg;
	} bad[] = {
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    hots: [b.example.com]\n", "5:5: unknown key 'hots'"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [\"*.example.com\"]\n",
		 "a secret host is one exact name, no wildcard"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [\"**.example.com\"]\n",
		 "no wildcard"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [co.uk]\n",
		 "public suffix cannot be a secret host"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [github.io]\n",
		 "public suffix"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [127.0.0.1]\n",
		 "IP address"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [localhost]\n",
		 "a secret host needs at least two labels"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a_b.example.com]\n",
		 "'_' is not allowed in a secret host"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [\"a.example.com:443\"]\n",
		 "not a host name"},
		{"version: 1\nsecrets:\n  - env: 9K\n    hosts: [a.example.com]\n",
		 "not a variable name"},
		{"version: 1\nsecrets:\n  - env: PATH\n    hosts: [a.example.com]\n",
		 "PATH cannot be a secret"},
		{"version: 1\nsecrets:\n  - env: LD_PRELOAD\n    hosts: [a.example.com]\n",
		 "LD_PRELOAD cannot be a secret"},
		{"version: 1\nsecrets:\n  - env: XDG_RUNTIME_DIR\n    hosts: [a.example.com]\n",
		 "cannot be a secret"},
		{"version: 1\nsecrets:\n  - env: K-1\n    hosts: [a.example.com]\n",
		 "not a variable name"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "  - env: K\n    hosts: [b.example.com]\n",
		 "5:10: duplicate secret 'K'"},
		{"version: 1\nsecrets:\n  - env: K\n    env: L\n    hosts: [a.example.com]\n",
		 "duplicate key 'env'"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: []\n", "non-empty"},
		{"version: 1\nsecrets:\n  - env: K\n", "non-empty"},
		{"version: 1\nsecrets:\n  - hosts: [a.example.com]\n", "needs env"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: a.example.com\n",
		 "a list of host names"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    format: Bearer {value}\n", "5:13: secret K: format: needs header:"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: x-api-key\n    format: Bearer {}\n", "needs {value}"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: x-api-key\n    format: \"{value} {value}\"\n", "{value} may appear once"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: x-api-key\n    format: \"{value}}\"\n", "'{' and '}' are allowed only"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: x-api-key\n    format: \"{VALUE}\"\n", "needs {value}"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: x-api-key\n    format: \"a\\r\\nX: {value}\"\n", "printable ASCII"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: x-api-key\n    format: \"a\\tb {value}\"\n", "printable ASCII"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: x-api-key\n    format: \" {value}\"\n", "leading or trailing space"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: x-api-key\n    format: [a]\n", "format: a string"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: \"x-api-key:\"\n", "not an HTTP header name"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: \"x api key\"\n", "not an HTTP header name"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: \"\"\n", "1 to 64"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: Host\n", "framing or hop-by-hop"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: transfer-ENCODING\n", "framing or hop-by-hop"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: Content-Length\n", "framing or hop-by-hop"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: connection\n", "framing or hop-by-hop"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: x-a\n    header: x-b\n", "duplicate key 'header'"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: [x-a]\n", "header: a header name"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: x-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		 "header: longer than 64"},
		{"version: 1\nsecrets:\n  - env: K\n    hosts: [a.example.com]\n"
		 "    header: x-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		 "1 to 64"},
		{"version: 1\nsecrets: K@a.example.com\n", "a list of secrets"},
		{"version: 1\nsecrets:\n  - K@a.example.com\n", "a mapping"},
		{"version: 1\nsecrets: []\nsecrets: []\n", "duplicate key 'secrets'"},
		{"version: 1\nsecrets:\n  - &a {env: K, hosts: [a.example.com]}\n"
		 "  - *a\n", "aliases"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		pf_expect_refused(bad[i].text, bad[i].msg, NULL);

	/* Too many hosts, too many secrets: refused, not truncated. */
	char big[8192];
	size_t bl = 0;
	fmt_append(big, sizeof(big), &bl, "version: 1\nsecrets:\n  - env: K\n    hosts:\n");
	for (int i = 0; i <= POLICY_SECRET_HOSTS_MAX; i++)
		fmt_append(big, sizeof(big), &bl, "      - h%d.example.com\n", i);
	pf_expect_refused(big, "more than", NULL); /* hosts */
	bl = 0;
	fmt_append(big, sizeof(big), &bl, "version: 1\nsecrets:\n");
	for (int i = 0; i <= POLICY_SECRETS_MAX; i++)
		fmt_append(big, sizeof(big), &bl,
			   "  - {env: K%d, hosts: [a.example.com]}\n", i);
	pf_expect_refused(big, "more than", NULL); /* secrets */
}

/* Two files naming one variable: the union of their hosts. */
static void merged(void)
{
	struct policy_errors e = {0};
	struct policy_builder *b = policy_builder_new(pf_presets());
	policy_builder_add_file(b, base_sec_path, &e);
	const char *r = "version: 1\nsecrets:\n  - env: TESTKEY\n"
			"    hosts: [api.test, other.test]\n";
	policy_builder_add_buffer(b, "repo.yaml", r, strlen(r), &e);
	struct policy *p = policy_builder_finish(b, &e);
	size_t n = 0;
	const struct policy_secret *s = policy_secrets(p, &n);
	ok(p && n == 1 && s[0].nhosts == 2, "one secret, two hosts");
	if (n == 1 && s[0].nhosts == 2) {
		is_str(s[0].hosts[1].name, "other.test", "the new host");
		is_str(s[0].hosts[1].file, "repo.yaml", "from the second file");
	}
	policy_free(p);
	policy_errors_free(&e);

	/* One header per secret across files: the same one again is fine,
	 * another one an error naming the first file. */
	static const struct {
		const char *repo;
		bool good;
	} hd[] = {
		{"version: 1\nsecrets:\n  - env: HKEY\n    hosts: [api.test]\n"
		 "    header: authorization\n    format: \"token {value}\"\n", true},
		{"version: 1\nsecrets:\n  - env: HKEY\n    hosts: [api.test]\n", true},
		{"version: 1\nsecrets:\n  - env: HKEY\n    hosts: [api.test]\n"
		 "    header: X-Other\n    format: \"token {value}\"\n", false},
		{"version: 1\nsecrets:\n  - env: HKEY\n    hosts: [api.test]\n"
		 "    header: Authorization\n    format: \"Bearer {value}\"\n", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(hd); i++) {
		struct policy_errors he = {0};
		struct policy_builder *hb = policy_builder_new(pf_presets());
		policy_builder_add_file(hb, base_hdr_path, &he);
		policy_builder_add_buffer(hb, "repo.yaml", hd[i].repo,
					  strlen(hd[i].repo), &he);
		struct policy *hp = policy_builder_finish(hb, &he);
		if (hd[i].good) {
			size_t hn = 0;
			const struct policy_secret *hs = policy_secrets(hp, &hn);
			ok(hp && hn == 1 && hs[0].header &&
				   !strcmp(hs[0].format, "token {value}"),
			   "header %zu: the same or none in another file", i);
		} else {
			ok(!hp && he.count &&
				   strstr(he.msgs[0], "differs from") &&
				   strstr(he.msgs[0], "base_hdr.yaml:5"),
			   "header %zu: another header or format refused: %s",
			   i, he.count ? he.msgs[0] : "");
		}
		policy_free(hp);
		policy_errors_free(&he);
	}
}

static void widening(void)
{
	struct policy_diff d;
	/* A new variable. */
	is_int(diff(base_path, "version: 1\nsecrets:\n  - env: AWS_KEY\n"
			       "    hosts: [api.example.com]\n", &d),
	       0, "diff computed");
	is_int(d.count, 1, "a repository's new secret widens");
	if (d.count) {
		const struct policy_widening *w = &d.items[0];
		is_int(w->kind, WIDEN_SECRET, "as a secret");
		is_str(w->pattern, "AWS_KEY@api.example.com", "naming it");
		is_str(w->file, ".sandbox/policy.yaml", "and the file");
		is_int(w->line, 4, "and the line");
		ok(!w->via_extends, "its own");
		char *k = policy_widening_key(w);
		ok(k && strstr(k, "secret AWS_KEY@api.example.com"),
		   "approval key names it: %s", k ? k : "(null)");
		free(k);
		char *out = NULL;
		size_t ol = 0;
		FILE *f = open_memstream(&out, &ol);
		policy_diff_print(f, &d, false);
		fclose(f);
		ok(out && strstr(out, "+ secret AWS_KEY@api.example.com"),
		   "diff shows it: %s", out ? out : "");
		free(out);
	}
	policy_diff_free(&d);

	/* A new host for a variable BASE has. */
	is_int(diff(base_sec_path, "version: 1\nsecrets:\n  - env: TESTKEY\n"
				   "    hosts: [api.test, other.test]\n", &d),
	       0, "diff computed");
	ok(d.count == 1 && d.items[0].kind == WIDEN_SECRET &&
		   !strcmp(d.items[0].pattern, "TESTKEY@other.test"),
	   "a new host for a known secret widens, only that host");
	policy_diff_free(&d);

	/* The same host again, or none: nothing. */
	is_int(diff(base_sec_path, "version: 1\nsecrets:\n  - env: TESTKEY\n"
				   "    hosts: [API.test]\n", &d),
	       0, "diff computed");
	is_int(d.count, 0, "a host BASE lists already does not widen");
	policy_diff_free(&d);

	/* Another variable's host is no cover: TESTKEY@api.test in BASE
	 * does not make OTHER@api.test narrow. */
	is_int(diff(base_sec_path, "version: 1\nsecrets:\n  - env: OTHER\n"
				   "    hosts: [api.test]\n", &d),
	       0, "diff computed");
	ok(d.count == 1 && !strcmp(d.items[0].pattern, "OTHER@api.test"),
	   "the same host for another variable widens");
	policy_diff_free(&d);

	/* A header the proxy would set: a repository adding one to a secret
	 * BASE has, or changing it, widens; the same one does not. */
	is_int(diff(base_sec_path, "version: 1\nsecrets:\n  - env: TESTKEY\n"
				   "    hosts: [api.test]\n    header: X-Echo\n", &d),
	       0, "diff computed");
	ok(d.count == 1 && d.items[0].kind == WIDEN_SECRET &&
		   !strcmp(d.items[0].pattern, "TESTKEY header X-Echo: {value}") &&
		   d.items[0].line == 5,
	   "a new header for a secret widens: %s",
	   d.count ? d.items[0].pattern : "");
	if (d.count) {
		char *out = NULL;
		size_t ol = 0;
		FILE *f = open_memstream(&out, &ol);
		policy_diff_print(f, &d, false);
		fclose(f);
		ok(out && strstr(out, "+ secret TESTKEY header X-Echo: {value}: "
				      "the proxy sets this header"),
		   "diff says what the header does: %s", out ? out : "");
		free(out);
	}
	policy_diff_free(&d);
	is_int(diff(base_hdr_path, "version: 1\nsecrets:\n  - env: HKEY\n"
				   "    hosts: [api.test]\n    header: Authorization\n"
				   "    format: \"token {value}\"\n", &d),
	       0, "diff computed");
	is_int(d.count, 0, "the header BASE sets already does not widen");
	policy_diff_free(&d);

	/* Through a preset it extends. */
	is_int(diff(base_path, "version: 1\nextends: [sec]\n", &d), 0,
	       "diff computed");
	ok(d.count == 1 && d.items[0].kind == WIDEN_SECRET &&
		   d.items[0].via_extends,
	   "a secret through extends widens, attributed to the preset");
	policy_diff_free(&d);
}

int main(void)
{
	pf_setup("test_policy_sec");
	char p[256];
	pf_write(p, sizeof(p), "presets/sec.yaml",
		 "version: 1\nsecrets:\n  - env: PKEY\n    hosts: [p.example.com]\n");
	pf_write(base_path, sizeof(base_path), "base.yaml",
		 "version: 1\nallow:\n  - api.example.com\n");
	pf_write(base_sec_path, sizeof(base_sec_path), "base_sec.yaml",
		 "version: 1\nsecrets:\n  - env: TESTKEY\n    hosts: [api.test]\n");
	pf_write(base_hdr_path, sizeof(base_hdr_path), "base_hdr.yaml",
		 "version: 1\nsecrets:\n  - env: HKEY\n    hosts: [api.test]\n"
		 "    header: Authorization\n    format: \"token {value}\"\n");

	loader();
	merged();
	widening();

	pf_cleanup();
	return done_testing();
}
