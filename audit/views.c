/* sandbox-audit summary and denied. */
#include <string.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "review.h"

static const char summary_usage[] =
	"usage: sandbox-audit summary [FILTERS] [--json] FILE...\n"
	"  Per sandbox and host: decisions (each DNS query and connection\n"
	"  counts once; close records add only bytes), bytes up and down,\n"
	"  first and last seen, and where the guest says its connections came\n"
	"  from (FROM: src=ADDRESS and, for Docker containers,\n"
	"  container=NAME, up to 8 each per row, the guest's claim).\n"
	"  Then the published ports: per host port, guest port and peer\n"
	"  address, connections and bytes (inbound records).\n"
	"FILTERS (every view):\n"
	"  --sandbox NAME    only this sandbox\n"
	"  --host PATTERN    name, *.suffix or **.suffix (policy semantics;\n"
	"                    repeatable: any of them)\n"
	"  --decision allow|deny|would-deny\n"
	"  --since T, --until T  RFC 3339 or a duration back from now\n"
	"                    (90s, 15m, 1h, 2d, 1w)\n"
	"  --json            JSON Lines output, one object per row\n";

static const char denied_usage[] =
	"usage: sandbox-audit denied [FILTERS] [--json] FILE...\n"
	"  Every denied or would-be denied DNS query and connection (close\n"
	"  records, which repeat their connection's decision, are left out).\n"
	"  --json prints the records themselves, one per line.\n"
	"  FILTERS: --sandbox, --host, --decision, --since, --until (see\n"
	"  sandbox-audit summary --help).\n";

struct table {
	struct host_stat *slots; /* owned; key == NULL: empty */
	size_t cap, count;
};

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static int grow(struct table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024;
	struct host_stat *s = calloc(cap, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->slots[i].key)
			continue;
		const char *k = t->slots[i].key;
		size_t kl = strlen(k) + 1 + strlen(t->slots[i].host);
		size_t j = hash(k, kl) & (cap - 1);
		while (s[j].key)
			j = (j + 1) & (cap - 1);
		s[j] = t->slots[i];
	}
	free(t->slots);
	t->slots = s;
	t->cap = cap;
	return 0;
}

static struct host_stat *lookup(struct table *t, const char *sb,
				const char *host)
{
	char key[1024];
	size_t sl = strlen(sb), hl = strlen(host);
	if (sl + hl + 2 > sizeof(key))
		return NULL;
	memcpy(key, sb, sl + 1);
	memcpy(key + sl + 1, host, hl + 1);
	size_t kl = sl + 1 + hl;
	if ((t->count + 1) * 2 > t->cap && grow(t) < 0)
		return NULL;
	size_t j = hash(key, kl) & (t->cap - 1);
	for (; t->slots[j].key; j = (j + 1) & (t->cap - 1))
		if (memcmp(t->slots[j].key, key, kl + 1) == 0)
			return &t->slots[j];
	struct host_stat *h = &t->slots[j];
	if (!(h->key = malloc(kl + 1)))
		return NULL;
	memcpy(h->key, key, kl + 1);
	h->host = h->key + sl + 1;
	h->first = INT64_MAX;
	h->last = INT64_MIN;
	t->count++;
	return h;
}

/* Printable form for the text views (common/termsafe.h): a hostile name
 * cannot drive the terminal. */
static void text_str(const char *s, char *out, size_t n)
{
	term_escape(s, strlen(s), out, n, false);
}

static int decision_index(const char *d)
{
	if (!d)
		return -1;
	if (strcmp(d, "allow") == 0)
		return 0;
	if (strcmp(d, "deny") == 0)
		return 1;
	if (strcmp(d, "would-deny") == 0)
		return 2;
	return -1;
}

/* The label fields (review.h): the record's value, shown without its
 * port, since a client's port changes with every connection. */
const char *const label_names[LABEL_COUNT] = {
	[LABEL_SRC] = "src",
	[LABEL_CONTAINER] = "container",
};

static const char *label_of(const struct rec *r, int i)
{
	switch (i) {
	case LABEL_SRC:
		return r->src;
	case LABEL_CONTAINER:
		return r->container;
	}
	return NULL;
}

static int label_add(struct label_set *l, int field, const char *value)
{
	char v[256];
	if (field == LABEL_SRC)
		addr_without_port(value, v, sizeof(v));
	else
		fmt_buf(v, sizeof(v), "%s", value);
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], v))
			return 0;
	if (l->n == LABEL_VALUES_MAX) {
		l->more++; /* may count one value twice: "at most" */
		return 0;
	}
	if (!(l->v[l->n] = strdup(v)))
		return -ENOMEM;
	l->n++;
	return 0;
}

