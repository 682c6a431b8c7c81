/* Audit hash chain and sandbox-audit's parser: the hash definition from
 * docs/audit-log.md, continuing the chain on reopen (also after a torn
 * last line), rotation that keeps the chain across files and no file above
 * its limit, the JSON line parser on the writer's own hostile output, time
 * parsing and the --host filter's policy semantics. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "../../auditlog/record.h"
#include "../../audit/review.h"
#include "../../common/util.h"
#include "../../auditlog/audit.h"
#include "tap.h"

static char dir[] = "/tmp/test_audit_chain.XXXXXX";

static const char *in_dir(const char *name, char *buf, size_t n)
{
	fmt_buf(buf, n, "%s/%s", dir, name);
	return buf;
}

/* Walk the lines of a file set in order; returns the number of records
 * or -line of the first break. prev carries the chain between files. */
static long walk(const char *path, char prev[65], size_t *max_line)
{
	char *data = NULL;
	size_t len = 0;
	if (read_file(path, 64 << 20, &data, &len) < 0)
		return -100000;
	long n = 0, lineno = 0;
	for (char *l = data; l < data + len;) {
		char *nl = memchr(l, '\n', (size_t)(data + len - l));
		if (!nl) {
			free(data);
			return -(lineno + 1);
		}
		lineno++;
		size_t ll = (size_t)(nl - l);
		if (max_line && ll + 1 > *max_line)
			*max_line = ll + 1;
		if (ll < AUDIT_HASH_TAIL + 74 ||
		    memcmp(nl - AUDIT_HASH_TAIL, ",\"hash\":\"", 9) != 0) {
			l = nl + 1; /* a fragment: not a record */
			continue;
		}
		char h[65];
		audit_sha256_hex(l, ll - AUDIT_HASH_TAIL, h);
		const char *p = nl - AUDIT_HASH_TAIL - 65;
		if (memcmp(h, nl - AUDIT_HASH_TAIL + 9, 64) != 0 ||
		    memcmp(p, prev, 64) != 0) {
			free(data);
			return -lineno;
		}
		memcpy(prev, h, 65);
		n++;
		l = nl + 1;
	}
	free(data);
	return n;
}

static void write_n(struct audit *a, int n, const char *reason)
{
	for (int i = 0; i < n; i++) {
		struct audit_record r;
		audit_record_init(&r);
		r.event = "connect";
		r.host = "a.example.com";
		r.port = 443;
		r.decision = "allow";
		r.reason = reason;
		r.conn = (uint64_t)i + 1;
		if (audit_write(a, &r) < 0)
			break;
	}
}

static void render(void)
{
	struct audit_record r;
	struct timespec ts = {.tv_sec = 1767225600, .tv_nsec = 5000000};
	char line[AUDIT_LINE_MAX], hash[65], want[65];
	audit_record_init(&r);
	r.event = "dns";
	r.host = "example.com";
	ssize_t n = audit_render("sb", &r, &ts, AUDIT_GENESIS, line,
				 sizeof(line), hash);
	ok(n > 0, "render a record");
	line[n] = '\0';
	const char *want_prefix =
		"{\"time\":\"2026-01-01T00:00:00.005Z\",\"sandbox\":\"sb\","
		"\"event\":\"dns\",\"host\":\"example.com\",\"prev\":\"" AUDIT_GENESIS
		"\",\"hash\":\"";
	ok(strncmp(line, want_prefix, strlen(want_prefix)) == 0 &&
		   (size_t)n == strlen(want_prefix) + 64 + 3,
	   "documented field order with prev and hash last: %s", line);
	audit_sha256_hex(line, (size_t)n - 1 - AUDIT_HASH_TAIL, want);
	is_str(hash, want, "hash = SHA-256 of the line up to ,\"hash\":");
	ok(memcmp(line + n - 1 - AUDIT_HASH_TAIL + 9, hash, 64) == 0,
	   "and it is the hash written in the line");
	ok(audit_render("sb", &r, &ts, "xyz", line, sizeof(line), hash) ==
		   -EINVAL,
	   "a prev that is not 64 hex digits is refused");
}

