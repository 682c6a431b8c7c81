/* A hostile guest that took over sandbox-vsock, played for the tests.
 *
 *   bridge_attacker DIR PORT ATTACK [ARG]
 *
 * Sets itself up the way sandbox-vsock does (vsock/main.c):
 * inherited fds closed, the connector forked with DIR and the one allowed
 * PORT (vsock_connector_start), cwd "/", then the bridge's own seccomp
 * filter (vsock_seccomp_install(SECCOMP_ROLE_BRIDGE), the same function,
 * not a copy). Then it tries ATTACK and reports on stdout:
 *   "BLOCKED <errno>"  the attempt failed (exit 0)
 *   "SUCCEEDED ..."    it worked (exit 3): the confinement has a hole
 * Being killed by SIGSYS also means blocked; the test checks the other
 * side (the listener, the file, the process) as the oracle either way.
 * "allowed" is the positive control: the connector's fd for PORT works.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../vsock/seccomp.h"
#include "../../vsock/vsock_connector.h"

/* No stdio after the filter: the first printf on a pipe fstat()s it. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		(void)!write(1, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static int result(long r, const char *what)
{
	if (r < 0) {
		say("BLOCKED %s (%s)\n", strerror(errno), what);
		return 0;
	}
	say("SUCCEEDED %s -> %ld\n", what, r);
	return 3;
}

static long unix_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (fmt_buf(sa.sun_path, sizeof(sa.sun_path), "%s", path))
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	(void)!write(fd, "attacker\n", 9);
	return fd;
}

int main(int argc, char **argv)
{
	program_name = "bridge_attacker";
	if (argc < 4 || argc > 5) {
		say("usage: bridge_attacker DIR PORT ATTACK [ARG]\n");
		return 2;
	}
	const char *dir = argv[1], *attack = argv[3], *arg = argc > 4 ? argv[4] : "";
	struct vsock_connector_cfg cfg = {.dir = dir, .nports = 1};
	cfg.ports[0] = (uint32_t)strtoul(argv[2], NULL, 10);

	/* ---- the bridge's set-up ---- */
	if (close_range(3, ~0u, 0) < 0)
		die("set-up: %s", strerror(errno));
	pid_t cpid;
	int conn = vsock_connector_start(&cfg, &cpid);
	if (conn < 0)
		die("connector: %s", strerror(-conn));
	if (chdir("/") < 0)
		die("chdir: %s", strerror(errno));
	int r = vsock_seccomp_install(SECCOMP_ROLE_BRIDGE);
	if (r < 0)
		die("seccomp: %s", strerror(-r));
	say("CONFINED\n");

	/* ---- the attack ---- */
	if (!strcmp(attack, "allowed")) {
		int fd = vsock_connector_connect(conn, cfg.ports[0]);
		if (fd < 0) {
			say("REFUSED %s\n", strerror(-fd));
			return 1;
		}
		/* what the bridge does with an accepted socket */
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			say("FCNTL %s\n", strerror(errno));
			return 1;
		}
		(void)!write(fd, "hello from the bridge\n", 22);
		say("CONNECTED\n");
		return 0;
	}
	if (!strcmp(attack, "connector-port")) { /* a port not in the list */
		int fd = vsock_connector_connect(conn, (uint32_t)strtoul(arg, NULL, 10));
		if (fd >= 0)
			(void)!write(fd, "attacker\n", 9);
		errno = fd < 0 ? -fd : 0;
		return result(fd, "connector for an unlisted port");
	}
	if (!strcmp(attack, "connect"))
		return result(unix_connect(arg), "connect to a unix socket");
	if (!strcmp(attack, "open"))
		return result(open(arg, O_RDONLY), "open");
	if (!strcmp(attack, "openat"))
		return result(openat(AT_FDCWD, arg, O_RDONLY | O_DIRECTORY), "openat");
	if (!strcmp(attack, "creat"))
		return result(open(arg, O_WRONLY | O_CREAT, 0600), "open O_CREAT");
	if (!strcmp(attack, "unlink"))
		return result(unlink(arg), "unlink");
	if (!strcmp(attack, "socket-inet"))
		return result(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET)");
	if (!strcmp(attack, "socket-inet6"))
		return result(socket(AF_INET6, SOCK_DGRAM, 0), "socket(AF_INET6)");
	if (!strcmp(attack, "socket-unix"))
		return result(socket(AF_UNIX, SOCK_STREAM, 0), "socket(AF_UNIX)");
	if (!strcmp(attack, "socketpair")) {
		int sv[2];
		return result(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
	}
	if (!strcmp(attack, "io_uring"))
		return result(syscall(__NR_io_uring_setup, 8, NULL), "io_uring_setup");
	if (!strcmp(attack, "x32-openat"))
		return result(syscall(__NR_openat | 0x40000000, AT_FDCWD, arg, O_RDONLY),
			      "openat by its x32 number");
	if (!strcmp(attack, "exec")) {
		char *const av[] = {(char *)arg, NULL};
		return result(execve(arg, av, NULL), "execve");
	}
	if (!strcmp(attack, "fork"))
		return result(fork(), "fork");
	if (!strcmp(attack, "i386-fork")) {
		/* The 32-bit entry point: same numbers mean other calls (2 is
		 * fork there), which is why the filter checks arch first. */
		long ret = 2;
		__asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
		if (ret == 0)
			_exit(0); /* the child of a fork that should not be */
		errno = ret < 0 ? (int)-ret : 0;
		return result(ret, "fork through int 0x80");
	}
	if (!strcmp(attack, "kill"))
		return result(kill((pid_t)atoi(arg), SIGKILL), "kill another process");
	if (!strcmp(attack, "fcntl-setown")) /* SIGIO to another process */
		return result(fcntl(conn, F_SETOWN, atoi(arg)), "fcntl F_SETOWN");
	if (!strcmp(attack, "ptrace"))
		return result(ptrace(PTRACE_ATTACH, (pid_t)atoi(arg), NULL, NULL),
			      "ptrace another process");
	if (!strcmp(attack, "mmap-exec")) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return result(p == MAP_FAILED ? -1 : 1, "mmap PROT_EXEC");
	}
	if (!strcmp(attack, "mprotect-exec")) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 2;
		return result(mprotect(p, 4096, PROT_READ | PROT_EXEC), "mprotect PROT_EXEC");
	}
	say("unknown attack %s\n", attack);
	return 2;
}
