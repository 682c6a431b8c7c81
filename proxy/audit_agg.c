/* Aggregation of repeated identical decisions (see audit_agg.h). */
#include "audit_agg.h"

#include <string.h>

static bool same_static(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* A copied field: present and equal, or both absent. */
static bool same_copy(bool has, const char *held, const char *v)
{
	return has ? v && strcmp(held, v) == 0 : !v;
}

static bool fits(const char *v, size_t cap) { return !v || strlen(v) < cap; }

static bool holdable(const struct audit_record *r)
{
	const struct audit_agg_slot *s = NULL;
	/* Records with byte counts or durations are never identical. */
	return r->bytes_up < 0 && r->bytes_down < 0 && r->duration_ms < 0 &&
	       r->count < 0 && !r->sni && !r->addr &&
	       fits(r->host, sizeof(s->host)) &&
	       fits(r->qtype, sizeof(s->qtype)) &&
	       fits(r->rule, sizeof(s->rule)) &&
	       fits(r->reason, sizeof(s->reason));
}

static bool matches(const struct audit_agg_slot *s,
		    const struct audit_record *r)
{
	return s->used && s->conn == r->conn && s->port == r->port &&
	       same_static(s->event, r->event) &&
	       same_static(s->proto, r->proto) &&
	       same_static(s->decision, r->decision) &&
	       same_copy(s->has_host, s->host, r->host) &&
	       same_copy(s->has_qtype, s->qtype, r->qtype) &&
	       same_copy(s->has_rule, s->rule, r->rule) &&
	       same_copy(s->has_reason, s->reason, r->reason);
}

static bool open_at(const struct audit_agg_slot *s, uint64_t now_ms)
{
	return now_ms - s->opened_ms < AUDIT_AGG_INTERVAL_MS;
}

bool audit_agg_count(struct audit_agg *g, const struct audit_record *r,
		     uint64_t now_ms, const struct timespec *now)
{
	if (!holdable(r))
		return false;
	for (int i = 0; i < AUDIT_AGG_SLOTS; i++) {
		struct audit_agg_slot *s = &g->slot[i];
		if (!matches(s, r) || !open_at(s, now_ms))
			continue;
		if (s->count++ == 0)
			s->first = *now;
		s->last = *now;
		return true;
	}
	return false;
}

int audit_agg_victim(const struct audit_agg *g)
{
	int oldest = 0;
	for (int i = 0; i < AUDIT_AGG_SLOTS; i++) {
		if (!g->slot[i].used)
			return i;
		if (g->slot[i].opened_ms < g->slot[oldest].opened_ms)
			oldest = i;
	}
	return oldest;
}

static void copy(bool *has, char *dst, size_t cap, const char *v)
{
	*has = v != NULL;
	if (v)
		memcpy(dst, v, strlen(v) + 1);
	else
		dst[0] = '\0';
	(void)cap;
}

static void charge(struct audit_agg *g, uint64_t now_ms)
{
	if (now_ms - g->window_ms >= AUDIT_AGG_INTERVAL_MS) {
		g->window_ms = now_ms;
		g->written = 0;
	}
	g->written++;
}

void audit_agg_open(struct audit_agg *g, int i, const struct audit_record *r,
		    uint64_t now_ms)
{
	charge(g, now_ms);
	if (i < 0 || i >= AUDIT_AGG_SLOTS || !holdable(r))
		return;
	struct audit_agg_slot *s = &g->slot[i];
	memset(s, 0, sizeof(*s));
	s->used = true;
	s->event = r->event;
	s->proto = r->proto;
	s->decision = r->decision;
	s->conn = r->conn;
	s->port = r->port;
	copy(&s->has_host, s->host, sizeof(s->host), r->host);
	copy(&s->has_qtype, s->qtype, sizeof(s->qtype), r->qtype);
	copy(&s->has_rule, s->rule, sizeof(s->rule), r->rule);
	copy(&s->has_reason, s->reason, sizeof(s->reason), r->reason);
	s->opened_ms = now_ms;
}

int audit_agg_due(struct audit_agg *g, uint64_t now_ms, bool force)
{
	for (int i = 0; i < AUDIT_AGG_SLOTS; i++) {
		struct audit_agg_slot *s = &g->slot[i];
		if (!s->used || (!force && open_at(s, now_ms)))
			continue;
		if (s->count)
			return i;
		s->used = false;
	}
	return -1;
}

void audit_agg_aggregate(const struct audit_agg *g, int i,
			 struct audit_record *out)
{
	const struct audit_agg_slot *s = &g->slot[i];
	audit_record_init(out);
	out->event = s->event;
	out->conn = s->conn;
	out->proto = s->proto;
	out->host = s->has_host ? s->host : NULL;
	out->port = s->port;
	out->qtype = s->has_qtype ? s->qtype : NULL;
	out->decision = s->decision;
	out->rule = s->has_rule ? s->rule : NULL;
	out->reason = s->has_reason ? s->reason : NULL;
	out->count = (int64_t)(s->count & INT64_MAX);
	out->first = &s->first;
	out->last = &s->last;
}

void audit_agg_flushed(struct audit_agg *g, int i, uint64_t now_ms, bool force)
{
	struct audit_agg_slot *s = &g->slot[i];
	charge(g, now_ms);
	s->count = 0;
	s->opened_ms = now_ms;
	if (force)
		s->used = false;
}

bool audit_agg_budget_ok(struct audit_agg *g, uint64_t now_ms)
{
	if (now_ms - g->window_ms >= AUDIT_AGG_INTERVAL_MS) {
		g->window_ms = now_ms;
		g->written = 0;
	}
	return g->written < AUDIT_AGG_BUDGET;
}
