/* The wire header: round trips, and every way a hostile guest can get it wrong. */
#include <string.h>

#include "../../parse/wire.h"
#include "tap.h"

#define SRC_END (WIRE_HEADER_LEN + WIRE_SRC_LEN) /* 48 */

static void roundtrip_v4(void)
{
	struct wire_header h = {.kind = WIRE_TCP, .family = 4, .port = 443};
	memcpy(h.addr, "\xc6\x12\x00\x05", 4);
	uint8_t buf[WIRE_HEADER_MAX];
	is_int(wire_header_encode(&h, buf), WIRE_HEADER_LEN, "encode v4 TCP header");
	ok(memcmp(buf, "SBXW\x01\x01\x04\x00\x01\xbb\x00\x00\xc6\x12\x00\x05", 16) == 0,
	   "v4 header bytes are as documented");
	struct wire_header out;
	is_int(wire_header_parse(buf, WIRE_HEADER_LEN, &out), WIRE_OK, "parse it back");
	is_int((int)out.len, WIRE_HEADER_LEN, "no source: the payload begins at 28");
	ok(out.src_family == 0, "no source extension");
	ok(out.port == 443 && out.family == 4 && memcmp(out.addr, h.addr, 16) == 0,
	   "fields survive the round trip");
	is_int(wire_header_parse(buf, WIRE_HEADER_LEN - 1, &out), WIRE_INCOMPLETE,
	       "one byte short is incomplete");
}

static void rejects(void)
{
	struct wire_header h = {.kind = WIRE_TCP, .family = 6, .port = 22};
	h.addr[15] = 1;
	uint8_t good[WIRE_HEADER_MAX], b[WIRE_HEADER_MAX];
	struct wire_header out;
	is_int(wire_header_encode(&h, good), WIRE_HEADER_LEN, "encode v6 header");

	memcpy(b, good, sizeof(b)); b[0] = 'X';
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_MAGIC, "bad magic");
	memcpy(b, good, sizeof(b)); b[4] = 2;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_VERSION, "future version");
	memcpy(b, good, sizeof(b)); b[5] = 9;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_KIND, "unknown kind");
	memcpy(b, good, sizeof(b)); b[6] = 5;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_FAMILY, "unknown family");
	memcpy(b, good, sizeof(b)); b[7] = 4;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_RESERVED, "unknown flag set");
	memcpy(b, good, sizeof(b)); b[7] = 0x81;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_RESERVED,
	       "unknown flag beside the source flag");
	memcpy(b, good, sizeof(b)); b[11] = 1;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_RESERVED, "reserved set");
	memcpy(b, good, sizeof(b)); b[8] = b[9] = 0;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_PORT, "TCP with port 0");

	struct wire_header v4 = {.kind = WIRE_TCP, .family = 4, .port = 80};
	is_int(wire_header_encode(&v4, b), WIRE_HEADER_LEN, "encode v4");
	b[20] = 7;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_RESERVED,
	       "bytes after an IPv4 address must be zero");

	struct wire_header dns = {.kind = WIRE_DNS};
	is_int(wire_header_encode(&dns, b), WIRE_HEADER_LEN, "encode DNS stream header");
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_OK, "DNS header parses");
	b[6] = 4; b[9] = 53;
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_BAD_FAMILY,
	       "DNS stream with a destination is refused");
	struct wire_header tcp0 = {.kind = WIRE_TCP};
	ok(wire_header_encode(&tcp0, b) < 0, "TCP without a destination cannot be encoded");
}

/* The source extension (wire.h): a label for the audit log. */
static void source(void)
{
	struct wire_header h = {.kind = WIRE_TCP, .family = 4, .port = 80,
				.src_family = 4, .src_port = 40000};
	memcpy(h.addr, "\x7f\x00\x00\x01", 4);
	memcpy(h.src_addr, "\xac\x11\x00\x02", 4);
	uint8_t b[WIRE_HEADER_MAX], x[WIRE_HEADER_MAX];
	struct wire_header out;
	is_int(wire_header_encode(&h, b), SRC_END, "encode with a source");
	ok(b[7] == WIRE_FLAG_SRC, "the flag announces the extension");
	ok(memcmp(b + 28, "\x04\x00\x9c\x40\xac\x11\x00\x02", 8) == 0,
	   "source bytes are as documented");
	is_int(wire_header_parse(b, SRC_END - 1, &out), WIRE_INCOMPLETE,
	       "flag set and the extension one byte short: incomplete");
	is_int(wire_header_parse(b, WIRE_HEADER_LEN, &out), WIRE_INCOMPLETE,
	       "flag set and only the 28 bytes: incomplete");
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_OK, "parse it back");
	ok(out.len == SRC_END && out.src_family == 4 &&
	   out.src_port == 40000 && memcmp(out.src_addr, h.src_addr, 16) == 0,
	   "source survives the round trip");

	memcpy(x, b, sizeof(x)); x[28] = 5;
	is_int(wire_header_parse(x, sizeof(x), &out), WIRE_BAD_SRC, "bad source family");
	memcpy(x, b, sizeof(x)); x[28] = 0;
	is_int(wire_header_parse(x, sizeof(x), &out), WIRE_BAD_SRC,
	       "flag set with no source family");
	memcpy(x, b, sizeof(x)); x[29] = 1;
	is_int(wire_header_parse(x, sizeof(x), &out), WIRE_BAD_RESERVED,
	       "source reserved byte set");
	memcpy(x, b, sizeof(x)); x[30] = x[31] = 0;
	is_int(wire_header_parse(x, sizeof(x), &out), WIRE_BAD_PORT, "source port 0");
	memcpy(x, b, sizeof(x)); x[47] = 1;
	is_int(wire_header_parse(x, sizeof(x), &out), WIRE_BAD_RESERVED,
	       "bytes after an IPv4 source must be zero");
	memcpy(x, b, sizeof(x)); x[5] = WIRE_CONTROL; x[6] = 0;
	memset(x + 8, 0, 20);
	is_int(wire_header_parse(x, sizeof(x), &out), WIRE_BAD_SRC,
	       "a control stream carries no source");

	struct wire_header v6 = h;
	v6.src_family = 6;
	memset(v6.src_addr, 0, 16);
	v6.src_addr[15] = 1;
	is_int(wire_header_encode(&v6, b), SRC_END, "IPv6 source encodes");
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_OK, "and parses");
	ok(out.src_family == 6 && out.src_addr[15] == 1, "IPv6 source kept");
	struct wire_header bad = h;
	bad.src_family = 5;
	ok(wire_header_encode(&bad, b) < 0, "a bad source family cannot be encoded");
}

