/* Placeholders (launcher/secrets.c) and head substitution
 * (parse/secret_subst.c). */
#include <string.h>

#include "../../launcher/launch.h"
#include "../../launcher/secrets.h"
#include "../../parse/secret_subst.h"
#include "tap.h"

static void placeholders(void)
{
	uint8_t rnd[4096];
	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (uint8_t)(i * 7 + 3);
	char out[2048];
	const char *v = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-xyz";
	size_t n = secret_placeholder_make(v, rnd, sizeof(rnd), out,
					   sizeof(out));
	is_int((long long)n, (long long)strlen(v), "same length");
	ok(strncmp(out, "sk-ant-api03-", 13) == 0, "prefix kept: %s", out);
	ok(strcmp(out, v) != 0, "differs from the value");
	bool shape = true;
	for (size_t i = 13; i < n; i++) {
		char a = v[i], b = out[i];
		if ((a >= 'a' && a <= 'z') != (b >= 'a' && b <= 'z') ||
		    (a >= 'A' && a <= 'Z') != (b >= 'A' && b <= 'Z') ||
		    (a >= '0' && a <= '9') != (b >= '0' && b <= '9'))
			shape = false;
	}
	ok(shape, "each character keeps its kind");
	n = secret_placeholder_make("abc", rnd, sizeof(rnd), out, sizeof(out));
	ok(n >= SECRET_RANDOM_MIN, "a short value gets a longer placeholder");
	ok(secret_placeholder_make(v, rnd, 4, out, sizeof(out)) == 0,
	   "not enough randomness: refused");

	ok(launch_secret_valid("TESTKEY@api.test"), "VAR@HOST");
	ok(launch_secret_valid("GH_TOKEN@api.github.com,github.com"),
	   "VAR@HOST,HOST");
	ok(!launch_secret_valid("TESTKEY"), "no host");
	ok(!launch_secret_valid("1X@a.test"), "bad VAR");
	ok(!launch_secret_valid("X@a..test"), "bad host");
	ok(!launch_secret_valid("X@a.test,"), "empty host");
	ok(!launch_secret_valid("X@a.test/x"), "path is no host");
}

static const char *const hosts[] = {"api.test"};
static const struct secret sec[] = {
	{.var = "K", .ph = (const uint8_t *)"ph-AAAAAAAAAAAAAAAAAA",
	 .ph_len = 21, .value = (const uint8_t *)"real-value",
	 .value_len = 10, .hosts = hosts, .n_hosts = 1},
};
static const struct secret_table tab = {sec, 1};

static void subst(void)
{
	uint8_t out[4096];
	size_t len, which;
	uint32_t used;
	const char *h = "GET /?q=ph-AAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: api.test\r\n"
			"X-Key: ph-AAAAAAAAAAAAAAAAAA\r\n"
			"Authorization: Basic dTpwaC1BQUFBQUFBQUFBQUFBQUFBQUE=\r\n\r\n";
	enum subst_status st = secret_subst_head(&tab, "api.test",
						 (const uint8_t *)h, strlen(h),
						 out, sizeof(out), &len, &used,
						 &which);
	is_int(st, SUBST_DONE, "replaced");
	out[len] = 0;
	ok(strstr((char *)out, "X-Key: real-value\r\n") != NULL, "header");
	ok(strstr((char *)out, "?q=real-value ") != NULL, "request line");
	/* base64("u:real-value") */
	ok(strstr((char *)out, "Basic dTpyZWFsLXZhbHVl\r\n") != NULL,
	   "Basic re-encoded: %s", out);
	ok(used == 1, "used bit");
	st = secret_subst_head(&tab, "other.test", (const uint8_t *)h,
			       strlen(h), out, sizeof(out), &len, &used,
			       &which);
	is_int(st, SUBST_FOREIGN, "other host: refused");
	st = secret_subst_head(&tab, NULL, (const uint8_t *)h, strlen(h), NULL,
			       0, &len, &used, &which);
	is_int(st, SUBST_FOREIGN, "in clear: refused");
	const char *b = "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
			"dTpwaC1BQUFBQUFBQUFBQUFBQUFBQUE=\r\n\r\n";
	st = secret_subst_head(&tab, "other.test", (const uint8_t *)b,
			       strlen(b), NULL, 0, &len, &used, &which);
	is_int(st, SUBST_FOREIGN, "placeholder inside Basic: refused");
	const char *none = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	st = secret_subst_head(&tab, "other.test", (const uint8_t *)none,
			       strlen(none), out, sizeof(out), &len, &used,
			       &which);
	is_int(st, SUBST_NONE, "no placeholder");
	st = secret_subst_head(&tab, "api.test", (const uint8_t *)h,
			       strlen(h), out, 40, &len, &used, &which);
	is_int(st, SUBST_TOO_LARGE, "output too small");
}

