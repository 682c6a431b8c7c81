/* sandbox-policy: check policy files, and ask a policy what it decides for a
 * host or address and why. It loads files exactly as sandbox-proxy does, so
 * an answer here is the answer the proxy will give. */
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "../common/ipaddr.h"
#include "../common/termsafe.h"
#include "../common/util.h"
#include "policy.h"

enum { EXIT_ALLOW = 0, EXIT_ERROR = 1, EXIT_DENY = 2, EXIT_WOULD_DENY = 3,
       EXIT_WIDENS = 4 };

/* A repository policy file larger than this is refused. */
#define REPO_MAX_BYTES (1 << 20)

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: sandbox-policy check [OPTIONS] FILE...\n"
		"       sandbox-policy explain [OPTIONS] [FILE...] -- HOST[:PORT]...\n"
		"       sandbox-policy diff [--presets DIR] [--json] [BASEFILE...] -- REPOFILE\n"
		"\n"
		"Check egress policy files, or ask them what they decide and why.\n"
		"\n"
		"  check     load the files (and the presets they extend), report every\n"
		"            error as file:line:col: message, or print a summary line\n"
		"  explain   for each HOST[:PORT] after '--', print the decision and the\n"
		"            rule behind it (file:line and the pattern). HOST is a name\n"
		"            (IDN allowed) or an IP address (IPv6 as [addr]:port or bare).\n"
		"            Without :PORT the question is \"any port\", as for a DNS query.\n"
		"  diff      list what REPOFILE (a repository's .sandbox/policy.yaml)\n"
		"            widens beyond the BASEFILEs (your policy, the agent preset):\n"
		"            allows BASE denies, report mode, presets it extends that add\n"
		"            allows. Narrowing is not listed. --json: one object a line\n"
		"\n"
		"Options:\n"
		"  --presets DIR   where 'extends: [name]' finds name.yaml. Default:\n"
		"                  $SANDBOX_PRESETS, else <dir of this program>/../../policies\n"
		"                  (a build tree), else <dir of this program>/../share/\n"
		"                  sandbox/policies (make install), else\n"
		"                  /usr/share/sandbox/policies\n"
		"  --allow SPEC    add an allow rule as sandbox-proxy --allow does\n"
		"                  (e.g. example.com, example.com:22:tcp, 10.0.0.0/8:443)\n"
		"  --deny SPEC     add a deny rule likewise\n"
		"  -h, --help      show this help\n"
		"\n"
		"Exit status:\n"
		"  0  check: no errors; explain: every query is allowed\n"
		"  1  an error (bad file, bad query, bad usage)\n"
		"  2  explain: at least one query is denied\n"
		"  3  explain: none denied, at least one would be denied (report mode)\n"
		"  4  diff: REPOFILE widens the policy (0: it does not)\n"
		"\n"
		"Examples:\n"
		"  sandbox-policy check .sandbox/policy.yaml\n"
		"  sandbox-policy explain .sandbox/policy.yaml -- github.com:22 10.0.0.5:443\n"
		"  sandbox-policy diff ~/.config/sandbox/policy.yaml -- .sandbox/policy.yaml\n"
		"\n"
		"The format and its semantics are described in docs/policy.md.\n");
}

struct query {
	char name[256];     /* normalised name, or empty for an address */
	struct ip_addr addr;
	bool is_addr;
	uint16_t port;      /* 0: any */
};

/* HOST, HOST:PORT, [V6], [V6]:PORT or a bare V6. Returns NULL or why not. */
static const char *parse_query(const char *q, struct query *out)
{
	memset(out, 0, sizeof(*out));
	size_t len = strlen(q);
	const char *host = q, *port = NULL;
	size_t hlen = len;
	if (q[0] == '[') {
		const char *close = strchr(q, ']');
		if (!close)
			return "missing ']'";
		host = q + 1;
		hlen = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return "expected ':PORT' after ']'";
		if (!ip_parse_strict(host, hlen, &out->addr))
			return "not an IPv6 address inside [ ]";
		out->is_addr = true;
	} else {
		const char *colon = strchr(q, ':');
		if (colon && colon == strrchr(q, ':')) {
			hlen = (size_t)(colon - q);
			port = colon + 1;
		}
		if (ip_parse_strict(host, hlen, &out->addr))
			out->is_addr = true;
		else if (colon && !port)
			return "not an IPv6 address (write [addr]:port to give a port)";
		else if (ip_looks_numeric(host, hlen))
			return "neither a host name nor an IP address (numeric forms like 127.1 or 2130706433 are refused)";
		else if (policy_normalize_name(host, hlen, out->name, sizeof(out->name)) < 0)
			return "not a valid host name";
	}
	if (port) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(port, &end, 10);
		if (!*port || *end || errno || v < 1 || v > 65535 || port[0] == '+' || port[0] == '-')
			return "bad port (1-65535)";
		out->port = (uint16_t)v;
	}
	return NULL;
}

