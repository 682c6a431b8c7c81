/* The egress policy: YAML files merged into one immutable object that
 * answers "may this name/address and port be reached, and by which rule?".
 *
 * Semantics are written down in docs/policy.md; in short: names compare
 * label by label after normalisation; "*.d" is exactly one more label,
 * "**.d" one or more, the apex only when listed; the most specific matching
 * rule wins and deny wins ties; a cidr: rule never allows a name. The cost
 * of a decision does not grow with the number of rules (hash lookups per
 * label of the name).
 *
 * A struct policy is never modified after policy_builder_finish(): reload
 * builds a new one and swaps the pointer, so a half-parsed file never
 * reaches live connections.
 */
#ifndef POLICY_POLICY_H
#define POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/ipaddr.h"

struct policy;
struct policy_builder;

enum policy_mode { POLICY_ENFORCE = 0, POLICY_REPORT = 1 };

/* Host services by port (policy_hostports.c): `host_ports: [5432]` in a
 * policy file or `sandbox-proxy --host-port 5432` lets the guest reach the
 * host's loopback on exactly those ports under this one name. The name's
 * decision comes from the host ports alone (allowed on a listed port,
 * denied on any other, whatever the host rules say), and only it is
 * resolved to loopback (proxy/resolver.c) and let through the address
 * classifier (proxy/upstream.c): no other name and no address literal
 * gets that exception. */
#define POLICY_HOST_INTERNAL "host.sandbox.internal"
#define POLICY_HOST_PORTS_MAX 64

enum policy_decision {
	DECISION_DENY = 0,
	DECISION_ALLOW = 1,
	DECISION_WOULD_DENY = 2, /* denied, but the rule or file is in report mode */
};

/* Where a decision came from. All strings are owned by the policy and live
 * as long as it does. file == NULL means no rule matched ("default"). */
struct policy_rule_ref {
	const char *file;    /* path as given, or "--allow"/"--deny" for CLI rules */
	unsigned line, col;  /* 1-based position of the rule in its file */
	const char *pattern; /* the rule as written, e.g. "**.example.org" */
	bool allow;          /* an allow rule (false: deny) */
	/* POLICY_PROTO_* bits the allow rule lets through (for an allow
	 * verdict: the union over the equally specific allow rules that
	 * matched). 0 for deny rules and the default decision. */
	uint8_t protocols;
};

/* The stream protocols a rule's "protocols:" key names. A stream is TLS
 * (a well-formed ClientHello), HTTP (a well-formed HTTP/1 request head) or
 * neither; "tcp" lets any stream through (TLS and HTTP ones still get
 * their SNI/Host checks). Default: tls and http. */
enum {
	POLICY_PROTO_TLS = 1,
	POLICY_PROTO_HTTP = 2,
	POLICY_PROTO_TCP = 4,
	POLICY_PROTO_DEFAULT = POLICY_PROTO_TLS | POLICY_PROTO_HTTP,
	POLICY_PROTO_ALL = 7,
};

/* "tls, http" for a mask (in table order); returns out. */
char *policy_protocols_str(uint8_t mask, char *out, size_t outsz);
/* One protocol name ("tls", "http", "tcp") to its bit, 0 when unknown. */
uint8_t policy_protocol_bit(const char *s, size_t len);

struct policy_verdict {
	enum policy_decision decision;
	struct policy_rule_ref rule;
};

/* Every error found while loading, each "file:line:col: message". */
struct policy_errors {
	char **msgs; /* owned */
	size_t count;
};
void policy_errors_free(struct policy_errors *e);

/* preset_dir: where "extends: [name]" finds name.yaml (e.g. policies/).
 * Returns NULL on allocation failure only. */
struct policy_builder *policy_builder_new(const char *preset_dir);

/* Add a YAML file or an in-memory YAML document (name is used in errors and
 * rule references). Errors are appended to errs; returns 0 when this source
 * added no error, -EINVAL when it did (the builder stays usable so that all
 * errors of all files can be reported), other negative errno on I/O. */
int policy_builder_add_file(struct policy_builder *b, const char *path,
			    struct policy_errors *errs);