static void reopen(void)
{
	char p[256], prev[65];
	int err;
	in_dir("reopen.jsonl", p, sizeof(p));
	struct audit *a = audit_open(p, "sb", &err);
	write_n(a, 3, "first run");
	audit_close(a);
	a = audit_open(p, "sb", &err);
	write_n(a, 2, "second run");
	audit_close(a);
	memcpy(prev, AUDIT_GENESIS, 65);
	is_int(walk(p, prev, NULL), 7, "reopen continues the chain (7 records)");

	/* A crash mid-write leaves a line without newline. */
	int fd = open(p, O_WRONLY | O_APPEND);
	ok(fd >= 0 && write(fd, "{\"time\":\"2026-", 14) == 14,
	   "simulate a torn last line");
	close(fd);
	a = audit_open(p, "sb", &err);
	write_n(a, 1, "after crash");
	audit_close(a);
	memcpy(prev, AUDIT_GENESIS, 65);
	is_int(walk(p, prev, NULL), 9,
	       "after a torn line the chain continues from the last record");
	char *data = NULL;
	read_file(p, 1 << 20, &data, NULL);
	ok(data && strstr(data, "{\"time\":\"2026-\n{"),
	   "the torn fragment was ended with a newline, not glued on");
	free(data);
}

static void rotation(void)
{
	char p[256], q[256], prev[65];
	int err;
	in_dir("rot.jsonl", p, sizeof(p));
	static char reason[300];
	memset(reason, 'r', sizeof(reason) - 1);
	/* Ten runs of ten records: earlier runs' files are deleted; no run
	 * reaches its own start (that is the cap, cap() below). */
	for (int run = 0; run < 10; run++) {
		struct audit *a = audit_open(p, "sb", &err);
		audit_set_rotation(a, 8192, 3);
		write_n(a, 10, reason);
		audit_close(a);
	}
	size_t files = 0, max_size = 0;
	long total = 0;
	memcpy(prev, "", 1);
	bool chained = true;
	/* The oldest kept file starts mid-chain: take its first prev. */
	for (int i = 3; i >= 0; i--) {
		struct stat st;
		if (i)
			fmt_buf(q, sizeof(q), "%s.%d", p, i);
		else
			fmt_buf(q, sizeof(q), "%s", p);
		if (stat(q, &st) < 0)
			continue;
		files++;
		if ((size_t)st.st_size > max_size)
			max_size = (size_t)st.st_size;
		if (!prev[0]) {
			char *d = NULL;
			read_file(q, 1 << 20, &d, NULL);
			char *pv = d ? strstr(d, "\"prev\":\"") : NULL;
			if (pv)
				memcpy(prev, pv + 8, 64), prev[64] = '\0';
			free(d);
		}
		long n = walk(q, prev, NULL);
		if (n < 0)
			chained = false;
		else
			total += n;
	}
	is_int(files, 4, "rotation kept FILE and 3 rotated files");
	ok(max_size <= 8192, "no file above --audit-max-bytes (%zu)", max_size);
	ok(chained, "the chain runs across the rotated files");
	ok(total > 20 && total < 111, "the newest files hold %ld records", total);
	fmt_buf(q, sizeof(q), "%s.4", p);
	struct stat st;
	ok(stat(q, &st) < 0, "FILE.4 was deleted (keep 3)");
}


/* One writer whose own records would be rotated away: the log is capped
 * (audit.h, AUDIT_E_CAP): its first record stays, the cap says why in the
 * log, later writes are refused, the closing record still goes in. */
