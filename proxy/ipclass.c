/* Address classes from the IANA special-purpose registries:
 *   https://www.iana.org/assignments/iana-ipv4-special-registry/
 *   https://www.iana.org/assignments/iana-ipv6-special-registry/
 * plus multicast (224/4, ff00::/8) and cloud metadata endpoints.
 *
 * The proxy connects only to IPC_GLOBAL addresses unless a cidr: rule names
 * the range, so this table errs on the side of "not global": registry entries
 * marked globally reachable but that no web service lives on (PCP/TURN
 * anycast, AS112, AMT, ORCHIDv2, DETs) are IPC_RESERVED, and for IPv6
 * anything outside 2000::/3 that no entry names is IPC_RESERVED too.
 *
 * Embedded IPv4: when an IPv6 address carries an IPv4 address that decides
 * where packets really go (v4-mapped, v4-compatible, NAT64, 6to4, Teredo),
 * a non-global inner address gives the inner address's class, so
 * ::ffff:127.0.0.1 is loopback and 64:ff9b::a9fe:a9fe is metadata. A global
 * inner address gives IPC_GLOBAL only for the forms that really reach it
 * (v4-mapped, the well-known NAT64 prefix); the deprecated or site-local
 * forms (v4-compatible, local-use NAT64, 6to4, Teredo) give IPC_TRANSLATED.
 */
#include "ipclass.h"

#include <string.h>
#include <sys/socket.h>

#include "../common/util.h"

struct range {
	struct ip_addr prefix;
	unsigned len;
	enum ip_class cls;
};

#define V4(a, b_, c, d) {AF_INET, {a, b_, c, d}}
#define R4(a, b_, c, d, l, k) {V4(a, b_, c, d), l, k}

/* Cloud metadata and host-service endpoints. A name that resolves to one of
 * these is the classic SSRF route to instance credentials.
 *   169.254.169.254  AWS, GCP, Azure IMDS, OpenStack, DigitalOcean, Oracle,
 *                    Hetzner, Linode, Vultr, Exoscale metadata
 *   169.254.169.253  AWS Route 53 Resolver (VPC DNS)
 *   169.254.169.123  AWS Time Sync Service
 *   169.254.169.250/.251 AWS VPC reserved endpoints (Windows KMS/activation)
 *   169.254.170.2    AWS ECS task metadata / credentials endpoint
 *   169.254.170.23   AWS EKS Pod Identity agent
 *   169.254.0.23     Tencent Cloud metadata (metadata.tencentyun.com)
 *   169.254.42.42    Scaleway metadata
 *   100.100.100.200  Alibaba Cloud ECS metadata
 *   192.0.0.192      Oracle Cloud (OCI) legacy metadata
 *   168.63.129.16    Azure WireServer / host node (a public address!)
 *   fd00:ec2::254    AWS IMDS over IPv6 (Nitro)
 *   fd00:ec2::253    AWS Route 53 Resolver over IPv6
 *   fd00:ec2::123    AWS Time Sync over IPv6
 *   fd00:ec2::23     AWS EKS Pod Identity agent over IPv6
 *   fd20:ce::254     GCP metadata server for IPv6-only instances
 *   fe80::a9fe:a9fe  OpenStack metadata over IPv6 (link-local)
 */
static const struct ip_addr metadata[] = {
	V4(169, 254, 169, 254),
	V4(169, 254, 169, 253),
	V4(169, 254, 169, 123),
	V4(169, 254, 169, 250),
	V4(169, 254, 169, 251),
	V4(169, 254, 170, 2),
	V4(169, 254, 170, 23),
	V4(169, 254, 0, 23),
	V4(169, 254, 42, 42),
	V4(100, 100, 100, 200),
	V4(192, 0, 0, 192),
	V4(168, 63, 129, 16),
	{AF_INET6, {0xfd, 0, 0x0e, 0xc2, [14] = 0x02, 0x54}},
	{AF_INET6, {0xfd, 0, 0x0e, 0xc2, [14] = 0x02, 0x53}},
	{AF_INET6, {0xfd, 0, 0x0e, 0xc2, [14] = 0x01, 0x23}},
	{AF_INET6, {0xfd, 0, 0x0e, 0xc2, [15] = 0x23}},
	{AF_INET6, {0xfd, 0x20, 0, 0xce, [14] = 0x02, 0x54}},
	{AF_INET6, {0xfe, 0x80, [12] = 0xa9, 0xfe, 0xa9, 0xfe}},
};

