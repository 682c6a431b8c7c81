/* A named sandbox remembers how it was made (docs/launcher.md, "Named
 * sandboxes"): its first run records the settings below in the sandbox's
 * directory (SANDBOX_DIR/settings); a later run that does not give one
 * gets the recorded value, and a run that gives another value is refused
 * with the way out (reset or rm). The root (host /usr or an image) is
 * remembered apart, by its writable layer (upper.root, cmd_run.c).
 *
 * Each setting is one row of remembered_table (remembered.c): its key,
 * the option as typed, how to read it from this run's options, how to
 * compare two values and how to give a run the recorded one. A value is
 * a list of strings (a repeatable option has several; an option not
 * given has none, recorded as "the default").
 *
 * The file is the user's own, in the 0700 registry the guest never sees
 * (not hostile input, so not in parse/); it is still read strictly:
 * unknown keys are errors and values are checked as the options are.
 *
 * The settings file, one line per value ("KEY" alone: the default):
 *
 *   # how sandbox-launch made this sandbox; reset forgets it
 *   memory 512
 *   cpus
 *   policy sha256:3f5a...e1 /home/me/p/a.yaml
 *   policy sha256:9b0c...47 /home/me/p/b.yaml
 *
 * A policy file is pinned by its SHA-256: a run that does not name it
 * reuses it only while its bytes are the recorded ones (a file in the
 * workspace is the guest's to rewrite); naming it again records its
 * bytes as they are now.
 */
#ifndef LAUNCHER_REMEMBERED_H
#define LAUNCHER_REMEMBERED_H

#include <stdbool.h>
#include <stddef.h>

#include "launch.h"

#define REMEMBERED_MAX 16
#define REMEMBERED_FILE "settings"

/* What a row reads and changes: the run's options, and how many of
 * o->policies (the last ones) came from --policy; the others (an
 * agent's preset, the user's policy) are not this sandbox's own. */
struct remembered_ctx {
	struct launch_opts *o;
	size_t n_cli_policies;
};

struct remembered_setting {
	const char *key;    /* in the settings file, `list` and messages */
	const char *option; /* as the user types it, for messages */
	/* This run's value into out (nothing: the option was not given).
	 * Returns 0 or -errno with what was wrong in err. */
	int (*get)(const struct remembered_ctx *c, struct strv *out,
		   char *err, size_t errsz);
	/* Do two values agree? NULL: the same strings in the same order. */
	bool (*same)(const struct strv *a, const struct strv *b);
	/* Give the run the recorded value (not empty; its option was not
	 * given). Returns 0, or -EINVAL (a value this option would refuse)
	 * or another -errno (-ESTALE: what it names changed since) with why
	 * in err. */
	int (*apply)(struct remembered_ctx *c, const struct strv *rec,
		     char *err, size_t errsz);
	/* A recorded value as messages and `list` show it; NULL: as is. */
	const char *(*show)(const char *value);
};

extern const struct remembered_setting remembered_table[];
extern const size_t remembered_count;

/* A record: for each row, whether the file has it and its value. */
struct remembered {
	bool known[REMEMBERED_MAX];
	struct strv val[REMEMBERED_MAX]; /* owned */
};

void remembered_free(struct remembered *r);

/* The settings file's text into r (pure). An unknown key or a malformed
 * line is -EINVAL with "line N: why" in err. */
int remembered_parse(const char *text, struct remembered *r, char *err,
		     size_t errsz);
/* r as the file's text, into a malloc'd *out (pure). -EINVAL when a
 * value cannot be written (a newline in it). */
int remembered_format(const struct remembered *r, char **out);

/* DIR/settings: 0, -ENOENT when there is none, else -errno (err says
 * what, with the path). */
int remembered_read(const char *dir, struct remembered *r, char *err,
		    size_t errsz);

/* The step of a run of the named sandbox NAME (directory dir, its lock
 * held): a setting the run gives is compared with the record, one it does
 * not give takes the recorded value, and the record is written when it is
 * new or lacks a setting. Returns 0, or -EEXIST when options conflict
 * with the record (err names each and the way out), or another -errno
 * with err set. */
int remembered_use(const char *dir, const char *name,
		   struct remembered_ctx *c, char *err, size_t errsz);

/* A recorded value of row as shown to the user (a policy file's path
 * without its hash). */
const char *remembered_show(size_t row, const char *value);

/* r as a JSON object {"KEY": [VALUE, ...], ...} appended at *len (for
 * `list --json`); 0 or -ENAMETOOLONG. */
int remembered_json(const struct remembered *r, char *buf, size_t size,
		    size_t *len);

/* remembered_use for the run holding rg (its lock taken), and the
 * policy files taken from the record added to rg's meta (written when
 * the run starts). */
struct run_registry;
int remembered_for_run(struct run_registry *rg, struct remembered_ctx *c,
		       char *err, size_t errsz);

/* Forget how it was made (reset): 0 or -errno; no record is 0. */
int remembered_forget(const char *dir);

#endif
