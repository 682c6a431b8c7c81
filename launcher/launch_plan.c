/* The launch plan (launch_plan.h): argv, paths and environment as data. */
#include "launch_plan.h"

#include <errno.h>
#include <string.h>

#include "../common/util.h"

static int path_in(char *out, const char *dir, const char *name,
		   const char **what)
{
	if (fmt_buf(out, PATH_MAX, "%s/%s", dir, name)) {
		*what = name;
		return -ENAMETOOLONG;
	}
	return 0;
}

int plan_paths(struct launch_paths *p, const char *state, const char *run,
	       const char *audit_opt, const char *cwd, const char **what)
{
	int r = 0;
	r = r ? r : path_in(p->ports_dir, state, "ports", what);
	r = r ? r : path_in(p->vhost_sock, state, "vhost-user.sock", what);
	r = r ? r : path_in(p->ctl_sock, state, "control.sock", what);
	r = r ? r : path_in(p->proxy_ctl, state, "proxy-control.sock", what);
	r = r ? r : path_in(p->proxy_log, run, "proxy.log", what);
	r = r ? r : path_in(p->vsock_log, run, "vsock.log", what);
	r = r ? r : path_in(p->qemu_log, run, "qemu.log", what);
	r = r ? r : path_in(p->console_log, run, "console.log", what);
	r = r ? r : path_in(p->policy_record, run, "policy.txt", what);
	if (r)
		return r;
	if (!audit_opt)
		return path_in(p->audit, run, "audit.jsonl", what);
	if (audit_opt[0] == '/' ? fmt_buf(p->audit, sizeof(p->audit), "%s",
					  audit_opt)
				: !cwd || fmt_buf(p->audit, sizeof(p->audit),
						  "%s/%s", cwd, audit_opt)) {
		*what = "--audit";
		return -ENAMETOOLONG;
	}
	return 0;
}

void plan_policy_args(struct strv *a, const char *const *abs_policies,
		      size_t n, const char *repo_copy,
		      const struct launch_opts *o)
{
	for (size_t i = 0; i < n; i++) {
		strv_add(a, "--policy");
		strv_add(a, abs_policies[i]);
	}
	/* The approved copy in the run dir, never the workspace file: the
	 * guest can rewrite that one at any time. */
	if (repo_copy) {
		strv_add(a, "--policy");
		strv_add(a, repo_copy);
	}
	for (size_t i = 0; i < o->n_rules; i++) {
		strv_add(a, o->rules[i].allow ? "--allow" : "--deny");
		strv_add(a, o->rules[i].spec);
	}
}

void plan_proxy_argv(struct strv *a, const char *proxy_bin,
		     const struct launch_paths *p, const struct launch_opts *o,
		     const struct strv *pa, bool verbose)
{
	strv_add(a, proxy_bin);
	strv_add(a, "--listen");
	strv_addf(a, "unix:%s/vsock_%d", p->ports_dir, PROXY_VSOCK_PORT);
	strv_add(a, "--http-proxy");
	strv_addf(a, "unix:%s/vsock_%d", p->ports_dir, HTTP_PROXY_VSOCK_PORT);
	strv_add(a, "--audit");
	strv_add(a, p->audit);
	strv_addf(a, "--audit-max-bytes=%u", o->audit_max_bytes);
	strv_addf(a, "--audit-keep=%u", o->audit_keep);
	strv_add(a, "--sandbox");
	strv_add(a, o->name);
	strv_add(a, "--control");
	strv_addf(a, "unix:%s", p->proxy_ctl);
	strv_add(a, "--ready-fd");
	strv_addf(a, "%d", PLAN_READY_FD);
	/* Published ports: the proxy listens and reaches the guest through
	 * the bridge's host-to-guest socket (proxy/inbound.h). */
	strv_add(a, "--guest-connect");
	strv_add(a, p->ctl_sock);
	for (size_t i = 0; i < o->n_publish; i++) {
		strv_add(a, "--publish");
		strv_add(a, o->publish[i]);
	}
	for (size_t i = 0; i < o->n_host_ports; i++) {
		strv_add(a, "--host-port");
		strv_add(a, o->host_ports[i]);
	}
	if (o->resolver) {
		strv_add(a, "--resolver");
		strv_add(a, o->resolver);
	}
	for (size_t i = 0; i < pa->n; i++)
		strv_add(a, pa->v[i]);
	if (pa->failed)
		a->failed = true;
	if (verbose)
		strv_add(a, "--verbose");
}

void plan_bridge_argv(struct strv *a, const char *vsock_bin,
		      const struct launch_paths *p, bool verbose)
{
	strv_add(a, vsock_bin);
	strv_add(a, "--socket");
	strv_add(a, p->vhost_sock);
	strv_add(a, "--dir");
	strv_add(a, p->ports_dir);
	strv_add(a, "--port");
	strv_addf(a, "%d", PROXY_VSOCK_PORT);
	strv_add(a, "--port");
	strv_addf(a, "%d", HTTP_PROXY_VSOCK_PORT);
	strv_add(a, "--listen");
	strv_add(a, p->ctl_sock);
	strv_add(a, "--ready-fd");
	strv_addf(a, "%d", PLAN_READY_FD);
	if (verbose)
		strv_add(a, "--verbose");
}

void plan_guest_env(struct strv *env, const struct launch_opts *o, bool tty,
		    const char *(*lookup)(const char *name),
		    void (*unset)(const char *name, void *arg), void *arg)
{
	const char *term = lookup("TERM"), *lang = lookup("LANG");
	if (tty && term && *term)
		strv_addf(env, "TERM=%s", term);
	if (lang && *lang)
		strv_addf(env, "LANG=%s", lang);
	for (size_t i = 0; i < o->n_env; i++) {
		const char *e = o->env[i];
		if (strchr(e, '=')) {
			strv_add(env, e);
			continue;
		}
		const char *v = lookup(e);
		if (v)
			strv_addf(env, "%s=%s", e, v);
		else if (unset)
			unset(e, arg);
	}
}
