/* Widening analysis: what a repository's policy file lets through that the
 * user's own policy (BASE) does not.
 *
 * BASE and BASE+REPO are built exactly as the proxy builds them, and
 * policy_widen.c finds every class of names and addresses, on every port,
 * where BASE+REPO lets through (allow or would-deny) what BASE denies: an
 * exact answer from the rules' structure, not a sample. Here each such
 * class is attributed, through the engine's own decision, to the rule
 * that decided in BASE+REPO, so a repo allow that beats a BASE deny by
 * specificity shows up with the deny it overrides. */
#include <string.h>
#include <sys/socket.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "policy_internal.h"

struct diff_ctx {
	const struct policy *base, *comb;
	const char *repo_name;
	struct policy_diff *out;
	uint64_t listed[65536 / 64]; /* ports some rule of comb lists */
	size_t budget;               /* attributions left */
	int err;
};

void policy_diff_free(struct policy_diff *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->count; i++) {
		struct policy_widening *w = &d->items[i];
		free(w->pattern);
		free(w->file);
		free(w->example);
		free(w->overrides);
	}
	free(d->items);
	d->items = NULL;
	d->count = 0;
	d->truncated = false;
}

static struct policy_widening *new_item(struct diff_ctx *x)
{
	struct policy_diff *d = x->out;
	struct policy_widening *n =
		realloc(d->items, (d->count + 1) * sizeof(*n));
	if (!n) {
		x->err = -ENOMEM;
		return NULL;
	}
	d->items = n;
	memset(&n[d->count], 0, sizeof(n[0]));
	return &n[d->count++];
}

static bool same_ref(const struct policy_widening *w,
		     const struct policy_rule_ref *r)
{
	return w->kind != WIDEN_REPORT_MODE && w->file && r->file &&
	       !strcmp(w->file, r->file) && w->line == r->line &&
	       w->col == r->col && !strcmp(w->pattern, r->pattern);
}

static void add_port(struct policy_widening *w, uint16_t port)
{
	for (size_t i = 0; i < w->nports; i++)
		if (w->ports[i] == port)
			return;
	if (w->nports < ARRAY_SIZE(w->ports))
		w->ports[w->nports++] = port;
	else
		w->more_ports = true;
}

static char *point_text(const struct widen_point *p, uint16_t port)
{
	char host[300], *s;
	if (p->is_addr) {
		char a[IP_STR_MAX];
		ip_format(&p->addr, a);
		fmt_buf(host, sizeof(host),
			p->addr.family == AF_INET6 ? "[%s]" : "%s", a);
	} else {
		fmt_buf(host, sizeof(host), "%s", p->name);
	}
	if (port == 0)
		return strdup(host);
	return asprintf(&s, "%s:%u", host, port) < 0 ? NULL : s;
}

/* Add "deny 'pattern' (file:line)" to w->overrides once; a few at most. */
static int add_override(struct policy_widening *w,
			const struct policy_rule_ref *r)
{
	char where[600], one[1200];
	policy_rule_str(r, where, sizeof(where));
	fmt_buf(one, sizeof(one), "deny '%s' (%s)", r->pattern, where);
	if (w->overrides && strstr(w->overrides, one))
		return 0;
	if (w->overrides && strlen(w->overrides) > 2000)
		return 0;
	char *n;
	if (asprintf(&n, "%s%s%s", w->overrides ? w->overrides : "",
		     w->overrides ? ", " : "", one) < 0)
		return -ENOMEM;
	free(w->overrides);
	w->overrides = n;
	return 0;
}