/* header:/format: (secret_set_headers): the proxy's header replaces
 * every guest line of that name, in any case and spelling, once. */
static void set_headers(void)
{
	static const struct secret hs[] = {
		{.var = "K", .ph = (const uint8_t *)"ph-AAAAAAAAAAAAAAAAAA",
		 .ph_len = 21, .value = (const uint8_t *)"real-value",
		 .value_len = 10, .hosts = hosts, .n_hosts = 1,
		 .header = "Authorization",
		 .fmt_pre = (const uint8_t *)"token ", .pre_len = 6,
		 .fmt_post = (const uint8_t *)"", .post_len = 0},
	};
	static const struct secret_table ht = {hs, 1};
	uint8_t out[4096];
	size_t len;
	uint32_t used;
	const char *none = "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n";
	enum subst_status st =
		secret_set_headers(&ht, "api.test", (const uint8_t *)none,
				   strlen(none), out, sizeof(out), &len, &used);
	is_int(st, SUBST_DONE, "header set without a placeholder");
	out[len] = 0;
	is_str((char *)out,
	       "GET / HTTP/1.1\r\nHost: api.test\r\n"
	       "Authorization: token real-value\r\n\r\n",
	       "added before the blank line");
	is_int(used, 1, "used bit");
	const char *many = "GET / HTTP/1.1\r\nauthorization: Bearer x\r\n"
			   "Host: api.test\r\nAUTHORIZATION : y\r\n"
			   "Authorization-Extra: z\r\n"
			   "X-Note: Authorization: q\r\n\r\n";
	st = secret_set_headers(&ht, "api.test", (const uint8_t *)many,
				strlen(many), out, sizeof(out), &len, &used);
	out[len] = 0;
	is_str((char *)out,
	       "GET / HTTP/1.1\r\nHost: api.test\r\n"
	       "Authorization-Extra: z\r\nX-Note: Authorization: q\r\n"
	       "Authorization: token real-value\r\n\r\n",
	       "every guest line of that name dropped, others kept");
	st = secret_set_headers(&ht, "other.test", (const uint8_t *)none,
				strlen(none), out, sizeof(out), &len, &used);
	is_int(st, SUBST_NONE, "another host: nothing set");
	st = secret_set_headers(&tab, "api.test", (const uint8_t *)none,
				strlen(none), out, sizeof(out), &len, &used);
	is_int(st, SUBST_NONE, "a secret without header: nothing set");
	st = secret_set_headers(&ht, "api.test", (const uint8_t *)none,
				strlen(none), out, 20, &len, &used);
	is_int(st, SUBST_TOO_LARGE, "output too small");
	const char *open_head = "GET / HTTP/1.1\r\nHost: api.test\r\n";
	st = secret_set_headers(&ht, "api.test", (const uint8_t *)open_head,
				strlen(open_head), out, sizeof(out), &len,
				&used);
	is_int(st, SUBST_MALFORMED, "a head without its blank line");
}

int main(void)
{
	placeholders();
	subst();
	set_headers();
	return done_testing();
}
