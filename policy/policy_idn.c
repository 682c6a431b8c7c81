/* Names as a person reads them: the Unicode form of "xn--" labels beside
 * the punycode the policy compares, and a warning when a name mixes
 * scripts ("аррӏе.com" is Cyrillic letters under a Latin TLD: it looks
 * like apple.com and is another name). */
#include <errno.h>
#include <string.h>

#include "../common/util.h"
#include "policy_internal.h"

static int digit(char c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '0' && c <= '9')
		return c - '0' + 26;
	return -1;
}

/* Decode one punycode label (without "xn--") into code points. Returns
 * the count or -1. */
static int puny_decode(const char *in, size_t len, uint32_t *out, size_t max)
{
	size_t b = 0, n = 0;
	for (size_t j = 0; j < len; j++)
		if (in[j] == '-')
			b = j;
	if (b > max)
		return -1;
	for (size_t j = 0; j < b; j++) {
		if ((unsigned char)in[j] >= 0x80)
			return -1;
		out[n++] = (unsigned char)in[j];
	}
	uint32_t cp = 0x80, i = 0, bias = 72;
	for (size_t in_i = b > 0 ? b + 1 : 0; in_i < len;) {
		uint32_t old = i, w = 1;
		for (uint32_t k = PC_BASE;; k += PC_BASE) {
			if (in_i >= len)
				return -1;
			int d = digit(in[in_i++]);
			if (d < 0 || (uint64_t)d * w > UINT32_MAX - i)
				return -1;
			i += (uint32_t)d * w;
			uint32_t t = k <= bias ? PC_TMIN
				     : k >= bias + PC_TMAX ? PC_TMAX : k - bias;
			if ((uint32_t)d < t)
				break;
			if ((uint64_t)w * (PC_BASE - t) > UINT32_MAX)
				return -1;
			w *= PC_BASE - t;
		}
		bias = punycode_adapt(i - old, (uint32_t)n + 1, old == 0);
		if (i / (n + 1) > 0x10ffff - cp)
			return -1;
		cp += i / (uint32_t)(n + 1);
		i %= (uint32_t)(n + 1);
		if (n >= max || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		memmove(out + i + 1, out + i, (n - i) * sizeof(*out));
		out[i++] = cp;
		n++;
	}
	return (int)n;
}

static size_t utf8_put(uint32_t c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xc0 | c >> 6);
		o[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xe0 | c >> 12);
		o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | c >> 18);
	o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

enum script { S_NONE, S_LATIN, S_GREEK, S_CYRILLIC, S_OTHER };

static enum script script_of(uint32_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 0xc0 && c <= 0x24f))
		return S_LATIN;
	if (c >= 0x370 && c <= 0x3ff)
		return S_GREEK;
	if (c >= 0x400 && c <= 0x52f)
		return S_CYRILLIC;
	if (c < 0x80)
		return S_NONE; /* digits, '-', '_' */
	return S_OTHER;
}

int policy_name_unicode(const char *name, char *out, size_t outsz,
			bool *mixed)
{
	size_t o = 0, len = strlen(name);
	bool idn = false;
	enum script seen = S_NONE;
	*mixed = false;
	for (size_t i = 0; i <= len;) {
		const char *dot = memchr(name + i, '.', len - i);
		size_t l = dot ? (size_t)(dot - (name + i)) : len - i;
		const char *lab = name + i;
		uint32_t cps[64];
		int n;
		if (l > 4 && !memcmp(lab, "xn--", 4)) {
			n = puny_decode(lab + 4, l - 4, cps, 64);
			if (n <= 0)
				return -EINVAL;
			idn = true;
		} else {
			n = 0;
			for (size_t k = 0; k < l && k < 64; k++)
				cps[n++] = (unsigned char)lab[k];
		}
		for (int k = 0; k < n; k++) {
			enum script s = script_of(cps[k]);
			if (s != S_NONE && seen != S_NONE && s != seen)
				*mixed = true;
			if (s != S_NONE)
				seen = s;
			if (o + 5 >= outsz)
				return -ENAMETOOLONG;
			o += utf8_put(cps[k], out + o);
		}
		if (!dot)
			break;
		if (o + 2 >= outsz)
			return -ENAMETOOLONG;
		out[o++] = '.';
		i += l + 1;
	}
	out[o] = '\0';
	return idn;
}
