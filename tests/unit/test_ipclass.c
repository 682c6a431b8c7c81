/* Address classes: every registry range at its edges (first and last address
 * inside, one just outside), the metadata endpoints, and every IPv6 form
 * that smuggles an IPv4 address. */
#include <string.h>
#include <sys/socket.h>

#include "../../common/ipaddr.h"
#include "../../common/util.h"
#include "../../proxy/ipclass.h"
#include "tap.h"

#define G IPC_GLOBAL
#define UNSPEC IPC_UNSPECIFIED
#define LOOP IPC_LOOPBACK
#define PRIV IPC_PRIVATE
#define SHARED IPC_SHARED
#define LL IPC_LINK_LOCAL
#define META IPC_METADATA
#define MC IPC_MULTICAST
#define BC IPC_BROADCAST
#define DOC IPC_DOCUMENTATION
#define BENCH IPC_BENCHMARK
#define RES IPC_RESERVED
#define XLAT IPC_TRANSLATED

struct tcase {
	const char *addr;
	enum ip_class cls;
	const char *inner; /* embedded IPv4 expected, or NULL for none */
};

static const struct tcase v4[] = {
	/* 0.0.0.0/8 */
	{"0.0.0.0", UNSPEC, NULL},
	{"0.255.255.255", UNSPEC, NULL},
	{"1.0.0.0", G, NULL},
	/* 10/8 */
	{"9.255.255.255", G, NULL},
	{"10.0.0.0", PRIV, NULL},
	{"10.255.255.255", PRIV, NULL},
	{"11.0.0.0", G, NULL},
	/* 100.64/10 */
	{"100.63.255.255", G, NULL},
	{"100.64.0.0", SHARED, NULL},
	{"100.127.255.255", SHARED, NULL},
	{"100.128.0.0", G, NULL},
	/* 127/8 */
	{"126.255.255.255", G, NULL},
	{"127.0.0.0", LOOP, NULL},
	{"127.0.0.1", LOOP, NULL},
	{"127.255.255.255", LOOP, NULL},
	{"128.0.0.0", G, NULL},
	/* 169.254/16 */
	{"169.253.255.255", G, NULL},
	{"169.254.0.0", LL, NULL},
	{"169.254.255.255", LL, NULL},
	{"169.255.0.0", G, NULL},
	/* 172.16/12 */
	{"172.15.255.255", G, NULL},
	{"172.16.0.0", PRIV, NULL},
	{"172.31.255.255", PRIV, NULL},
	{"172.32.0.0", G, NULL},
	/* 192.0.0/24 and its entries */
	{"191.255.255.255", G, NULL},
	{"192.0.0.0", RES, NULL},
	{"192.0.0.7", RES, NULL},
	{"192.0.0.8", RES, NULL},
	{"192.0.0.9", RES, NULL},
	{"192.0.0.10", RES, NULL},
	{"192.0.0.170", RES, NULL},
	{"192.0.0.171", RES, NULL},
	{"192.0.0.255", RES, NULL},
	{"192.0.1.0", G, NULL},
	/* 192.0.2/24 */
	{"192.0.1.255", G, NULL},
	{"192.0.2.0", DOC, NULL},
	{"192.0.2.255", DOC, NULL},
	{"192.0.3.0", G, NULL},
	/* 192.31.196/24 */
	{"192.31.195.255", G, NULL},
	{"192.31.196.0", RES, NULL},
	{"192.31.196.255", RES, NULL},
	{"192.31.197.0", G, NULL},
	/* 192.52.193/24 */
	{"192.52.192.255", G, NULL},
	{"192.52.193.0", RES, NULL},
	{"192.52.193.255", RES, NULL},
	{"192.52.194.0", G, NULL},
	/* 192.88.99/24 */
	{"192.88.98.255", G, NULL},
	{"192.88.99.0", RES, NULL},
	{"192.88.99.255", RES, NULL},
	{"192.88.100.0", G, NULL},
	/* 192.168/16 */
	{"192.167.255.255", G, NULL},
	{"192.168.0.0", PRIV, NULL},
	{"192.168.255.255", PRIV, NULL},
	{"192.169.0.0", G, NULL},
	/* 192.175.48/24 */
	{"192.175.47.255", G, NULL},
	{"192.175.48.0", RES, NULL},
	{"192.175.48.255", RES, NULL},
	{"192.175.49.0", G, NULL},
	/* 198.18/15 */
	{"198.17.255.255", G, NULL},
	{"198.18.0.0", BENCH, NULL},
	{"198.19.255.255", BENCH, NULL},
	{"198.20.0.0", G, NULL},
	/* 198.51.100/24 */
	{"198.51.99.255", G, NULL},
	{"198.51.100.0", DOC, NULL},
	{"198.51.100.255", DOC, NULL},
	{"198.51.101.0", G, NULL},
	/* 203.0.113/24 */
	{"203.0.112.255", G, NULL},
	{"203.0.113.0", DOC, NULL},
	{"203.0.113.255", DOC, NULL},
	{"203.0.114.0", G, NULL},
	/* 224/4 */
	{"223.255.255.255", G, NULL},
	{"224.0.0.0", MC, NULL},
	{"239.255.255.255", MC, NULL},
	/* 240/4 and the broadcast address at its end */
	{"240.0.0.0", RES, NULL},
	{"255.255.255.254", RES, NULL},
	{"255.255.255.255", BC, NULL},
	/* ordinary globals */
	{"8.8.8.8", G, NULL},
	{"1.1.1.1", G, NULL},
	{"93.184.216.34", G, NULL},
	/* metadata endpoints win over their enclosing range */
	{"169.254.169.254", META, NULL},
	{"169.254.169.253", META, NULL},
	{"169.254.169.123", META, NULL},
	{"169.254.170.2", META, NULL},
	{"169.254.170.23", META, NULL},
	{"169.254.0.23", META, NULL},
	{"169.254.42.42", META, NULL},
	{"100.100.100.200", META, NULL},
	{"192.0.0.192", META, NULL},
	{"168.63.129.16", META, NULL},
	{"169.254.169.255", LL, NULL},
	{"169.254.170.3", LL, NULL},
	{"100.100.100.201", SHARED, NULL},
	{"168.63.129.17", G, NULL},
};

