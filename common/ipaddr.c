#include "ipaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* Only four decimal parts 0..255 without leading zeros: the forms that the
 * C library, browsers and curl all read the same way. "127.1", "0x7f.1",
 * "0177.0.0.1" and "2130706433" are each read differently by different
 * resolvers, which is how allow-lists get bypassed; we refuse them. */
static bool parse_dotted_quad(const char *s, size_t len, uint8_t out[4])
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		size_t start = i;
		unsigned v = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 3) {
			v = v * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		size_t digits = i - start;
		if (digits == 0 || v > 255 || (digits > 1 && s[start] == '0'))
			return false;
		out[part] = (uint8_t)v;
	}
	return i == len;
}

bool ip_parse_strict(const char *s, size_t len, struct ip_addr *out)
{
	struct ip_addr a = {0};
	if (len == 0 || len >= IP_STR_MAX)
		return false;
	if (memchr(s, ':', len)) {
		char buf[IP_STR_MAX];
		memcpy(buf, s, len);
		buf[len] = '\0';
		if (strchr(buf, '%')) /* zone ids name host interfaces */
			return false;
		if (inet_pton(AF_INET6, buf, a.b) != 1)
			return false;
		a.family = AF_INET6;
	} else {
		if (!parse_dotted_quad(s, len, a.b))
			return false;
		a.family = AF_INET;
	}
	*out = a;
	return true;
}

bool ip_looks_numeric(const char *s, size_t len)
{
	/* "127.0.0.1." is the same name as "127.0.0.1" to a resolver. */
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0)
		return false;
	/* A name whose last label is all digits (or 0x-hex) would be read as
	 * an address by some resolver: no real TLD is numeric. */
	size_t last = len;
	while (last > 0 && s[last - 1] != '.')
		last--;
	const char *lab = s + last;
	size_t n = len - last;
	if (n == 0)
		return false;
	if (n > 2 && lab[0] == '0' && (lab[1] == 'x' || lab[1] == 'X')) {
		for (size_t i = 2; i < n; i++) {
			char c = lab[i];
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			      (c >= 'A' && c <= 'F')))
				return false;
		}
		return true;
	}
	for (size_t i = 0; i < n; i++)
		if (lab[i] < '0' || lab[i] > '9')
			return false;
	return true;
}

void ip_format(const struct ip_addr *a, char out[IP_STR_MAX])
{
	if (!inet_ntop(a->family == AF_INET6 ? AF_INET6 : AF_INET, a->b, out,
		       IP_STR_MAX))
		memcpy(out, "?", 2);
}

bool ip_in_prefix(const struct ip_addr *a, const struct ip_addr *prefix,
		  unsigned prefix_len)
{
	if (a->family != prefix->family)
		return false;
	unsigned max = a->family == AF_INET ? 32 : 128;
	if (prefix_len > max)
		return false;
	unsigned full = prefix_len / 8, rest = prefix_len % 8;
	if (memcmp(a->b, prefix->b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a->b[full] & mask) == (prefix->b[full] & mask);
}

bool ip_equal(const struct ip_addr *a, const struct ip_addr *b)
{
	return a->family == b->family && memcmp(a->b, b->b, 16) == 0;
}

size_t ip_to_sockaddr(const struct ip_addr *a, uint16_t port,
		      struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, a->b, 4);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	memcpy(&sin6->sin6_addr, a->b, 16);
	return sizeof(*sin6);
}

int ip_from_sockaddr(const struct sockaddr_storage *ss, struct ip_addr *a,
		     uint16_t *port)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		a->family = AF_INET;
		memcpy(a->b, &sin->sin_addr, 4);
		if (port)
			*port = ntohs(sin->sin_port);
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 =
			(const struct sockaddr_in6 *)ss;
		a->family = AF_INET6;
		memcpy(a->b, &sin6->sin6_addr, 16);
		if (port)
			*port = ntohs(sin6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}
