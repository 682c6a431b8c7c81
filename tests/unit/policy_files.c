/* Policy files for the policy unit tests (policy_files.h). */
#include "policy_files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/util.h"
#include "tap.h"

static char dir[64], presets[128];

void pf_setup(const char *tag)
{
	fmt_buf(dir, sizeof(dir), "/tmp/%s.XXXXXX", tag);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	fmt_buf(presets, sizeof(presets), "%s/presets", dir);
	if (mkdir(presets, 0700) < 0) {
		perror(presets);
		exit(1);
	}
}

void pf_cleanup(void)
{
	char cmd[128];
	fmt_buf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
}

const char *pf_dir(void)
{
	return dir;
}

const char *pf_presets(void)
{
	return presets;
}

const char *pf_write(char *out, size_t outsz, const char *name,
		     const char *text)
{
	if (fmt_buf(out, outsz, "%s/%s", dir, name) < 0) {
		fprintf(stderr, "pf_write: %s: path too long\n", name);
		exit(1);
	}
	FILE *f = fopen(out, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(out);
		exit(1);
	}
	return out;
}

struct policy *pf_load(const char *text, struct policy_errors *errs)
{
	struct policy_builder *b = policy_builder_new(presets);
	policy_builder_add_buffer(b, "p.yaml", text, strlen(text), errs);
	return policy_builder_finish(b, errs);
}

struct policy *pf_load_ok(const char *text, const char *what)
{
	struct policy_errors e = {0};
	struct policy *p = pf_load(text, &e);
	ok(p != NULL, "%s loads", what);
	for (size_t i = 0; i < e.count; i++)
		tap_diag("%s", e.msgs[i]);
	policy_errors_free(&e);
	return p;
}

void pf_expect_refused(const char *text, const char *want, const char *at)
{
	struct policy_errors e = {0};
	struct policy *p = pf_load(text, &e);
	bool found = false;
	for (size_t i = 0; i < e.count && !found; i++)
		found = strstr(e.msgs[i], want) &&
			(!at || strstr(e.msgs[i], at));
	ok(!p && found, "refused: %s%s%s", want, at ? " at " : "",
	   at ? at : "");
	if (!found)
		for (size_t i = 0; i < e.count; i++)
			tap_diag("%s", e.msgs[i]);
	policy_free(p);
	policy_errors_free(&e);
}

int pf_diff(const char *base, const char *repo, struct policy_diff *d,
	    struct policy_errors *errs)
{
	struct policy_errors own = {0};
	const char *const files[] = {base};
	int r = policy_diff_compute(files, 1, presets, ".sandbox/policy.yaml",
				    repo, strlen(repo), d, errs ? errs : &own);
	for (size_t i = 0; i < own.count; i++)
		tap_diag("%s", own.msgs[i]);
	policy_errors_free(&own);
	return r;
}

const struct policy_widening *pf_find(const struct policy_diff *d,
				      const char *pattern)
{
	for (size_t i = 0; i < d->count; i++)
		if (d->items[i].pattern && !strcmp(d->items[i].pattern, pattern))
			return &d->items[i];
	return NULL;
}

void pf_expect_none(const char *base, const char *repo, const char *what)
{
	struct policy_diff d;
	struct policy_errors errs = {0};
	int r = pf_diff(base, repo, &d, &errs);
	is_int(r, 0, "%s: computed", what);
	is_int(d.count, 0, "%s: nothing widens", what);
	for (size_t i = 0; i < d.count; i++)
		tap_diag("unexpected: %s (%s:%u)", d.items[i].pattern,
			 d.items[i].file, d.items[i].line);
	policy_diff_free(&d);
	policy_errors_free(&errs);
}
