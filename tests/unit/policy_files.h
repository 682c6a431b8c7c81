/* Policy files for the policy unit tests: a private temporary directory
 * with a presets folder, files written into it, policies loaded from text,
 * and the widening diff of a repository file against a base file, with
 * the assertions the widening tests share (policy_files.c). */
#ifndef TESTS_POLICY_FILES_H
#define TESTS_POLICY_FILES_H

#include <stddef.h>

#include "../../policy/policy.h"

/* Make /tmp/TAG.XXXXXX and its presets/ folder; exits on failure. */
void pf_setup(const char *tag);
/* Remove the directory pf_setup made (a diagnostic if that fails). */
void pf_cleanup(void);
const char *pf_dir(void);
const char *pf_presets(void);

/* Write text to the file NAME under the directory (a "presets/x.yaml"
 * name writes a preset); the path goes to out. Exits on failure. */
const char *pf_write(char *out, size_t outsz, const char *name,
		     const char *text);

/* One policy from text (as the file "p.yaml"), presets from pf_presets(). */
struct policy *pf_load(const char *text, struct policy_errors *errs);

/* pf_load, asserting that it loaded (WHAT names it); its messages
 * (none expected) are printed as diagnostics. */
struct policy *pf_load_ok(const char *text, const char *what);
/* Assert that text is refused with a message containing WANT and, when AT
 * is not NULL, AT (a ":line:" place) in the same message; every message
 * is printed when none matches. */
void pf_expect_refused(const char *text, const char *want, const char *at);

/* The widening diff of repo text (as ".sandbox/policy.yaml") against the
 * one file base; returns policy_diff_compute()'s code. errs may be NULL:
 * then the errors are printed as diagnostics and freed. */
int pf_diff(const char *base, const char *repo, struct policy_diff *d,
	    struct policy_errors *errs);
/* The widening whose pattern is PATTERN, or NULL. */
const struct policy_widening *pf_find(const struct policy_diff *d,
				      const char *pattern);
/* Assert that repo widens nothing against base (WHAT names the case). */
void pf_expect_none(const char *base, const char *repo, const char *what);

#endif
