/* The builder: rules from every source accumulate here, then finish() turns
 * them into an immutable policy with its lookup tables. Any recorded error
 * makes finish() fail, so a typo can never leave a wider policy behind. */
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "policy_internal.h"

const uint16_t policy_default_ports[2] = {80, 443};
const uint16_t policy_any_port[1] = {0};

struct policy_builder *policy_builder_new(const char *preset_dir)
{
	struct policy_builder *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	if (preset_dir && !(b->preset_dir = strdup(preset_dir))) {
		free(b);
		return NULL;
	}
	return b;
}

void policy_builder_free(struct policy_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->npresets; i++)
		free(b->presets_loaded[i]);
	free(b->presets_loaded);
	free(b->rules);
	free(b->preset_dir);
	psl_free(b->psl);
	arena_free(&b->arena);
	free(b);
}

void policy_errors_free(struct policy_errors *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->count; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->count = 0;
}

static void push_msg(struct policy_errors *errs, char *msg)
{
	char **m = realloc(errs->msgs, (errs->count + 1) * sizeof(*m));
	if (!m) {
		free(msg);
		return;
	}
	errs->msgs = m;
	errs->msgs[errs->count++] = msg;
}

void policy_err(struct policy_builder *b, struct policy_errors *errs,
		const char *name, unsigned line, unsigned col, const char *fmt,
		...)
{
	b->nerrors++;
	if (!errs || b->nerrors > POLICY_MAX_ERRORS + 1)
		return;
	if (b->nerrors == POLICY_MAX_ERRORS + 1) {
		char *m = strdup("too many errors; not reporting any more");
		if (m)
			push_msg(errs, m);
		return;
	}
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char *full;
	int r = line ? asprintf(&full, "%s:%u:%u: %s", name, line, col, msg)
		     : asprintf(&full, "%s: %s", name, msg);
	if (r < 0)
		return;
	/* Messages quote the file's own bytes, and every program prints
	 * them to a terminal: escape them once, here. */
	char *safe = term_escape_dup(full, strlen(full), false);
	free(full);
	if (safe)
		push_msg(errs, safe);
}

struct rule *builder_push_rule(struct policy_builder *b)
{
	if (b->nrules == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		if (cap >= RULE_NONE)
			return NULL;
		struct rule *r = realloc(b->rules, cap * sizeof(*r));
		if (!r)
			return NULL;
		b->rules = r;
		b->cap = cap;
	}
	struct rule *r = &b->rules[b->nrules++];
	memset(r, 0, sizeof(*r));
	r->next = RULE_NONE;
	return r;
}

static int fill_common(struct policy_builder *b, struct rule *r,
		       const char *file, unsigned line, unsigned col,
		       const char *text, size_t len, bool allow, int report,
		       const uint16_t *ports, size_t nports, uint8_t protocols)
{
	r->file = file;
	r->protocols = allow ? (protocols ? protocols : POLICY_PROTO_DEFAULT)
			     : 0;
	r->line = line;
	r->col = col;
	r->allow = allow;
	r->report = (int8_t)report;
	if (!ports) {
		r->ports = policy_default_ports;
		r->nports = 2;
	} else if (ports == policy_any_port) {
		r->ports = policy_any_port;
		r->nports = 0;
		r->any_port = 1;
	} else {
		uint16_t *p = arena_alloc(&b->arena, nports * sizeof(*p) + 1);
		if (!p)
			return -ENOMEM;
		memcpy(p, ports, nports * sizeof(*p));
		r->ports = p;
		r->nports = (uint16_t)nports;
	}
	(void)text;
	(void)len;
	return 0;
}

static int add_host_rule(struct policy_builder *b, struct policy_errors *errs,
			 const char *file, unsigned line, unsigned col,
			 const char *text, size_t len, bool allow, int report,
			 const uint16_t *ports, size_t nports, uint8_t protocols)
{
	char norm[256];
	enum rule_kind kind;
	const char *why = policy_parse_host(text, len, allow, &b->psl, &kind,
					    norm, sizeof(norm));
	if (why) {
		policy_err(b, errs, file, line, col, "%s pattern '%.*s': %s",
			   allow ? "allow" : "deny", (int)(len > 300 ? 300 : len),
			   text, why);
		return -EINVAL;
	}
	static const char *const prefix[] = {"", "*.", "**."};
	size_t plen = strlen(prefix[kind]), nlen = strlen(norm);
	char *canon = arena_alloc(&b->arena, plen + nlen + 1);
	if (!canon)
		return -ENOMEM;
	memcpy(canon, prefix[kind], plen);
	memcpy(canon + plen, norm, nlen + 1);
	struct rule *r = builder_push_rule(b);
	if (!r)
		return -ENOMEM;
	r->kind = (uint8_t)kind;
	r->key = canon + plen;
	r->keylen = (uint16_t)nlen;
	/* Keep the spelling the user wrote for messages, sharing the string
	 * in the common case where it is already canonical. */
	r->pattern = (len == plen + nlen && memcmp(text, canon, len) == 0)
			     ? canon
			     : arena_strndup(&b->arena, text, len);
	if (!r->pattern)
		return -ENOMEM;
	return fill_common(b, r, file, line, col, text, len, allow, report,
			   ports, nports, protocols);
}

