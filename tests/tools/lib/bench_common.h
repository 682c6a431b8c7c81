/* What the load generators of tests/bench/ share (tls_bench, hello_bench):
 * the clock, limits, IP:PORT parsing, the proxy preface of each mode, an
 * OpenSSL-made ClientHello, percentiles, and the connection-rate loop. */
#ifndef TESTS_TOOLS_BENCH_COMMON_H
#define TESTS_TOOLS_BENCH_COMMON_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

/* How a client reaches the sink: straight, through an explicit proxy's
 * CONNECT, by SNI (a TLS-passthrough proxy), or with the wire header. */
enum bench_mode { BENCH_DIRECT, BENCH_CONNECT, BENCH_SNI, BENCH_WIRE };

double bench_now(void);
/* Raise RLIMIT_NOFILE as far as allowed (65536, else the hard limit). */
void bench_raise_nofile(void);
/* "a.b.c.d:port" -> sa; -EINVAL on anything else. */
int bench_parse_hostport(const char *s, struct sockaddr_in *sa);
/* "direct", "connect", "sni", "wire" -> *m; -EINVAL otherwise. */
int bench_parse_mode(const char *s, enum bench_mode *m);
/* The bytes a tunnel starts with in mode: a CONNECT request for target
 * (HOST:PORT), a wire header for target (IP:PORT), or none. -EINVAL
 * without a usable target, -ENAMETOOLONG if it does not fit. */
int bench_preface(enum bench_mode mode, const char *target, uint8_t *buf,
		  size_t cap, size_t *len);
/* A real ClientHello for sni, made once by OpenSSL (so every proxy's SNI
 * check sees what a client sends); -1 on failure. */
int bench_client_hello(const char *sni, uint8_t *buf, size_t cap,
		       size_t *len);

int bench_cmp_double(const void *a, const void *b);
/* The p-quantile (0..1) of n sorted values; 0 when n is 0. */
double bench_pct(const double *sorted, size_t n, double p);

/* One tunnel kind for bench_rate_run(): conc tunnels of size bytes each
 * in an array; every callback gets a pointer to one. */
struct bench_tun_ops {
	int (*open)(void *t);  /* 0 started (registered in epfd), <0 failed */
	int (*step)(void *t);  /* 1 done, 0 waiting, -1 failed */
	void (*close)(void *t, int done); /* done: 1 after a success */
	int (*fd)(const void *t);         /* <0 once closed */
	double (*t0)(const void *t);      /* when it was opened */
	const char *(*err)(const void *t);
};

struct bench_rate {
	long done, errors;
	double elapsed;
	const char *first_err;
	double *lat; /* owned: setup times (s), sorted, nlat of them */
	size_t nlat;
};

/* conc clients, each in a loop for seconds: open, step to done, close,
 * open again; events come from epfd (data.ptr: the tunnel). Stops
 * reopening after 10000 errors, gives up grace seconds after the end.
 * 0, or -ENOMEM. */
int bench_rate_run(int epfd, void *tuns, size_t size, int conc,
		   double seconds, double grace,
		   const struct bench_tun_ops *ops, struct bench_rate *out);

#endif
