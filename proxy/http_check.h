/* Per-request checks of the client->server direction of a plain HTTP/1
 * connection, so that a kept-alive connection cannot switch to another
 * host after its first request was allowed (bypass: keep-alive Host
 * switching, request smuggling).
 *
 * The checker walks request heads and skips bodies (Content-Length or
 * chunked) one request after another. Nothing turns the stream opaque by
 * the client's say-so: after the first request of a connection asks for
 * an Upgrade, the client's further bytes are held until the server's
 * response shows whether it switched (101: what follows is no longer
 * HTTP/1 and passes); any other answer, and an Upgrade on a later request
 * (whose response cannot be told from earlier ones without framing
 * responses), leave every following request checked. An Upgrade to h2c
 * is never honoured (HTTP/2 carries requests for any :authority). CONNECT
 * inside a stream (a tunnel through an upstream forward proxy) is refused.
 *
 * Pure: works on a contiguous slice of buffered bytes, no I/O. */
#ifndef PROXY_HTTP_CHECK_H
#define PROXY_HTTP_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../parse/http_req.h"

enum hc_mode {
	HC_OFF,      /* not HTTP: bytes pass unchecked */
	HC_HOST,     /* Host / absolute target must name want (transparent,
			CONNECT tunnels) */
	HC_ABSOLUTE, /* explicit proxy: absolute-form http:// only, same
			authority each time, rewritten to origin-form */
};

struct http_checker {
	enum hc_mode mode;
	int state; /* internal: head, body length, chunked, pass */
	uint64_t remaining;
	struct http_chunked chunk;
	unsigned requests; /* heads checked so far */
	/* The connection is by name (not an address a cidr: rule allowed):
	 * a request must say which site it wants, as a TLS client must
	 * send SNI, or a name-based server would pick one itself. */
	bool need_host;
	/* Upgrade wait: the first bytes of the server's response. */
	uint8_t resp[12];
	unsigned resp_len;
};

enum hc_result {
	HC_NEED_MORE, /* buffer more bytes, call again */
	HC_FORWARD,   /* forward `consumed` bytes verbatim */
	HC_REWRITE,   /* drop `consumed` bytes, forward out[0..out_len) */
	HC_REJECT,    /* answer `status` and close; why says what */
};

struct hc_action {
	enum hc_result result;
	size_t consumed, out_len;
	int status;       /* 400, 403 or 431 with HC_REJECT */
	const char *why;  /* static text */
	char host[256];   /* with a 403: the host the request named */
};

/* Room a rewritten head may need. */
#define HC_OUT_MAX (HTTP_HEAD_MAX + 512)

void http_checker_init(struct http_checker *hc, enum hc_mode mode);

/* Examine buf[0..len) (bytes not yet forwarded). want is the normalised
 * name (or address text) the connection stands for, want_port its port. */
void http_checker_step(struct http_checker *hc, const uint8_t *buf, size_t len,
		       const char *want, uint16_t want_port, uint8_t *out,
		       size_t outsz, struct hc_action *act);

/* Waiting for the server's answer to an Upgrade: client bytes are held
 * (http_checker_step says HC_NEED_MORE). */
bool http_checker_waiting(const struct http_checker *hc);

/* Feed the server's bytes while http_checker_waiting(): once its status
 * line shows 101 the stream passes unchecked, any other status (or
 * anything else) and checking goes on with the next request. */
void http_checker_response(struct http_checker *hc, const uint8_t *buf,
			   size_t len);

/* Does host[0..len) (from SNI or a Host header, without port) name want?
 * Names are compared after policy_normalize_name(); addresses as parsed
 * addresses (so "::1" equals "0:0::1"). */
bool host_matches(const char *want, const char *host, size_t len);

/* Rewrite an absolute-form request head to origin-form, dropping
 * Proxy-Connection / Proxy-Authorization and adding Host when absent.
 * Returns the length or -ENOSPC. */
int http_rewrite_origin(const uint8_t *buf, const struct http_request *rq,
			uint8_t *out, size_t outsz);

#endif
