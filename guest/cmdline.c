/* Parse the sandbox.* parameters of the kernel command line. */
#include "guest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

static int parse_id(const char *v, unsigned int *out)
{
	char *end;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || end == v || *end || n >= 65534 || v[0] == '-')
		return -EINVAL;
	*out = (unsigned int)n;
	return 0;
}

/* An absolute, normalised path: no "..", ".", empty components or a
 * trailing slash, and not inside the directories init builds itself. */
static int valid_workspace(const char *p)
{
	static const char *const reserved[] = {"/usr", "/etc", "/proc", "/sys",
					       "/dev", "/bin", "/sbin", "/lib",
					       "/lib64", "/lib32"};
	if (p[0] != '/' || p[1] == '\0')
		return 0;
	for (const char *c = p; *c; c++) {
		if (*c != '/')
			continue;
		const char *n = c + 1;
		if (*n == '/' || *n == '\0')
			return 0;
		if (n[0] == '.' && (n[1] == '/' || n[1] == '\0'))
			return 0;
		if (n[0] == '.' && n[1] == '.' && (n[2] == '/' || n[2] == '\0'))
			return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
		size_t l = strlen(reserved[i]);
		if (!strncmp(p, reserved[i], l) && (p[l] == '/' || !p[l]))
			return 0;
	}
	return 1;
}

static int valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || (c >= 'A' && c <= 'Z')))
			return 0;
	}
	return 1;
}

static int set_param(struct boot_config *cfg, const char *key, const char *v,
		     const char **why)
{
	unsigned int id;
	if (!strcmp(key, "workspace")) {
		if (strlen(v) >= sizeof(cfg->workspace) || !valid_workspace(v)) {
			*why = "sandbox.workspace must be an absolute normalised "
			       "path outside /usr, /etc, /proc, /sys, /dev";
			return -EINVAL;
		}
		memcpy(cfg->workspace, v, strlen(v) + 1);
	} else if (!strcmp(key, "uid") || !strcmp(key, "gid")) {
		if (parse_id(v, &id) || id == 0) {
			*why = "sandbox.uid/gid must be a number 1..65533";
			return -EINVAL;
		}
		if (key[0] == 'u')
			cfg->uid = id;
		else
			cfg->gid = id;
	} else if (!strcmp(key, "user")) {
		if (!valid_name(v, sizeof(cfg->user) - 1) || !strcmp(v, "root")) {
			*why = "sandbox.user must be [A-Za-z0-9_-]{1,32}, not root";
			return -EINVAL;
		}
		memcpy(cfg->user, v, strlen(v) + 1);
	} else if (!strcmp(key, "hostname")) {
		if (!valid_name(v, sizeof(cfg->hostname) - 1)) {
			*why = "sandbox.hostname must be [A-Za-z0-9_-]{1,64}";
			return -EINVAL;
		}
		memcpy(cfg->hostname, v, strlen(v) + 1);
	} else if (!strcmp(key, "root")) {
		if (strcmp(v, "host") && strcmp(v, "image")) {
			*why = "sandbox.root must be host or image";
			return -EINVAL;
		}
		cfg->root_image = !strcmp(v, "image");
	} else if (!strcmp(key, "debug")) {
		if (!strcmp(v, "shell")) {
			cfg->debug_shell = 1;
		} else if (!strncmp(v, "script:", 7) && v[7] == '/' &&
			   strlen(v + 7) < sizeof(cfg->debug_script)) {
			memcpy(cfg->debug_script, v + 7, strlen(v + 7) + 1);
		} else {
			*why = "sandbox.debug must be shell or script:/ABS/PATH";
			return -EINVAL;
		}
	} else if (!strcmp(key, "upper")) {
		if (strcmp(v, "disk") && strcmp(v, "tmpfs")) {
			*why = "sandbox.upper must be disk or tmpfs";
			return -EINVAL;
		}
		cfg->upper_disk = !strcmp(v, "disk");
	} else if (!strcmp(key, "wsfs")) {
		if (strcmp(v, "virtiofs") && strcmp(v, "9p")) {
			*why = "sandbox.wsfs must be virtiofs or 9p";
			return -EINVAL;
		}
		cfg->ws_virtiofs = !strcmp(v, "virtiofs");
	} else if (!strcmp(key, "hostpkg")) {
		if (strcmp(v, "on") && strcmp(v, "off")) {
			*why = "sandbox.hostpkg must be on or off";
			return -EINVAL;
		}
		cfg->host_pkg = !strcmp(v, "on");
	} else if (!strncmp(key, "docker", 6)) {
		return docker_param(cfg, key, v, why);
	} else {
		*why = "unknown sandbox.* parameter";
		return -EINVAL;
	}
	return 0;
}

int cmdline_parse(const char *cmdline, struct boot_config *cfg,
		  const char **why)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->uid = 1000;
	cfg->gid = 1000;
	memcpy(cfg->user, "agent", 6);
	memcpy(cfg->hostname, "sandbox", 8);
	*why = NULL;

	char word[8192];
	const char *p = cmdline;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		/* The kernel's own rule: double quotes group, and are removed. */
		size_t n = 0;
		int quoted = 0;
		while (*p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n'))) {
			if (*p == '"') {
				quoted = !quoted;
				p++;
				continue;
			}
			if (n + 1 >= sizeof(word)) {
				*why = "kernel command line word too long";
				return -E2BIG;
			}
			word[n++] = *p++;
		}
		word[n] = '\0';
		if (n < 8 || memcmp(word, "sandbox.", 8) != 0)
			continue;
		char *eq = strchr(word, '=');
		if (!eq) {
			*why = "sandbox.* parameter without a value";
			return -EINVAL;
		}
		*eq = '\0';
		int r = set_param(cfg, word + 8, eq + 1, why);
		if (r)
			return r;
	}
	if (!cfg->workspace[0]) {
		*why = "sandbox.workspace= missing from the kernel command line";
		return -EINVAL;
	}
	return 0;
}
