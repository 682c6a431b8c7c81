/* The wire header: round trips, and every way a hostile guest can get it wrong. */
#include <string.h>

#include "../../parse/wire.h"
#include "tap.h"

static void roundtrip_v4(void)
{
	struct wire_header h = {.kind = WIRE_TCP, .family = 4, .port = 443};
	memcpy(h.addr, "\xc6\x12\x00\x05", 4);
	uint8_t buf[WIRE_HEADER_LEN];
	is_int(wire_header_encode(&h, buf), 0, "encode v4 TCP header");
	ok(memcmp(buf, "SBXW\x01\x01\x04\x00\x01\xbb\x00\x00\xc6\x12\x00\x05", 16) == 0,
	   "v4 header bytes are as documented");
	struct wire_header out;
	is_int(wire_header_parse(buf, sizeof(buf), &out), WIRE_OK, "parse it back");
	ok(out.port == 443 && out.family == 4 && memcmp(out.addr, h.addr, 16) == 0,
	   "fields survive the round trip");
	is_int(wire_header_parse(buf, WIRE_HEADER_LEN - 1, &out), WIRE_INCOMPLETE,
	       "one byte short is incomplete");
}

static void rejects(void)
{
	struct wire_header h = {.kind = WIRE_TCP, .family = 6, .port = 22};
	h.addr[15] = 1;
	uint8_t good[WIRE_HEADER_LEN], b[WIRE_HEADER_LEN];
	struct wire_header out;
	is_int(wire_header_encode(&h, good), 0, "encode v6 header");

	memcpy(b, good, sizeof(b)); b[0] = 'X';
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_MAGIC, "bad magic");
	memcpy(b, good, sizeof(b)); b[4] = 2;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_VERSION, "future version");
	memcpy(b, good, sizeof(b)); b[5] = 9;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_KIND, "unknown kind");
	memcpy(b, good, sizeof(b)); b[6] = 5;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_FAMILY, "unknown family");
	memcpy(b, good, sizeof(b)); b[7] = 1;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_RESERVED, "flags set");
	memcpy(b, good, sizeof(b)); b[11] = 1;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_RESERVED, "reserved set");
	memcpy(b, good, sizeof(b)); b[8] = b[9] = 0;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_PORT, "TCP with port 0");

	struct wire_header v4 = {.kind = WIRE_TCP, .family = 4, .port = 80};
	is_int(wire_header_encode(&v4, b), 0, "encode v4");
	b[20] = 7;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_RESERVED,
	       "bytes after an IPv4 address must be zero");

	struct wire_header dns = {.kind = WIRE_DNS};
	is_int(wire_header_encode(&dns, b), 0, "encode DNS stream header");
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_OK, "DNS header parses");
	b[6] = 4; b[9] = 53;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_FAMILY,
	       "DNS stream with a destination is refused");
	struct wire_header tcp0 = {.kind = WIRE_TCP};
	ok(wire_header_encode(&tcp0, b) < 0, "TCP without a destination cannot be encoded");
}

int main(void)
{
	roundtrip_v4();
	rejects();
	return done_testing();
}
