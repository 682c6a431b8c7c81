/* Rendering one audit record: JSON Lines, strict escaping, and the hash
 * chain's fields (the writer, rotation and locking are in audit.c).
 *
 * Strings come from the guest (SNI, Host, DNS names), so escaping is strict:
 * the output is valid UTF-8 JSON whatever the input bytes are. Control
 * characters (C0, DEL and C1) are written as \u00XX so that `cat` of the log
 * cannot drive a terminal; invalid UTF-8 becomes U+FFFD, one per bad byte.
 * A record too big for the buffer is rendered again with every string
 * field cut to a smaller budget, down to one that always fits.
 *
 * Tamper evidence: every line ends in ,"prev":"P","hash":"H"} where H is
 * SHA-256 over the line up to (not including) ,"hash": and P is the H of
 * the line before. */
#include "audit.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "../common/termsafe.h"
#include "../common/utf8.h"
#include "../common/util.h"

void audit_record_init(struct audit_record *r)
{
	memset(r, 0, sizeof(*r));
	r->port = -1;
	r->host_port = -1;
	r->bytes_up = -1;
	r->bytes_down = -1;
	r->duration_ms = -1;
	r->count = -1;
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

/* A JSON string of at most budget output bytes between the quotes; a cut
 * string ends in "..." and never splits an escape or a UTF-8 sequence. */
static void put_string(struct out *o, const char *str, size_t budget)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), used = 0;
	put(o, "\"", 1);
	for (size_t i = 0; i < n;) {
		/* Fast path: a run of printable ASCII other than " and \ is
		 * copied as it is, as far as the rule below lets any byte
		 * pass whatever follows it (budget minus the "..." reserve);
		 * the last few bytes before the budget go through that rule
		 * one by one. Most names are all one run. */
		size_t k = 0;
		while (i + k < n && s[i + k] >= 0x20 && s[i + k] < 0x7f &&
		       s[i + k] != '"' && s[i + k] != '\\')
			k++;
		if (k) {
			size_t f = budget - used > 3 ? budget - used - 3 : 0;
			if (f > k)
				f = k;
			if (f) {
				put(o, str + i, f);
				used += f;
				i += f;
				continue;
			}
		}
		char esc[8];
		const char *piece = esc;
		size_t plen;
		uint32_t cp;
		size_t ulen = utf8_decode(s + i, n - i, &cp);
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
		} else if (term_hidden(cp)) {
			/* Controls, C1, bidi overrides and invisible characters
			 * from the guest: escaped, so that a raw look at the log
			 * (cat, less -r) shows them rather than obeys them. */
			esc[0] = '\\';
			esc[1] = 'u';
			for (int d = 0; d < 4; d++)
				esc[2 + d] = hex[(cp >> (12 - 4 * d)) & 0xf];
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

/* Decimal digits by hand: printf's machinery was a tenth of a record's
 * rendering (several numbers and a time per record, three records per
 * connection). */
static size_t put_digits(char *p, uint64_t v, unsigned width)
{
	char tmp[20];
	unsigned n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n < width)
		tmp[n++] = '0';
	for (unsigned i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

static void field_int(struct out *o, const char *key, int64_t v)
{
	char num[24];
	if (v < 0)
		return;
	put_key(o, key);
	put(o, num, put_digits(num, (uint64_t)v, 1));
}

/* RFC 3339 UTC with milliseconds: 2026-11-26T22:10:37.123Z */
static int audit_format_time(const struct timespec *ts, char out[32])
{
	struct tm tm;
	time_t t = ts->tv_sec;
	if (!gmtime_r(&t, &tm))
		return -EOVERFLOW;
	long y = tm.tm_year + 1900L;
	if (y < 0 || y > 9999)
		return fmt_buf(out, 32, "%04ld-%02d-%02dT%02d:%02d:%02d.%03ldZ",
			       y, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			       tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000000);
	const struct {
		uint64_t v;
		unsigned width;
		char after;
	} part[] = {
		{(uint64_t)y, 4, '-'},
		{(uint64_t)tm.tm_mon + 1, 2, '-'},
		{(uint64_t)tm.tm_mday, 2, 'T'},
		{(uint64_t)tm.tm_hour, 2, ':'},
		{(uint64_t)tm.tm_min, 2, ':'},
		{(uint64_t)tm.tm_sec, 2, '.'},
		{(uint64_t)(ts->tv_nsec / 1000000) % 1000, 3, 'Z'},
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(part) / sizeof(part[0]); i++) {
		n += put_digits(out + n, part[i].v, part[i].width);
		out[n++] = part[i].after;
	}
	out[n] = '\0';
	return 0;
}

static void field_time(struct out *o, const char *key,
		       const struct timespec *ts)
{
	char when[32];
	if (!ts || audit_format_time(ts, when) < 0)
		return;
	put_key(o, key);
	put(o, "\"", 1);
	put(o, when, strlen(when));
	put(o, "\"", 1);
}

static void render(struct out *o, const char *sandbox,
		   const struct audit_record *r, const char *when,
		   size_t budget)
{
	o->len = 0;
	o->full = false;
	put(o, "{\"time\":\"", 9);
	put(o, when, strlen(when));
	put(o, "\"", 1);
	field_str(o, "sandbox", sandbox, budget);
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
	if (r->intercepted)
		put(o, ",\"intercepted\":true", 19);
	field_str(o, "secret", r->secret, budget);
	field_int(o, "bytes_up", r->bytes_up);
	field_int(o, "bytes_down", r->bytes_down);
	field_int(o, "duration_ms", r->duration_ms);
	field_int(o, "count", r->count);
	field_time(o, "first", r->first);
	field_time(o, "last", r->last);
	field_str(o, "peer", r->peer, budget);
	field_int(o, "host_port", r->host_port);
	field_str(o, "src", r->src, budget);
	field_str(o, "container", r->container, budget);
	field_str(o, "container_id", r->container_id, budget);
	field_str(o, "method", r->method, budget);
	field_str(o, "path", r->path, budget);
	put(o, "}\n", 2);
}

/* EVP_sha256() makes OpenSSL 3 look the implementation up on every
 * digest; fetch it once (kept for the life of the process). */
static EVP_MD *sha256_md;
static void fetch_sha256(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int audit_sha256_hex(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned char md[32];
	unsigned int mdlen = 0;
	pthread_once(&once, fetch_sha256);
	if (!EVP_Digest(data, len, md, &mdlen,
			sha256_md ? sha256_md : EVP_sha256(), NULL) ||
	    mdlen != 32)
		return -ENOMEM;
	for (size_t i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[64] = '\0';
	return 0;
}

ssize_t audit_render_body(const char *sandbox, const struct audit_record *r,
			  const struct timespec *ts, char *buf, size_t size)
{
	/* 11 string fields at 256 bytes plus keys and numbers fit in 4 KiB. */
	static const size_t budgets[] = {SIZE_MAX, 1024, 512, 256};
	char when[32];
	if (!r || !r->event || !ts || size < 2)
		return -EINVAL;
	if (size > AUDIT_BODY_MAX + 2)
		size = AUDIT_BODY_MAX + 2;
	int e = audit_format_time(ts, when);
	if (e < 0)
		return e;
	/* render() ends in "}\n", which the chain replaces. */
	struct out o = {.buf = buf, .cap = size};
	size_t i;
	for (i = 0; i < ARRAY_SIZE(budgets); i++) {
		render(&o, sandbox, r, when, budgets[i]);
		if (!o.full)
			break;
	}
	if (i == ARRAY_SIZE(budgets))
		return -E2BIG;
	return (ssize_t)(o.len - 2);
}

ssize_t audit_chain(char *line, size_t len, size_t size, const char *prev,
		    char hash_hex[65])
{
	if (!prev || strlen(prev) != 64 || len > AUDIT_BODY_MAX ||
	    size < len + AUDIT_CHAIN_EXTRA)
		return -EINVAL;
	struct out o = {.buf = line, .len = len, .cap = size};
	put(&o, ",\"prev\":\"", 9);
	put(&o, prev, 64);
	put(&o, "\"", 1);
	if (audit_sha256_hex(o.buf, o.len, hash_hex) < 0)
		return -ENOMEM;
	put(&o, ",\"hash\":\"", 9);
	put(&o, hash_hex, 64);
	put(&o, "\"}\n", 3);
	return o.full ? -E2BIG : (ssize_t)o.len;
}

ssize_t audit_render(const char *sandbox, const struct audit_record *r,
		     const struct timespec *ts, const char *prev, char *buf,
		     size_t size, char hash_hex[65])
{
	if (!prev || strlen(prev) != 64 || size < AUDIT_CHAIN_EXTRA + 2)
		return -EINVAL;
	if (size > AUDIT_LINE_MAX)
		size = AUDIT_LINE_MAX;
	ssize_t len = audit_render_body(sandbox, r, ts, buf,
					size - AUDIT_CHAIN_EXTRA + 2);
	if (len < 0)
		return len;
	return audit_chain(buf, (size_t)len, size, prev, hash_hex);
}
