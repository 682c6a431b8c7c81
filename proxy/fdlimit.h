/* The descriptor limit: sandbox-proxy raises its soft RLIMIT_NOFILE to the
 * hard limit at start, since every tunnel holds descriptors, and says how
 * many tunnels the limit allows. When accept() still runs out
 * (EMFILE/ENFILE) the listeners pause (listener.c) and resume when a
 * connection ends or after a short timer. */
#ifndef PROXY_FDLIMIT_H
#define PROXY_FDLIMIT_H

#include <stdint.h>
#include <stdio.h>

/* Descriptors a tunnel holds: the guest's stream and the upstream
 * socket. */
#define FDLIMIT_PER_TUNNEL 2
/* Kept aside for listeners, the audit log, the resolver, the control
 * socket, libevent and the standard streams. */
#define FDLIMIT_RESERVE 64

struct fdlimit {
	uint64_t soft_before, soft, hard; /* UINT64_MAX: unlimited */
};

/* Raise the soft limit to the hard one. Returns 0 or a negative errno
 * (out is filled in either case with what is in force). */
int fdlimit_raise(struct fdlimit *out);

/* About how many tunnels n descriptors allow. */
uint64_t fdlimit_tunnels(uint64_t n);

/* Raise, and say on stderr what is in force (set-up, main.c). */
void fdlimit_setup(unsigned max_conns);
/* The paragraph --help ends with: the rule and this system's figure. */
void fdlimit_help(FILE *f);

#endif