/* One widened point on one port: record it under the rule that decided. */
static void record(struct diff_ctx *x, const struct widen_point *p,
		   uint16_t port)
{
	struct policy_verdict vb, vc;
	if (p->is_addr) {
		vb = policy_decide_addr(x->base, &p->addr, port);
		vc = policy_decide_addr(x->comb, &p->addr, port);
	} else {
		vb = policy_decide_name(x->base, p->name, port);
		vc = policy_decide_name(x->comb, p->name, port);
	}
	if (vb.decision != DECISION_DENY || vc.decision == DECISION_DENY)
		return; /* cannot happen: the scan and the engine agree */
	struct policy_diff *d = x->out;
	struct policy_widening *w = NULL;
	if (!vc.rule.file) {
		/* The default went from deny to would-deny: the report mode
		 * item, recorded once up front. */
		return;
	}
	for (size_t i = 0; i < d->count && !w; i++)
		if (same_ref(&d->items[i], &vc.rule))
			w = &d->items[i];
	if (!w) {
		if (!(w = new_item(x)))
			return;
		w->kind = vc.rule.allow ? WIDEN_ALLOW : WIDEN_REPORT_RULE;
		w->pattern = strdup(vc.rule.pattern);
		w->file = strdup(vc.rule.file);
		w->line = vc.rule.line;
		w->col = vc.rule.col;
		w->cidr = p->is_addr;
		w->via_extends = strcmp(vc.rule.file, x->repo_name) != 0;
		w->example = point_text(p, port);
		if (!w->pattern || !w->file || !w->example) {
			x->err = -ENOMEM;
			return;
		}
	}
	if (vb.rule.file && !vb.rule.allow && add_override(w, &vb.rule) < 0)
		x->err = -ENOMEM;
	/* Port 0 (a DNS question) is listed only for a rule that widens
	 * nothing else at this point. */
	if (port || w->nports == 0)
		add_port(w, port);
}

/* Ports tried per widened point to find the rules behind it. Ports no
 * rule lists are all decided alike, so one of them stands for the rest;
 * listed ones are tried up to this many. The whole diff attributes at
 * most ATTRIBUTE_BUDGET (point, port) pairs, each an engine decision:
 * the widening itself is known exactly already, only the list of rules
 * could then be incomplete, and the output says so. */
#define LISTED_PER_POINT 16
#define ATTRIBUTE_BUDGET 20000

static int on_widened(void *arg, const struct widen_point *p,
		      const uint64_t *bits)
{
	struct diff_ctx *x = arg;
	size_t n = 0;
	bool other = false;
	for (unsigned port = 1; port < 65536 && !x->err; port++) {
		if (!bits[port / 64]) {
			port |= 63;
			continue;
		}
		if (!(bits[port / 64] >> (port % 64) & 1))
			continue;
		bool is_listed = x->listed[port / 64] >> (port % 64) & 1;
		if (is_listed ? n++ >= LISTED_PER_POINT : other)
			continue;
		other |= !is_listed;
		if (x->budget == 0)
			break;
		x->budget--;
		record(x, p, (uint16_t)port);
	}
	/* The name lookup (DNS, "any port") may be decided by another rule
	 * of the same level than any one port. */
	if ((bits[0] & 1) && !x->err && x->budget) {
		x->budget--;
		record(x, p, 0);
	}
	if (x->budget == 0)
		x->out->truncated = true;
	return x->err;
}

/* The line of a top-level "mode: report" in the repo text, 0 if none. */
static unsigned report_line(const char *data, size_t len)
{
	unsigned line = 1;
	for (size_t i = 0; i < len; line++) {
		const char *l = data + i;
		const char *nl = memchr(l, '\n', len - i);
		size_t n = nl ? (size_t)(nl - l) : len - i;
		if (n >= 5 && !memcmp(l, "mode:", 5) &&
		    memmem(l, n, "report", 6))
			return line;
		i += n + 1;
	}
	return 0;
}

static struct policy *build(const char *const *files, size_t n,
			    const char *preset_dir, const char *repo_name,
			    const char *data, size_t len,
			    struct policy_errors *errs, int *err)
{
	struct policy_builder *b = policy_builder_new(preset_dir);
	if (!b) {
		*err = -ENOMEM;
		return NULL;
	}
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		int e = policy_builder_add_file(b, files[i], errs);
		if (e < 0 && (r == 0 || r == -EINVAL))
			r = e;
	}
	if (repo_name) {
		int e = policy_builder_add_buffer(b, repo_name, data, len, errs);
		if (e < 0 && (r == 0 || r == -EINVAL))
			r = e;
	}
	struct policy *p = policy_builder_finish(b, errs);
	if (!p)
		*err = r ? r : (errs && errs->count ? -EINVAL : -ENOMEM);
	return p;
}

