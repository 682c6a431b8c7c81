/* The group-commit writer (auditlog/audit_queue.h): records from several
 * threads end up in one intact chain, each thread's in the order it put
 * them; audit_queue_write returns only once its record is in the file;
 * batches cross a rotation without breaking the chain; a write failure
 * (a file size limit) refuses every put until a gap record is written,
 * and the chain stays verifiable across the failure. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "../../auditlog/audit.h"
#include "../../auditlog/audit_queue.h"
#include "../../common/util.h"
#include "tap.h"

static char dir[] = "/tmp/test_audit_queue.XXXXXX";

#define THREADS 4
#define PER_THREAD 3000

static const char *in_dir(const char *name, char *buf, size_t n)
{
	fmt_buf(buf, n, "%s/%s", dir, name);
	return buf;
}

/* Records (lines with a hash tail) in path, checking the chain from
 * *prev; -lineno of the first break. Per-thread order is checked through
 * the "host":"tN" and "conn":K fields. */
static long walk(const char *path, char prev[65], long last_conn[THREADS])
{
	char *data = NULL;
	size_t len = 0;
	if (read_file(path, 256 << 20, &data, &len) < 0)
		return -100000;
	long n = 0, lineno = 0;
	for (char *l = data; l < data + len;) {
		char *nl = memchr(l, '\n', (size_t)(data + len - l));
		if (!nl)
			break; /* a torn tail: not a record */
		lineno++;
		size_t ll = (size_t)(nl - l);
		if (ll < AUDIT_HASH_TAIL + 74 ||
		    memcmp(nl - AUDIT_HASH_TAIL, ",\"hash\":\"", 9) != 0) {
			l = nl + 1;
			continue;
		}
		char h[65];
		audit_sha256_hex(l, ll - AUDIT_HASH_TAIL, h);
		if (memcmp(h, nl - AUDIT_HASH_TAIL + 9, 64) != 0 ||
		    memcmp(nl - AUDIT_HASH_TAIL - 65, prev, 64) != 0) {
			free(data);
			return -lineno;
		}
		memcpy(prev, h, 65);
		*nl = '\0';
		char *t = strstr(l, "\"host\":\"t");
		char *c = strstr(l, "\"conn\":");
		if (last_conn && t && c) {
			int ti = t[9] - '0';
			long k = strtol(c + 7, NULL, 10);
			if (ti < 0 || ti >= THREADS || k <= last_conn[ti]) {
				free(data);
				return -lineno;
			}
			last_conn[ti] = k;
		}
		n++;
		l = nl + 1;
	}
	free(data);
	return n;
}

struct producer {
	struct audit_queue *q;
	int id;
	int failures;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	char host[8];
	fmt_buf(host, sizeof(host), "t%d", p->id);
	for (int i = 0; i < PER_THREAD; i++) {
		struct audit_record r;
		audit_record_init(&r);
		r.event = "connect";
		r.host = host;
		r.port = 443;
		r.decision = "allow";
		r.conn = (uint64_t)i + 1;
		if (audit_queue_put(p->q, &r, NULL) < 0)
			p->failures++;
	}
	return NULL;
}

static void threads(void)
{
	char p[256], prev[65];
	int err = 0;
	in_dir("threads.jsonl", p, sizeof(p));
	struct audit *a = audit_open(p, "sb", &err);
	struct audit_queue *q = audit_queue_start(a, NULL, NULL, &err);
	ok(q != NULL, "start the writer");
	struct producer pr[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		pr[i] = (struct producer){.q = q, .id = i};
		pthread_create(&t[i], NULL, produce, &pr[i]);
	}
	int failures = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		failures += pr[i].failures;
	}
	is_int(failures, 0, "every put was taken");
	audit_queue_stop(q);
	audit_close(a);
	long last[THREADS] = {0};
	memcpy(prev, AUDIT_GENESIS, 65);
	is_int(walk(p, prev, last), THREADS * PER_THREAD + 1,
	       "one intact chain holds every record and the closing one, "
	       "each thread's in its order");
	ok(last[0] == PER_THREAD && last[THREADS - 1] == PER_THREAD,
	   "the last record of each thread is there");
}

static void sync_write(void)
{
	char p[256];
	int err = 0;
	in_dir("sync.jsonl", p, sizeof(p));
	struct audit *a = audit_open(p, "sb", &err);
	struct audit_queue *q = audit_queue_start(a, NULL, NULL, &err);
	struct audit_record r;
	audit_record_init(&r);
	r.event = "policy";
	r.decision = "allow";
	r.reason = "sync-marker";
	is_int(audit_queue_write(q, &r), 0, "audit_queue_write returns 0");
	char *data = NULL;
	read_file(p, 1 << 20, &data, NULL);
	ok(data && strstr(data, "sync-marker"),
	   "and the record is in the file when it returns");
	free(data);
	r.event = NULL;
	is_int(audit_queue_put(q, &r, NULL), -EINVAL,
	       "a record without event is refused at put");
	audit_queue_stop(q);
	audit_close(a);
}