struct collect {
	struct table hosts;
	struct inbound_table *in; /* NULL: not wanted */
};

static int add(void *ctx, const struct rec *r, const char *line, size_t len,
	       const char *path, unsigned long lineno)
{
	(void)line, (void)len, (void)path, (void)lineno;
	struct collect *c = ctx;
	struct table *t = &c->hosts;
	if (r->event && c->in && !strcmp(r->event, "inbound"))
		return inbound_stats_add(c->in, r);
	if (!r->host || !r->event)
		return 0;
	struct host_stat *h = lookup(t, r->sandbox ? r->sandbox : "", r->host);
	if (!h)
		return -ENOMEM;
	for (int i = 0; i < LABEL_COUNT; i++) {
		const char *v = label_of(r, i);
		if (v && label_add(&h->label[i], i, v) < 0)
			return -ENOMEM;
	}
	bool close = strcmp(r->event, "close") == 0;
	int d = decision_index(r->decision);
	if (!rec_is_followup(r) && d >= 0)
		h->n[d] += rec_weight(r);
	if (close) {
		h->up += r->bytes_up > 0 ? (uint64_t)r->bytes_up : 0;
		h->down += r->bytes_down > 0 ? (uint64_t)r->bytes_down : 0;
	}
	if (r->time_ms != INT64_MIN) {
		if (r->time_ms < h->first)
			h->first = r->time_ms;
		if (r->time_ms > h->last)
			h->last = r->time_ms;
	}
	return 0;
}

int by_host(const void *a, const void *b)
{
	const struct host_stat *x = a, *y = b;
	int c = strcmp(x->host, y->host);
	return c ? c : strcmp(x->key, y->key);
}

long summary_collect(const struct opts *o, struct host_stat **out,
		     size_t *n, long *bad)
{
	return summary_collect_all(o, out, n, NULL, bad);
}

long summary_collect_all(const struct opts *o, struct host_stat **out,
			 size_t *n, struct inbound_table *in, long *bad)
{
	struct collect c = {.in = in};
	struct table t;
	long e = for_each_record(o, add, &c);
	t = c.hosts;
	if (in)
		inbound_stats_sort(in);
	size_t k = 0;
	for (size_t i = 0; i < t.cap; i++)
		if (t.slots[i].key)
			t.slots[k++] = t.slots[i];
	if (k)
		qsort(t.slots, k, sizeof(*t.slots), by_host);
	*out = t.slots;
	*n = k;
	*bad = e > 0 ? e : 0;
	return e < 0 ? e : 0;
}

void free_stats(struct host_stat *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].key);
		for (int l = 0; l < LABEL_COUNT; l++)
			for (size_t k = 0; k < s[i].label[l].n; k++)
				free(s[i].label[l].v[k]);
	}
	free(s);
}

/* The labels of a row: JSON ,"src":["a","b"] (and "src_more":N); text
 * " src=a,b(+N)". Absent when the row has none. */
static void print_labels(const struct host_stat *h, bool json)
{
	for (int l = 0; l < LABEL_COUNT; l++) {
		const struct label_set *s = &h->label[l];
		if (!s->n)
			continue;
		if (json) {
			printf(",\"%s\":[", label_names[l]);
			for (size_t k = 0; k < s->n; k++) {
				if (k)
					fputc(',', stdout);
				put_json_str(stdout, s->v[k]);
			}
			fputc(']', stdout);
			if (s->more)
				printf(",\"%s_more\":%llu", label_names[l],
				       (unsigned long long)s->more);
			continue;
		}
		printf(" %s=", label_names[l]);
		for (size_t k = 0; k < s->n; k++) {
			char v[512];
			text_str(s->v[k], v, sizeof(v));
			printf("%s%s", k ? "," : "", v);
		}
		if (s->more)
			printf("(+%llu)", (unsigned long long)s->more);
	}
}

