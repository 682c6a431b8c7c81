/* sandbox-vsock: vhost-user-vsock back-end for one QEMU guest.
 *
 *   sandbox-vsock --socket PATH --dir DIR [--port P]... [--listen PATH]
 *                 [--guest-cid N] [--ready-fd N] [--verbose]
 *
 * Order: parse arguments, close inherited descriptors, create the sockets
 * (0600), fork the connector (the only process that may connect, and only
 * to DIR/vsock_P for the --port list), say "ready" on --ready-fd (common/
 * ready_fd.h), accept QEMU's single vhost-user
 * connection, close the vhost-user listener, install the bridge's seccomp
 * allow list, then serve until QEMU disconnects (exit 0). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/ready_fd.h"
#include "../common/unix_listen.h"
#include "../common/util.h"
#include "seccomp.h"
#include "vhost_user.h"
#include "vsock_connector.h"
#include "vsock_mux.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: sandbox-vsock --socket PATH --dir DIR [--port P]...\n"
		   "                     [--listen PATH] [--guest-cid N] [--verbose]\n"
		   "  --socket PATH   vhost-user socket QEMU connects to\n"
		   "  --dir DIR       guest port P connects to DIR/vsock_P\n"
		   "  --port P        a port the guest may reach (repeat; default\n"
		   "                  1080 and 3128, the proxy's); others get RST\n"
		   "  --listen PATH   clients send \"CONNECT <port>\\n\" to reach the guest\n"
		   "  --guest-cid N   guest CID (default 3)\n"
		   "  --ready-fd N    write \"ready\" to descriptor N once listening\n");
}

static int listen_unix(const char *path)
{
	int fd = unix_listen_0600(path, 64, 0);
	if (fd == -ENAMETOOLONG)
		die("socket path too long (max %zu bytes): %s",
		    sizeof(((struct sockaddr_un *)0)->sun_path) - 1, path);
	if (fd < 0)
		die("listen on %s: %s", path, strerror(-fd));
	return fd;
}

/* The connector is our child: whoever reaps us must find it gone too, so
 * on SIGTERM (the launcher's stop) and at exit we close its socket (it
 * exits on EOF) and reap it before going. Signal-safe calls only. */
static int connector_sock = -1;
static pid_t connector_pid = -1;

static void reap_connector(void)
{
	if (connector_sock >= 0)
		close(connector_sock);
	connector_sock = -1;
	if (connector_pid > 0)
		while (waitpid(connector_pid, NULL, 0) < 0 && errno == EINTR)
			;
	connector_pid = -1;
}

static void on_term(int sig)
{
	reap_connector();
	_exit(128 + sig);
}

