/* sandbox-audit suggest: the smallest allow list that would have let a
 * report-mode run do what it did.
 *
 * Safety rule for wildcards: names are grouped as "*.S" only when at least
 * three distinct names sit exactly one label below S, S has at least two
 * labels, and the policy engine itself accepts "*.S" as an allow rule (it
 * refuses public suffixes such as github.io or co.uk). "**." is never
 * suggested: it allows unbounded depth, which a log cannot justify. */
#include <string.h>

#include "../common/util.h"
#include "../policy/policy.h"
#include "review.h"

static const char usage[] =
	"usage: sandbox-audit suggest [FILTERS] [-o FILE] FILE...\n"
	"  From a log taken with 'mode: report', write a policy (YAML that\n"
	"  sandbox-policy check accepts) allowing every host and port that\n"
	"  was connected to (decision allow or would-deny), with counts in\n"
	"  comments. Three or more sibling names under a suffix that is not a\n"
	"  public suffix become one '*.suffix' rule; nothing broader.\n"
	"  FILTERS: --sandbox, --host, --decision, --since, --until.\n";

#define MAX_PORTS 16

struct name {
	char *name; /* owned, normalised */
	uint64_t conns, dns;
	uint16_t ports[MAX_PORTS];
	size_t nports;
	bool grouped;
};

