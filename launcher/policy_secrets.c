/* `secrets:` in policy files, as the launcher takes them (secrets.h):
 * the policy is loaded here with the policy library, exactly as the proxy
 * will load it, so that each secret's variable becomes a placeholder
 * before the guest's environment is made. The same load is the launch's
 * policy check: its errors, every one, stop the launch before anything
 * starts (there is no separate `sandbox-proxy --check` run). The command line wins over a
 * policy for the same variable (and over the agent's defaults, which
 * agent_secrets adds only where --secret did not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "../policy/policy.h"
#include "launch.h"
#include "secrets.h"

static struct policy *load(const struct launch_opts *o, const char *repo_copy,
			   struct policy_errors *errs)
{
	char pbuf[4096];
	struct policy_builder *b =
		policy_builder_new(policy_default_preset_dir(pbuf,
							     sizeof(pbuf)));
	if (!b)
		return NULL;
	for (size_t i = 0; i < o->n_policies; i++)
		policy_builder_add_file(b, o->policies[i], errs);
	if (repo_copy)
		policy_builder_add_file(b, repo_copy, errs);
	for (size_t i = 0; i < o->n_rules; i++)
		policy_builder_add_rule(b, o->rules[i].allow, o->rules[i].spec,
					o->rules[i].allow ? "--allow" : "--deny",
					errs);
	return policy_builder_finish(b, errs);
}

/* Each notice once, though the policy is read twice (before and after the
 * repository's). */
static void notice_once(void (*notice)(const char *msg), const char *var,
			const char *msg)
{
	static char said[POLICY_SECRETS_MAX][128];
	static size_t nsaid;
	for (size_t i = 0; i < nsaid; i++)
		if (!strcmp(said[i], var))
			return;
	if (nsaid < POLICY_SECRETS_MAX)
		fmt_buf(said[nsaid++], sizeof(said[0]), "%s", var);
	notice(msg);
}

int launcher_policy_secrets(struct launch_opts *o, const char *repo_copy,
			    bool show_errors,
			    void (*notice)(const char *msg), char *err,
			    size_t errsz)
{
	struct policy_errors errs = {0};
	struct policy *p = load(o, repo_copy, &errs);
	if (!p && show_errors) {
		/* Every error, file:line:col or the option, one a line; the
		 * messages quote policy files (a repository's among them). */
		for (size_t i = 0; i < errs.count; i++) {
			term_fputs(errs.msgs[i], stderr, false);
			fputc('\n', stderr);
		}
		fmt_buf(err, errsz, "the policy has errors (%s): fix them, "
				    "then check with sandbox-policy check",
			errs.count ? "above" : "out of memory");
	} else if (!p) {
		fmt_buf(err, errsz, "the policy has errors: %s",
			errs.count ? errs.msgs[0] : "out of memory");
	}
	if (!p) {
		policy_errors_free(&errs);
		return -1;
	}
	policy_errors_free(&errs);
	size_t n;
	(void)policy_inspected(p, &n);
	launcher_secrets_set_inspecting(n > 0 || policy_inspects_all(p, NULL));
	const struct policy_secret *s = policy_secrets(p, &n);
	int r = 0;
	for (size_t i = 0; i < n && !r; i++) {
		char hosts[1024] = "", origin[1200], msg[1500];
		size_t hl = 0;
		for (size_t j = 0; j < s[i].nhosts; j++)
			fmt_append(hosts, sizeof(hosts), &hl, "%s%s",
				   j ? "," : "", s[i].hosts[j].name);
		fmt_buf(origin, sizeof(origin), "%s:%u", s[i].file,
			s[i].line);
		const char *v = getenv(s[i].var);
		bool known = launcher_secret_placeholder(s[i].var) != NULL;
		if (!known && (!v || !*v)) {
			fmt_buf(msg, sizeof(msg),
				"secret %s (%s): not set here, skipped",
				s[i].var, origin);
			notice_once(notice, s[i].var, msg);
			continue;
		}
		r = launcher_secret_from_policy(o, s[i].var, hosts, origin,
						err, errsz);
		if (r == 0 && s[i].header &&
		    launcher_secret_header(s[i].var, s[i].header,
					   s[i].format) < 0) {
			fmt_buf(err, errsz, "%s: secret %s: bad header", origin,
				s[i].var);
			r = -1;
		}
		if (r == 1) {
			fmt_buf(msg, sizeof(msg),
				"secret %s (%s): --secret (or the agent) "
				"gives its hosts; the policy's are not used",
				s[i].var, origin);
			notice_once(notice, s[i].var, msg);
			r = 0;
		}
	}
	policy_free(p);
	return r < 0 ? -1 : 0;
}

void launcher_policy_secrets_hide(const struct launch_opts *o,
				  void (*notice)(const char *msg))
{
	struct policy_errors errs = {0};
	struct policy *p = load(o, NULL, &errs);
	policy_errors_free(&errs);
	size_t n;
	const struct policy_secret *s = policy_secrets(p, &n);
	for (size_t i = 0; i < n; i++) {
		const char *v = getenv(s[i].var);
		if (!v || !*v)
			continue;
		char msg[300];
		fmt_buf(msg, sizeof(msg),
			"secret %s: not passed to a command joining a running "
			"sandbox (its placeholder is the running proxy's)",
			s[i].var);
		notice(msg);
		explicit_bzero((char *)v, strlen(v));
		unsetenv(s[i].var);
	}
	policy_free(p);
}
