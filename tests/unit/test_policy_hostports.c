/* Host services by port: host_ports: in a policy file, the decision for
 * host.sandbox.internal, and the widening a repository's host ports are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "../../policy/policy.h"
#include "policy_files.h"
#include "tap.h"

static char base_path[128], base_hp_path[128];

/* The diff against one base file, errors shown as diagnostics. */
static int diff(const char *base, const char *repo, struct policy_diff *d)
{
	return pf_diff(base, repo, d, NULL);
}

static void loader(void)
{
	struct policy *p = pf_load_ok(
		"version: 1\nhost_ports: [5432, 8080, 5432]\n", "host_ports");
	ok(policy_host_port_open(p, 5432) && policy_host_port_open(p, 8080),
	   "listed ports are open");
	ok(!policy_host_port_open(p, 22) && !policy_host_port_open(p, 0),
	   "others are not");
	uint16_t buf[8];
	size_t n;
	policy_host_ports(p, buf, 8, &n);
	is_int(n, 2, "a repeated port is kept once");
	policy_free(p);

	static const struct {
		const char *text, *msg;
	} bad[] = {
		{"version: 1\nhost_ports: any\n", "list the ports"},
		{"version: 1\nhost_ports: [0]\n", "1-65535"},
		{"version: 1\nhost_ports: [ssh]\n", "1-65535"},
		{"version: 1\nhost_ports: []\n", "empty"},
		{"version: 1\nhost_ports: [1]\nhost_ports: [2]\n", "duplicate"},
		{"version: 1\nhost_port: [1]\n", "unknown key"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		pf_expect_refused(bad[i].text, bad[i].msg, NULL);
}

static void decisions(void)
{
	struct policy_errors e = {0};
	/* A host rule for the name, even any-port, opens nothing more, and
	 * report mode does not turn its refusal into would-deny. */
	struct policy *p = pf_load_ok(
		"version: 1\nmode: report\nhost_ports: [5432]\n"
		"allow:\n  - host: host.sandbox.internal\n"
		"    ports: any\n  - \"*.sandbox.internal\"\n",
		"report mode with host_ports");
	struct policy_verdict v = policy_decide_name(p, POLICY_HOST_INTERNAL,
						     5432);
	is_int(v.decision, DECISION_ALLOW, "listed port allowed");
	is_str(v.rule.file, "p.yaml", "rule names the file");
	is_int(v.rule.line, 3, "and the line");
	v = policy_decide_name(p, POLICY_HOST_INTERNAL, 22);
	is_int(v.decision, DECISION_DENY, "unlisted port denied, not would-deny");
	v = policy_decide_name(p, POLICY_HOST_INTERNAL, 0);
	is_int(v.decision, DECISION_ALLOW, "its lookup is answered");
	v = policy_decide_name(p, "other.sandbox.internal", 5432);
	ok(v.decision != DECISION_DENY, "another name follows its rules");
	policy_free(p);

	p = pf_load_ok("version: 1\nallow:\n  - host.sandbox.internal\n",
		       "a rule for the name, no host_ports");
	v = policy_decide_name(p, POLICY_HOST_INTERNAL, 443);
	is_int(v.decision, DECISION_DENY, "without host ports a rule opens nothing");
	v = policy_decide_name(p, POLICY_HOST_INTERNAL, 0);
	is_int(v.decision, DECISION_DENY, "and the name is not answered");
	policy_free(p);

	struct policy_builder *b = policy_builder_new(pf_presets());
	ok(policy_builder_add_host_port(b, 6379, "--host-port", 0, 0, &e) == 0,
	   "--host-port adds one");
	p = policy_builder_finish(b, &e);
	v = policy_decide_name(p, POLICY_HOST_INTERNAL, 6379);
	is_int(v.decision, DECISION_ALLOW, "--host-port port allowed");
	is_str(v.rule.file, "--host-port", "its origin is the option");
	policy_free(p);
	policy_errors_free(&e);
}

static void widening(void)
{
	struct policy_diff d;
	is_int(diff(base_path, "version: 1\nhost_ports: [5432]\n", &d), 0,
	       "diff computed");
	is_int(d.count, 1, "a repository's host port widens");
	if (d.count) {
		const struct policy_widening *w = &d.items[0];
		is_int(w->kind, WIDEN_HOST_PORT, "as a host port");
		ok(w->nports == 1 && w->ports[0] == 5432, "naming the port");
		is_str(w->file, ".sandbox/policy.yaml", "and the file");
		is_int(w->line, 2, "and the line");
		char *k = policy_widening_key(w);
		ok(k && strstr(k, "host-port") && strstr(k, "5432"),
		   "approval key names it: %s", k ? k : "(null)");
		free(k);
	}
	policy_diff_free(&d);

	is_int(diff(base_hp_path, "version: 1\nhost_ports: [5432]\n", &d), 0,
	       "diff computed");
	is_int(d.count, 0, "a port the base opens already does not widen");
	policy_diff_free(&d);

	is_int(diff(base_hp_path, "version: 1\nhost_ports: [5432, 22]\n", &d),
	       0, "diff computed");
	ok(d.count == 1 && d.items[0].ports[0] == 22, "only the new port widens");
	policy_diff_free(&d);

	is_int(diff(base_path, "version: 1\nextends: [hp]\n", &d), 0,
	       "diff computed");
	ok(d.count == 1 && d.items[0].kind == WIDEN_HOST_PORT &&
		   d.items[0].via_extends,
	   "host ports through extends widen, attributed to the preset");
	policy_diff_free(&d);

	/* A name rule for the host name in the repo opens no host port. */
	is_int(diff(base_path, "version: 1\nallow:\n  - host: "
			       "host.sandbox.internal\n    ports: any\n",
		    &d),
	       0, "diff computed");
	for (size_t i = 0; i < d.count; i++)
		ok(d.items[i].kind != WIDEN_HOST_PORT, "no host port from a rule");
	policy_diff_free(&d);
}

int main(void)
{
	pf_setup("test_policy_hp");
	char p[256];
	pf_write(p, sizeof(p), "presets/hp.yaml", "version: 1\nhost_ports: [3000]\n");
	pf_write(base_path, sizeof(base_path), "base.yaml",
		 "version: 1\nallow:\n  - api.example.com\n");
	pf_write(base_hp_path, sizeof(base_hp_path), "base_hp.yaml",
		 "version: 1\nhost_ports: [5432]\n");

	loader();
	decisions();
	widening();

	pf_cleanup();
	return done_testing();
}
