/* tls_bench: the load generator of the proxy benchmark (tests/bench/).
 *
 *   tls_bench TEST --mode MODE --to HOST:PORT --ca FILE [options]
 *
 * TEST is one of
 *   rate     new TLS tunnels per second: --conc C clients for --seconds T,
 *            each doing connect, proxy preface, full handshake, one 1-byte
 *            echo round trip, close
 *   bulk     download --bytes N through one tunnel
 *   latency  --count N echo round trips of --size S bytes over one tunnel
 *   idle     open --count N tunnels (handshake + one echo), keep them idle,
 *            report the memory (Pss) of --pids P[,P...] and their
 *            descendants before and after
 * MODE says how a tunnel reaches the tls_sink backend:
 *   direct   TCP to --to, TLS
 *   connect  TCP to the proxy at --to, "CONNECT --target", TLS
 *   sni      TCP to --to (an SNI-routing proxy), TLS
 *   wire     TCP to --to, the 28-byte wire header naming --target (an IP
 *            literal), TLS
 * The TLS client verifies the sink's certificate (--ca) and name (--sni,
 * default bench.test), and never resumes a session.
 *
 * Prints one JSON object on stdout. Every phase has a deadline, so a proxy
 * that stops answering makes a failed result, not a hung benchmark.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../../common/util.h"
#include "lib/bench_common.h"
#include "lib/proc_tree.h"

static struct {
	enum bench_mode mode;
	struct sockaddr_in to;
	const char *target; /* host:port for CONNECT, ip:port for wire */
	const char *sni;
	const char *ca;
	int conc;
	double seconds;
	uint64_t bytes;
	int count;
	int size;
	const char *pids;
	double timeout; /* per phase, seconds */
} opt = {.sni = "bench.test", .conc = 32, .seconds = 5, .bytes = 1 << 30,
	 .count = 10000, .size = 64, .timeout = 60};

static SSL_CTX *ctx;
static uint8_t preface[1024];
static size_t preface_len;

/* --- one tunnel as a non-blocking state machine ------------------------- */

enum cstate {
	C_CONNECTING, /* TCP connect in progress */
	C_PREFACE_W,  /* writing CONNECT request or wire header */
	C_PREFACE_R,  /* reading the CONNECT reply head */
	C_HANDSHAKE,  /* SSL_connect */
	C_PING_W,     /* writing "ex": echo mode, one byte */
	C_PING_R,     /* waiting for the echoed byte */
	C_READY,      /* tunnel proven end to end */
};

struct tun {
	int fd;
	SSL *ssl; /* owned */
	enum cstate state;
	uint32_t events;
	size_t off;
	char head[512];
	double t0;
	const char *err; /* static string on failure */
	int ping;        /* do the echo round trip before C_READY */
};

static int epfd = -1;

static void tun_close(struct tun *t)
{
	if (t->fd >= 0) {
		if (epfd >= 0)
			epoll_ctl(epfd, EPOLL_CTL_DEL, t->fd, NULL);
		close(t->fd);
	}
	SSL_free(t->ssl);
	t->ssl = NULL;
	t->fd = -1;
}

static int tun_open(struct tun *t, int ping)
{
	memset(t, 0, sizeof(*t));
	t->ping = ping;
	t->t0 = bench_now();
	t->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0) {
		t->err = "socket() failed (fd limit?)";
		return -1;
	}
	int one = 1;
	setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t->state = C_CONNECTING;
	if (connect(t->fd, (struct sockaddr *)&opt.to, sizeof(opt.to)) < 0 &&
	    errno != EINPROGRESS) {
		t->err = errno == EADDRNOTAVAIL ? "connect: no free local port"
						: "connect failed";
		return -1;
	}
	t->events = EPOLLOUT;
	if (epfd >= 0) {
		struct epoll_event e = {.events = EPOLLOUT, .data.ptr = t};
		epoll_ctl(epfd, EPOLL_CTL_ADD, t->fd, &e);
	}
	return 0;
}