int policy_builder_add_buffer(struct policy_builder *b, const char *name,
			      const char *data, size_t len,
			      struct policy_errors *errs);

/* Add one rule as the command line gives it ("--allow example.com",
 * "--deny '*.ads.example'", "--allow 'host:443'", "--allow 10.0.0.0/8:22").
 * origin is shown as the rule's file ("--allow"). */
int policy_builder_add_rule(struct policy_builder *b, bool allow,
			    const char *spec, const char *origin,
			    struct policy_errors *errs);

/* Build the immutable policy. Frees the builder. Returns NULL when any
 * error was recorded (errs says why) or on allocation failure. */
struct policy *policy_builder_finish(struct policy_builder *b,
				     struct policy_errors *errs);
void policy_builder_free(struct policy_builder *b);

void policy_free(struct policy *p);

/* Convenience: load a list of files into a policy (errors in errs). */
struct policy *policy_load_files(const char *const *paths, size_t n,
				 const char *preset_dir,
				 struct policy_errors *errs);

/* Decide for a normalised name (see policy_normalize_name). port 0 means
 * "any port": used for DNS, where the port is not yet known. */
/* Add a host port (origin: a file name, or "--host-port"; line 0 when
 * there is none). Repeats are kept once. 0 or -EINVAL / -E2BIG with the
 * reason in errs. */
int policy_builder_add_host_port(struct policy_builder *b, uint16_t port,
				 const char *origin, unsigned line,
				 unsigned col, struct policy_errors *errs);
/* Is port one of p's host ports? */
bool policy_host_port_open(const struct policy *p, uint16_t port);
/* p's host ports in the order they were added, *n of them. */
const uint16_t *policy_host_ports(const struct policy *p, uint16_t *buf,
				  size_t bufn, size_t *n);

/* Secrets (policy_secrets.c, docs/secrets.md): `secrets:` entries name
 * a host environment variable and the exact hosts its value may be sent
 * to (the launcher gives the guest a placeholder; the proxy puts the
 * value on requests to those hosts). The same variable in several files
 * has the union of their hosts; twice in one file is an error. */
#define POLICY_SECRETS_MAX 32
#define POLICY_SECRET_HOSTS_MAX 16
struct policy_secret_host {
	const char *name; /* normalised, exact */
	const char *file; /* where it was listed */
	unsigned line, col;
};
struct policy_secret {
	const char *var;
	const char *file; /* the first file that named var */
	unsigned line, col;
	struct policy_secret_host hosts[POLICY_SECRET_HOSTS_MAX];
	size_t nhosts;
	/* header: the proxy sets on every request to the hosts, its value
	 * format: with one {value} ("{value}" when only header: is given);
	 * NULL when none. Where it was set: */
	const char *header, *format;
	const char *header_file;
	unsigned header_line, header_col;
};
/* Variables that cannot be secrets: what the launcher itself or the
 * dynamic loader reads (PATH, HOME, SHELL, TERM, TMPDIR, USER, LOGNAME,
 * PWD, LANG and LC_*, LD_*, XDG_*, SANDBOX_*): hiding one would change
 * where the launcher looks or what it runs. */
bool policy_secret_var_reserved(const char *var, size_t len);
/* Set var's header and format (NULL: "{value}") as the loader does,
 * checked strictly: header an HTTP field name that is not framing or
 * hop-by-hop (Host, Content-Length, Transfer-Encoding, Connection, ...),
 * format printable ASCII with exactly one {value}; the same variable
 * given another header or format in another file is an error. var must
 * have been added already. 0 or -EINVAL with errs. */
int policy_builder_secret_header(struct policy_builder *b, const char *var,
				 const char *header, const char *format,
				 const char *file, unsigned line, unsigned col,
				 struct policy_errors *errs);
/* p's secrets, *n of them (owned by p). */
const struct policy_secret *policy_secrets(const struct policy *p,
					   size_t *n);
/* Add host to the secret var (made when new), as the loader does; errors
 * at file:line:col in errs. 0, -EINVAL or -E2BIG. */
int policy_builder_add_secret(struct policy_builder *b, const char *var,
			      size_t varlen, const char *host, size_t hostlen,
			      const char *file, unsigned line, unsigned col,
			      struct policy_errors *errs);

