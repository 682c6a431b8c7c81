/* HTTP/1 request-head parser and chunked scanner: captured curl requests,
 * every prefix, target forms, and the request-smuggling cases. */
#include <string.h>

#include "../../common/util.h"
#include "../../parse/http_req.h"
#include "corpus.h"
#include "tap.h"

static struct http_request r;

static enum http_status P(const char *s)
{
	return http_request_parse((const uint8_t *)s, strlen(s), &r);
}

static bool span_is(const char *buf, struct http_span s, const char *want)
{
	return s.len == strlen(want) && memcmp(buf + s.off, want, s.len) == 0;
}

static void captured(void)
{
	static const struct {
		const char *file;
		enum http_target_form form;
		const char *host;
		enum http_body body;
	} cases[] = {
		{"curl_get", HTTP_FORM_ORIGIN, "127.0.0.1", HTTP_BODY_NONE},
		{"curl_http10", HTTP_FORM_ORIGIN, "127.0.0.1", HTTP_BODY_NONE},
		{"curl_proxy_absolute", HTTP_FORM_ABSOLUTE, "example.test", HTTP_BODY_NONE},
		{"curl_proxy_connect", HTTP_FORM_AUTHORITY, "example.test", HTTP_BODY_NONE},
		{"curl_post", HTTP_FORM_ORIGIN, "127.0.0.1", HTTP_BODY_LENGTH},
		{"curl_chunked", HTTP_FORM_ORIGIN, "127.0.0.1", HTTP_BODY_CHUNKED},
		{"curl_options", HTTP_FORM_ASTERISK, "127.0.0.1", HTTP_BODY_NONE},
		{"curl_ipv6_proxy", HTTP_FORM_ABSOLUTE, "::1", HTTP_BODY_NONE},
	};
	static char buf[8192];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len = corpus_load_str("http_req", cases[i].file, buf,
					     sizeof(buf));
		const uint8_t *b = (const uint8_t *)buf;
		is_int(http_request_parse(b, len, &r), HTTP_OK, "%s parses",
		       cases[i].file);
		is_int(r.form, cases[i].form, "%s target form", cases[i].file);
		is_int(r.body, cases[i].body, "%s body framing", cases[i].file);
		struct http_span host = r.has_target_host ? r.target_host : r.host;
		ok(span_is(buf, host, cases[i].host), "%s host is %s",
		   cases[i].file, cases[i].host);
		ok(r.head_len <= len && memcmp(buf + r.head_len - 4, "\r\n\r\n", 4) == 0,
		   "%s head_len ends at the blank line", cases[i].file);
		size_t head = r.head_len;
		bool inc = true;
		for (size_t k = 0; k < head; k++) {
			enum http_status st = http_request_parse(b, k, &r);
			if (st != HTTP_INCOMPLETE) {
				tap_diag("prefix %zu: %d %s", k, st, r.why);
				inc = false;
			}
		}
		ok(inc, "%s: every prefix of the head is INCOMPLETE", cases[i].file);
		if (cases[i].body == HTTP_BODY_CHUNKED) {
			struct http_chunked ch = {0};
			size_t used = 0;
			is_int(http_chunked_scan(&ch, b + head, len - head, &used),
			       HTTP_CHUNKED_DONE, "%s: curl's chunked body ends",
			       cases[i].file);
			is_int(used, len - head, "... exactly at the end");
		}
	}
	corpus_load_str("http_req", "curl_proxy_connect", buf, sizeof(buf));
	P(buf);
	ok(r.is_connect && r.target_port == 8443, "CONNECT example.test:8443");
	corpus_load_str("http_req", "curl_http10", buf, sizeof(buf));
	P(buf);
	ok(r.http10 && r.close, "HTTP/1.0 without keep-alive closes");
	corpus_load_str("http_req", "curl_post", buf, sizeof(buf));
	P(buf);
	is_int(r.content_length, 11, "curl POST Content-Length");
}

static void bad(const char *req, const char *why, const char *what)
{
	is_int(P(req), HTTP_MALFORMED, "%s: MALFORMED", what);
	is_str(r.why, why, "%s: why", what);
}