/* check: one line per secret (docs/secrets.md). */
static void print_secrets(const struct policy *p)
{
	size_t n;
	const struct policy_secret *s = policy_secrets(p, &n);
	for (size_t i = 0; i < n; i++) {
		fputs("secret ", stdout);
		term_fputs(s[i].var, stdout, false);
		fputs(" goes to", stdout);
		for (size_t j = 0; j < s[i].nhosts; j++) {
			fputs(j ? ", " : " ", stdout);
			term_fputs(s[i].hosts[j].name, stdout, false);
		}
		if (s[i].header) {
			fputs(", header ", stdout);
			term_fputs(s[i].header, stdout, false);
			fputs(": ", stdout);
			term_fputs(s[i].format, stdout, false);
		}
		fputs(" (", stdout);
		term_fputs(s[i].file, stdout, false);
		printf(":%u)\n", s[i].line);
	}
}

/* check: one line per inspected host (docs/secrets.md). */
static void print_inspected(const struct policy *p)
{
	size_t n;
	const struct policy_inspect *h = policy_inspected(p, &n);
	for (size_t i = 0; i < n; i++) {
		fputs("inspect ", stdout);
		term_fputs(h[i].name, stdout, false);
		fputs(" (", stdout);
		term_fputs(h[i].file, stdout, false);
		printf(":%u)\n", h[i].line);
	}
	const struct policy_inspect *at;
	if (policy_inspects_all(p, &at)) {
		const char *const *names = policy_ca_names(p, &n);
		printf("inspect all: %zu names for the sandbox CA (", n);
		term_fputs(at->file, stdout, false);
		printf(":%u):", at->line);
		for (size_t i = 0; i < n; i++) {
			fputc(' ', stdout);
			term_fputs(names[i], stdout, false);
		}
		fputc('\n', stdout);
	}
}

/* explain: the secrets whose value goes to name. */
static void explain_secrets(const struct policy *p, const char *name)
{
	size_t n;
	const struct policy_secret *s = policy_secrets(p, &n);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < s[i].nhosts; j++) {
			if (strcmp(s[i].hosts[j].name, name) != 0)
				continue;
			fputs("  secret: ", stdout);
			term_fputs(s[i].var, stdout, false);
			fputs(" (TLS to it is intercepted and the value put "
			      "on requests in place of the placeholder; ",
			      stdout);
			term_fputs(s[i].hosts[j].file, stdout, false);
			printf(":%u)\n", s[i].hosts[j].line);
		}
}

