/* Per-record cost of the audit writer: N typical connect records to a
 * fresh file, printed as records/s, written one by one (audit_write) or,
 * with BATCH > 1, BATCH at a time as the group-commit writer thread does
 * (audit_write_bodies: one lock and one write per batch). Usage:
 * audit_bench FILE [N [BATCH]] (N defaults to 100000, BATCH to 1). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../../auditlog/audit.h"

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: audit_bench FILE [RECORDS [BATCH]]\n");
		return 2;
	}
	long n = argc >= 3 ? strtol(argv[2], NULL, 10) : 100000;
	long batch = argc == 4 ? strtol(argv[3], NULL, 10) : 1;
	if (batch < 1 || batch > 256) {
		fprintf(stderr, "audit_bench: BATCH must be 1..256\n");
		return 2;
	}
	if (n <= 0) {
		fprintf(stderr, "audit_bench: RECORDS must be a positive number\n");
		return 2;
	}
	unlink(argv[1]);
	int err = 0;
	struct audit *a = audit_open(argv[1], "bench", &err);
	if (!a) {
		fprintf(stderr, "audit_bench: %s: error %d\n", argv[1], err);
		return 1;
	}
	struct audit_record r;
	audit_record_init(&r);
	r.event = "connect";
	r.proto = "tls";
	r.host = "registry.npmjs.org";
	r.port = 443;
	r.sni = "registry.npmjs.org";
	r.addr = "104.16.0.35";
	r.decision = "allow";
	r.rule = "/home/user/.config/sandbox/policy.yaml:12";
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	static char bodies[256][AUDIT_BODY_MAX + 2], buf[256 * AUDIT_LINE_MAX];
	struct audit_body b[256];
	for (long i = 0; i < n && batch > 1; i += batch) {
		long k = n - i < batch ? n - i : batch;
		for (long j = 0; j < k; j++) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			r.conn = (uint64_t)(i + j) + 1;
			ssize_t len = audit_body(a, &r, &ts, bodies[j],
						 sizeof(bodies[j]));
			b[j].text = bodies[j];
			b[j].len = len < 0 ? 0 : (size_t)len;
		}
		size_t done;
		int e = audit_write_bodies(a, b, (size_t)k, buf, sizeof(buf),
					   &done);
		if (e < 0) {
			fprintf(stderr, "audit_bench: batch at %ld: error %d\n",
				i, e);
			audit_close(a);
			return 1;
		}
	}
	for (long i = 0; i < n && batch == 1; i++) {
		r.conn = (uint64_t)i + 1;
		int e = audit_write(a, &r);
		if (e < 0) {
			fprintf(stderr, "audit_bench: record %ld: error %d\n", i, e);
			audit_close(a);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	audit_close(a);
	double s = (double)(t1.tv_sec - t0.tv_sec) +
		   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%ld records in batches of %ld in %.3f s: %.0f records/s\n", n,
	       batch, s, (double)n / s);
	return 0;
}
