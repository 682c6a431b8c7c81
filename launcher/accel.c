/* KVM where it works, TCG otherwise.
 *
 * /dev/kvm being openable is not enough: on some hosts (nested
 * virtualisation without the MSRs QEMU wants) `-accel kvm` dies at once
 * with "failed to set MSR 0x10a". The launcher then restarts the guest
 * under TCG and remembers the failure for this kernel release in
 * $XDG_CACHE_HOME/sandbox/kvm-broken, so later runs go straight to TCG.
 */
#include "launch.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../common/util.h"

static int cache_path(char *out, size_t outsz)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (xdg && xdg[0] == '/')
		return fmt_buf(out, outsz, "%s/sandbox/kvm-broken", xdg);
	if (home && home[0] == '/')
		return fmt_buf(out, outsz, "%s/.cache/sandbox/kvm-broken", home);
	return -ENOENT;
}

static bool remembered_broken(void)
{
	char path[4096];
	_cleanup_free_ char *text = NULL;
	struct utsname u;
	if (cache_path(path, sizeof(path)) || uname(&u) < 0 ||
	    read_file(path, 4096, &text, NULL))
		return false;
	text[strcspn(text, "\n")] = '\0';
	return strcmp(text, u.release) == 0;
}

enum accel accel_choose(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return ACCEL_TCG;
	close(fd);
	return remembered_broken() ? ACCEL_TCG : ACCEL_KVM;
}

bool accel_kvm_failed(const char *log)
{
	return strstr(log, "failed to set MSR") || strstr(log, "kvm_init") ||
	       strstr(log, "failed to initialize kvm") ||
	       strstr(log, "failed to initialize KVM") ||
	       (strstr(log, "KVM") && strstr(log, "error"));
}

void accel_remember_broken(void)
{
	char path[4096];
	struct utsname u;
	if (cache_path(path, sizeof(path)) || uname(&u) < 0)
		return;
	char *slash = strrchr(path, '/');
	*slash = '\0';
	char *parent = strrchr(path, '/');
	*parent = '\0';
	mkdir(path, 0700);
	*parent = '/';
	mkdir(path, 0700);
	*slash = '/';
	_cleanup_close_ int fd =
		open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		(void)!write_all(fd, u.release, strlen(u.release));
		(void)!write_all(fd, "\n", 1);
	}
}
