/* Seccomp allow lists for the two processes of sandbox-vsock (see
 * docs/vsock.md, "Privilege model").
 *
 * Both run as the invoking user with no capability; the filters go on
 * after set-up (sockets bound, QEMU accepted, connector forked), with
 * no_new_privs. A syscall not on the list kills the process, except the
 * file opens, which fail with EPERM so that a sanitizer report or a libc
 * error path can still say what happened.
 *
 *   bridge:    reads guest memory and rings. No socket(), no connect(), no
 *              open, no exec, no fork, no signals to others; mmap and
 *              mprotect never with PROT_EXEC; fcntl only F_GETFL/F_SETFL;
 *              wait4 only to reap the connector. New host connections come as descriptors from
 *              the connector (vsock_connector.c).
 *   connector: socket(AF_UNIX) and connect() only, to DIR/vsock_P for the
 *              listed ports; recv, sendmsg, close, write (stderr), exit.
 *
 * The lists are what strace showed during a real guest boot and transfers
 * (tests/e2e/test_vsock_bridge.py), plus what glibc's and the sanitizers'
 * allocators use (brk, mmap, munmap, madvise, mremap, mprotect).
 * The BPF is written by hand so there is no libseccomp dependency;
 * tests/tools/bridge_attacker.c installs the same filter and attacks it. */
#include "seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "../common/util.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define X32_SYSCALL_BIT 0x40000000u
#define RET_ALLOW SECCOMP_RET_ALLOW
#define RET_KILL SECCOMP_RET_KILL_PROCESS
#define RET_EPERM (SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

struct bpf_buf {
	struct sock_filter *f;
	size_t n, cap;
	bool overflow;
};

static void emit(struct bpf_buf *b, struct sock_filter x)
{
	if (b->n < b->cap)
		b->f[b->n] = x;
	else
		b->overflow = true;
	b->n++;
}

static void load_nr(struct bpf_buf *b)
{
	emit(b, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					     offsetof(struct seccomp_data, nr)));
}

/* Low 32 bits of an argument (little-endian x86_64); every argument
 * checked here is an int or a flag word the kernel truncates to 32 bits. */
static void load_arg(struct bpf_buf *b, unsigned i)
{
	emit(b, (struct sock_filter)BPF_STMT(
			BPF_LD | BPF_W | BPF_ABS,
			offsetof(struct seccomp_data, args[0]) + i * sizeof(__u64)));
}

static void ret(struct bpf_buf *b, __u32 action)
{
	emit(b, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action));
}

/* if (nr == n) return action; */
static void on_nr(struct bpf_buf *b, long n, __u32 action)
{
	emit(b, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
					     (__u32)n, 0, 1));
	ret(b, action);
}

/* if (nr == n) return (arg[i] == v) ? ALLOW : KILL; */
static void allow_if_arg_eq(struct bpf_buf *b, long n, unsigned i, __u32 v)
{
	emit(b, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
					     (__u32)n, 0, 4));
	load_arg(b, i);
	emit(b, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, v, 0, 1));
	ret(b, RET_ALLOW);
	ret(b, RET_KILL);
}

/* if (nr == n) return (arg[i] == a || arg[i] == b) ? ALLOW : KILL; */
static void allow_if_arg_one_of(struct bpf_buf *b, long n, unsigned i, __u32 x,
				__u32 y)
{
	emit(b, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
					     (__u32)n, 0, 5));
	load_arg(b, i);
	emit(b, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, x, 1, 0));
	emit(b, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, y, 0, 1));
	ret(b, RET_ALLOW);
	ret(b, RET_KILL);
}

/* if (nr == n) return (arg[i] & bits) ? KILL : ALLOW; */
static void allow_if_arg_clear(struct bpf_buf *b, long n, unsigned i, __u32 bits)
{
	emit(b, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
					     (__u32)n, 0, 4));
	load_arg(b, i);
	emit(b, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, bits, 0, 1));
	ret(b, RET_KILL);
	ret(b, RET_ALLOW);
}

/* Both roles: exit, signals to ourselves returning, memory management of
 * the allocator (never executable), clocks, plain I/O on fds we hold. */