/* The longest matching prefix wins, so order does not matter. */
static const struct range ranges4[] = {
	R4(0, 0, 0, 0, 8, IPC_UNSPECIFIED),       /* RFC 791 "this network" */
	R4(10, 0, 0, 0, 8, IPC_PRIVATE),          /* RFC 1918 */
	R4(100, 64, 0, 0, 10, IPC_SHARED),        /* RFC 6598 CGNAT */
	R4(127, 0, 0, 0, 8, IPC_LOOPBACK),        /* RFC 1122 */
	R4(169, 254, 0, 0, 16, IPC_LINK_LOCAL),   /* RFC 3927 */
	R4(172, 16, 0, 0, 12, IPC_PRIVATE),       /* RFC 1918 */
	/* RFC 6890 IETF protocol assignments: 192.0.0.0/29 DS-Lite,
	 * .8 dummy (RFC 7600), .9 PCP anycast (RFC 7723), .10 TURN anycast
	 * (RFC 8155), .170/.171 NAT64 discovery (RFC 7050); all fail closed. */
	R4(192, 0, 0, 0, 24, IPC_RESERVED),
	R4(192, 0, 2, 0, 24, IPC_DOCUMENTATION),  /* RFC 5737 TEST-NET-1 */
	R4(192, 31, 196, 0, 24, IPC_RESERVED),    /* RFC 7535 AS112-v4 */
	R4(192, 52, 193, 0, 24, IPC_RESERVED),    /* RFC 7450 AMT */
	R4(192, 88, 99, 0, 24, IPC_RESERVED),     /* RFC 7526 6to4 relay */
	R4(192, 168, 0, 0, 16, IPC_PRIVATE),      /* RFC 1918 */
	R4(192, 175, 48, 0, 24, IPC_RESERVED),    /* RFC 7534 AS112 */
	R4(198, 18, 0, 0, 15, IPC_BENCHMARK),     /* RFC 2544 */
	R4(198, 51, 100, 0, 24, IPC_DOCUMENTATION), /* RFC 5737 TEST-NET-2 */
	R4(203, 0, 113, 0, 24, IPC_DOCUMENTATION),  /* RFC 5737 TEST-NET-3 */
	R4(224, 0, 0, 0, 4, IPC_MULTICAST),       /* RFC 5771 */
	R4(240, 0, 0, 0, 4, IPC_RESERVED),        /* RFC 1112 class E */
	R4(255, 255, 255, 255, 32, IPC_BROADCAST), /* RFC 919 */
};

#define V6(...) {AF_INET6, {__VA_ARGS__}}

static const struct range ranges6[] = {
	/* RFC 4291: outside 2000::/3 everything is reserved or special; the
	 * entries below only give those parts a more telling name. */
	{V6(0x20), 3, IPC_GLOBAL},
	{V6(0), 128, IPC_UNSPECIFIED},                       /* :: */
	{V6([15] = 1), 128, IPC_LOOPBACK},                   /* ::1 */
	{V6(0x01, 0x00), 64, IPC_RESERVED},                  /* 100::/64 discard, RFC 6666 */
	{V6(0x01, 0x00, 0, 0, 0, 0, 0, 1), 64, IPC_RESERVED}, /* 100:0:0:1::/64 dummy, RFC 9780 */
	{V6(0x20, 0x01), 23, IPC_RESERVED},                  /* 2001::/23 IETF, RFC 2928 */
	{V6(0x20, 0x01, 0, 0x02), 48, IPC_BENCHMARK},        /* 2001:2::/48 RFC 5180 */
	{V6(0x20, 0x01, 0x0d, 0xb8), 32, IPC_DOCUMENTATION}, /* 2001:db8::/32 RFC 3849 */
	{V6(0x26, 0x20, 0, 0x4f, 0x80, 0), 48, IPC_RESERVED}, /* AS112, RFC 7534 */
	{V6(0x3f, 0xff), 20, IPC_DOCUMENTATION},             /* 3fff::/20 RFC 9637 */
	{V6(0x5f, 0x00), 16, IPC_RESERVED},                  /* SRv6 SIDs, RFC 9602 */
	{V6(0xfc), 7, IPC_PRIVATE},                          /* ULA, RFC 4193 */
	{V6(0xfe, 0x80), 10, IPC_LINK_LOCAL},                /* RFC 4291 */
	{V6(0xfe, 0xc0), 10, IPC_RESERVED},                  /* site-local, RFC 3879 */
	{V6(0xff), 8, IPC_MULTICAST},                        /* RFC 4291 */
};

static const struct ip_addr pfx_mapped = V6([10] = 0xff, 0xff);
static const struct ip_addr pfx_nat64 = V6(0, 0x64, 0xff, 0x9b);
static const struct ip_addr pfx_nat64_local = V6(0, 0x64, 0xff, 0x9b, 0, 1);
static const struct ip_addr pfx_6to4 = V6(0x20, 0x02);
static const struct ip_addr pfx_teredo = V6(0x20, 0x01);

static enum ip_class lookup(const struct ip_addr *a, const struct range *t,
			    size_t n, enum ip_class dflt)
{
	for (size_t i = 0; i < ARRAY_SIZE(metadata); i++)
		if (ip_equal(a, &metadata[i]))
			return IPC_METADATA;
	enum ip_class best = dflt;
	int best_len = -1;
	for (size_t i = 0; i < n; i++) {
		if ((int)t[i].len > best_len &&
		    ip_in_prefix(a, &t[i].prefix, t[i].len)) {
			best = t[i].cls;
			best_len = (int)t[i].len;
		}
	}
	return best;
}