static int explain_one(const struct policy *p, const char *q)
{
	struct query qu;
	const char *why = parse_query(q, &qu);
	if (why) {
		fprintf(stderr, "%s: '", program_name);
		term_fputs(q, stderr, false);
		fprintf(stderr, "': %s\n", why);
		return EXIT_ERROR;
	}
	struct policy_verdict v = qu.is_addr ? policy_decide_addr(p, &qu.addr, qu.port)
					     : policy_decide_name(p, qu.name, qu.port);
	char port[16] = "any port";
	if (qu.port)
		fmt_buf(port, sizeof(port), "port %u", qu.port);
	char shown[300];
	if (qu.is_addr) {
		char a[IP_STR_MAX];
		ip_format(&qu.addr, a);
		fmt_buf(shown, sizeof(shown), "%s", a);
	} else {
		fmt_buf(shown, sizeof(shown), "%s", qu.name);
	}
	printf("%s %s: %s\n", shown, port, policy_decision_str(v.decision));
	if (v.rule.file) {
		char where[512];
		policy_rule_str(&v.rule, where, sizeof(where));
		fputs("  rule: ", stdout);
		term_fputs(where, stdout, false);
		printf(": %s '", v.rule.allow ? "allow" : "deny");
		term_fputs(v.rule.pattern, stdout, false);
		fputs("'\n", stdout);
		if (v.rule.allow) {
			char protos[32];
			policy_protocols_str(v.rule.protocols, protos, sizeof(protos));
			printf("  protocols: %s%s\n", protos,
			       v.rule.protocols & POLICY_PROTO_TCP
				       ? " (any stream; TLS and HTTP ones still have their SNI/Host checked)"
				       : " (other streams, such as SSH or HTTP/2 prior knowledge, are refused)");
		}
	} else {
		const char *primary = policy_primary_file(p);
		printf("  rule: default (no rule matches; everything not allowed is denied)\n");
		printf("  to allow it, add %s to the allow: list of ",
		       qu.is_addr ? "a cidr: rule" : "it");
		term_fputs(primary ? primary : "your policy file", stdout, false);
		fputc('\n', stdout);
	}
	if (!qu.is_addr)
		explain_secrets(p, qu.name);
	if (!qu.is_addr && policy_is_inspected(p, qu.name))
		fputs("  inspected: TLS to it is intercepted and each "
		      "request recorded (method, host, path)\n",
		      stdout);
	else if (v.decision != DECISION_DENY && policy_inspects_all(p, NULL))
		fputs(qu.is_addr
			      ? "  inspect all: TLS to an address is refused (the "
				"sandbox CA signs no address)\n"
			      : "  inspect all: TLS to it is intercepted and each "
				"request recorded (method, host, path)\n",
		      stdout);
	if (!qu.is_addr && v.decision != DECISION_DENY)
		printf("  note: if the name resolves to a private or loopback address, a cidr: rule must allow that address too\n");
	if (qu.is_addr && v.decision == DECISION_DENY && !v.rule.file)
		printf("  note: IP addresses are only matched by cidr: rules, never by host rules\n");
	return v.decision == DECISION_ALLOW ? EXIT_ALLOW
	       : v.decision == DECISION_WOULD_DENY ? EXIT_WOULD_DENY
						   : EXIT_DENY;
}

/* diff [--presets DIR] [--json] [BASEFILE...] -- REPOFILE */
static int diff_main(int argc, char **argv)
{
	char presets_buf[PATH_MAX];
	const char *presets = NULL, *repo = NULL;
	bool json = false;
	_cleanup_free_ const char **files = calloc((size_t)argc, sizeof(*files));
	if (!files)
		die("out of memory");
	size_t nfiles = 0;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			if (i + 2 != argc) {
				fprintf(stderr, "%s: diff takes exactly one REPOFILE after '--'\n",
					program_name);
				return EXIT_ERROR;
			}
			repo = argv[i + 1];
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strncmp(a, "--presets=", 10)) {
			presets = a + 10;
		} else if (!strcmp(a, "--presets")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: --presets needs an argument\n", program_name);
				return EXIT_ERROR;
			}
			presets = argv[++i];
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "%s: unknown option '%s' (try --help)\n", program_name, a);
			return EXIT_ERROR;
		} else {
			files[nfiles++] = a;
		}
	}
	if (!repo) {
		fprintf(stderr, "%s: diff needs '-- REPOFILE', e.g. diff ~/.config/sandbox/policy.yaml -- .sandbox/policy.yaml\n",
			program_name);
		return EXIT_ERROR;
	}
	if (!presets)
		presets = policy_default_preset_dir(presets_buf, sizeof(presets_buf));
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = read_file(repo, REPO_MAX_BYTES, &data, &len);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", program_name, repo,
			r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
		return EXIT_ERROR;
	}
	struct policy_errors errs = {0};
	struct policy_diff d;
	r = policy_diff_compute(files, nfiles, presets, repo, data, len, &d, &errs);
	if (r < 0) {
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		if (errs.count == 0)
			fprintf(stderr, "%s: %s\n", program_name, strerror(-r));
		policy_errors_free(&errs);
		return EXIT_ERROR;
	}
	policy_errors_free(&errs);
	policy_diff_print(stdout, &d, json);
	int rc = d.count ? EXIT_WIDENS : EXIT_ALLOW;
	if (!json && !d.count)
		printf("no widening: %s only narrows the policy (or adds nothing)\n", repo);
	policy_diff_free(&d);
	return rc;
}

