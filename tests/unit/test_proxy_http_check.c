/* The per-request HTTP checker (keep-alive host switching, bodies skipped
 * by framing, absolute-form rewriting) and the refusal texts. */
#include <stdio.h>
#include <string.h>

#include "../../proxy/http_check.h"
#include "../../proxy/proto.h"
#include "tap.h"

static uint8_t out[HC_OUT_MAX];

/* Run the checker over s as a relay would; returns the forwarded bytes in
 * fwd and the last action. */
static struct hc_action run(struct http_checker *hc, const char *s,
			    const char *want, uint16_t port, char *fwd,
			    size_t fwdsz)
{
	struct hc_action act = {0};
	size_t len = strlen(s), at = 0, flen = 0;
	while (at < len) {
		http_checker_step(hc, (const uint8_t *)s + at, len - at, want,
				  port, out, sizeof(out), &act);
		if (act.result == HC_FORWARD) {
			if (flen + act.consumed < fwdsz)
				memcpy(fwd + flen, s + at, act.consumed);
			flen += act.consumed;
		} else if (act.result == HC_REWRITE) {
			if (flen + act.out_len < fwdsz)
				memcpy(fwd + flen, out, act.out_len);
			flen += act.out_len;
		} else {
			break;
		}
		at += act.consumed;
	}
	fwd[flen < fwdsz ? flen : fwdsz - 1] = '\0';
	return act;
}

/* The protocol table's classification of first bytes (issue 8). */
static const struct proto *D(const char *s, size_t n)
{
	return proto_detect((const uint8_t *)s, n);
}

static void classify(void)
{
	struct peek_info pi;
	ok(D("\x16\x03\x01", 3) == &proto_tls, "handshake record: tls");
	ok(D("\x15\x03\x01\x00\x02\x01\x00", 7) == &proto_tls,
	   "alert record: tls (then refused)");
	is_int(proto_tls.peek((const uint8_t *)"\x15\x03\x01\x00\x02\x01\x00", 7,
			      &pi),
	       PEEK_BAD, "alert record first: refused");
	ok(D("\x80\x2e\x01\x03\x01", 5) == &proto_tls, "SSLv2 hello: tls");
	ok(D("\r\nGET / HTTP/1.1\r\n", 18) == &proto_http,
	   "empty line, then a request: http");
	ok(D("get / HTTP/1.1\r\n", 16) == &proto_http, "lower-case method: http");
	ok(D(" GET / HTTP/1.1\r\n", 17) == &proto_http,
	   "leading space: http (then refused)");
	is_int(proto_http.peek((const uint8_t *)" GET / HTTP/1.1\r\nHost: a\r\n\r\n",
			       30, &pi),
	       PEEK_BAD, "leading space: refused");
	ok(D("GET", 3) == &proto_http, "a token so far: maybe http");
	is_int(proto_http.peek((const uint8_t *)"GET\t", 4, &pi), PEEK_MORE,
	       "a line not yet complete waits");
	ok(D("SSH-2.0-OpenSSH_9.6\r\n", 21) == &proto_tcp, "SSH: tcp");
	ok(D("EHLO x\r\n", 8) == &proto_tcp, "SMTP: tcp");
	ok(D("\x00\x00\x00\x08", 4) == &proto_tcp, "binary: tcp");
	const char *h2 = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	ok(D(h2, strlen(h2)) == &proto_http, "HTTP/2 preface: read as http");
	is_int(proto_http.peek((const uint8_t *)h2, strlen(h2), &pi), PEEK_OK,
	       "HTTP/2 preface: peek ok");
	ok(pi.opaque, "... but opaque (a tcp rule's stream)");

	char d[128];
	proto_describe((const uint8_t *)"SSH\"\\\x01", 6, d, sizeof(d));
	is_str(d, "first bytes 53 53 48 22 5c 01 (\"SSH...\")",
	       "describe: hex and escaped ASCII");
	proto_describe((const uint8_t *)"0123456789abcdefXYZ", 19, d, sizeof(d));
	is_str(d,
	       "first bytes 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 ... "
	       "(\"0123456789abcdef\")",
	       "describe: at most 16 bytes");
}

