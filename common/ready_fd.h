/* Readiness over an inherited descriptor (--ready-fd N): a daemon the
 * launcher starts writes one line, "ready\n", to descriptor N once it
 * serves, and closes it. The launcher waits on the pipe's other end in its
 * event loop: a line is "ready", end of file without one is "died first".
 * Nothing is re-read from a log file. */
#ifndef COMMON_READY_FD_H
#define COMMON_READY_FD_H

/* "--ready-fd N": N must be a descriptor above stderr that is open.
 * Returns 0 with *fd set (and made close-on-exec: no program we start
 * inherits it), or -EINVAL (not a number above 2) / -EBADF (not open). */
int ready_fd_parse(const char *s, int *fd);

/* Writes "ready\n" to fd and closes it; fd < 0 does nothing. Returns 0 or
 * a negative errno (the launcher is gone: EPIPE with SIGPIPE ignored). */
int ready_fd_send(int fd);

#endif