int policy_diff_compute(const char *const *base_files, size_t nbase,
			const char *preset_dir, const char *repo_name,
			const char *repo_data, size_t repo_len,
			struct policy_diff *out, struct policy_errors *errs)
{
	return policy_diff_compute_ex(base_files, nbase, preset_dir, repo_name,
				      repo_data, repo_len, NULL, NULL, out,
				      errs);
}

/* A repository's file is something a person reviews: past this many
 * rules it is refused rather than diffed. */
static int too_many_rules(const struct policy *repo, const char *repo_name,
			  struct policy_errors *errs)
{
	size_t n = 0, ports = 0;
	for (size_t i = 0; i < repo->nrules; i++) {
		const struct rule *r = &repo->rules[i];
		if (r->file && !strcmp(r->file, repo_name)) {
			n++;
			ports += r->nports;
		}
	}
	if (n <= POLICY_REPO_MAX_RULES && ports <= POLICY_REPO_MAX_PORTS)
		return 0;
	char *m, **v = errs ? realloc(errs->msgs, (errs->count + 1) *
							 sizeof(*v))
			    : NULL;
	if (v)
		errs->msgs = v;
	if (v && asprintf(&m, "%s: %zu rules listing %zu ports; a repository "
			      "policy may have at most %d rules and %d ports "
			      "in all (list what the project needs, or put a "
			      "long list in your own policy)",
			  repo_name, n, ports, POLICY_REPO_MAX_RULES,
			  POLICY_REPO_MAX_PORTS) >= 0)
		errs->msgs[errs->count++] = m;
	return -E2BIG;
}

int policy_diff_compute_ex(const char *const *base_files, size_t nbase,
			   const char *preset_dir, const char *repo_name,
			   const char *repo_data, size_t repo_len,
			   bool (*stop)(void *), void *stop_arg,
			   struct policy_diff *out, struct policy_errors *errs)
{
	memset(out, 0, sizeof(*out));
	int err = 0;
	struct policy *base = build(base_files, nbase, preset_dir, NULL, NULL,
				    0, errs, &err);
	struct policy *repo = build(NULL, 0, preset_dir, repo_name, repo_data,
				    repo_len, errs, &err);
	struct policy *comb = base && repo ? build(base_files, nbase,
						   preset_dir, repo_name,
						   repo_data, repo_len, errs,
						   &err)
					   : NULL;
	if (repo && !err)
		err = too_many_rules(repo, repo_name, errs);
	if (!base || !repo || !comb || err) {
		policy_free(base);
		policy_free(repo);
		policy_free(comb);
		return err ? err : -ENOMEM;
	}
	/* Large (the port map): on the heap. */
	_cleanup_free_ struct diff_ctx *px = calloc(1, sizeof(*px));
	if (!px) {
		policy_free(base);
		policy_free(repo);
		policy_free(comb);
		return -ENOMEM;
	}
	px->base = base;
	px->comb = comb;
	px->repo_name = repo_name;
	px->out = out;
	px->budget = ATTRIBUTE_BUDGET;
	for (size_t i = 0; i < comb->nrules; i++)
		for (size_t j = 0; j < comb->rules[i].nports; j++) {
			unsigned port = comb->rules[i].ports[j];
			px->listed[port / 64] |= 1ull << (port % 64);
		}
	if (policy_mode(base) == POLICY_ENFORCE &&
	    policy_mode(comb) == POLICY_REPORT) {
		struct policy_widening *w = new_item(px);
		if (w) {
			w->kind = WIDEN_REPORT_MODE;
			w->line = report_line(repo_data, repo_len);
			w->via_extends = w->line == 0 &&
					 policy_mode(repo) == POLICY_REPORT &&
					 !memmem(repo_data, repo_len, "report", 6);
			w->file = strdup(repo_name);
			if (!w->file)
				px->err = -ENOMEM;
		}
	}
	if (!px->err)
		px->err = policy_widen_scan(base, comb, repo, on_widened, px,
					  stop, stop_arg);
	policy_free(base);
	policy_free(repo);
	policy_free(comb);
	if (px->err)
		policy_diff_free(out);
	return px->err;
}

static void print_ports(FILE *f, const struct policy_widening *w,
			const char *sep)
{
	for (size_t i = 0; i < w->nports; i++)
		fprintf(f, "%s%u", i ? sep : "", w->ports[i]);
	if (w->more_ports)
		fprintf(f, "%s...", sep);
}

