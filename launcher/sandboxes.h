/* Named sandboxes: the registry under $XDG_STATE_HOME/sandbox/sandboxes/
 * (default ~/.local/state/...), one 0700 directory per sandbox:
 *
 *   meta.json   name, workspace, agent, command, policy files, created,
 *               started, pid of the running launcher, state, and where
 *               its sockets, logs and audit log are
 *   lock        flock()ed by the launcher while the sandbox runs: "running"
 *               is whether that lock is held, so a SIGKILLed launcher
 *               leaves a stopped sandbox, never a stale "running" one
 *   upper.img   the persistent writable layer (ext4), the guest's /dev/vda
 *   upper.root  the root it was made over ("host /usr" or "image PATH,
 *               size N, mtime T"): an overlay upper layer only makes sense
 *               over the lower layer it was made on
 *
 * Removing the directory discards everything but the workspace.
 */
#ifndef LAUNCHER_SANDBOXES_H
#define LAUNCHER_SANDBOXES_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SANDBOX_MAX_LIST 32

struct sandbox_meta {
	char name[33];
	char workspace[PATH_MAX];
	char agent[33];                /* "" for a plain command */
	char command[4096];            /* words joined by spaces, for display */
	/* The command as the user gave it (an agent's name and arguments, or
	 * the words after --), each NUL-terminated: a run without a command
	 * runs it again. */
	char args[4096];
	size_t n_args;
	char policies[SANDBOX_MAX_LIST][PATH_MAX / 4];
	size_t n_policies;
	long long created, started;    /* Unix seconds */
	int pid;                       /* launcher; 0 when stopped */
	char state[16];                /* as last written: running / stopped */
	char state_dir[PATH_MAX];      /* sockets: control.sock for exec */
	char run_dir[PATH_MAX];        /* logs of the latest run */
	char audit[PATH_MAX];          /* audit log of the latest run */
	char proxy_control[PATH_MAX];  /* the proxy's --control socket, running */
};

/* The registry's base directory (created 0700 when create is set). */
int sandboxes_base(char *out, size_t outsz, bool create);
/* BASE/NAME; the directory is created (0700) when create is set. */
int sandbox_dir(const char *name, char *out, size_t outsz, bool create);

/* The default name for a workspace: its base name, sanitised to
 * [a-z0-9_-] and cut, "-" and 6 hex digits of a hash of the whole path,
 * so two checkouts named alike get different sandboxes. */
void sandbox_default_name(const char *workspace, char *out, size_t outsz);

/* Takes the sandbox's lock without waiting: the fd to keep open while it
 * runs (or while rm/prune/reset work on it), -EBUSY when another launcher
 * runs it, -ESTALE when the sandbox was removed meanwhile. */
int sandbox_lock(const char *dir);
/* Is a launcher running it right now (its lock held)? */
bool sandbox_running(const char *dir);

int sandbox_meta_write(const char *dir, const struct sandbox_meta *m);
/* -ENOENT when there is no meta.json, -EINVAL when it is not ours. */
int sandbox_meta_read(const char *dir, struct sandbox_meta *m);

/* A sparse ext4 image of size_mb at path (made at path.new, then renamed),
 * as the invoking user: mkfs.ext4 needs no root. */
int ext4_sparse_create(const char *path, unsigned size_mb, const char *label,
		       char *err, size_t errsz);
/* The writable layer image, created (sparse, ext4) when missing. */
int sandbox_upper_create(const char *dir, unsigned size_mb, char *path,
			 size_t pathsz, char *err, size_t errsz);

/* The root the writable layer was made over, into out: 1, or 0 when
 * none is recorded (a fresh layer, or one older than the record). */
int sandbox_upper_root(const char *dir, char *out, size_t outsz);
int sandbox_upper_root_write(const char *dir, const char *root);
/* Discards the writable layer and makes an empty one (and forgets its
 * root). The caller holds the lock. */
int sandbox_upper_reset(const char *dir, unsigned size_mb, char *err,
			size_t errsz);

/* Removes the sandbox directory and everything in it. */
int sandbox_remove(const char *dir);

/* Connections allowed and denied in an audit log (connect records). */
void sandbox_audit_counts(const char *audit, unsigned long *allowed,
			  unsigned long *denied);

/* JSON string escaping (quotes included) appended at *len. */
int json_append_str(char *buf, size_t size, size_t *len, const char *s);

#endif
