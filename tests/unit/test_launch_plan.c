/* sandbox-launch's launch plan (launcher/launch_plan.h): what it starts,
 * with which argv, paths and environment, without starting anything. */
#include <errno.h>
#include <string.h>

#include "../../launcher/launch_plan.h"
#include "tap.h"

static const char *after(const struct strv *a, const char *opt, int nth)
{
	for (size_t i = 0; i + 1 < a->n; i++)
		if (!strcmp(a->v[i], opt) && nth-- == 0)
			return a->v[i + 1];
	return "";
}

static int count(const struct strv *a, const char *s)
{
	int n = 0;
	for (size_t i = 0; i < a->n; i++)
		n += !strcmp(a->v[i], s);
	return n;
}

static const char *fake_env(const char *name)
{
	if (!strcmp(name, "TERM"))
		return "xterm";
	if (!strcmp(name, "LANG"))
		return "C.UTF-8";
	if (!strcmp(name, "TOKEN"))
		return "s3cret";
	return NULL;
}

static char unset_seen[64];
static void note_unset(const char *name, void *arg)
{
	(*(int *)arg)++;
	strncpy(unset_seen, name, sizeof(unset_seen) - 1);
}

int main(void)
{
	struct launch_paths p;
	const char *what = "";
	is_int(plan_paths(&p, "/st", "/run/r1", NULL, "/here", &what), 0,
	       "paths from the two directories");
	is_str(p.ports_dir, "/st/ports", "ports dir in STATE");
	is_str(p.vhost_sock, "/st/vhost-user.sock", "vhost-user socket");
	is_str(p.ctl_sock, "/st/control.sock", "bridge CONNECT socket");
	is_str(p.proxy_ctl, "/st/proxy-control.sock", "proxy control socket");
	is_str(p.proxy_log, "/run/r1/proxy.log", "logs in RUN");
	is_str(p.console_log, "/run/r1/console.log", "console log in RUN");
	is_str(p.policy_record, "/run/r1/policy.txt", "policy record in RUN");
	is_str(p.audit, "/run/r1/audit.jsonl", "default audit log in RUN");
	plan_paths(&p, "/st", "/run/r1", "a/log.jsonl", "/here", &what);
	is_str(p.audit, "/here/a/log.jsonl", "relative --audit from cwd");
	plan_paths(&p, "/st", "/run/r1", "/abs.jsonl", "/here", &what);
	is_str(p.audit, "/abs.jsonl", "absolute --audit as given");
	is_int(plan_paths(&p, "/st", "/run/r1", "rel", NULL, &what),
	       -ENAMETOOLONG, "relative --audit without a cwd fails");
	is_str(what, "--audit", "... naming --audit");
	char longdir[PATH_MAX];
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	is_int(plan_paths(&p, longdir, "/run", NULL, "/", &what),
	       -ENAMETOOLONG, "a state dir too long fails");
	is_str(what, "ports", "... naming the first path that does not fit");
	plan_paths(&p, "/st", "/run/r1", NULL, "/here", &what);

	struct launch_rule rules[] = {{.allow = true, .spec = "a.example"},
				      {.allow = false, .spec = "b.example"}};
	struct launch_opts o = {.rules = rules, .n_rules = 2,
				.name = "box", .audit_max_bytes = 100,
				.audit_keep = 3};
	const char *pol[] = {"/p/one.yaml", "/p/two.yaml"};
	struct strv pa = {0};
	plan_policy_args(&pa, pol, 2, "/run/r1/repo-policy.yaml", &o);
	ok(!pa.failed && pa.n == 10, "policy args: 3 files, 2 rules (%zu)",
	   pa.n);
	is_str(pa.v[1], "/p/one.yaml", "files first, in order");
	is_str(pa.v[3], "/p/two.yaml", "second file");
	is_str(pa.v[5], "/run/r1/repo-policy.yaml",
	       "the approved repository copy after the files");
	is_str(pa.v[6], "--allow", "then --allow");
	is_str(pa.v[9], "b.example", "then --deny, in order");

	struct strv a = {0};
	plan_proxy_argv(&a, "/bin/sandbox-proxy", &p, &o, &pa, false);
	ok(!a.failed, "proxy argv built");
	is_str(a.v[0], "/bin/sandbox-proxy", "proxy binary first");
	is_str(after(&a, "--listen", 0), "unix:/st/ports/vsock_1080",
	       "transparent listener in the ports dir");
	is_str(after(&a, "--http-proxy", 0), "unix:/st/ports/vsock_3128",
	       "HTTP proxy listener in the ports dir");
	is_str(after(&a, "--control", 0), "unix:/st/proxy-control.sock",
	       "control socket outside the ports dir");
	is_str(after(&a, "--sandbox", 0), "box", "sandbox name");
	is_str(after(&a, "--ready-fd", 0), "3",
	       "readiness on the inherited descriptor 3");
	is_int(count(&a, "--audit-max-bytes=100"), 1, "rotation size");
	is_int(count(&a, "--audit-keep=3"), 1, "rotation count");
	is_int(count(&a, "--policy"), 3, "every policy file passed");
	is_int(count(&a, "--verbose"), 0, "not verbose");
	is_int(count(&a, "--resolver"), 0, "no resolver unless asked");
	is_str(after(&a, "--guest-connect", 0), "/st/control.sock",
	       "published ports reach the guest through the CONNECT socket");
	is_int(count(&a, "--publish"), 0, "nothing published unless asked");
	is_int(count(&a, "--host-port"), 0, "no host port unless asked");
	strv_free(&a);
	const char *pub[] = {"8080:8000"}, *hps[] = {"5432", "6379"};
	o.publish = pub;
	o.n_publish = 1;
	o.host_ports = hps;
	o.n_host_ports = 2;
	plan_proxy_argv(&a, "/bin/sandbox-proxy", &p, &o, &pa, false);
	is_str(after(&a, "--publish", 0), "8080:8000", "-p passed on");
	is_str(after(&a, "--host-port", 1), "6379", "--host-port passed on");
	o.publish = NULL;
	o.n_publish = 0;
	o.host_ports = NULL;
	o.n_host_ports = 0;
	strv_free(&a);
	o.resolver = "127.0.0.1:53";
	plan_proxy_argv(&a, "/bin/sandbox-proxy", &p, &o, &pa, true);
	is_str(after(&a, "--resolver", 0), "127.0.0.1:53", "--resolver");
	is_int(count(&a, "--verbose"), 1, "--verbose passed on");
	strv_free(&a);
	strv_free(&pa);

	plan_bridge_argv(&a, "/bin/sandbox-vsock", &p, false);
	ok(!a.failed, "bridge argv built");
	is_str(a.v[0], "/bin/sandbox-vsock", "bridge binary first");
	is_str(after(&a, "--socket", 0), "/st/vhost-user.sock",
	       "vhost-user socket");
	is_str(after(&a, "--dir", 0), "/st/ports",
	       "the connector's directory is the ports dir only");
	is_int(count(&a, "--port"), 2, "exactly two ports reachable");
	is_str(after(&a, "--port", 0), "1080", "the proxy's port");
	is_str(after(&a, "--port", 1), "3128", "the HTTP proxy's port");
	is_str(after(&a, "--listen", 0), "/st/control.sock", "CONNECT socket");
	is_str(after(&a, "--ready-fd", 0), "3",
	       "the bridge's readiness on descriptor 3 too");
	strv_free(&a);

	const char *env[] = {"A=1", "TOKEN", "MISSING"};
	o.env = env;
	o.n_env = 3;
	int unset = 0;
	struct strv e = {0};
	plan_guest_env(&e, &o, false, fake_env, note_unset, &unset);
	ok(!e.failed && e.n == 3, "env: LANG, A, TOKEN (%zu)", e.n);
	is_str(e.v[0], "LANG=C.UTF-8", "LANG passed");
	is_str(e.v[1], "A=1", "NAME=VALUE as given");
	is_str(e.v[2], "TOKEN=s3cret", "NAME takes its value here");
	is_int(unset, 1, "a NAME not set here is reported");
	is_str(unset_seen, "MISSING", "... by name");
	strv_free(&e);
	plan_guest_env(&e, &o, true, fake_env, NULL, NULL);
	is_str(e.v[0], "TERM=xterm", "TERM on a tty only");
	strv_free(&e);
	return done_testing();
}
