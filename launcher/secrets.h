/* --secret VAR@HOST[,HOST...] (docs/secrets.md): the launcher reads VAR
 * from its own environment, removes it there (so that no child, the
 * proxy included, inherits it), gives the guest a random placeholder of
 * the same shape and hands the real value to the proxy on a pipe the
 * proxy inherits. The value is never in argv, a file, a log or the
 * guest. */
#ifndef LAUNCHER_SECRETS_H
#define LAUNCHER_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct launch_opts;
struct strv;

/* The placeholder for value: the same length and the same prefix style
 * (everything up to the last '-' or '_' in the first half is kept, e.g.
 * "sk-ant-api03-"), every other letter or digit replaced by a random one
 * of its kind; at least SECRET_RANDOM_MIN characters are random (a short
 * value gets a longer placeholder). rnd supplies randomness. Returns the
 * length, or 0 when out is too small. Pure. */
#define SECRET_RANDOM_MIN 20
size_t secret_placeholder_make(const char *value, const uint8_t *rnd,
			       size_t rnd_len, char *out, size_t outsz);

/* An agent descriptor's secrets: each VAR@HOSTS whose VAR is set here and
 * not already given with --secret is added to o's secrets. -1: no memory. */
struct agent;
int agent_secrets(const struct agent *a, struct launch_opts *o);

/* Read, check and hide every --secret value; add each VAR to the
 * variables the guest gets. Returns 0 or -1 with err. */
int launcher_secrets_prepare(struct launch_opts *o, char *err, size_t errsz);
/* A policy file's secret (launcher/policy_secrets.c): prepared like a
 * --secret when var is new; when var came from the policy already its
 * hosts become hosts (comma-separated). 1: var was given by --secret or
 * the agent, which wins (nothing changed); 0; -1 with err (origin names
 * the file). */
int launcher_secret_from_policy(struct launch_opts *o, const char *var,
				const char *hosts, const char *origin,
				char *err, size_t errsz);
/* A policy secret's header: (launcher/policy_secrets.c): the proxy sets
 * header on every request to var's hosts, its value format (NULL:
 * "{value}") with the real value in place of {value}; both checked by
 * the policy loader. Only for a var that came from the policy. 0 or -1. */
int launcher_secret_header(const char *var, const char *header,
			   const char *format);
/* The policy files' secrets (BASE, plus the approved repository copy when
 * repo_copy is not NULL): each merged with the command line's (which
 * wins), skipped with a notice when its variable is not set here.
 * The policy is the --policy files, repo_copy and the --allow/--deny
 * rules, as the proxy gets them. A policy with errors is -1: with
 * show_errors every error is written to stderr (escaped) and err says
 * "(above)", else err quotes the first. Returns 0 or -1 with err. */
int launcher_policy_secrets(struct launch_opts *o, const char *repo_copy,
			    bool show_errors,
			    void (*notice)(const char *msg), char *err,
			    size_t errsz);
/* Joining a running sandbox: the policy's secret variables are not passed
 * (the running proxy holds their placeholders); each one set here is
 * removed from this environment with a notice. */
void launcher_policy_secrets_hide(const struct launch_opts *o,
				  void (*notice)(const char *msg));

/* The placeholder the guest gets for name, or NULL when it is no secret. */
const char *launcher_secret_placeholder(const char *name);
bool launcher_secrets_any(void);

/* The policy inspects a host (`inspect: true`) or all (`inspect: all`): the proxy gets
 * --ca-out/--upstream-ca and the guest the CA even without a secret. */
void launcher_secrets_set_inspecting(bool on);

/* Add --secrets-fd CHILD_FD/--ca-out/--upstream-ca to the proxy's argv a;
 * the secrets are written to a pipe now. Returns the pipe's read end
 * (close-on-exec: spawn the proxy with it moved to child_fd, then close
 * it), -1 with no secrets (--ca-out/--upstream-ca alone when the policy
 * inspects a host), or -2 on error (err). */
int launcher_secrets_proxy_args(struct strv *a, const char *run,
				const char *upstream_ca, int child_fd, char *err,
				size_t errsz);
/* The guest's trust in the sandbox CA (written by the proxy in run):
 * SANDBOX_CA_DER (read and removed by sandbox-init, which installs it)
 * and the CA variables tools read. Returns 0 or -1 with err. */
int launcher_secrets_guest_env(struct strv *env, const char *run, char *err,
			       size_t errsz);

/* "sandbox-launch: notice: MSG" on stderr, whatever -v: a secret skipped
 * or overridden changes what the guest's tools can do. */
void launcher_notice(const char *msg);

#endif
