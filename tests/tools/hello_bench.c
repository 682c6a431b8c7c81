/* hello_bench: the no-crypto tunnel benchmark of tests/bench/.
 *
 *   hello_bench sink
 *       a plain TCP server on a free loopback port; prints
 *       "hello_sink ready port N" and answers each connection's first
 *       bytes with a fixed TLS 1.3 ServerHello record (what a TLS server
 *       sends first: sandbox-proxy follows the server's flight up to it)
 *   hello_bench rate --mode MODE --to IP:PORT [--target T] [--conc C]
 *                    [--seconds S] [--sni NAME]
 *       C clients for S seconds, each in a loop: TCP connect, the proxy's
 *       preface (MODE as in tls_bench: direct, connect, sni, wire), a TLS
 *       ClientHello for NAME (made once by OpenSSL, so every proxy's SNI
 *       check sees a real one), read the sink's ServerHello, close.
 *       Prints one JSON object like tls_bench rate.
 *
 * No TLS handshake is done, so the CPU that remains is the proxies' own
 * and the kernel's: the ratios to direct show what the proxy costs. */
#include <errno.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>


#include "../../common/util.h"
#include "lib/bench_common.h"
enum state { S_CONNECTING, S_PREFACE_W, S_PREFACE_R, S_HELLO_W, S_ECHO_R };

static struct {
	enum bench_mode mode;
	struct sockaddr_in to;
	const char *target, *sni;
	int conc;
	double seconds;
} opt = {.conc = 32, .seconds = 3, .sni = "bench.test"};

static uint8_t preface[512], hello[2048];
static size_t preface_len, hello_len;

/* The sink's answer: a TLS 1.3 ServerHello (RFC 8446 4.1.3) with
 * supported_versions and an X25519 key_share; no handshake follows. */
static uint8_t server_hello[128];
static size_t server_hello_len;

static void make_server_hello(void)
{
	static const uint8_t ext[] = {
		0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, /* supported_versions */
		0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, /* key_share */
	};
	uint8_t *b = server_hello;
	size_t n = 9; /* record and handshake headers, filled in below */
	b[n++] = 3, b[n++] = 3;
	memset(b + n, 0x5a, 32), n += 32; /* random (not the HRR one) */
	b[n++] = 32, memset(b + n, 0, 32), n += 32; /* session id echo */
	b[n++] = 0x13, b[n++] = 0x01, b[n++] = 0; /* suite, compression */
	b[n++] = 0, b[n++] = (uint8_t)(sizeof(ext) + 32);
	memcpy(b + n, ext, sizeof(ext)), n += sizeof(ext);
	memset(b + n, 0x42, 32), n += 32; /* the X25519 share */
	b[0] = 0x16, b[1] = 3, b[2] = 3;
	b[3] = (uint8_t)((n - 5) >> 8), b[4] = (uint8_t)(n - 5);
	b[5] = 2, b[6] = 0;
	b[7] = (uint8_t)((n - 9) >> 8), b[8] = (uint8_t)(n - 9);
	server_hello_len = n;
}
static int epfd;

struct tun {
	int fd;
	enum state st;
	size_t off;
	char head[512];
	double t0;
	const char *err;
};

static void arm(struct tun *t, uint32_t ev, int op)
{
	struct epoll_event e = {.events = ev, .data.ptr = t};
	epoll_ctl(epfd, op, t->fd, &e);
}

static int tun_open(struct tun *t)
{
	memset(t, 0, sizeof(*t));
	t->t0 = bench_now();
	t->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0 ||
	    (connect(t->fd, (struct sockaddr *)&opt.to, sizeof(opt.to)) < 0 &&
	     errno != EINPROGRESS)) {
		t->err = "TCP connect failed";
		return -1;
	}
	t->st = S_CONNECTING;
	arm(t, EPOLLOUT, EPOLL_CTL_ADD);
	return 0;
}

