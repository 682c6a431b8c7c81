/* Shared parts of the bench load generators (bench_common.h). */
#include "bench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/ssl.h>

#include "../../../common/util.h"
#include "../../../parse/wire.h"

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_raise_nofile(void)
{
	struct rlimit rl = {.rlim_cur = 65536, .rlim_max = 65536};
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 &&
	    getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int bench_parse_hostport(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (*end || port <= 0 || port > 65535 ||
	    inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

int bench_parse_mode(const char *s, enum bench_mode *m)
{
	static const char *const modes[] = {"direct", "connect", "sni", "wire"};
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
		if (!strcmp(s, modes[i])) {
			*m = (enum bench_mode)i;
			return 0;
		}
	return -EINVAL;
}

int bench_preface(enum bench_mode mode, const char *target, uint8_t *buf,
		  size_t cap, size_t *len)
{
	*len = 0;
	if (mode == BENCH_CONNECT) {
		if (!target)
			return -EINVAL;
		return fmt_append((char *)buf, cap, len,
				  "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n",
				  target, target);
	}
	if (mode == BENCH_WIRE) {
		struct sockaddr_in d;
		if (!target || bench_parse_hostport(target, &d) < 0 ||
		    cap < WIRE_HEADER_MAX)
			return -EINVAL;
		struct wire_header h = {.version = WIRE_VERSION,
					.kind = WIRE_TCP,
					.family = 4,
					.port = ntohs(d.sin_port)};
		memcpy(h.addr, &d.sin_addr, 4);
		int n = wire_header_encode(&h, buf);
		*len = n < 0 ? 0 : (size_t)n;
		return n < 0 ? n : 0;
	}
	return 0;
}

int bench_client_hello(const char *sni, uint8_t *buf, size_t cap,
		       size_t *len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
	int n = -1;
	if (ssl && in && out) {
		SSL_set_bio(ssl, in, out); /* ssl owns both now */
		in = out = NULL;
		SSL_set_tlsext_host_name(ssl, sni);
		SSL_set_connect_state(ssl);
		SSL_do_handshake(ssl); /* wants to read: the hello is in out */
		n = BIO_read(SSL_get_wbio(ssl), buf, (int)cap);
	}
	BIO_free(in);
	BIO_free(out);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (n <= 0)
		return -1;
	*len = (size_t)n;
	return 0;
}

int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench_pct(const double *sorted, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return sorted[i];
}

int bench_rate_run(int epfd, void *tuns, size_t size, int conc,
		   double seconds, double grace,
		   const struct bench_tun_ops *ops, struct bench_rate *out)
{
	memset(out, 0, sizeof(*out));
	size_t cap = 1 << 21;
	out->lat = malloc(cap * sizeof(double));
	if (!out->lat)
		return -ENOMEM;
	double start = bench_now(), stop = start + seconds;
	int active = 0;
	for (int i = 0; i < conc; i++) {
		void *t = (char *)tuns + (size_t)i * size;
		if (ops->open(t) < 0) {
			out->errors++;
			if (!out->first_err)
				out->first_err = ops->err(t);
			ops->close(t, 0);
		} else {
			active++;
		}
	}
	struct epoll_event evs[256];
	while (active > 0 && bench_now() < stop + grace) {
		int n = epoll_wait(epfd, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			void *t = evs[i].data.ptr;
			if (ops->fd(t) < 0)
				continue; /* closed earlier in this batch */
			int r = ops->step(t);
			if (r == 0)
				continue;
			double tn = bench_now();
			if (r > 0) {
				out->done++;
				if (out->nlat < cap)
					out->lat[out->nlat++] = tn - ops->t0(t);
			} else {
				out->errors++;
				if (!out->first_err)
					out->first_err = ops->err(t);
			}
			ops->close(t, r > 0);
			if (tn < stop && out->errors < 10000) {
				if (ops->open(t) == 0)
					continue;
				out->errors++;
				if (!out->first_err)
					out->first_err = ops->err(t);
				ops->close(t, 0);
			}
			active--;
		}
	}
	out->elapsed = bench_now() - start;
	for (int i = 0; i < conc; i++) {
		void *t = (char *)tuns + (size_t)i * size;
		if (ops->fd(t) >= 0)
			ops->close(t, 0);
	}
	qsort(out->lat, out->nlat, sizeof(double), bench_cmp_double);
	return 0;
}
