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
#include <strings.h>
#include <sys/socket.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "policy_internal.h"

struct diff_ctx {
	const struct policy *base, *comb;
	const char *repo_name;
	struct policy_diff *out;
	size_t *item_of; /* owned; comb rule -> 1 + its item, 0: none yet */
	uint32_t *last_base; /* owned; comb rule -> last BASE deny recorded */
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
		free(w->override_keys);
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

/* A new widening of kind at file:line:col (file copied): via_extends when
 * the place is not the repository's own file. NULL when out of memory;
 * x->err is set then, and also when the copy of file failed. */
static struct policy_widening *new_at(struct diff_ctx *x,
				      enum policy_widen_kind kind,
				      const char *file, unsigned line,
				      unsigned col)
{
	struct policy_widening *w = new_item(x);
	if (!w)
		return NULL;
	w->kind = kind;
	w->line = line;
	w->col = col;
	w->via_extends = strcmp(file, x->repo_name) != 0;
	if (!(w->file = strdup(file)))
		x->err = -ENOMEM;
	return w;
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
	char *n, *k;
	if (asprintf(&n, "%s%s%s", w->overrides ? w->overrides : "",
		     w->overrides ? ", " : "", one) < 0)
		return -ENOMEM;
	free(w->overrides);
	w->overrides = n;
	if (asprintf(&k, "%s%s%s", w->override_keys ? w->override_keys : "",
		     w->override_keys ? " " : "", r->pattern) < 0)
		return -ENOMEM;
	free(w->override_keys);
	w->override_keys = k;
	return 0;
}

static struct policy_rule_ref rule_ref(const struct rule *r)
{
	struct policy_rule_ref ref = {.file = r->file, .line = r->line,
				      .col = r->col, .pattern = r->pattern,
				      .allow = r->allow};
	return ref;
}

/* One widened port of a point: recorded under the rule that decided it. */
static void record(struct diff_ctx *x, const struct widen_point *p,
		   const struct widen_entry *e)
{
	if (e->rule_comb == RULE_NONE)
		return; /* the default went to would-deny: the report mode item */
	const struct rule *rc = &x->comb->rules[e->rule_comb];
	struct policy_widening *w = NULL;
	if (x->item_of[e->rule_comb])
		w = &x->out->items[x->item_of[e->rule_comb] - 1];
	if (!w) {
		if (!(w = new_at(x, rc->allow ? WIDEN_ALLOW : WIDEN_REPORT_RULE,
				 rc->file, rc->line, rc->col)))
			return;
		x->item_of[e->rule_comb] = x->out->count;
		w->pattern = strdup(rc->pattern);
		w->cidr = p->is_addr;
		w->example = point_text(p, e->port);
		if (!w->pattern || !w->file || !w->example) {
			x->err = -ENOMEM;
			return;
		}
	}
	/* The protocols it lets through that BASE does not, over its ports;
	 * shown as written when tcp is among them (tcp means any stream). */
	w->protocols |= e->new_protocols;
	if (w->protocols & POLICY_PROTO_TCP)
		w->protocols = POLICY_PROTO_TCP;
	/* Overrides: each BASE deny once per item (the common case, the same
	 * deny on every port, costs one comparison). */
	if (e->rule_base != RULE_NONE && !x->base->rules[e->rule_base].allow &&
	    x->last_base[e->rule_comb] != e->rule_base) {
		x->last_base[e->rule_comb] = e->rule_base;
		struct policy_rule_ref rb =
			rule_ref(&x->base->rules[e->rule_base]);
		if (add_override(w, &rb) < 0)
			x->err = -ENOMEM;
	}
	/* Port 0 (a DNS question) is listed only for a rule that widens
	 * nothing else. */
	if (w->more_ports)
		return;
	if (e->port == 0) {
		if (w->nports == 0)
			add_port(w, 0);
		return;
	}
	if (w->nports == 1 && w->ports[0] == 0)
		w->nports = 0;
	add_port(w, e->port);
	for (size_t i = 0; i < e->nmembers && !w->more_ports; i++)
		add_port(w, e->members[i]);
}

static int on_widened(void *arg, const struct widen_point *p,
		      struct widen_entry *e, size_t n)
{
	struct diff_ctx *x = arg;
	/* The name lookup (port 0) last: a rule is shown with ports when it
	 * has any. */
	for (int dns = 0; dns < 2; dns++)
		for (size_t i = 0; i < n && !x->err; i++)
			if ((e[i].port == 0) == dns)
				record(x, p, &e[i]);
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

static bool secret_has(const struct policy *p, const char *var,
		       const char *host)
{
	size_t n;
	const struct policy_secret *s = policy_secrets(p, &n);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; !strcmp(s[i].var, var) && j < s[i].nhosts;
		     j++)
			if (!strcmp(s[i].hosts[j].name, host))
				return true;
	return false;
}

static int policy_secrets_widened(const struct policy *base,
				  const struct policy *comb, struct diff_ctx *px)
{
	size_t n;
	const struct policy_secret *s = policy_secrets(comb, &n);
	for (size_t i = 0; i < n && !px->err; i++)
		for (size_t j = 0; j < s[i].nhosts && !px->err; j++) {
			const struct policy_secret_host *h = &s[i].hosts[j];
			if (secret_has(base, s[i].var, h->name))
				continue;
			struct policy_widening *w =
				new_at(px, WIDEN_SECRET, h->file, h->line,
				       h->col);
			if (!w)
				break;
			if (asprintf(&w->pattern, "%s@%s", s[i].var,
				     h->name) < 0)
				w->pattern = NULL;
			w->example = strdup(h->name);
			if (!w->file || !w->pattern || !w->example)
				px->err = -ENOMEM;
		}
	/* A header the proxy would now set with the value (a repository's
	 * new one, or another one than BASE's): where the value goes inside
	 * a request is a widening too (a header the server echoes back
	 * would hand the guest the key). */
	for (size_t i = 0; i < n && !px->err; i++) {
		if (!s[i].header)
			continue;
		size_t bn;
		const struct policy_secret *bs = policy_secrets(base, &bn);
		bool same = false;
		for (size_t j = 0; j < bn && !same; j++)
			same = !strcmp(bs[j].var, s[i].var) && bs[j].header &&
			       !strcasecmp(bs[j].header, s[i].header) &&
			       !strcmp(bs[j].format, s[i].format);
		if (same)
			continue;
		struct policy_widening *w =
			new_at(px, WIDEN_SECRET, s[i].header_file,
			       s[i].header_line, s[i].header_col);
		if (!w)
			break;
		if (asprintf(&w->pattern, "%s header %s: %s", s[i].var,
			     s[i].header, s[i].format) < 0)
			w->pattern = NULL;
		/* "header": never a secret host (those have two labels). */
		w->example = strdup("header");
		if (!w->file || !w->pattern || !w->example)
			px->err = -ENOMEM;
	}
	return px->err;
}

/* One `+ inspect` widening for h: an inspected host, or inspect: all
 * (its entry is named "all", never a host: those have two labels). */
static void inspect_widening(struct diff_ctx *px,
			     const struct policy_inspect *h)
{
	struct policy_widening *w =
		new_at(px, WIDEN_INSPECT, h->file, h->line, h->col);
	if (!w)
		return;
	w->pattern = strdup(h->name);
	w->example = strdup(h->name);
	if (!w->file || !w->pattern || !w->example)
		px->err = -ENOMEM;
}

/* A host BASE+REPO inspects that BASE does not: the sandbox CA may then
 * sign it and the proxy decrypts its traffic (docs/secrets.md). And
 * inspect: all, which BASE does not say: the CA may sign every allowed
 * name and the proxy decrypts every TLS connection. */
static int policy_inspect_widened(const struct policy *base,
				  const struct policy *comb, struct diff_ctx *px)
{
	size_t n;
	const struct policy_inspect *h = policy_inspected(comb, &n);
	for (size_t i = 0; i < n && !px->err; i++)
		if (!policy_is_inspected(base, h[i].name))
			inspect_widening(px, &h[i]);
	const struct policy_inspect *at;
	if (!px->err && policy_inspects_all(comb, &at) &&
	    !policy_inspects_all(base, NULL))
		inspect_widening(px, at);
	return px->err;
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
	px->item_of = calloc(comb->nrules + 1, sizeof(*px->item_of));
	px->last_base = malloc((comb->nrules + 1) * sizeof(*px->last_base));
	if (!px->item_of || !px->last_base)
		px->err = -ENOMEM;
	else
		memset(px->last_base, 0xff,
		       (comb->nrules + 1) * sizeof(*px->last_base));
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
	/* Host ports are not name rules: each one the repository adds that
	 * BASE does not open is a widening of its own. */
	for (size_t i = 0; i < comb->n_host_ports && !px->err; i++) {
		const struct host_port *h = &comb->host_ports[i];
		if (policy_host_port_open(base, h->port))
			continue;
		/* A host port without a file is put on the repository's. */
		struct policy_widening *w =
			new_at(px, WIDEN_HOST_PORT, h->file ? h->file : repo_name,
			       h->line, h->col);
		if (!w)
			break;
		w->ports[0] = h->port;
		w->nports = 1;
		if (asprintf(&w->pattern, "host_ports: %u", h->port) < 0)
			w->pattern = NULL;
		if (asprintf(&w->example, POLICY_HOST_INTERNAL ":%u",
			     h->port) < 0)
			w->example = NULL;
		if (!w->file || !w->pattern || !w->example)
			px->err = -ENOMEM;
	}
	/* A secret's value sent somewhere new is a widening too: each host
	 * BASE+REPO lists for a variable that BASE does not. */
	if (!px->err)
		px->err = policy_secrets_widened(base, comb, px);
	if (!px->err)
		px->err = policy_inspect_widened(base, comb, px);
	if (!px->err)
		px->err = policy_widen_scan(base, comb, repo, on_widened, px,
					  stop, stop_arg);
	if (px->err == -ERANGE) {
		/* Too intricate to decide within the limit: never silence,
		 * ask. */
		px->err = 0;
		struct policy_widening *w = new_item(px);
		if (w && !(w->file = strdup(repo_name)))
			px->err = -ENOMEM;
		if (w)
			w->kind = WIDEN_UNDECIDED;
	}
	free(px->item_of);
	free(px->last_base);
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

char *policy_widening_key(const struct policy_widening *w)
{
	static const char *const kinds[] = {"allow", "report-rule",
					    "report-mode", "undecided",
					    "host-port", "secret", "inspect"};
	char *buf = NULL, *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fprintf(f, "%s %s%s ports ", kinds[w->kind], w->cidr ? "cidr " : "",
		w->pattern ? w->pattern : "-");
	print_ports(f, w, ",");
	/* where the rule comes from, without line numbers: the repo file or
	 * the preset it extends */
	fprintf(f, " from %s", w->via_extends && w->file ? w->file : "repo");
	/* An approval of tls and http must not cover tcp added later. */
	if (w->protocols) {
		char protos[32];
		policy_protocols_str(w->protocols, protos, sizeof(protos));
		fprintf(f, " protocols %s", protos);
	}
	if (w->override_keys)
		fprintf(f, " overriding %s", w->override_keys);
	if (fclose(f) == 0 && buf) {
		/* one line, safe to store and to print */
		out = term_escape_dup(buf, len, false);
	}
	free(buf);
	return out;
}

static void json_str(FILE *f, const char *s)
{
	term_put_json_str(f, s);
}

static const char *const kind_names[] = {"allow", "report-rule",
					 "report-mode", "undecided",
					 "host-port", "secret", "inspect"};

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
		case WIDEN_HOST_PORT:
			fprintf(f, "+ host_ports: %u: the guest reaches the "
				   "host's 127.0.0.1:%u as " POLICY_HOST_INTERNAL
				   ":%u (", w->ports[0], w->ports[0],
				w->ports[0]);
			term_fputs(where, f, false);
			fputs(")\n", f);
			continue;
		case WIDEN_SECRET:
			fputs("+ secret ", f);
			term_fputs(w->pattern, f, false);
			if (!strcmp(w->example, "header")) {
				fputs(": the proxy sets this header with the "
				      "variable's value on every request to its "
				      "hosts", f);
			} else {
				fputs(": the value of the host's variable goes "
				      "on requests to ", f);
				term_fputs(w->example, f, false);
			}
			fputs(" (", f);
			term_fputs(where, f, false);
			fprintf(f, "%s)\n", w->via_extends ? ", via extends" : "");
			continue;
		case WIDEN_INSPECT:
			fputs("+ inspect ", f);
			term_fputs(w->pattern, f, false);
			fputs(strcmp(w->pattern, "all") == 0
				      ? ": the sandbox CA may sign every allowed "
					"name and the proxy decrypts and records "
					"every TLS request (pinned-certificate "
					"clients fail) ("
				      : ": the sandbox CA may sign this name and "
					"the proxy decrypts and records every "
					"request to it (",
			      f);
			term_fputs(where, f, false);
			fprintf(f, "%s)\n", w->via_extends ? ", via extends" : "");
			continue;
		case WIDEN_UNDECIDED:
			fputs("+ ? the rules are too intricate to check exactly "
			      "within the time allowed; treat the file as "
			      "widening (", f);
			term_fputs(where, f, false);
			fputs(")\n", f);
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
		/* The default (tls, http) for a new allow goes unsaid; a set
		 * that adds tcp, or adds protocols to what BASE allows, is
		 * shown. */
		if (w->kind == WIDEN_ALLOW && w->protocols &&
		    w->protocols != POLICY_PROTO_DEFAULT) {
			char protos[32];
			policy_protocols_str(w->protocols, protos,
					     sizeof(protos));
			fprintf(f, " protocols %s", protos);
		}
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
}
