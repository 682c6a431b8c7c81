/* The audit log writer. Each record is rendered into one buffer of at most
 * AUDIT_LINE_MAX bytes and handed to a single write(2) on an O_APPEND
 * descriptor: Linux appends such a write to a regular file as a unit, so two
 * processes (or a crash) never leave half a record or two records on one
 * line. A record too big for the buffer is rendered again with every string
 * field cut to a smaller budget, down to one that always fits.
 *
 * Strings come from the guest (SNI, Host, DNS names), so escaping is strict:
 * the output is valid UTF-8 JSON whatever the input bytes are. Control
 * characters (C0, DEL and C1) are written as \u00XX so that `cat` of the log
 * cannot drive a terminal; invalid UTF-8 becomes U+FFFD, one per bad byte. */
#include "audit.h"

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "../common/util.h"

#define AUDIT_LINE_MAX 4096

struct audit {
	int fd;
	bool own_fd;
	char *sandbox; /* owned */
};

struct audit *audit_open(const char *path, const char *sandbox, int *err)
{
	if (!path || !*path) {
		*err = -EINVAL;
		return NULL;
	}
	struct audit *a = calloc(1, sizeof(*a));
	if (!a) {
		*err = -ENOMEM;
		return NULL;
	}
	if (sandbox && !(a->sandbox = strdup(sandbox))) {
		free(a);
		*err = -ENOMEM;
		return NULL;
	}
	if (strcmp(path, "-") == 0) {
		a->fd = STDERR_FILENO;
	} else {
		a->fd = open(path,
			     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY,
			     0600);
		if (a->fd < 0) {
			*err = -errno;
			free(a->sandbox);
			free(a);
			return NULL;
		}
		a->own_fd = true;
	}
	return a;
}

void audit_close(struct audit *a)
{
	if (!a)
		return;
	if (a->own_fd)
		close(a->fd);
	free(a->sandbox);
	free(a);
}

void audit_record_init(struct audit_record *r)
{
	memset(r, 0, sizeof(*r));
	r->port = -1;
	r->bytes_up = -1;
	r->bytes_down = -1;
	r->duration_ms = -1;
}

struct out {
	char *buf;
	size_t len, cap;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0 when the byte is invalid. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/* A JSON string of at most budget output bytes between the quotes; a cut
 * string ends in "..." and never splits an escape or a UTF-8 sequence. */
static void put_string(struct out *o, const char *str, size_t budget)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), used = 0;
	put(o, "\"", 1);
	for (size_t i = 0; i < n;) {
		char esc[8];
		const char *piece = esc;
		size_t plen;
		uint32_t cp;
		size_t ulen = utf8_len(s + i, n - i, &cp);
		if (ulen == 0) {
			piece = "\\ufffd";
			plen = 6;
			ulen = 1;
		} else if (cp == '"' || cp == '\\') {
			esc[0] = '\\';
			esc[1] = (char)cp;
			plen = 2;
		} else if (cp == '\n' || cp == '\t' || cp == '\r') {
			esc[0] = '\\';
			esc[1] = cp == '\n' ? 'n' : cp == '\t' ? 't' : 'r';
			plen = 2;
		} else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[cp >> 4];
			esc[5] = hex[cp & 0xf];
			plen = 6;
		} else {
			piece = str + i;
			plen = ulen;
		}
		/* Keep room for the "..." marker unless this is the end. */
		size_t reserve = i + ulen < n ? 3 : 0;
		if (used + plen + reserve > budget) {
			put(o, "...", 3);
			break;
		}
		put(o, piece, plen);
		used += plen;
		i += ulen;
	}
	put(o, "\"", 1);
}

static void put_key(struct out *o, const char *key)
{
	put(o, ",\"", 2);
	put(o, key, strlen(key));
	put(o, "\":", 2);
}

static void field_str(struct out *o, const char *key, const char *v,
		      size_t budget)
{
	if (!v)
		return;
	put_key(o, key);
	put_string(o, v, budget);
}

static void field_int(struct out *o, const char *key, int64_t v)
{
	char num[24];
	if (v < 0)
		return;
	if (fmt_buf(num, sizeof(num), "%lld", (long long)v) < 0)
		return;
	put_key(o, key);
	put(o, num, strlen(num));
}

/* RFC 3339 UTC with milliseconds: 2026-11-26T22:10:37.123Z */
static int audit_format_time(const struct timespec *ts, char out[32])
{
	struct tm tm;
	time_t t = ts->tv_sec;
	if (!gmtime_r(&t, &tm))
		return -EOVERFLOW;
	return fmt_buf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		       tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000000);
}

static void render(struct out *o, const struct audit *a,
		   const struct audit_record *r, const char *when,
		   size_t budget)
{
	o->len = 0;
	o->full = false;
	put(o, "{\"time\":\"", 9);
	put(o, when, strlen(when));
	put(o, "\"", 1);
	field_str(o, "sandbox", a->sandbox, budget);
	field_str(o, "event", r->event, budget);
	if (r->conn)
		field_int(o, "conn", (int64_t)(r->conn & INT64_MAX));
	field_str(o, "proto", r->proto, budget);
	field_str(o, "host", r->host, budget);
	field_int(o, "port", r->port);
	field_str(o, "sni", r->sni, budget);
	field_str(o, "qtype", r->qtype, budget);
	field_str(o, "addr", r->addr, budget);
	field_str(o, "decision", r->decision, budget);
	field_str(o, "rule", r->rule, budget);
	field_str(o, "reason", r->reason, budget);
	field_int(o, "bytes_up", r->bytes_up);
	field_int(o, "bytes_down", r->bytes_down);
	field_int(o, "duration_ms", r->duration_ms);
	put(o, "}\n", 2);
}

/* Render r as one line (with its newline) into buf; returns its length or
 * a negative errno. */
static ssize_t audit_format(const struct audit *a, const struct audit_record *r,
		     const struct timespec *ts, char *buf, size_t size)
{
	/* 11 string fields at 256 bytes plus keys and numbers fit in 4 KiB. */
	static const size_t budgets[] = {SIZE_MAX, 1024, 512, 256};
	char when[32];
	if (!r->event)
		return -EINVAL;
	int e = audit_format_time(ts, when);
	if (e < 0)
		return e;
	struct out o = {.buf = buf, .cap = size};
	for (size_t i = 0; i < ARRAY_SIZE(budgets); i++) {
		render(&o, a, r, when, budgets[i]);
		if (!o.full)
			return (ssize_t)o.len;
	}
	return -E2BIG;
}

int audit_write(struct audit *a, const struct audit_record *r)
{
	char line[AUDIT_LINE_MAX];
	struct timespec ts;
	if (!a || !r)
		return -EINVAL;
	clock_gettime(CLOCK_REALTIME, &ts);
	ssize_t len = audit_format(a, r, &ts, line, sizeof(line));
	if (len < 0)
		return (int)len;
	ssize_t n;
	do
		n = write(a->fd, line, (size_t)len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n != len) {
		/* Only on a full disk or a file size limit. Finish the line so
		 * the next record does not glue onto it, and report it. */
		write_all(a->fd, line + n, (size_t)(len - n));
		return -EIO;
	}
	return 0;
}
