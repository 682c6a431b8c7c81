/* Host names and host patterns: normalisation (case, trailing dot, IDN to
 * punycode) and the refusal of patterns that are not names at all. Names are
 * compared label by label, never as substrings, so everything here produces
 * one canonical spelling per name. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/ipaddr.h"
#include "../common/utf8.h"
#include "policy_internal.h"

#define NAME_MAX_LEN 253
#define LABEL_MAX_LEN 63

uint32_t punycode_adapt(uint32_t delta, uint32_t numpoints, bool first)
{
	delta = first ? delta / PC_DAMP : delta / 2;
	delta += delta / numpoints;
	uint32_t k = 0;
	while (delta > ((PC_BASE - PC_TMIN) * PC_TMAX) / 2) {
		delta /= PC_BASE - PC_TMIN;
		k += PC_BASE;
	}
	return k + (PC_BASE - PC_TMIN + 1) * delta / (delta + PC_SKEW);
}

static char pc_digit(uint32_t d)
{
	return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

/* Encode code points as punycode (without the "xn--" prefix). Returns the
 * length written, or -1 when it does not fit or overflows. */
static int punycode_encode(const uint32_t *cp, size_t n, char *out,
			   size_t outsz)
{
	size_t o = 0;
	uint32_t basic = 0;
	for (size_t i = 0; i < n; i++) {
		if (cp[i] < 0x80) {
			if (o >= outsz)
				return -1;
			out[o++] = (char)cp[i];
			basic++;
		}
	}
	uint32_t h = basic;
	if (basic > 0) {
		if (o >= outsz)
			return -1;
		out[o++] = '-';
	}
	uint32_t cur = 0x80, delta = 0, bias = 72;
	while (h < n) {
		uint32_t m = UINT32_MAX;
		for (size_t i = 0; i < n; i++)
			if (cp[i] >= cur && cp[i] < m)
				m = cp[i];
		if ((uint64_t)(m - cur) * (h + 1) + delta > UINT32_MAX)
			return -1;
		delta += (m - cur) * (h + 1);
		cur = m;
		for (size_t i = 0; i < n; i++) {
			if (cp[i] < cur && ++delta == 0)
				return -1;
			if (cp[i] != cur)
				continue;
			uint32_t q = delta;
			for (uint32_t k = PC_BASE;; k += PC_BASE) {
				uint32_t t = k <= bias ? PC_TMIN
					     : k >= bias + PC_TMAX ? PC_TMAX
								   : k - bias;
				if (q < t)
					break;
				if (o >= outsz)
					return -1;
				out[o++] = pc_digit(t + (q - t) % (PC_BASE - t));
				q = (q - t) / (PC_BASE - t);
			}
			if (o >= outsz)
				return -1;
			out[o++] = pc_digit(q);
			bias = punycode_adapt(delta, h + 1, h == basic);
			delta = 0;
			h++;
		}
		delta++;
		cur++;
	}
	return (int)o;
}

/* Simple lower-casing beyond ASCII for the scripts most IDNs use (Latin-1,
 * Latin Extended-A, Greek, Cyrillic). Full IDNA mapping (NFC, case folding
 * of every script) is not attempted: a name we do not fold simply does not
 * match, which fails closed. */
static uint32_t fold(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if ((c >= 0xc0 && c <= 0xde && c != 0xd7) ||
	    (c >= 0x391 && c <= 0x3ab && c != 0x3a2) ||
	    (c >= 0x410 && c <= 0x42f))
		return c + 32;
	if (c >= 0x400 && c <= 0x40f)
		return c + 80;
	if (c >= 0x100 && c <= 0x17f && c != 0x130 && c != 0x131 &&
	    c != 0x138 && c != 0x149 && c != 0x17f) {
		bool odd_upper = (c >= 0x139 && c <= 0x148) ||
				 (c >= 0x179 && c <= 0x17e);
		if (odd_upper ? (c & 1) : !(c & 1))
			return c + 1;
	}
	return c;
}

static bool ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_';
}

/* Normalise one label into out; returns its length or -EINVAL. */
static int label_normalize(const unsigned char *s, size_t len, char *out)
{
	bool ascii = true;
	for (size_t i = 0; i < len; i++)
		if (s[i] >= 0x80)
			ascii = false;
	if (ascii) {
		if (len < 1 || len > LABEL_MAX_LEN)
			return -EINVAL;
		for (size_t i = 0; i < len; i++) {
			unsigned char c = s[i];
			if (c >= 'A' && c <= 'Z')
				c = (unsigned char)(c + 32);
			if (!ldh(c))
				return -EINVAL;
			out[i] = (char)c;
		}
		return (int)len;
	}
	uint32_t cps[LABEL_MAX_LEN + 1];
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t step;
		if (n >= sizeof(cps) / sizeof(cps[0]) ||
		    !(step = utf8_decode(s + i, len - i, &cp)))
			return -EINVAL;
		i += step;
		cp = fold(cp);
		/* Non-ASCII may be anything printable; ASCII must still be LDH. */
		if (cp < 0x80 && !ldh((unsigned char)cp))
			return -EINVAL;
		if (cp >= 0x80 && cp < 0xa0)
			return -EINVAL;
		cps[n++] = cp;
	}
	memcpy(out, "xn--", 4);
	int r = punycode_encode(cps, n, out + 4, LABEL_MAX_LEN - 4);
	if (r <= 0)
		return -EINVAL;
	return r + 4;
}