static void want(struct tun *t, uint32_t ev)
{
	if (ev == t->events)
		return;
	t->events = ev;
	if (epfd >= 0) {
		struct epoll_event e = {.events = ev, .data.ptr = t};
		epoll_ctl(epfd, EPOLL_CTL_MOD, t->fd, &e);
	}
}

static int ssl_block(struct tun *t, int ret, const char *what)
{
	switch (SSL_get_error(t->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		want(t, EPOLLIN);
		return 0;
	case SSL_ERROR_WANT_WRITE:
		want(t, EPOLLOUT);
		return 0;
	default:
		ERR_clear_error();
		t->err = what;
		return -1;
	}
}

/* Drive t as far as it goes: 1 ready, 0 blocked, -1 failed (t->err). */
static int tun_step(struct tun *t)
{
	for (;;) {
		ssize_t n;
		size_t got;
		int r, soerr = 0;
		socklen_t sl = sizeof(soerr);
		switch (t->state) {
		case C_CONNECTING:
			if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr,
				       &sl) < 0 ||
			    soerr) {
				t->err = "TCP connect refused or failed";
				return -1;
			} else {
				struct sockaddr_in peer;
				socklen_t pl = sizeof(peer);
				if (getpeername(t->fd, (struct sockaddr *)&peer,
						&pl) < 0) {
					want(t, EPOLLOUT); /* still connecting */
					return 0;
				}
			}
			t->state = preface_len ? C_PREFACE_W : C_HANDSHAKE;
			break;
		case C_PREFACE_W:
			n = write(t->fd, preface + t->off, preface_len - t->off);
			if (n < 0 && errno == EAGAIN) {
				want(t, EPOLLOUT);
				return 0;
			}
			if (n <= 0) {
				t->err = "writing the proxy preface failed";
				return -1;
			}
			t->off += (size_t)n;
			if (t->off < preface_len)
				break;
			t->off = 0;
			t->state = opt.mode == BENCH_CONNECT ? C_PREFACE_R
							 : C_HANDSHAKE;
			break;
		case C_PREFACE_R:
			/* One byte at a time: the reply head must not be
			 * over-read into the TLS stream (it never is, since
			 * the server speaks only after our ClientHello, but a
			 * wrong proxy should fail clearly). */
			n = read(t->fd, t->head + t->off,
				 sizeof(t->head) - 1 - t->off);
			if (n < 0 && errno == EAGAIN) {
				want(t, EPOLLIN);
				return 0;
			}
			if (n <= 0) {
				t->err = "proxy closed before the CONNECT reply";
				return -1;
			}
			t->off += (size_t)n;
			t->head[t->off] = 0;
			char *end = strstr(t->head, "\r\n\r\n");
			if (!end) {
				if (t->off >= sizeof(t->head) - 1) {
					t->err = "CONNECT reply head too long";
					return -1;
				}
				break;
			}
			if (strncmp(t->head, "HTTP/1.", 7) ||
			    strncmp(t->head + 8, " 200", 4)) {
				t->err = "CONNECT refused (status not 200)";
				return -1;
			}
			if ((size_t)(end + 4 - t->head) != t->off) {
				t->err = "bytes after the CONNECT reply head";
				return -1;
			}
			t->state = C_HANDSHAKE;
			break;
		case C_HANDSHAKE:
			if (!t->ssl) {
				t->ssl = SSL_new(ctx);
				if (!t->ssl) {
					t->err = "SSL_new failed";
					return -1;
				}
				SSL_set_fd(t->ssl, t->fd);
				SSL_set_tlsext_host_name(t->ssl, opt.sni);
				SSL_set1_host(t->ssl, opt.sni);
			}
			r = SSL_connect(t->ssl);
			if (r != 1)
				return ssl_block(t, r, "TLS handshake failed");
			if (!t->ping) {
				t->state = C_READY;
				return 1;
			}
			t->state = C_PING_W;
			break;
		case C_PING_W:
			if (!SSL_write_ex(t->ssl, "ex", 2, &got))
				return ssl_block(t, 0, "TLS write failed");
			t->state = C_PING_R;
			break;
		case C_PING_R: {
			char c;
			if (!SSL_read_ex(t->ssl, &c, 1, &got))
				return ssl_block(t, 0, "echo read failed");
			if (c != 'x') {
				t->err = "echo returned the wrong byte";
				return -1;
			}
			t->state = C_READY;
			want(t, 0);
			return 1;
		}
		case C_READY:
			return 1;
		}
	}
}