static int add_cidr_rule(struct policy_builder *b, struct policy_errors *errs,
			 const char *file, unsigned line, unsigned col,
			 const char *text, size_t len, bool allow, int report,
			 const uint16_t *ports, size_t nports, uint8_t protocols)
{
	struct ip_addr a;
	unsigned plen;
	uint8_t key[CIDR_KEY_LEN];
	const char *why = policy_parse_cidr(text, len, allow, &a, &plen, key);
	if (why) {
		policy_err(b, errs, file, line, col, "%s cidr '%.*s': %s",
			   allow ? "allow" : "deny", (int)(len > 300 ? 300 : len),
			   text, why);
		return -EINVAL;
	}
	struct rule *r = builder_push_rule(b);
	if (!r)
		return -ENOMEM;
	char *k = arena_alloc(&b->arena, CIDR_KEY_LEN);
	if (!k)
		return -ENOMEM;
	memcpy(k, key, CIDR_KEY_LEN);
	r->kind = RULE_CIDR;
	r->key = k;
	r->keylen = CIDR_KEY_LEN;
	r->prefix_len = (uint8_t)plen;
	if (!(r->pattern = arena_strndup(&b->arena, text, len)))
		return -ENOMEM;
	return fill_common(b, r, file, line, col, text, len, allow, report,
			   ports, nports, protocols);
}

/* A rule that could not be stored (out of memory) must fail the whole
 * policy: a dropped deny rule would silently widen it. Counting it as an
 * error here keeps every caller safe, whether it checks the return or not
 * (policy_err counts the error even when it cannot allocate the message). */
static int count_oom(struct policy_builder *b, struct policy_errors *errs,
		     const char *file, unsigned line, unsigned col, int r)
{
	if (r == -ENOMEM)
		policy_err(b, errs, file, line, col,
			   "out of memory while adding this rule");
	return r;
}

int builder_add_host(struct policy_builder *b, struct policy_errors *errs,
		     const char *file, unsigned line, unsigned col,
		     const char *text, size_t len, bool allow, int report,
		     const uint16_t *ports, size_t nports, uint8_t protocols)
{
	return count_oom(b, errs, file, line, col,
			 add_host_rule(b, errs, file, line, col, text, len,
				       allow, report, ports, nports,
				       protocols));
}

int builder_add_cidr(struct policy_builder *b, struct policy_errors *errs,
		     const char *file, unsigned line, unsigned col,
		     const char *text, size_t len, bool allow, int report,
		     const uint16_t *ports, size_t nports, uint8_t protocols)
{
	return count_oom(b, errs, file, line, col,
			 add_cidr_rule(b, errs, file, line, col, text, len,
				       allow, report, ports, nports,
				       protocols));
}

int policy_parse_port(const char *s, size_t len, uint16_t *out)
{
	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return -EINVAL;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static const char *const proto_names[] = {"tls", "http", "tcp"};

uint8_t policy_protocol_bit(const char *s, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(proto_names); i++)
		if (strlen(proto_names[i]) == len &&
		    memcmp(proto_names[i], s, len) == 0)
			return (uint8_t)(1u << i);
	return 0;
}

int policy_protocols_parse(const char *s, uint8_t *mask)
{
	uint8_t m = 0;
	size_t len = strlen(s);
	for (size_t i = 0; i <= len;) {
		const char *c = memchr(s + i, ',', len - i);
		size_t end = c ? (size_t)(c - s) : len;
		uint8_t bit = policy_protocol_bit(s + i, end - i);
		if (!bit)
			return -EINVAL;
		m |= bit;
		i = end + 1;
	}
	*mask = m;
	return 0;
}

