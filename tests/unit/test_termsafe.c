/* Terminal escaping (common/termsafe.c) and the Unicode display of
 * punycode names (policy/policy_idn.c): exact outputs for the hostile
 * cases of issue 15. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/termsafe.h"
#include "../../policy/policy.h"
#include "tap.h"

static void esc(const char *in, const char *want, bool nl, const char *what)
{
	char out[256];
	term_escape(in, strlen(in), out, sizeof(out), nl);
	is_str(out, want, "%s", what);
}

int main(void)
{
	esc("plain.example.com", "plain.example.com", false, "plain text kept");
	esc("caf\xc3\xa9", "caf\xc3\xa9", false, "printable UTF-8 kept");
	esc("\x1b]52;c;ZQ==\x07", "\\x1b]52;c;ZQ==\\x07", false,
	    "OSC 52 (clipboard) made visible");
	esc("\x1b[2Kok", "\\x1b[2Kok", false, "erase line made visible");
	esc("a\xc2\x9b" "31m", "a\\u{009b}31m", false, "C1 CSI made visible");
	esc("x\xe2\x80\xaey", "x\\u{202e}y", false, "RLO made visible");
	esc("x\xe2\x81\xa6y", "x\\u{2066}y", false, "LRI made visible");
	esc("\xff\xfe", "\\xff\\xfe", false, "invalid UTF-8 as bytes");
	esc("\xc0\xaf", "\\xc0\\xaf", false, "overlong form as bytes");
	esc("a\\x1b", "a\\\\x1b", false, "a backslash is doubled");
	esc("a\nb\tc", "a\\x0ab\\x09c", false, "newline and tab escaped");
	esc("a\nb", "a\nb", true, "newline kept when asked");
	char small[8];
	ok(term_escape("\x1b\x1b\x1b", 3, small, sizeof(small), false) < 0 &&
		   !strcmp(small, "\\x1b"),
	   "a cut output ends at a whole escape (%s)", small);

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	term_put_json_str(f, "q\"\x1b\xc2\x9b\xe2\x80\xae\xff");
	fclose(f);
	is_str(buf, "\"q\\\"\\u001b\\u009b\\u202e\\ufffd\"",
	       "JSON form: \\u escapes, U+FFFD for non-UTF-8");
	free(buf);

	char uni[256];
	bool mixed;
	is_int(policy_name_unicode("xn--80ak6aa92e.com", uni, sizeof(uni), &mixed),
	       1, "punycode label decoded");
	is_str(uni, "\xd0\xb0\xd1\x80\xd1\x80\xd3\x8f\xd0\xb5.com",
	       "Cyrillic look-alike of apple.com");
	ok(mixed, "Cyrillic under a Latin TLD is mixed");
	is_int(policy_name_unicode("xn--mnchen-3ya.de", uni, sizeof(uni), &mixed),
	       1, "m\xc3\xbcnchen decoded");
	ok(!mixed && !strcmp(uni, "m\xc3\xbcnchen.de"), "Latin only: no warning");
	is_int(policy_name_unicode("example.com", uni, sizeof(uni), &mixed), 0,
	       "ASCII name: nothing to show");
	is_int(policy_name_unicode("xn--zz9.com", uni, sizeof(uni), &mixed),
	       -EINVAL, "bad punycode refused");
	return done_testing();
}
