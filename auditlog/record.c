/* The JSON line parser. It accepts exactly RFC 8259 for one flat object:
 * string, number, true/false/null values (nested arrays and objects are
 * refused: the proxy never writes them, and refusing keeps the parser
 * small and its cost linear). Unknown keys are skipped, so newer logs with
 * extra fields still read. */
#include "record.h"

#include <errno.h>
#include <string.h>
#include <time.h>

struct p {
	const char *s, *end;
	char *out, *out_end;
	const char **why;
};

static void ws(struct p *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' ||
				 *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

static int hex4(const char *s, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

static bool emit(struct p *p, const char *b, size_t n)
{
	if ((size_t)(p->out_end - p->out) < n)
		return false;
	memcpy(p->out, b, n);
	p->out += n;
	return true;
}

static bool emit_cp(struct p *p, unsigned cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return emit(p, b, n);
}

/* A string at p->s (on the opening quote). With keep, its unescaped bytes
 * and a NUL go to the scratch buffer and *str points at them. Invalid
 * UTF-8 is kept as is: the log writer never produces it, and a reader
 * should show, not hide, what a file holds. */
static enum rec_status string(struct p *p, bool keep, const char **str)
{
	p->s++;
	char *start = p->out;
	for (;;) {
		const char *q = p->s;
		while (q < p->end && *q != '"' && *q != '\\' &&
		       (unsigned char)*q >= 0x20)
			q++;
		if (keep && !emit(p, p->s, (size_t)(q - p->s)))
			return *p->why = "record too big", REC_TOO_BIG;
		p->s = q;
		if (q >= p->end)
			return *p->why = "unterminated string", REC_SYNTAX;
		if (*q == '"')
			break;
		if ((unsigned char)*q < 0x20)
			return *p->why = "control character in a string",
			       REC_SYNTAX;
		/* backslash */
		if (p->end - q < 2)
			return *p->why = "unterminated escape", REC_SYNTAX;
		char c = q[1], e = 0;
		p->s = q + 2;
		switch (c) {
		case '"': e = '"'; break;
		case '\\': e = '\\'; break;
		case '/': e = '/'; break;
		case 'b': e = '\b'; break;
		case 'f': e = '\f'; break;
		case 'n': e = '\n'; break;
		case 'r': e = '\r'; break;
		case 't': e = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (p->end - p->s < 4 || hex4(p->s, &cp) < 0)
				return *p->why = "bad \\u escape", REC_SYNTAX;
			p->s += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p->end - p->s < 6 || p->s[0] != '\\' ||
				    p->s[1] != 'u' || hex4(p->s + 2, &lo) < 0 ||
				    lo < 0xdc00 || lo > 0xdfff)
					return *p->why = "unpaired surrogate",
					       REC_SYNTAX;
				p->s += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				return *p->why = "unpaired surrogate",
				       REC_SYNTAX;
			}
			if (keep && !emit_cp(p, cp))
				return *p->why = "record too big", REC_TOO_BIG;
			continue;
		}
		default:
			return *p->why = "bad escape", REC_SYNTAX;
		}
		if (keep && !emit(p, &e, 1))
			return *p->why = "record too big", REC_TOO_BIG;
	}
	p->s++;
	if (keep) {
		if (!emit(p, "", 1))
			return *p->why = "record too big", REC_TOO_BIG;
		*str = start;
	}
	return REC_OK;
}

/* An RFC 8259 number; *v gets it when it is a non-negative integer that
 * fits, else -1 (the proxy writes only those). */
static enum rec_status number(struct p *p, int64_t *v)
{
	const char *s = p->s;
	bool neg = false, integer = true, big = false;
	int64_t n = 0;
	if (s < p->end && *s == '-')
		neg = true, s++;
	if (s >= p->end || *s < '0' || *s > '9')
		return *p->why = "bad value", REC_SYNTAX;
	if (*s == '0' && s + 1 < p->end && s[1] >= '0' && s[1] <= '9')
		return *p->why = "leading zero in a number", REC_SYNTAX;
	for (; s < p->end && *s >= '0' && *s <= '9'; s++) {
		if (n > (INT64_MAX - 9) / 10)
			big = true;
		else
			n = n * 10 + (*s - '0');
	}
	if (s < p->end && *s == '.') {
		integer = false, s++;
		if (s >= p->end || *s < '0' || *s > '9')
			return *p->why = "bad number", REC_SYNTAX;
		while (s < p->end && *s >= '0' && *s <= '9')
			s++;
	}
	if (s < p->end && (*s == 'e' || *s == 'E')) {
		integer = false, s++;
		if (s < p->end && (*s == '+' || *s == '-'))
			s++;
		if (s >= p->end || *s < '0' || *s > '9')
			return *p->why = "bad number", REC_SYNTAX;
		while (s < p->end && *s >= '0' && *s <= '9')
			s++;
	}
	p->s = s;
	*v = (!neg && integer && !big) ? n : -1;
	return REC_OK;
}

static bool word(struct p *p, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(p->end - p->s) < n || memcmp(p->s, w, n) != 0)
		return false;
	p->s += n;
	return true;
}

enum field { F_NONE, F_STR, F_INT };