char *policy_protocols_str(uint8_t mask, char *out, size_t outsz)
{
	size_t at = 0;
	if (!out || outsz == 0)
		return out;
	out[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(proto_names); i++)
		if (mask & (1u << i))
			fmt_append(out, outsz, &at, "%s%s", at ? ", " : "",
				   proto_names[i]);
	return out;
}

/* "80,443" -> ports; returns the count or -EINVAL. */
static int parse_port_list(const char *s, size_t len, uint16_t *ports,
			   size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i <= len;) {
		const char *c = memchr(s + i, ',', len - i);
		size_t end = c ? (size_t)(c - s) : len;
		if (n >= max || policy_parse_port(s + i, end - i, &ports[n]) < 0)
			return -EINVAL;
		n++;
		i = end + 1;
	}
	return (int)n;
}

int policy_builder_add_rule(struct policy_builder *b, bool allow,
			    const char *spec, const char *origin,
			    struct policy_errors *errs)
{
	if (!b || !spec)
		return -EINVAL;
	size_t before = b->nerrors;
	const char *file = arena_strndup(&b->arena, origin ? origin : (allow ? "--allow" : "--deny"),
					 strlen(origin ? origin : (allow ? "--allow" : "--deny")));
	if (!file)
		return -ENOMEM;
	/* A trailing ":PROTO[,PROTO...]" of known protocol names (e.g.
	 * "git.example.com:22:tcp") is the rule's protocols; the rest is
	 * parsed as before, from a copy without it. */
	char specbuf[512];
	uint8_t protocols = 0;
	const char *last = strrchr(spec, ':');
	if (last && last[1] && policy_protocols_parse(last + 1, &protocols) == 0) {
		size_t keep = (size_t)(last - spec);
		if (keep >= sizeof(specbuf)) {
			policy_err(b, errs, file, 0, 0, "'%.100s...': too long", spec);
			return -EINVAL;
		}
		memcpy(specbuf, spec, keep);
		specbuf[keep] = '\0';
		spec = specbuf;
	}
	size_t len = strlen(spec);
	const char *host = spec, *portstr = NULL;
	size_t hlen = len;
	bool cidr = memchr(spec, '/', len) != NULL;
	if (spec[0] == '[') {
		/* [v6]:port or [v6]: an address, hence a host-sized cidr rule. */
		const char *close = memchr(spec, ']', len);
		if (!close) {
			policy_err(b, errs, file, 0, 0, "'%s': missing ']'", spec);
			return -EINVAL;
		}
		host = spec + 1;
		hlen = (size_t)(close - host);
		cidr = true;
		if (close[1] == ':')
			portstr = close + 2;
		else if (close[1]) {
			policy_err(b, errs, file, 0, 0, "'%s': expected ':PORT' after ']'", spec);
			return -EINVAL;
		}
	} else if (cidr) {
		const char *slash = memchr(spec, '/', len);
		const char *colon = strchr(slash, ':');
		if (colon) {
			hlen = (size_t)(colon - spec);
			portstr = colon + 1;
		}
	} else {
		const char *colon = strchr(spec, ':');
		if (colon && colon == strrchr(spec, ':')) {
			hlen = (size_t)(colon - spec);
			portstr = colon + 1;
		} else if (colon) {
			policy_err(b, errs, file, 0, 0,
				   "'%s': an IPv6 address needs a prefix length or brackets (e.g. %s/128 or [%s]:443)",
				   spec, spec, spec);
			return -EINVAL;
		}
	}
	uint16_t ports[64];
	int nports = 0;
	bool any = portstr && !strcmp(portstr, "any");
	if (portstr && !any) {
		nports = parse_port_list(portstr, strlen(portstr), ports, ARRAY_SIZE(ports));
		if (nports < 0) {
			policy_err(b, errs, file, 0, 0,
				   "'%s': bad port list '%s' (numbers 1-65535 separated by commas, or 'any')",
				   spec, portstr);
			return -EINVAL;
		}
	}
	const uint16_t *pp = any ? policy_any_port : portstr ? ports : NULL;
	if (protocols && !allow) {
		policy_err(b, errs, file, 0, 0,
			   "'%s': protocols only apply to allow rules", spec);
		return -EINVAL;
	}
	int r = cidr ? builder_add_cidr(b, errs, file, 0, 0, host, hlen, allow, 0,
					pp, (size_t)nports, protocols)
		     : builder_add_host(b, errs, file, 0, 0, host, hlen, allow, 0,
					pp, (size_t)nports, protocols);
	if (r == -ENOMEM)
		return r;
	return b->nerrors > before ? -EINVAL : 0;
}

