/* The one decide-and-record path (see proxy.h): every decision is in the
 * audit writer's queue before it takes effect, and while the log cannot be
 * written no decision takes effect at all.
 *
 * Group commit (auditlog/audit_queue.h): a writer thread appends what is
 * queued in batches, so the event loop never waits for the file, except
 * for policy changes (proxy_audit_sync), which are rare and must not stay
 * in force unrecorded. A failed batch switches the queue to failed at
 * once, for every decision path.
 *
 * The rule behind it: no byte that depends on a guest-chosen name leaves
 * the host before the decision about that name is in the log. Connections
 * (the connection module, conn_internal.h), DNS streams (dns_stream.c) and control
 * changes (control.c, main.c) all reach the log through proxy_audit(), so
 * a failed write stops all of them at once.
 *
 * Recovery: a once-a-second tick (worker 0's) tries to write a "log" record that says
 * how long the log could not be written and how many records were lost;
 * when it succeeds, the proxy resumes: new connections are accepted again
 * and paused DNS streams read on. The same tick writes the aggregates of
 * DNS streams whose interval ended (audit_agg.h).
 *
 * Bound: besides each DNS stream's budget, the proxy as a whole writes at
 * most --record-rate records a second before new work waits: DNS
 * streams stop reading until the tick, listeners stop accepting until the
 * budget's second ends (their own timer; the tick is the fallback). */
#include <event2/event.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "../auditlog/audit.h"
#include "../auditlog/audit_queue.h"
#include "audit_agg.h"
#include "conn.h"
#include "listener.h"
#include "proxy.h"
#include "worker.h"

#define TICK_MS 1000

/* The budget is one atomic word, (second << 32) | records written in it,
 * so that any thread may charge it and the proxy as a whole, not each
 * thread, is held to cfg->record_rate. Seconds are those of the monotonic
 * clock, so a window ends at a whole second. */
static unsigned budget_used(struct proxy *px, uint64_t sec)
{
	uint64_t v = atomic_load_explicit(&px->budget, memory_order_relaxed);
	return (v >> 32) == (sec & 0xffffffffu) ? (unsigned)v : 0;
}

bool proxy_budget_ok(struct proxy *px)
{
	return budget_used(px, mono_ms() / 1000) < px->cfg->record_rate;
}

unsigned proxy_budget_wait_ms(struct proxy *px)
{
	(void)px;
	unsigned ms = 1000 - (unsigned)(mono_ms() % 1000);
	return ms ? ms : 1;
}

static void budget_charge(struct proxy *px)
{
	uint64_t sec = (mono_ms() / 1000) & 0xffffffffu;
	uint64_t v = atomic_load_explicit(&px->budget, memory_order_relaxed);
	uint64_t n;
	do {
		if ((v >> 32) != sec)
			n = sec << 32 | 1;
		else
			n = (uint32_t)v < UINT32_MAX ? v + 1 : v;
	} while (!atomic_compare_exchange_weak_explicit(
		&px->budget, &v, n, memory_order_relaxed,
		memory_order_relaxed));
}

int proxy_audit(struct proxy *px, const struct audit_record *r)
{
	int e = audit_queue_put(px->audit_q, r, NULL);
	if (e == 0)
		budget_charge(px);
	return e;
}

int proxy_audit_sync(struct proxy *px, const struct audit_record *r)
{
	int e = audit_queue_write(px->audit_q, r);
	if (e == 0)
		budget_charge(px);
	return e;
}

/* The writer thread found the log unwritable (audit_queue.h). */
static void on_audit_fail(void *arg, int err)
{
	const struct proxy *px = arg;
	if (err == AUDIT_E_CAP) {
		fprintf(stderr,
			"sandbox-proxy: %s: this run's records fill all %u "
			"audit file(s) of %u bytes, and rotating would delete "
			"its own first records; refusing new connections, DNS "
			"and policy changes for the rest of this run (raise "
			"--audit-max-bytes or --audit-keep)\n",
			AUDIT_CAP_REASON, px->cfg->audit_keep + 1,
			px->cfg->audit_max_bytes);
		return;
	}
	fprintf(stderr,
		"sandbox-proxy: audit log write failed (%s); refusing "
		"new connections, DNS and policy changes until it "
		"can be written\n",
		strerror(-err));
}

