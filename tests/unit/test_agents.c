/* Agent descriptors: the strict parser (errors with line:col), lookups,
 * and the descriptors shipped in policies/agents/. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../launcher/agents.h"
#include "tap.h"

static struct agent a;

static enum agent_status parse(const char *text, unsigned *line,
			       unsigned *col, const char **why)
{
	return agent_parse(text, strlen(text), &a, line, col, why);
}

static void good(void)
{
	unsigned l, c;
	const char *why;
	is_int(parse("command: [claude, --flag]\n"
		     "env: [ANTHROPIC_API_KEY, X_1]\n"
		     "preset: claude\n"
		     "install:\n  npm: \"@anthropic-ai/claude-code\"\n"
		     "  how: npm install -g @anthropic-ai/claude-code\n"
		     "  image: agents\n",
		     &l, &c, &why),
	       AGENT_OK, "full descriptor parses");
	is_int((int)a.n_command, 2, "two command words");
	is_str(a.command[1], "--flag", "second word");
	is_int((int)a.n_env, 2, "two env names");
	is_str(a.env[0], "ANTHROPIC_API_KEY", "env name");
	is_str(a.preset, "claude", "preset");
	is_str(a.npm, "@anthropic-ai/claude-code", "npm package");
	is_str(a.image, "agents", "image");
	is_int(parse("command: /w/agent.sh\npreset: ./p.yaml\n", &l, &c, &why),
	       AGENT_OK, "command as one string, no env, no install");
	is_int((int)a.n_command, 1, "one word");
}

struct bad {
	const char *text;
	enum agent_status st;
	unsigned line, col;
	const char *why_has;
};

static void bad(void)
{
	static const struct bad cases[] = {
		{"command: [x]\npreset: p\ncomand: y\n", AGENT_UNKNOWN_KEY, 3,
		 1, "unknown key"},
		{"command: [x]\npreset: p\ninstall:\n  npmm: y\n",
		 AGENT_UNKNOWN_KEY, 4, 3, "install"},
		{"command: [x]\npreset: p\nenv: [FOO=bar]\n", AGENT_BAD_VALUE,
		 3, 6, "names only"},
		{"command: [x]\npreset: p\nenv: [A, GH_TOKEN]\n",
		 AGENT_BAD_VALUE, 3, 6, "broad host token"},
		{"command: [x]\npreset: p\nenv: [GITHUB_TOKEN]\n",
		 AGENT_BAD_VALUE, 3, 6, "--env NAME"},
		{"command: [x]\npreset: p\nsecrets: [GH_TOKEN@api.github.com]\n",
		 AGENT_BAD_VALUE, 3, 10, "--secret VAR@HOST"},
		{"command: [x]\npreset: p\nsecrets: [KEY]\n",
		 AGENT_BAD_VALUE, 3, 10, "VAR@HOST"},
		{"command: []\npreset: p\n", AGENT_BAD_VALUE, 1, 10, "empty"},
		{"command: {a: b}\npreset: p\n", AGENT_BAD_VALUE, 1, 10,
		 "command"},
		{"preset: p\n", AGENT_MISSING, 1, 1, "command"},
		{"command: x\n", AGENT_MISSING, 1, 1, "preset"},
		{"- a\n- b\n", AGENT_NOT_MAPPING, 1, 1, "mapping"},
		{"command: [x\npreset: p\n", AGENT_SYNTAX, 0, 0, ""},
		{"command: x\npreset: p\ninstall: npm\n", AGENT_NOT_MAPPING, 3,
		 10, "install"},
		{"command: x\npreset: p\n---\ncommand: y\n", AGENT_SYNTAX, 4, 1,
		 "one YAML document"},
		{"", AGENT_MISSING, 0, 0, "empty"},
		{"command: x\npreset: ''\n", AGENT_BAD_VALUE, 2, 9, "preset"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		unsigned l = 99, c = 99;
		const char *why = NULL;
		enum agent_status st = parse(cases[i].text, &l, &c, &why);
		is_int(st, cases[i].st, "case %zu status", i);
		if (cases[i].line)
			ok(l == cases[i].line && c == cases[i].col,
			   "case %zu at %u:%u (want %u:%u): %s", i, l, c,
			   cases[i].line, cases[i].col, why);
		else if (cases[i].st == AGENT_SYNTAX)
			ok(l > 0, "case %zu syntax error has a place: %u:%u %s",
			   i, l, c, why);
		ok(why && strstr(why, cases[i].why_has),
		   "case %zu says why: %s", i, why ? why : "(null)");
		is_str(a.command[0], "", "case %zu leaves nothing behind", i);
	}
	/* More words than fit are refused, not truncated. */
	char big[4096];
	size_t bl = 0;
	fmt_append(big, sizeof(big), &bl, "preset: p\ncommand: [");
	for (int i = 0; i < AGENT_MAX_ARGS + 1; i++)
		fmt_append(big, sizeof(big), &bl, i ? ", w" : "w");
	fmt_append(big, sizeof(big), &bl, "]\n");
	unsigned l, c;
	const char *why;
	is_int(parse(big, &l, &c, &why), AGENT_BAD_VALUE, "too many words");
}

