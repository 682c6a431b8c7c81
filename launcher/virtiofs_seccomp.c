/* The filter in front of virtiofsd: what the guest may not leave on the
 * host, refused with EPERM whatever the guest asks for (virtiofsd stacks
 * its own allow list on top; the stricter answer wins).
 *
 * - setuid/setgid bits: chmod family, and open/creat with O_CREAT;
 * - mknod: device nodes (the kernel refuses those in a user namespace
 *   anyway), FIFOs and sockets; the workspace holds files, directories
 *   and symlinks only;
 * - xattr writes: a security.capability xattr would be a file capability
 *   (virtiofsd runs without -o xattr; this keeps it so);
 * - anything but the native ABI (x32, i386): a second syscall table would
 *   bypass the argument checks.
 * And syncfs gets ENOSYS: a guest's sync(1) would otherwise make the host
 * flush the whole filesystem the workspace is on (everyone's dirty data,
 * 0.5-7 s on this shared disk, as often as the guest likes). The guest
 * kernel takes ENOSYS as "no syncfs here" and stops asking; what the
 * guest writes reaches the host file at once anyway (no writeback), and
 * fsync/fdatasync of a file still reach the host's disk.
 * And, on a local filesystem (virtiofs_flush.c), FUSE_FLUSH gets
 * ENOSYS, for the same reason of cost: the guest kernel sends a FLUSH,
 * and waits for it, on every close() of a workspace file, read or
 * written, and QEMU 7.2's virtiofsd answers it with close(dup(fd)), its
 * only dup() (on a local filesystem a no-op: it drops POSIX locks, and
 * virtiofsd holds none without -o posix_lock). dup() refused with ENOSYS
 * makes that close(-1), refused with ENOSYS too, so the reply is ENOSYS,
 * and the guest kernel stops sending FLUSH. dup2(), dup3(),
 * fcntl(F_DUPFD) and close() of a real descriptor are untouched. On NFS,
 * SMB, FUSE and any filesystem not known to be local, close() can report
 * a write error the write did not (deferred write-back), so FLUSH stays
 * and the guest's close() sees it; so it does when anything mounted
 * below the workspace is such a filesystem (virtiofsd serves those too).
 * Owners need no rule: only the user's ids are mapped where virtiofsd
 * runs, so the kernel refuses any other (EINVAL).
 */
#include "virtiofs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "../common/util.h"

#if defined(__x86_64__)
#define ARCH_NR AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH_NR AUDIT_ARCH_AARCH64
#else
#error "virtiofs_seccomp.c: add this architecture's AUDIT_ARCH"
#endif

#define LD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define LD_ARG(i)                                                              \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS,                                     \
		 offsetof(struct seccomp_data, args[i]))
#define DENY BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
/* if nr == n fall through to the next instruction, else skip `skip`. */
#define IF_NR(n, skip) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (n), 0, (skip))
/* deny if the loaded word has any of bits; else allow. */
#define DENY_BITS(bits)                                                        \
	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (bits), 0, 1), DENY, ALLOW

#define SUGID (S_ISUID | S_ISGID)
#define CREATES (O_CREAT | (O_TMPFILE & ~O_DIRECTORY))
/* the loaded flags create a file: fall through; else skip `skip`. */
#define IF_CREATES(skip) BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CREATES, 0, (skip))

/* FUSE_FLUSH's close(dup(fd)), above: dup() and close(-1) get ENOSYS.
 * Entered with the syscall number loaded; leaves it loaded when it falls
 * through. */
#define FLUSH_REFUSED                                                          \
	IF_NR(__NR_dup, 1),                                                    \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),                 \
	IF_NR(__NR_close, 4), LD_ARG(0),                                       \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 0, 1),               \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS), ALLOW

int virtiofs_seccomp_install(bool refuse_flush)
{
	/* Without refuse_flush the filter jumps over FLUSH_REFUSED. */
	static const struct sock_filter flush_block[] = {FLUSH_REFUSED};
	unsigned flush_skip =
		refuse_flush ? 0 : ARRAY_SIZE(flush_block);
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH_NR, 1, 0),
		DENY,
		LD_NR,
#ifdef __x86_64__
		/* x32: the same calls under other numbers. */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
		DENY,
#endif
		/* Always refused. */
		IF_NR(__NR_mknodat, 1), DENY,
		IF_NR(__NR_setxattr, 1), DENY,
		IF_NR(__NR_lsetxattr, 1), DENY,
		IF_NR(__NR_fsetxattr, 1), DENY,
#ifdef __NR_mknod
		IF_NR(__NR_mknod, 1), DENY,
#endif
#ifdef __NR_setxattrat
		IF_NR(__NR_setxattrat, 1), DENY,
#endif
		IF_NR(__NR_syncfs, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_JUMP(BPF_JMP | BPF_JA, flush_skip, 0, 0),
		FLUSH_REFUSED,
		/* openat2's how is in memory, out of a filter's reach. */
		IF_NR(__NR_openat2, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		/* Mode argument: fchmod(fd, mode), fchmodat(dfd, path, mode). */
		IF_NR(__NR_fchmod, 4), LD_ARG(1), DENY_BITS(SUGID),
		LD_NR,
		IF_NR(__NR_fchmodat, 4), LD_ARG(2), DENY_BITS(SUGID),
		LD_NR,
#ifdef __NR_fchmodat2
		IF_NR(__NR_fchmodat2, 4), LD_ARG(2), DENY_BITS(SUGID),
		LD_NR,
#else
		IF_NR(452, 4), LD_ARG(2), DENY_BITS(SUGID),
		LD_NR,
#endif
#ifdef __NR_chmod
		IF_NR(__NR_chmod, 4), LD_ARG(1), DENY_BITS(SUGID),
		LD_NR,
		IF_NR(__NR_creat, 4), LD_ARG(1), DENY_BITS(SUGID),
		LD_NR,
		/* open(path, flags, mode): mode only with O_CREAT/O_TMPFILE. */
		IF_NR(__NR_open, 6), LD_ARG(1), IF_CREATES(3), LD_ARG(2),
		DENY_BITS(SUGID),
		LD_NR,
#endif
		IF_NR(__NR_openat, 5), LD_ARG(2), IF_CREATES(3), LD_ARG(3),
		DENY_BITS(SUGID),
		ALLOW,
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return -errno;
	return 0;
}
