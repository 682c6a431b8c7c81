/* Where presets live: one answer for every program (the proxy, the policy
 * CLI and the launcher must agree, or `extends: [github]` would mean a
 * different file in each). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"
#include "policy.h"

#define INSTALLED_PRESETS "/usr/share/sandbox/policies"

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *policy_default_preset_dir(char *buf, size_t size)
{
	const char *env = getenv("SANDBOX_PRESETS");
	if (env && *env)
		return env;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		/* build/bin and build/<cfg>/bin inside a source tree. */
		static const char *const rel[] = {"../../policies",
						  "../../../policies"};
		for (size_t i = 0; i < ARRAY_SIZE(rel); i++) {
			char p[PATH_MAX];
			if (fmt_buf(p, sizeof(p), "%s/%s", exe, rel[i]) ||
			    !is_dir(p))
				continue;
			char *real = realpath(p, NULL);
			int r = fmt_buf(buf, size, "%s", real ? real : p);
			free(real);
			if (r == 0)
				return buf;
		}
	}
	return INSTALLED_PRESETS;
}
