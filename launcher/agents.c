/* Agent descriptors (agents.h): a strict libyaml parser and the lookups
 * around it. The parser follows the project's convention: a status, a
 * static reason and a place, nothing printed. */
#include "agents.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "../common/util.h"
#include "launch.h"

struct ctx {
	yaml_document_t *doc;
	struct agent *a;
	unsigned *line, *col;
	const char **why;
};

static enum agent_status err_at(struct ctx *c, const yaml_node_t *n,
				enum agent_status st, const char *why)
{
	*c->line = (unsigned)n->start_mark.line + 1;
	*c->col = (unsigned)n->start_mark.column + 1;
	*c->why = why;
	return st;
}

static bool is_str(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE;
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static enum agent_status copy_str(struct ctx *c, const yaml_node_t *n,
				  char *out, size_t size, const char *what)
{
	if (!is_str(n))
		return err_at(c, n, AGENT_BAD_VALUE, what);
	if (n->data.scalar.length == 0 || n->data.scalar.length >= size ||
	    memchr(sval(n), '\0', n->data.scalar.length))
		return err_at(c, n, AGENT_BAD_VALUE, what);
	memcpy(out, sval(n), n->data.scalar.length + 1);
	return AGENT_OK;
}

static bool env_name_ok(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* Host tokens that reach far beyond what an agent needs (every repository
 * of the user, every cloud resource): a descriptor may not pass them
 * implicitly. The user passes one with --env NAME when they mean to, and
 * the secrets mechanism will replace that. */
static bool broad_token(const char *s)
{
	static const char *const broad[] = {
		"GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN",
		"GITHUB_ENTERPRISE_TOKEN", "GITLAB_TOKEN", "AWS_ACCESS_KEY_ID",
		"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"GOOGLE_APPLICATION_CREDENTIALS", "AZURE_CLIENT_SECRET",
		"NPM_TOKEN", "SSH_AUTH_SOCK"};
	for (size_t i = 0; i < ARRAY_SIZE(broad); i++)
		if (!strcmp(s, broad[i]))
			return true;
	return false;
}

/* A string or a sequence of strings, into a fixed array. */
static enum agent_status str_list(struct ctx *c, yaml_node_t *n, char *arr,
				  size_t width, size_t max, size_t *count,
				  const char *what)
{
	*count = 0;
	if (is_str(n))
		return copy_str(c, n, arr, width, what) ? AGENT_BAD_VALUE
		       : (*count = 1, AGENT_OK);
	if (n->type != YAML_SEQUENCE_NODE)
		return err_at(c, n, AGENT_BAD_VALUE, what);
	for (yaml_node_item_t *i = n->data.sequence.items.start;
	     i < n->data.sequence.items.top; i++) {
		yaml_node_t *e = yaml_document_get_node(c->doc, *i);
		if (*count == max)
			return err_at(c, e, AGENT_BAD_VALUE, "too many items");
		enum agent_status st =
			copy_str(c, e, arr + *count * width, width, what);
		if (st)
			return st;
		(*count)++;
	}
	return AGENT_OK;
}

static enum agent_status parse_install(struct ctx *c, yaml_node_t *m)
{
	if (m->type != YAML_MAPPING_NODE)
		return err_at(c, m, AGENT_NOT_MAPPING,
			      "install: must be a mapping (npm, how, image)");
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
	     p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		enum agent_status st;
		if (!is_str(k))
			return err_at(c, k, AGENT_UNKNOWN_KEY, "keys are strings");
		if (!strcmp(sval(k), "npm"))
			st = copy_str(c, v, c->a->npm, sizeof(c->a->npm),
				      "install.npm: a package name");
		else if (!strcmp(sval(k), "how"))
			st = copy_str(c, v, c->a->how, sizeof(c->a->how),
				      "install.how: one line of instructions");
		else if (!strcmp(sval(k), "image"))
			st = copy_str(c, v, c->a->image, sizeof(c->a->image),
				      "install.image: an image name");
		else
			return err_at(c, k, AGENT_UNKNOWN_KEY,
				      "unknown key in install: (npm, how, image)");
		if (st)
			return st;
		if (strchr(c->a->how, '\n'))
			return err_at(c, v, AGENT_BAD_VALUE,
				      "install.how: one line of instructions");
	}
	return AGENT_OK;
}

static enum agent_status parse_root(struct ctx *c, yaml_node_t *root)
{
	if (!root)
		return *c->why = "empty file: expected command: and preset:",
		       AGENT_MISSING;
	if (root->type != YAML_MAPPING_NODE)
		return err_at(c, root, AGENT_NOT_MAPPING,
			      "expected a mapping (command, env, preset, install)");
	bool seen_cmd = false, seen_preset = false;
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
	     p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
		enum agent_status st;
		if (!is_str(k))
			return err_at(c, k, AGENT_UNKNOWN_KEY, "keys are strings");
		const char *key = sval(k);
		if (!strcmp(key, "command")) {
			st = str_list(c, v, &c->a->command[0][0], AGENT_ARG_LEN,
				      AGENT_MAX_ARGS, &c->a->n_command,
				      "command: a string or a list of strings");
			if (!st && c->a->n_command == 0)
				return err_at(c, v, AGENT_BAD_VALUE,
					      "command: must not be empty");
			seen_cmd = true;
		} else if (!strcmp(key, "env")) {
			st = str_list(c, v, &c->a->env[0][0],
				      sizeof(c->a->env[0]), AGENT_MAX_ENV,
				      &c->a->n_env,
				      "env: a list of variable names");
			for (size_t i = 0; !st && i < c->a->n_env; i++)
				if (!env_name_ok(c->a->env[i]))
					return err_at(c, v, AGENT_BAD_VALUE,
						      "env: names only (letters, "
						      "digits, _), no values");
				else if (broad_token(c->a->env[i]))
					return err_at(c, v, AGENT_BAD_VALUE,
						      "env: a broad host token "
						      "(GH_TOKEN, GITHUB_TOKEN, "
						      "cloud keys) is never passed "
						      "implicitly; pass it with "
						      "--env NAME when needed");
		} else if (!strcmp(key, "secrets")) {
			/* VAR@HOST[,HOST...]: when VAR is set on the host it
			 * is a --secret (docs/secrets.md): the guest gets a
			 * placeholder. A broad token stays opt-in here too. */
			st = str_list(c, v, &c->a->secrets[0][0],
				      sizeof(c->a->secrets[0]),
				      AGENT_MAX_SECRETS, &c->a->n_secrets,
				      "secrets: a list of VAR@HOST[,HOST...]");
			for (size_t i = 0; !st && i < c->a->n_secrets; i++) {
				char var[64];
				fmt_buf(var, sizeof(var), "%.*s",
					(int)strcspn(c->a->secrets[i], "@"),
					c->a->secrets[i]);
				if (!launch_secret_valid(c->a->secrets[i]))
					return err_at(c, v, AGENT_BAD_VALUE,
						      "secrets: expected "
						      "VAR@HOST[,HOST...]");
				if (broad_token(var))
					return err_at(c, v, AGENT_BAD_VALUE,
						      "secrets: a broad host "
						      "token is never used "
						      "implicitly; pass it with "
						      "--secret VAR@HOST");
			}
		} else if (!strcmp(key, "preset")) {
			st = copy_str(c, v, c->a->preset, sizeof(c->a->preset),
				      "preset: a preset name or a file");
			seen_preset = true;
		} else if (!strcmp(key, "install")) {
			st = parse_install(c, v);
		} else if (!strcmp(key, "docker")) {
			/* YAML 1.2 core booleans only: no yes/on. */
			if (!is_str(v) || (strcmp(sval(v), "true") &&
					   strcmp(sval(v), "false")))
				return err_at(c, v, AGENT_BAD_VALUE,
					      "docker: true or false");
			c->a->docker = !strcmp(sval(v), "true");
			st = AGENT_OK;
		} else {
			return err_at(c, k, AGENT_UNKNOWN_KEY,
				      "unknown key (command, env, secrets, "
				      "preset, install, docker)");
		}
		if (st)
			return st;
	}
	if (!seen_cmd || !seen_preset)
		return err_at(c, root, AGENT_MISSING,
			      seen_cmd ? "preset: is missing"
				       : "command: is missing");
	return AGENT_OK;
}