int cmd_summary(int argc, char **argv)
{
	struct opts o;
	int rc = opts_parse(argc, argv, O_FILTER | O_JSON, summary_usage, &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (o.nfiles == 0) {
		fprintf(stderr, "sandbox-audit summary: no FILE given\n%s",
			summary_usage);
		opts_free(&o);
		return 2;
	}
	struct host_stat *s;
	size_t n;
	long bad;
	struct inbound_table in = {0};
	if (summary_collect_all(&o, &s, &n, &in, &bad) < 0) {
		inbound_stats_free(&in);
		opts_free(&o);
		return 2;
	}
	if (!o.json)
		printf("%-16s %-40s %8s %8s %10s %12s %12s %-24s %-24s %s\n",
		       "SANDBOX", "HOST", "ALLOW", "DENY", "WOULD-DENY",
		       "BYTES-UP", "BYTES-DOWN", "FIRST", "LAST", "FROM");
	for (size_t i = 0; i < n; i++) {
		const struct host_stat *h = &s[i];
		if (o.json) {
			printf("{\"sandbox\":");
			put_json_str(stdout, h->key);
			printf(",\"host\":");
			put_json_str(stdout, h->host);
			printf(",\"allow\":%llu,\"deny\":%llu,\"would_deny\":%llu,"
			       "\"bytes_up\":%llu,\"bytes_down\":%llu,\"first\":\"",
			       (unsigned long long)h->n[0],
			       (unsigned long long)h->n[1],
			       (unsigned long long)h->n[2],
			       (unsigned long long)h->up,
			       (unsigned long long)h->down);
			put_time(stdout, h->first);
			printf("\",\"last\":\"");
			put_time(stdout, h->last);
			fputc('"', stdout);
			print_labels(h, true);
			printf("}\n");
		} else {
			/* Names are escaped JSON-style so that a hostile
			 * name cannot drive the terminal. */
			char sb[256], host[1024];
			text_str(h->key, sb, sizeof(sb));
			text_str(h->host, host, sizeof(host));
			printf("%-16s %-40s %8llu %8llu %10llu %12llu %12llu ",
			       sb, host, (unsigned long long)h->n[0],
			       (unsigned long long)h->n[1],
			       (unsigned long long)h->n[2],
			       (unsigned long long)h->up,
			       (unsigned long long)h->down);
			put_time(stdout, h->first);
			fputc(' ', stdout);
			put_time(stdout, h->last);
			print_labels(h, false);
			fputc('\n', stdout);
		}
	}
	inbound_stats_print(&in, o.json);
	free_stats(s, n);
	inbound_stats_free(&in);
	opts_free(&o);
	return bad ? 1 : 0;
}

/* One human line per record: time sandbox event host:port decision rule
 * reason, strings escaped. Shared with follow. */
void print_record_line(const struct rec *r)
{
	term_fputs(r->time ? r->time : "-", stdout, false);
	fputc(' ', stdout);
	put_json_str(stdout, r->sandbox ? r->sandbox : "");
	fputc(' ', stdout);
	term_fputs(r->event ? r->event : "-", stdout, false);
	fputc(' ', stdout);
	if (r->host)
		put_json_str(stdout, r->host);
	else
		fputs("-", stdout);
	if (r->port >= 0)
		printf(":%lld", (long long)r->port);
	fputc(' ', stdout);
	term_fputs(r->decision ? r->decision : "-", stdout, false);
	fputc(' ', stdout);
	term_fputs(r->rule ? r->rule : "-", stdout, false);
	if (r->reason) {
		fputc(' ', stdout);
		put_json_str(stdout, r->reason);
	}
	if (r->count >= 0)
		printf(" (x%lld from %s to %s)", (long long)r->count,
		       r->first ? r->first : "?", r->last ? r->last : "?");
	fputc('\n', stdout);
}

static int print_denied(void *ctx, const struct rec *r, const char *line,
			size_t len, const char *path, unsigned long lineno)
{
	(void)path, (void)lineno;
	const struct opts *o = ctx;
	if (!r->event || rec_is_followup(r) || !r->decision ||
	    (strcmp(r->decision, "deny") && strcmp(r->decision, "would-deny")))
		return 0;
	if (o->json) {
		fwrite(line, 1, len, stdout);
		fputc('\n', stdout);
	} else {
		print_record_line(r);
	}
	return 0;
}

int cmd_denied(int argc, char **argv)
{
	struct opts o;
	int rc = opts_parse(argc, argv, O_FILTER | O_JSON, denied_usage, &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (o.nfiles == 0) {
		fprintf(stderr, "sandbox-audit denied: no FILE given\n%s",
			denied_usage);
		opts_free(&o);
		return 2;
	}
	long e = for_each_record(&o, print_denied, &o);
	opts_free(&o);
	return e < 0 ? 2 : e > 0 ? 1 : 0;
}
