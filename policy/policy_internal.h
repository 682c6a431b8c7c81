/* Internals shared by the policy's source files; not for other modules. */
#ifndef POLICY_POLICY_INTERNAL_H
#define POLICY_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

/* Bump allocator: a million-rule blocklist must not cost a million mallocs. */
struct arena_chunk;
struct arena {
	struct arena_chunk *head; /* owned */
};
void *arena_alloc(struct arena *a, size_t n);
char *arena_strndup(struct arena *a, const char *s, size_t n);
void arena_free(struct arena *a);

enum rule_kind {
	RULE_EXACT = 0, /* example.com */
	RULE_STAR1 = 1, /* *.example.com: exactly one more label */
	RULE_STAR2 = 2, /* **.example.com: one or more labels */
	RULE_CIDR = 3,
	RULE_KINDS = 4,
};

#define RULE_NONE UINT32_MAX

struct rule {
	const char *file;    /* interned in the arena */
	const char *pattern; /* as written (arena) */
	const char *key;     /* lookup key: name, wildcard suffix, or cidr bytes */
	const uint16_t *ports; /* arena, or the static default {80, 443} */
	uint32_t next;       /* next rule with the same kind and key */
	uint32_t line, col;
	uint16_t keylen, nports;
	uint8_t kind;        /* enum rule_kind */
	uint8_t allow;
	int8_t report;       /* 1 report, 0 enforce, -1 inherit the file's mode */
	uint8_t prefix_len;  /* RULE_CIDR */
	uint8_t any_port;    /* "ports: any": matches every port, nports 0 */
	uint8_t protocols;   /* POLICY_PROTO_* bits ("protocols:"), allow rules */
};

/* Open-addressing table from (key bytes) to the first rule of its chain. */
struct rule_table {
	uint64_t *slots; /* owned; (hash tag << 32) | rule index, all ones when empty */
	uint32_t mask;
	uint32_t count;
};
uint64_t policy_hash(const void *key, size_t len);
int rule_table_build(struct rule_table *t, struct rule *rules, size_t nrules,
		     enum rule_kind kind);
uint32_t rule_table_find(const struct rule_table *t, const struct rule *rules,
			 const void *key, size_t len);
void rule_table_free(struct rule_table *t);

/* host_ports: (policy_hostports.c): the host loopback ports the guest may
 * reach as POLICY_HOST_INTERNAL. The file strings live in the arena. */
struct host_port {
	uint16_t port;
	const char *file;
	unsigned line, col;
};

struct policy {
	struct arena arena;   /* every string and port list */
	struct rule *rules;   /* owned */
	size_t nrules;
	struct rule_table tables[RULE_KINDS];
	uint8_t cidr_lens4[33], cidr_lens6[129]; /* 1 when a prefix length is used */
	/* 1 when some "**." key has that many labels: a deep name then only
	 * looks up the suffixes that can exist (names have <= 127 labels). */
	uint8_t star2_labels[128];
	enum policy_mode mode;
	const char *primary; /* arena, may be NULL */
	struct policy_stats stats;
	struct host_port host_ports[POLICY_HOST_PORTS_MAX];
	size_t n_host_ports;
	struct policy_secret secrets[POLICY_SECRETS_MAX];
	size_t n_secrets;
	struct policy_inspect inspect[POLICY_INSPECT_MAX];
	size_t n_inspect;
	struct policy_inspect inspect_all; /* .name "all" when set */
	const char **ca_names; /* arena: inspect: all's CA names */
	size_t n_ca_names;
};

/* policy_hostports.c: the decision for POLICY_HOST_INTERNAL (true, and
 * *v set, when name is that name). */
bool policy_host_internal_decide(const struct policy *p, const char *name,
				 uint16_t port, struct policy_verdict *v);

/* Public-suffix knowledge for refusing over-broad allow patterns. */
struct psl;
struct psl *psl_load(const char *path); /* NULL path: system file or built-in */
bool psl_is_public_suffix(const struct psl *p, const char *name);
/* Does some public suffix lie strictly below name? */
bool psl_has_suffix_below(const struct psl *p, const char *name);
void psl_free(struct psl *p);

/* Parse one host pattern (already without "host:"). On success fills kind and
 * the normalised suffix/name in out (outsz >= 256). Returns NULL or a static
 * message explaining the refusal; allow enables the over-broad checks. */
const char *policy_parse_host(const char *s, size_t len, bool allow,
			      struct psl **psl, enum rule_kind *kind,
			      char *out, size_t outsz);

/* "A name the sandbox CA may sign" (policy_ca_name.c): NULL when name
 * (normalised) may be a permitted subtree of its name constraints, else
 * why (written to why, worded with role: "a secret host", "an inspected
 * host", ...). policy_ca_host_check parses host first (one exact name,
 * normalised into out, outsz >= 256). */
struct policy_builder;
const char *policy_ca_name_why(struct policy_builder *b, const char *name,
			       const char *role, char *why, size_t whysz);
const char *policy_ca_host_check(struct policy_builder *b, const char *host,
				 size_t len, const char *role, char *out,
				 size_t outsz, char *why, size_t whysz);

/* Parse "a.b.c.d/len" or "v6/len" (a bare address means /32 or /128); builds
 * the cidr lookup key (18 bytes) in key. Returns NULL or a static message. */
#define CIDR_KEY_LEN 18
const char *policy_parse_cidr(const char *s, size_t len, bool allow,
			      struct ip_addr *addr, unsigned *prefix_len,
			      uint8_t key[CIDR_KEY_LEN]);
void policy_cidr_key(const struct ip_addr *a, unsigned prefix_len,
		     uint8_t key[CIDR_KEY_LEN]);