static void forms(void)
{
	const char *s = "GET http://Example.COM:8080/a/b?c HTTP/1.1\r\nHost: example.com:8080\r\n\r\n";
	is_int(P(s), HTTP_OK, "absolute form");
	ok(span_is(s, r.target_host, "Example.COM") && r.target_port == 8080 &&
	   span_is(s, r.path, "/a/b?c") && !r.scheme_https,
	   "absolute form host, port, path");
	s = "GET HTTPS://x.test HTTP/1.1\r\nHost: x.test\r\n\r\n";
	is_int(P(s), HTTP_OK, "https absolute form with empty path");
	ok(r.scheme_https && r.path.len == 0 && r.target_port == 0,
	   "https scheme, no port, empty path");
	s = "GET http://[2001:db8::1]:81/ HTTP/1.1\r\nHost: [2001:db8::1]:81\r\n\r\n";
	is_int(P(s), HTTP_OK, "IPv6 literal");
	ok(span_is(s, r.target_host, "2001:db8::1") && r.target_port == 81 &&
	   span_is(s, r.host, "2001:db8::1") && r.host_port == 81,
	   "IPv6 host without brackets in both spans");
	s = "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n";
	is_int(P(s), HTTP_OK, "CONNECT to an IPv6 literal");
	ok(r.is_connect && r.form == HTTP_FORM_AUTHORITY && r.target_port == 443,
	   "CONNECT authority form");
	is_int(P("GET / HTTP/1.0\r\n\r\n"), HTTP_OK, "HTTP/1.0 needs no Host");
	is_int(P("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), HTTP_OK,
	       "HTTP/1.0 keep-alive");
	ok(!r.close, "HTTP/1.0 with keep-alive stays open");
	is_int(P("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\nUpgrade: websocket\r\n\r\n"),
	       HTTP_OK, "Connection list");
	ok(r.close && r.upgrade, "close found in a list; Upgrade noted");
	is_int(P("GET / HTTP/1.1\r\nHost: a\r\nX: \x80\xff\r\n\r\n"), HTTP_OK,
	       "obs-text in a value is allowed");
	is_int(P("M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_OK,
	       "method with '-'");

	bad("GET http://u@evil.test/ HTTP/1.1\r\nHost: a\r\n\r\n",
	    "userinfo ('@') in authority", "userinfo");
	bad("GET http://a:b@evil.test/ HTTP/1.1\r\nHost: a\r\n\r\n",
	    "userinfo ('@') in authority", "user:password");
	bad("GET ftp://x/ HTTP/1.1\r\nHost: a\r\n\r\n",
	    "request-target is not origin, absolute (http/https), authority or asterisk form",
	    "ftp scheme");
	bad("GET x.test:443 HTTP/1.1\r\nHost: a\r\n\r\n",
	    "request-target is not origin, absolute (http/https), authority or asterisk form",
	    "authority form without CONNECT");
	bad("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", "bad character in host",
	    "CONNECT with origin form");
	bad("CONNECT x.test HTTP/1.1\r\nHost: a\r\n\r\n",
	    "CONNECT target has no port", "CONNECT without port");
	bad("GET * HTTP/1.1\r\nHost: a\r\n\r\n",
	    "asterisk-form target without OPTIONS", "asterisk with GET");
	bad("GET http://x:0/ HTTP/1.1\r\nHost: a\r\n\r\n", "port out of range", "port 0");
	bad("GET http://x:65536/ HTTP/1.1\r\nHost: a\r\n\r\n", "port out of range",
	    "port 65536");
	bad("GET http://x:123456/ HTTP/1.1\r\nHost: a\r\n\r\n",
	    "port longer than 5 digits", "long port");
	bad("GET http://x:/ HTTP/1.1\r\nHost: a\r\n\r\n", "empty port", "empty port");
	bad("GET http://x:8a/ HTTP/1.1\r\nHost: a\r\n\r\n", "port is not a number",
	    "port letters");
	bad("GET http:/// HTTP/1.1\r\nHost: a\r\n\r\n", "empty authority",
	    "empty authority");
	bad("GET http://a%2eb/ HTTP/1.1\r\nHost: a\r\n\r\n", "bad character in host",
	    "percent-encoded host");
	bad("GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n",
	    "unterminated IPv6 literal", "unterminated IPv6");
	bad("GET http://[]/ HTTP/1.1\r\nHost: a\r\n\r\n", "empty IPv6 literal",
	    "empty IPv6");
	bad("GET http://[::1%25eth0]/ HTTP/1.1\r\nHost: a\r\n\r\n",
	    "bad character in IPv6 literal", "IPv6 zone id");
	bad("GET http://[::1]x/ HTTP/1.1\r\nHost: a\r\n\r\n",
	    "junk after IPv6 literal", "junk after IPv6");
	bad("GET http://x/#f HTTP/1.1\r\nHost: a\r\n\r\n", "fragment in request-target",
	    "fragment");
	bad("GET http://x#f HTTP/1.1\r\nHost: a\r\n\r\n", "fragment in request-target",
	    "fragment in authority");
	bad("GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	    "HTTP version is not HTTP/1.0 or HTTP/1.1", "HTTP/2.0");
	bad("GET / http/1.1\r\nHost: a\r\n\r\n",
	    "HTTP version is not HTTP/1.0 or HTTP/1.1", "lower-case version");
	bad("GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	    "empty request-target (double space?)", "double space");
	bad("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
	    "control, space or non-ASCII byte in request-target", "control in target");
	bad("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
	    "control, space or non-ASCII byte in request-target", "UTF-8 in target");
	bad("GET /\r\nHost: a\r\n\r\n", "request line has no HTTP version", "HTTP/0.9");
	bad("GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	    "HTTP version is not HTTP/1.0 or HTTP/1.1", "trailing space");
	bad("GET \r\nHost: a\r\n\r\n", "empty request-target (double space?)",
	    "no target");
}

static void headers(void)
{
	bad("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 request without Host", "no Host");
	bad("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "duplicate Host header",
	    "duplicate Host");
	bad("GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n", "duplicate Host header",
	    "duplicate Host, other case");
	bad("GET / HTTP/1.1\r\nHost:\r\n\r\n", "empty authority", "empty Host");
	bad("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "bad character in host",
	    "space in Host");
	bad("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", "userinfo ('@') in authority",
	    "userinfo in Host");
	bad("GET / HTTP/1.1\r\nHost : a\r\n\r\n",
	    "whitespace before the colon in a header", "space before colon");
	bad("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",
	    "whitespace before the colon in a header", "tab before colon");
	bad("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
	    "obs-fold (header line starting with whitespace)", "obs-fold");
	bad("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", "bare CR", "bare CR");
	bad("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "bare LF", "bare LF");
	bad("GET / HTTP/1.1\nHost: a\n\n", "bare LF", "LF-only line endings");
	is_int(http_request_parse((const uint8_t *)"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
				  36, &r),
	       HTTP_MALFORMED, "NUL in a value");
	is_str(r.why, "control character in header value", "NUL: why");
	bad("GET / HTTP/1.1\r\nHost: a\r\nX: a\x1b" "b\r\n\r\n",
	    "control character in header value", "ESC in value");
	bad("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n",
	    "control character in header value", "DEL in value");
	bad("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
	    "header line without a colon", "no colon");
	bad("GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", "empty header name",
	    "empty name");
	bad("GET / HTTP/1.1\r\nHost: a\r\nX(y): v\r\n\r\n",
	    "bad character in header name", "non-token name");

	/* Too many headers. */
	static char big[HTTP_HEAD_MAX + 64];
	size_t n = 0;
	fmt_append(big, sizeof(big), &n, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < HTTP_MAX_HEADERS; i++)
		fmt_append(big, sizeof(big), &n, "X%d: y\r\n", i);
	fmt_append(big, sizeof(big), &n, "\r\n");
	is_int(P(big), HTTP_TOO_LARGE, "129 headers is TOO_LARGE");
	/* A head that never ends. */
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "GET /", 5);
	big[sizeof(big) - 1] = '\0';
	is_int(P(big), HTTP_TOO_LARGE, "head over HTTP_HEAD_MAX is TOO_LARGE");
	is_int(http_request_parse((const uint8_t *)big, HTTP_HEAD_MAX - 1, &r),
	       HTTP_INCOMPLETE, "... and INCOMPLETE just below the limit");

	/* NOT_HTTP is decided from the first bytes. */
	is_int(P("\x16\x03\x01"), HTTP_NOT_HTTP, "TLS is NOT_HTTP");
	is_int(P("SSH-2.0-OpenSSH\r\n"), HTTP_NOT_HTTP,
	       "SSH banner is NOT_HTTP");
	is_int(P("SSH-2.0-OpenSSH"), HTTP_INCOMPLETE,
	       "a token without its end is INCOMPLETE");
	is_int(P("G"), HTTP_INCOMPLETE, "one letter is INCOMPLETE");
	is_int(P("GET"), HTTP_INCOMPLETE, "GET without space is INCOMPLETE");
	is_int(P(""), HTTP_INCOMPLETE, "nothing is INCOMPLETE");
}

/* Issue 8: read the head as a server would (RFC 9112 2.2, RFC 9110 9.1),
 * then check it. */
static void server_reading(void)
{
	is_int(P("\r\nGET / HTTP/1.1\r\nHost: denied.example\r\n\r\n"),
	       HTTP_OK, "a leading empty line is skipped");
	ok(r.leading_empty_lines == 1, "... and counted");
	ok(span_is("\r\nGET / HTTP/1.1\r\nHost: denied.example\r\n\r\n",
		   r.host, "denied.example"),
	   "... and the Host behind it is seen");
	ok(r.head_len == 42, "... head_len covers the empty line (%zu)",
	   r.head_len);
	is_int(P("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_OK,
	       "three leading empty lines are skipped");
	ok(r.leading_empty_lines == 3, "... and counted (%u)",
	   r.leading_empty_lines);
	is_int(P("\r\n"), HTTP_INCOMPLETE, "only an empty line: INCOMPLETE");
	is_int(P("\r"), HTTP_INCOMPLETE, "a lone CR: INCOMPLETE");
	is_int(P("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_NOT_HTTP,
	       "a leading bare LF is refused");
	bad(" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	    "request line starts with a space or tab", "leading space");
	bad("\tGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	    "request line starts with a space or tab", "leading tab");
	bad("\r\n GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	    "request line starts with a space or tab",
	    "empty line, then a leading space");

	is_int(P("get / HTTP/1.1\r\nHost: denied.example\r\n\r\n"), HTTP_OK,
	       "a lower-case method is a method (tchar token)");
	ok(span_is("get / HTTP/1.1\r\nHost: denied.example\r\n\r\n", r.host,
		   "denied.example"),
	   "... and its Host is seen");
	is_int(P("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_MALFORMED,
	       "asterisk target only with OPTIONS");
	is_int(P("X!#$%&'*+.^_`|~1 / HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_OK,
	       "every tchar is a method character");
	is_int(P("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMN / HTTP/1.1\r\n"
		 "Host: a\r\n\r\n"),
	       HTTP_OK, "a 40-letter method is a method");
	ok(!r.is_connect, "... not CONNECT");
	is_int(P("connect a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_MALFORMED,
	       "lower-case connect is not CONNECT: authority form refused");
	is_int(P("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_NOT_HTTP,
	       "a tab after the method is not a request line");
	bad("GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	    "HTTP version is not HTTP/1.0 or HTTP/1.1", "space after version");
	bad("GET / http/1.1\r\nHost: a\r\n\r\n",
	    "HTTP version is not HTTP/1.0 or HTTP/1.1", "lower-case version");

	is_int(P("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), HTTP_MALFORMED,
	       "HTTP/2 preface is not HTTP/1");
	ok(r.h2_preface, "... and is flagged as the HTTP/2 preface");
	is_int(P("PRI / HTTP/2.0\r\n\r\n"), HTTP_MALFORMED,
	       "other HTTP/2.0 lines are refused");
	ok(!r.h2_preface, "... and are not the preface");

	is_int(P("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket, h2c\r\n\r\n"),
	       HTTP_OK, "Upgrade with h2c in a list");
	ok(r.upgrade && r.upgrade_h2c, "... is flagged h2c");
	is_int(P("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"),
	       HTTP_OK, "Upgrade: websocket");
	ok(r.upgrade && !r.upgrade_h2c, "... is not h2c");

	/* Host on what the server acts on. */
	bad("GET http://allowed.example/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	    "duplicate Host header", "duplicate Host behind an absolute URI");
	bad("GET / HTTP/1.1\r\nHost: allowed.example\r\n denied.example\r\n\r\n",
	    "obs-fold (header line starting with whitespace)", "folded Host");
	bad("GET / HTTP/1.1\r\nhost : a\r\n\r\n",
	    "whitespace before the colon in a header", "Host with space");
}

/* The classifier that tells HTTP from other line protocols. */
static enum http_looks L(const char *s)
{
	return http_request_looks((const uint8_t *)s, strlen(s));
}

static void looks(void)
{
	is_int(L("GET / HTTP/1.1\r\n"), HTTP_LOOKS_YES, "a request line");
	is_int(L("GET / HTTP/1.1"), HTTP_LOOKS_YES, "... before its CRLF");
	is_int(L("GET / HT"), HTTP_LOOKS_MAYBE, "half a request line");
	is_int(L("\r\n\r\nget / http/1.1\r\n"), HTTP_LOOKS_YES,
	       "blank lines and a lower-case line");
	is_int(L(" \tGET / HTTP/1.1\r\n"), HTTP_LOOKS_YES, "leading blanks");
	is_int(L("GET /a b HTTP/1.1\r\n"), HTTP_LOOKS_YES,
	       "a space in the target");
	is_int(L("PRI * HTTP/2.0\r\n"), HTTP_LOOKS_YES, "the HTTP/2 preface");
	is_int(L("GET\v/\fHTTP/1.1\r\n"), HTTP_LOOKS_YES,
	       "VT and FF as blanks (isspace() readers)");
	is_int(L("\f\vGET / HTTP/1.1\r\n"), HTTP_LOOKS_YES,
	       "VT and FF before the method");
	is_int(L("GET /\r\n"), HTTP_LOOKS_NO,
	       "HTTP/0.9 (no Host to check): not HTTP/1");
	is_int(L("SSH-2.0-OpenSSH_9.6\r\n"), HTTP_LOOKS_NO, "SSH");
	is_int(L("SSH-2.0-OpenSSH_9.6"), HTTP_LOOKS_MAYBE, "SSH, incomplete");
	is_int(L("EHLO client.example\r\n"), HTTP_LOOKS_NO, "SMTP EHLO");
	is_int(L("MAIL FROM:<a@b> SIZE=10\r\n"), HTTP_LOOKS_NO, "SMTP MAIL");
	is_int(L("USER anonymous\r\n"), HTTP_LOOKS_NO, "FTP USER");
	is_int(http_request_looks((const uint8_t *)"\x00\x00\x00\x08\x04\xd2"
						   "\x16\x2f", 8),
	       HTTP_LOOKS_NO, "PostgreSQL SSLRequest");
	is_int(L("\x16\x03\x01"), HTTP_LOOKS_NO, "TLS");
	is_int(L(""), HTTP_LOOKS_MAYBE, "nothing yet");
}

static void smuggling(void)
{
	is_int(P("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
	       HTTP_OK, "identical duplicate Content-Length is OK");
	ok(r.body == HTTP_BODY_LENGTH && r.content_length == 5, "length 5");
	bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	    "differing duplicate Content-Length", "CL.CL");
	bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
	    "Content-Length is not digits only", "CL list");
	bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
	    "Content-Length is not digits only", "CL with sign");
	bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
	    "Content-Length is not digits only", "CL hex");
	bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
	    "empty Content-Length", "CL empty");
	bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
	    "Content-Length overflows", "CL overflow");
	bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "both Content-Length and Transfer-Encoding", "CL.TE");
	bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	    "both Content-Length and Transfer-Encoding", "TE.CL");
	bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
	    "Transfer-Encoding other than exactly \"chunked\"", "xchunked");
	bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
	    "Transfer-Encoding other than exactly \"chunked\"", "chunked not last");
	bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	    "Transfer-Encoding other than exactly \"chunked\"", "gzip, chunked");
	bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "more than one Transfer-Encoding header", "TE twice");
	bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0b" "chunked\r\n\r\n",
	    "control character in header value", "VT before chunked");
	bad("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "Transfer-Encoding in an HTTP/1.0 request", "TE in 1.0");
	is_int(P("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding:  CHUNKED \r\n\r\n"),
	       HTTP_OK, "chunked is case-insensitive, OWS trimmed");
	is_int(r.body, HTTP_BODY_CHUNKED, "body is chunked");
	bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
	    "whitespace before the colon in a header", "TE with space before colon");
	bad("POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n",
	    "obs-fold (header line starting with whitespace)", "TE folded in");
}

static enum http_chunked_status chunk_all(const char *s, size_t *used)
{
	struct http_chunked ch = {0};
	return http_chunked_scan(&ch, (const uint8_t *)s, strlen(s), used);
}

static void chunked(void)
{
	size_t used;
	const char *body = "5\r\nhello\r\n1A;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n"
			   "0\r\nX-Trailer: 1\r\n\r\nGET /next";
	is_int(chunk_all(body, &used), HTTP_CHUNKED_DONE, "chunks, ext and trailer");
	is_int(used, strlen(body) - 9, "ends before the next request");

	/* Byte by byte gives the same end. */
	struct http_chunked ch = {0};
	size_t i, total = 0;
	enum http_chunked_status st = HTTP_CHUNKED_MORE;
	for (i = 0; i < strlen(body) && st == HTTP_CHUNKED_MORE; i++) {
		st = http_chunked_scan(&ch, (const uint8_t *)body + i, 1, &used);
		total += used;
	}
	ok(st == HTTP_CHUNKED_DONE && total == strlen(body) - 9,
	   "fed one byte at a time, ends at the same place");

	is_int(chunk_all("0\r\n\r\n", &used), HTTP_CHUNKED_DONE, "empty body");
	is_int(chunk_all("0\r\n", &used), HTTP_CHUNKED_MORE, "missing final CRLF");
	is_int(chunk_all("5\r\nhel", &used), HTTP_CHUNKED_MORE, "mid-chunk");
	static const struct {
		const char *s, *what;
	} bads[] = {
		{"\r\n", "empty size line"},
		{"g\r\n", "non-hex size"},
		{"5 \r\n", "space after size"},
		{"-1\r\n", "negative size"},
		{"5\nhello\r\n", "bare LF after size"},
		{"5\r\nhelloX\r\n", "data longer than size"},
		{"5\r\nhello\n", "bare LF after data"},
		{"5;a\x01\r\n", "control in chunk-ext"},
		{"0\r\n x: y\r\n\r\n", "obs-fold in trailer"},
		{"0\r\nx y: z\r\n\r\n", "bad trailer name"},
		{"0\r\nx: \x01\r\n\r\n", "control in trailer"},
		{"0\r\n\r\r", "bare CR at the end"},
		{"40000000000000001\r\n", "size over 2^62"},
		{"ffffffffffffffffffff\r\n", "size overflowing 64 bits"},
	};
	for (i = 0; i < ARRAY_SIZE(bads); i++)
		is_int(chunk_all(bads[i].s, &used), HTTP_CHUNKED_BAD, "%s is BAD",
		       bads[i].what);
	is_int(chunk_all("4000000000000000\r\n", &used), HTTP_CHUNKED_MORE,
	       "size exactly 2^62 is accepted");

	static char line[5000];
	memset(line, '0', sizeof(line) - 1);
	is_int(chunk_all(line, &used), HTTP_CHUNKED_BAD,
	       "a 4999-byte size line (leading zeros) is BAD");
	memset(line, 0, sizeof(line));
	memcpy(line, "0\r\nX: ", 6);
	memset(line + 6, 'a', 4200);
	is_int(chunk_all(line, &used), HTTP_CHUNKED_BAD, "an overlong trailer is BAD");
}

int main(void)
{
	captured();
	forms();
	headers();
	server_reading();
	looks();
	smuggling();
	chunked();
	return done_testing();
}
