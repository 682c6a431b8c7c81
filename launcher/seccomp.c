/* Privilege model of sandbox-vsock (see docs/vsock.md):
 *   - it runs as the invoking user, never as root, and needs no capability;
 *   - set-up (listening sockets, accepting QEMU) happens before this filter;
 *   - afterwards it may create only AF_UNIX sockets (the guest's connections
 *     go to DIR/vsock_<port>, a path the bridge builds itself), cannot exec,
 *     and cannot use io_uring (whose IORING_OP_SOCKET would bypass the
 *     socket() check). So a guest that took over the bridge through a ring
 *     parsing bug still has no network of its own.
 * The BPF is written by hand so there is no libseccomp dependency. */
#include "seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#define ARCH_NR AUDIT_ARCH_X86_64
#define X32_SYSCALL_BIT 0x40000000u

#define DENY(e) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define LOAD(field) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, field))

int vsock_seccomp_install(void)
{
#if defined(__x86_64__)
	struct sock_filter f[] = {
		/* Wrong architecture: kill, the syscall numbers mean nothing. */
		LOAD(arch),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH_NR, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		LOAD(nr),
		/* x32 numbers alias the same calls with another nr. */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1),
		DENY(ENOSYS),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		DENY(ENOSYS),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execve, 0, 1),
		DENY(EPERM),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_execveat, 0, 1),
		DENY(EPERM),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socketpair, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0),
		ALLOW,
		/* socket(family, ...) / socketpair(family, ...): args[0] is
		 * an int; compare the low 32 bits (little-endian). */
		LOAD(args[0]),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 0, 1),
		ALLOW,
		DENY(EAFNOSUPPORT),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return -errno;
	return 0;
#else
	return -ENOSYS; /* fail closed on architectures we have not written BPF for */
#endif
}
