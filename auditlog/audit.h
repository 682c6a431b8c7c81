/* The audit log: JSON Lines, one object per line, each appended with a
 * single write(2) on an O_APPEND descriptor so that records never
 * interleave or split. Every record ends in "prev" and "hash" fields that
 * chain it to the record before (SHA-256), across rotated files too.
 * Fields and the chain are documented in docs/audit-log.md. */
#ifndef PROXY_AUDIT_H
#define PROXY_AUDIT_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct audit;

/* At most this many bytes per line, newline included. */
#define AUDIT_LINE_MAX 4096
/* The "prev" of the first record of a new log: 64 zeros. */
#define AUDIT_GENESIS \
	"0000000000000000000000000000000000000000000000000000000000000000"
/* Bytes of the line after the hashed part: ,"hash":"<64 hex>"} */
#define AUDIT_HASH_TAIL 75

/* path "-" means stderr. sandbox names the sandbox in every record. */
struct audit *audit_open(const char *path, const char *sandbox, int *err);
/* Writes a final {"event":"log","reason":"closed"} record (so that a cut
 * tail is detectable), then frees everything. */
void audit_close(struct audit *a);

/* Rotate when appending a record would make the file bigger than
 * max_bytes (0: never): FILE becomes FILE.1, FILE.1 FILE.2, ... and
 * FILE.<keep> is deleted. The new FILE continues the hash chain.
 * Rotation never deletes the first file this writer wrote a record into
 * (its run's start): when it would, the log is capped. The batch being
 * written goes past max_bytes, then a "log" record whose reason starts
 * with AUDIT_CAP_REASON, and the write returns AUDIT_E_CAP (all bodies
 * written); every later write returns AUDIT_E_CAP at once, except the
 * closing record of audit_close(). So old files of earlier runs are
 * deleted first, and a flood cannot push a run's own records out. */
#define AUDIT_E_CAP (-EDQUOT)
#define AUDIT_CAP_REASON "audit log cap reached"
void audit_set_rotation(struct audit *a, uint64_t max_bytes, unsigned keep);

/* Absent fields: NULL strings, negative numbers. */
struct audit_record {
	const char *event;    /* "dns", "resolve", "connect", "close", "policy",
				 "log" */
	uint64_t conn;        /* connection id, 0 for none */
	const char *proto;    /* "tls", "http", "tcp", "dns", "connect" ... */
	const char *host;     /* the name the decision was about */
	int port;             /* -1: absent */
	const char *sni;      /* SNI as sent by the client */
	const char *qtype;    /* DNS query type, e.g. "A" */
	const char *addr;     /* address connected to, "ip" */
	/* Inbound (published port) records: the host client's "ip:port"
	 * and the host port it connected to (-1: absent). */
	const char *peer;
	int host_port;
	const char *decision; /* "allow", "deny", "would-deny" */
	const char *rule;     /* "file:line" or "default" */
	const char *reason;   /* short human text */
	/* Interception (docs/secrets.md): the proxy terminated TLS for a
	 * secret host; secret names the variable whose placeholder the
	 * record is about (never its value). false/NULL: absent. */
	bool intercepted;
	const char *secret;
	/* request records of an inspected host: the request's method and
	 * its path without the query string (never header values). */
	const char *method;
	const char *path;
	int64_t bytes_up;     /* guest -> internet; -1: absent */
	int64_t bytes_down;   /* internet -> guest; -1: absent */
	int64_t duration_ms;  /* -1: absent */
	/* Aggregates (audit_agg.h): this record stands for count identical
	 * decisions made between first and last that were not written one
	 * by one. count -1 and NULL times: absent. */
	int64_t count;
	const struct timespec *first, *last;
	/* connect/close: where the guest says the connection came from,
	 * "ip:port" (wire.h's source extension; a label, never policy). */
	const char *src;
	/* connect/close: the Docker container the guest says had that
	 * source (wire.h's container extension; a label, never policy):
	 * its name and its id or the id's prefix. NULL: absent. */
	const char *container, *container_id;
};

/* Initialise all fields to "absent". */
void audit_record_init(struct audit_record *r);

/* Returns 0 or a negative errno (the caller decides whether to fail
 * closed). */
int audit_write(struct audit *a, const struct audit_record *r);
/* The same with a given time (generators, tests). */
int audit_write_at(struct audit *a, const struct audit_record *r,
		   const struct timespec *ts);

/* Group commit (audit_queue.h): render r without the chain, with this
 * log's sandbox name, into buf (AUDIT_BODY_MAX + 2 bytes are enough). */
ssize_t audit_body(const struct audit *a, const struct audit_record *r,
		   const struct timespec *ts, char *buf, size_t size);
struct audit_body {
	const char *text; /* from audit_body() */
	size_t len;
};
/* Chain and append n bodies in order under one lock: buf (cap bytes, at
 * least AUDIT_LINE_MAX) collects whole lines, and each time it is full,
 * a rotation is due or the bodies end, it goes out in one write(2).
 * *done: how many of the n are in the file (also on error). Returns 0 or
 * a negative errno. */
int audit_write_bodies(struct audit *a, const struct audit_body *b, size_t n,
		       char *buf, size_t cap, size_t *done);

/* Pure: render one chained line (newline included) into buf, using prev
 * (64 hex digits) as the "prev" field; the record's hash goes to hash_hex.
 * sandbox may be NULL. Returns the length or a negative errno. */
ssize_t audit_render(const char *sandbox, const struct audit_record *r,
		     const struct timespec *ts, const char *prev, char *buf,
		     size_t size, char hash_hex[65]);

/* The same in two steps, so that a record can be rendered where the
 * decision is made and chained later, in order, by the one writer
 * (audit_queue.h). The body is the line without its closing "}\n" and
 * the chain's fields; audit_chain() appends ,"prev":...,"hash":..."}\n in
 * place (line has room for size bytes). Both return the length or a
 * negative errno. */
#define AUDIT_CHAIN_EXTRA (9 + 64 + 1 + AUDIT_HASH_TAIL + 1)
#define AUDIT_BODY_MAX (AUDIT_LINE_MAX - AUDIT_CHAIN_EXTRA)
ssize_t audit_render_body(const char *sandbox, const struct audit_record *r,
			  const struct timespec *ts, char *buf, size_t size);
ssize_t audit_chain(char *line, size_t len, size_t size, const char *prev,
		    char hash_hex[65]);

/* SHA-256 of data as 64 lower-case hex digits. Returns 0 or -ENOMEM. */
int audit_sha256_hex(const void *data, size_t len, char out[65]);

#endif
