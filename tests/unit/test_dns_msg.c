/* DNS query parser and response builder: glibc's real queries, each
 * FORMERR/NOTIMP path, and a response decoded field by field. */
#include <string.h>

#include "../../common/util.h"
#include "../../parse/dns_msg.h"
#include "corpus.h"
#include "tap.h"

static struct dns_query q;

static void captured(void)
{
	/* capture_corpus.py asks for these three names, A then AAAA each. */
	static const char *names[] = {"example.test", "mixed-case.example.org",
				      "_srv-like.example.com"};
	uint8_t buf[512];
	for (int i = 0; i < 6; i++) {
		char file[32];
		fmt_buf(file, sizeof(file), "glibc_%d", i);
		size_t len = corpus_load("dns_msg", file, buf, sizeof(buf));
		is_int(dns_query_parse(buf, len, &q), DNS_OK, "%s parses", file);
		is_str(q.qname, names[i / 2], "%s name (lower-cased)", file);
		is_int(q.qname_len, strlen(names[i / 2]), "%s qname_len", file);
		ok(q.qtype == DNS_TYPE_A || q.qtype == DNS_TYPE_AAAA,
		   "%s asks for A or AAAA", file);
		ok(q.qclass == DNS_CLASS_IN && q.rd, "%s: class IN, RD set", file);
		ok(q.has_opt && q.udp_size >= 512, "%s: EDNS0 (udp %u)", file,
		   q.udp_size);
		is_int(q.question_end, len - 11, "%s: question ends before OPT", file);
		bool inc = true;
		struct dns_query t;
		for (size_t k = 0; k < len; k++) {
			enum dns_status st = dns_query_parse(buf, k, &t);
			if (st != (k < 12 ? DNS_MALFORMED : DNS_FORMERR))
				inc = false;
		}
		ok(inc, "%s: every truncation is MALFORMED (<12) or FORMERR", file);
	}
}

/* Build a query: header fields then a raw question and additional bytes. */
static size_t mkq(uint8_t *b, uint16_t flags, uint16_t qd, uint16_t an,
		  uint16_t ns, uint16_t ar, const void *rest, size_t rlen)
{
	uint16_t h[6] = {0x1234, flags, qd, an, ns, ar};
	for (int i = 0; i < 6; i++)
		b[2 * i] = (uint8_t)(h[i] >> 8), b[2 * i + 1] = (uint8_t)h[i];
	memcpy(b + 12, rest, rlen);
	return 12 + rlen;
}

#define Q_EX "\x07" "example\x03" "com\x00\x00\x01\x00\x01"
#define OPT "\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"

static void expect(const uint8_t *b, size_t n, enum dns_status st,
		   const char *why, const char *what)
{
	is_int(dns_query_parse(b, n, &q), st, "%s: status", what);
	is_str(q.why, why, "%s: why", what);
	is_int(q.id, n >= 12 ? 0x1234 : 0, "%s: id still filled", what);
}