int proxy_audit_open(struct proxy *px)
{
	int err = 0;
	px->audit_q = audit_queue_start(px->audit, on_audit_fail, px, &err);
	return px->audit_q ? 0 : err;
}

void proxy_audit_close(struct proxy *px)
{
	audit_queue_stop(px->audit_q);
	px->audit_q = NULL;
}

bool proxy_may_act(struct proxy *px)
{
	return !audit_queue_failed(px->audit_q);
}

int proxy_audit_flush(struct proxy *px, struct audit_agg *g, bool force)
{
	uint64_t now = mono_ms();
	int i;
	while ((i = audit_agg_due(g, now, force)) >= 0) {
		struct audit_record a;
		audit_agg_aggregate(g, i, &a);
		int e = proxy_audit(px, &a);
		if (e < 0)
			return e;
		audit_agg_flushed(g, i, now, force);
	}
	return 0;
}

int proxy_audit_stream(struct proxy *px, struct audit_agg *g,
		       const struct audit_record *r)
{
	if (!proxy_may_act(px))
		return proxy_audit(px, r); /* counts the refusal */
	/* Intervals that ended since the last tick end now, so a steady
	 * flood costs one aggregate per interval, not a new first record. */
	int e = proxy_audit_flush(px, g, false);
	if (e < 0)
		return e;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = mono_ms();
	if (audit_agg_count(g, r, now, &ts))
		return 0;
	int i = audit_agg_victim(g);
	if (g->slot[i].used && g->slot[i].count) {
		struct audit_record a;
		audit_agg_aggregate(g, i, &a);
		e = proxy_audit(px, &a);
		if (e < 0)
			return e;
		audit_agg_flushed(g, i, now, true);
	}
	e = proxy_audit(px, r);
	if (e < 0)
		return e;
	audit_agg_open(g, i, r, now);
	return 0;
}

/* The log works again: record the gap, then let everything resume. */
static void try_recover(struct proxy *px)
{
	struct audit_queue_gap g;
	if (!audit_queue_gap(px->audit_q, &g))
		return;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t ms = mono_ms() - g.since_ms;
	char reason[200];
	fmt_buf(reason, sizeof(reason),
		"audit log could not be written for %llu.%03llu s; %llu "
		"record(s) lost, every decision refused meanwhile",
		(unsigned long long)(ms / 1000),
		(unsigned long long)(ms % 1000),
		(unsigned long long)g.lost);
	struct audit_record r;
	audit_record_init(&r);
	r.event = "log";
	r.decision = "deny";
	r.reason = reason;
	r.duration_ms = (int64_t)ms;
	r.first = &g.since;
	r.last = &now;
	if (audit_queue_recover(px->audit_q, &r, &g) < 0)
		return;
	fprintf(stderr,
		"sandbox-proxy: audit log writable again after "
		"%llu.%03llu s; resuming\n",
		(unsigned long long)(ms / 1000),
		(unsigned long long)(ms % 1000));
}

/* Each worker has its own tick for its own connections and listener
 * slots; worker 0's also retries a log that could not be written (the
 * others resume on their next tick once it recovered). */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct proxy *px = w->px;
	(void)fd;
	(void)what;
	if (!proxy_may_act(px)) {
		if (w->idx != 0)
			return;
		try_recover(px);
		if (!proxy_may_act(px))
			return;
	}
	conn_tick(w);
	listeners_resume(w);
}

int proxy_record_start(struct worker *w)
{
	struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
	w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
	if (!w->tick || event_add(w->tick, &tv) < 0)
		return -ENOMEM;
	return 0;
}

void proxy_record_stop(struct worker *w)
{
	if (w->tick)
		event_free(w->tick);
	w->tick = NULL;
}
