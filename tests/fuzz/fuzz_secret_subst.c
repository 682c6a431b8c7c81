/* Fuzz the placeholder substitution of request heads. The input is a
 * request head (parsed first with http_request_parse, as the proxy does)
 * checked against a fixed two-secret table. Invariants: a rewritten head
 * is no longer than the bound the proxy allocates, holds no placeholder
 * of a secret listed for the host, and still parses as a request head
 * with the same length of request line; a head with no placeholder is
 * SUBST_NONE; the check-only call agrees with the rewriting one; base64
 * round-trips; a secret's header is set exactly once on its hosts and
 * nowhere else. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../parse/http_req.h"
#include "../../parse/secret_subst.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const hosts_a[] = {"api.test"};
static const char *const hosts_b[] = {"api.test", "git.test"};
static const struct secret secrets[] = {
	{.var = "KEY_A", .ph = (const uint8_t *)"sk-PHPHPHPHPHPHPHPHPH",
	 .ph_len = 21,
	 .value = (const uint8_t *)"sk-realvalue-aaaaaaaaaaaaaaaaaaaaa",
	 .value_len = 34, .hosts = hosts_a, .n_hosts = 1},
	{.var = "KEY_B", .ph = (const uint8_t *)"ghp_QQQQQQQQQQQQQQQQ",
	 .ph_len = 20, .value = (const uint8_t *)"ghp_real", .value_len = 8,
	 .hosts = hosts_b, .n_hosts = 2, .header = "Authorization",
	 .fmt_pre = (const uint8_t *)"token ", .pre_len = 6,
	 .fmt_post = (const uint8_t *)"", .post_len = 0},
};
static const struct secret_table table = {secrets, 2};

static uint8_t out[HTTP_HEAD_MAX * 8];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request rq;
	if (size > 1 && data[0] == 'B') {
		uint8_t enc[4096], dec[4096];
		size_t n = size - 1 < 1024 ? size - 1 : 1024;
		size_t en = secret_b64_encode(data + 1, n, enc, sizeof(enc));
		long dn = secret_b64_decode(enc, en, dec, sizeof(dec));
		if (dn != (long)n || memcmp(dec, data + 1, n) != 0)
			abort();
		(void)secret_b64_decode(data + 1, n, dec, sizeof(dec));
		return 0;
	}
	if (http_request_parse(data, size, &rq) != HTTP_OK)
		return 0;
	const char *hosts[] = {"api.test", "git.test", "other.test", NULL};
	for (size_t h = 0; h < 4; h++) {
		size_t out_len = 0, which = 0, w2 = 0, l2 = 0;
		uint32_t used = 0, u2 = 0;
		enum subst_status st =
			secret_subst_head(&table, hosts[h], data, rq.head_len,
					  out, sizeof(out), &out_len, &used,
					  &which);
		enum subst_status chk =
			secret_subst_head(&table, hosts[h], data, rq.head_len,
					  NULL, 0, &l2, &u2, &w2);
		if ((st == SUBST_FOREIGN) != (chk == SUBST_FOREIGN))
			abort();
		if (st == SUBST_FOREIGN && which >= table.n)
			abort();
		if (st != SUBST_DONE)
			continue;
		if (!used || out_len > sizeof(out))
			abort();
		for (size_t i = 0; i < table.n; i++)
			if (hosts[h] && secret_host_listed(&secrets[i], hosts[h]) &&
			    memmem(out, out_len, secrets[i].ph, secrets[i].ph_len))
				abort();
		struct http_request r2;
		if (out_len <= HTTP_HEAD_MAX &&
		    http_request_parse(out, out_len, &r2) != HTTP_OK)
			abort();
	}
	/* The header a secret sets: present once, as the proxy wrote it,
	 * and the result still a request head. */
	for (size_t h = 0; h < 4; h++) {
		size_t out_len = 0;
		uint32_t set = 0;
		enum subst_status st =
			secret_set_headers(&table, hosts[h], data, rq.head_len,
					   out, sizeof(out), &out_len, &set);
		bool want = hosts[h] && secret_host_listed(&secrets[1], hosts[h]);
		if ((st == SUBST_DONE) != want || (want && set != 2))
			abort();
		if (st != SUBST_DONE)
			continue;
		static const char line[] = "\r\nAuthorization: token ghp_real\r\n";
		const uint8_t *f = memmem(out, out_len, line, sizeof(line) - 1);
		if (!f || memmem(f + 1, out_len - (size_t)(f + 1 - out), line,
				 sizeof(line) - 1))
			abort();
		struct http_request r2;
		if (out_len <= HTTP_HEAD_MAX &&
		    http_request_parse(out, out_len, &r2) != HTTP_OK)
			abort();
	}
	return 0;
}
