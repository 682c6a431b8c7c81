#include "proto.h"

#include <string.h>

#include "../common/util.h"
#include "../parse/http_req.h"
#include "../parse/tls_hello.h"

/* --- TLS ----------------------------------------------------------------- */

/* Any TLS record header or SSLv2 hello: tls_peek then refuses all but a
 * ClientHello in handshake records. */
static bool tls_claims(const uint8_t *buf, size_t len)
{
	return len >= 1 && tls_first_bytes(buf, len) != TLS_FIRST_OTHER;
}

static enum peek_status tls_peek(const uint8_t *buf, size_t len,
				 struct peek_info *out)
{
	struct tls_hello h;
	memset(out, 0, sizeof(*out));
	switch (tls_hello_parse(buf, len, &h)) {
	case TLS_HELLO_INCOMPLETE:
		return PEEK_MORE;
	case TLS_HELLO_OK:
		break;
	case TLS_HELLO_NOT_TLS:
		out->why = "not a TLS ClientHello";
		out->malformed = true;
		return PEEK_BAD;
	case TLS_HELLO_TOO_LARGE:
		out->why = h.why ? h.why : "ClientHello too large";
		out->malformed = true;
		return PEEK_BAD;
	case TLS_HELLO_MALFORMED:
	default:
		out->why = h.why ? h.why : "malformed ClientHello";
		out->malformed = true;
		return PEEK_BAD;
	}
	out->ech = h.has_ech;
	if (h.has_sni) {
		size_t n = h.sni_len < sizeof(out->name) - 1
				   ? h.sni_len
				   : sizeof(out->name) - 1;
		memcpy(out->name, h.sni, n);
		out->name[n] = '\0';
		out->name_len = n;
		out->has_name = true;
	}
	return PEEK_OK;
}

/* A fatal access_denied(49) alert: the client sees a TLS error instead of
 * a silent reset. Record version 3.1 is accepted by every TLS client. */
static size_t tls_deny(int status, const struct deny_text *t, char *out,
		       size_t outsz)
{
	static const uint8_t alert[] = {0x15, 0x03, 0x01, 0x00,
					0x02, 0x02, 0x31};
	(void)status;
	(void)t;
	if (outsz < sizeof(alert))
		return 0;
	memcpy(out, alert, sizeof(alert));
	return sizeof(alert);
}

/* --- HTTP/1 --------------------------------------------------------------- */

/* Whatever some server could read as an HTTP request (http_peek then
 * holds it to the strict parser). */
static bool http_claims(const uint8_t *buf, size_t len)
{
	return len > 0 && http_request_looks(buf, len) != HTTP_LOOKS_NO;
}

static enum peek_status http_peek(const uint8_t *buf, size_t len,
				  struct peek_info *out)
{
	struct http_request rq;
	memset(out, 0, sizeof(*out));
	enum http_status st = http_request_parse(buf, len, &rq);
	/* Until the first line shows whether this is a request at all (an
	 * SSH or SMTP line is not), the parser's complaints wait. */
	if ((st == HTTP_MALFORMED || st == HTTP_NOT_HTTP) && !rq.h2_preface &&
	    http_request_looks(buf, len) == HTTP_LOOKS_MAYBE)
		return PEEK_MORE;
	switch (st) {
	case HTTP_INCOMPLETE:
		return PEEK_MORE;
	case HTTP_OK:
		break;
	case HTTP_TOO_LARGE:
		out->why = "request head too large";
		out->malformed = true;
		return PEEK_BAD;
	case HTTP_NOT_HTTP:
	case HTTP_MALFORMED:
	default:
		if (rq.h2_preface) {
			/* Not HTTP/1: an opaque stream, for rules with tcp. */
			out->opaque = true;
			out->why = rq.why;
			return PEEK_OK;
		}
		out->why = rq.why ? rq.why : "malformed HTTP request";
		out->malformed = true;
		return PEEK_BAD;
	}
	/* The absolute-form authority, else the Host header, names the host;
	 * when both are present the relay's checker requires both to agree. */
	const struct http_span *s = rq.has_target_host ? &rq.target_host
				    : rq.has_host      ? &rq.host
						       : NULL;
	if (s) {
		if (s->len == 0 || s->len >= sizeof(out->name)) {
			out->why = "bad host in request";
			out->malformed = true;
			return PEEK_BAD;
		}
		memcpy(out->name, buf + s->off, s->len);
		out->name[s->len] = '\0';
		out->name_len = s->len;
		out->has_name = true;
		out->name_port =
			rq.has_target_host ? rq.target_port : rq.host_port;
	}
	return PEEK_OK;
}

static const char *status_text(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 431:
		return "Request Header Fields Too Large";
	case 502:
		return "Bad Gateway";
	case 504:
		return "Gateway Timeout";
	default:
		return "Error";
	}
}

