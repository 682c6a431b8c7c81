/* Listening sockets: transparent (wire header) and explicit HTTP proxy,
 * on TCP or a unix socket. Accept errors from fd exhaustion pause the
 * listener with a growing back-off instead of spinning. */
#ifndef PROXY_LISTENER_H
#define PROXY_LISTENER_H

#include <stddef.h>

#include "config.h"
#include "proxy.h"

struct worker;

/* Open one listener, print "sandbox-proxy: listening on ..." to stderr
 * and record its address for the self-connection check. Returns 0 or a
 * negative errno with err saying what failed. */
int listener_open(struct proxy *px, const struct listen_spec *ls, char *err,
		  size_t errsz);

/* Accept again on w's share of the listeners paused because the proxy's
 * record budget for this second was spent (record.c's tick). */
void listeners_resume(struct worker *w);

/* One of w's connections ended and freed descriptors: w's listeners
 * paused by EMFILE accept again now instead of waiting out their
 * back-off. Other workers' paused listeners are not woken: their back-off
 * timers look for free descriptors, the process's, and find these
 * (docs/design.md, "Descriptors"). */
void listeners_fd_freed(struct worker *w);

/* Worker 0, on drain: every worker stops accepting (worker_call_all),
 * then the unix sockets are closed and unlinked. The list stays until
 * listeners_close(). */
void listeners_drain(struct proxy *px);

/* Close and free every listener (unix socket files are unlinked): only
 * before the workers start or after they ended. */
void listeners_close(struct proxy *px);

#endif
