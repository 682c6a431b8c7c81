/* The bridge's connector: the only process of sandbox-vsock that may call
 * connect(), split off before the bridge touches guest memory.
 *
 *   bridge (seccomp: no socket, no connect, no open)
 *      | SOCK_SEQPACKET socketpair: request = u32 port,
 *      |                            reply = i32 status (+ one fd, SCM_RIGHTS)
 *   connector (seccomp: socket(AF_UNIX), connect, sendmsg, recv; no open)
 *      connect(DIR/vsock_P) only for P in the --port list
 *
 * A guest that takes over the bridge through a ring or packet bug can ask
 * the connector for those ports and nothing else: it names no path, and the
 * connector's input is four bytes checked against a fixed list.
 */
#ifndef LAUNCHER_VSOCK_CONNECTOR_H
#define LAUNCHER_VSOCK_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VSOCK_CONNECTOR_MAX_PORTS 16

struct vsock_connector_cfg {
	const char *dir; /* guest port P is DIR/vsock_P */
	uint32_t ports[VSOCK_CONNECTOR_MAX_PORTS];
	size_t nports;
};

/* Fork the connector. Returns the bridge's end of the socketpair (blocking,
 * close-on-exec) and the child's pid, or -errno. The child keeps only its
 * end of the pair and stderr, dies with its parent and exits when the pair
 * closes. */
int vsock_connector_start(const struct vsock_connector_cfg *cfg, pid_t *pid);

/* Bridge side: ask for a connection to guest port P. The new non-blocking
 * stream socket, or -errno (-EACCES: port not in the list; -ECONNREFUSED,
 * -ENOENT, -EAGAIN: from connect; -EPROTO: the connector misbehaved). */
int vsock_connector_connect(int sock, uint32_t port);

/* True if the port is in cfg's list (exposed for tests). */
int vsock_connector_allows(const struct vsock_connector_cfg *cfg, uint32_t port);

#endif
