/* Audit log: field order, omission, escaping of hostile strings, the 4 KiB
 * cap, the time format, file mode, and two forked writers appending 10,000
 * records each without a single split or interleaved line. Every line is
 * also checked by python3's json module, an independent parser. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "../../common/util.h"
#include "../../auditlog/audit.h"
#include "tap.h"

static char dir[] = "/tmp/test_audit.XXXXXX";

static char *path_in(const char *name)
{
	static char p[256];
	fmt_buf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static char *slurp(const char *path)
{
	char *buf = NULL;
	if (read_file(path, 64 << 20, &buf, NULL) < 0)
		return NULL;
	return buf;
}

/* python3 parses every line; prints the number of valid objects. */
static int python_valid_lines(const char *path)
{
	char cmd[512];
	fmt_buf(cmd, sizeof(cmd),
		"/usr/bin/python3 -c 'import json,sys\n"
		"n=0\n"
		"for l in open(sys.argv[1],\"rb\"):\n"
		"  assert l.endswith(b\"\\n\")\n"
		"  o=json.loads(l.decode(\"utf-8\"))\n"
		"  assert isinstance(o,dict)\n"
		"  n+=1\n"
		"print(n)' %s 2>/dev/null",
		path);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	int n = -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

static bool time_ok(const char *line)
{
	/* {"time":"YYYY-MM-DDTHH:MM:SS.mmmZ" */
	const char *t = strstr(line, "{\"time\":\"");
	if (t != line)
		return false;
	t += 9;
	const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ\"";
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != pat[i])
			return false;
	}
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (!strptime(t, "%Y-%m-%dT%H:%M:%S", &tm))
		return false;
	time_t when = timegm(&tm), now = time(NULL);
	return when <= now && now - when < 5;
}

static void fields(void)
{
	int err = 0;
	struct audit *a = audit_open(path_in("fields.jsonl"), "sb1", &err);
	ok(a != NULL, "open a new log (err %d)", err);
	struct stat st;
	ok(stat(path_in("fields.jsonl"), &st) == 0 && (st.st_mode & 0777) == 0600,
	   "log created with mode 0600");

	struct audit_record r;
	audit_record_init(&r);
	r.event = "close";
	r.conn = 42;
	r.proto = "tls";
	r.host = "example.com";
	r.port = 443;
	r.sni = "example.com";
	r.addr = "93.184.216.34";
	r.decision = "allow";
	r.rule = "policy.yaml:7";
	r.reason = "eof";
	r.bytes_up = 517;
	r.bytes_down = 0;
	r.duration_ms = 12;
	is_int(audit_write(a, &r), 0, "write a full close record");

	audit_record_init(&r);
	r.event = "dns";
	r.host = "a.test";
	r.qtype = "AAAA";
	r.decision = "deny";
	r.rule = "default";
	is_int(audit_write(a, &r), 0, "write a dns record");

	audit_record_init(&r);
	is_int(audit_write(a, &r), -EINVAL, "a record without event is refused");
	audit_close(a);

	char *s = slurp(path_in("fields.jsonl"));
	ok(s != NULL, "read the log back");
	if (!s)
		return;
	char *l2 = strchr(s, '\n');
	char *l3 = l2 ? strchr(l2 + 1, '\n') : NULL;
	ok(l3 && strchr(l3 + 1, '\n') && !strchr(strchr(l3 + 1, '\n') + 1, '\n'),
	   "exactly three lines (two records and the closing record)");
	ok(l3 && strstr(l3 + 1, "\"event\":\"log\",\"reason\":\"closed\",\"prev\":\""),
	   "audit_close wrote the closing record");
	ok(time_ok(s), "first line starts with an RFC 3339 UTC ms time near now");
	const char *want1 =
		"\",\"sandbox\":\"sb1\",\"event\":\"close\",\"conn\":42,"
		"\"proto\":\"tls\",\"host\":\"example.com\",\"port\":443,"
		"\"sni\":\"example.com\",\"addr\":\"93.184.216.34\","
		"\"decision\":\"allow\",\"rule\":\"policy.yaml:7\","
		"\"reason\":\"eof\",\"bytes_up\":517,\"bytes_down\":0,"
		"\"duration_ms\":12,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"hash\":\"";
	ok(strncmp(s + 33, want1, strlen(want1)) == 0,
	   "fields in the documented order: %.*s", (int)(l2 - s), s);
	const char *want2 = "\",\"sandbox\":\"sb1\",\"event\":\"dns\","
			    "\"host\":\"a.test\",\"qtype\":\"AAAA\","
			    "\"decision\":\"deny\",\"rule\":\"default\",\"prev\":\"";
	ok(l2 && strncmp(l2 + 1 + 33, want2, strlen(want2)) == 0,
	   "absent fields are omitted: %s", l2 ? l2 + 1 : "");
	is_int(python_valid_lines(path_in("fields.jsonl")), 3,
	       "python parses all three lines");
	free(s);
}