static void errors(void)
{
	uint8_t b[1024];
	size_t n;

	n = mkq(b, 0x0100, 1, 0, 0, 0, Q_EX, sizeof(Q_EX) - 1);
	is_int(dns_query_parse(b, n, &q), DNS_OK, "plain query");
	ok(!q.has_opt && q.udp_size == 512, "no OPT: udp 512");
	is_int(q.question_end, n, "question_end is the end");

	expect(b, 11, DNS_MALFORMED, "shorter than a DNS header", "11 bytes");
	n = mkq(b, 0x8100, 1, 0, 0, 0, Q_EX, sizeof(Q_EX) - 1);
	expect(b, n, DNS_NOTIMP, "QR set: a response, not a query", "QR set");
	n = mkq(b, 0x2100, 1, 0, 0, 0, Q_EX, sizeof(Q_EX) - 1);
	expect(b, n, DNS_NOTIMP, "opcode is not QUERY", "UPDATE opcode");
	n = mkq(b, 0x0900, 1, 0, 0, 0, Q_EX, sizeof(Q_EX) - 1);
	expect(b, n, DNS_NOTIMP, "opcode is not QUERY", "IQUERY opcode");
	n = mkq(b, 0x0100, 0, 0, 0, 0, "", 0);
	expect(b, n, DNS_NOTIMP, "QDCOUNT is not 1", "QDCOUNT 0");
	n = mkq(b, 0x0100, 2, 0, 0, 0, Q_EX Q_EX, 2 * (sizeof(Q_EX) - 1));
	expect(b, n, DNS_NOTIMP, "QDCOUNT is not 1", "QDCOUNT 2");
	n = mkq(b, 0x0100, 1, 1, 0, 0, Q_EX, sizeof(Q_EX) - 1);
	expect(b, n, DNS_FORMERR, "query has answer or authority records", "ANCOUNT 1");
	n = mkq(b, 0x0100, 1, 0, 1, 0, Q_EX, sizeof(Q_EX) - 1);
	expect(b, n, DNS_FORMERR, "query has answer or authority records", "NSCOUNT 1");
	n = mkq(b, 0x0100, 1, 0, 0, 2, Q_EX OPT OPT, sizeof(Q_EX OPT OPT) - 1);
	expect(b, n, DNS_FORMERR, "more than one additional record", "ARCOUNT 2");
	n = mkq(b, 0x0100, 1, 0, 0, 0, Q_EX "\x00", sizeof(Q_EX));
	expect(b, n, DNS_FORMERR, "bytes after the end of the message", "trailing byte");
	n = mkq(b, 0x0100, 1, 0, 0, 1, Q_EX OPT "\x00", sizeof(Q_EX OPT));
	expect(b, n, DNS_FORMERR, "bytes after the end of the message",
	       "trailing byte after OPT");

	static const struct {
		const char *q;
		size_t len;
		const char *why, *what;
	} names[] = {
		{"\xc0\x0c\x00\x01\x00\x01", 6, "compression pointer in the question", "pointer"},
		{"\x01" "a\xc0\x0c\x00\x01\x00\x01", 8, "compression pointer in the question", "pointer after a label"},
		{"\x41" "a", 2, "reserved label type", "0x40 label type"},
		{"\x81" "a", 2, "reserved label type", "0x80 label type"},
		{"\x03" "a.b\x00\x00\x01\x00\x01", 9, "label character outside [A-Za-z0-9_-]", "dot inside a label"},
		{"\x03" "a b\x00\x00\x01\x00\x01", 9, "label character outside [A-Za-z0-9_-]", "space"},
		{"\x03" "a\0b\x00\x00\x01\x00\x01", 9, "label character outside [A-Za-z0-9_-]", "NUL"},
		{"\x02\xc3\xa9\x00\x00\x01\x00\x01", 8, "label character outside [A-Za-z0-9_-]", "UTF-8"},
		{"\x05" "ab", 3, "label runs past the message", "label past the end"},
		{"\x01" "a", 2, "question name truncated", "no terminating zero"},
		{"\x01" "a\x00\x00\x01\x00", 6, "question truncated before type/class", "short type/class"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		n = mkq(b, 0x0100, 1, 0, 0, 0, names[i].q, names[i].len);
		expect(b, n, DNS_FORMERR, names[i].why, names[i].what);
	}

	/* Name length limits: 63-byte labels, 253 presentation chars. */
	uint8_t name[300];
	size_t o = 0;
	for (int l = 0; l < 4; l++) {
		size_t ll = l < 3 ? 63 : 61; /* 63*3 + 61 + 3 dots = 253 */
		name[o++] = (uint8_t)ll;
		memset(name + o, 'a', ll);
		o += ll;
	}
	memcpy(name + o, "\x00\x00\x01\x00\x01", 5);
	n = mkq(b, 0x0100, 1, 0, 0, 0, name, o + 5);
	is_int(dns_query_parse(b, n, &q), DNS_OK, "253-character name is fine");
	is_int(q.qname_len, 253, "... its length");
	name[o - 62] = 62; /* last label 62: 254 characters */
	memmove(name + o + 1, name + o, 5);
	name[o] = 'a';
	n = mkq(b, 0x0100, 1, 0, 0, 0, name, o + 6);
	expect(b, n, DNS_FORMERR, "name longer than 253 characters", "254 characters");
	static const uint8_t l64[] = {64};
	n = mkq(b, 0x0100, 1, 0, 0, 0, l64, 1);
	expect(b, n, DNS_FORMERR, "reserved label type", "64-byte label");

	n = mkq(b, 0x0100, 1, 0, 0, 0, "\x00\x00\x02\x00\x01", 5);
	is_int(dns_query_parse(b, n, &q), DNS_OK, "root NS query");
	ok(q.qname[0] == '\0' && q.qname_len == 0, "root name is empty");

	/* OPT record. */
	n = mkq(b, 0x0100, 1, 0, 0, 1, Q_EX OPT, sizeof(Q_EX OPT) - 1);
	is_int(dns_query_parse(b, n, &q), DNS_OK, "query with OPT");
	ok(q.has_opt && q.udp_size == 4096, "OPT udp size 4096");
	n = mkq(b, 0x0100, 1, 0, 0, 1,
		Q_EX "\x00\x00\x29\x00\x10\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x00",
		sizeof(Q_EX) - 1 + 15);
	is_int(dns_query_parse(b, n, &q), DNS_OK, "OPT with an empty cookie option");
	is_int(q.udp_size, 512, "udp size below 512 reads as 512");
	n = mkq(b, 0x0100, 1, 0, 0, 1,
		Q_EX "\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x05\x00\x0a\x00\x08\x00",
		sizeof(Q_EX) - 1 + 16);
	expect(b, n, DNS_FORMERR, "OPT option overruns the record", "option overrun");
	n = mkq(b, 0x0100, 1, 0, 0, 1,
		Q_EX "\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x02\x00\x0a",
		sizeof(Q_EX) - 1 + 13);
	expect(b, n, DNS_FORMERR, "OPT option header truncated", "option header");
	n = mkq(b, 0x0100, 1, 0, 0, 1,
		Q_EX "\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x09",
		sizeof(Q_EX) - 1 + 11);
	expect(b, n, DNS_FORMERR, "OPT data runs past the message", "OPT rdlen");
	n = mkq(b, 0x0100, 1, 0, 0, 1, Q_EX "\x00\x00\x29\x10", sizeof(Q_EX) - 1 + 4);
	expect(b, n, DNS_FORMERR, "additional record truncated", "short OPT");
	n = mkq(b, 0x0100, 1, 0, 0, 1,
		Q_EX "\x00\x00\xfa\x00\xff\x00\x00\x00\x00\x00\x00",
		sizeof(Q_EX) - 1 + 11);
	expect(b, n, DNS_FORMERR, "additional record is not OPT", "TSIG-like record");
	n = mkq(b, 0x0100, 1, 0, 0, 1,
		Q_EX "\x01" "a\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00",
		sizeof(Q_EX) - 1 + 13);
	expect(b, n, DNS_FORMERR,
	       "additional record is not an OPT with the root name", "OPT owner");
}

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void response(void)
{
	uint8_t b[512], out[512];
	size_t n = mkq(b, 0x0100, 1, 0, 0, 1,
		       "\x07" "EXAMPLE\x03" "com\x00\x00\x01\x00\x01" OPT,
		       sizeof(Q_EX OPT) - 1);
	is_int(dns_query_parse(b, n, &q), DNS_OK, "query for EXAMPLE.com");
	const uint8_t addrs[2][4] = {{198, 18, 0, 5}, {198, 18, 0, 6}};
	int len = dns_build_response(&q, true, DNS_RCODE_NOERROR, addrs, 2, 60,
				     out, sizeof(out));
	/* 12 + 17 question + 2 * 16 answers + 11 OPT */
	is_int(len, 12 + 17 + 32 + 11, "response length");
	if (len < 0)
		return;
	/* An independent decode of every field. */
	is_int(g16(out), 0x1234, "id echoed");
	is_int(g16(out + 2), 0x8180, "QR, RD, RA set, NOERROR");
	ok(g16(out + 4) == 1 && g16(out + 6) == 2 && g16(out + 8) == 0 &&
	   g16(out + 10) == 1, "counts 1/2/0/1");
	ok(memcmp(out + 12, "\x07" "example\x03" "com\x00\x00\x01\x00\x01", 17) == 0,
	   "question echoed (lower-cased)");
	const uint8_t *a = out + 29;
	for (int i = 0; i < 2; i++, a += 16) {
		ok(g16(a) == 0xc00c && g16(a + 2) == DNS_TYPE_A &&
		   g16(a + 4) == DNS_CLASS_IN && g16(a + 6) == 0 &&
		   g16(a + 8) == 60 && g16(a + 10) == 4 &&
		   memcmp(a + 12, addrs[i], 4) == 0,
		   "answer %d: pointer to question, A IN ttl 60, address", i);
	}
	ok(a[0] == 0 && g16(a + 1) == DNS_TYPE_OPT && g16(a + 3) == 1232 &&
	   g16(a + 9) == 0, "OPT advertising 1232");

	/* Our own parser reads the response's question back (after clearing QR
	 * and the answer count, it is a well-formed query again). */
	uint8_t again[512];
	memcpy(again, out, 29);
	again[2] &= 0x7f, again[6] = again[7] = 0, again[11] = 0;
	struct dns_query q2;
	is_int(dns_query_parse(again, 29, &q2), DNS_OK, "question re-parses");
	is_str(q2.qname, "example.com", "same name");

	/* Every short buffer is -ENOSPC and nothing is written past it. */
	bool all = true;
	for (size_t sz = 0; sz < (size_t)len; sz++) {
		uint8_t small[512];
		memset(small, 0xee, sizeof(small));
		int r = dns_build_response(&q, true, 0, addrs, 2, 60, small, sz);
		if (r != -ENOSPC || small[sz] != 0xee)
			all = false;
	}
	ok(all, "every outsz below %d is -ENOSPC without overrun", len);

	/* An error response without a valid question. */
	n = mkq(b, 0x0100, 1, 0, 0, 0, "\xc0\x0c\x00\x01\x00\x01", 6);
	is_int(dns_query_parse(b, n, &q), DNS_FORMERR, "pointer query is FORMERR");
	len = dns_build_response(&q, false, DNS_RCODE_FORMERR, addrs, 2, 60, out,
				 sizeof(out));
	is_int(len, 12, "FORMERR response is just a header");
	ok(g16(out) == 0x1234 && g16(out + 2) == 0x8181 && g16(out + 4) == 0 &&
	   g16(out + 6) == 0, "id, FORMERR, no question and no answers");

	n = mkq(b, 0x0100, 1, 0, 0, 0, Q_EX, sizeof(Q_EX) - 1);
	dns_query_parse(b, n, &q);
	len = dns_build_response(&q, true, DNS_RCODE_NXDOMAIN, NULL, 0, 0, out,
				 sizeof(out));
	ok(len == 29 && (out[3] & 0x0f) == 3 && g16(out + 10) == 0,
	   "NXDOMAIN with the question and no OPT");
	is_int(dns_build_response(&q, true, 16, NULL, 0, 0, out, sizeof(out)),
	       -EINVAL, "extended rcode refused");
	struct dns_query hand = q;
	memcpy(hand.qname, "a..b", 5);
	hand.qname_len = 4;
	is_int(dns_build_response(&hand, true, 0, NULL, 0, 0, out, sizeof(out)),
	       -EINVAL, "empty label in a hand-made qname refused");
}

int main(void)
{
	captured();
	errors();
	response();
	return done_testing();
}