static void catch_term(void)
{
	struct sigaction sa = {.sa_handler = on_term};
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0)
		die("sigaction: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	program_name = "sandbox-vsock";
	const char *sock_path = NULL, *dir = NULL, *listen_path = NULL;
	const char *ready_arg = NULL;
	int ready = -1;
	uint64_t cid = 3;
	bool verbose = false;
	struct vsock_connector_cfg ccfg = {0};
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"dir", required_argument, NULL, 'd'},
		{"listen", required_argument, NULL, 'l'},
		{"guest-cid", required_argument, NULL, 'c'},
		{"port", required_argument, NULL, 'p'},
		{"ready-fd", required_argument, NULL, 'r'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's': sock_path = optarg; break;
		case 'd': dir = optarg; break;
		case 'l': listen_path = optarg; break;
		case 'v': verbose = true; break;
		case 'r': ready_arg = optarg; break;
		case 'c': {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			/* 0-2 and the 32-bit "any" value are reserved. */
			if (errno || *end || v < 3 || v >= 0xffffffffull)
				die("--guest-cid: want a number from 3 to 4294967294, got '%s'",
				    optarg);
			cid = v;
			break;
		}
		case 'p': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || *end || optarg[0] < '0' || optarg[0] > '9' ||
			    v > 0xffffffffu)
				die("--port: want a number from 0 to 4294967295, got '%s'",
				    optarg);
			if (ccfg.nports == VSOCK_CONNECTOR_MAX_PORTS)
				die("--port: at most %d ports", VSOCK_CONNECTOR_MAX_PORTS);
			ccfg.ports[ccfg.nports++] = (uint32_t)v;
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!sock_path || !dir || optind != argc) {
		usage(stderr);
		return 2;
	}
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		die("--dir %s: not a directory", dir);
	signal(SIGPIPE, SIG_IGN);
	if (ready_arg && ready_fd_parse(ready_arg, &ready) < 0)
		die("--ready-fd %s: not an open descriptor above 2", ready_arg);
	/* Whatever the starter leaked to us is not the bridge's to hold
	 * (but for the readiness pipe, closed once it has said so). */
	if ((ready > 3 && close_range(3, (unsigned)ready - 1, 0) < 0) ||
	    close_range(ready >= 3 ? (unsigned)ready + 1 : 3, ~0u, 0) < 0)
		die("close_range: %s", strerror(errno));
	if (ccfg.nports == 0) {
		ccfg.ports[ccfg.nports++] = 1080;
		ccfg.ports[ccfg.nports++] = 3128;
	}
	ccfg.dir = dir;

	int vl = listen_unix(sock_path);
	int hl = listen_path ? listen_unix(listen_path) : -1;
	if (hl >= 0) {
		if (fcntl(hl, F_SETFL, fcntl(hl, F_GETFL) | O_NONBLOCK) < 0)
			die("listen socket: %s", strerror(errno));
	}
	pid_t cpid;
	int conn = vsock_connector_start(&ccfg, &cpid);
	if (conn < 0)
		die("starting the connector: %s", strerror(-conn));
	connector_sock = conn;
	connector_pid = cpid;
	atexit(reap_connector); /* die() paths too */
	catch_term();
	/* Both sockets listen and the connector runs: QEMU and the launcher
	 * may connect. (The connector's copy of the pipe is gone: it keeps
	 * fd 3, its socket pair, and closes the rest.) */
	if (ready_fd_send(ready) < 0 && verbose)
		fprintf(stderr, "sandbox-vsock: --ready-fd: nobody listens\n");
	if (verbose)
		fprintf(stderr, "sandbox-vsock: connector pid %d; waiting for QEMU on %s\n",
			(int)cpid, sock_path);
	int qs = accept4(vl, NULL, NULL, SOCK_CLOEXEC);
	if (qs < 0)
		die("accept on %s: %s", sock_path, strerror(errno));
	/* One device, one front-end: nobody else may connect later. */
	close(vl);
	unlink(sock_path);

	struct vu_dev dev;
	vu_dev_init(&dev, qs, cid);
	dev.verbose = verbose;
	struct vsock_mux mux;
	int r = vsock_mux_init(&mux, &dev, conn, hl);
	if (r < 0)
		die("event loop set-up: %s", strerror(-r));
	mux.verbose = verbose;

	/* From here on the guest's memory and rings are read: nothing but
	 * the fds held so far and the connector's answers. */
	if (chdir("/") < 0) /* the launcher's cwd is the user's project */
		die("chdir /: %s", strerror(errno));
	r = vsock_seccomp_install(SECCOMP_ROLE_BRIDGE);
	if (r < 0)
		die("installing the seccomp filter: %s", strerror(-r));
	const char *why = "";
	r = vsock_mux_run(&mux, &why);
	if (verbose || r < 0)
		fprintf(stderr,
			"sandbox-vsock: %s%s (guest->host %llu bytes, host->guest %llu bytes)\n",
			r < 0 ? "stopping: " : "", r < 0 ? why : "front-end gone",
			(unsigned long long)mux.bytes_to_host,
			(unsigned long long)mux.bytes_to_guest);
	vsock_mux_destroy(&mux);
	vu_dev_destroy(&dev);
	/* No unlink here: the filter forbids it and the launcher removes
	 * the state directory. */
	reap_connector();
	if (hl >= 0)
		close(hl);
	return r < 0 ? 1 : 0;
}