static void escaping(void)
{
	int err = 0;
	struct audit *a = audit_open(path_in("esc.jsonl"), "s\"b", &err);
	struct audit_record r;
	audit_record_init(&r);
	r.event = "connect";
	/* quote, backslash, newline, tab, ESC, DEL, a C1 control (U+0085),
	 * a valid 2-, 3- and 4-byte sequence, then invalid bytes: a lone
	 * continuation, an overlong '/', a surrogate, a truncated sequence. */
	r.sni = "a\"b\\c\nd\te\x1b[31mf\x7fg\xc2\x85h\xc3\xa9\xe2\x82\xac"
		"\xf0\x9f\x98\x80i\x80j\xc0\xafk\xed\xa0\x80l\xe2\x82";
	r.host = "";
	is_int(audit_write(a, &r), 0, "write hostile strings");
	audit_close(a);
	char *s = slurp(path_in("esc.jsonl"));
	const char *want =
		"\"sandbox\":\"s\\\"b\",\"event\":\"connect\",\"host\":\"\","
		"\"sni\":\"a\\\"b\\\\c\\nd\\te\\u001b[31mf\\u007fg\\u0085h"
		"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80i\\ufffdj\\ufffd\\ufffdk"
		"\\ufffd\\ufffd\\ufffdl\\ufffd\\ufffd\",\"prev\":\"";
	ok(s && strstr(s, want) != NULL, "escaped exactly: %s", s ? s : "");
	is_int(python_valid_lines(path_in("esc.jsonl")), 2,
	       "python parses the hostile line and the closing record");
	free(s);

	/* Characters that reorder or hide what a terminal shows: a
	 * right-to-left override, a zero-width space, a BOM. Valid UTF-8,
	 * but never written raw (cat of the log must not obey them). */
	a = audit_open(path_in("bidi.jsonl"), "s", &err);
	audit_record_init(&r);
	r.event = "connect";
	r.sni = "evil\xe2\x80\xaetxt.exe\xe2\x80\x8bx\xef\xbb\xbfy";
	r.host = "";
	is_int(audit_write(a, &r), 0, "write bidi and invisible characters");
	audit_close(a);
	s = slurp(path_in("bidi.jsonl"));
	ok(s && strstr(s, "\"sni\":\"evil\\u202etxt.exe\\u200bx\\ufeffy\""),
	   "bidi and invisible characters escaped: %s", s ? s : "");
	ok(s && !strstr(s, "\xe2\x80\xae"), "no raw override in the log");
	free(s);
}

static void truncation(void)
{
	int err = 0;
	struct audit *a = audit_open(path_in("big.jsonl"), "sb", &err);
	struct audit_record r;
	audit_record_init(&r);
	static char huge[20000], ctl[3000];
	memset(huge, 'x', sizeof(huge) - 1);
	/* every byte becomes a 6-byte escape: the worst expansion */
	memset(ctl, 0x01, sizeof(ctl) - 1);
	r.event = "connect";
	r.host = huge;
	r.sni = ctl;
	r.reason = ctl;
	r.rule = huge;
	r.addr = ctl;
	r.qtype = huge;
	r.proto = ctl;
	r.decision = "deny";
	r.port = 443;
	r.bytes_up = 1;
	is_int(audit_write(a, &r), 0, "write a record with 100 KiB of strings");
	audit_record_init(&r);
	r.event = "policy";
	r.reason = "after";
	is_int(audit_write(a, &r), 0, "and a small one after it");
	audit_close(a);
	char *s = slurp(path_in("big.jsonl"));
	char *nl = s ? strchr(s, '\n') : NULL;
	ok(nl && nl - s + 1 <= 4096, "the big record fits in 4 KiB (%ld)",
	   nl ? (long)(nl - s + 1) : -1L);
	ok(s && strstr(s, "x...\"") && strstr(s, "\\u0001...\""),
	   "long strings are cut with a ... marker, not mid-escape");
	/* A plain ASCII run is copied whole up to the cut: the value ends
	 * exactly at one of the budgets (1024, 512, 256), "..." included. */
	const char *h = s ? strstr(s, "\"host\":\"") : NULL;
	size_t xs = 0;
	if (h) {
		h += 8;
		while (h[xs] == 'x')
			xs++;
	}
	ok(h && !strncmp(h + xs, "...\"", 4) &&
		   (xs + 3 == 1024 || xs + 3 == 512 || xs + 3 == 256),
	   "an ASCII string is cut at its budget exactly (%zu + 3)", xs);
	ok(s && strstr(s, "\"decision\":\"deny\",") &&
		   strstr(s, "\"port\":443,") && strstr(s, "\"bytes_up\":1,\"prev\":"),
	   "short fields survive intact");
	is_int(python_valid_lines(path_in("big.jsonl")), 3,
	       "python parses the truncated record and the next");
	free(s);
}

