/* The workspace a run shares with the guest, and where in it the command
 * starts: checked before anything is created or started. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"
#include "launch.h"

int workspace_resolve(const char *given, char ws[PATH_MAX],
		      char cwd_guest[PATH_MAX], char *err, size_t errsz)
{
	const char *w = given ? given : ".";
	if (!realpath(w, ws)) {
		int e = errno;
		fmt_buf(err, errsz, "workspace %s: %s (create it, or pass "
			"--workspace DIR)", w, strerror(e));
		return -e;
	}
	struct stat st;
	if (stat(ws, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fmt_buf(err, errsz, "workspace %s is not a directory", ws);
		return -ENOTDIR;
	}
	if (access(ws, R_OK | W_OK | X_OK)) {
		int e = errno;
		fmt_buf(err, errsz, "workspace %s: %s (it must be writable by "
			"you)", ws, strerror(e));
		return -e;
	}
	const char *why = qemu_workspace_problem(ws);
	if (why) {
		fmt_buf(err, errsz, "workspace %s: %s; pass another "
			"--workspace", ws, why);
		return -EINVAL;
	}
	/* The command starts where we are, when that is in the workspace. */
	char here[PATH_MAX];
	size_t wl = strlen(ws);
	if (getcwd(here, sizeof(here)) && realpath(here, cwd_guest) &&
	    !strncmp(cwd_guest, ws, wl) &&
	    (cwd_guest[wl] == '/' || cwd_guest[wl] == '\0') &&
	    !qemu_workspace_problem(cwd_guest))
		return 0;
	memcpy(cwd_guest, ws, wl + 1);
	return 0;
}

int user_policy_path(char *out, size_t outsz)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int r;
	if (xdg && xdg[0] == '/')
		r = fmt_buf(out, outsz, "%s/sandbox/policy.yaml", xdg);
	else if (home && home[0] == '/')
		r = fmt_buf(out, outsz, "%s/.config/sandbox/policy.yaml", home);
	else
		r = -1;
	if (r || access(out, F_OK)) {
		out[0] = '\0';
		return 0;
	}
	return 1;
}
