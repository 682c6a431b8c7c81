/* Fuzz the HTTP request-head parser and the chunked scanner. Invariants:
 * head_len <= len and ends in CRLFCRLF; every span lies inside the head;
 * MALFORMED/TOO_LARGE/NOT_HTTP carry a why; a host span holds only bytes
 * the parser promises; a head the parser accepts (or the HTTP/2 preface)
 * is one http_request_looks() calls HTTP; the method follows exactly the
 * skipped empty lines; the chunked scanner's *used never exceeds its input
 * and feeding the body in two pieces ends at the same place as in one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../parse/http_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void span_in(struct http_span s, size_t lim)
{
	if (s.off > lim || s.len > lim - s.off)
		abort();
}

static void host_ok(const uint8_t *b, struct http_span s)
{
	for (size_t i = 0; i < s.len; i++) {
		uint8_t c = b[s.off + i];
		if (c <= 0x20 || c >= 0x7f || c == '@' || c == '/' || c == '[' ||
		    c == ']')
			abort();
	}
	if (s.len == 0)
		abort();
}

static void chunked(const uint8_t *b, size_t len)
{
	struct http_chunked one = {0}, two = {0};
	size_t used1 = 0, ua = 0, ub = 0;
	enum http_chunked_status s1 = http_chunked_scan(&one, b, len, &used1);
	if (used1 > len || (s1 == HTTP_CHUNKED_MORE && used1 != len))
		abort();
	if (s1 == HTTP_CHUNKED_BAD)
		return;
	size_t cut = len / 2;
	enum http_chunked_status s2 = http_chunked_scan(&two, b, cut, &ua);
	if (ua > cut)
		abort();
	if (s2 == HTTP_CHUNKED_MORE) {
		s2 = http_chunked_scan(&two, b + cut, len - cut, &ub);
		if (ub > len - cut)
			abort();
		ua = cut + ub;
	}
	if (s2 != s1 || (s1 == HTTP_CHUNKED_DONE && ua != used1))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_request r;
	enum http_status st = http_request_parse(data, size, &r);
	enum http_looks lk = http_request_looks(data, size);

	if (st > HTTP_TOO_LARGE || lk > HTTP_LOOKS_YES)
		abort();
	/* Whatever the strict parser accepts, the classifier must call HTTP:
	 * otherwise a real request could pass as opaque TCP unchecked. */
	if ((st == HTTP_OK || r.h2_preface) && lk != HTTP_LOOKS_YES)
		abort();
	if (r.h2_preface && st != HTTP_MALFORMED)
		abort();
	if (st != HTTP_OK && st != HTTP_INCOMPLETE && !r.why)
		abort();
	if (st != HTTP_OK) {
		/* Treat the input as a body, too. */
		chunked(data, size);
		return 0;
	}
	size_t h = r.head_len;
	if (h > size || h < 4 || h > HTTP_HEAD_MAX ||
	    memcmp(data + h - 4, "\r\n\r\n", 4) != 0)
		abort();
	span_in(r.method, h);
	if (r.method.len == 0 || r.method.off != 2 * (size_t)r.leading_empty_lines)
		abort();
	span_in(r.target, h);
	span_in(r.version, h);
	span_in(r.path, h);
	if (r.nheaders > HTTP_MAX_HEADERS)
		abort();
	for (size_t i = 0; i < r.nheaders; i++) {
		span_in(r.headers[i].name, h);
		span_in(r.headers[i].value, h);
		if (r.headers[i].name.len == 0)
			abort();
		if (memchr(data + r.headers[i].value.off, '\n',
			   r.headers[i].value.len))
			abort();
	}
	if (r.has_target_host) {
		span_in(r.target_host, h);
		host_ok(data, r.target_host);
	}
	if (r.has_host) {
		span_in(r.host, h);
		host_ok(data, r.host);
	}
	if (!r.http10 && !r.has_host)
		abort();
	if (r.is_connect && (r.form != HTTP_FORM_AUTHORITY || r.target_port == 0))
		abort();
	if (r.body == HTTP_BODY_CHUNKED)
		chunked(data + h, size - h);
	return 0;
}
