/* HTTP/1.x request-head parser (RFC 9112 2-3, 5-6; RFC 9110 7.2, 9.3.6).
 *
 * Everything that two HTTP implementations might read differently is
 * refused rather than interpreted: the proxy and the upstream server must
 * agree on where this request ends and which host it is for. */
#include <string.h>

#include "http_req.h"

#define HOST_MAX 253

static enum http_status bad(struct http_request *out, const char *why)
{
	out->why = why;
	return HTTP_MALFORMED;
}

/* tchar from RFC 9110 5.6.2. */
static bool is_tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static bool span_ieq(const uint8_t *buf, struct http_span s, const char *str)
{
	size_t n = strlen(str);
	if (s.len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(buf[s.off + i]) != lower((uint8_t)str[i]))
			return false;
	return true;
}

static bool span_eq(const uint8_t *buf, struct http_span a, struct http_span b)
{
	return a.len == b.len && memcmp(buf + a.off, buf + b.off, a.len) == 0;
}

bool http_header_is(const uint8_t *buf, const struct http_header *h,
		    const char *name)
{
	return span_ieq(buf, h->name, name);
}

/* Only names a policy can match are accepted: letters, digits, '.', '-',
 * '_'. Percent-encoding, userinfo and the rest of reg-name's sub-delims
 * would let the proxy and the upstream see different hosts. */
