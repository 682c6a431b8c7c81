/* sandbox-launch's subcommands and the named-sandbox parts of its run path.
 *
 *   cmd_run.c    subcommand dispatch, agents on the run path, the registry
 *                bookkeeping of a run (lock, meta.json, writable layer)
 *   cmd_exec.c   exec: a command in a running sandbox (and re-attach)
 *   cmd_list.c   list [--json]
 *   cmd_stop.c   stop, rm, prune, reset
 *   cmd_runs.c   runs [prune]: the kept run directories
 *   cmd_policy.c policy: live changes through the proxy's control socket
 */
#ifndef LAUNCHER_CMDS_H
#define LAUNCHER_CMDS_H

#include <stdbool.h>

#include "launch.h"
#include "sandboxes.h"

/* argv[1] names a subcommand other than run: runs it and returns its exit
 * status. "run" is shifted away (*named set); otherwise returns -1 and the
 * caller goes on with the run path. */
int subcommand_dispatch(int *argc, char ***argv, bool *named);

/* The run path's agent: when the command (not after "--") names an agent
 * descriptor, replaces o->cmd by its command (plus the given arguments),
 * adds its preset to the policies and its variables to the environment.
 * Returns 1 (agent used, name in agent), 0 (not an agent), or a negative
 * errno after writing why to err: -ENOPKG when the agent is not
 * installed, -EACCES (or another) when its descriptor cannot be looked
 * at, -EINVAL for a bad descriptor, -ENOENT for a missing preset. */
int agent_apply(struct launch_opts *o, char **argv,
		char *agent, size_t agentsz, char *err, size_t errsz);

/* Was --name given among the options before the command? */
bool name_given(char **argv, const struct launch_opts *o);
/* The image a named sandbox's writable layer was made over (its
 * upper.root), into out: 1, or 0 when it was made over the host's /usr,
 * has no layer yet, does not exist, or its image file is gone. */
int sandbox_recorded_image(const char *name, char *out, size_t outsz);

struct run_registry {
	bool active;
	char dir[PATH_MAX];
	int lock_fd;
	char upper[PATH_MAX];
	char root[PATH_MAX + 128]; /* this run's root, as in upper.root */
	struct sandbox_meta meta;
};

/* Takes NAME's lock and writes its meta.json (state running). -EBUSY:
 * it runs already (meta filled from its meta.json, for exec). */
int registry_begin(struct run_registry *rg, const char *name,
		   const char *workspace, const char *agent,
		   const struct launch_opts *o, char *err, size_t errsz);
/* The writable layer image, created on first use; refused (-EXDEV) when
 * it was made over another root than this run's. */
int registry_upper(struct run_registry *rg, char *err, size_t errsz);
/* Records where this run's sockets, logs and audit log are (meta.json,
 * for exec, list and policy): 0 or -errno. */
int registry_started(struct run_registry *rg, const char *state_dir,
		     const char *run_dir, const char *audit);
/* Marks it stopped and releases the lock; safe to call twice. Returns
 * meta.json's write result (the lock is released either way, and "running"
 * is whether the lock is held, so a failure only leaves a stale pid). */
int registry_end(struct run_registry *rg);

/* Runs cmd in the running sandbox m (its bridge's control socket):
 * relays stdio like the main command, as root in the guest when root.
 * Returns the exit status to use. */
int exec_in(const struct sandbox_meta *m, char *const cmd[],
	    const char *const env[], size_t envc, bool root, int sigfd);

/* Would joining the running sandbox m drop options of o (launcher/
 * join.c)? Then true, with the options that differ and the way out in
 * err. */
bool join_refused(const struct sandbox_meta *m, const struct launch_opts *o,
		  const char *workspace, char *err, size_t errsz);

int cmd_exec(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_reset(int argc, char **argv);
int cmd_runs(int argc, char **argv);

/* The writable layer's size (sparse: only what is written takes space). */
#define SANDBOX_UPPER_MB 8192
int cmd_policy(int argc, char **argv);
/* cmd_port.c: published ports of a running sandbox */
int cmd_port(int argc, char **argv);

#endif
