#include "datadir.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

struct kind_info {
	const char *env;
	const char *installed; /* below share/sandbox */
	const char *build[2];  /* relative to the program's directory */
};

static const struct kind_info kinds[] = {
	[DATA_PRESETS] = {"SANDBOX_PRESETS", "policies",
			  {"../../policies", "../../../policies"}},
	[DATA_GUEST] = {"SANDBOX_GUEST_DIR", "guest", {"../guest", NULL}},
	[DATA_IMAGES] = {"SANDBOX_IMAGES_DIR", "images", {"../images", NULL}},
};

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int program_dir(char *buf, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -ENOENT;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	return fmt_buf(buf, size, "%s", exe);
}

const char *data_dir_env(enum data_kind kind)
{
	return kinds[kind].env;
}

/* A candidate below the program's directory, canonical when it exists. */
static int try_rel(const char *dir, const char *rel, char *buf, size_t size)
{
	char p[PATH_MAX];
	if (fmt_buf(p, sizeof(p), "%s/%s", dir, rel) || !is_dir(p))
		return -ENOENT;
	_cleanup_free_ char *real = realpath(p, NULL);
	return fmt_buf(buf, size, "%s", real ? real : p);
}

int data_dir(enum data_kind kind, char *buf, size_t size)
{
	const struct kind_info *k = &kinds[kind];
	const char *env = getenv(k->env);
	if (env && *env)
		return fmt_buf(buf, size, "%s", env);
	char dir[PATH_MAX];
	if (program_dir(dir, sizeof(dir)) == 0) {
		for (size_t i = 0; i < ARRAY_SIZE(k->build) && k->build[i]; i++)
			if (try_rel(dir, k->build[i], buf, size) == 0)
				return 0;
		char rel[64];
		if (fmt_buf(rel, sizeof(rel), "../share/sandbox/%s",
			    k->installed) == 0 &&
		    try_rel(dir, rel, buf, size) == 0)
			return 0;
	}
	int r = fmt_buf(buf, size, "/usr/share/sandbox/%s", k->installed);
	if (r)
		return r;
	return is_dir(buf) ? 0 : -ENOENT;
}
