/* sandbox-audit generate: a synthetic but realistic log written through
 * the proxy's own audit writer (so it is chained exactly as the proxy
 * chains), for tests and the benchmark. Deterministic for a given count. */
#include <string.h>

#include "../common/util.h"
#include "../auditlog/audit.h"
#include "review.h"

static const char usage[] =
	"usage: sandbox-audit generate --records N [--mode report|enforce]\n"
	"                              [--sandbox NAME] -o FILE\n"
	"  Write N synthetic records (DNS, connect, close) through the\n"
	"  proxy's audit writer, one second apart from 2026-01-01; for tests\n"
	"  and benchmarks. --mode report makes unknown hosts would-deny.\n";

static const char *const hosts[] = {
	"api.github.com",     "github.com",         "codeload.github.com",
	"registry.npmjs.org", "pypi.org",           "files.pythonhosted.org",
	"a.cdn.example.net",  "b.cdn.example.net",  "c.cdn.example.net",
	"d.cdn.example.net",  "telemetry.example.org", "ads.example.org",
	"deb.debian.org",     "x.deep.example.com", "y.deep.example.com",
	"z.deep.example.com",
};

int cmd_generate(int argc, char **argv)
{
	struct opts o;
	int rc = opts_parse(argc, argv, O_RECORDS | O_OUT | O_FILTER, usage,
			    &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (!o.out || o.nfiles) {
		fprintf(stderr, "sandbox-audit generate: give -o FILE and no "
				"other arguments\n%s",
			usage);
		opts_free(&o);
		return 2;
	}
	bool report = strcmp(o.mode, "report") == 0;
	int err = 0;
	struct audit *a = audit_open(o.out, o.filter.sandbox ? o.filter.sandbox
							     : "gen",
				     &err);
	if (!a) {
		fprintf(stderr, "sandbox-audit: %s: %s\n", o.out,
			strerror(-err));
		opts_free(&o);
		return 2;
	}
	struct timespec ts = {.tv_sec = 1767225600}; /* 2026-01-01 */
	uint64_t conn = 0, x = 88172645463325252ULL;
	for (unsigned long i = 0; i < o.records; i++) {
		struct audit_record r;
		audit_record_init(&r);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift */
		size_t h = (size_t)(x % ARRAY_SIZE(hosts));
		bool bad = h == 10 || h == 11;
		r.host = hosts[h];
		r.decision = !bad ? "allow" : report ? "would-deny" : "deny";
		r.rule = bad ? "default" : "policy.yaml:3";
		switch (i % 3) {
		case 0:
			r.event = "dns";
			r.qtype = "A";
			break;
		case 1:
			r.event = "connect";
			r.conn = ++conn;
			r.proto = "tls";
			r.port = h == 12 ? 80 : 443;
			r.sni = r.host;
			break;
		default:
			r.event = "close";
			r.conn = conn;
			r.proto = "tls";
			r.port = h == 12 ? 80 : 443;
			r.reason = "eof";
			r.bytes_up = (int64_t)(x % 5000);
			r.bytes_down = (int64_t)(x % 100000);
			r.duration_ms = (int64_t)(x % 3000);
		}
		if (bad && !report && i % 3 == 2)
			r.reason = "denied";
		ts.tv_sec++;
		if ((err = audit_write_at(a, &r, &ts)) < 0) {
			fprintf(stderr, "sandbox-audit: %s: %s\n", o.out,
				strerror(-err));
			audit_close(a);
			opts_free(&o);
			return 2;
		}
	}
	audit_close(a);
	opts_free(&o);
	return 0;
}
