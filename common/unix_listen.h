/* The one 0600 unix-socket listener: what the proxy's listeners, its
 * policy control socket and the vsock bridge's sockets are made with. */
#ifndef COMMON_UNIX_LISTEN_H
#define COMMON_UNIX_LISTEN_H

/* Listen on a unix stream socket at path, mode 0600 from the moment it
 * exists (bound under umask 0177, then chmod for good measure), close-on-
 * exec, plus extra socket() type flags (SOCK_NONBLOCK or 0). A stale socket
 * at path is replaced; anything else there is left alone and refused.
 * Returns the fd, or a negative errno: -ENAMETOOLONG (path does not fit
 * sun_path), -EEXIST (path exists and is not a socket), or what socket,
 * bind, chmod or listen failed with. */
int unix_listen_0600(const char *path, int backlog, int type_flags);

#endif
