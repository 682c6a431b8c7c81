/* Fuzz the terminal escaper and the punycode display: any bytes escaped
 * come out with no C0/C1 control, ESC, DEL, bidi override or invalid
 * UTF-8, and a cut output is still terminated; any name decoded for
 * display never overflows and its Unicode form, escaped, is clean too.
 * Also the JSON form: a string literal with the same guarantee. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/termsafe.h"
#include "../../policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* No byte a terminal acts on, and only valid UTF-8 without C1 or
 * bidi/invisible formatting characters. */
static void check_clean(const unsigned char *s, size_t n, int keep_nl)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		if (c < 0x20 && !(keep_nl && c == '\n'))
			abort();
		if (c == 0x7f)
			abort();
		size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2
			     : c >= 0xe0 && c <= 0xef ? 3
			     : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (!len || i + len > n)
			abort();
		uint32_t cp = len == 1 ? c : (uint32_t)(c & (0x7f >> len));
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				abort();
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
		    (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200f ||
		    cp == 0x200e || cp == 0x061c || cp == 0xfeff)
			abort();
		i += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char small[32], big[4096];
	term_escape((const char *)data, size, small, sizeof(small), size & 1);
	if (memchr(small, '\0', sizeof(small)) == NULL)
		abort();
	check_clean((const unsigned char *)small, strlen(small), size & 1);
	if (size * 4 + 1 <= sizeof(big)) {
		if (term_escape((const char *)data, size, big, sizeof(big), 0))
			abort(); /* 4 bytes out per byte in always fits */
		check_clean((const unsigned char *)big, strlen(big), 0);
	}
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);
	if (f) {
		term_put_json_str(f, s);
		fclose(f);
		if (buf && (blen < 2 || buf[0] != '"' || buf[blen - 1] != '"'))
			abort();
		if (buf)
			check_clean((const unsigned char *)buf, blen, 0);
		free(buf);
	}
	char uni[1024];
	bool mixed;
	int r = policy_name_unicode(s, uni, sizeof(uni), &mixed);
	if (r >= 0) {
		if (memchr(uni, '\0', sizeof(uni)) == NULL)
			abort();
		char *e = term_escape_dup(uni, strlen(uni), false);
		if (e)
			check_clean((const unsigned char *)e, strlen(e), 0);
		free(e);
	}
	free(s);
	return 0;
}