/* Inspection (policy_inspect.c, docs/secrets.md "Inspected hosts"):
 * `inspect: true` on an allow rule whose host: is one exact name makes
 * the proxy intercept that host's TLS with the sandbox CA and record
 * every request, secret or not. The same checks as a secret host: an
 * exact name with two labels or more, never a public suffix (the CA's
 * name constraints then permit its subtree). */
#define POLICY_INSPECT_MAX 64
struct policy_inspect {
	const char *name; /* normalised, exact */
	const char *file; /* where it was listed */
	unsigned line, col;
};
/* Add host as inspected (kept once), as the loader does; errors at
 * file:line:col in errs. 0, -EINVAL or -E2BIG. */
int policy_builder_add_inspect(struct policy_builder *b, const char *host,
			       size_t hostlen, const char *file,
			       unsigned line, unsigned col,
			       struct policy_errors *errs);
/* p's inspected hosts, *n of them (owned by p). */
const struct policy_inspect *policy_inspected(const struct policy *p,
					      size_t *n);
/* Is name (normalised) inspected by p? */
bool policy_is_inspected(const struct policy *p, const char *name);

/* `inspect: all` (top level of a policy file; docs/secrets.md "Inspect
 * all"): every allowed TLS connection by name is intercepted as an
 * inspected host's is. The sandbox CA's name constraints are then the
 * policy's allowed host names at build: each exact name, and for a
 * wildcard rule its suffix (the subtree), each checked as a name the CA
 * may sign; an unsafe one, more than POLICY_CA_NAMES_MAX, or report
 * mode is refused at file:line:col. */
#define POLICY_CA_NAMES_MAX 256
/* Does p inspect all? *at (when not NULL) is where it was said. */
bool policy_inspects_all(const struct policy *p,
			 const struct policy_inspect **at);
/* The CA's names under inspect: all (normalised, each once; *n = 0
 * without it). Owned by p. */
const char *const *policy_ca_names(const struct policy *p, size_t *n);
/* Record `inspect: all` at file:line:col, as the loader does. */
int policy_builder_inspect_all(struct policy_builder *b, const char *file,
			       unsigned line, unsigned col);

struct policy_verdict policy_decide_name(const struct policy *p,
					 const char *name, uint16_t port);

/* Decide for an address by cidr: rules only (host rules never match). */
struct policy_verdict policy_decide_addr(const struct policy *p,
					 const struct ip_addr *a,
					 uint16_t port);

/* POLICY_REPORT when any loaded file says "mode: report": the default
 * decision is then DECISION_WOULD_DENY instead of DECISION_DENY. */
enum policy_mode policy_mode(const struct policy *p);

/* The file a user should edit to change a default decision: the last
 * non-preset file loaded, or NULL. */
const char *policy_primary_file(const struct policy *p);

/* Counts, for `sandbox-policy check` and logs. */
struct policy_stats {
	size_t files, allow_rules, deny_rules, cidr_rules;
	size_t tcp_rules; /* allow rules (host or cidr) with protocols tcp */
};
void policy_get_stats(const struct policy *p, struct policy_stats *st);

/* Normalise a host name as written by a user or sent by a client: lower
 * case, one trailing dot dropped, UTF-8 labels converted to punycode
 * ("xn--"), each label 1..63 bytes of letters, digits, '-' or '_', total at
 * most 253. Returns the length written (excluding NUL) or -EINVAL. */
int policy_normalize_name(const char *in, size_t len, char *out,
			  size_t outsz);

/* The Unicode form of a normalised name, for showing beside it: 1 when
 * it has "xn--" labels (out is then UTF-8), 0 when out is the name
 * itself, -EINVAL for a label that is not valid punycode. *mixed: its
 * letters come from more than one script (Latin, Greek, Cyrillic, other),
 * the mark of a look-alike name. */
int policy_name_unicode(const char *name, char *out, size_t outsz,
			bool *mixed);

/* The preset directory to use when none is given: $SANDBOX_PRESETS, else
 * policies/ of the source tree the running program was built in, else the
 * installed location. Returns buf or a static string. */
