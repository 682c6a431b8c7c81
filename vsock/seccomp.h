/* Seccomp allow lists for sandbox-vsock's bridge and connector processes. */
#ifndef LAUNCHER_SECCOMP_H
#define LAUNCHER_SECCOMP_H

#include <linux/filter.h>
#include <stddef.h>

enum seccomp_role {
	SECCOMP_ROLE_BRIDGE,	/* walks guest rings; no socket/connect/open */
	SECCOMP_ROLE_CONNECTOR, /* socket(AF_UNIX) + connect only */
};

/* Write the filter for role into out (cap entries). The number of
 * instructions, or -E2BIG. Pure: tests inspect what gets installed. */
int vsock_seccomp_build(enum seccomp_role role, struct sock_filter *out,
			size_t cap);

/* Set no_new_privs and install role's filter on the calling process (and
 * anything it would start). 0 or -errno; -ENOSYS off x86_64. */
int vsock_seccomp_install(enum seccomp_role role);

#endif
