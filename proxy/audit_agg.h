/* Aggregation of repeated identical decisions from one stream, so that a
 * guest cannot grow the host's audit log as fast as it can send messages,
 * while every decision stays on record (docs/audit-log.md, "Aggregation").
 *
 * The first record with a given content is written as usual and opens an
 * interval of AUDIT_AGG_INTERVAL_MS. An identical record inside the
 * interval is only counted. When the interval ends with a count, one
 * aggregate record is written (the same fields plus count, first, last)
 * and opens the next interval; an interval that ends without repeats just
 * closes. A stream also has a budget of written records per interval
 * (AUDIT_AGG_BUDGET): when it is spent the stream waits (its reading
 * pauses) until the next interval, so distinct records are delayed, never
 * dropped.
 *
 * Pure: no I/O, no allocation, times are passed in. */
#ifndef PROXY_AUDIT_AGG_H
#define PROXY_AUDIT_AGG_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "../auditlog/audit.h"

#define AUDIT_AGG_SLOTS 8
#define AUDIT_AGG_INTERVAL_MS 1000
#define AUDIT_AGG_BUDGET 200 /* written records per stream per interval */

struct audit_agg_slot {
	bool used;
	/* event, proto and decision are static strings (compared by
	 * content); the others are copies. */
	const char *event, *proto, *decision;
	char host[256], qtype[16], rule[512], reason[256];
	bool has_host, has_qtype, has_rule, has_reason;
	uint64_t conn;
	int port;
	uint64_t opened_ms;	     /* monotonic: when the interval began */
	uint64_t count;		     /* identical records since, not written */
	struct timespec first, last; /* wall clock of the first/last counted */
};

struct audit_agg {
	struct audit_agg_slot slot[AUDIT_AGG_SLOTS];
	uint64_t window_ms; /* monotonic start of the budget window */
	unsigned written;   /* records written in that window */
};

/* Does r match a slot whose interval is still open at now_ms? Then it is
 * counted (true) and must not be written. A record that cannot be held
 * exactly (a string longer than its slot field) never matches. */
bool audit_agg_count(struct audit_agg *g, const struct audit_record *r,
		     uint64_t now_ms, const struct timespec *now);

/* The slot r should open after it was written: a free one, else the one
 * opened longest ago. When that slot holds a count, write its aggregate
 * (audit_agg_aggregate) before audit_agg_open reuses it. */
int audit_agg_victim(const struct audit_agg *g);

/* r was written at now_ms: slot i now stands for it (no-op when r cannot
 * be held exactly). Also charges the budget. */
void audit_agg_open(struct audit_agg *g, int i, const struct audit_record *r,
		    uint64_t now_ms);

/* A slot whose interval has ended at now_ms (any used slot with force),
 * or -1. Slots that ended without a count are freed on the way. */
int audit_agg_due(struct audit_agg *g, uint64_t now_ms, bool force);

/* The aggregate record of slot i (pointing into the slot). */
void audit_agg_aggregate(const struct audit_agg *g, int i,
			 struct audit_record *out);

/* The aggregate of slot i was written at now_ms: a new interval begins
 * (force: the slot is freed instead). Charges the budget. */
void audit_agg_flushed(struct audit_agg *g, int i, uint64_t now_ms, bool force);

/* May the stream make another decision that could be written at now_ms?
 * false: its budget for this interval is spent; wait for the next. */
bool audit_agg_budget_ok(struct audit_agg *g, uint64_t now_ms);

#endif