static void json_str(FILE *f, const char *s)
{
	term_put_json_str(f, s);
}

static const char *const kind_names[] = {"allow", "report-rule",
					 "report-mode"};

static void print_json(FILE *f, const struct policy_widening *w)
{
	fprintf(f, "{\"kind\":\"%s\",\"pattern\":", kind_names[w->kind]);
	if (w->pattern)
		json_str(f, w->pattern);
	else
		fputs("null", f);
	fprintf(f, ",\"cidr\":%s,\"ports\":[", w->cidr ? "true" : "false");
	print_ports(f, w, ",");
	fputs("],\"file\":", f);
	json_str(f, w->file);
	fprintf(f, ",\"line\":%u,\"col\":%u,\"via_extends\":%s,\"example\":",
		w->line, w->col, w->via_extends ? "true" : "false");
	if (w->example)
		json_str(f, w->example);
	else
		fputs("null", f);
	fputs(",\"overrides\":", f);
	if (w->overrides)
		json_str(f, w->overrides);
	else
		fputs("null", f);
	fputs("}\n", f);
}

/* A host pattern as the policy compares it (punycode), its Unicode form
 * beside it, and a warning when that mixes scripts; everything escaped. */
static void print_pattern(FILE *f, const char *pattern, bool cidr)
{
	if (cidr) {
		fputs("cidr ", f);
		term_fputs(pattern, f, false);
		return;
	}
	size_t plen = !strncmp(pattern, "**.", 3) ? 3
		      : !strncmp(pattern, "*.", 2) ? 2 : 0;
	char norm[256], uni[1024];
	bool mixed = false;
	const char *rest = pattern + plen;
	if (policy_normalize_name(rest, strlen(rest), norm, sizeof(norm)) < 0) {
		term_fputs(pattern, f, false); /* "*", "**" */
		return;
	}
	fprintf(f, "%.*s", (int)plen, pattern);
	fputs(norm, f);
	int r = policy_name_unicode(norm, uni, sizeof(uni), &mixed);
	if (r == 1) {
		fputs(" (shown as ", f);
		fprintf(f, "%.*s", (int)plen, pattern);
		term_fputs(uni, f, false);
		fputs(mixed ? "; WARNING: mixes scripts, may imitate another "
			      "name)"
			    : ")",
		      f);
	} else if (r < 0) {
		fputs(" (not valid punycode)", f);
	}
}

void policy_diff_print(FILE *f, const struct policy_diff *d, bool json)
{
	for (size_t i = 0; i < d->count; i++) {
		const struct policy_widening *w = &d->items[i];
		if (json) {
			print_json(f, w);
			continue;
		}
		char where[600], num[16] = "";
		if (w->line)
			fmt_buf(num, sizeof(num), ":%u", w->line);
		fmt_buf(where, sizeof(where), "%s%s", w->file, num);
		switch (w->kind) {
		case WIDEN_REPORT_MODE:
			fputs("+ mode: report: what no rule allows goes "
			      "through, logged as would-deny (", f);
			term_fputs(where, f, false);
			fprintf(f, "%s)\n", w->via_extends ? ", via extends" : "");
			continue;
		case WIDEN_ALLOW:
			fputs("+ allow ", f);
			break;
		case WIDEN_REPORT_RULE:
			fputs("+ report ", f);
			break;
		}
		print_pattern(f, w->pattern, w->cidr);
		fputs(w->nports == 1 && w->ports[0] == 0 ? " name lookups (DNS)"
							 : " ports ",
		      f);
		if (!(w->nports == 1 && w->ports[0] == 0))
			print_ports(f, w, ",");
		fputs(" (", f);
		term_fputs(where, f, false);
		fprintf(f, "%s)", w->via_extends ? ", via extends" : "");
		if (w->kind == WIDEN_REPORT_RULE)
			fputs(": would-deny, lets through what was denied", f);
		if (w->overrides) {
			fputs(", overriding ", f);
			term_fputs(w->overrides, f, false);
		}
		fputs("\n    e.g. ", f);
		term_fputs(w->example, f, false);
		fputc('\n', f);
	}
	if (d->truncated && !json)
		fputs("+ ... and more: only the first widenings are listed\n", f);
}