static void cap(void)
{
	char p[256], q[256];
	int err;
	in_dir("cap.jsonl", p, sizeof(p));
	struct audit *a = audit_open(p, "sb", &err);
	audit_set_rotation(a, 8192, 2);
	static char reason[300];
	memset(reason, 'c', sizeof(reason) - 1);
	struct audit_record r;
	audit_record_init(&r);
	r.event = "policy";
	r.reason = "first of the run";
	is_int(audit_write(a, &r), 0, "the run's first record");
	int e = 0, n = 0;
	while (n < 1000 && e == 0) {
		audit_record_init(&r);
		r.event = "dns";
		r.host = "flood.example";
		r.reason = reason;
		e = audit_write(a, &r);
		n++;
	}
	is_int(e, AUDIT_E_CAP, "a flood ends at the cap (%d records)", n);
	ok(n > 20 && n < 100, "after three files' worth of records");
	is_int(audit_write(a, &r), AUDIT_E_CAP, "later writes are refused");
	audit_close(a);
	char prev[65];
	memcpy(prev, AUDIT_GENESIS, 65);
	fmt_buf(q, sizeof(q), "%s.2", p);
	char *d = NULL;
	read_file(q, 1 << 20, &d, NULL);
	ok(d && strstr(d, "first of the run") && strstr(d, AUDIT_GENESIS),
	   "the oldest kept file starts with the run's first record");
	free(d);
	long total = 0;
	bool chained = true;
	for (int i = 2; i >= 0; i--) {
		if (i)
			fmt_buf(q, sizeof(q), "%s.%d", p, i);
		else
			fmt_buf(q, sizeof(q), "%s", p);
		long k = walk(q, prev, NULL);
		chained &= k >= 0;
		total += k;
	}
	ok(chained, "the chain runs from genesis through the capped set");
	is_int(total, n + 1 + 2, "every record, the cap's and the closing one");
	d = NULL;
	read_file(p, 1 << 20, &d, NULL);
	const char *c = d ? strstr(d, AUDIT_CAP_REASON) : NULL;
	ok(c && strstr(c, "--audit-max-bytes") && strstr(c, "\"closed\""),
	   "the cap's record names the option, the closing record follows");
	free(d);
	fmt_buf(q, sizeof(q), "%s.3", p);
	struct stat st;
	ok(stat(q, &st) < 0, "no file beyond keep");
}

static void parser(void)
{
	char scratch[8192];
	struct rec r;
	const char *why = NULL;
	const char *l = "{\"time\":\"2026-01-01T00:00:01.500Z\",\"sandbox\":\"s\","
			"\"event\":\"close\",\"host\":\"a\\\"b\\u00e9\\ud83d\\ude00\","
			"\"port\":443,\"bytes_up\":12,\"x\":[],\"decision\":\"allow\"}";
	is_int(rec_parse(l, strlen(l), &r, scratch, sizeof(scratch), &why),
	       REC_SYNTAX, "nested values are refused");
	l = "{\"time\":\"2026-01-01T00:00:01.500Z\",\"sandbox\":\"s\","
	    "\"event\":\"close\",\"host\":\"a\\\"b\\u00e9\\ud83d\\ude00\","
	    "\"port\":443,\"bytes_up\":12,\"x\":null,\"y\":1.5e3,\"decision\":\"allow\"}";
	is_int(rec_parse(l, strlen(l), &r, scratch, sizeof(scratch), &why),
	       REC_OK, "parse a record with escapes and unknown keys");
	is_str(r.host, "a\"b\xc3\xa9\xf0\x9f\x98\x80", "unescaped host");
	is_int(r.port, 443, "port");
	is_int(r.bytes_up, 12, "bytes_up");
	is_int(r.bytes_down, -1, "absent number is -1");
	is_int(r.time_ms, 1767225601500LL, "time parsed to ms");
	static const char *const bad[] = {
		"", "[]", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\":\"\\x\"}",
		"{\"a\":\"\\ud800\"}", "{\"a\":01}", "{\"port\":\"443\"}",
		"{\"host\":5}", "{} x", "{\"a\":\"\x01\"}", "{\"a\":tru}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		ok(rec_parse(bad[i], strlen(bad[i]), &r, scratch,
			     sizeof(scratch), &why) == REC_SYNTAX &&
			   why && *why,
		   "refused %s (%s)", bad[i], why);
	ok(rec_parse("{\"host\":\"abcdef\"}", 17, &r, scratch, 4, &why) ==
		   REC_TOO_BIG,
	   "a small scratch buffer is reported, not overrun");

	/* The writer's escaping of hostile bytes reads back as the same
	 * bytes where they were valid UTF-8. */
	struct audit_record ar;
	struct timespec ts = {.tv_sec = 1};
	char line[AUDIT_LINE_MAX], hash[65];
	audit_record_init(&ar);
	ar.event = "connect";
	ar.sni = "x\x1b[2J\"}<b>\\\xc3\xa9\t\x7f";
	ssize_t n = audit_render("s", &ar, &ts, AUDIT_GENESIS, line,
				 sizeof(line), hash);
	is_int(rec_parse(line, (size_t)n - 1, &r, scratch, sizeof(scratch),
			 &why),
	       REC_OK, "the parser reads the writer's hostile line");
	is_str(r.sni, ar.sni, "round trip of a hostile SNI");
	is_str(r.hash, hash, "hash field read back");
}

