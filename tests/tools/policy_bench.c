/* Policy benchmark: load a large blocklist and time decisions.
 *
 *   policy_bench            generate 1,000,000 deny names in a temp file
 *   policy_bench N          generate N names
 *   policy_bench FILE       use an existing policy file
 *
 * Prints load time, rules, and the mean cost of a decision for names that
 * hit a rule, names that miss, and deep names that walk every "**." level.
 * Exit 0 unless loading fails. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../common/util.h"
#include "../../policy/policy.h"
#include "lib/bench_common.h"

/* Deterministic, varied names: "w<hash>-<i>.<tld-ish>.example". */
static void name_of(unsigned long i, char *out, size_t size)
{
	static const char *const zones[] = {"ads", "track", "metrics", "cdn", "pixel"};
	unsigned long h = i * 2654435761ul;
	fmt_buf(out, size, "w%lx-%lu.%s%lu.example", h & 0xffffff, i,
		zones[i % ARRAY_SIZE(zones)], i % 97);
}

static int generate(const char *path, unsigned long n)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "version: 1\nallow:\n  - \"*.allowed.example\"\n  - host: \"**.deep.example\"\n"
		   "deny:\n");
	char name[128];
	for (unsigned long i = 0; i < n; i++) {
		name_of(i, name, sizeof(name));
		fprintf(f, "  - %s\n", name);
	}
	return fclose(f) == 0 ? 0 : -errno;
}

static volatile unsigned long sink;

static double time_decisions(const struct policy *p, char (*names)[128],
			     size_t nnames, unsigned long iters,
			     enum policy_decision *last)
{
	double t0 = bench_now();
	for (unsigned long i = 0; i < iters; i++) {
		struct policy_verdict v = policy_decide_name(p, names[i % nnames], 443);
		sink += v.decision;
		*last = v.decision;
	}
	return (bench_now() - t0) / (double)iters * 1e9;
}

int main(int argc, char **argv)
{
	unsigned long n = 1000000;
	char tmp[] = "/tmp/policy_bench.XXXXXX";
	const char *path = NULL;
	bool generated = false;
	if (argc > 1 && argv[1][0] >= '0' && argv[1][0] <= '9') {
		n = strtoul(argv[1], NULL, 10);
	} else if (argc > 1) {
		path = argv[1];
	}
	if (!path) {
		int fd = mkstemp(tmp);
		if (fd < 0) {
			perror("mkstemp");
			return 1;
		}
		close(fd);
		path = tmp;
		double t0 = bench_now();
		int r = generate(path, n);
		if (r < 0) {
			fprintf(stderr, "policy_bench: writing %s: %s\n", path, strerror(-r));
			unlink(path);
			return 1;
		}
		generated = true;
		printf("generated %lu deny names in %.2f s (%s)\n", n, bench_now() - t0, path);
	}

	struct policy_errors errs = {0};
	const char *const files[] = {path};
	double t0 = bench_now();
	struct policy *p = policy_load_files(files, 1, NULL, &errs);
	double load = bench_now() - t0;
	if (generated)
		unlink(path);
	if (!p) {
		for (size_t i = 0; i < errs.count && i < 10; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		fprintf(stderr, "policy_bench: load failed\n");
		policy_errors_free(&errs);
		return 1;
	}
	struct policy_stats st;
	policy_get_stats(p, &st);
	printf("load: %.3f s for %zu deny + %zu allow rules\n", load, st.deny_rules,
	       st.allow_rules);

	enum { NN = 4096 };
	static char hit[NN][128], miss[NN][128], deep[NN][128];
	for (size_t i = 0; i < NN; i++) {
		name_of((unsigned long)(i * 7919) % (n ? n : 1), hit[i], sizeof(hit[i]));
		fmt_buf(miss[i], sizeof(miss[i]), "host%zu.not-listed%zu.example", i, i % 13);
		fmt_buf(deep[i], sizeof(deep[i]), "a%zu.b.c.d.e.f.g.h.i.j.deep.example", i);
	}
	const unsigned long iters = 2000000;
	enum policy_decision d_hit, d_miss, d_deep;
	double ns_hit = time_decisions(p, hit, NN, iters, &d_hit);
	double ns_miss = time_decisions(p, miss, NN, iters, &d_miss);
	double ns_deep = time_decisions(p, deep, NN, iters, &d_deep);
	printf("decide (listed name, deny):        %6.0f ns  [%s]\n", ns_hit,
	       policy_decision_str(d_hit));
	printf("decide (unlisted name, default):   %6.0f ns  [%s]\n", ns_miss,
	       policy_decision_str(d_miss));
	printf("decide (12-label name, **. allow): %6.0f ns  [%s]\n", ns_deep,
	       policy_decision_str(d_deep));
	int rc = 0;
	if (n > 0 && d_hit != DECISION_DENY) {
		fprintf(stderr, "policy_bench: a listed name was not denied\n");
		rc = 1;
	}
	if (d_deep != DECISION_ALLOW) {
		fprintf(stderr, "policy_bench: the deep name was not allowed\n");
		rc = 1;
	}
	policy_free(p);
	return rc;
}
