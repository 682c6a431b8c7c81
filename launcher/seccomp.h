/* Seccomp filter for the vsock bridge once set-up is done. */
#ifndef LAUNCHER_SECCOMP_H
#define LAUNCHER_SECCOMP_H

/* Set no_new_privs and install a filter that makes socket() fail with
 * EAFNOSUPPORT for every family but AF_UNIX, and denies the calls that
 * could get around that (io_uring, exec). 0 or -errno. */
int vsock_seccomp_install(void);

#endif
