/* Escaping for terminals (termsafe.h). */
#include "termsafe.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

bool term_hidden(uint32_t c)
{
	return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) ||
	       c == 0x061c || (c >= 0x200b && c <= 0x200f) ||
	       (c >= 0x2028 && c <= 0x202e) || (c >= 0x2060 && c <= 0x2069) ||
	       c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb);
}

int term_escape(const char *in, size_t len, char *out, size_t outsz,
		bool keep_newlines)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;
	if (outsz == 0)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < len;) {
		char tmp[16];
		size_t tn;
		uint32_t cp;
		size_t n = utf8_decode(s + i, len - i, &cp);
		if (n == 0) {
			tn = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
			n = 1;
		} else if (cp == '\n' && keep_newlines) {
			tmp[0] = '\n';
			tn = 1;
		} else if (cp == '\\') {
			memcpy(tmp, "\\\\", 2);
			tn = 2;
		} else if (term_hidden(cp)) {
			tn = cp < 0x80 ? (size_t)snprintf(tmp, sizeof(tmp),
							  "\\x%02x", cp)
				       : (size_t)snprintf(tmp, sizeof(tmp),
							  "\\u{%04x}", cp);
		} else {
			memcpy(tmp, s + i, n);
			tn = n;
		}
		if (o + tn >= outsz) {
			out[o] = '\0';
			return -ENAMETOOLONG;
		}
		memcpy(out + o, tmp, tn);
		o += tn;
		i += n;
	}
	out[o] = '\0';
	return 0;
}

char *term_escape_dup(const char *s, size_t len, bool keep_newlines)
{
	/* At most 4 output bytes per input byte ("\x1b" for one, "\u{202e}"
	 * for three). */
	size_t cap = len * 4 + 1;
	char *out = malloc(cap);
	if (out)
		term_escape(s, len, out, cap, keep_newlines);
	return out;
}

void term_fputs(const char *s, FILE *f, bool keep_newlines)
{
	if (!s)
		return;
	size_t len = strlen(s);
	char buf[1024];
	if (len * 4 + 1 <= sizeof(buf)) {
		term_escape(s, len, buf, sizeof(buf), keep_newlines);
		fputs(buf, f);
		return;
	}
	char *d = term_escape_dup(s, len, keep_newlines);
	if (d) {
		fputs(d, f);
		free(d);
	} else {
		fputs("(out of memory)", f);
	}
}

void term_put_json_str(FILE *f, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = strlen((const char *)p);
	fputc('"', f);
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_decode(p + i, len - i, &cp);
		if (n == 0) {
			fputs("\\ufffd", f); /* not UTF-8: JSON cannot carry it */
			i++;
			continue;
		}
		if (cp == '"' || cp == '\\') {
			fputc('\\', f);
			fputc((int)cp, f);
		} else if (term_hidden(cp)) {
			fputs("\\u", f);
			for (int sh = 12; sh >= 0; sh -= 4)
				fputc(hex[(cp >> sh) & 0xf], f);
		} else {
			fwrite(p + i, 1, n, f);
		}
		i += n;
	}
	fputc('"', f);
}
