/* Joining a running named sandbox (`run --name X -- CMD` while X runs):
 * CMD runs in X as `exec` would, in X's workspace under X's policy. An
 * option that would have made a new run different (another workspace,
 * other policy files or rules, another image or VM size, no repository
 * policy) cannot apply to a sandbox that is already up, and dropping it
 * silently could run CMD with wider access than asked for. So a join
 * with such options is refused, naming them and the ways out. */
#include "cmds.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

/* The running sandbox's policy files, without its repository policy
 * copy (in its run directory): is p among them? */
static bool has_policy(const struct sandbox_meta *m, const char *p)
{
	for (size_t i = 0; i < m->n_policies; i++)
		if (!strcmp(m->policies[i], p))
			return true;
	return false;
}

static bool is_repo_copy(const struct sandbox_meta *m, const char *p)
{
	size_t n = strlen(m->run_dir);
	return n && !strncmp(p, m->run_dir, n) && p[n] == '/';
}

bool join_refused(const struct sandbox_meta *m, const struct launch_opts *o,
		  const char *workspace, char *err, size_t errsz)
{
	char diff[1024] = "";
	size_t dl = 0;
#define DIFFERS(...) fmt_append(diff, sizeof(diff), &dl, "\n  " __VA_ARGS__)
	if (strcmp(m->workspace, workspace))
		DIFFERS("--workspace %s (it runs in %s)", workspace,
			m->workspace);
	size_t mine = 0;
	for (size_t i = 0; i < o->n_policies; i++) {
		char abs[PATH_MAX];
		const char *p = realpath(o->policies[i], abs) ? abs
							      : o->policies[i];
		mine++;
		if (!has_policy(m, p))
			DIFFERS("--policy %s (not among its policy files)", p);
	}
	size_t theirs = 0;
	for (size_t i = 0; i < m->n_policies; i++)
		theirs += !is_repo_copy(m, m->policies[i]);
	if (theirs > mine)
		DIFFERS("fewer policy files than it runs with (%zu, not %zu)",
			mine, theirs);
	for (size_t i = 0; i < o->n_rules; i++)
		DIFFERS("--%s %s (its command-line rules are fixed at start)",
			o->rules[i].allow ? "allow" : "deny", o->rules[i].spec);
	if (o->image)
		DIFFERS("--image %s", o->image);
	if (o->memory_mb)
		DIFFERS("--memory %u", o->memory_mb);
	if (o->cpus)
		DIFFERS("--cpus %u", o->cpus);
	if (o->resolver)
		DIFFERS("--resolver %s", o->resolver);
	if (o->audit)
		DIFFERS("--audit %s", o->audit);
	for (size_t i = 0; i < o->n_publish; i++)
		DIFFERS("--publish %s (sandbox-launch port %s add %s "
			"publishes it on the running sandbox)",
			o->publish[i], m->name, o->publish[i]);
	for (size_t i = 0; i < o->n_host_ports; i++)
		DIFFERS("--host-port %s (its host ports are fixed at start)",
			o->host_ports[i]);
	if (o->no_repo_policy)
		DIFFERS("--no-repo-policy (it was started with the "
			"repository's policy, if any)");
#undef DIFFERS
	if (!dl)
		return false;
	fmt_buf(err, errsz,
		"sandbox %s is running, and this command would join it "
		"(as exec does) without these options, which only apply "
		"when a sandbox starts:%s\n"
		"  Run the command without them to join it as it is, stop it "
		"first (sandbox-launch stop %s), or pick another --name.",
		m->name, diff, m->name);
	return true;
}
