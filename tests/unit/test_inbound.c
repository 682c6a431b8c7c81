/* Published ports: the inbound header (host -> guest) and the publish spec
 * (-p, port add, --publish). */
#include <string.h>
#include <sys/socket.h>

#include "../../parse/inbound.h"
#include "tap.h"

static void header(void)
{
	uint8_t b[INBOUND_HEADER_LEN];
	uint16_t port = 0;
	is_int(inbound_header_encode(8000, b), 0, "encode port 8000");
	ok(memcmp(b, "SBXI\x01\x00\x1f\x40", 8) == 0,
	   "header bytes are as documented");
	is_int(inbound_header_parse(b, sizeof(b), &port), INBOUND_OK, "parse");
	is_int(port, 8000, "port survives the round trip");
	is_int(inbound_header_parse(b, 7, &port), INBOUND_INCOMPLETE,
	       "one byte short is incomplete");
	is_int(inbound_header_encode(0, b), -22, "port 0 is not encoded");

	uint8_t x[INBOUND_HEADER_LEN];
	memcpy(x, b, 8); x[0] = 'X';
	is_int(inbound_header_parse(x, 8, &port), INBOUND_BAD_MAGIC, "magic");
	memcpy(x, b, 8); x[4] = 2;
	is_int(inbound_header_parse(x, 8, &port), INBOUND_BAD_VERSION,
	       "version");
	memcpy(x, b, 8); x[5] = 1;
	is_int(inbound_header_parse(x, 8, &port), INBOUND_BAD_RESERVED,
	       "reserved");
	memcpy(x, b, 8); x[6] = 0; x[7] = 0;
	is_int(inbound_header_parse(x, 8, &port), INBOUND_BAD_PORT, "port 0");
}

static void spec_ok(const char *s, const char *canon, int loopback)
{
	struct publish_spec p;
	const char *why = NULL;
	char buf[80];
	if (!ok(publish_spec_parse(s, &p, &why) == 0, "'%s' parses", s)) {
		tap_diag("why: %s", why);
		return;
	}
	publish_spec_format(&p, buf, sizeof(buf));
	is_str(buf, canon, "'%s' is '%s'", s, canon);
	is_int(publish_spec_is_loopback(&p), loopback, "'%s' loopback", s);
}

static void spec_bad(const char *s, const char *why_part)
{
	struct publish_spec p;
	const char *why = "";
	ok(publish_spec_parse(s, &p, &why) == -22 && strstr(why, why_part),
	   "'%s' refused: %s", s, why);
}

static void spec(void)
{
	spec_ok("8080:8000", "8080:8000", 1);
	spec_ok("127.0.0.1:8080:8000", "127.0.0.1:8080:8000", 1);
	spec_ok("127.0.0.2:1:65535", "127.0.0.2:1:65535", 1);
	spec_ok("[::1]:8080:80", "[::1]:8080:80", 1);
	spec_ok("[0:0::1]:8080:80", "[::1]:8080:80", 1);
	spec_ok("0.0.0.0:8080:80", "0.0.0.0:8080:80", 0);
	spec_ok("192.0.2.7:8080:80", "192.0.2.7:8080:80", 0);
	spec_ok("[::]:8080:80", "[::]:8080:80", 0);

	spec_bad("8080", "expected");
	spec_bad("", "expected");
	spec_bad("8080:", "GUEST_PORT");
	spec_bad("8080:0", "GUEST_PORT");
	spec_bad("8080:65536", "GUEST_PORT");
	spec_bad("8080:080", "GUEST_PORT");
	spec_bad("8080:+80", "GUEST_PORT");
	spec_bad(":80", "HOST_PORT");
	spec_bad("0:80", "HOST_PORT");
	spec_bad("x:80", "HOST_PORT");
	spec_bad(":8080:80", "HOST_IP");
	spec_bad("localhost:8080:80", "HOST_IP");
	spec_bad("127.1:8080:80", "HOST_IP");
	spec_bad("::1:8080:80", "brackets");
	spec_bad("[::1:8080:80", "brackets");
	spec_bad("[127.0.0.1]:8080:80", "only an IPv6");
	spec_bad("[fe80::1%eth0]:8080:80", "HOST_IP");
	spec_bad("1.2.3.4:5:6:7", "HOST_IP");
}

int main(void)
{
	header();
	spec();
	return done_testing();
}
