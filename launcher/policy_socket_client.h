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

/* The tail every control subcommand shares (sandbox-launch policy, port):
 * look up the named sandbox NAME, check that it runs and has a control
 * socket, send line, print the reply on stdout. Errors go to stderr as
 * "sandbox-launch CMD: ..."; not_running is the caller's reason why a
 * stopped sandbox cannot be addressed (e.g. "runtime rules live only while
 * it runs"). Returns the exit status: 0 done, 1 the proxy refused (the
 * reply says why), 2 no such sandbox, not running or unreachable. */
int proxy_control_command(const char *cmd, const char *name,
			  const char *line, const char *not_running);

#endif
