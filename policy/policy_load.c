/* The YAML loader, on libyaml's event API: a million-entry blocklist streams
 * through without building a document tree. Every problem is recorded as
 * "file:line:col: message" (libyaml marks are 0-based, ours 1-based) and
 * loading goes on, so that one run reports all of a file's errors; only a
 * YAML syntax error stops the file, since nothing after it can be trusted. */
#include <string.h>
#include <yaml.h>

#include "../common/util.h"
#include "policy_internal.h"

struct loading {
	const char *preset; /* preset name, or NULL for a file given directly */
	struct loading *up;
};

struct ctx {
	struct policy_builder *b;
	struct policy_errors *errs;
	const char *name; /* arena */
	yaml_parser_t parser;
	yaml_event_t ev;
	bool have_ev;
	bool broken; /* syntax error: stop reading */
	int mode;    /* -1 unset, else enum policy_mode */
};

#define LINE(m) ((unsigned)(m).line + 1)
#define COL(m) ((unsigned)(m).column + 1)
#define ERR_AT(c, m, ...) policy_err((c)->b, (c)->errs, (c)->name, LINE(m), COL(m), __VA_ARGS__)

static bool next(struct ctx *c)
{
	if (c->have_ev)
		yaml_event_delete(&c->ev);
	c->have_ev = false;
	if (c->broken)
		return false;
	if (!yaml_parser_parse(&c->parser, &c->ev)) {
		yaml_mark_t m = c->parser.problem_mark;
		if (c->parser.error == YAML_MEMORY_ERROR)
			ERR_AT(c, m, "out of memory");
		else if (c->parser.context)
			ERR_AT(c, m, "YAML syntax: %s %s", c->parser.problem,
			       c->parser.context);
		else
			ERR_AT(c, m, "YAML syntax: %s",
			       c->parser.problem ? c->parser.problem : "error");
		c->broken = true;
		return false;
	}
	c->have_ev = true;
	return true;
}

static yaml_event_type_t type(const struct ctx *c)
{
	return c->have_ev ? c->ev.type : YAML_NO_EVENT;
}

/* Consume the rest of the node whose first event is current. */
static bool skip_node(struct ctx *c)
{
	size_t depth = 0;
	for (;;) {
		switch (type(c)) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			depth++;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_NO_EVENT:
			return false;
		default:
			break;
		}
		if (depth == 0)
			return true;
		if (!next(c))
			return false;
	}
}

static const char *sval(const struct ctx *c)
{
	return (const char *)c->ev.data.scalar.value;
}

static size_t slen(const struct ctx *c)
{
	return c->ev.data.scalar.length;
}

