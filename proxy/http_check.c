#include "http_check.h"

#include <string.h>

#include "../common/ipaddr.h"
#include "../common/util.h"
#include "../policy/policy.h"

enum { ST_HEAD, ST_LENGTH, ST_CHUNKED, ST_PASS, ST_UPGRADE_WAIT };

void http_checker_init(struct http_checker *hc, enum hc_mode mode)
{
	memset(hc, 0, sizeof(*hc));
	hc->mode = mode;
	hc->state = mode == HC_OFF ? ST_PASS : ST_HEAD;
}

bool host_matches(const char *want, const char *host, size_t len)
{
	struct ip_addr a, b;
	size_t wlen = strlen(want);
	if (ip_parse_strict(want, wlen, &a))
		return ip_parse_strict(host, len, &b) && ip_equal(&a, &b);
	if (ip_looks_numeric(host, len))
		return false;
	char norm[256];
	int n = policy_normalize_name(host, len, norm, sizeof(norm));
	return n >= 0 && (size_t)n == wlen && memcmp(norm, want, wlen) == 0;
}

static void copy_host(struct hc_action *act, const uint8_t *buf,
		      struct http_span s)
{
	size_t n = s.len < sizeof(act->host) - 1 ? s.len
						 : sizeof(act->host) - 1;
	memcpy(act->host, buf + s.off, n);
	act->host[n] = '\0';
}

static void reject(struct hc_action *act, int status, const char *why)
{
	act->result = HC_REJECT;
	act->status = status;
	act->why = why;
}

static bool put(uint8_t *out, size_t outsz, size_t *at, const void *p,
		size_t n)
{
	if (n > outsz - *at)
		return false;
	memcpy(out + *at, p, n);
	*at += n;
	return true;
}

int http_rewrite_origin(const uint8_t *buf, const struct http_request *rq,
			uint8_t *out, size_t outsz)
{
	size_t at = 0;
	bool ok = put(out, outsz, &at, buf + rq->method.off, rq->method.len) &&
		  put(out, outsz, &at, " ", 1);
	if (rq->path.len)
		ok = ok && put(out, outsz, &at, buf + rq->path.off,
			       rq->path.len);
	else
		ok = ok && put(out, outsz, &at, "/", 1);
	ok = ok && put(out, outsz, &at, " ", 1) &&
	     put(out, outsz, &at, buf + rq->version.off, rq->version.len) &&
	     put(out, outsz, &at, "\r\n", 2);
	if (!rq->has_host) {
		/* The authority is what the client asked the proxy for. */
		ok = ok && put(out, outsz, &at, "Host: ", 6);
		const uint8_t *t = buf + rq->target.off;
		size_t skip = 7; /* "http://" (case already checked by parser) */
		size_t end = skip;
		while (end < rq->target.len && t[end] != '/' && t[end] != '?')
			end++;
		ok = ok && end > skip &&
		     put(out, outsz, &at, t + skip, end - skip) &&
		     put(out, outsz, &at, "\r\n", 2);
	}
	for (size_t i = 0; ok && i < rq->nheaders; i++) {
		const struct http_header *h = &rq->headers[i];
		/* Hop-by-hop headers meant for us, never for the origin. */
		if (http_header_is(buf, h, "proxy-connection") ||
		    http_header_is(buf, h, "proxy-authorization"))
			continue;
		ok = put(out, outsz, &at, buf + h->name.off, h->name.len) &&
		     put(out, outsz, &at, ": ", 2) &&
		     put(out, outsz, &at, buf + h->value.off, h->value.len) &&
		     put(out, outsz, &at, "\r\n", 2);
	}
	ok = ok && put(out, outsz, &at, "\r\n", 2);
	return ok ? (int)at : -ENOSPC;
}

/* Check one parsed head against the connection's name and port. */
static bool check_head(struct http_checker *hc, const uint8_t *buf,
		       const struct http_request *rq, const char *want,
		       uint16_t want_port, struct hc_action *act)
{
	if (hc->mode == HC_ABSOLUTE) {
		if (rq->form != HTTP_FORM_ABSOLUTE || rq->is_connect) {
			reject(act, 400, "a proxy request must use an "
					 "absolute http:// URI");
			return false;
		}
		if (rq->scheme_https) {
			reject(act, 400, "https:// URIs must use CONNECT");
			return false;
		}
	}
	if (rq->has_target_host) {
		uint16_t p = rq->target_port ? rq->target_port
			     : rq->is_connect ? 0
					      : 80;
		if (!host_matches(want, (const char *)buf + rq->target_host.off,
				  rq->target_host.len) ||
		    (hc->mode == HC_ABSOLUTE && p != want_port) ||
		    (hc->mode == HC_HOST && rq->target_port &&
		     rq->target_port != want_port && !rq->is_connect)) {
			copy_host(act, buf, rq->target_host);
			reject(act, 403, "request target names another host "
					 "than this connection is for");
			return false;
		}
	}
	if (hc->need_host && !rq->has_host && !rq->has_target_host) {
		reject(act, 400, "HTTP request without Host for a connection "
				 "by name: the server would choose the site");
		return false;
	}
	if (rq->has_host) {
		if (!host_matches(want, (const char *)buf + rq->host.off,
				  rq->host.len) ||
		    (rq->host_port && rq->host_port != want_port)) {
			copy_host(act, buf, rq->host);
			reject(act, 403, "Host header names another host than "
					 "this connection is for");
			return false;
		}
	}
	return true;
}