/* Establish one tunnel synchronously (poll through a private epoll). */
static int tun_establish(struct tun *t, int ping)
{
	epfd = epoll_create1(EPOLL_CLOEXEC);
	int r = tun_open(t, ping);
	double deadline = bench_now() + opt.timeout;
	while (r == 0) {
		r = tun_step(t);
		if (r)
			break;
		struct epoll_event e;
		int left = (int)((deadline - bench_now()) * 1000);
		if (left <= 0) {
			t->err = "timed out establishing the tunnel";
			r = -1;
			break;
		}
		epoll_wait(epfd, &e, 1, left);
	}
	epoll_ctl(epfd, EPOLL_CTL_DEL, t->fd, NULL);
	close(epfd);
	epfd = -1;
	if (r < 0)
		return -1;
	/* The rest of the test is blocking I/O with a receive timeout. */
	fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) & ~O_NONBLOCK);
	struct timeval tv = {.tv_sec = (time_t)opt.timeout};
	setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(t->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return 0;
}

static void fail_json(const char *test, const char *err)
{
	printf("{\"test\":\"%s\",\"ok\":false,\"error\":\"%s\"}\n", test, err);
}

/* --- rate ---------------------------------------------------------------- */

/* The tunnel as bench_rate_run() drives it: each proven by the echo. */
static int op_open(void *t)
{
	return tun_open(t, 1);
}

static int op_step(void *t)
{
	return tun_step(t);
}

static void op_close(void *t, int done)
{
	if (done)
		SSL_shutdown(((struct tun *)t)->ssl);
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
	    bench_rate_run(epfd, ts, sizeof(*ts), opt.conc, opt.seconds,
			   opt.timeout, &tun_ops, &r) < 0)
		return 1;
	printf("{\"test\":\"rate\",\"ok\":%s,\"tunnels\":%ld,\"errors\":%ld,"
	       "\"seconds\":%.3f,\"per_sec\":%.1f,\"setup_p50_ms\":%.3f,"
	       "\"setup_p99_ms\":%.3f,\"conc\":%d%s%s%s}\n",
	       r.done > 0 && r.errors * 100 <= r.done ? "true" : "false", r.done,
	       r.errors, r.elapsed, (double)r.done / r.elapsed,
	       bench_pct(r.lat, r.nlat, 0.5) * 1e3,
	       bench_pct(r.lat, r.nlat, 0.99) * 1e3, opt.conc,
	       r.first_err ? ",\"error\":\"" : "", r.first_err ? r.first_err : "",
	       r.first_err ? "\"" : "");
	free(r.lat);
	free(ts);
	return 0;
}

/* --- bulk ---------------------------------------------------------------- */

static int run_bulk(void)
{
	struct tun t;
	if (tun_establish(&t, 0) < 0) {
		fail_json("bulk", t.err);
		return 0;
	}
	uint8_t cmd[9] = {'b'};
	for (int i = 0; i < 8; i++)
		cmd[1 + i] = (uint8_t)(opt.bytes >> (56 - 8 * i));
	double t0 = bench_now();
	size_t got;
	uint64_t total = 0;
	static uint8_t buf[1 << 16];
	if (!SSL_write_ex(t.ssl, cmd, sizeof(cmd), &got)) {
		fail_json("bulk", "writing the command failed");
		return 0;
	}
	while (total < opt.bytes && SSL_read_ex(t.ssl, buf, sizeof(buf), &got))
		total += got;
	double el = bench_now() - t0;
	tun_close(&t);
	printf("{\"test\":\"bulk\",\"ok\":%s,\"bytes\":%llu,\"seconds\":%.3f,"
	       "\"mib_per_sec\":%.1f%s}\n",
	       total == opt.bytes ? "true" : "false",
	       (unsigned long long)total, el, (double)total / el / 1048576.0,
	       total == opt.bytes ? "" : ",\"error\":\"short download\"");
	return 0;
}

