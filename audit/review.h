/* Shared parts of sandbox-audit's commands: streaming the records of a set
 * of files, the filters every view accepts, and output helpers. */
#ifndef AUDIT_REVIEW_H
#define AUDIT_REVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../auditlog/record.h"

struct policy;

/* Reads lines from a file in big chunks; memory stays bounded by the
 * longest line (at most LINE_MAX_BYTES). */
#define LINE_MAX_BYTES (1 << 20)
struct line_reader {
	int fd;
	const char *path;
	char *buf; /* owned */
	size_t cap, start, end;
	unsigned long lineno;
	bool eof;
};
int lr_open(struct line_reader *lr, const char *path); /* "-": stdin */
void lr_close(struct line_reader *lr);
/* 1: a line (newline stripped; *torn when it had none, at end of file),
 * 0: end of file, -E2BIG: line too long, other negative errno. */
int lr_next(struct line_reader *lr, const char **line, size_t *len,
	    bool *torn);
/* For follow: read more after an earlier 0 (end of file). */
void lr_rearm(struct line_reader *lr);

struct filter {
	const char *sandbox;
	struct policy *host; /* owned; a deny rule per --host pattern */
	const char *decision;
	int64_t since, until; /* ms; INT64_MIN/INT64_MAX: open */
};
void filter_init(struct filter *f);
void filter_free(struct filter *f);
/* Returns 0 or -EINVAL with a message in err. */
int filter_add_host(struct filter *f, const char *pattern, char *err,
		    size_t errsz);
bool filter_match(const struct filter *f, const struct rec *r);
/* RFC 3339, or relative to now: "90s", "15m", "1h", "2d", "1w". */
int parse_when(const char *s, int64_t now_ms, int64_t *ms);
int64_t now_ms(void);

/* Options common to all commands, and the files. */
struct opts {
	struct filter filter;
	bool json, help, strict, html, from_start;
	const char *out;     /* -o FILE */
	const char **files;  /* owned array; strings are argv */
	size_t nfiles;
	unsigned long records; /* generate */
	const char *mode;      /* generate: "enforce" or "report" */
	double interval;       /* follow poll interval, seconds */
};
enum opt_mask {
	O_FILTER = 1, O_JSON = 2, O_STRICT = 4, O_HTML = 8, O_OUT = 16,
	O_FROM_START = 32, O_RECORDS = 64, O_INTERVAL = 128,
};
/* Returns 0, 1 for --help (usage printed), or 2 after printing an error. */
int opts_parse(int argc, char **argv, unsigned mask, const char *usage,
	       struct opts *o);
void opts_free(struct opts *o);

/* FILE with FILE.1, FILE.2 ... present expands to the oldest first:
 * FILE.N ... FILE.1 FILE. Returns a malloc'd array or NULL. */
char **expand_rotated(const char *const *files, size_t n, size_t *out_n);
void free_strv(char **v, size_t n);

/* Call fn for every record of files (after expansion) that the filter
 * accepts. Malformed lines are reported as "FILE:LINE: ..." on stderr and
 * counted; returns that count, or a negative errno for I/O errors. */
typedef int (*rec_fn)(void *ctx, const struct rec *r, const char *line,
		      size_t len, const char *path, unsigned long lineno);
long for_each_record(const struct opts *o, rec_fn fn, void *ctx);

/* JSON string (with quotes) and HTML text, both escaped for any input. */
void put_json_str(FILE *f, const char *s);
void put_html(FILE *f, const char *s);
void put_time(FILE *f, int64_t ms);

/* Labels of a destination row: fields a record carries about where its
 * connection came from (the guest's claims, never policy), one set of
 * distinct values per field. A new field is a row in summary.c's
 * label_names and a case in views.c's label_of. */
enum { LABEL_SRC, LABEL_CONTAINER, LABEL_COUNT };
#define LABEL_VALUES_MAX 8
struct label_set {
	char *v[LABEL_VALUES_MAX]; /* owned, in order of first sight */
	size_t n;
	uint64_t more; /* distinct values beyond LABEL_VALUES_MAX (at most) */
};
extern const char *const label_names[LABEL_COUNT];

/* summary's aggregate, shared with the HTML report */
struct host_stat {
	char *key; /* owned: sandbox NUL host NUL */
	const char *host; /* inside key */
	uint64_t n[3], up, down; /* n: allow, deny, would-deny */
	int64_t first, last;
	struct label_set label[LABEL_COUNT];
};
/* Published ports (inbound records) per sandbox, host port, guest port
 * and peer address (without its port): connections and bytes. */
struct inbound_stat {
	char *key; /* owned: sandbox NUL peer NUL */
	const char *peer; /* inside key */
	int64_t host_port, guest_port;
	uint64_t conns, up, down; /* up: guest -> host client */
	int64_t first, last;
};
struct inbound_table {
	struct inbound_stat *s; /* owned */
	size_t n, cap;
};
/* "ip:port" or "[ip]:port" without the port (the port of a client is
 * ephemeral: rows are per address); anything else as it is. */
void addr_without_port(const char *s, char *out, size_t n);
int inbound_stats_add(struct inbound_table *t, const struct rec *r);
void inbound_stats_sort(struct inbound_table *t);
void inbound_stats_print(const struct inbound_table *t, bool json);
void inbound_stats_free(struct inbound_table *t);
/* Aggregate into an array sorted by host then sandbox (free with
 * free_stats); *bad counts malformed lines. Returns 0 or negative errno. */
long summary_collect(const struct opts *o, struct host_stat **out,
		     size_t *n, long *bad);
/* The same, and the inbound records into in when it is not NULL. */
long summary_collect_all(const struct opts *o, struct host_stat **out,
			 size_t *n, struct inbound_table *in, long *bad);
void free_stats(struct host_stat *s, size_t n);
int by_host(const void *a, const void *b);
/* One human line per record, strings escaped (denied, follow). */
void print_record_line(const struct rec *r);

int cmd_verify(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_denied(int argc, char **argv);
int cmd_follow(int argc, char **argv);
int cmd_suggest(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_generate(int argc, char **argv);

#endif