static void tun_close(struct tun *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

/* 0: waiting, 1: done, -1: failed (t->err). */
static int step(struct tun *t)
{
	for (;;) {
		ssize_t n;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		switch (t->st) {
		case S_CONNECTING:
			if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr,
				       &sl) < 0 ||
			    soerr) {
				t->err = "TCP connect refused or failed";
				return -1;
			}
			t->st = preface_len ? S_PREFACE_W : S_HELLO_W;
			break;
		case S_PREFACE_W:
			n = write(t->fd, preface + t->off, preface_len - t->off);
			if (n < 0 && errno == EAGAIN)
				return arm(t, EPOLLOUT, EPOLL_CTL_MOD), 0;
			if (n <= 0) {
				t->err = "writing the preface failed";
				return -1;
			}
			t->off += (size_t)n;
			if (t->off < preface_len)
				break;
			t->off = 0;
			t->st = opt.mode == BENCH_CONNECT ? S_PREFACE_R : S_HELLO_W;
			break;
		case S_PREFACE_R: {
			/* Peek, then read exactly up to the end of the reply
			 * head (what follows is the sink's): one recv and one
			 * read per reply instead of a read per byte, so the
			 * client's own cost does not weigh on CONNECT. */
			size_t room = sizeof(t->head) - 1 - t->off;
			n = recv(t->fd, t->head + t->off, room, MSG_PEEK);
			if (n < 0 && errno == EAGAIN)
				return arm(t, EPOLLIN, EPOLL_CTL_MOD), 0;
			if (n <= 0) {
				t->err = "no CONNECT reply";
				return -1;
			}
			size_t have = t->off + (size_t)n;
			/* The terminator may straddle what was read before. */
			size_t from = t->off > 3 ? t->off - 3 : 0;
			const char *end = memmem(t->head + from, have - from,
						 "\r\n\r\n", 4);
			size_t take = end ? (size_t)(end + 4 - t->head) - t->off
					  : (size_t)n;
			if (read(t->fd, t->head + t->off, take) != (ssize_t)take) {
				t->err = "no CONNECT reply";
				return -1;
			}
			t->off += take;
			t->head[t->off] = 0;
			if (!end) {
				if (t->off + 1 >= sizeof(t->head)) {
					t->err = "no CONNECT reply";
					return -1;
				}
				break;
			}
			if (strncmp(t->head, "HTTP/1.", 7) ||
			    strncmp(t->head + 8, " 200", 4)) {
				t->err = "CONNECT refused";
				return -1;
			}
			t->off = 0;
			t->st = S_HELLO_W;
			break;
		}
		case S_HELLO_W:
			n = write(t->fd, hello + t->off, hello_len - t->off);
			if (n < 0 && errno == EAGAIN)
				return arm(t, EPOLLOUT, EPOLL_CTL_MOD), 0;
			if (n <= 0) {
				t->err = "writing the ClientHello failed";
				return -1;
			}
			t->off += (size_t)n;
			if (t->off < hello_len)
				break;
			t->off = 0;
			t->st = S_ECHO_R;
			break;
		case S_ECHO_R: {
			uint8_t buf[2048];
			n = read(t->fd, buf, server_hello_len - t->off);
			if (n < 0 && errno == EAGAIN)
				return arm(t, EPOLLIN, EPOLL_CTL_MOD), 0;
			if (n <= 0 ||
			    memcmp(buf, server_hello + t->off, (size_t)n)) {
				t->err = "the ServerHello did not come back";
				return -1;
			}
			t->off += (size_t)n;
			if (t->off == server_hello_len)
				return 1;
			break;
		}
		}
	}
}

/* The tunnel as bench_rate_run() drives it. */
static int op_open(void *t)
{
	return tun_open(t);
}

static int op_step(void *t)
{
	return step(t);
}

static void op_close(void *t, int done)
{
	(void)done;
	tun_close(t);
}

static int op_fd(const void *t)
{
	return ((const struct tun *)t)->fd;
}

static double op_t0(const void *t)
{
	return ((const struct tun *)t)->t0;
}

static const char *op_err(const void *t)
{
	return ((const struct tun *)t)->err;
}

static const struct bench_tun_ops tun_ops = {
	op_open, op_step, op_close, op_fd, op_t0, op_err,
};

