/* Placeholders in HTTP request heads (docs/secrets.md).
 *
 * The guest holds a random placeholder for each secret; the proxy puts the
 * real value in its place on requests to that secret's hosts and refuses
 * any request head that carries a placeholder anywhere else. The rule is
 * about the whole head (request line and every header, and the decoded
 * credentials of "Authorization: Basic" / "Proxy-Authorization: Basic"),
 * never the body: bodies are not rewritten.
 *
 * Pure: no allocation, no I/O, no globals. Fuzzed by
 * tests/fuzz/fuzz_secret_subst.c. */
#ifndef PARSE_SECRET_SUBST_H
#define PARSE_SECRET_SUBST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SECRET_MAX 32        /* secrets per sandbox */
#define SECRET_HOSTS_MAX 16  /* hosts per secret */
#define SECRET_LEN_MAX 1024  /* bytes of a value or placeholder */
#define SECRET_PH_MIN 16     /* shortest placeholder accepted */

struct secret {
	const char *var;          /* the variable's name, for the audit log */
	const uint8_t *ph;        /* the placeholder the guest holds */
	size_t ph_len;
	const uint8_t *value;     /* the real value */
	size_t value_len;
	const char *const *hosts; /* lower-case names, no trailing dot */
	size_t n_hosts;
	/* A header the proxy sets on every request to the hosts (policy
	 * `header:`/`format:`), or NULL: the value rendered as
	 * fmt_pre VALUE fmt_post. */
	const char *header;
	const uint8_t *fmt_pre, *fmt_post;
	size_t pre_len, post_len;
};

struct secret_table {
	const struct secret *s;
	size_t n;
};

enum subst_status {
	SUBST_NONE = 0, /* no placeholder in the head: forward it as is */
	SUBST_DONE,     /* placeholders replaced: out[0..*out_len) */
	SUBST_FOREIGN,  /* a placeholder for a secret host is not on its
			   list: refuse (*which is the secret) */
	SUBST_TOO_LARGE,
	SUBST_MALFORMED, /* not a head of CRLF lines */
};

/* Is host (a normalised name) one of s's hosts? Case-insensitive. */
bool secret_host_listed(const struct secret *s, const char *host);

/* Is host one of any secret's hosts? */
bool secret_table_has_host(const struct secret_table *t, const char *host);

/* head[0..len) is one complete request head (already accepted by
 * http_request_parse, ending in CRLFCRLF). host is the normalised name the
 * connection is for, or NULL when the head will not be rewritten (plain
 * HTTP): then any placeholder is SUBST_FOREIGN. *used gets one bit per
 * secret whose placeholder was replaced. out may be NULL with outsz 0 to
 * only check. */
enum subst_status secret_subst_head(const struct secret_table *t,
				    const char *host, const uint8_t *head,
				    size_t len, uint8_t *out, size_t outsz,
				    size_t *out_len, uint32_t *used,
				    size_t *which);

/* head[0..len) as above, for a connection to host: for each secret
 * listed for host that has a header, every line of that name (any case,
 * with or without blanks before the ':') is dropped and one
 * "Header: PRE VALUE POST" line is added before the blank line that ends
 * the head, so the upstream sees exactly one, the proxy's. SUBST_NONE: no
 * secret sets a header for host (out untouched); SUBST_DONE: out[0..
 * *out_len), *used one bit per secret whose header was set;
 * SUBST_TOO_LARGE; SUBST_MALFORMED (not CRLF lines ending in an empty
 * one). */
enum subst_status secret_set_headers(const struct secret_table *t,
				     const char *host, const uint8_t *head,
				     size_t len, uint8_t *out, size_t outsz,
				     size_t *out_len, uint32_t *used);

/* RFC 4648 base64 with padding. Encode returns the length or 0 when it
 * does not fit; decode returns the length or -1 for bad input. */
size_t secret_b64_encode(const uint8_t *in, size_t len, uint8_t *out,
			 size_t outsz);
long secret_b64_decode(const uint8_t *in, size_t len, uint8_t *out,
		       size_t outsz);

#endif
