/* Start the forwarders, each in its own process. Sockets are bound as
 * root, then the process drops to nobody: a forwarder needs no privilege
 * to accept, read SO_ORIGINAL_DST or connect to vsock. */
#include "guest.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

void forwarder_become(const char *name)
{
	prctl(PR_SET_NAME, name);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
	if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
	    setresuid(65534, 65534, 65534) < 0)
		_exit(1);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static int spawn(const char *name, int a, int b, int which)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		return 0;
	forwarder_become(name);
	switch (which) {
	case 0:
		fwd_tcp_run(a);
	case 1:
		fwd_proxy_run(a);
	default:
		fwd_dns_run(a, b);
	}
}

int forwarders_start(const char **what)
{
	/* 0.0.0.0: redirected traffic from other interfaces (containers,
	 * later) arrives at the interface's own address. */
	int t = listen_tcp("0.0.0.0", FWD_TCP_PORT, SOCK_STREAM);
	int p = listen_tcp("127.0.0.1", FWD_PROXY_PORT, SOCK_STREAM);
	int du = listen_tcp(FWD_DNS_ADDR, 53, SOCK_DGRAM);
	int dt = listen_tcp(FWD_DNS_ADDR, 53, SOCK_STREAM);
	int r = 0;
	if (t < 0 || p < 0 || du < 0 || dt < 0) {
		*what = "forwarder listen";
		r = t < 0 ? t : p < 0 ? p : du < 0 ? du : dt;
	} else if ((r = spawn("fwd-tcp", t, -1, 0)) ||
		   (r = spawn("fwd-proxy", p, -1, 1)) ||
		   (r = spawn("fwd-dns", du, dt, 2))) {
		*what = "forwarder fork";
	} else {
		r = fwd_inbound_start(what);
	}
	int fds[] = {t, p, du, dt};
	for (int i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}