int main(int argc, char **argv)
{
	program_name = "sandbox-policy";
	if (argc < 2) {
		usage(stderr);
		return EXIT_ERROR;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "diff"))
		return diff_main(argc, argv);
	bool check = !strcmp(cmd, "check");
	if (!check && strcmp(cmd, "explain")) {
		fprintf(stderr, "%s: unknown command '%s' (try --help)\n", program_name, cmd);
		return EXIT_ERROR;
	}
	char presets_buf[PATH_MAX];
	const char *presets = NULL;
	_cleanup_free_ const char **files = calloc((size_t)argc, sizeof(*files));
	_cleanup_free_ struct { bool allow; const char *spec; } *rules =
		calloc((size_t)argc, sizeof(*rules));
	if (!files || !rules)
		die("out of memory");
	size_t nfiles = 0, nrules = 0;
	int qstart = -1;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			qstart = i + 1;
			break;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strncmp(a, "--presets=", 10)) {
			presets = a + 10;
		} else if (!strcmp(a, "--presets") || !strcmp(a, "--allow") || !strcmp(a, "--deny")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: %s needs an argument\n", program_name, a);
				return EXIT_ERROR;
			}
			if (!strcmp(a, "--presets")) {
				presets = argv[++i];
			} else {
				rules[nrules].allow = !strcmp(a, "--allow");
				rules[nrules++].spec = argv[++i];
			}
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "%s: unknown option '%s' (try --help)\n", program_name, a);
			return EXIT_ERROR;
		} else {
			files[nfiles++] = a;
		}
	}
	if (check && qstart >= 0) {
		fprintf(stderr, "%s: check takes no queries after '--'\n", program_name);
		return EXIT_ERROR;
	}
	if (check && nfiles == 0) {
		fprintf(stderr, "%s: check needs at least one FILE\n", program_name);
		return EXIT_ERROR;
	}
	if (!check && (qstart < 0 || qstart >= argc)) {
		fprintf(stderr, "%s: explain needs queries after '--', e.g. explain FILE -- example.com:443\n",
			program_name);
		return EXIT_ERROR;
	}
	if (!presets)
		presets = policy_default_preset_dir(presets_buf, sizeof(presets_buf));

	struct policy_errors errs = {0};
	struct policy_builder *b = policy_builder_new(presets);
	if (!b)
		die("out of memory");
	for (size_t i = 0; i < nfiles; i++)
		policy_builder_add_file(b, files[i], &errs);
	for (size_t i = 0; i < nrules; i++)
		policy_builder_add_rule(b, rules[i].allow, rules[i].spec,
					rules[i].allow ? "--allow" : "--deny", &errs);
	struct policy *p = policy_builder_finish(b, &errs);
	if (!p) {
		for (size_t i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		if (errs.count == 0)
			fprintf(stderr, "%s: out of memory\n", program_name);
		else
			fprintf(stderr, "%s: %zu error%s; the policy was not loaded\n",
				program_name, errs.count, errs.count == 1 ? "" : "s");
		policy_errors_free(&errs);
		return EXIT_ERROR;
	}
	int rc = EXIT_ALLOW;
	if (check) {
		struct policy_stats st;
		policy_get_stats(p, &st);
		char tcp[64] = "";
		if (st.tcp_rules)
			fmt_buf(tcp, sizeof(tcp), "; %zu allow%s opaque tcp",
				st.tcp_rules, st.tcp_rules == 1 ? "s" : "");
		/* Host ports open the host's loopback: always said. */
		uint16_t hp[POLICY_HOST_PORTS_MAX];
		size_t nhp = 0, hl = 0;
		char hosts[POLICY_HOST_PORTS_MAX * 7 + 64] = "";
		policy_host_ports(p, hp, POLICY_HOST_PORTS_MAX, &nhp);
		for (size_t i = 0; i < nhp; i++)
			fmt_append(hosts, sizeof(hosts), &hl, "%s%u",
				   i ? "," : "; host ports ", hp[i]);
		if (nhp)
			fmt_append(hosts, sizeof(hosts), &hl,
				   " (as " POLICY_HOST_INTERNAL ")");
		printf("ok: %zu file%s, %zu allow, %zu deny, %zu cidr rules%s%s%s\n",
		       st.files, st.files == 1 ? "" : "s", st.allow_rules,
		       st.deny_rules, st.cidr_rules, tcp, hosts,
		       policy_mode(p) == POLICY_REPORT ? " (report mode)" : "");
		print_secrets(p);
		print_inspected(p);
	} else {
		for (int i = qstart; i < argc; i++) {
			int r = explain_one(p, argv[i]);
			/* Worst result wins: error > deny > would-deny > allow. */
			if (r == EXIT_ERROR || (rc != EXIT_ERROR &&
			    (r == EXIT_DENY || (r == EXIT_WOULD_DENY && rc == EXIT_ALLOW))))
				rc = r;
		}
	}
	policy_free(p);
	return rc;
}
