/* Strict IP literal parsing: the alternative encodings that bypass filters
 * must not parse as addresses. */
#include <arpa/inet.h>
#include <string.h>

#include "../../common/ipaddr.h"
#include "tap.h"

static bool parses(const char *s)
{
	struct ip_addr a;
	return ip_parse_strict(s, strlen(s), &a);
}

static const char *roundtrip(const char *s, char buf[IP_STR_MAX])
{
	struct ip_addr a;
	if (!ip_parse_strict(s, strlen(s), &a))
		return "(no parse)";
	ip_format(&a, buf);
	return buf;
}

int main(void)
{
	char buf[IP_STR_MAX];
	ok(parses("127.0.0.1"), "dotted quad");
	ok(parses("0.0.0.0") && parses("255.255.255.255"), "bounds of dotted quad");
	const char *bad[] = {"127.1", "0x7f.0.0.1", "0177.0.0.1", "2130706433",
			     "127.0.0.256", "127.0.0.1.", "1.2.3", "1.2.3.4.5",
			     " 1.2.3.4", "1.2.3.4 ", "01.2.3.4", "1..2.3",
			     "fe80::1%eth0", "[::1]", "", "::g", "1.2.3.-4"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!parses(bad[i]), "refuses '%s'", bad[i]);
	is_str(roundtrip("::1", buf), "::1", "IPv6 loopback");
	is_str(roundtrip("2001:DB8:0:0:0:0:0:1", buf), "2001:db8::1",
	       "IPv6 formats in RFC 5952 form");
	is_str(roundtrip("::ffff:127.0.0.1", buf), "::ffff:127.0.0.1",
	       "v4-mapped keeps its form");

	ok(ip_looks_numeric("2130706433", 10), "all digits looks numeric");
	ok(ip_looks_numeric("example.0x7f", 12), "hex last label looks numeric");
	ok(ip_looks_numeric("1.2.3", 5), "short dotted looks numeric");
	ok(ip_looks_numeric("127.0.0.1.", 10), "a trailing dot does not hide an address");
	ok(!ip_looks_numeric(".", 1), "the root is not numeric");
	ok(!ip_looks_numeric("example.com", 11), "names do not");
	ok(!ip_looks_numeric("1password.com", 13), "digit-leading label is fine");

	struct ip_addr a, p;
	ip_parse_strict("10.1.2.3", 8, &a);
	ip_parse_strict("10.0.0.0", 8, &p);
	ok(ip_in_prefix(&a, &p, 8), "10.1.2.3 in 10/8");
	ok(!ip_in_prefix(&a, &p, 16), "10.1.2.3 not in 10.0/16");
	ok(ip_in_prefix(&a, &p, 0), "everything in /0 of its family");
	struct ip_addr v6;
	ip_parse_strict("::a01:203", 9, &v6);
	ok(!ip_in_prefix(&v6, &p, 0), "families never match each other");
	ip_parse_strict("2001:db8::", 10, &p);
	ip_parse_strict("2001:db8:ffff::1", 16, &a);
	ok(ip_in_prefix(&a, &p, 32), "2001:db8:ffff::1 in 2001:db8::/32");
	ok(!ip_in_prefix(&a, &p, 33), "but not in /33");
	ok(!ip_in_prefix(&a, &p, 129), "prefix length past 128 matches nothing");

	struct sockaddr_storage ss;
	uint16_t port = 0;
	struct ip_addr back;
	ip_to_sockaddr(&a, 8443, &ss);
	ok(ip_from_sockaddr(&ss, &back, &port) == 0 && port == 8443 &&
		   ip_equal(&a, &back),
	   "sockaddr round trip");
	return done_testing();
}
