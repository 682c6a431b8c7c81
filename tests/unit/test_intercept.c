/* What interception does with an allowed TLS connection (intercept.c,
 * intercept_wants): splice, take, or refuse under inspect: all. */
#include <string.h>

#include "../../proxy/intercept.h"
#include "tap.h"

int main(void)
{
	char err[300], why[400];
	const char *insp[] = {"insp.example.com"};
	struct intercept *one =
		intercept_new(NULL, insp, 1, false, NULL, 0, NULL, NULL, err,
			      sizeof(err));
	ok(one != NULL, "inspect: true only: %s", one ? "made" : err);
	is_int(intercept_wants(one, "insp.example.com", why, sizeof(why)),
	       ICPT_TAKE, "the inspected host is taken");
	is_int(intercept_wants(one, "other.example.com", why, sizeof(why)),
	       ICPT_SPLICE, "another host is spliced");
	is_int(intercept_wants(one, NULL, why, sizeof(why)), ICPT_SPLICE,
	       "by address: spliced");
	ok(!intercept_records(one, "other.example.com"),
	   "another host's requests are not recorded");
	intercept_free(one);

	const char *names[] = {"example.com", "cdn.example.net"};
	struct intercept *all = intercept_new(NULL, NULL, 0, true, names, 2,
					      NULL, NULL, err, sizeof(err));
	ok(all != NULL, "inspect: all: %s", all ? "made" : err);
	static const struct {
		const char *name;
		enum icpt_want want;
		const char *why;
	} cases[] = {
		{"example.com", ICPT_TAKE, NULL},
		{"api.example.com", ICPT_TAKE, NULL},
		{"a.b.c.d.e.cdn.example.net", ICPT_TAKE, NULL},
		{"a_b.example.com", ICPT_REFUSE, "'_'"},
		{"badexample.com", ICPT_REFUSE, "not under the names"},
		{"example.com.evil.test", ICPT_REFUSE, "not under the names"},
		{"example.net", ICPT_REFUSE, "not under the names"},
		{NULL, ICPT_REFUSE, "address"},
		{"host.sandbox.internal", ICPT_SPLICE, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why[0] = '\0';
		enum icpt_want w =
			intercept_wants(all, cases[i].name, why, sizeof(why));
		ok(w == cases[i].want &&
			   (!cases[i].why || strstr(why, cases[i].why)),
		   "%s: %d (%s)", cases[i].name ? cases[i].name : "(address)",
		   (int)w, why);
	}
	ok(intercept_records(all, "api.example.com"),
	   "every name's requests are recorded");
	intercept_free(all);
	return done_testing();
}