const char *policy_default_preset_dir(char *buf, size_t size);

const char *policy_decision_str(enum policy_decision d); /* "allow", ... */

/* "file:line" or "default"; returns out. */
char *policy_rule_str(const struct policy_rule_ref *r, char *out,
		      size_t outsz);

/* Widening analysis (policy_diff.c, policy_widen.c): what a repository's
 * policy file adds to a BASE policy (the user's policy, the agent preset,
 * presets). BASE and BASE+REPO are built with this engine and compared
 * exactly, on every class of names and addresses the rules can tell apart
 * and on every port; see docs/policy.md "Repository policy: what counts as
 * widening". Narrowing (deny rules, fewer ports) is silent. */
enum policy_widen_kind {
	WIDEN_ALLOW,       /* an allow rule lets through what BASE denied */
	WIDEN_REPORT_RULE, /* a rule in report mode turns a deny into would-deny */
	WIDEN_REPORT_MODE, /* "mode: report": every default deny goes through */
	WIDEN_UNDECIDED,   /* too intricate to decide in bounded time: ask */
	WIDEN_HOST_PORT,   /* host_ports: opens a host loopback port */
	WIDEN_SECRET,      /* secrets: a secret's value goes to a new host */
	WIDEN_INSPECT,     /* inspect: true: a new host the sandbox CA may
			    * sign and the proxy decrypts */
};

struct policy_widening {
	enum policy_widen_kind kind;
	char *pattern;    /* owned; the rule as written (NULL for REPORT_MODE) */
	bool cidr;        /* pattern is an address rule */
	char *file;       /* owned; where the rule is (the repo name or a preset) */
	unsigned line, col; /* 0 when unknown */
	bool via_extends; /* file is a preset the repo file extends */
	uint16_t ports[16]; /* ports on which it widened (0: DNS only) */
	size_t nports;
	bool more_ports; /* widened on more ports than fit in ports[] */
	char *example;    /* owned; one name that widened, e.g. "a.example.com:443" */
	char *overrides;  /* owned or NULL; the BASE denies it beats, e.g.
			   * "deny '**.corp' (base.yaml:3), deny ..." */
	char *override_keys; /* owned or NULL; their patterns alone */
	uint8_t protocols; /* POLICY_PROTO_* the widening lets through */
};

struct policy_diff {
	struct policy_widening *items; /* owned */
	size_t count;
};

/* Rules a repository's policy file may have (its own, not counting the
 * presets it extends); more is refused with -E2BIG. */
#define POLICY_REPO_MAX_RULES 4096
#define POLICY_REPO_MAX_PORTS 8192 /* listed ports, summed over its rules */

/* Compare BASE (files, in order, plus presets from preset_dir) with BASE
 * plus the repo document (repo_name is used in errors and output). Returns
 * 0 (out->count == 0: nothing widened), -EINVAL when a file has errors
 * (errs says which), -E2BIG when the repo file has too many rules (errs
 * says so), -EINTR when stop said so, -ENOMEM or another negative errno on I/O. */
int policy_diff_compute(const char *const *base_files, size_t nbase,
			const char *preset_dir, const char *repo_name,
			const char *repo_data, size_t repo_len,
			struct policy_diff *out, struct policy_errors *errs);
/* The same, polling stop (when not NULL) now and then: when it returns
 * true the computation ends with -EINTR (a signal during a launch). */
int policy_diff_compute_ex(const char *const *base_files, size_t nbase,
			   const char *preset_dir, const char *repo_name,
			   const char *repo_data, size_t repo_len,
			   bool (*stop)(void *), void *stop_arg,
			   struct policy_diff *out, struct policy_errors *errs);
void policy_diff_free(struct policy_diff *d);

/* One line that identifies the effect of a widening (kind, pattern,
 * ports, origin, the BASE denies it overrides) without line numbers, for
 * pinning an approval to what was shown. malloc'd, NULL on ENOMEM. */
char *policy_widening_key(const struct policy_widening *w);

/* One line per widening, "+ allow api.example.com ports 443 (file:7)",
 * or (json) one JSON object per line. */
void policy_diff_print(FILE *f, const struct policy_diff *d, bool json);

#endif