static const long common_allow[] = {
	__NR_read,	    __NR_write,	       __NR_close,
	__NR_exit,	    __NR_exit_group,   __NR_rt_sigreturn,
	__NR_restart_syscall, __NR_brk,	       __NR_munmap,
	__NR_madvise,	    __NR_mremap,       __NR_clock_gettime,
	__NR_gettid,	    __NR_getpid,       __NR_rt_sigprocmask,
	__NR_getrandom, /* glibc's malloc seeds its tcache on first use */
	__NR_sigaltstack, /* ASan's _exit() interceptor resets it */
};

static const long bridge_allow[] = {
	__NR_readv,	 __NR_writev,	   __NR_recvfrom,   __NR_sendto,
	__NR_recvmsg,	 __NR_sendmsg,	   __NR_shutdown,   __NR_accept4,
	__NR_epoll_wait, __NR_epoll_pwait, __NR_epoll_ctl,
	__NR_wait4, /* reaping the connector, our only child, before exit */
	__NR_lseek, /* a memory region's fd must be as long as the region */
};

static const long connector_allow[] = {
	__NR_recvfrom, __NR_sendmsg, __NR_connect,
};

/* Opening a file fails with EPERM in both roles (diagnosable, see top). */
static const long opens[] = {__NR_open, __NR_openat, __NR_openat2, __NR_creat};

int vsock_seccomp_build(enum seccomp_role role, struct sock_filter *out,
			size_t cap)
{
	struct bpf_buf b = {.f = out, .cap = cap};
	/* Foreign architecture: the numbers below mean other calls. */
	emit(&b, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch)));
	emit(&b, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
					      AUDIT_ARCH_X86_64, 1, 0));
	ret(&b, RET_KILL);
	load_nr(&b);
	/* x32 numbers alias the same calls under another nr. */
	emit(&b, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K,
					      X32_SYSCALL_BIT, 0, 1));
	ret(&b, RET_KILL);
	for (size_t i = 0; i < ARRAY_SIZE(common_allow); i++)
		on_nr(&b, common_allow[i], RET_ALLOW);
	if (role == SECCOMP_ROLE_BRIDGE) {
		for (size_t i = 0; i < ARRAY_SIZE(bridge_allow); i++)
			on_nr(&b, bridge_allow[i], RET_ALLOW);
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(connector_allow); i++)
			on_nr(&b, connector_allow[i], RET_ALLOW);
	}
	for (size_t i = 0; i < ARRAY_SIZE(opens); i++)
		on_nr(&b, opens[i], RET_EPERM);
	if (role == SECCOMP_ROLE_CONNECTOR)
		allow_if_arg_eq(&b, __NR_socket, 0, AF_UNIX);
	/* O_NONBLOCK on accepted sockets. Not F_SETOWN/F_SETSIG: with
	 * O_ASYNC they make the kernel signal any process of ours. */
	if (role == SECCOMP_ROLE_BRIDGE)
		allow_if_arg_one_of(&b, __NR_fcntl, 1, F_GETFL, F_SETFL);
	/* Guest memory is mapped read-write, never executable. (Each
	 * argument block returns when its nr matches and jumps over its
	 * argument load otherwise, so the accumulator still holds nr.) */
	allow_if_arg_clear(&b, __NR_mprotect, 2, PROT_EXEC);
	allow_if_arg_clear(&b, __NR_mmap, 2, PROT_EXEC);
	ret(&b, RET_KILL);
	if (b.overflow)
		return -E2BIG;
	return (int)b.n;
}

int vsock_seccomp_install(enum seccomp_role role)
{
#if defined(__x86_64__)
	struct sock_filter f[160];
	int n = vsock_seccomp_build(role, f, ARRAY_SIZE(f));
	if (n < 0)
		return n;
	struct sock_fprog prog = {.len = (unsigned short)n, .filter = f};
#ifdef HAVE_LSAN
	/* LeakSanitizer's exit-time check clones and ptraces, which the
	 * filter kills: check now (nothing is allocated yet that could
	 * leak) and not again at exit. Sanitizer builds only. */
	__lsan_do_leak_check();
#endif
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return -errno;
	return 0;
#else
	(void)role;
	return -ENOSYS; /* fail closed on architectures we have not written BPF for */
#endif
}