static void rotation(void)
{
	char p[256], name[300], prev[65];
	int err = 0;
	in_dir("rot.jsonl", p, sizeof(p));
	struct audit *a = audit_open(p, "sb", &err);
	audit_set_rotation(a, 16384, 50);
	struct audit_queue *q = audit_queue_start(a, NULL, NULL, &err);
	struct producer pr = {.q = q, .id = 0};
	produce(&pr);
	audit_queue_stop(q);
	audit_close(a);
	long total = 0, last[THREADS] = {0};
	bool chained = true, small = true;
	memcpy(prev, "", 1);
	for (int i = 50; i >= 0; i--) {
		struct stat st;
		if (i)
			fmt_buf(name, sizeof(name), "%s.%d", p, i);
		else
			fmt_buf(name, sizeof(name), "%s", p);
		if (stat(name, &st) < 0)
			continue;
		if (st.st_size > 16384)
			small = false;
		if (!prev[0]) {
			char *d = NULL;
			read_file(name, 1 << 20, &d, NULL);
			char *pv = d ? strstr(d, "\"prev\":\"") : NULL;
			if (pv)
				memcpy(prev, pv + 8, 64), prev[64] = '\0';
			free(d);
		}
		long n = walk(name, prev, last);
		if (n < 0)
			chained = false;
		else
			total += n;
	}
	ok(chained, "batches keep the chain across rotated files");
	ok(small, "no file above the rotation size");
	ok(total > 50 && last[0] == PER_THREAD,
	   "the newest files end with the last record (%ld records)", total);
}

static atomic_int fail_calls;
static void on_fail(void *arg, int e)
{
	(void)arg;
	(void)e;
	atomic_fetch_add(&fail_calls, 1);
}

static void failure(void)
{
	char p[256], prev[65];
	int err = 0;
	in_dir("fail.jsonl", p, sizeof(p));
	struct audit *a = audit_open(p, "sb", &err);
	struct audit_queue *q = audit_queue_start(a, on_fail, NULL, &err);
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 20000;
	setrlimit(RLIMIT_FSIZE, &lim);
	struct audit_record r;
	audit_record_init(&r);
	r.event = "dns";
	r.host = "t0";
	r.decision = "allow";
	int puts = 0;
	for (r.conn = 1; r.conn < 100000 && !audit_queue_failed(q); r.conn++)
		if (audit_queue_put(q, &r, NULL) == 0)
			puts++;
	/* The last put may have been queued before the writer failed. */
	ok(audit_queue_failed(q), "a write past the size limit fails the queue");
	is_int(atomic_load(&fail_calls), 1, "on_fail was called once");
	is_int(audit_queue_put(q, &r, NULL), -EIO, "a put is refused at once");
	struct audit_queue_gap g;
	bool failed = audit_queue_gap(q, &g);
	ok(failed && g.lost >= 1, "the gap counts %llu lost",
	   (unsigned long long)g.lost);
	long lost = (long)g.lost;
	struct audit_record gap;
	audit_record_init(&gap);
	gap.event = "log";
	gap.reason = "gap";
	ok(audit_queue_recover(q, &gap, &g) < 0 && audit_queue_failed(q),
	   "recovery fails while the file is still too big");
	setrlimit(RLIMIT_FSIZE, &old);
	audit_queue_gap(q, &g);
	is_int(audit_queue_recover(q, &gap, &g), 0, "recovery once it fits");
	ok(!audit_queue_failed(q), "the queue takes records again");
	r.conn = 1000000;
	is_int(audit_queue_write(q, &r), 0, "and writes them");
	audit_queue_stop(q);
	audit_close(a);
	memcpy(prev, AUDIT_GENESIS, 65);
	long n = walk(p, prev, NULL);
	ok(n > 3 && n <= puts + 3, "the chain is intact across the failure "
				   "(%ld records, %d puts)", n, puts);
	/* written before: n - 3 (gap, the one after, closing); lost: the
	 * rest of the puts and the refused one(s) */
	long want = puts - (n - 3) + 1;
	ok(lost == want || lost == want + 1,
	   "the lost count is exact (%ld, want %ld)", lost, want);
	char *data = NULL;
	read_file(p, 1 << 20, &data, NULL);
	ok(data && strstr(data, "\"reason\":\"gap\"") &&
		   strstr(data, "\"conn\":1000000"),
	   "the gap record and the record after it are there");
	free(data);
	is_int(atomic_load(&fail_calls), 1, "on_fail said it once");
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	threads();
	sync_write();
	rotation();
	failure();
	char cmd[300];
	fmt_buf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return done_testing();
}
