/* sandbox-audit's view of one audit record, and the pure JSON line parser
 * that fills it. The parser is purpose-built for the flat objects the
 * proxy writes (string and integer values); it never allocates: strings
 * are unescaped into a caller's scratch buffer. */
#ifndef AUDIT_RECORD_H
#define AUDIT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rec {
	/* NUL-terminated, unescaped, in the scratch buffer; NULL: absent */
	const char *time, *sandbox, *event, *proto, *host, *sni, *qtype,
		*addr, *peer, *decision, *rule, *reason, *prev, *hash;
	/* The guest's claims (connect/close): source, Docker container. */
	const char *src, *container, *container_id;
	int64_t conn, port, host_port, bytes_up, bytes_down, duration_ms; /* -1 absent */
	/* An aggregate stands for count identical decisions between first
	 * and last (docs/audit-log.md); count -1, first/last NULL: absent. */
	int64_t count;
	const char *first, *last;
	int64_t time_ms; /* parsed "time"; INT64_MIN when absent or invalid */
};

/* How many decisions r stands for: its count, or 1. */
static inline uint64_t rec_weight(const struct rec *r)
{
	return r->count > 0 ? (uint64_t)r->count : 1;
}

/* Records that repeat a decision recorded elsewhere and so are not
 * counted as decisions of their own: "close" (its connect has it) and
 * "resolve" (the proxy's own lookup for a connection). */
bool rec_is_followup(const struct rec *r);

enum rec_status {
	REC_OK = 0,
	REC_SYNTAX,     /* not a JSON object of the expected shape */
	REC_TOO_BIG,    /* the strings do not fit the scratch buffer */
};

/* Parse one line (without its newline). scratch must be at least len + 1
 * bytes for any input to fit. On failure *why says what is wrong. */
enum rec_status rec_parse(const char *line, size_t len, struct rec *out,
			  char *scratch, size_t scratch_sz, const char **why);

/* RFC 3339 ("2026-11-26T22:10:37.123Z", "...+02:00", fraction optional)
 * to milliseconds since the epoch. Returns 0 or -EINVAL. */
int rfc3339_parse(const char *s, size_t len, int64_t *ms);
/* Back: always UTC with milliseconds. out must hold 32 bytes. */
void rfc3339_format(int64_t ms, char out[32]);

#endif