int policy_normalize_name(const char *in, size_t len, char *out, size_t outsz)
{
	const unsigned char *s = (const unsigned char *)in;
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || outsz == 0)
		return -EINVAL;
	char buf[NAME_MAX_LEN + LABEL_MAX_LEN + 2];
	size_t o = 0;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.')
			continue;
		if (i < len && s[i] == '\0')
			return -EINVAL;
		if (o > 0)
			buf[o++] = '.';
		if (i - start > 4 * LABEL_MAX_LEN)
			return -EINVAL;
		int r = label_normalize(s + start, i - start, buf + o);
		if (r < 0)
			return r;
		o += (size_t)r;
		if (o > NAME_MAX_LEN)
			return -EINVAL;
		start = i + 1;
	}
	if (memchr(in, '\0', len) || o + 1 > outsz)
		return -EINVAL;
	memcpy(out, buf, o);
	out[o] = '\0';
	return (int)o;
}

static size_t count_labels(const char *s)
{
	size_t n = 1;
	for (; *s; s++)
		n += *s == '.';
	return n;
}

const char *policy_parse_host(const char *s, size_t len, bool allow,
			      struct psl **psl, enum rule_kind *kind,
			      char *out, size_t outsz)
{
	struct ip_addr a;
	if (len == 0)
		return "empty host pattern";
	if (memchr(s, '\0', len))
		return "NUL byte in host pattern";
	if (len > 2 && s[0] == '[' && s[len - 1] == ']')
		return "an IP address is not a host name; write it as cidr: (e.g. cidr: ::1/128)";
	if (ip_parse_strict(s, len, &a))
		return a.family == AF_INET ? "an IP address is not a host name; write it as cidr: (e.g. cidr: 192.0.2.1/32)"
				     : "an IP address is not a host name; write it as cidr: (e.g. cidr: 2001:db8::1/128)";
	if (memchr(s, ':', len) || memchr(s, '/', len))
		return "not a host name (':' and '/' are not allowed; ports go in ports:, addresses in cidr:)";
	*kind = RULE_EXACT;
	size_t skip = 0;
	if (len >= 3 && memcmp(s, "**.", 3) == 0)
		*kind = RULE_STAR2, skip = 3;
	else if (len >= 2 && memcmp(s, "*.", 2) == 0)
		*kind = RULE_STAR1, skip = 2;
	else if ((len == 1 && s[0] == '*') || (len == 2 && !memcmp(s, "**", 2))) {
		if (allow)
			return "refusing to allow every host name; list the names needed";
		/* Deny "**" (every name) or "*" (single-label names): an empty
		 * suffix, the least specific key of its kind. */
		*kind = len == 1 ? RULE_STAR1 : RULE_STAR2;
		if (outsz)
			out[0] = '\0';
		return NULL;
	}
	if (memchr(s + skip, '*', len - skip))
		return "a wildcard is only allowed as the whole leftmost label (\"*.example.com\" or \"**.example.com\")";
	if (policy_normalize_name(s + skip, len - skip, out, outsz) < 0)
		return "not a valid host name (labels of 1-63 letters, digits, '-' or '_'; at most 253 bytes)";
	size_t olen = strlen(out);
	if (ip_parse_strict(out, olen, &a))
		return "an IP address is not a host name; write it as cidr:";
	if (ip_looks_numeric(out, olen))
		return "neither a host name nor an IP address (numeric forms like 127.1 or 2130706433 are refused; use a dotted quad in cidr:)";
	if (allow && *kind != RULE_EXACT) {
		if (count_labels(out) < 2)
			return "over-broad: a wildcard over a top-level domain would allow a whole TLD";
		if (!*psl)
			*psl = psl_load(NULL);
		if (*psl && psl_is_public_suffix(*psl, out))
			return "over-broad: the wildcard's suffix is a public suffix (anyone can register names under it)";
		if (*psl && *kind == RULE_STAR2 &&
		    psl_has_suffix_below(*psl, out))
			return "over-broad: public suffixes lie below the wildcard's suffix (anyone can register names there); list the names needed";
		if (!*psl)
			return "out of memory loading the public suffix list";
	}
	return NULL;
}