static void times(void)
{
	int64_t ms = 0;
	ok(rfc3339_parse("2026-11-26T22:10:37.123Z", 24, &ms) == 0 &&
		   ms == 1795731037123LL,
	   "RFC 3339 UTC with ms (%lld)", (long long)ms);
	ok(rfc3339_parse("2026-11-26T23:10:37+01:00", 25, &ms) == 0 &&
		   ms == 1795731037000LL,
	   "RFC 3339 with an offset");
	ok(rfc3339_parse("2026-13-26T23:10:37Z", 20, &ms) < 0, "month 13");
	ok(rfc3339_parse("yesterday", 9, &ms) < 0, "junk");
	char out[32];
	rfc3339_format(1795731037123LL, out);
	is_str(out, "2026-11-26T22:10:37.123Z", "format back");
	ok(parse_when("1h", 10000000, &ms) == 0 && ms == 10000000 - 3600000,
	   "relative 1h");
	ok(parse_when("90s", 100000, &ms) == 0 && ms == 10000, "relative 90s");
	ok(parse_when("1y", 0, &ms) < 0 && parse_when("h", 0, &ms) < 0,
	   "bad durations refused");
}

static void host_filter(void)
{
	struct filter f;
	struct rec r = {.time_ms = INT64_MIN};
	char err[256];
	filter_init(&f);
	is_int(filter_add_host(&f, "*.example.com", err, sizeof(err)), 0,
	       "--host *.example.com");
	r.host = "a.example.com";
	ok(filter_match(&f, &r), "*.x matches one label more");
	r.host = "A.Example.COM.";
	ok(filter_match(&f, &r), "after the policy's normalisation");
	r.host = "example.com";
	ok(!filter_match(&f, &r), "*.x does not match the apex");
	r.host = "a.b.example.com";
	ok(!filter_match(&f, &r), "*.x does not match two labels more");
	is_int(filter_add_host(&f, "**.deep.test", err, sizeof(err)), 0,
	       "a second --host adds to the first");
	r.host = "a.b.deep.test";
	ok(filter_match(&f, &r), "**.x matches any depth");
	r.host = NULL;
	ok(!filter_match(&f, &r), "a record without host never matches");
	ok(filter_add_host(&f, "a*b.test", err, sizeof(err)) < 0 &&
		   strstr(err, "a*b.test"),
	   "a bad pattern is an error naming it: %s", err);
	filter_free(&f);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	render();
	reopen();
	rotation();
	cap();
	parser();
	times();
	host_filter();
	char cmd[300];
	fmt_buf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return done_testing();
}
