/* The launch plan: what sandbox-launch starts, with which argv, files and
 * environment, computed from the options and the places found. Data only:
 * nothing here looks at the file system, the environment or starts
 * anything, so it is unit-tested as is (tests/unit/test_launch_plan.c).
 * main.c, the supervisor, finds the inputs and carries the plan out. */
#ifndef LAUNCHER_LAUNCH_PLAN_H
#define LAUNCHER_LAUNCH_PLAN_H

#include <limits.h>
#include <stdbool.h>

#include "launch.h"

/* The guest's forwarders connect to these host ports (guest/guest.h). */
#define PROXY_VSOCK_PORT 1080
#define HTTP_PROXY_VSOCK_PORT 3128
/* The descriptor a daemon inherits to say "ready" on (--ready-fd,
 * common/ready_fd.h); the supervisor passes its pipe there. */
#define PLAN_READY_FD 3

/* Every file and socket of one run. STATE (sockets, removed at exit) and
 * RUN (logs and audit, kept) are the two directories made for it. */
struct launch_paths {
	char ports_dir[PATH_MAX];   /* STATE/ports: the proxy's vsock_P only */
	char vhost_sock[PATH_MAX];  /* STATE/vhost-user.sock (QEMU <-> bridge) */
	char ctl_sock[PATH_MAX];    /* STATE/control.sock (bridge CONNECT) */
	char proxy_ctl[PATH_MAX];   /* STATE/proxy-control.sock */
	char proxy_log[PATH_MAX], vsock_log[PATH_MAX], qemu_log[PATH_MAX];
	char console_log[PATH_MAX];
	char policy_record[PATH_MAX]; /* RUN/policy.txt */
	char audit[PATH_MAX];       /* --audit (relative to cwd), else RUN/ */
};

/* Fill p from the two directories, --audit (NULL: RUN/audit.jsonl) and the
 * current directory (for a relative --audit). Returns 0, or -ENAMETOOLONG
 * with *what naming the path that did not fit. */
int plan_paths(struct launch_paths *p, const char *state, const char *run,
	       const char *audit_opt, const char *cwd, const char **what);

/* The proxy's policy arguments in merge order: each (already absolute)
 * policy file, the approved copy of the repository's policy (repo_copy,
 * or NULL), then each --allow/--deny of o. */
void plan_policy_args(struct strv *a, const char *const *abs_policies,
		      size_t n, const char *repo_copy,
		      const struct launch_opts *o);

/* sandbox-proxy's argv: listeners in p->ports_dir, audit, control socket,
 * readiness on PLAN_READY_FD, the policy arguments pa. */
void plan_proxy_argv(struct strv *a, const char *proxy_bin,
		     const struct launch_paths *p, const struct launch_opts *o,
		     const struct strv *pa, bool verbose);

/* sandbox-vsock's argv: the guest may reach the proxy's two ports only;
 * readiness on PLAN_READY_FD. */
void plan_bridge_argv(struct strv *a, const char *vsock_bin,
		      const struct launch_paths *p, bool verbose);

/* The command's environment in the guest: TERM (tty only) and LANG from
 * here, then each --env NAME=VALUE as given and each --env NAME with its
 * value here. lookup is getenv in the launcher; a NAME it does not know
 * is passed to unset(NAME, arg) and left out. */
void plan_guest_env(struct strv *env, const struct launch_opts *o, bool tty,
		    const char *(*lookup)(const char *name),
		    void (*unset)(const char *name, void *arg), void *arg);

#endif