static enum field lookup(struct rec *r, const char *k, size_t n,
			 const char ***sp, int64_t **ip)
{
#define S(name)                                                                \
	if (n == sizeof(#name) - 1 && memcmp(k, #name, n) == 0)                \
		return *sp = &r->name, F_STR;
#define I(name)                                                                \
	if (n == sizeof(#name) - 1 && memcmp(k, #name, n) == 0)                \
		return *ip = &r->name, F_INT;
	S(time) S(sandbox) S(event) S(proto) S(host) S(sni) S(qtype) S(addr) S(peer)
	S(decision) S(rule) S(reason) S(prev) S(hash) S(first) S(last)
	S(src) S(container) S(container_id)
	I(conn) I(port) I(host_port) I(bytes_up) I(bytes_down) I(duration_ms) I(count)
#undef S
#undef I
	return F_NONE;
}

bool rec_is_followup(const struct rec *r)
{
	/* request: one per request head on an inspected connection, under
	 * the connection's own decision. */
	return r->event && (strcmp(r->event, "close") == 0 ||
			    strcmp(r->event, "resolve") == 0 ||
			    strcmp(r->event, "request") == 0);
}

enum rec_status rec_parse(const char *line, size_t len, struct rec *out,
			  char *scratch, size_t scratch_sz, const char **why)
{
	static const char *dummy;
	struct p p = {.s = line, .end = line + len, .out = scratch,
		      .out_end = scratch + scratch_sz, .why = why ? why : &dummy};
	enum rec_status st;
	memset(out, 0, sizeof(*out));
	out->conn = out->port = out->host_port = out->bytes_up = out->bytes_down =
		out->duration_ms = out->count = -1;
	out->time_ms = INT64_MIN;
	ws(&p);
	if (p.s >= p.end || *p.s != '{')
		return *p.why = "not a JSON object", REC_SYNTAX;
	p.s++;
	ws(&p);
	if (p.s < p.end && *p.s == '}') {
		p.s++;
		goto done;
	}
	for (;;) {
		ws(&p);
		if (p.s >= p.end || *p.s != '"')
			return *p.why = "expected a key", REC_SYNTAX;
		const char *k = p.s + 1, *kend;
		const char *key_dummy;
		/* Keys are matched raw: the proxy's keys need no escapes. */
		if ((st = string(&p, false, &key_dummy)) != REC_OK)
			return st;
		kend = p.s - 1;
		ws(&p);
		if (p.s >= p.end || *p.s != ':')
			return *p.why = "expected ':'", REC_SYNTAX;
		p.s++;
		ws(&p);
		if (p.s >= p.end)
			return *p.why = "missing value", REC_SYNTAX;
		const char **sp = NULL;
		int64_t *ip = NULL, iv;
		enum field f = lookup(out, k, (size_t)(kend - k), &sp, &ip);
		char c = *p.s;
		if (c == '"') {
			if ((st = string(&p, f == F_STR, sp ? sp : &key_dummy)) !=
			    REC_OK)
				return st;
			if (f == F_INT)
				return *p.why = "expected a number", REC_SYNTAX;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			if ((st = number(&p, &iv)) != REC_OK)
				return st;
			if (f == F_STR)
				return *p.why = "expected a string", REC_SYNTAX;
			if (f == F_INT)
				*ip = iv;
		} else if (word(&p, "true") || word(&p, "false") ||
			   word(&p, "null")) {
			if (f != F_NONE)
				return *p.why = "unexpected literal",
				       REC_SYNTAX;
		} else if (c == '{' || c == '[') {
			return *p.why = "nested values are not supported",
			       REC_SYNTAX;
		} else {
			return *p.why = "bad value", REC_SYNTAX;
		}
		ws(&p);
		if (p.s < p.end && *p.s == ',') {
			p.s++;
			continue;
		}
		if (p.s < p.end && *p.s == '}') {
			p.s++;
			break;
		}
		return *p.why = "expected ',' or '}'", REC_SYNTAX;
	}
done:
	ws(&p);
	if (p.s != p.end)
		return *p.why = "trailing bytes after the object", REC_SYNTAX;
	if (out->time)
		rfc3339_parse(out->time, strlen(out->time), &out->time_ms);
	return REC_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int rfc3339_parse(const char *s, size_t len, int64_t *ms)
{
	if (len < 20 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
	    s[16] != ':')
		return -EINVAL;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2),
	    h = digits(s + 11, 2), mi = digits(s + 14, 2),
	    se = digits(s + 17, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || se < 0 || se > 60)
		return -EINVAL;
	size_t i = 19;
	int64_t frac = 0;
	if (i < len && s[i] == '.') {
		int nd = 0;
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++)
			if (nd < 3)
				frac = frac * 10 + (s[i] - '0');
		if (nd == 0)
			return -EINVAL;
		for (; nd < 3; nd++)
			frac *= 10;
	}
	int64_t off = 0;
	if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') &&
		   s[i + 3] == ':') {
		int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -EINVAL;
		off = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
		i += 6;
	} else {
		return -EINVAL;
	}
	int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
		       h * 3600 + mi * 60 + se - off;
	*ms = secs * 1000 + frac;
	return 0;
}

void rfc3339_format(int64_t ms, char out[32])
{
	struct tm tm;
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int64_t frac = ms - (int64_t)t * 1000;
	if (!gmtime_r(&t, &tm)) {
		memcpy(out, "?", 2);
		return;
	}
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	out[n] = '.';
	out[n + 1] = (char)('0' + frac / 100);
	out[n + 2] = (char)('0' + frac / 10 % 10);
	out[n + 3] = (char)('0' + frac % 10);
	out[n + 4] = 'Z';
	out[n + 5] = '\0';
}