#define RECORDS 10000

static void writer(int id)
{
	int err = 0;
	struct audit *a = audit_open(path_in("race.jsonl"), "race", &err);
	if (!a)
		_exit(2);
	static char pad[3000];
	memset(pad, 'a' + id, sizeof(pad) - 1);
	for (int i = 0; i < RECORDS; i++) {
		char host[64];
		struct audit_record r;
		audit_record_init(&r);
		fmt_buf(host, sizeof(host), "w%d.test", id);
		r.event = "connect";
		r.host = host;
		r.conn = (uint64_t)i;
		/* vary the size so writes straddle page boundaries */
		r.reason = pad + (i * 37) % 2000;
		if (audit_write(a, &r) < 0)
			_exit(3);
	}
	audit_close(a);
	_exit(0);
}

static void race(void)
{
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			writer(i);
	}
	bool exited = true;
	for (int i = 0; i < 2; i++) {
		int status;
		waitpid(pids[i], &status, 0);
		exited &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	ok(exited, "both writers finished");

	char *s = slurp(path_in("race.jsonl"));
	long next[2] = {0, 0};
	bool whole = s != NULL, ordered = true;
	long lines = 0, closing = 0;
	for (char *l = s; whole && l && *l; lines++) {
		char *nl = strchr(l, '\n');
		if (!nl) {
			whole = false;
			break;
		}
		*nl = '\0';
		if (strstr(l, "\"event\":\"log\"")) { /* closing records */
			l = nl + 1;
			lines--;
			closing++;
			continue;
		}
		int id = strstr(l, "\"host\":\"w0.test\"") ? 0
			 : strstr(l, "\"host\":\"w1.test\"") ? 1 : -1;
		const char *c = strstr(l, "\"conn\":");
		const char *rs = strstr(l, "\"reason\":\"");
		char fill = id < 0 ? 0 : (char)('a' + id);
		/* the line must end exactly after its own padding */
		const char *pv = strstr(l, "\",\"prev\":\"");
		if (id < 0 || !rs || strcmp(nl - 2, "\"}") != 0 || !pv ||
		    pv[-1] != fill || l[0] != '{' || nl - pv != 10 + 64 + 1 + 75) {
			whole = false;
			break;
		}
		for (const char *p = rs + 10; *p != '"'; p++)
			if (*p != fill)
				whole = false;
		long conn = c ? strtol(c + 7, NULL, 10) : 0;
		if (conn != next[id])
			ordered = false;
		next[id] = conn + 1;
		l = nl + 1;
	}
	ok(whole, "no split or interleaved record among %ld lines", lines);
	is_int(lines, 2 * RECORDS, "all records present");
	is_int(closing, 2, "each writer closed with a closing record");
	ok(ordered && next[0] == RECORDS && next[1] == RECORDS,
	   "each writer's records appear complete and in order");
	free(s);
	is_int(python_valid_lines(path_in("race.jsonl")), 2 * RECORDS + 2,
	       "python parses all %d lines", 2 * RECORDS + 2);
}

static void errors(void)
{
	int err = 0;
	ok(audit_open(path_in("no/such/dir.jsonl"), "x", &err) == NULL &&
		   err == -ENOENT,
	   "missing directory: NULL and -ENOENT (%d)", err);
	err = 0;
	ok(audit_open("", "x", &err) == NULL && err == -EINVAL,
	   "empty path refused");
	struct audit *a = audit_open("-", "x", &err);
	ok(a != NULL, "\"-\" opens stderr");
	audit_close(a);
	ok(fcntl(STDERR_FILENO, F_GETFD) >= 0, "closing it leaves stderr open");
	audit_close(NULL);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	fields();
	escaping();
	truncation();
	race();
	errors();
	char cmd[128];
	fmt_buf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return done_testing();
}