/* --- latency ------------------------------------------------------------- */

static int run_latency(void)
{
	struct tun t;
	if (tun_establish(&t, 0) < 0) {
		fail_json("latency", t.err);
		return 0;
	}
	size_t sz = (size_t)opt.size, got;
	uint8_t out[4096], in[4096];
	if (sz < 1 || sz > sizeof(out)) {
		fail_json("latency", "--size must be 1..4096");
		return 0;
	}
	memset(out, 'L', sz);
	double *lat = calloc((size_t)opt.count, sizeof(double));
	if (!lat || !SSL_write_ex(t.ssl, "e", 1, &got)) {
		fail_json("latency", "writing the command failed");
		return 0;
	}
	int warm = 200, done = 0;
	double deadline = bench_now() + opt.timeout;
	for (int i = 0; i < warm + opt.count && bench_now() < deadline; i++) {
		double t0 = bench_now();
		if (!SSL_write_ex(t.ssl, out, sz, &got))
			break;
		size_t have = 0;
		while (have < sz && SSL_read_ex(t.ssl, in + have, sz - have,
						&got))
			have += got;
		if (have < sz)
			break;
		if (i >= warm)
			lat[done++] = bench_now() - t0;
	}
	tun_close(&t);
	qsort(lat, (size_t)done, sizeof(double), bench_cmp_double);
	double sum = 0;
	for (int i = 0; i < done; i++)
		sum += lat[i];
	printf("{\"test\":\"latency\",\"ok\":%s,\"count\":%d,\"size\":%zu,"
	       "\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f%s}\n",
	       done == opt.count ? "true" : "false", done, sz,
	       bench_pct(lat, (size_t)done, 0.5) * 1e6,
	       bench_pct(lat, (size_t)done, 0.99) * 1e6,
	       done ? sum / done * 1e6 : 0.0,
	       done == opt.count ? "" : ",\"error\":\"round trips failed\"");
	free(lat);
	return 0;
}

/* --- idle ---------------------------------------------------------------- */

static int run_idle(void)
{
	int inflight_max = 64, nproc0 = 0, nproc1 = 0;
	struct tun *ts = calloc((size_t)opt.count, sizeof(*ts));
	if (!ts)
		return 1;
	/* Prove the path once before the baseline, so lazily initialised
	 * state (TLS libraries, DNS caches, pools) is not counted per tunnel. */
	struct tun warm;
	if (tun_establish(&warm, 1) < 0) {
		fail_json("idle", warm.err);
		free(ts);
		return 0;
	}
	tun_close(&warm);
	usleep(300 * 1000);
	long before = proc_tree_kib(opt.pids, &nproc0);

	epfd = epoll_create1(EPOLL_CLOEXEC);
	int next = 0, ready = 0, failed = 0, inflight = 0;
	const char *first_err = NULL;
	double start = bench_now(), deadline = start + opt.timeout;
	struct epoll_event evs[256];
	while (ready + failed < opt.count && bench_now() < deadline) {
		while (inflight < inflight_max && next < opt.count &&
		       failed < 100) {
			struct tun *t = &ts[next++];
			if (tun_open(t, 1) < 0) {
				failed++;
				if (!first_err)
					first_err = t->err;
				tun_close(t);
				continue;
			}
			inflight++;
		}
		if (!inflight)
			break;
		int n = epoll_wait(epfd, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct tun *t = evs[i].data.ptr;
			if (t->fd < 0 || t->state == C_READY)
				continue; /* stale event in this batch */
			int r = tun_step(t);
			if (r == 0)
				continue;
			inflight--;
			if (r > 0) {
				ready++;
				/* Idle from here; the probe below finds out
				 * whether the proxy kept it. */
				epoll_ctl(epfd, EPOLL_CTL_DEL, t->fd, NULL);
				SSL_set_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS);
			} else {
				failed++;
				if (!first_err)
					first_err = t->err;
				tun_close(t);
			}
		}
	}
	double est = bench_now() - start;
	if (ready + failed < opt.count && !first_err)
		first_err = "timed out opening tunnels";
	usleep(1000 * 1000); /* let the proxy settle its buffers */
	long after = proc_tree_kib(opt.pids, &nproc1);
	/* Are the tunnels still there? Probe a sample with one more echo. */
	int alive = 0, probed = 0;
	for (int i = 0; i < opt.count && probed < 100; i += 97) {
		struct tun *t = &ts[i];
		if (t->state != C_READY || t->fd < 0)
			continue;
		probed++;
		fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) & ~O_NONBLOCK);
		struct timeval tv = {.tv_sec = 5};
		setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		size_t got;
		char c;
		if (SSL_write_ex(t->ssl, "x", 1, &got) &&
		    SSL_read_ex(t->ssl, &c, 1, &got) && c == 'x')
			alive++;
	}
	for (int i = 0; i < opt.count; i++)
		if (ts[i].fd >= 0 || ts[i].ssl)
			tun_close(&ts[i]);
	printf("{\"test\":\"idle\",\"ok\":%s,\"target\":%d,\"established\":%d,"
	       "\"failed\":%d,\"open_seconds\":%.2f,\"probed\":%d,"
	       "\"alive\":%d,\"procs\":%d,\"kib_before\":%ld,"
	       "\"kib_after\":%ld,\"kib_per_tunnel\":%.2f%s%s%s}\n",
	       ready == opt.count && alive == probed ? "true" : "false",
	       opt.count, ready, failed, est, probed, alive, nproc1, before,
	       after,
	       before >= 0 && after >= 0 && ready
		       ? (double)(after - before) / ready
		       : -1.0,
	       first_err ? ",\"error\":\"" : "", first_err ? first_err : "",
	       first_err ? "\"" : "");
	free(ts);
	return 0;
}