static const struct tcase v6[] = {
	{"::", UNSPEC, NULL},
	{"::1", LOOP, NULL},
	{"::2", UNSPEC, "0.0.0.2"}, /* v4-compatible 0.0.0.2 */
	/* v4-mapped */
	{"::ffff:0:0", UNSPEC, "0.0.0.0"},
	{"::ffff:127.0.0.1", LOOP, "127.0.0.1"},
	{"::ffff:10.1.2.3", PRIV, "10.1.2.3"},
	{"::ffff:169.254.169.254", META, "169.254.169.254"},
	{"::ffff:8.8.8.8", G, "8.8.8.8"},
	{"::ffff:255.255.255.255", BC, "255.255.255.255"},
	{"::fffe:ffff:ffff", RES, NULL}, /* just below ::ffff:0:0/96 */
	{"::1:0:0:0", RES, NULL},        /* just above it */
	/* v4-compatible (deprecated) */
	{"::127.0.0.1", LOOP, "127.0.0.1"},
	{"::8.8.8.8", XLAT, "8.8.8.8"},
	{"::a9fe:a9fe", META, "169.254.169.254"},
	/* NAT64 well-known prefix */
	{"64:ff9b::", UNSPEC, "0.0.0.0"},
	{"64:ff9b::a9fe:a9fe", META, "169.254.169.254"},
	{"64:ff9b::127.0.0.1", LOOP, "127.0.0.1"},
	{"64:ff9b::8.8.8.8", G, "8.8.8.8"},
	{"64:ff9b::ffff:ffff", BC, "255.255.255.255"},
	{"64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", RES, NULL},
	{"64:ff9b:0:0:0:1::", RES, NULL}, /* above /96, inside nothing */
	/* NAT64 local-use 64:ff9b:1::/48, both layouts */
	{"64:ff9b:1::8.8.8.8", XLAT, "8.8.8.8"},
	{"64:ff9b:1::10.0.0.1", PRIV, "10.0.0.1"},
	{"64:ff9b:1:7f00:0:100::", LOOP, "127.0.0.1"}, /* RFC 6052 /48 layout */
	{"64:ff9b:1:ffff:ffff:ffff:808:808", XLAT, "8.8.8.8"},
	{"64:ff9b:2::", RES, NULL},
	/* 100::/64 and the dummy prefix */
	{"100::", RES, NULL},
	{"100::ffff:ffff:ffff:ffff", RES, NULL},
	{"100:0:0:1::", RES, NULL},
	/* 2001::/23 and its entries */
	{"2000::", G, NULL},
	{"2001:1::1", RES, NULL},
	{"2001:1::2", RES, NULL},
	{"2001:2::", BENCH, NULL},
	{"2001:2:0:ffff:ffff:ffff:ffff:ffff", BENCH, NULL},
	{"2001:2:1::", RES, NULL},
	{"2001:3::", RES, NULL},
	{"2001:4:112::", RES, NULL},
	{"2001:20::", RES, NULL},
	{"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", RES, NULL},
	{"2001:200::", G, NULL},
	{"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", G, NULL},
	/* Teredo: server 65.54.227.120, client ~(7f.00.00.01) = 127.0.0.1 */
	{"2001:0:4136:e378:8000:63bf:80ff:fffe", LOOP, "127.0.0.1"},
	/* client 8.8.8.8 (f7f7:f7f7), server 65.54.227.120: global */
	{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", XLAT, "8.8.8.8"},
	/* client 169.254.169.254 */
	{"2001:0:4136:e378:8000:63bf:5601:5601", META, "169.254.169.254"},
	/* client global, server 10.0.0.1 */
	{"2001:0:a00:1:8000:63bf:f7f7:f7f7", PRIV, "10.0.0.1"},
	/* 2001:db8::/32 */
	{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", G, NULL},
	{"2001:db8::", DOC, NULL},
	{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", DOC, NULL},
	{"2001:db9::", G, NULL},
	/* 6to4 */
	{"2002:7f00:1::", LOOP, "127.0.0.1"},
	{"2002:c0a8:101::1", PRIV, "192.168.1.1"},
	{"2002:808:808::1", XLAT, "8.8.8.8"},
	{"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", G, NULL},
	{"2003::", G, NULL},
	/* AS112 2620:4f:8000::/48 */
	{"2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", G, NULL},
	{"2620:4f:8000::", RES, NULL},
	{"2620:4f:8000:ffff:ffff:ffff:ffff:ffff", RES, NULL},
	{"2620:4f:8001::", G, NULL},
	/* 3fff::/20 */
	{"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", G, NULL},
	{"3fff::", DOC, NULL},
	{"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", DOC, NULL},
	{"3fff:1000::", G, NULL},
	{"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", G, NULL},
	/* outside 2000::/3 */
	{"4000::", RES, NULL},
	{"5f00::", RES, NULL},
	{"5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RES, NULL},
	{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RES, NULL},
	/* fc00::/7 */
	{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RES, NULL},
	{"fc00::", PRIV, NULL},
	{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PRIV, NULL},
	/* fe80::/10 */
	{"fe00::", RES, NULL},
	{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RES, NULL},
	{"fe80::", LL, NULL},
	{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LL, NULL},
	{"fec0::", RES, NULL},
	/* ff00::/8 */
	{"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RES, NULL},
	{"ff00::", MC, NULL},
	{"ff02::1", MC, NULL},
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", MC, NULL},
	/* metadata */
	{"fd00:ec2::254", META, NULL},
	{"fd00:ec2::253", META, NULL},
	{"fd00:ec2::123", META, NULL},
	{"fd00:ec2::23", META, NULL},
	{"fd00:ec2::255", PRIV, NULL},
	{"fd20:ce::254", META, NULL},
	{"fe80::a9fe:a9fe", META, NULL},
	/* ordinary globals */
	{"2606:4700:4700::1111", G, NULL},
	{"2a00:1450:4001:80b::200e", G, NULL},
};

static void run(const struct tcase *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct ip_addr a;
		if (!ok(ip_parse_strict(t[i].addr, strlen(t[i].addr), &a),
			"%s parses", t[i].addr))
			continue;
		struct ip_classification c;
		ipclass_classify(&a, &c);
		tap_is_str(ipclass_name(c.cls), ipclass_name(t[i].cls), __FILE__,
			   __LINE__, "%s is %s", t[i].addr,
			   ipclass_name(t[i].cls));
		is_int(ipclass_is_global(&a), t[i].cls == IPC_GLOBAL,
		       "%s is_global agrees", t[i].addr);
		if (t[i].inner) {
			char buf[IP_STR_MAX];
			ok(c.embedded && c.inner.family == AF_INET,
			   "%s: verdict from embedded IPv4", t[i].addr);
			ip_format(&c.inner, buf);
			is_str(buf, t[i].inner, "%s: embedded address",
			       t[i].addr);
		} else {
			ok(!c.embedded, "%s: no embedded IPv4", t[i].addr);
		}
	}
}

static void names(void)
{
	/* Every class has a distinct name; the proxy logs it. */
	for (int i = IPC_GLOBAL; i <= IPC_TRANSLATED; i++)
		for (int j = i + 1; j <= IPC_TRANSLATED; j++)
			if (strcmp(ipclass_name(i), ipclass_name(j)) == 0)
				ok(0, "classes %d and %d share a name", i, j);
	is_str(ipclass_name(IPC_METADATA), "metadata", "metadata name");
	is_str(ipclass_name(IPC_LOOPBACK), "loopback", "loopback name");

	struct ip_addr bad;
	memset(&bad, 0, sizeof(bad));
	bad.family = AF_UNIX;
	ok(!ipclass_is_global(&bad), "an unknown family is never global");
}

int main(void)
{
	run(v4, ARRAY_SIZE(v4));
	run(v6, ARRAY_SIZE(v6));
	names();
	return done_testing();
}
