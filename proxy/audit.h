/* The audit log: JSON Lines, one object per line, each appended with a
 * single write(2) on an O_APPEND descriptor so that records never
 * interleave or split. Fields are documented in docs/audit-log.md. */
#ifndef PROXY_AUDIT_H
#define PROXY_AUDIT_H

#include <stdint.h>

struct audit;

/* path "-" means stderr. sandbox names the sandbox in every record. */
struct audit *audit_open(const char *path, const char *sandbox, int *err);
void audit_close(struct audit *a);

/* Absent fields: NULL strings, negative numbers. */
struct audit_record {
	const char *event;    /* "dns", "connect", "close", "policy" */
	uint64_t conn;        /* connection id, 0 for none */
	const char *proto;    /* "tls", "http", "tcp", "dns", "connect" ... */
	const char *host;     /* the name the decision was about */
	int port;             /* -1: absent */
	const char *sni;      /* SNI as sent by the client */
	const char *qtype;    /* DNS query type, e.g. "A" */
	const char *addr;     /* address connected to, "ip" */
	const char *decision; /* "allow", "deny", "would-deny" */
	const char *rule;     /* "file:line" or "default" */
	const char *reason;   /* short human text */
	int64_t bytes_up;     /* guest -> internet; -1: absent */
	int64_t bytes_down;   /* internet -> guest; -1: absent */
	int64_t duration_ms;  /* -1: absent */
};

/* Initialise all fields to "absent". */
void audit_record_init(struct audit_record *r);

/* Returns 0 or a negative errno (the caller decides whether to fail
 * closed). */
int audit_write(struct audit *a, const struct audit_record *r);

#endif
