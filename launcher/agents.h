/* Agent descriptors: one YAML file per agent under policies/agents/
 * (docs/launcher.md, "Agents"). A descriptor says which command runs, which
 * host variables it needs (names only; values are copied from the host when
 * set), which policy preset it needs merged in, and how to install it.
 *
 *   command: [claude]                  # or a single string
 *   env: [ANTHROPIC_API_KEY]           # optional
 *   secrets: [ANTHROPIC_API_KEY@api.anthropic.com]  # optional: kept on
 *                                      # the host (docs/secrets.md)
 *   preset: claude                     # policies/claude.yaml, or a path
 *   install:                           # optional
 *     npm: "@anthropic-ai/claude-code"
 *     how: "npm install -g @anthropic-ai/claude-code"
 *     image: agents                    # an image that has it
 *   docker: true                       # optional: as --docker
 *
 * Unknown keys, wrong types and missing required keys are errors with the
 * file's line and column.
 */
#ifndef LAUNCHER_AGENTS_H
#define LAUNCHER_AGENTS_H

#include <stdbool.h>
#include <stddef.h>

#define AGENT_MAX_ARGS 16
#define AGENT_MAX_ENV 32
#define AGENT_ARG_LEN 256
#define AGENT_MAX_SECRETS 8

struct agent {
	char command[AGENT_MAX_ARGS][AGENT_ARG_LEN];
	size_t n_command;
	char env[AGENT_MAX_ENV][64];
	size_t n_env;
	/* VAR@HOST[,HOST...], used as --secret when VAR is set */
	char secrets[AGENT_MAX_SECRETS][512];
	size_t n_secrets;
	char preset[AGENT_ARG_LEN]; /* as written: a name or a path */
	char npm[128], how[AGENT_ARG_LEN], image[64];
	bool docker; /* docker: true -> --docker */
};

enum agent_status {
	AGENT_OK = 0,
	AGENT_SYNTAX,      /* not YAML */
	AGENT_NOT_MAPPING, /* the document (or install:) is not a mapping */
	AGENT_UNKNOWN_KEY,
	AGENT_BAD_VALUE,   /* wrong type, too long, bad variable name */
	AGENT_MISSING,     /* command: or preset: absent */
	AGENT_NOMEM,
};

/* Parses a descriptor. On error sets *line and *col (1-based; 0 when the
 * error has no place) and *why (static). Allocates nothing that outlives
 * the call. */
enum agent_status agent_parse(const char *text, size_t len, struct agent *a,
			      unsigned *line, unsigned *col, const char **why);

/* Is NAME a usable agent name ([a-z0-9_-]{1,32})? */
bool agent_name_valid(const char *name);

/* Finds NAME.yaml: in $SANDBOX_AGENTS_DIR first, then in presets_dir/agents.
 * Returns 0 and fills path, -ENOENT when there is no such descriptor,
 * other -errno (path then names the file that could not be looked at:
 * -EACCES is not "no such agent"). */
int agent_find(const char *name, const char *presets_dir, char *path,
	       size_t pathsz);

/* Loads and parses a descriptor file; on error writes
 * "FILE:LINE:COL: why" to err and returns -EINVAL (-errno on I/O). */
int agent_load(const char *path, struct agent *a, char *err, size_t errsz);

/* Resolves the preset to an absolute policy file: a name is looked up as
 * presets_dir/NAME.yaml, a path (with a '/') relative to the descriptor's
 * directory. */
int agent_preset_path(const struct agent *a, const char *descriptor,
		      const char *presets_dir, char *out, size_t outsz);

/* Is the agent's command there for the guest (whose root is the host's
 * /usr, and which sees the workspace)? A bare name is looked up in the
 * guest's PATH directories under /usr; an absolute path must exist. */
bool agent_installed(const struct agent *a);

#endif
