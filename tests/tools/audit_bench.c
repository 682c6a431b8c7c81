/* Per-record cost of the audit writer: audit_write() of N typical connect
 * records to a fresh file, printed as records/s. Usage:
 * audit_bench FILE [N] (N defaults to 100000). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../../auditlog/audit.h"

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: audit_bench FILE [RECORDS]\n");
		return 2;
	}
	long n = argc == 3 ? strtol(argv[2], NULL, 10) : 100000;
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
	for (long i = 0; i < n; i++) {
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
	printf("%ld records in %.3f s: %.0f records/s\n", n, s, (double)n / s);
	return 0;
}