enum agent_status agent_parse(const char *text, size_t len, struct agent *a,
			      unsigned *line, unsigned *col, const char **why)
{
	memset(a, 0, sizeof(*a));
	*line = *col = 0;
	*why = "";
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser))
		return *why = "out of memory", AGENT_NOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		*line = (unsigned)parser.problem_mark.line + 1;
		*col = (unsigned)parser.problem_mark.column + 1;
		*why = parser.problem ? parser.problem : "not valid YAML";
		enum agent_status st = parser.error == YAML_MEMORY_ERROR
					       ? AGENT_NOMEM
					       : AGENT_SYNTAX;
		yaml_parser_delete(&parser);
		return st;
	}
	struct ctx c = {.doc = &doc, .a = a, .line = line, .col = col,
			.why = why};
	enum agent_status st = parse_root(&c, yaml_document_get_root_node(&doc));
	/* One document per file: a second one would be silently ignored. */
	if (st == AGENT_OK) {
		yaml_document_t more;
		if (yaml_parser_load(&parser, &more)) {
			yaml_node_t *r = yaml_document_get_root_node(&more);
			if (r)
				st = err_at(&c, r, AGENT_SYNTAX,
					    "only one YAML document per file");
			yaml_document_delete(&more);
		} else {
			*line = (unsigned)parser.problem_mark.line + 1;
			*col = (unsigned)parser.problem_mark.column + 1;
			*why = parser.problem ? parser.problem : "not valid YAML";
			st = AGENT_SYNTAX;
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (st)
		memset(a, 0, sizeof(*a));
	return st;
}

bool agent_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

/* 0 when the file is there, -ENOENT when it is not, else why we cannot
 * tell (EACCES on a directory on the way): not the same as "none". */
static int descriptor_there(const char *path)
{
	return access(path, F_OK) == 0 ? 0 : errno == ENOENT ? -ENOENT : -errno;
}

int agent_find(const char *name, const char *presets_dir, char *path,
	       size_t pathsz)
{
	if (!agent_name_valid(name))
		return -ENOENT;
	const char *env = getenv("SANDBOX_AGENTS_DIR");
	int r;
	if (env && *env) {
		if (fmt_buf(path, pathsz, "%s/%s.yaml", env, name))
			return -ENAMETOOLONG;
		if ((r = descriptor_there(path)) != -ENOENT)
			return r;
	}
	if (!presets_dir)
		return -ENOENT;
	if (fmt_buf(path, pathsz, "%s/agents/%s.yaml", presets_dir, name))
		return -ENAMETOOLONG;
	return descriptor_there(path);
}

int agent_load(const char *path, struct agent *a, char *err, size_t errsz)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_file(path, 1u << 20, &text, &len);
	if (r) {
		fmt_buf(err, errsz, "%s: %s", path, strerror(-r));
		return r;
	}
	unsigned line, col;
	const char *why;
	if (agent_parse(text, len, a, &line, &col, &why) == AGENT_OK)
		return 0;
	if (line)
		fmt_buf(err, errsz, "%s:%u:%u: %s", path, line, col, why);
	else
		fmt_buf(err, errsz, "%s: %s", path, why);
	return -EINVAL;
}