/* --- main ---------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: tls_bench rate|bulk|latency|idle --mode "
		"direct|connect|sni|wire --to IP:PORT --ca FILE\n"
		"       [--target HOST:PORT] [--sni NAME] [--conc C] "
		"[--seconds T] [--bytes N]\n"
		"       [--count N] [--size S] [--pids P,...] [--timeout S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	program_name = "tls_bench";
	if (argc < 2)
		usage();
	const char *test = argv[1];
	const char *to = NULL, *mode = "direct";
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(k, "--mode"))
			mode = v;
		else if (!strcmp(k, "--to"))
			to = v;
		else if (!strcmp(k, "--target"))
			opt.target = v;
		else if (!strcmp(k, "--sni"))
			opt.sni = v;
		else if (!strcmp(k, "--ca"))
			opt.ca = v;
		else if (!strcmp(k, "--conc"))
			opt.conc = atoi(v);
		else if (!strcmp(k, "--seconds"))
			opt.seconds = atof(v);
		else if (!strcmp(k, "--bytes"))
			opt.bytes = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--count"))
			opt.count = atoi(v);
		else if (!strcmp(k, "--size"))
			opt.size = atoi(v);
		else if (!strcmp(k, "--pids"))
			opt.pids = v;
		else if (!strcmp(k, "--timeout"))
			opt.timeout = atof(v);
		else
			usage();
	}
	if (bench_parse_mode(mode, &opt.mode) < 0 || !to ||
	    bench_parse_hostport(to, &opt.to) < 0 || !opt.ca ||
	    opt.conc < 1 || opt.count < 1 || opt.timeout <= 0) {
		fprintf(stderr, "tls_bench: bad --mode, --to, --ca, --conc or "
				"--count\n");
		usage();
	}
	if (bench_preface(opt.mode, opt.target, preface, sizeof(preface),
			  &preface_len) < 0) {
		fprintf(stderr, "tls_bench: --mode %s needs --target "
				"(IP:PORT for wire, HOST:PORT for connect)\n",
			mode);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	bench_raise_nofile();

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != 1) {
		fprintf(stderr, "tls_bench: cannot load CA file %s\n", opt.ca);
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

	if (!strcmp(test, "rate"))
		return run_rate();
	if (!strcmp(test, "bulk"))
		return run_bulk();
	if (!strcmp(test, "latency"))
		return run_latency();
	if (!strcmp(test, "idle"))
		return run_idle();
	usage();
}
