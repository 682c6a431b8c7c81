/* Trust for a repository's own policy file (.sandbox/policy.yaml).
 *
 * A cloned repository must not be able to grant its agent network access
 * silently. The host reads the file from the workspace before the guest
 * boots, exactly once, into memory; those bytes are what is hashed, shown,
 * approved and copied into the run dir, and the proxy is given only the
 * copy. The agent may rewrite the workspace file at any time afterwards:
 * nothing re-reads it (no TOCTOU), and a changed file has a new hash that
 * needs approval again on the next launch.
 *
 * A file that only narrows (policy_diff_compute finds nothing) needs no
 * approval. One that widens needs an approval of its effect: recorded for
 * its SHA-256 together with every widening that was shown (the effect
 * against the BASE of that run: user policy, presets, agent), given
 * interactively (the diff is shown, default No) or by assume_yes
 * (--trust). A later run with the same bytes is approved only while all
 * of its widenings are among the recorded ones; when the BASE changed so
 * that the file now widens more (the user added a deny the file's allow
 * overrides), it is asked again with the new diff. Approvals live in
 * $XDG_CONFIG_HOME/sandbox/trusted/<sha256> (default
 * ~/.config/sandbox/trusted/), one small file each, with the workspace,
 * time and the approved widenings.
 */
#ifndef LAUNCHER_TRUST_H
#define LAUNCHER_TRUST_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define TRUST_REPO_POLICY ".sandbox/policy.yaml"
#define TRUST_MAX_BYTES (1 << 20)

struct trust_opts {
	const char *workspace;         /* absolute host path of the workspace */
	const char *const *base_files; /* user policy, agent preset file, ... */
	size_t n_base;
	const char *preset_dir;        /* where extends: finds presets */
	const char *run_dir;           /* the approved copy is written here */
	const char *trust_dir;         /* NULL: the XDG default (above) */
	bool assume_yes;               /* --trust */
	FILE *tty_in, *tty_out;        /* both NULL: not interactive */
	const int *sigfd;              /* a signalfd the caller reads, or
					* NULL: when it becomes readable the
					* check stops with -EINTR */
};

struct trust_result {
	bool present;        /* the workspace has .sandbox/policy.yaml */
	bool widens;         /* it widens the base policy */
	bool approved_now;   /* approval recorded by this call */
	char sha256[65];     /* hex, when present */
	char copy_path[PATH_MAX]; /* give this to the proxy (--policy), last */
};

/* The whole check. Returns 0 when the launch may go on: res->present says
 * whether to pass res->copy_path to sandbox-proxy. Otherwise a negative
 * errno and one line in err (no newline) naming the file and what to do:
 *   -EACCES  widening and not approved (declined, or not interactive)
 *   -ELOOP   .sandbox or policy.yaml is a symbolic link
 *   -EINVAL  not a regular file, or the policy has errors (first shown)
 *   -EFBIG   larger than TRUST_MAX_BYTES, or more rules than a repository
 *            policy may have
 *   -EINTR   a signal arrived on o->sigfd (err: "interrupted")
 *   other    I/O errors. */
int trust_check_repo_policy(const struct trust_opts *o,
			    struct trust_result *res, char *err, size_t errsz);

/* That check for a run (trust_run.c): BASE is o's policy files (made
 * absolute), presets from the shared default, the prompt on the terminal
 * when stdin and stderr are both one. Returns as trust_check_repo_policy
 * (res cleared on error). */
struct launch_opts;
int trust_for_run(const struct launch_opts *o, const char *workspace,
		  const char *run_dir, const int *sigfd,
		  struct trust_result *res, char *err, size_t errsz);

/* Pieces, for tests and for a future `sandbox-launch trust` command. */

/* Read <workspace>/.sandbox/policy.yaml without following symlinks.
 * 0 with *data NULL when there is none; *data is malloc'd, NUL-ended. */
int trust_read_repo_policy(const char *workspace, char **data, size_t *len,
			   char *err, size_t errsz);
void trust_sha256_hex(const void *data, size_t len, char out[65]);
/* The trust dir in use (o_dir, else $XDG_CONFIG_HOME/sandbox/trusted,
 * else $HOME/.config/sandbox/trusted). Returns 0 or -ENAMETOOLONG/-ENOENT. */
int trust_dir_path(const char *o_dir, char *out, size_t outsz);
struct policy_diff;
enum {
	TRUST_NOT_APPROVED = 0,      /* no approval for these bytes */
	TRUST_APPROVED = 1,          /* approved, and the effect is within */
	TRUST_APPROVED_NARROWER = 2, /* approved for less than it does now */
};
/* The state of the approval of the file sha256 for the effect d, or
 * -ENOMEM. */
int trust_approval_state(const char *dir, const char *sha256,
			 const struct policy_diff *d);
bool trust_is_approved(const char *dir, const char *sha256,
		       const struct policy_diff *d);
int trust_record(const char *dir, const char *sha256, const char *workspace,
		 const struct policy_diff *d);

#endif