static void v4_from(struct ip_addr *out, const uint8_t *p, uint8_t xor)
{
	memset(out, 0, sizeof(*out));
	out->family = AF_INET;
	for (int i = 0; i < 4; i++)
		out->b[i] = p[i] ^ xor;
}

static enum ip_class classify4(const struct ip_addr *a)
{
	return lookup(a, ranges4, ARRAY_SIZE(ranges4), IPC_GLOBAL);
}

/* Use an embedded IPv4 address: its own class when it is not global, else
 * the class of the embedding (when_global). */
static void embed(struct ip_classification *out, const struct ip_addr *inner,
		  enum ip_class when_global)
{
	enum ip_class c = classify4(inner);
	out->embedded = true;
	out->inner = *inner;
	out->cls = c == IPC_GLOBAL ? when_global : c;
}

static bool is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void classify6(const struct ip_addr *a, struct ip_classification *out)
{
	const uint8_t *b = a->b;
	struct ip_addr in;

	if (ip_in_prefix(a, &pfx_mapped, 96)) {
		v4_from(&in, b + 12, 0);
		embed(out, &in, IPC_GLOBAL);
		return;
	}
	/* v4-compatible ::a.b.c.d (RFC 4291 2.5.5.1, deprecated); :: and ::1
	 * keep their own names, and ::/96 with a first octet of zero is
	 * 0.0.0.0/8 anyway. */
	if (is_zero(b, 12) && (b[12] || b[13] || b[14] > 0 || b[15] > 1)) {
		v4_from(&in, b + 12, 0);
		embed(out, &in, IPC_TRANSLATED);
		return;
	}
	if (ip_in_prefix(a, &pfx_nat64, 96)) { /* RFC 6052 well-known */
		v4_from(&in, b + 12, 0);
		embed(out, &in, IPC_GLOBAL);
		return;
	}
	if (ip_in_prefix(a, &pfx_nat64_local, 48)) {
		/* RFC 8215 local-use: the operator picks the prefix length.
		 * RFC 6052's /48 layout (v4 in bytes 6-7 and 9-10 around a zero
		 * u octet, zero suffix) when the address has that shape,
		 * otherwise the /96 layout (v4 in the last 32 bits). Both
		 * outcomes are non-global, only the reported class differs. */
		if (b[8] == 0 && is_zero(b + 11, 5) && !is_zero(b + 6, 5)) {
			uint8_t p48[4] = {b[6], b[7], b[9], b[10]};
			v4_from(&in, p48, 0);
		} else {
			v4_from(&in, b + 12, 0);
		}
		embed(out, &in, IPC_TRANSLATED);
		return;
	}
	if (ip_in_prefix(a, &pfx_6to4, 16)) { /* RFC 3056: 2002:V4ADDR::/48 */
		v4_from(&in, b + 2, 0);
		embed(out, &in, IPC_TRANSLATED);
		return;
	}
	if (ip_in_prefix(a, &pfx_teredo, 32)) {
		/* RFC 4380 4: 2001:0:SERVER:flags:port:~CLIENT. The client
		 * address is obfuscated by XOR with all ones; the packets end
		 * there, so it decides, then the server's. */
		v4_from(&in, b + 12, 0xff);
		if (classify4(&in) == IPC_GLOBAL) {
			struct ip_addr srv;
			v4_from(&srv, b + 4, 0);
			if (classify4(&srv) != IPC_GLOBAL)
				in = srv;
		}
		embed(out, &in, IPC_TRANSLATED);
		return;
	}
	out->cls = lookup(a, ranges6, ARRAY_SIZE(ranges6), IPC_RESERVED);
}

void ipclass_classify(const struct ip_addr *a, struct ip_classification *out)
{
	memset(out, 0, sizeof(*out));
	if (a->family == AF_INET)
		out->cls = classify4(a);
	else if (a->family == AF_INET6)
		classify6(a, out);
	else
		out->cls = IPC_RESERVED; /* fail closed on garbage */
}

bool ipclass_is_global(const struct ip_addr *a)
{
	struct ip_classification c;
	ipclass_classify(a, &c);
	return c.cls == IPC_GLOBAL;
}

const char *ipclass_name(enum ip_class c)
{
	switch (c) {
	case IPC_GLOBAL:
		return "global";
	case IPC_UNSPECIFIED:
		return "unspecified";
	case IPC_LOOPBACK:
		return "loopback";
	case IPC_PRIVATE:
		return "private";
	case IPC_SHARED:
		return "shared";
	case IPC_LINK_LOCAL:
		return "link-local";
	case IPC_METADATA:
		return "metadata";
	case IPC_MULTICAST:
		return "multicast";
	case IPC_BROADCAST:
		return "broadcast";
	case IPC_DOCUMENTATION:
		return "documentation";
	case IPC_BENCHMARK:
		return "benchmark";
	case IPC_RESERVED:
		return "reserved";
	case IPC_TRANSLATED:
		return "translated";
	}
	return "unknown";
}