static int run_rate(void)
{
	struct tun *ts = calloc((size_t)opt.conc, sizeof(*ts));
	struct bench_rate r;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!ts || epfd < 0 ||
	    bench_rate_run(epfd, ts, sizeof(*ts), opt.conc, opt.seconds, 10,
			   &tun_ops, &r) < 0)
		return 1;
	printf("{\"test\":\"hello\",\"ok\":%s,\"tunnels\":%ld,\"errors\":%ld,"
	       "\"seconds\":%.3f,\"per_sec\":%.1f,\"setup_p50_ms\":%.3f,"
	       "\"conc\":%d%s%s%s}\n",
	       r.done > 0 && r.errors * 100 <= r.done ? "true" : "false", r.done,
	       r.errors, r.elapsed, (double)r.done / r.elapsed,
	       r.nlat ? bench_pct(r.lat, r.nlat, 0.5) * 1e3 : -1.0, opt.conc,
	       r.first_err ? ",\"error\":\"" : "", r.first_err ? r.first_err : "",
	       r.first_err ? "\"" : "");
	free(r.lat);
	free(ts);
	return 0;
}

/* The backend: every connection's first bytes get the ServerHello;
 * later bytes (none, from hello_bench rate) are read and dropped. A
 * connection is answered once (one flag per descriptor). */
static uint8_t answered[1 << 20];

static int run_sink(void)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(l, 4096) < 0 || getsockname(l, (struct sockaddr *)&a, &al))
		return 1;
	printf("hello_sink ready port %u\n", ntohs(a.sin_port));
	fflush(stdout);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event e = {.events = EPOLLIN, .data.fd = l};
	epoll_ctl(epfd, EPOLL_CTL_ADD, l, &e);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(epfd, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == l) {
				int c;
				while ((c = accept4(l, NULL, NULL,
						    SOCK_NONBLOCK |
							    SOCK_CLOEXEC)) >= 0) {
					if ((size_t)c >= sizeof(answered)) {
						close(c);
						continue;
					}
					answered[c] = 0;
					struct epoll_event ce = {
						.events = EPOLLIN, .data.fd = c};
					epoll_ctl(epfd, EPOLL_CTL_ADD, c, &ce);
				}
				continue;
			}
			uint8_t buf[16384];
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r <= 0) {
				close(fd);
				continue;
			}
			/* A small answer fits the socket buffer: one write. */
			if (!answered[fd] &&
			    write(fd, server_hello, server_hello_len) !=
				    (ssize_t)server_hello_len)
				close(fd);
			answered[fd] = 1;
		}
	}
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	signal(SIGPIPE, SIG_IGN); /* a peer that closed is an error, not death */
	make_server_hello();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (argc == 2 && !strcmp(argv[1], "sink"))
		return run_sink();
	if (argc < 2 || strcmp(argv[1], "rate"))
		goto usage;
	const char *mode = "direct", *to = NULL;
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "--mode"))
			mode = v;
		else if (!strcmp(k, "--to"))
			to = v;
		else if (!strcmp(k, "--target"))
			opt.target = v;
		else if (!strcmp(k, "--sni"))
			opt.sni = v;
		else if (!strcmp(k, "--conc"))
			opt.conc = atoi(v);
		else if (!strcmp(k, "--seconds"))
			opt.seconds = atof(v);
		else
			goto usage;
	}
	if (bench_parse_mode(mode, &opt.mode) < 0 || !to ||
	    bench_parse_hostport(to, &opt.to) < 0 || opt.conc < 1 ||
	    opt.conc > 4096 || opt.seconds <= 0)
		goto usage;
	if (bench_preface(opt.mode, opt.target, preface, sizeof(preface),
			  &preface_len) < 0 ||
	    bench_client_hello(opt.sni, hello, sizeof(hello), &hello_len) < 0) {
		fprintf(stderr, "hello_bench: bad --target or no ClientHello\n");
		return 2;
	}
	return run_rate();
usage:
	fprintf(stderr, "usage: hello_bench sink | hello_bench rate --mode "
			"direct|connect|sni|wire --to IP:PORT [--target T] "
			"[--conc C] [--seconds S] [--sni NAME]\n");
	return 2;
}