int policy_builder_add_buffer(struct policy_builder *b, const char *name,
			      const char *data, size_t len,
			      struct policy_errors *errs)
{
	if (!b || !name || (!data && len))
		return -EINVAL;
	size_t before = b->nerrors;
	int r = policy_load_yaml(b, name, data ? data : "", len, false, NULL, errs);
	if (r == -ENOMEM)
		return r;
	return b->nerrors > before ? -EINVAL : 0;
}

#define POLICY_FILE_MAX (256u << 20)

int policy_builder_add_file(struct policy_builder *b, const char *path,
			    struct policy_errors *errs)
{
	if (!b || !path)
		return -EINVAL;
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = read_file(path, POLICY_FILE_MAX, &data, &len);
	if (r < 0) {
		policy_err(b, errs, path, 0, 0, "cannot read: %s", strerror(-r));
		return r;
	}
	return policy_builder_add_buffer(b, path, data, len, errs);
}

struct policy *policy_builder_finish(struct policy_builder *b,
				     struct policy_errors *errs)
{
	if (!b)
		return NULL;
	static const int families[] = {AF_INET, AF_INET6};
	for (size_t f = 0; f < ARRAY_SIZE(families) && b->nerrors == 0; f++) {
		unsigned pct = 0;
		const struct rule *w = NULL;
		int r = policy_cidr_overbroad(b->rules, b->nrules, families[f],
					      &w, &pct);
		if (r < 0)
			policy_err(b, errs, "policy", 0, 0, "out of memory");
		else if (r > 0)
			policy_err(b, errs, w->file, w->line, w->col,
				   "allow cidr '%s': over-broad: the allow "
				   "cidr: rules together cover %u%% of the "
				   "%s address space (more than a sixteenth is "
				   "refused); list the networks needed",
				   w->pattern, pct,
				   families[f] == AF_INET ? "IPv4" : "IPv6");
	}
	if (b->nerrors == 0)
		policy_inspect_all_finish(b, errs);
	if (b->nerrors > 0) {
		policy_builder_free(b);
		return NULL;
	}
	struct policy *p = calloc(1, sizeof(*p));
	if (!p) {
		policy_builder_free(b);
		return NULL;
	}
	p->arena = b->arena;
	b->arena.head = NULL;
	p->rules = steal_ptr(&b->rules);
	p->nrules = b->nrules;
	p->mode = b->mode;
	p->primary = b->primary;
	p->stats.files = b->files;
	memcpy(p->host_ports, b->host_ports, sizeof(p->host_ports));
	p->n_host_ports = b->n_host_ports;
	memcpy(p->secrets, b->secrets, sizeof(p->secrets));
	p->n_secrets = b->n_secrets;
	memcpy(p->inspect, b->inspect, sizeof(p->inspect));
	p->n_inspect = b->n_inspect;
	p->inspect_all = b->inspect_all;
	p->ca_names = b->ca_names;
	p->n_ca_names = b->n_ca_names;
	for (size_t i = 0; i < p->nrules; i++) {
		struct rule *r = &p->rules[i];
		if (r->report < 0)
			r->report = 0;
		if (r->allow && (r->protocols & POLICY_PROTO_TCP))
			p->stats.tcp_rules++;
		if (r->kind == RULE_CIDR) {
			p->stats.cidr_rules++;
			if (r->key[0] == AF_INET)
				p->cidr_lens4[r->prefix_len] = 1;
			else
				p->cidr_lens6[r->prefix_len] = 1;
			continue;
		}
		if (r->allow)
			p->stats.allow_rules++;
		else
			p->stats.deny_rules++;
		if (r->kind == RULE_STAR2) {
			size_t n = r->keylen ? 1 : 0;
			for (size_t j = 0; j < r->keylen; j++)
				n += r->key[j] == '.';
			p->star2_labels[n < 128 ? n : 127] = 1;
		}
	}
	policy_builder_free(b);
	for (int k = 0; k < RULE_KINDS; k++) {
		if (rule_table_build(&p->tables[k], p->rules, p->nrules,
				     (enum rule_kind)k) < 0) {
			policy_free(p);
			return NULL;
		}
	}
	return p;
}

struct policy *policy_load_files(const char *const *paths, size_t n,
				 const char *preset_dir,
				 struct policy_errors *errs)
{
	struct policy_builder *b = policy_builder_new(preset_dir);
	if (!b)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int r = policy_builder_add_file(b, paths[i], errs);
		if (r == -ENOMEM) {
			policy_builder_free(b);
			return NULL;
		}
	}
	return policy_builder_finish(b, errs);
}