/* 1 when the allow cidr: rules of family together cover more than a
 * sixteenth of that address space (*widest: the broadest of them, *percent:
 * how much), 0 when not, -ENOMEM. */
int policy_cidr_overbroad(const struct rule *rules, size_t n, int family,
			  const struct rule **widest, unsigned *percent);

/* The builder, shared by the YAML loader and the command-line rule parser. */
struct loading; /* a file on the extends stack */
struct policy_builder {
	struct arena arena;
	struct rule *rules; /* owned, grows */
	size_t nrules, cap;
	char *preset_dir;   /* owned, may be NULL */
	struct psl *psl;    /* owned, loaded on first wildcard allow rule */
	char **presets_loaded; /* owned names, to load each preset once */
	size_t npresets;
	struct loading *stack; /* files being loaded, for extends cycles */
	enum policy_mode mode;
	const char *primary;
	size_t files;
	size_t nerrors;
	struct host_port host_ports[POLICY_HOST_PORTS_MAX];
	size_t n_host_ports;
	struct policy_secret secrets[POLICY_SECRETS_MAX];
	size_t n_secrets;
	struct policy_inspect inspect[POLICY_INSPECT_MAX];
	size_t n_inspect;
	struct policy_inspect inspect_all; /* .name "all" when set */
	const char **ca_names; /* arena: inspect: all's CA names */
	size_t n_ca_names;
};

/* inspect: all's CA names from the builder's allow rules, into
 * b->ca_names (policy_inspect.c); an error at each refused rule. */
void policy_inspect_all_finish(struct policy_builder *b,
			       struct policy_errors *errs);

/* Append "name:line:col: msg" to errs (line/col 1-based; 0 line omits both). */
void policy_err(struct policy_builder *b, struct policy_errors *errs,
		const char *name, unsigned line, unsigned col, const char *fmt,
		...) __attribute__((format(printf, 6, 7)));

/* Add a rule; returns a pointer valid until the next add, or NULL on ENOMEM. */
struct rule *builder_push_rule(struct policy_builder *b);

/* Parse a ports value like "443" or "80,443" as the command line writes it. */
int policy_parse_port(const char *s, size_t len, uint16_t *out);

/* "tls,http" as the command line writes it -> POLICY_PROTO_* bits;
 * -EINVAL when a name is unknown or the list has an empty element. */
int policy_protocols_parse(const char *s, uint8_t *mask);

extern const uint16_t policy_default_ports[2];
/* Passed as the ports of builder_add_host/cidr for "ports: any" (the
 * pointer is the marker, nports is ignored). */
extern const uint16_t policy_any_port[1];



/* Add a host or cidr rule from its text; records an error (at file:line:col)
 * and returns -EINVAL when the text is refused. ports == NULL means the
 * default {80, 443}, ports == policy_any_port every port; ports are copied. report: 1, 0 or -1 (inherit).
 * protocols: POLICY_PROTO_* bits, 0 for the default (tls, http). */
int builder_add_host(struct policy_builder *b, struct policy_errors *errs,
		     const char *file, unsigned line, unsigned col,
		     const char *text, size_t len, bool allow, int report,
		     const uint16_t *ports, size_t nports, uint8_t protocols);
int builder_add_cidr(struct policy_builder *b, struct policy_errors *errs,
		     const char *file, unsigned line, unsigned col,
		     const char *text, size_t len, bool allow, int report,
		     const uint16_t *ports, size_t nports, uint8_t protocols);

/* The YAML loader (policy_load.c). is_preset: loaded through extends. */
int policy_load_yaml(struct policy_builder *b, const char *name,
		     const char *data, size_t len, bool is_preset,
		     const char *preset_name, struct policy_errors *errs);

#define POLICY_MAX_ERRORS 1000

/* The exact widening scan (policy_widen.c). A point stands for a class of
 * names or addresses that every rule treats alike. */
struct widen_point {
	bool is_addr;
	struct ip_addr addr;
	char name[256];
};
/* One port where, at a point, comb lets through what base does not, and
 * the rules (indices into each policy's rules) that decided it there:
 * RULE_NONE for the default. Port 0 is the name lookup ("any port", a DNS
 * question); a port that no rule at the point lists stands for them all. */
/* RFC 3492 (punycode) parameters and bias adaptation, shared by the
 * encoder (policy_name.c) and the decoder for display (policy_idn.c). */
enum { PC_BASE = 36, PC_TMIN = 1, PC_TMAX = 26, PC_SKEW = 38, PC_DAMP = 700 };
uint32_t punycode_adapt(uint32_t delta, uint32_t numpoints, bool first);

struct widen_entry {
	uint16_t port;
	uint32_t rule_comb, rule_base;
	/* POLICY_PROTO_* that BASE+REPO lets through at this port and BASE
	 * does not (all of BASE+REPO's when BASE refuses the port); 0 for
	 * port 0, a name lookup, where no stream is made. */
	uint8_t new_protocols;
	const uint16_t *members; /* every listed port decided like port, */
	size_t nmembers;         /* or NULL, 0 */
};
/* Called for each point that widens, with its n entries (which it may
 * reorder). A non-zero return stops the scan with that value. */
typedef int (*widen_hit_fn)(void *arg, const struct widen_point *pt,
			    struct widen_entry *e, size_t n);
/* Scan every class that some rule of repo (an allow, or a deny in report
 * mode) touches. stop, when given, is polled now and then; when it
 * returns true the scan ends with -EINTR. -ERANGE: the rules are too
 * intricate to decide within the scan's work limit (undecided). */
int policy_widen_scan(const struct policy *base, const struct policy *comb,
		      const struct policy *repo, widen_hit_fn hit, void *harg,
		      bool (*stop)(void *), void *sarg);
#endif
