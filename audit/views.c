/* sandbox-audit summary and denied. */
#include <string.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "review.h"

static const char summary_usage[] =
	"usage: sandbox-audit summary [FILTERS] [--json] FILE...\n"
	"  Per sandbox and host: decisions (each DNS query and connection\n"
	"  counts once; close records add only bytes), bytes up and down,\n"
	"  first and last seen, and the Docker containers (by name, as the\n"
	"  guest says) that made those connections.\n"
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

/* Remember one more container name for a row, once. Names are read back
 * from the log as untrusted text: they are only compared and escaped on
 * output. */
static void add_container(struct host_stat *h, const char *name)
{
	size_t n = strlen(name), have = strlen(h->containers);
	for (const char *p = h->containers; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == n && memcmp(p, name, n) == 0)
			return;
		p += l + (e ? 1 : 0);
	}
	if (!n || strchr(name, ',') || have + !!have + n >= sizeof(h->containers)) {
		h->containers_more = n > 0;
		return;
	}
	if (have)
		h->containers[have++] = ',';
	memcpy(h->containers + have, name, n + 1);
}

static int add(void *ctx, const struct rec *r, const char *line, size_t len,
	       const char *path, unsigned long lineno)
{
	(void)line, (void)len, (void)path, (void)lineno;
	struct table *t = ctx;
	if (!r->host || !r->event)
		return 0;
	struct host_stat *h = lookup(t, r->sandbox ? r->sandbox : "", r->host);
	if (!h)
		return -ENOMEM;
	bool close = strcmp(r->event, "close") == 0;
	int d = decision_index(r->decision);
	if (!rec_is_followup(r) && d >= 0)
		h->n[d] += rec_weight(r);
	if (close) {
		h->up += r->bytes_up > 0 ? (uint64_t)r->bytes_up : 0;
		h->down += r->bytes_down > 0 ? (uint64_t)r->bytes_down : 0;
	}
	if (r->container)
		add_container(h, r->container);
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
	struct table t = {0};
	long e = for_each_record(o, add, &t);
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
	for (size_t i = 0; i < n; i++)
		free(s[i].key);
	free(s);
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
	if (summary_collect(&o, &s, &n, &bad) < 0) {
		opts_free(&o);
		return 2;
	}
	if (!o.json)
		printf("%-16s %-40s %8s %8s %10s %12s %12s %-24s %-24s %s\n",
		       "SANDBOX", "HOST", "ALLOW", "DENY", "WOULD-DENY",
		       "BYTES-UP", "BYTES-DOWN", "FIRST", "LAST", "CONTAINERS");
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
			putchar('"');
			if (h->containers[0]) {
				printf(",\"containers\":");
				put_json_str(stdout, h->containers);
				if (h->containers_more)
					printf(",\"containers_more\":true");
			}
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
			char ctr[sizeof(h->containers) * 4];
			text_str(h->containers, ctr, sizeof(ctr));
			printf(" %s%s\n", h->containers[0] ? ctr : "-",
			       h->containers_more ? ",..." : "");
		}
	}
	free_stats(s, n);
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