int agent_preset_path(const struct agent *a, const char *descriptor,
		      const char *presets_dir, char *out, size_t outsz)
{
	char p[PATH_MAX];
	if (strchr(a->preset, '/')) {
		const char *slash = strrchr(descriptor, '/');
		int dl = slash ? (int)(slash - descriptor) : 1;
		if (a->preset[0] == '/') {
			if (fmt_buf(p, sizeof(p), "%s", a->preset))
				return -ENAMETOOLONG;
		} else if (fmt_buf(p, sizeof(p), "%.*s/%s", dl,
				   slash ? descriptor : ".", a->preset)) {
			return -ENAMETOOLONG;
		}
	} else {
		if (!presets_dir ||
		    fmt_buf(p, sizeof(p), "%s/%s.yaml", presets_dir, a->preset))
			return -ENAMETOOLONG;
	}
	if (!realpath(p, out) || strlen(out) >= outsz)
		return -ENOENT;
	return 0;
}

bool agent_installed(const struct agent *a)
{
	const char *cmd = a->command[0];
	if (cmd[0] == '/')
		return access(cmd, X_OK) == 0;
	/* The guest's PATH (guest/spawn.c), all of it under the host's /usr
	 * since /bin is a link into /usr there. */
	static const char *const dirs[] = {"/usr/local/bin", "/usr/bin",
					   "/usr/local/sbin", "/usr/sbin"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		char p[PATH_MAX];
		if (fmt_buf(p, sizeof(p), "%s/%s", dirs[i], cmd) == 0 &&
		    access(p, X_OK) == 0)
			return true;
	}
	return false;
}
