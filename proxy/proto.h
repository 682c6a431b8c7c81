/* The protocols the proxy recognises in a connection's first bytes, as a
 * table (tls, http, then tcp as the catch-all: a stream that is neither,
 * let through only on a rule whose protocols include tcp), each with a peek function
 * that extracts the name the client asks for and a deny_response that
 * tells the client, in its own protocol, that it was refused. */
#ifndef PROXY_PROTO_H
#define PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../policy/policy.h"

enum peek_status {
	PEEK_MORE, /* valid so far: need more bytes */
	PEEK_OK,   /* done: out says whether a name was found */
	PEEK_BAD,  /* malformed / not allowed by the protocol checks: deny */
};

struct peek_info {
	bool has_name;
	char name[256]; /* as sent (SNI host_name, Host without port) */
	size_t name_len;
	uint16_t name_port; /* Host header port, 0 when absent */
	bool ech;           /* TLS: encrypted_client_hello offered */
	bool malformed;     /* PEEK_BAD because the bytes were malformed
			       (HTTP: answer 400 rather than 403) */
	const char *why;    /* static text with PEEK_BAD (and with opaque) */
	bool opaque;        /* PEEK_OK, but the stream is not TLS or HTTP/1
			       (HTTP/2 prior knowledge): only a rule with
			       tcp lets it through */
};

enum deny_kind;

/* What the client is told when refused. Strings may be NULL. */
struct deny_text {
	const char *host;
	uint16_t port;
	const char *decision; /* "deny" */
	const char *reason;
	const char *hint; /* which file and rule to change */
};

struct proto {
	const char *name; /* audit "proto" */
	/* Do the first bytes look like this protocol? */
	bool (*claims)(const uint8_t *buf, size_t len);
	enum peek_status (*peek)(const uint8_t *buf, size_t len,
				 struct peek_info *out);
	/* Write the refusal into out; returns its length (0: just close). */
	size_t (*deny_response)(int status, const struct deny_text *t,
				char *out, size_t outsz);
	size_t max_peek; /* bytes buffered at most while peeking */
};

extern const struct proto proto_tls, proto_http, proto_tcp;

/* The first row whose claims() accepts buf (proto_tcp accepts anything). */
const struct proto *proto_detect(const uint8_t *buf, size_t len);

/* A short description of what a stream started with, safe to print and
 * log: up to 16 bytes in hex and as ASCII (others shown as '.'). */
void proto_describe(const uint8_t *buf, size_t len, char *out, size_t outsz);

/* The plain-text HTTP error response (403/400/502 ...) with a body a
 * person -- or an agent -- can act on. Returns the length (truncated
 * bodies still form a valid response). */
size_t http_error_response(int status, const struct deny_text *t, char *out,
			   size_t outsz);

/* "which file and rule to change" for a policy verdict. */
void deny_hint(const struct policy *p, const struct policy_verdict *v,
	       const char *host, uint16_t port, char *out, size_t outsz);

#endif