/* The container extension (wire.h): a label too, in a narrow alphabet. */
static void container(void)
{
	struct wire_header h = {.kind = WIRE_TCP, .family = 4, .port = 80,
				.src_family = 4, .src_port = 40000,
				.ctr_id = "0123456789ab", .ctr_name = "web-1"};
	memcpy(h.addr, "\x7f\x00\x00\x01", 4);
	memcpy(h.src_addr, "\xac\x11\x00\x02", 4);
	uint8_t b[WIRE_HEADER_MAX + 8], x[WIRE_HEADER_MAX + 8];
	struct wire_header out;
	memset(b, 'P', sizeof(b)); /* payload after the header */
	int n = wire_header_encode(&h, b);
	is_int(n, SRC_END + 2 + 12 + 5, "encode with a container");
	ok(b[7] == (WIRE_FLAG_SRC | WIRE_FLAG_CTR), "both flags set");
	ok(b[48] == 12 && b[49] == 5 && !memcmp(b + 50, "0123456789abweb-1", 17),
	   "container bytes are as documented");
	int short_ok = 1;
	for (int cut = WIRE_HEADER_LEN; cut < n; cut++)
		short_ok &= wire_header_parse(b, (size_t)cut, &out) == WIRE_INCOMPLETE;
	ok(short_ok, "every cut short of the end is incomplete");
	is_int(wire_header_parse(b, sizeof(b), &out), WIRE_OK, "parse it back");
	ok(out.len == (size_t)n && !strcmp(out.ctr_id, "0123456789ab") &&
	   !strcmp(out.ctr_name, "web-1"), "id and name survive");

	struct wire_header only = h;
	only.ctr_id[0] = '\0';
	int m = wire_header_encode(&only, x);
	is_int(m, SRC_END + 2 + 5, "a name without an id encodes");
	is_int(wire_header_parse(x, (size_t)m, &out), WIRE_OK, "and parses");
	ok(out.ctr_id[0] == '\0' && !strcmp(out.ctr_name, "web-1"), "name kept");

	static const struct {
		int at;
		uint8_t v;
		const char *what;
	} bad[] = {
		{48, 0, "id length 0 and name length 0"},
		{48, WIRE_CTR_FIELD_MAX + 1, "id longer than 64"},
		{49, WIRE_CTR_FIELD_MAX + 1, "name longer than 64"},
		{50, 'A', "upper-case hex in the id"},
		{55, 'g', "a non-hex id byte"},
		{62, '-', "a name starting with '-'"},
		{64, '"', "a quote in the name"},
		{64, '\\', "a backslash in the name"},
		{64, 0x1b, "an escape byte in the name"},
		{64, 0xc3, "a non-ASCII byte in the name"},
		{64, ' ', "a space in the name"},
		{66, '\0', "a NUL inside the name"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(x, b, sizeof(x));
		x[bad[i].at] = bad[i].v;
		if (bad[i].at == 48 && bad[i].v == 0)
			x[49] = 0;
		is_int(wire_header_parse(x, sizeof(x), &out), WIRE_BAD_CTR, "%s",
		       bad[i].what);
	}
	memcpy(x, b, sizeof(x));
	x[7] = WIRE_FLAG_CTR; /* without the source */
	is_int(wire_header_parse(x, sizeof(x), &out), WIRE_BAD_CTR,
	       "a container without a source");
	struct wire_header dns = {.kind = WIRE_DNS, .ctr_name = "x"};
	ok(wire_header_encode(&dns, x) < 0,
	   "a container without a source cannot be encoded");
	struct wire_header quote = h;
	memcpy(quote.ctr_name, "a\"b", 4);
	ok(wire_header_encode(&quote, x) < 0, "nor a name outside the alphabet");
	ok(wire_ctr_name_ok("a_b.c-D9", 8) && !wire_ctr_name_ok("_a", 2) &&
	   wire_ctr_id_ok("", 0) && !wire_ctr_id_ok("0A", 2),
	   "the alphabet checks writers use");
}

int main(void)
{
	roundtrip_v4();
	rejects();
	source();
	container();
	return done_testing();
}
