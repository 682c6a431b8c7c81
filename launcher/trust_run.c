/* The repository-policy step of a run (trust.h, trust_for_run): what
 * main.c hands trust_check_repo_policy, gathered in one place. */
#include "trust.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/util.h"
#include "../policy/policy.h"
#include "launch.h"

int trust_for_run(const struct launch_opts *o, const char *workspace,
		  const char *run_dir, const int *sigfd,
		  struct trust_result *res, char *err, size_t errsz)
{
	char presets[PATH_MAX], buf[PATH_MAX];
	if (fmt_buf(presets, sizeof(presets), "%s",
		    policy_default_preset_dir(buf, sizeof(buf)))) {
		fmt_buf(err, errsz, "the preset directory path is too long");
		return -ENAMETOOLONG;
	}
	_cleanup_free_ const char **base = calloc(o->n_policies + 1,
						  sizeof(*base));
	_cleanup_free_ char(*abs)[PATH_MAX] = calloc(o->n_policies + 1,
						     sizeof(*abs));
	if (!base || !abs) {
		fmt_buf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < o->n_policies; i++) {
		if (!realpath(o->policies[i], abs[i])) {
			int e = errno;
			fmt_buf(err, errsz, "--policy %s: %s", o->policies[i],
				strerror(e));
			return -e;
		}
		base[i] = abs[i];
	}
	bool tty = isatty(0) && isatty(2);
	struct trust_opts to = {
		.workspace = workspace,
		.base_files = base,
		.n_base = o->n_policies,
		.preset_dir = presets,
		.run_dir = run_dir,
		.trust_dir = NULL,
		.assume_yes = o->trust,
		.tty_in = tty ? stdin : NULL,
		.tty_out = tty ? stderr : NULL,
		.sigfd = sigfd,
	};
	int r = trust_check_repo_policy(&to, res, err, errsz);
	if (r < 0)
		memset(res, 0, sizeof(*res));
	return r;
}
