/* cidr: rules. Only the strict address forms count (see ip_parse_strict),
 * and a prefix with host bits set is refused rather than silently rounded:
 * "10.1.2.3/8" is more likely a typo than a wish to allow all of 10/8. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/ipaddr.h"
#include "policy_internal.h"

const char *policy_parse_cidr(const char *s, size_t len, bool allow,
			      struct ip_addr *addr, unsigned *prefix_len,
			      uint8_t key[CIDR_KEY_LEN])
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	if (alen == 0)
		return "empty address in cidr:";
	if (!ip_parse_strict(s, alen, addr))
		return "not an IP address (cidr: takes a dotted quad or an IPv6 address, optionally with /prefix-length)";
	unsigned max = addr->family == AF_INET ? 32 : 128;
	unsigned plen = max;
	if (slash) {
		const char *d = slash + 1;
		size_t dlen = len - alen - 1;
		if (dlen == 0 || dlen > 3 || (dlen > 1 && d[0] == '0'))
			return "bad prefix length after '/'";
		plen = 0;
		for (size_t i = 0; i < dlen; i++) {
			if (d[i] < '0' || d[i] > '9')
				return "bad prefix length after '/'";
			plen = plen * 10 + (unsigned)(d[i] - '0');
		}
		if (plen > max)
			return addr->family == AF_INET ? "prefix length above 32 for an IPv4 address"
						       : "prefix length above 128 for an IPv6 address";
	}
	/* Addresses are decided with ::ffff:a.b.c.d unwrapped (the host it
	 * reaches is IPv4), so a rule in the mapped form is an IPv4 rule; kept
	 * as IPv6 it could never match, and a deny would silently do nothing. */
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (addr->family == AF_INET6 && plen >= 96 &&
	    memcmp(addr->b, mapped, 12) == 0) {
		memmove(addr->b, addr->b + 12, 4);
		memset(addr->b + 4, 0, 12);
		addr->family = AF_INET;
		plen -= 96;
	}
	policy_cidr_key(addr, plen, key);
	struct ip_addr net = {.family = addr->family};
	memcpy(net.b, key + 2, 16);
	if (!ip_equal(&net, addr) || !ip_in_prefix(addr, &net, plen))
		return "host bits are set after the prefix length (write the network address, e.g. 10.0.0.0/8)";
	if (allow && plen == 0)
		return "over-broad: refusing to allow every address";
	*prefix_len = plen;
	return NULL;
}

/* Allow rules may not add up to a large share of an address family:
 * 0.0.0.0/1 and 128.0.0.0/1 are as broad as 0.0.0.0/0, which is refused.
 * The union of every allow cidr: rule (all files, all ports) is measured;
 * more than a sixteenth of the space (a /4 for IPv4) is refused. */
typedef unsigned __int128 u128;

struct span {
	u128 lo, hi;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

int policy_cidr_overbroad(const struct rule *rules, size_t n, int family,
			  const struct rule **widest_out, unsigned *percent)
{
	unsigned bits = family == AF_INET ? 32 : 128;
	struct span *v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	size_t k = 0;
	const struct rule *widest = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct rule *r = &rules[i];
		if (r->kind != RULE_CIDR || !r->allow || r->key[0] != family)
			continue;
		u128 lo = 0;
		for (unsigned j = 0; j < bits / 8; j++)
			lo = lo << 8 | (uint8_t)r->key[2 + j];
		unsigned hb = bits - r->prefix_len;
		u128 host = hb == 128 ? ~(u128)0 : (((u128)1 << hb) - 1);
		v[k].lo = lo;
		v[k++].hi = lo | host;
		if (!widest || r->prefix_len < widest->prefix_len)
			widest = r;
	}
	qsort(v, k, sizeof(*v), span_cmp);
	/* Count in units of 2^(bits-32) so that the sum fits; a sixteenth of
	 * the space is 2^28 units. */
	unsigned shift = bits - 32;
	uint64_t total = 0;
	u128 end = 0;
	bool have = false;
	for (size_t i = 0; i < k; i++) {
		u128 lo = v[i].lo;
		if (have && lo <= end)
			lo = end + 1;
		if (have && v[i].hi <= end)
			continue;
		total += (uint64_t)((v[i].hi >> shift) - (lo >> shift)) + 1;
		end = v[i].hi;
		have = true;
	}
	free(v);
	*percent = (unsigned)(total * 100 >> 32);
	*widest_out = widest;
	return total > (1ull << 28);
}