static bool is_host_char(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* Parse "host[:port]" or "[v6]:port" at buf[off..off+n). */
static enum http_status parse_authority(const uint8_t *buf, size_t off,
					size_t n, bool port_required,
					struct http_span *host, uint16_t *port,
					struct http_request *out)
{
	const uint8_t *p = buf + off;
	size_t i = 0, hend;

	*port = 0;
	if (n == 0)
		return bad(out, "empty authority");
	if (memchr(p, '@', n))
		return bad(out, "userinfo ('@') in authority");
	if (p[0] == '[') {
		for (i = 1; i < n && p[i] != ']'; i++) {
			uint8_t c = p[i];
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			      (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
				return bad(out, "bad character in IPv6 literal");
		}
		if (i == n)
			return bad(out, "unterminated IPv6 literal");
		if (i == 1)
			return bad(out, "empty IPv6 literal");
		*host = (struct http_span){off + 1, i - 1};
		hend = i + 1;
	} else {
		while (i < n && p[i] != ':') {
			if (!is_host_char(p[i]))
				return bad(out, "bad character in host");
			i++;
		}
		if (i == 0)
			return bad(out, "empty host");
		if (i > HOST_MAX)
			return bad(out, "host longer than 253 bytes");
		*host = (struct http_span){off, i};
		hend = i;
	}
	if (hend == n) {
		if (port_required)
			return bad(out, "CONNECT target has no port");
		return HTTP_OK;
	}
	if (p[hend] != ':')
		return bad(out, "junk after IPv6 literal");
	if (hend + 1 == n)
		return bad(out, "empty port");
	if (n - hend - 1 > 5)
		return bad(out, "port longer than 5 digits");
	uint32_t v = 0;
	for (i = hend + 1; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return bad(out, "port is not a number");
		v = v * 10 + (uint32_t)(p[i] - '0');
	}
	if (v == 0 || v > 65535)
		return bad(out, "port out of range");
	*port = (uint16_t)v;
	return HTTP_OK;
}

static bool prefix_ieq(const uint8_t *p, size_t n, const char *pre)
{
	size_t k = strlen(pre);
	if (n < k)
		return false;
	for (size_t i = 0; i < k; i++)
		if (lower(p[i]) != (uint8_t)pre[i])
			return false;
	return true;
}

static enum http_status parse_target(const uint8_t *buf,
				     struct http_request *r)
{
	const uint8_t *p = buf + r->target.off;
	size_t n = r->target.len;
	bool options = r->method.len == 7 &&
		       memcmp(buf + r->method.off, "OPTIONS", 7) == 0;

	/* A fragment is never sent (RFC 9112 3.2); servers differ on it. */
	if (memchr(p, '#', n))
		return bad(r, "fragment in request-target");
	if (r->is_connect) {
		r->form = HTTP_FORM_AUTHORITY;
		r->has_target_host = true;
		return parse_authority(buf, r->target.off, n, true,
				       &r->target_host, &r->target_port, r);
	}
	if (n == 1 && p[0] == '*') {
		if (!options)
			return bad(r, "asterisk-form target without OPTIONS");
		r->form = HTTP_FORM_ASTERISK;
		return HTTP_OK;
	}
	if (p[0] == '/') {
		r->form = HTTP_FORM_ORIGIN;
		r->path = r->target;
		return HTTP_OK;
	}
	size_t skip;
	if (prefix_ieq(p, n, "http://")) {
		skip = 7;
	} else if (prefix_ieq(p, n, "https://")) {
		skip = 8;
		r->scheme_https = true;
	} else {
		return bad(r, "request-target is not origin, absolute "
			      "(http/https), authority or asterisk form");
	}
	size_t a = skip;
	while (a < n && p[a] != '/' && p[a] != '?')
		a++;
	r->form = HTTP_FORM_ABSOLUTE;
	r->has_target_host = true;
	r->path = (struct http_span){r->target.off + a, n - a};
	return parse_authority(buf, r->target.off + skip, a - skip, false,
			       &r->target_host, &r->target_port, r);
}

/* The request line at buf[start..eol): method SP request-target SP
 * HTTP-version (RFC 9112 3). The method is any token (RFC 9110 9.1:
 * case-sensitive, so "get" is a method of its own, not GET). */
static enum http_status parse_request_line(const uint8_t *buf, size_t start,
					   size_t eol, struct http_request *r)
{
	size_t i = start;

	while (i < eol && is_tchar(buf[i]))
		i++;
	r->method = (struct http_span){start, i - start};
	if (i == start)
		return bad(r, "request line does not start with a method token");
	if (i == eol)
		return bad(r, "request line has no target");
	if (buf[i] != ' ')
		return bad(r, "method is not a token followed by one space");
	size_t t = ++i;
	while (i < eol && buf[i] != ' ') {
		/* Visible ASCII only: raw spaces, controls and bytes >= 0x80
		 * in a target are read differently by different servers. */
		if (buf[i] <= 0x20 || buf[i] >= 0x7f)
			return bad(r, "control, space or non-ASCII byte in "
				      "request-target");
		i++;
	}
	if (i == t)
		return bad(r, "empty request-target (double space?)");
	r->target = (struct http_span){t, i - t};
	if (i == eol)
		return bad(r, "request line has no HTTP version");
	size_t v = i + 1;
	r->version = (struct http_span){v, eol - v};
	/* "PRI * HTTP/2.0" starts the HTTP/2 connection preface (RFC 9113
	 * 3.4): not HTTP/1, so nothing here can check its :authority. */
	if (r->method.len == 3 && memcmp(buf + start, "PRI", 3) == 0 &&
	    r->target.len == 1 && buf[t] == '*' && eol - v == 8 &&
	    memcmp(buf + v, "HTTP/2.0", 8) == 0) {
		r->h2_preface = true;
		return bad(r, "HTTP/2 prior-knowledge preface (PRI * HTTP/2.0)");
	}
	if (eol - v != 8 || memcmp(buf + v, "HTTP/1.", 7) != 0 ||
	    (buf[v + 7] != '0' && buf[v + 7] != '1'))
		return bad(r, "HTTP version is not HTTP/1.0 or HTTP/1.1");
	r->http10 = buf[v + 7] == '0';
	r->is_connect = r->method.len == 7 &&
			memcmp(buf + start, "CONNECT", 7) == 0;
	return parse_target(buf, r);
}

/* Decide from the first bytes of the request line whether this can be an
 * HTTP request at all: a method token, then a space. */
static enum http_status sniff_method(const uint8_t *buf, size_t start,
				     size_t len, struct http_request *out)
{
	if (start == len)
		return HTTP_INCOMPLETE;
	/* RFC 9112 2.2 lets a server read "SP GET ..." leniently; the proxy
	 * refuses it instead of guessing which way the server reads it. */
	if (buf[start] == ' ' || buf[start] == '\t')
		return bad(out, "request line starts with a space or tab");
	for (size_t i = start; i < len; i++) {
		if (buf[i] == ' ' && i > start)
			return HTTP_OK;
		if (!is_tchar(buf[i]))
			break;
		if (i + 1 == len)
			return HTTP_INCOMPLETE;
	}
	out->why = "does not start with a method token and a space";
	return HTTP_NOT_HTTP;
}

/* Every byte some server's request-line reader takes for a blank (Apache
 * splits on isspace()): SP, HT, VT, FF, CR. */
static bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

enum http_looks http_request_looks(const uint8_t *buf, size_t len)
{
	size_t i = 0;

	/* Whatever blank lines or blanks a lenient server would skip. */
	while (i < len && (buf[i] == '\n' || is_ws(buf[i])))
		i++;
	size_t m = i;
	while (i < len && is_tchar(buf[i]))
		i++;
	if (i == len)
		return HTTP_LOOKS_MAYBE;
	if (i == m || !is_ws(buf[i]))
		return HTTP_LOOKS_NO;
	/* The line's end decides: an HTTP/x version after a blank anywhere
	 * in it (some servers take spaces into the target) makes it HTTP. */
	for (; i < len && buf[i] != '\n'; i++) {
		if (!is_ws(buf[i]))
			continue;
		size_t k = 0;
		while (k < 5 && i + 1 + k < len &&
		       lower(buf[i + 1 + k]) == (uint8_t)"http/"[k])
			k++;
		if (k == 5)
			return HTTP_LOOKS_YES;
	}
	return i == len ? HTTP_LOOKS_MAYBE : HTTP_LOOKS_NO;
}

/* Find the end of the head (CRLF CRLF) and refuse any CR or LF that is not
 * part of a CRLF pair. The head starts at start (after skipped empty
 * lines). Sets *head_len, or returns INCOMPLETE/TOO_LARGE. */
static enum http_status find_head_end(const uint8_t *buf, size_t start,
				      size_t len, size_t *head_len,
				      struct http_request *out)
{
	size_t line_start = start;
	size_t lim = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;

	for (size_t i = start; i < lim; i++) {
		if (buf[i] == '\n')
			return bad(out, "bare LF");
		if (buf[i] != '\r')
			continue;
		if (i + 1 == len)
			return HTTP_INCOMPLETE;
		if (buf[i + 1] != '\n')
			return bad(out, "bare CR");
		if (i == line_start) {
			*head_len = i + 2;
			if (*head_len > HTTP_HEAD_MAX)
				break;
			return HTTP_OK;
		}
		i++;
		line_start = i + 1;
	}
	if (len < HTTP_HEAD_MAX)
		return HTTP_INCOMPLETE;
	out->why = "request head larger than HTTP_HEAD_MAX";
	return HTTP_TOO_LARGE;
}

struct hdr_state {
	unsigned host_count;
	bool has_cl, has_te, keep_alive;
	struct http_span cl_value;
};

static enum http_status parse_content_length(const uint8_t *buf,
					     struct http_header *h,
					     struct hdr_state *s,
					     struct http_request *r)
{
	if (h->value.len == 0)
		return bad(r, "empty Content-Length");
	if (s->has_cl) {
		if (!span_eq(buf, s->cl_value, h->value))
			return bad(r, "differing duplicate Content-Length");
		return HTTP_OK;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < h->value.len; i++) {
		uint8_t c = buf[h->value.off + i];
		if (c < '0' || c > '9')
			return bad(r, "Content-Length is not digits only");
		if (v > (UINT64_MAX - 9) / 10)
			return bad(r, "Content-Length overflows");
		v = v * 10 + (uint64_t)(c - '0');
	}
	s->has_cl = true;
	s->cl_value = h->value;
	r->content_length = v;
	return HTTP_OK;
}

/* Walk a comma-separated list, calling back for each trimmed element. */
static void each_token(const uint8_t *buf, struct http_span v,
		       void (*fn)(const uint8_t *, struct http_span, void *),
		       void *arg)
{
	size_t i = v.off, end = v.off + v.len;
	while (i < end) {
		while (i < end && (buf[i] == ' ' || buf[i] == '\t' ||
				   buf[i] == ','))
			i++;
		size_t s = i;
		while (i < end && buf[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
			e--;
		if (e > s)
			fn(buf, (struct http_span){s, e - s}, arg);
	}
}

struct conn_opts {
	bool close, keep_alive;
};

static void connection_token(const uint8_t *buf, struct http_span t, void *arg)
{
	struct conn_opts *o = arg;
	if (span_ieq(buf, t, "close"))
		o->close = true;
	else if (span_ieq(buf, t, "keep-alive"))
		o->keep_alive = true;
}

/* "h2c" (RFC 7540 3.2), alone or with a version suffix as some clients
 * write protocol-version. */
static void upgrade_token(const uint8_t *buf, struct http_span t, void *arg)
{
	struct http_span name = t;
	for (size_t i = 0; i < t.len; i++)
		if (buf[t.off + i] == '/')
			name.len = i;
	if (span_ieq(buf, name, "h2c"))
		*(bool *)arg = true;
}

static enum http_status parse_header_line(const uint8_t *buf, size_t s,
					  size_t eol, struct hdr_state *st,
					  struct http_request *r)
{
	size_t i = s;

	if (buf[s] == ' ' || buf[s] == '\t')
		return bad(r, "obs-fold (header line starting with whitespace)");
	while (i < eol && is_tchar(buf[i]))
		i++;
	if (i == eol)
		return bad(r, "header line without a colon");
	if (buf[i] == ' ' || buf[i] == '\t')
		return bad(r, "whitespace before the colon in a header");
	if (buf[i] != ':')
		return bad(r, "bad character in header name");
	if (i == s)
		return bad(r, "empty header name");
	if (r->nheaders == HTTP_MAX_HEADERS) {
		r->why = "more than HTTP_MAX_HEADERS headers";
		return HTTP_TOO_LARGE;
	}
	struct http_header *h = &r->headers[r->nheaders++];
	h->name = (struct http_span){s, i - s};
	size_t vs = i + 1, ve = eol;
	for (size_t k = vs; k < ve; k++) {
		uint8_t c = buf[k];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return bad(r, "control character in header value");
	}
	while (vs < ve && (buf[vs] == ' ' || buf[vs] == '\t'))
		vs++;
	while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
		ve--;
	h->value = (struct http_span){vs, ve - vs};

	if (http_header_is(buf, h, "host")) {
		if (++st->host_count > 1)
			return bad(r, "duplicate Host header");
		r->has_host = true;
		return parse_authority(buf, h->value.off, h->value.len, false,
				       &r->host, &r->host_port, r);
	}
	if (http_header_is(buf, h, "content-length"))
		return parse_content_length(buf, h, st, r);
	if (http_header_is(buf, h, "transfer-encoding")) {
		/* Only exactly one "chunked": any other coding, a list, or a
		 * repeated header means we could not find the body's end the
		 * way the server will. */
		if (st->has_te)
			return bad(r, "more than one Transfer-Encoding header");
		st->has_te = true;
		if (!span_ieq(buf, h->value, "chunked"))
			return bad(r, "Transfer-Encoding other than exactly "
				      "\"chunked\"");
		return HTTP_OK;
	}
	if (http_header_is(buf, h, "connection")) {
		struct conn_opts o = {false, false};
		each_token(buf, h->value, connection_token, &o);
		r->close = r->close || o.close;
		st->keep_alive = st->keep_alive || o.keep_alive;
		return HTTP_OK;
	}
	if (http_header_is(buf, h, "upgrade")) {
		r->upgrade = true;
		bool h2c = false;
		each_token(buf, h->value, upgrade_token, &h2c);
		r->upgrade_h2c = r->upgrade_h2c || h2c;
	}
	return HTTP_OK;
}

enum http_status http_request_parse(const uint8_t *buf, size_t len,
				    struct http_request *out)
{
	struct hdr_state st;
	size_t head_len = 0;
	enum http_status rc;

	memset(out, 0, sizeof(*out));
	memset(&st, 0, sizeof(st));
	/* RFC 9112 2.2: servers ignore at least one empty line before the
	 * request line, so the request is what follows them (a request hidden
	 * behind a CRLF is still checked). Bare LF lines are refused below. */
	size_t start = 0;
	while (start + 2 <= len && buf[start] == '\r' && buf[start + 1] == '\n') {
		if (start + 2 > HTTP_HEAD_MAX) {
			out->why = "request head larger than HTTP_HEAD_MAX";
			return HTTP_TOO_LARGE;
		}
		start += 2;
		out->leading_empty_lines++;
	}
	if (start + 1 == len && buf[start] == '\r')
		return HTTP_INCOMPLETE;
	rc = sniff_method(buf, start, len, out);
	if (rc != HTTP_OK)
		return rc;
	rc = find_head_end(buf, start, len, &head_len, out);
	if (rc != HTTP_OK)
		return rc;

	/* find_head_end guaranteed every line ends in CRLF. */
	const uint8_t *nl = memchr(buf + start, '\n', head_len - start);
	size_t eol = (size_t)(nl - buf) - 1;
	rc = parse_request_line(buf, start, eol, out);
	if (rc != HTTP_OK)
		return rc;
	size_t s = eol + 2;
	while (s < head_len - 2) {
		nl = memchr(buf + s, '\n', head_len - s);
		eol = (size_t)(nl - buf) - 1;
		rc = parse_header_line(buf, s, eol, &st, out);
		if (rc != HTTP_OK)
			return rc;
		s = eol + 2;
	}

	if (!out->http10 && st.host_count == 0)
		return bad(out, "HTTP/1.1 request without Host");
	if (st.has_te && st.has_cl)
		return bad(out, "both Content-Length and Transfer-Encoding");
	if (st.has_te && out->http10)
		return bad(out, "Transfer-Encoding in an HTTP/1.0 request");
	if (st.has_te)
		out->body = HTTP_BODY_CHUNKED;
	else if (st.has_cl)
		out->body = HTTP_BODY_LENGTH;
	if (out->http10 && !st.keep_alive)
		out->close = true;
	out->head_len = head_len;
	return HTTP_OK;
}

/* Chunked framing (RFC 9112 7.1). States of http_chunked.state: */
enum {
	CH_SIZE0 = 0, /* at the start of a chunk-size line: a hex digit */
	CH_SIZE,      /* more hex digits, ';' or CR */
	CH_EXT,       /* chunk-ext up to CR */
	CH_SIZE_LF,   /* LF ending the chunk-size line */
	CH_DATA,      /* remaining bytes of chunk data */
	CH_DATA_CR,   /* CR after chunk data */
	CH_DATA_LF,   /* LF after chunk data */
	CH_TRAILER0,  /* start of a trailer line, or CR of the final CRLF */
	CH_TNAME,     /* trailer field name up to ':' */
	CH_TVALUE,    /* trailer field value up to CR */
	CH_TRAILER_LF,
	CH_FINAL_LF,
	CH_DONE,
};

#define CHUNK_SIZE_MAX (1ULL << 62)
#define CHUNK_LINE_MAX 4096

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

enum http_chunked_status http_chunked_scan(struct http_chunked *st,
					   const uint8_t *buf, size_t len,
					   size_t *used)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = buf[i];
		int h;

		if (st->state == CH_DATA) {
			size_t n = len - i;
			if ((uint64_t)n > st->remaining)
				n = (size_t)st->remaining;
			st->remaining -= n;
			i += n;
			if (st->remaining == 0)
				st->state = CH_DATA_CR;
			continue;
		}
		if (st->state == CH_DONE)
			break;
		/* Every line other than data is bounded: a size line of
		 * endless zeros or an endless trailer must not be buffered. */
		if (++st->line_len > CHUNK_LINE_MAX)
			goto bad;
		switch (st->state) {
		case CH_SIZE0:
		case CH_SIZE:
			h = hexval(c);
			if (h >= 0) {
				if (st->remaining > (CHUNK_SIZE_MAX >> 4))
					goto bad;
				st->remaining = st->remaining << 4 | (uint64_t)h;
				if (st->remaining > CHUNK_SIZE_MAX)
					goto bad;
				st->state = CH_SIZE;
			} else if (st->state == CH_SIZE0) {
				goto bad;
			} else if (c == ';') {
				st->state = CH_EXT;
			} else if (c == '\r') {
				st->state = CH_SIZE_LF;
			} else {
				goto bad;
			}
			break;
		case CH_EXT:
			if (c == '\r')
				st->state = CH_SIZE_LF;
			else if ((c < 0x20 && c != '\t') || c == 0x7f)
				goto bad;
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				goto bad;
			st->line_len = 0;
			st->state = st->remaining ? CH_DATA : CH_TRAILER0;
			break;
		case CH_DATA_CR:
			if (c != '\r')
				goto bad;
			st->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (c != '\n')
				goto bad;
			st->line_len = 0;
			st->state = CH_SIZE0;
			break;
		case CH_TRAILER0:
			if (c == '\r') {
				st->state = CH_FINAL_LF;
			} else if (is_tchar(c)) {
				st->state = CH_TNAME;
			} else {
				goto bad; /* obs-fold or junk */
			}
			break;
		case CH_TNAME:
			if (c == ':')
				st->state = CH_TVALUE;
			else if (!is_tchar(c))
				goto bad;
			break;
		case CH_TVALUE:
			if (c == '\r')
				st->state = CH_TRAILER_LF;
			else if ((c < 0x20 && c != '\t') || c == 0x7f)
				goto bad;
			break;
		case CH_TRAILER_LF:
			if (c != '\n')
				goto bad;
			st->line_len = 0;
			st->state = CH_TRAILER0;
			break;
		case CH_FINAL_LF:
			if (c != '\n')
				goto bad;
			st->state = CH_DONE;
			*used = i + 1;
			return HTTP_CHUNKED_DONE;
		default:
			goto bad;
		}
		i++;
	}
	*used = i;
	return st->state == CH_DONE ? HTTP_CHUNKED_DONE : HTTP_CHUNKED_MORE;
bad:
	*used = i;
	return HTTP_CHUNKED_BAD;
}
