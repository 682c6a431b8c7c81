/* HTTP/1.x request-head parser and chunked-body scanner.
 * Pure: no allocation, no I/O, no globals. Fuzzed by tests/fuzz/fuzz_http_req.c.
 *
 * Strict on purpose (request smuggling is the attack): obs-fold, bare CR,
 * whitespace before the colon, duplicate Host, Content-Length together with
 * Transfer-Encoding, differing duplicate Content-Length, a Transfer-Encoding
 * other than exactly "chunked" last, and control bytes are all MALFORMED. */
#ifndef PROXY_HTTP_REQ_H
#define PROXY_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX 65536
#define HTTP_MAX_HEADERS 128

enum http_status {
	HTTP_OK = 0,
	HTTP_INCOMPLETE, /* need more bytes (no CRLFCRLF yet) */
	HTTP_NOT_HTTP,   /* the first bytes cannot start an HTTP request line */
	HTTP_MALFORMED,  /* why says what */
	HTTP_TOO_LARGE,  /* head over HTTP_HEAD_MAX or too many headers */
};

/* A slice of the input buffer. */
struct http_span {
	size_t off, len;
};

struct http_header {
	struct http_span name, value; /* value without surrounding OWS */
};

enum http_target_form {
	HTTP_FORM_ORIGIN,    /* /path?q */
	HTTP_FORM_ABSOLUTE,  /* http://host[:port]/path */
	HTTP_FORM_AUTHORITY, /* host:port (CONNECT only) */
	HTTP_FORM_ASTERISK,  /* * (OPTIONS only) */
};

enum http_body {
	HTTP_BODY_NONE,
	HTTP_BODY_LENGTH,  /* content_length bytes follow the head */
	HTTP_BODY_CHUNKED, /* use http_chunked_scan */
};

struct http_request {
	struct http_span method, target, version;
	enum http_target_form form;
	bool is_connect;
	/* Authority from the target (absolute or authority form): host without
	 * brackets, port (0 when absent). scheme_https for https:// targets. */
	bool has_target_host;
	struct http_span target_host;
	uint16_t target_port;
	bool scheme_https;
	struct http_span path; /* origin-form part of an absolute target ("/" if empty: len 0) */
	/* The Host header, split like the target authority. */
	bool has_host;
	struct http_span host;
	uint16_t host_port;
	enum http_body body;
	uint64_t content_length;
	bool upgrade;          /* Upgrade header present */
	bool upgrade_h2c;      /* ... offering h2c (HTTP/2 over cleartext) */
	bool close;            /* Connection: close, or HTTP/1.0 without keep-alive */
	bool http10;
	size_t head_len;       /* bytes up to and including the blank line
				  (leading empty lines included) */
	unsigned leading_empty_lines; /* CRLFs skipped before the request
					 line (RFC 9112 2.2) */
	bool h2_preface;       /* MALFORMED because it is "PRI * HTTP/2.0" */
	size_t nheaders;
	struct http_header headers[HTTP_MAX_HEADERS];
	const char *why;
};

/* Leading empty lines (CRLF) are skipped and counted, as servers do
 * (RFC 9112 2.2); the method is any token, case-sensitive (RFC 9110
 * 9.1); a request line starting with a space or tab is MALFORMED. */
enum http_status http_request_parse(const uint8_t *buf, size_t len,
				    struct http_request *out);

/* Could buf be the start of an HTTP request as some server would read it
 * (blank lines or blanks, a method token, a blank, and "HTTP/" after a
 * blank on the first line)? MAYBE until the first line is complete. Used
 * to tell HTTP (checked strictly by http_request_parse) from other
 * protocols whose first line is not a request line (SSH, SMTP, ...). */
enum http_looks { HTTP_LOOKS_NO, HTTP_LOOKS_MAYBE, HTTP_LOOKS_YES };
enum http_looks http_request_looks(const uint8_t *buf, size_t len);

/* Case-insensitive header-name comparison helper. */
bool http_header_is(const uint8_t *buf, const struct http_header *h,
		    const char *name);

/* Incremental chunked-body scanner (RFC 9112 7.1), for finding where the
 * next request on a kept-alive connection begins. Zero-initialise state. */
struct http_chunked {
	int state;          /* internal */
	uint64_t remaining; /* bytes left in the current chunk */
	unsigned line_len;  /* bytes of the current size/trailer line */
};

enum http_chunked_status {
	HTTP_CHUNKED_MORE = 0, /* consumed all of buf, body not finished */
	HTTP_CHUNKED_DONE,     /* body ended after *used bytes */
	HTTP_CHUNKED_BAD,      /* malformed chunk framing */
};

enum http_chunked_status http_chunked_scan(struct http_chunked *st,
					   const uint8_t *buf, size_t len,
					   size_t *used);

#endif
