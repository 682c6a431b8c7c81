/* Aggregation of repeated identical records (proxy/audit_agg.c): the first
 * record is written, repeats inside the interval are only counted, the
 * interval's end yields one aggregate with count/first/last, a different
 * field is a different record, slots are reused oldest first, and a
 * stream's record budget runs out and comes back. Also: an aggregate
 * renders its count, first and last, and stays one chained line. */
#include <string.h>
#include <time.h>

#include "../../common/util.h"
#include "../../auditlog/audit.h"
#include "../../proxy/audit_agg.h"
#include "tap.h"

static struct audit_record dns(const char *host, const char *reason)
{
	struct audit_record r;
	audit_record_init(&r);
	r.event = "dns";
	r.conn = 7;
	r.proto = "dns";
	r.host = host;
	r.qtype = "A";
	r.decision = "deny";
	r.rule = "default";
	r.reason = reason;
	return r;
}

static struct timespec at(long s)
{
	struct timespec ts = {.tv_sec = 1800000000 + s, .tv_nsec = 0};
	return ts;
}

static void test_repeats_counted(void)
{
	static struct audit_agg g;
	memset(&g, 0, sizeof(g));
	struct audit_record r = dns("denied.test", "denied by policy");
	struct timespec t0 = at(0), t1 = at(1);
	ok(!audit_agg_count(&g, &r, 1000, &t0), "first record is written");
	int v = audit_agg_victim(&g);
	audit_agg_open(&g, v, &r, 1000);
	int n = 0;
	for (int i = 0; i < 99999; i++)
		n += audit_agg_count(&g, &r, 1000 + (uint64_t)i / 100, &t1);
	is_int(n, 99999, "every repeat inside the interval is counted");
	is_int(audit_agg_due(&g, 1999, false), -1, "not due inside interval");
	int d = audit_agg_due(&g, 2000, false);
	ok(d == v, "due once the interval ended");
	struct audit_record a;
	audit_agg_aggregate(&g, d, &a);
	is_int(a.count, 99999, "aggregate carries the count");
	is_str(a.host, "denied.test", "aggregate names the host");
	is_str(a.reason, "denied by policy", "and the reason");
	ok(a.first && a.last && a.first->tv_sec == t1.tv_sec,
	   "first and last times");
	audit_agg_flushed(&g, d, 2000, false);
	ok(audit_agg_count(&g, &r, 2500, &t1),
	   "after an aggregate the next interval keeps counting");
	audit_agg_flushed(&g, d, 2600, true);
	ok(!audit_agg_count(&g, &r, 2700, &t1),
	   "a forced flush frees the slot");
}

static void test_distinct_fields(void)
{
	static struct audit_agg g;
	memset(&g, 0, sizeof(g));
	struct timespec t = at(0);
	struct audit_record a = dns("a.test", "denied by policy");
	audit_agg_open(&g, audit_agg_victim(&g), &a, 0);
	struct audit_record b = dns("b.test", "denied by policy");
	ok(!audit_agg_count(&g, &b, 10, &t), "another host is not a repeat");
	struct audit_record c = dns("a.test", "other reason");
	ok(!audit_agg_count(&g, &c, 10, &t), "another reason is not a repeat");
	struct audit_record d = dns("a.test", "denied by policy");
	d.qtype = "AAAA";
	ok(!audit_agg_count(&g, &d, 10, &t), "another qtype is not a repeat");
	struct audit_record e = dns(NULL, "denied by policy");
	ok(!audit_agg_count(&g, &e, 10, &t), "no host is not a repeat");
	struct audit_record f = dns("a.test", "denied by policy");
	f.decision = "would-deny";
	ok(!audit_agg_count(&g, &f, 10, &t),
	   "another decision is not a repeat");
	struct audit_record h = dns("a.test", "denied by policy");
	h.bytes_up = 5;
	ok(!audit_agg_count(&g, &h, 10, &t), "records with bytes never match");
	char long_host[400];
	memset(long_host, 'x', sizeof(long_host) - 1);
	long_host[sizeof(long_host) - 1] = '\0';
	struct audit_record l = dns(long_host, "r");
	audit_agg_open(&g, audit_agg_victim(&g), &l, 10);
	ok(!audit_agg_count(&g, &l, 11, &t),
	   "a record too long to hold exactly is never counted");
}

static void test_victim_oldest(void)
{
	static struct audit_agg g;
	memset(&g, 0, sizeof(g));
	char names[AUDIT_AGG_SLOTS + 1][16];
	for (int i = 0; i <= AUDIT_AGG_SLOTS; i++) {
		fmt_buf(names[i], sizeof(names[i]), "n%d.test", i);
		struct audit_record r = dns(names[i], "x");
		int v = audit_agg_victim(&g);
		if (i == AUDIT_AGG_SLOTS)
			is_str(g.slot[v].host, "n0.test",
			       "a full table reuses the oldest slot");
		audit_agg_open(&g, v, &r, (uint64_t)i);
	}
}

static void test_budget(void)
{
	static struct audit_agg g;
	memset(&g, 0, sizeof(g));
	g.window_ms = 5000;
	int n = 0;
	while (audit_agg_budget_ok(&g, 5000) && n < 10 * AUDIT_AGG_BUDGET) {
		struct audit_record r = dns("x.test", "x");
		audit_agg_open(&g, -1, &r, 5000);
		n++;
	}
	is_int(n, AUDIT_AGG_BUDGET, "the budget allows this many records");
	ok(!audit_agg_budget_ok(&g, 5999), "spent until the interval ends");
	ok(audit_agg_budget_ok(&g, 6000), "and back in the next one");
}

static void test_render(void)
{
	struct audit_record r = dns("denied.test", "denied by policy");
	struct timespec f = at(1), l = at(3), now = at(4);
	f.tv_nsec = 5000000;
	r.count = 42;
	r.first = &f;
	r.last = &l;
	char buf[AUDIT_LINE_MAX], hash[65];
	ssize_t n =
	    audit_render("sb", &r, &now, AUDIT_GENESIS, buf, sizeof(buf), hash);
	ok(n > 0, "aggregate renders");
	buf[n > 0 ? n : 0] = '\0';
	ok(strstr(buf,
		  ",\"count\":42,\"first\":\"2027-01-15T08:00:01.005Z\","
		  "\"last\":\"2027-01-15T08:00:03.000Z\",\"prev\":") != NULL,
	   "count, first, last come last before the chain: %s", buf);
	audit_record_init(&r);
	r.event = "dns";
	n = audit_render(NULL, &r, &now, AUDIT_GENESIS, buf, sizeof(buf), hash);
	buf[n > 0 ? n : 0] = '\0';
	ok(!strstr(buf, "count") && !strstr(buf, "first"),
	   "absent aggregate fields are omitted");
}

int main(void)
{
	test_repeats_counted();
	test_distinct_fields();
	test_victim_oldest();
	test_budget();
	test_render();
	return done_testing();
}