struct names {
	struct name *v; /* owned */
	size_t n, cap;
	size_t *slots; /* owned; index + 1, 0 empty */
	size_t nslots;
	unsigned long skipped;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct name *find(struct names *ns, const char *name)
{
	if ((ns->n + 1) * 2 > ns->nslots) {
		size_t nn = ns->nslots ? ns->nslots * 2 : 256;
		size_t *s = calloc(nn, sizeof(*s));
		if (!s)
			return NULL;
		for (size_t i = 0; i < ns->n; i++) {
			size_t j = hash(ns->v[i].name) & (nn - 1);
			while (s[j])
				j = (j + 1) & (nn - 1);
			s[j] = i + 1;
		}
		free(ns->slots);
		ns->slots = s, ns->nslots = nn;
	}
	size_t j = hash(name) & (ns->nslots - 1);
	for (; ns->slots[j]; j = (j + 1) & (ns->nslots - 1))
		if (strcmp(ns->v[ns->slots[j] - 1].name, name) == 0)
			return &ns->v[ns->slots[j] - 1];
	if (ns->n == ns->cap) {
		size_t nc = ns->cap ? ns->cap * 2 : 64;
		struct name *v = realloc(ns->v, nc * sizeof(*v));
		if (!v)
			return NULL;
		ns->v = v, ns->cap = nc;
	}
	struct name *e = &ns->v[ns->n];
	memset(e, 0, sizeof(*e));
	if (!(e->name = strdup(name)))
		return NULL;
	ns->slots[j] = ++ns->n;
	return e;
}

static void add_port(uint16_t *ports, size_t *n, uint16_t p)
{
	for (size_t i = 0; i < *n; i++)
		if (ports[i] == p)
			return;
	if (*n < MAX_PORTS)
		ports[(*n)++] = p;
}

static int collect(void *ctx, const struct rec *r, const char *line,
		   size_t len, const char *path, unsigned long lineno)
{
	(void)line, (void)len, (void)path, (void)lineno;
	struct names *ns = ctx;
	if (!r->event || !r->host || !r->decision ||
	    (strcmp(r->decision, "allow") && strcmp(r->decision, "would-deny")))
		return 0;
	bool conn = strcmp(r->event, "connect") == 0;
	if (!conn && strcmp(r->event, "dns") != 0)
		return 0;
	char name[256];
	if (policy_normalize_name(r->host, strlen(r->host), name,
				  sizeof(name)) < 0) {
		ns->skipped++;
		return 0;
	}
	struct name *e = find(ns, name);
	if (!e)
		return -ENOMEM;
	if (conn) {
		e->conns += rec_weight(r);
		if (r->port > 0 && r->port < 65536)
			add_port(e->ports, &e->nports, (uint16_t)r->port);
	} else {
		e->dns += rec_weight(r);
	}
	return 0;
}

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static int by_parent(const void *a, const void *b)
{
	const struct name *x = a, *y = b;
	const char *px = strchr(x->name, '.'), *py = strchr(y->name, '.');
	int c = strcmp(px ? px : "", py ? py : "");
	return c ? c : strcmp(x->name, y->name);
}

/* Would the policy engine accept "*.suffix" as an allow rule? */
static bool wildcard_ok(const char *suffix)
{
	char spec[300];
	if (fmt_buf(spec, sizeof(spec), "*.%s", suffix) < 0)
		return false;
	struct policy_builder *b = policy_builder_new(NULL);
	struct policy_errors errs = {0};
	if (!b)
		return false;
	policy_builder_add_rule(b, true, spec, "suggest", &errs);
	struct policy *p = policy_builder_finish(b, &errs);
	bool ok = p != NULL;
	policy_free(p);
	policy_errors_free(&errs);
	return ok;
}

static void put_ports(FILE *f, const uint16_t *ports, size_t n)
{
	uint16_t sorted[MAX_PORTS];
	memcpy(sorted, ports, n * sizeof(*ports));
	qsort(sorted, n, sizeof(*sorted), cmp_u16);
	fputs("    ports: [", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%u", i ? ", " : "", sorted[i]);
	fputs("]\n", f);
}

static void write_policy(FILE *f, struct names *ns, const struct opts *o)
{
	if (ns->n)
		qsort(ns->v, ns->n, sizeof(*ns->v), by_parent);
	fprintf(f, "# Suggested by sandbox-audit suggest from");
	for (size_t i = 0; i < o->nfiles; i++)
		fprintf(f, " %s", o->files[i]);
	fprintf(f, "\n# Review before use: it allows what the run used, no "
		   "more.\n# '*.' only for 3+ sibling names under a "
		   "non-public suffix.\nversion: 1\n");
	size_t rules = 0, dns_only = 0;
	for (size_t i = 0; i < ns->n; i++)
		dns_only += ns->v[i].conns == 0;
	fprintf(f, "allow:\n");
	for (size_t i = 0; i < ns->n;) {
		const char *parent = strchr(ns->v[i].name, '.');
		size_t j = i;
		size_t members = 0;
		while (j < ns->n && ns->v[j].conns &&
		       strchr(ns->v[j].name, '.') && parent &&
		       strcmp(strchr(ns->v[j].name, '.'), parent) == 0)
			j++;
		for (size_t k = i; k < j; k++)
			members++;
		if (members >= 3 && strchr(parent + 1, '.') &&
		    wildcard_ok(parent + 1)) {
			uint16_t ports[MAX_PORTS];
			size_t np = 0;
			uint64_t conns = 0;
			for (size_t k = i; k < j; k++) {
				for (size_t q = 0; q < ns->v[k].nports; q++)
					add_port(ports, &np, ns->v[k].ports[q]);
				conns += ns->v[k].conns;
				ns->v[k].grouped = true;
			}
			fprintf(f, "  # %zu names, %llu connections:", members,
				(unsigned long long)conns);
			for (size_t k = i; k < j && k < i + 8; k++)
				fprintf(f, " %s", ns->v[k].name);
			fprintf(f, "%s\n", j - i > 8 ? " ..." : "");
			fprintf(f, "  - host: \"*%s\"\n", parent);
			if (np)
				put_ports(f, ports, np);
			rules++;
			i = j;
			continue;
		}
		i = j > i ? j : i + 1;
	}
	for (size_t i = 0; i < ns->n; i++) {
		struct name *e = &ns->v[i];
		if (e->grouped || !e->conns)
			continue;
		fprintf(f, "  # %llu connections, %llu DNS queries\n",
			(unsigned long long)e->conns,
			(unsigned long long)e->dns);
		fprintf(f, "  - host: \"%s\"\n", e->name);
		if (e->nports)
			put_ports(f, e->ports, e->nports);
		rules++;
	}
	if (!rules)
		fprintf(f, "  []\n");
	if (dns_only) {
		fprintf(f, "# Looked up but never connected to (not "
			   "allowed above):\n");
		for (size_t i = 0; i < ns->n; i++)
			if (!ns->v[i].conns)
				fprintf(f, "#   %s (%llu DNS queries)\n",
					ns->v[i].name,
					(unsigned long long)ns->v[i].dns);
	}
	if (ns->skipped)
		fprintf(f, "# %lu records with names that are not valid host "
			   "names were skipped\n",
			ns->skipped);
}

int cmd_suggest(int argc, char **argv)
{
	struct opts o;
	int rc = opts_parse(argc, argv, O_FILTER | O_OUT, usage, &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (o.nfiles == 0) {
		fprintf(stderr, "sandbox-audit suggest: no FILE given\n%s",
			usage);
		opts_free(&o);
		return 2;
	}
	struct names ns = {0};
	long e = for_each_record(&o, collect, &ns);
	if (e >= 0) {
		FILE *f = o.out ? fopen(o.out, "w") : stdout;
		if (!f) {
			fprintf(stderr, "sandbox-audit: %s: %s\n", o.out,
				strerror(errno));
			e = -errno;
		} else {
			write_policy(f, &ns, &o);
			if (f != stdout && fclose(f) != 0)
				e = -EIO;
		}
	}
	for (size_t i = 0; i < ns.n; i++)
		free(ns.v[i].name);
	free(ns.v);
	free(ns.slots);
	opts_free(&o);
	return e < 0 ? 2 : e > 0 ? 1 : 0;
}