/* The shipped descriptors parse and name existing presets; the load
 * error message carries file:line:col. */
static void shipped(void)
{
	const char *src = getenv("SANDBOX_SRC");
	char presets[PATH_MAX], path[PATH_MAX], err[512], preset[PATH_MAX];
	fmt_buf(presets, sizeof(presets), "%s/policies", src ? src : ".");
	unsetenv("SANDBOX_AGENTS_DIR");
	static const char *const names[] = {"claude", "codex", "gemini",
					    "copilot", "kiro"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		ok(agent_find(names[i], presets, path, sizeof(path)) == 0,
		   "%s found", names[i]);
		int r = agent_load(path, &a, err, sizeof(err));
		ok(r == 0, "%s loads: %s", names[i], r ? err : "ok");
		ok(agent_preset_path(&a, path, presets, preset,
				     sizeof(preset)) == 0,
		   "%s preset %s exists", names[i], a.preset);
		ok(a.how[0] != '\0', "%s says how to install it", names[i]);
		if (strcmp(names[i], "claude") == 0)
			ok(a.n_secrets == 2 &&
				   !strcmp(a.secrets[0],
					   "ANTHROPIC_API_KEY@api.anthropic.com"),
			   "claude keeps its API key on the host");
	}
	ok(agent_find("nosuchagent", presets, path, sizeof(path)) == -ENOENT,
	   "unknown agent");
	ok(agent_find("../etc", presets, path, sizeof(path)) == -ENOENT,
	   "no path tricks in names");
	/* A descriptor that cannot be looked at is not "no such agent":
	 * the command would run without its preset. */
	setenv("SANDBOX_AGENTS_DIR", "/etc/hostname", 1);
	is_int(agent_find("claude", presets, path, sizeof(path)), -ENOTDIR,
	       "an agents dir that cannot be searched is an error");
	is_str(path, "/etc/hostname/claude.yaml", "... naming the path");
	unsetenv("SANDBOX_AGENTS_DIR");

	char dir[] = "/tmp/test-agents-XXXXXX";
	ok(mkdtemp(dir) != NULL, "temp dir");
	fmt_buf(path, sizeof(path), "%s/bad.yaml", dir);
	FILE *f = fopen(path, "w");
	fputs("command: x\npreset: p\nenvv: []\n", f);
	fclose(f);
	setenv("SANDBOX_AGENTS_DIR", dir, 1);
	char found[PATH_MAX];
	ok(agent_find("bad", presets, found, sizeof(found)) == 0 &&
		   !strcmp(found, path),
	   "SANDBOX_AGENTS_DIR is searched first");
	is_int(agent_load(path, &a, err, sizeof(err)), -EINVAL, "bad file");
	char want[PATH_MAX + 16];
	fmt_buf(want, sizeof(want), "%s:3:1: ", path);
	ok(!strncmp(err, want, strlen(want)), "message is file:line:col: %s",
	   err);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	good();
	bad();
	shipped();
	return done_testing();
}
