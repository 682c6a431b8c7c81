/* The launcher's client for sandbox-proxy's control socket (the protocol
 * is in proxy/policy_socket.h): one command line out, one reply line back. */
#ifndef LAUNCHER_PROXY_CONTROL_H
#define LAUNCHER_PROXY_CONTROL_H

#include <stddef.h>

/* Send line (no newline; it must not contain one) to the unix socket at
 * sock and read the reply line into reply (newline stripped). Returns 0
 * when the proxy answered "ok ...", -EPROTO when it answered "error ..."
 * (reply says why), -ETIMEDOUT after 10 s, other negative errno when the
 * socket cannot be reached (reply then holds a message too). */
int proxy_control_send(const char *sock, const char *line, char *reply,
		       size_t replysz);

#endif
