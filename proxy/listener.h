/* Listening sockets: transparent (wire header) and explicit HTTP proxy,
 * on TCP or a unix socket. Accept errors from fd exhaustion pause the
 * listener with a growing back-off instead of spinning. */
#ifndef PROXY_LISTENER_H
#define PROXY_LISTENER_H

#include <stddef.h>

#include "config.h"
#include "proxy.h"

/* Open one listener, print "sandbox-proxy: listening on ..." to stderr
 * and record its address for the self-connection check. Returns 0 or a
 * negative errno with err saying what failed. */
int listener_open(struct proxy *px, const struct listen_spec *ls, char *err,
		  size_t errsz);

/* Accept again on listeners paused because the proxy's record budget for
 * this second was spent (record.c's tick). */
void listeners_resume(struct proxy *px);

/* A connection ended and freed descriptors: listeners paused by EMFILE
 * accept again now instead of waiting out their back-off. */
void listeners_fd_freed(struct proxy *px);

/* Close every listener (unix socket files are unlinked). */
void listeners_close(struct proxy *px);

#endif