size_t http_error_response(int status, const struct deny_text *t, char *out,
			   size_t outsz)
{
	char body[1536];
	size_t blen = 0;
	if (status == 403)
		fmt_append(body, sizeof(body), &blen,
			   "sandbox-proxy blocked a request to %s:%u\n",
			   t->host ? t->host : "?", t->port);
	else if (!t->host)
		fmt_append(body, sizeof(body), &blen,
			   "sandbox-proxy: %d %s\n", status,
			   status_text(status));
	else
		fmt_append(body, sizeof(body), &blen,
			   "sandbox-proxy: %d %s for %s:%u\n", status,
			   status_text(status), t->host ? t->host : "?",
			   t->port);
	if (t->decision)
		fmt_append(body, sizeof(body), &blen, "decision: %s\n",
			   t->decision);
	if (t->reason)
		fmt_append(body, sizeof(body), &blen, "reason: %s\n",
			   t->reason);
	if (t->hint)
		fmt_append(body, sizeof(body), &blen, "to change: %s\n",
			   t->hint);
	size_t len = 0;
	if (fmt_append(out, outsz, &len,
		       "HTTP/1.1 %d %s\r\n"
		       "Content-Type: text/plain; charset=utf-8\r\n"
		       "Content-Length: %zu\r\n"
		       "Connection: close\r\n"
		       "\r\n"
		       "%s",
		       status, status_text(status), blen, body) < 0)
		return 0;
	return len;
}

static size_t http_deny(int status, const struct deny_text *t, char *out,
			size_t outsz)
{
	return http_error_response(status, t, out, outsz);
}

/* --- anything else ---------------------------------------------------------- */

static bool tcp_claims(const uint8_t *buf, size_t len)
{
	(void)buf;
	(void)len;
	return true;
}

static enum peek_status tcp_peek(const uint8_t *buf, size_t len,
				 struct peek_info *out)
{
	(void)buf;
	(void)len;
	memset(out, 0, sizeof(*out));
	return PEEK_OK;
}

static size_t tcp_deny(int status, const struct deny_text *t, char *out,
		       size_t outsz)
{
	(void)status;
	(void)t;
	(void)out;
	(void)outsz;
	return 0; /* no protocol to speak: just close */
}

const struct proto proto_tls = {"tls", tls_claims, tls_peek, tls_deny,
				TLS_HELLO_MAX + 5 * 8};
const struct proto proto_http = {"http", http_claims, http_peek, http_deny,
				 HTTP_HEAD_MAX};
const struct proto proto_tcp = {"tcp", tcp_claims, tcp_peek, tcp_deny, 0};

static const struct proto *const proto_table[] = {&proto_tls, &proto_http,
						  &proto_tcp};

void proto_describe(const uint8_t *buf, size_t len, char *out, size_t outsz)
{
	size_t at = 0, n = len < 16 ? len : 16;
	char text[17];
	out[0] = '\0';
	if (len == 0) {
		fmt_append(out, outsz, &at, "no bytes");
		return;
	}
	fmt_append(out, outsz, &at, "first bytes");
	for (size_t i = 0; i < n; i++) {
		fmt_append(out, outsz, &at, " %02x", buf[i]);
		/* Printable ASCII except quotes and backslash, so the text
		 * needs no escaping wherever it is shown. */
		text[i] = buf[i] >= 0x20 && buf[i] < 0x7f && buf[i] != '"' &&
				  buf[i] != '\\' && buf[i] != '\''
				  ? (char)buf[i]
				  : '.';
	}
	text[n] = '\0';
	fmt_append(out, outsz, &at, "%s (\"%s\")", len > n ? " ..." : "",
		   text);
}

const struct proto *proto_detect(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(proto_table); i++)
		if (proto_table[i]->claims(buf, len))
			return proto_table[i];
	return &proto_tcp;
}

void deny_hint(const struct policy *p, const struct policy_verdict *v,
	       const char *host, uint16_t port, char *out, size_t outsz)
{
	/* Host rules never open it (policy.h, host services by port). */
	if (host && !strcmp(host, POLICY_HOST_INTERNAL)) {
		fmt_buf(out, outsz, "host port %u is not open to the sandbox; "
			"open it with --host-port %u or host_ports: [%u] in "
			"your policy file", port, port, port);
		return;
	}
	if (v->rule.file) {
		char where[512];
		policy_rule_str(&v->rule, where, sizeof(where));
		fmt_buf(out, outsz,
			"%s rule \"%s\" at %s decides %s:%u; edit that rule "
			"(or add a more specific allow rule) to change it",
			v->rule.allow ? "allow" : "deny",
			v->rule.pattern ? v->rule.pattern : "?", where, host,
			port);
		return;
	}
	const char *file = p ? policy_primary_file(p) : NULL;
	fmt_buf(out, outsz, "no rule allows %s:%u; add it to the allow list in %s",
		host, port, file ? file : "your policy file (--policy)");
}
