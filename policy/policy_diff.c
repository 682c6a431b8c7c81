/* Widening analysis: what a repository's policy file lets through that the
 * user's own policy (BASE) does not.
 *
 * The question is answered by the policy engine itself rather than by
 * reasoning about rules: BASE and BASE+REPO are built exactly as the proxy
 * builds them, and their decisions are compared on probes derived from
 * every rule REPO brings (its own and those of the presets it extends). A
 * probe widens when BASE denies it and BASE+REPO lets it through (allow or
 * would-deny). The rule that decided in BASE+REPO is the one reported, so
 * a repo allow that beats a BASE deny by specificity shows up with the deny
 * it overrides. Probes are representative, not exhaustive: docs/policy.md
 * says what that can miss. */
#include <string.h>
#include <sys/socket.h>

#include "../common/util.h"
#include "policy_internal.h"

/* A label no real rule is expected to name: it stands for "any label"
 * under a wildcard. */
#define PROBE_LABEL "zz-sandbox-probe"

struct probe {
	bool is_addr;
	struct ip_addr addr;
	char name[256];
};

struct diff_ctx {
	const struct policy *base, *comb, *repo;
	const char *repo_name;
	struct policy_diff *out;
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

static char *probe_text(const struct probe *p, uint16_t port)
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

/* One probe on one port: record a widening under the rule that decided. */
static void run_probe(struct diff_ctx *x, const struct probe *p,
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
		return;
	struct policy_diff *d = x->out;
	struct policy_widening *w = NULL;
	if (!vc.rule.file) {
		/* The default decision went from deny to would-deny: that is
		 * the report mode item, recorded once up front. */
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
		w->protocols = vc.rule.protocols;
		w->example = probe_text(p, port);
		if (vb.rule.file && !vb.rule.allow) {
			char where[600];
			policy_rule_str(&vb.rule, where, sizeof(where));
			if (asprintf(&w->overrides, "deny '%s' (%s)",
				     vb.rule.pattern, where) < 0)
				w->overrides = NULL;
		}
		if (!w->pattern || !w->file || !w->example) {
			x->err = -ENOMEM;
			return;
		}
	}
	add_port(w, port);
}

/* A port enters a decision only through membership in some rule's list,
 * so for an any-port rule every port some rule of BASE+REPO lists, plus
 * one port none lists (standing for all the others), is an exact probe
 * set. */
static void probe_any_port(struct diff_ctx *x, const struct probe *p)
{
	_cleanup_free_ uint8_t *seen = calloc(65536 / 8, 1);
	if (!seen) {
		x->err = -ENOMEM;
		return;
	}
	const struct policy *c = x->comb;
	for (size_t i = 0; i < c->nrules; i++)
		for (size_t j = 0; j < c->rules[i].nports; j++) {
			uint16_t port = c->rules[i].ports[j];
			seen[port / 8] |= (uint8_t)(1u << (port % 8));
		}
	bool other = false;
	for (unsigned port = 1; port < 65536 && !x->err; port++) {
		bool listed = seen[port / 8] & (1u << (port % 8));
		if (!listed && other)
			continue;
		other |= !listed;
		run_probe(x, p, (uint16_t)port);
	}
}

static void probe_ports(struct diff_ctx *x, const struct probe *p,
			const struct rule *r)
{
	if (r->any_port) {
		probe_any_port(x, p);
		return;
	}
	for (size_t i = 0; i < r->nports && !x->err; i++)
		run_probe(x, p, r->ports[i]);
}

/* Does name lie under the wildcard rule r (kind STAR1/STAR2, suffix key)? */
static bool under(const char *name, const struct rule *r)
{
	size_t n = strlen(name), k = r->keylen;
	const char *head_end;
	if (k == 0) {
		head_end = name + n;
	} else {
		if (n < k + 2 || memcmp(name + n - k, r->key, k) ||
		    name[n - k - 1] != '.')
			return false;
		head_end = name + n - k - 1;
	}
	if (head_end == name)
		return false;
	if (r->kind == RULE_STAR1)
		return memchr(name, '.', (size_t)(head_end - name)) == NULL;
	return true;
}

static bool name_probe(struct probe *p, const char *prefix, const char *key,
		       size_t keylen)
{
	memset(p, 0, sizeof(*p));
	int r = keylen ? fmt_buf(p->name, sizeof(p->name), "%s.%.*s", prefix,
				 (int)keylen, key)
		       : fmt_buf(p->name, sizeof(p->name), "%s", prefix);
	return r == 0 && strlen(p->name) <= 253;
}

static void probe_wildcard(struct diff_ctx *x, const struct rule *r)
{
	struct probe p;
	if (name_probe(&p, PROBE_LABEL, r->key, r->keylen))
		probe_ports(x, &p, r);
	if (r->kind == RULE_STAR2 &&
	    name_probe(&p, PROBE_LABEL "." PROBE_LABEL, r->key, r->keylen))
		probe_ports(x, &p, r);
	/* Names BASE singles out under this wildcard are decided apart from
	 * the synthetic label (a BASE deny of x.s, a BASE **.a.s): probe each
	 * so a repo wildcard that overrides one of them is seen. */
	for (size_t i = 0; i < x->base->nrules && !x->err; i++) {
		const struct rule *b = &x->base->rules[i];
		if (b->kind == RULE_CIDR)
			continue;
		bool ok = b->kind == RULE_EXACT
				  ? name_probe(&p, b->key, "", 0)
				  : name_probe(&p, PROBE_LABEL, b->key, b->keylen);
		if (ok && under(p.name, r))
			probe_ports(x, &p, r);
	}
}

static void probe_cidr(struct diff_ctx *x, const struct rule *r)
{
	struct probe p;
	memset(&p, 0, sizeof(p));
	p.is_addr = true;
	p.addr.family = r->key[0];
	memcpy(p.addr.b, r->key + 2, 16);
	probe_ports(x, &p, r);
	/* The last address of the range (the broadcast address for IPv4). */
	unsigned bits = p.addr.family == AF_INET ? 32 : 128;
	if (r->prefix_len >= bits)
		return;
	for (unsigned i = r->prefix_len; i < bits; i++)
		p.addr.b[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	probe_ports(x, &p, r);
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
	if (!base || !repo || !comb) {
		policy_free(base);
		policy_free(repo);
		policy_free(comb);
		return err ? err : -ENOMEM;
	}
	struct diff_ctx x = {.base = base, .comb = comb, .repo = repo,
			     .repo_name = repo_name, .out = out};
	if (policy_mode(base) == POLICY_ENFORCE &&
	    policy_mode(comb) == POLICY_REPORT) {
		struct policy_widening *w = new_item(&x);
		if (w) {
			w->kind = WIDEN_REPORT_MODE;
			w->line = report_line(repo_data, repo_len);
			w->via_extends = w->line == 0;
			w->file = strdup(repo_name);
			if (!w->file)
				x.err = -ENOMEM;
		}
	}
	for (size_t i = 0; i < repo->nrules && !x.err; i++) {
		const struct rule *r = &repo->rules[i];
		/* An enforcing deny can only narrow. */
		if (!r->allow && r->report <= 0)
			continue;
		struct probe p;
		switch (r->kind) {
		case RULE_EXACT:
			if (name_probe(&p, r->key, "", 0))
				probe_ports(&x, &p, r);
			break;
		case RULE_STAR1:
		case RULE_STAR2:
			probe_wildcard(&x, r);
			break;
		case RULE_CIDR:
			probe_cidr(&x, r);
			break;
		}
	}
	policy_free(base);
	policy_free(repo);
	policy_free(comb);
	if (x.err) {
		policy_diff_free(out);
		return x.err;
	}
	return 0;
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
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
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
	fputs(",\"protocols\":[", f);
	for (unsigned b = 1, n = 0; b <= POLICY_PROTO_TCP; b <<= 1) {
		char name[8];
		if (!(w->protocols & b))
			continue;
		policy_protocols_str((uint8_t)b, name, sizeof(name));
		fprintf(f, "%s\"%s\"", n++ ? "," : "", name);
	}
	fputs("]}\n", f);
}

void policy_diff_print(FILE *f, const struct policy_diff *d, bool json)
{
	for (size_t i = 0; i < d->count; i++) {
		const struct policy_widening *w = &d->items[i];
		if (json) {
			print_json(f, w);
			continue;
		}
		char where[600];
		if (w->line)
			fmt_buf(where, sizeof(where), "%s:%u", w->file, w->line);
		else
			fmt_buf(where, sizeof(where), "%s", w->file);
		switch (w->kind) {
		case WIDEN_REPORT_MODE:
			fprintf(f, "+ mode: report: what no rule allows goes "
				   "through, logged as would-deny (%s%s)\n",
				where, w->via_extends ? ", via extends" : "");
			continue;
		case WIDEN_ALLOW:
			fprintf(f, "+ allow %s%s ports ", w->cidr ? "cidr " : "",
				w->pattern);
			break;
		case WIDEN_REPORT_RULE:
			fprintf(f, "+ report %s%s ports ", w->cidr ? "cidr " : "",
				w->pattern);
			break;
		}
		print_ports(f, w, ",");
		if (w->kind == WIDEN_ALLOW && w->protocols &&
		    w->protocols != POLICY_PROTO_DEFAULT) {
			char protos[32];
			policy_protocols_str(w->protocols, protos,
					     sizeof(protos));
			fprintf(f, " protocols %s", protos);
		}
		fprintf(f, " (%s%s)", where, w->via_extends ? ", via extends" : "");
		if (w->kind == WIDEN_REPORT_RULE)
			fputs(": would-deny, lets through what was denied", f);
		if (w->overrides)
			fprintf(f, ", overriding %s", w->overrides);
		fprintf(f, "\n    e.g. %s\n", w->example);
	}
}