int main(void)
{
	classify();
	ok(host_matches("example.com", "EXAMPLE.com.", 12), "case, dot");
	ok(!host_matches("example.com", "example.com.evil", 16), "suffix");
	ok(!host_matches("example.com", "xexample.com", 12), "prefix");
	ok(host_matches("::1", "0:0::1", 6), "v6 compared as address");
	ok(!host_matches("127.0.0.1", "127.1", 5), "non-strict literal");
	ok(!host_matches("example.com", "127.0.0.1", 9), "addr vs name");

	struct http_checker hc;
	char fwd[4096];
	struct hc_action a;

	http_checker_init(&hc, HC_HOST);
	a = run(&hc,
		"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"
		"POST /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 37\r\n\r\n"
		"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n12345"
		"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	ok(a.result == HC_FORWARD, "a body that looks like a request is "
				   "skipped by Content-Length");
	is_int(hc.requests, 3, "three heads checked");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc,
		"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"
		"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.result, HC_REJECT, "second request for another host");
	is_int(a.status, 403, "403");
	is_str(a.host, "b.test", "names the host asked for");
	ok(strstr(fwd, "b.test") == NULL, "second request not forwarded");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc,
		"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: "
		"chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
		"GET / HTTP/1.1\r\nHost: c.test\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.result, HC_REJECT, "request after a chunked body checked");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc, "GET / HTTP/1.1\r\nHost: a.test:8080\r\n\r\n", "a.test",
		80, fwd, sizeof(fwd));
	is_int(a.result, HC_REJECT, "Host port must match");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc,
		"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.status, 400, "duplicate Host is a 400");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc,
		"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n"
		"Transfer-Encoding: chunked\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.status, 400, "CL+TE is a 400");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc,
		"GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\n\r\nGET / HTTP/1.1\r\nHost: z\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.result, HC_NEED_MORE,
	       "after an Upgrade request the rest is held");
	is_str(fwd,
	       "GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n"
	       "Connection: Upgrade\r\n\r\n",
	       "... only the Upgrade request was forwarded");
	ok(http_checker_waiting(&hc), "... waiting for the server's answer");
	http_checker_response(&hc, (const uint8_t *)"HTTP/1.1 200 OK\r\n", 17);
	ok(!http_checker_waiting(&hc), "a 200 ends the wait");
	a = run(&hc, "GET / HTTP/1.1\r\nHost: z\r\n\r\n", "a.test", 80, fwd,
		sizeof(fwd));
	is_int(a.status, 403, "refused Upgrade: the next request is checked");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc,
		"GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	http_checker_response(&hc, (const uint8_t *)"HTTP/1.1 1", 10);
	ok(http_checker_waiting(&hc), "a partial status line keeps waiting");
	http_checker_response(&hc, (const uint8_t *)"01 Switching", 12);
	ok(!http_checker_waiting(&hc), "101 ends the wait");
	a = run(&hc, "\x82\x85websocket frame", "a.test", 80, fwd,
		sizeof(fwd));
	is_int(a.result, HC_FORWARD, "after 101 the stream passes");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc,
		"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"
		"GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\n\r\nGET / HTTP/1.1\r\nHost: z\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.status, 403,
	       "Upgrade on a later request does not switch off checking");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc,
		"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade, "
		"HTTP2-Settings\r\nUpgrade: H2C\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	ok(!http_checker_waiting(&hc), "Upgrade: h2c does not wait to switch");
	is_int(a.status, 400, "... and the HTTP/2 preface after it is refused");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc, "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.status, 403, "CONNECT inside a stream is refused");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc,
		"POST / HTTP/1.1\r\nHost: a.test\r\nUpgrade: h2c\r\n"
		"Content-Length: 3\r\n\r\nabc",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.status, 400, "Upgrade with a body is refused");

	http_checker_init(&hc, HC_HOST);
	a = run(&hc,
		"\r\nget / HTTP/1.1\r\nHost: a.test\r\n\r\n"
		"\r\nget / HTTP/1.1\r\nHost: z.test\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.status, 403,
	       "leading empty line and lower-case method: Host still checked");
	is_str(fwd, "\r\nget / HTTP/1.1\r\nHost: a.test\r\n\r\n",
	       "... the first request forwarded as sent");

	http_checker_init(&hc, HC_ABSOLUTE);
	a = run(&hc,
		"GET http://a.test/p?q=1 HTTP/1.1\r\nHost: a.test\r\n"
		"Proxy-Connection: keep-alive\r\nProxy-Authorization: x\r\n"
		"Accept: */*\r\n\r\n"
		"GET http://a.test:80/2 HTTP/1.0\r\nAccept: */*\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.result, HC_REWRITE, "absolute-form rewritten (%s)",
	       a.why ? a.why : "");
	is_str(fwd,
	       "GET /p?q=1 HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n\r\n"
	       "GET /2 HTTP/1.0\r\nHost: a.test:80\r\nAccept: */*\r\n\r\n",
	       "origin-form, Proxy-* dropped, Host added");

	http_checker_init(&hc, HC_ABSOLUTE);
	a = run(&hc,
		"GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"
		"GET http://b.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.status, 403, "proxy: another authority refused");
	http_checker_init(&hc, HC_ABSOLUTE);
	a = run(&hc, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "a.test", 80,
		fwd, sizeof(fwd));
	is_int(a.status, 400, "proxy: origin-form refused");
	http_checker_init(&hc, HC_ABSOLUTE);
	a = run(&hc, "GET http://a.test:81/ HTTP/1.1\r\nHost: a.test:81\r\n\r\n",
		"a.test", 80, fwd, sizeof(fwd));
	is_int(a.status, 403, "proxy: another port refused");

	struct deny_text t = {.host = "x.test",
			      .port = 443,
			      .decision = "deny",
			      .reason = "no rule allows x.test:443",
			      .hint = "add it to the allow list in p.yaml"};
	char resp[2048];
	size_t n = http_error_response(403, &t, resp, sizeof(resp));
	resp[n] = '\0';
	ok(strncmp(resp, "HTTP/1.1 403 Forbidden\r\n", 24) == 0, "403 line");
	ok(strstr(resp, "x.test:443") && strstr(resp, "p.yaml") &&
		   strstr(resp, "decision: deny"),
	   "body names host, decision and file");
	const char *body = strstr(resp, "\r\n\r\n") + 4;
	char cl[64];
	snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body));
	ok(strstr(resp, cl) != NULL, "Content-Length matches the body");

	const uint8_t hello_start[] = {0x16, 0x03, 0x01};
	ok(proto_detect(hello_start, 3) == &proto_tls, "0x16 is TLS");
	ok(proto_detect((const uint8_t *)"GET", 3) == &proto_http, "GET");
	ok(proto_detect((const uint8_t *)"SSH-2.0-x\r\n", 11) == &proto_tcp,
	   "SSH banner is opaque");
	return done_testing();
}