void http_checker_step(struct http_checker *hc, const uint8_t *buf, size_t len,
		       const char *want, uint16_t want_port, uint8_t *out,
		       size_t outsz, struct hc_action *act)
{
	memset(act, 0, sizeof(*act));
	act->result = HC_NEED_MORE;
	if (len == 0)
		return;
	switch (hc->state) {
	case ST_PASS:
		act->result = HC_FORWARD;
		act->consumed = len;
		return;
	case ST_UPGRADE_WAIT:
		return; /* held until the server answered */
	case ST_LENGTH: {
		size_t n = hc->remaining < len ? (size_t)hc->remaining : len;
		hc->remaining -= n;
		if (hc->remaining == 0)
			hc->state = ST_HEAD;
		act->result = HC_FORWARD;
		act->consumed = n;
		return;
	}
	case ST_CHUNKED: {
		size_t used = 0;
		switch (http_chunked_scan(&hc->chunk, buf, len, &used)) {
		case HTTP_CHUNKED_MORE:
			used = len;
			break;
		case HTTP_CHUNKED_DONE:
			hc->state = ST_HEAD;
			break;
		case HTTP_CHUNKED_BAD:
			reject(act, 400, "malformed chunked body");
			return;
		}
		act->result = used ? HC_FORWARD : HC_NEED_MORE;
		act->consumed = used;
		return;
	}
	default:
		break;
	}

	struct http_request rq;
	switch (http_request_parse(buf, len, &rq)) {
	case HTTP_OK:
		break;
	case HTTP_INCOMPLETE:
		if (len >= HTTP_HEAD_MAX)
			reject(act, 431, "request head too large");
		return;
	case HTTP_TOO_LARGE:
		reject(act, 431, rq.why ? rq.why : "request head too large");
		return;
	case HTTP_NOT_HTTP:
		reject(act, 400, "bytes after a request are not an HTTP "
				 "request");
		return;
	case HTTP_MALFORMED:
	default:
		reject(act, 400, rq.why ? rq.why : "malformed request");
		return;
	}
	if (rq.is_connect && hc->mode == HC_HOST) {
		/* A CONNECT that an allowed upstream (itself a forward proxy)
		 * would honour turns the stream into an unchecked tunnel. */
		copy_host(act, buf, rq.target_host);
		reject(act, 403, "CONNECT inside a stream would open an "
				 "unchecked tunnel");
		return;
	}
	if (rq.upgrade && (rq.body == HTTP_BODY_CHUNKED ||
			   (rq.body == HTTP_BODY_LENGTH && rq.content_length))) {
		reject(act, 400, "Upgrade request with a body");
		return;
	}
	if (!check_head(hc, buf, &rq, want, want_port, act))
		return;
	hc->requests++;
	act->consumed = rq.head_len;
	if (hc->mode == HC_ABSOLUTE) {
		int n = http_rewrite_origin(buf, &rq, out, outsz);
		if (n < 0) {
			reject(act, 431, "request head too large to rewrite");
			return;
		}
		act->result = HC_REWRITE;
		act->out_len = (size_t)n;
	} else {
		act->result = HC_FORWARD;
	}
	/* h2c is never honoured: HTTP/2 multiplexes requests whose
	 * :authority nothing here reads, so a server that switches gets its
	 * client's next bytes (the HTTP/2 preface) refused as not HTTP/1. */
	if (rq.upgrade && !rq.upgrade_h2c && hc->requests == 1) {
		hc->state = ST_UPGRADE_WAIT;
		hc->resp_len = 0;
	} else if (rq.body == HTTP_BODY_LENGTH && rq.content_length > 0) {
		hc->state = ST_LENGTH;
		hc->remaining = rq.content_length;
	} else if (rq.body == HTTP_BODY_CHUNKED) {
		hc->state = ST_CHUNKED;
		memset(&hc->chunk, 0, sizeof(hc->chunk));
	} else {
		hc->state = ST_HEAD;
	}
}

bool http_checker_waiting(const struct http_checker *hc)
{
	return hc->state == ST_UPGRADE_WAIT;
}

void http_checker_response(struct http_checker *hc, const uint8_t *buf,
			   size_t len)
{
	static const char want10[] = "HTTP/1.0 101", want11[] = "HTTP/1.1 101";
	if (hc->state != ST_UPGRADE_WAIT)
		return;
	for (size_t i = 0; i < len && hc->resp_len < sizeof(hc->resp); i++) {
		uint8_t c = buf[i];
		unsigned k = hc->resp_len;
		hc->resp[hc->resp_len++] = c;
		if (c != (uint8_t)want10[k] && c != (uint8_t)want11[k]) {
			hc->state = ST_HEAD; /* not switching: keep checking */
			return;
		}
	}
	if (hc->resp_len == sizeof(hc->resp))
		hc->state = ST_PASS;
}
