/* sandbox-audit summary: the published ports' rows (inbound records, one
 * per connection: docs/audit-log.md). */
#include <stdlib.h>
#include <string.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "review.h"

void addr_without_port(const char *s, char *out, size_t n)
{
	size_t len = strlen(s);
	const char *colon = strrchr(s, ':');
	if (s[0] == '[' && colon && colon > s && colon[-1] == ']')
		len = (size_t)(colon - s);
	else if (colon && strchr(s, ':') == colon)
		len = (size_t)(colon - s);
	fmt_buf(out, n, "%.*s", (int)len, s);
}

static struct inbound_stat *find(struct inbound_table *t, const char *sb,
				 const char *peer, int64_t hp, int64_t gp)
{
	/* Rows are few (host clients of published ports): a linear search
	 * over a bounded set. Past 512 rows, the rest share one row per
	 * sandbox and ports with the peer "(more)". */
	for (size_t i = 0; i < t->n; i++) {
		struct inbound_stat *s = &t->s[i];
		if (s->host_port == hp && s->guest_port == gp &&
		    !strcmp(s->key, sb) && !strcmp(s->peer, peer))
			return s;
	}
	if (t->n >= 512 && strcmp(peer, "(more)"))
		return find(t, sb, "(more)", hp, gp);
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct inbound_stat *v = realloc(t->s, cap * sizeof(*v));
		if (!v)
			return NULL;
		t->s = v;
		t->cap = cap;
	}
	size_t sl = strlen(sb), pl = strlen(peer);
	struct inbound_stat *s = &t->s[t->n];
	memset(s, 0, sizeof(*s));
	if (!(s->key = malloc(sl + pl + 2)))
		return NULL;
	memcpy(s->key, sb, sl + 1);
	memcpy(s->key + sl + 1, peer, pl + 1);
	s->peer = s->key + sl + 1;
	s->host_port = hp;
	s->guest_port = gp;
	s->first = INT64_MAX;
	s->last = INT64_MIN;
	t->n++;
	return s;
}

int inbound_stats_add(struct inbound_table *t, const struct rec *r)
{
	char peer[256];
	addr_without_port(r->peer ? r->peer : "-", peer, sizeof(peer));
	struct inbound_stat *s = find(t, r->sandbox ? r->sandbox : "", peer,
				      r->host_port, r->port);
	if (!s)
		return -ENOMEM;
	s->conns++;
	s->up += r->bytes_up > 0 ? (uint64_t)r->bytes_up : 0;
	s->down += r->bytes_down > 0 ? (uint64_t)r->bytes_down : 0;
	if (r->time_ms != INT64_MIN) {
		if (r->time_ms < s->first)
			s->first = r->time_ms;
		if (r->time_ms > s->last)
			s->last = r->time_ms;
	}
	return 0;
}

static int by_port(const void *a, const void *b)
{
	const struct inbound_stat *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	if (c)
		return c;
	if (x->host_port != y->host_port)
		return x->host_port < y->host_port ? -1 : 1;
	if (x->guest_port != y->guest_port)
		return x->guest_port < y->guest_port ? -1 : 1;
	return strcmp(x->peer, y->peer);
}

void inbound_stats_sort(struct inbound_table *t)
{
	if (t->n)
		qsort(t->s, t->n, sizeof(*t->s), by_port);
}

void inbound_stats_print(const struct inbound_table *t, bool json)
{
	if (!json && t->n)
		printf("\nINBOUND (published ports)\n%-16s %9s %10s %-40s %6s "
		       "%12s %12s %-24s %-24s\n",
		       "SANDBOX", "HOST-PORT", "GUEST-PORT", "PEER", "CONNS",
		       "BYTES-UP", "BYTES-DOWN", "FIRST", "LAST");
	for (size_t i = 0; i < t->n; i++) {
		const struct inbound_stat *s = &t->s[i];
		if (json) {
			printf("{\"sandbox\":");
			put_json_str(stdout, s->key);
			printf(",\"event\":\"inbound\",\"host_port\":%lld,"
			       "\"port\":%lld,\"peer\":",
			       (long long)s->host_port, (long long)s->guest_port);
			put_json_str(stdout, s->peer);
			printf(",\"connections\":%llu,\"bytes_up\":%llu,"
			       "\"bytes_down\":%llu,\"first\":\"",
			       (unsigned long long)s->conns,
			       (unsigned long long)s->up,
			       (unsigned long long)s->down);
			put_time(stdout, s->first);
			printf("\",\"last\":\"");
			put_time(stdout, s->last);
			printf("\"}\n");
			continue;
		}
		char sb[256], peer[512];
		term_escape(s->key, strlen(s->key), sb, sizeof(sb), false);
		term_escape(s->peer, strlen(s->peer), peer, sizeof(peer), false);
		printf("%-16s %9lld %10lld %-40s %6llu %12llu %12llu ", sb,
		       (long long)s->host_port, (long long)s->guest_port, peer,
		       (unsigned long long)s->conns,
		       (unsigned long long)s->up, (unsigned long long)s->down);
		put_time(stdout, s->first);
		fputc(' ', stdout);
		put_time(stdout, s->last);
		fputc('\n', stdout);
	}
}

void inbound_stats_free(struct inbound_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->s[i].key);
	free(t->s);
	t->s = NULL;
	t->n = t->cap = 0;
}