static bool is_null(const struct ctx *c)
{
	if (type(c) != YAML_SCALAR_EVENT ||
	    c->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = sval(c);
	return slen(c) == 0 || !strcmp(v, "~") || !strcmp(v, "null") ||
	       !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static bool is_str(const struct ctx *c, const char *s)
{
	return slen(c) == strlen(s) && memcmp(sval(c), s, slen(c)) == 0;
}

/* Complain that the current node is not what we wanted, and skip it. */
static bool wrong(struct ctx *c, const char *what)
{
	if (type(c) == YAML_ALIAS_EVENT)
		ERR_AT(c, c->ev.start_mark, "YAML aliases are not supported; expected %s", what);
	else
		ERR_AT(c, c->ev.start_mark, "expected %s", what);
	return skip_node(c);
}

static int parse_mode(struct ctx *c)
{
	if (type(c) == YAML_SCALAR_EVENT && is_str(c, "enforce"))
		return POLICY_ENFORCE;
	if (type(c) == YAML_SCALAR_EVENT && is_str(c, "report"))
		return POLICY_REPORT;
	if (type(c) == YAML_SCALAR_EVENT)
		ERR_AT(c, c->ev.start_mark, "mode must be 'enforce' or 'report', not '%.*s'",
		       (int)(slen(c) > 100 ? 100 : slen(c)), sval(c));
	else
		wrong(c, "mode: enforce or report");
	return -1;
}

/* inspect: true or false. Returns 1, 0, or -1 after recording an
 * error. */
static int parse_inspect(struct ctx *c)
{
	if (type(c) == YAML_SCALAR_EVENT && is_str(c, "true"))
		return 1;
	if (type(c) == YAML_SCALAR_EVENT && is_str(c, "false"))
		return 0;
	if (type(c) == YAML_SCALAR_EVENT)
		ERR_AT(c, c->ev.start_mark, "inspect must be true or false, not '%.*s'",
		       (int)(slen(c) > 100 ? 100 : slen(c)), sval(c));
	else
		wrong(c, "inspect: true or false");
	return -1;
}

/* inspect: all at the top level (policy_inspect.c): the only value;
 * inspect: true on one host goes on its allow rule. */
static void parse_inspect_all(struct ctx *c)
{
	yaml_mark_t m = c->ev.start_mark;
	if (type(c) == YAML_SCALAR_EVENT && is_str(c, "all")) {
		if (policy_builder_inspect_all(c->b, c->name, LINE(m),
					       COL(m)) < 0)
			ERR_AT(c, m, "out of memory");
		return;
	}
	if (type(c) == YAML_SCALAR_EVENT)
		ERR_AT(c, m, "inspect: at the top level takes only 'all', not '%.*s' (inspect: true on one host goes on its allow rule)",
		       (int)(slen(c) > 100 ? 100 : slen(c)), sval(c));
	else
		wrong(c, "inspect: all");
}

#define MAX_PORTS 256

/* ports: [80, 443] or ports: any. Returns the count (0 for any), or -1
 * after recording an error. */
static int parse_ports(struct ctx *c, uint16_t *ports, bool *any)
{
	if (type(c) == YAML_SCALAR_EVENT && is_str(c, "any")) {
		*any = true;
		return 0;
	}
	if (type(c) != YAML_SEQUENCE_START_EVENT) {
		wrong(c, "a list of ports, e.g. ports: [443], or ports: any");
		return -1;
	}
	yaml_mark_t start = c->ev.start_mark;
	int n = 0;
	bool bad = false;
	while (next(c) && type(c) != YAML_SEQUENCE_END_EVENT) {
		if (type(c) != YAML_SCALAR_EVENT) {
			wrong(c, "a port number 1-65535");
			bad = true;
			continue;
		}
		uint16_t p;
		if (policy_parse_port(sval(c), slen(c), &p) < 0) {
			ERR_AT(c, c->ev.start_mark, "port must be a number 1-65535, not '%.*s'",
			       (int)(slen(c) > 100 ? 100 : slen(c)), sval(c));
			bad = true;
		} else if (n >= MAX_PORTS) {
			if (n == MAX_PORTS)
				ERR_AT(c, c->ev.start_mark, "more than %d ports in one rule", MAX_PORTS);
			bad = true;
			n++;
		} else {
			ports[n++] = p;
		}
	}
	if (c->broken)
		return -1;
	if (n == 0 && !bad) {
		ERR_AT(c, start, "empty ports list would match nothing; leave ports: out for the default [80, 443]");
		return -1;
	}
	return bad ? -1 : n;
}

/* protocols: [tls, http, tcp] (any non-empty subset). Returns the
 * POLICY_PROTO_* bits, or -1 after recording an error. */
static int parse_protocols(struct ctx *c)
{
	if (type(c) != YAML_SEQUENCE_START_EVENT) {
		wrong(c, "a list of protocols, e.g. protocols: [tcp] (tls, http or tcp)");
		return -1;
	}
	yaml_mark_t start = c->ev.start_mark;
	int mask = 0;
	bool bad = false;
	while (next(c) && type(c) != YAML_SEQUENCE_END_EVENT) {
		if (type(c) != YAML_SCALAR_EVENT) {
			wrong(c, "a protocol name (tls, http or tcp)");
			bad = true;
			continue;
		}
		uint8_t bit = policy_protocol_bit(sval(c), slen(c));
		if (!bit) {
			ERR_AT(c, c->ev.start_mark, "unknown protocol '%.*s' (expected tls, http or tcp)",
			       (int)(slen(c) > 100 ? 100 : slen(c)), sval(c));
			bad = true;
		} else if (mask & bit) {
			ERR_AT(c, c->ev.start_mark, "protocol '%s' listed twice", sval(c));
			bad = true;
		}
		mask |= bit;
	}
	if (c->broken)
		return -1;
	if (mask == 0 && !bad) {
		ERR_AT(c, start, "empty protocols list would match nothing; leave protocols: out for the default [tls, http]");
		return -1;
	}
	return bad ? -1 : mask;
}

/* One rule written as a map: host: or cidr:, optional ports:, protocols:
 * and mode:. */
static void parse_rule_map(struct ctx *c, bool allow)
{
	yaml_mark_t at = c->ev.start_mark;
	char *target = NULL; /* owned copy of host:/cidr: */
	size_t tlen = 0;
	bool is_cidr = false, bad = false, seen_ports = false, any = false;
	yaml_mark_t tmark = at;
	int mode = -1, nports = 0, protocols = 0, inspect = 0;
	yaml_mark_t pmark = at, imark = at;
	uint16_t ports[MAX_PORTS];
	unsigned seen = 0;
	while (next(c) && type(c) != YAML_MAPPING_END_EVENT) {
		if (type(c) != YAML_SCALAR_EVENT) {
			wrong(c, "a key (host, cidr, ports, protocols, mode or inspect)");
			if (next(c))
				skip_node(c);
			bad = true;
			continue;
		}
		yaml_mark_t km = c->ev.start_mark;
		unsigned bit;
		if (is_str(c, "host"))
			bit = 1;
		else if (is_str(c, "cidr"))
			bit = 2;
		else if (is_str(c, "ports"))
			bit = 4;
		else if (is_str(c, "mode"))
			bit = 8;
		else if (is_str(c, "protocols"))
			bit = 16;
		else if (is_str(c, "inspect"))
			bit = 32;
		else {
			ERR_AT(c, km, "unknown key '%.*s' in a rule (expected host, cidr, ports, protocols, mode or inspect)",
			       (int)(slen(c) > 100 ? 100 : slen(c)), sval(c));
			bit = 0;
		}
		if (bit & seen)
			ERR_AT(c, km, "duplicate key '%s'", sval(c));
		if (!next(c))
			break;
		if (!bit || (bit & seen)) {
			skip_node(c);
			bad = true;
			continue;
		}
		seen |= bit;
		if (bit <= 2) {
			if (type(c) != YAML_SCALAR_EVENT || is_null(c)) {
				wrong(c, bit == 1 ? "a host pattern after host:" : "an address or prefix after cidr:");
				bad = true;
				continue;
			}
			if (bit == 1 && (seen & 2)) {
				; /* both: reported below */
			}
			free(target);
			target = malloc(slen(c) + 1);
			if (!target) {
				bad = true;
				continue;
			}
			memcpy(target, sval(c), slen(c) + 1);
			tlen = slen(c);
			tmark = c->ev.start_mark;
			is_cidr = bit == 2;
		} else if (bit == 4) {
			seen_ports = true;
			nports = parse_ports(c, ports, &any);
			bad |= nports < 0;
		} else if (bit == 16) {
			pmark = km;
			protocols = parse_protocols(c);
			bad |= protocols < 0;
		} else if (bit == 32) {
			imark = km;
			inspect = parse_inspect(c);
			bad |= inspect < 0;
		} else {
			mode = parse_mode(c);
			bad |= mode < 0;
		}
	}
	if (!c->broken) {
		if ((seen & 3) == 3) {
			ERR_AT(c, at, "a rule has host: or cidr:, not both");
			bad = true;
		} else if (!(seen & 3)) {
			ERR_AT(c, at, "a rule needs host: or cidr:");
			bad = true;
		}
	}
	if (!c->broken && (seen & 16) && !allow) {
		/* A deny rule refuses every protocol; a protocol list on it
		 * would read as if it refused only those. */
		ERR_AT(c, pmark, "protocols: only applies to allow rules (a deny rule refuses every protocol)");
		bad = true;
	}
	if (!c->broken && inspect > 0 && (!allow || is_cidr)) {
		/* Inspection is interception by name with the sandbox CA:
		 * nothing to intercept on a deny rule or an address. */
		ERR_AT(c, imark, "inspect: true only applies to an allow rule with host: (one exact name)");
		bad = true;
	}
	if (!bad && target && !c->broken && inspect > 0 &&
	    policy_builder_add_inspect(c->b, target, tlen, c->name,
				       LINE(imark), COL(imark), c->errs) < 0)
		bad = true;
	if (!bad && target && !c->broken) {
		const uint16_t *p = any ? policy_any_port : seen_ports ? ports : NULL;
		(void)tmark;
		if (is_cidr)
			builder_add_cidr(c->b, c->errs, c->name, LINE(at), COL(at),
					 target, tlen, allow, mode, p, (size_t)nports,
					 (uint8_t)protocols);
		else
			builder_add_host(c->b, c->errs, c->name, LINE(at), COL(at),
					 target, tlen, allow, mode, p, (size_t)nports,
					 (uint8_t)protocols);
	}
	free(target);
}

static void parse_rules(struct ctx *c, bool allow)
{
	if (is_null(c))
		return;
	if (type(c) != YAML_SEQUENCE_START_EVENT) {
		wrong(c, allow ? "a list after allow:" : "a list after deny:");
		return;
	}
	while (next(c) && type(c) != YAML_SEQUENCE_END_EVENT) {
		if (type(c) == YAML_MAPPING_START_EVENT) {
			parse_rule_map(c, allow);
		} else if (type(c) == YAML_SCALAR_EVENT && !is_null(c)) {
			yaml_mark_t m = c->ev.start_mark;
			builder_add_host(c->b, c->errs, c->name, LINE(m), COL(m),
					 sval(c), slen(c), allow, -1, NULL, 0, 0);
		} else {
			wrong(c, "a host pattern or a map with host: or cidr:");
		}
	}
}

static bool preset_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 64 || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

static void load_preset(struct ctx *c, struct loading *stack, yaml_mark_t m,
			const char *name)
{
	struct policy_builder *b = c->b;
	for (struct loading *l = stack; l; l = l->up) {
		if (l->preset && !strcmp(l->preset, name)) {
			char chain[512];
			size_t len = 0;
			fmt_append(chain, sizeof(chain), &len, "%s", name);
			for (struct loading *k = stack; k; k = k->up) {
				fmt_append(chain, sizeof(chain), &len, " <- %s",
					   k->preset ? k->preset : c->name);
				if (k == l)
					break;
			}
			ERR_AT(c, m, "extends cycle: %s", chain);
			return;
		}
	}
	for (size_t i = 0; i < b->npresets; i++)
		if (!strcmp(b->presets_loaded[i], name))
			return; /* already merged once; rules are a set */
	if (!b->preset_dir) {
		ERR_AT(c, m, "extends: '%s': no preset directory configured", name);
		return;
	}
	char path[4096];
	if (fmt_buf(path, sizeof(path), "%s/%s.yaml", b->preset_dir, name) < 0) {
		ERR_AT(c, m, "extends: '%s': preset path too long", name);
		return;
	}
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = read_file(path, 64u << 20, &data, &len);
	if (r < 0) {
		ERR_AT(c, m, "extends: unknown preset '%s' (%s: %s)", name, path,
		       strerror(-r));
		return;
	}
	char **l = realloc(b->presets_loaded, (b->npresets + 1) * sizeof(*l));
	char *dup = strdup(name);
	if (!l || !dup) {
		free(dup);
		if (l)
			b->presets_loaded = l;
		ERR_AT(c, m, "out of memory");
		return;
	}
	b->presets_loaded = l;
	b->presets_loaded[b->npresets++] = dup;
	policy_load_yaml(b, path, data, len, true, dup, c->errs);
}

static void parse_extends(struct ctx *c, struct loading *stack)
{
	if (is_null(c))
		return;
	bool single = type(c) == YAML_SCALAR_EVENT;
	if (!single && type(c) != YAML_SEQUENCE_START_EVENT) {
		wrong(c, "a list of preset names after extends:");
		return;
	}
	while (single || (next(c) && type(c) != YAML_SEQUENCE_END_EVENT)) {
		if (type(c) != YAML_SCALAR_EVENT) {
			wrong(c, "a preset name");
			continue;
		}
		yaml_mark_t m = c->ev.start_mark;
		if (!preset_name_ok(sval(c), slen(c))) {
			ERR_AT(c, m, "bad preset name '%.*s' (lower-case letters, digits, '-' and '_')",
			       (int)(slen(c) > 100 ? 100 : slen(c)), sval(c));
		} else {
			char name[65];
			memcpy(name, sval(c), slen(c) + 1);
			load_preset(c, stack, m, name);
		}
		if (single)
			break;
	}
}

/* host_ports: [5432, 8080]: host loopback ports the guest may reach as
 * POLICY_HOST_INTERNAL (policy_hostports.c). */
static void parse_host_ports(struct ctx *c)
{
	uint16_t ports[MAX_PORTS];
	bool any = false;
	yaml_mark_t m = c->ev.start_mark;
	if (type(c) == YAML_SCALAR_EVENT && is_str(c, "any")) {
		ERR_AT(c, m, "host_ports: any is not allowed; list the ports");
		return;
	}
	int n = parse_ports(c, ports, &any);
	for (int i = 0; i < n; i++)
		policy_builder_add_host_port(c->b, ports[i], c->name,
					     (unsigned)m.line + 1,
					     (unsigned)m.column + 1, c->errs);
}

/* One entry of secrets: {env: VAR, hosts: [a.example, ...], header: H,
 * format: "F {value}"} (header: and format: optional; format: needs
 * header:). seen: the variables this file named already, *nseen of
 * them. */
static void parse_secret(struct ctx *c, char seen[][128], size_t *nseen)
{
	yaml_mark_t at = c->ev.start_mark;
	if (type(c) != YAML_MAPPING_START_EVENT) {
		wrong(c, "a secret: a mapping with env: and hosts:");
		return;
	}
	char var[128] = "";
	size_t varlen = 0;
	yaml_mark_t vm = at;
	struct {
		char name[256];
		size_t len;
		yaml_mark_t m;
	} hosts[POLICY_SECRET_HOSTS_MAX + 1];
	size_t nh = 0;
	bool have_env = false, have_hosts = false;
	char header[80] = "", format[300] = "";
	bool have_header = false, have_format = false;
	yaml_mark_t hm = at, fm = at;
	while (next(c) && type(c) != YAML_MAPPING_END_EVENT) {
		if (type(c) != YAML_SCALAR_EVENT) {
			wrong(c, "a key (env, hosts, header, format)");
			if (next(c))
				skip_node(c);
			continue;
		}
		yaml_mark_t km = c->ev.start_mark;
		bool is_env = is_str(c, "env"), is_hosts = is_str(c, "hosts");
		bool is_header = is_str(c, "header"),
		     is_format = is_str(c, "format");
		if (!is_env && !is_hosts && !is_header && !is_format) {
			ERR_AT(c, km, "unknown key '%.*s' in a secret (expected env, hosts, header or format)",
			       (int)(slen(c) > 100 ? 100 : slen(c)), sval(c));
		} else if ((is_env && have_env) || (is_hosts && have_hosts) ||
			   (is_header && have_header) ||
			   (is_format && have_format)) {
			ERR_AT(c, km, "duplicate key '%s'", sval(c));
			is_env = is_hosts = is_header = is_format = false;
		}
		if (!next(c))
			return;
		if (is_header || is_format) {
			char *dst = is_header ? header : format;
			size_t max = is_header ? sizeof(header) : sizeof(format);
			*(is_header ? &have_header : &have_format) = true;
			*(is_header ? &hm : &fm) = c->ev.start_mark;
			if (type(c) == YAML_SCALAR_EVENT && slen(c) >= max) {
				ERR_AT(c, c->ev.start_mark, "%s",
				       is_header ? "header: longer than 64 characters"
						 : "format: longer than 256 characters");
				*(is_header ? &have_header : &have_format) = false;
				continue;
			}
			if (type(c) != YAML_SCALAR_EVENT ||
			    memchr(sval(c), '\0', slen(c))) {
				wrong(c, is_header ? "header: a header name"
						   : "format: a string with {value}");
				*(is_header ? &have_header : &have_format) = false;
				continue;
			}
			memcpy(dst, sval(c), slen(c));
			dst[slen(c)] = '\0';
		} else if (is_env) {
			have_env = true;
			vm = c->ev.start_mark;
			if (type(c) != YAML_SCALAR_EVENT || slen(c) == 0 ||
			    slen(c) >= sizeof(var)) {
				wrong(c, "env: a variable name");
				continue;
			}
			varlen = slen(c);
			memcpy(var, sval(c), varlen);
			var[varlen] = '\0';
		} else if (is_hosts) {
			have_hosts = true;
			if (type(c) != YAML_SEQUENCE_START_EVENT) {
				wrong(c, "hosts: a list of host names");
				continue;
			}
			while (next(c) && type(c) != YAML_SEQUENCE_END_EVENT) {
				if (type(c) != YAML_SCALAR_EVENT ||
				    slen(c) >= sizeof(hosts[0].name)) {
					wrong(c, "a host name");
					continue;
				}
				if (nh == POLICY_SECRET_HOSTS_MAX) {
					ERR_AT(c, c->ev.start_mark, "more than %d hosts in a secret",
					       POLICY_SECRET_HOSTS_MAX);
					nh++;
				}
				if (nh > POLICY_SECRET_HOSTS_MAX)
					continue;
				memcpy(hosts[nh].name, sval(c), slen(c));
				hosts[nh].len = slen(c);
				hosts[nh++].m = c->ev.start_mark;
			}
		} else {
			skip_node(c);
		}
	}
	if (!have_env || !have_hosts || (have_hosts && nh == 0)) {
		ERR_AT(c, at, "a secret needs env: and a non-empty hosts: list");
		return;
	}
	bool dup = false;
	for (size_t i = 0; varlen && i < *nseen && !dup; i++)
		dup = !strcmp(seen[i], var);
	if (dup)
		ERR_AT(c, vm, "duplicate secret '%s' in this file (list its hosts once)", var);
	else if (varlen && *nseen < POLICY_SECRETS_MAX)
		memcpy(seen[(*nseen)++], var, varlen + 1);
	int added = -EINVAL;
	for (size_t i = 0; !dup && varlen && i < nh && i < POLICY_SECRET_HOSTS_MAX; i++)
		added = policy_builder_add_secret(c->b, var, varlen,
						  hosts[i].name, hosts[i].len,
						  c->name, LINE(hosts[i].m),
						  COL(hosts[i].m), c->errs);
	if (have_format && !have_header)
		ERR_AT(c, fm, "secret %s: format: needs header: (the header the proxy sets)",
		       var);
	else if (have_header && added == 0)
		policy_builder_secret_header(c->b, var, header,
					     have_format ? format : NULL,
					     c->name, LINE(hm), COL(hm),
					     c->errs);
}

/* secrets: [{env: VAR, hosts: [...]}, ...] (policy_secrets.c). */
static void parse_secrets(struct ctx *c)
{
	if (is_null(c))
		return;
	if (type(c) != YAML_SEQUENCE_START_EVENT) {
		wrong(c, "a list of secrets (env: and hosts:)");
		return;
	}
	char seen[POLICY_SECRETS_MAX][128];
	size_t nseen = 0;
	while (next(c) && type(c) != YAML_SEQUENCE_END_EVENT)
		parse_secret(c, seen, &nseen);
}

static void parse_top(struct ctx *c, struct loading *stack)
{
	yaml_mark_t at = c->ev.start_mark;
	unsigned seen = 0;
	static const char *const keys[] = {"version", "mode", "extends", "allow", "deny", "host_ports", "secrets", "inspect"};
	while (next(c) && type(c) != YAML_MAPPING_END_EVENT) {
		if (type(c) != YAML_SCALAR_EVENT) {
			wrong(c, "a key (version, mode, extends, allow, deny, host_ports, secrets or inspect)");
			if (next(c))
				skip_node(c);
			continue;
		}
		yaml_mark_t km = c->ev.start_mark;
		int k = -1;
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
			if (is_str(c, keys[i]))
				k = (int)i;
		if (k < 0)
			ERR_AT(c, km, "unknown key '%.*s' (expected version, mode, extends, allow, deny, host_ports, secrets or inspect)",
			       (int)(slen(c) > 100 ? 100 : slen(c)), sval(c));
		else if (seen & (1u << k))
			ERR_AT(c, km, "duplicate key '%s'", keys[k]);
		bool skip = k < 0 || (seen & (1u << k));
		if (k >= 0)
			seen |= 1u << k;
		if (!next(c))
			break;
		if (skip) {
			skip_node(c);
			continue;
		}
		switch (k) {
		case 0:
			if (type(c) != YAML_SCALAR_EVENT || !is_str(c, "1"))
				ERR_AT(c, c->ev.start_mark, "unsupported version (this program reads version: 1)");
			skip_node(c);
			break;
		case 1:
			c->mode = parse_mode(c);
			break;
		case 2:
			parse_extends(c, stack);
			break;
		case 5:
			parse_host_ports(c);
			break;
		case 6:
			parse_secrets(c);
			break;
		case 7:
			parse_inspect_all(c);
			break;
		default:
			parse_rules(c, k == 3);
			break;
		}
	}
	if (!c->broken && !(seen & 1))
		ERR_AT(c, at, "missing 'version: 1'");
}

static void parse_stream(struct ctx *c, struct loading *stack)
{
	if (!next(c) || type(c) != YAML_STREAM_START_EVENT || !next(c))
		return;
	if (type(c) == YAML_STREAM_END_EVENT) {
		policy_err(c->b, c->errs, c->name, 1, 1,
			   "empty policy; expected a mapping starting with 'version: 1'");
		return;
	}
	if (!next(c)) /* past DOCUMENT_START */
		return;
	if (type(c) == YAML_MAPPING_START_EVENT)
		parse_top(c, stack);
	else if (!wrong(c, "a mapping with version:, mode:, extends:, allow: and deny:"))
		return;
	if (!next(c) || !next(c)) /* DOCUMENT_END, then STREAM_END */
		return;
	if (type(c) == YAML_DOCUMENT_START_EVENT)
		ERR_AT(c, c->ev.start_mark, "only one YAML document per policy file");
}

int policy_load_yaml(struct policy_builder *b, const char *name,
		     const char *data, size_t len, bool is_preset,
		     const char *preset_name, struct policy_errors *errs)
{
	struct ctx c = {.b = b, .errs = errs, .mode = -1};
	c.name = arena_strndup(&b->arena, name, strlen(name));
	if (!c.name)
		return -ENOMEM;
	if (!yaml_parser_initialize(&c.parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)data, len);
	struct loading self = {.preset = preset_name, .up = b->stack};
	b->stack = &self;
	size_t first = b->nrules;
	b->files++;
	parse_stream(&c, &self);
	b->stack = self.up;
	if (c.have_ev)
		yaml_event_delete(&c.ev);
	yaml_parser_delete(&c.parser);
	/* The file's mode applies to its own rules that did not set one. */
	int mode = c.mode < 0 ? POLICY_ENFORCE : c.mode;
	for (size_t i = first; i < b->nrules; i++)
		if (b->rules[i].report < 0 && b->rules[i].file == c.name)
			b->rules[i].report = (int8_t)mode;
	if (mode == POLICY_REPORT)
		b->mode = POLICY_REPORT;
	if (!is_preset)
		b->primary = c.name;
	return 0;
}
