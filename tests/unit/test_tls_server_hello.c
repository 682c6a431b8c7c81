/* ServerHello / HelloRetryRequest parser: flights captured from real
 * OpenSSL (tests/fuzz/corpus/tls_server_hello), every prefix, fragmenting,
 * and each way the server's first flight can be refused. */
#include <string.h>

#include "../../common/util.h"
#include "../../parse/tls_server_hello.h"
#include "corpus.h"
#include "tap.h"

static bool prefixes_more(const uint8_t *b, size_t upto)
{
	struct tls_server_hello h;
	for (size_t i = 0; i < upto; i++) {
		enum tls_sh_status st = tls_server_hello_parse(b, i, &h);
		if (st != TLS_SH_MORE) {
			tap_diag("prefix %zu: status %d (%s)", i, st,
				 h.why ? h.why : "");
			return false;
		}
	}
	return true;
}

static void captured(void)
{
	static const struct {
		const char *file;
		enum tls_sh_status st;
		uint16_t version;
		bool more_in_record;
	} cases[] = {
		{"openssl_tls13", TLS_SH_SERVER_HELLO, 0x0304, false},
		{"openssl_tls12", TLS_SH_SERVER_HELLO, 0x0303, false},
		{"openssl_hrr_ccs", TLS_SH_HRR, 0x0304, false},
		{"hrr_only", TLS_SH_HRR, 0x0304, false},
		{"ccs_then_hrr", TLS_SH_HRR, 0x0304, false},
		{"hrr_split", TLS_SH_HRR, 0x0304, false},
		{"openssl_after_hrr", TLS_SH_SERVER_HELLO, 0x0304, false},
		{"hrr_then_hrr_in_record", TLS_SH_HRR, 0x0304, true},
	};
	static uint8_t buf[65536];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len = corpus_load("tls_server_hello", cases[i].file, buf,
					 sizeof(buf));
		struct tls_server_hello h;
		is_int(tls_server_hello_parse(buf, len, &h), cases[i].st,
		       "%s: status", cases[i].file);
		is_int(h.version, cases[i].version, "%s: version",
		       cases[i].file);
		is_int(h.more_in_record, cases[i].more_in_record,
		       "%s: more in the record", cases[i].file);
		ok(h.consumed > 5 && (h.consumed <= len || h.more_in_record),
		   "%s: consumed %zu of %zu", cases[i].file, h.consumed, len);
	}

	/* The HRR's first record alone, then with its CCS: consumed stops at
	 * the end of the HRR's record, so what follows is the next parse's. */
	size_t len = corpus_load("tls_server_hello", "openssl_hrr_ccs", buf,
				 sizeof(buf));
	size_t rec = 5 + ((size_t)buf[3] << 8 | buf[4]);
	struct tls_server_hello h;
	tls_server_hello_parse(buf, len, &h);
	is_int(h.consumed, rec, "HRR consumed ends at its record");
	ok(prefixes_more(buf, rec), "every prefix of the HRR record is MORE");
	is_int(tls_server_hello_parse(buf + rec, len - rec, &h), TLS_SH_MORE,
	       "the CCS after the HRR alone: MORE (the retry's answer next)");

	/* TLS 1.2 with the ServerHello and the Certificate in one record (the
	 * two records OpenSSL sends, merged): the ServerHello is complete
	 * before its record is. */
	len =
	    corpus_load("tls_server_hello", "openssl_tls12", buf, sizeof(buf));
	size_t r1 = (size_t)buf[3] << 8 | buf[4];
	size_t r2 = (size_t)buf[5 + r1 + 3] << 8 | buf[5 + r1 + 4];
	static uint8_t one[65536];
	memcpy(one, buf, 5 + r1);
	memcpy(one + 5 + r1, buf + 5 + r1 + 5, r2);
	one[3] = (uint8_t)((r1 + r2) >> 8);
	one[4] = (uint8_t)(r1 + r2);
	size_t shlen = 5 + r1;
	ok(prefixes_more(one, shlen), "TLS 1.2: every prefix of the "
				      "ServerHello is MORE");
	is_int(tls_server_hello_parse(one, shlen, &h), TLS_SH_SERVER_HELLO,
	       "TLS 1.2: the ServerHello alone is enough");
	ok(h.more_in_record && h.consumed == 5 + r1 + r2,
	   "... and says its record goes on (consumed %zu)", h.consumed);
	is_int(tls_server_hello_parse(one, 5 + r1 + r2, &h),
	       TLS_SH_SERVER_HELLO, "TLS 1.2: the whole merged record");
	ok(h.more_in_record && h.consumed == 5 + r1 + r2,
	   "... more in the record, consumed through it");
}

static void refused(void)
{
	static const struct {
		const char *file;
		enum tls_sh_status st;
	} cases[] = {
		{"alert", TLS_SH_ALERT},
		{"two_ccs", TLS_SH_MALFORMED},
		{"appdata", TLS_SH_MALFORMED},
		{"not_tls", TLS_SH_MALFORMED},
		{"sslv2", TLS_SH_MALFORMED},
	};
	static uint8_t buf[4096];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len = corpus_load("tls_server_hello", cases[i].file, buf,
					 sizeof(buf));
		struct tls_server_hello h;
		is_int(tls_server_hello_parse(buf, len, &h), cases[i].st,
		       "%s: status", cases[i].file);
		if (cases[i].st == TLS_SH_MALFORMED)
			ok(h.why != NULL, "%s: why: %s", cases[i].file,
			   h.why ? h.why : "(none)");
	}

	struct tls_server_hello h;
	static const uint8_t one[][16] = {
		{0x16, 0x03, 0x03, 0x00, 0x04, 0x0b, 0x00, 0x00, 0x00},
		{0x16, 0x03, 0x03, 0x00, 0x00},
		{0x16, 0x02, 0x00},
		{0x14, 0x03, 0x03, 0x00, 0x02, 0x01, 0x01},
		{0x14, 0x03, 0x03, 0x00, 0x01, 0x02},
		{0x16, 0x03, 0x03, 0x40, 0x01},
		{0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x40, 0x00},
		{0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00},
	};
	static const size_t one_len[] = {9, 5, 2, 7, 6, 5, 9, 9};
	static const char *const what[] = {
		"a Certificate first", "an empty handshake record",
		"record version 2", "a two-byte CCS", "a CCS that is not 1",
		"a record over 2^14", "a ServerHello over the bound",
		"an empty ServerHello",
	};
	for (size_t i = 0; i < ARRAY_SIZE(one); i++)
		is_int(tls_server_hello_parse(one[i], one_len[i], &h),
		       TLS_SH_MALFORMED, "%s is MALFORMED (%s)", what[i],
		       h.why ? h.why : "");

	/* A CCS inside a fragmented ServerHello (RFC 8446 5.1). */
	static uint8_t frag[4096];
	size_t len =
	    corpus_load("tls_server_hello", "hrr_split", buf, sizeof(buf));
	size_t r1 = 5 + ((size_t)buf[3] << 8 | buf[4]);
	memcpy(frag, buf, r1);
	memcpy(frag + r1, "\x14\x03\x03\x00\x01\x01", 6);
	memcpy(frag + r1 + 6, buf + r1, len - r1);
	is_int(tls_server_hello_parse(frag, len + 6, &h), TLS_SH_MALFORMED,
	       "a CCS between the ServerHello's records is MALFORMED");
	/* An alert inside it: the server gave up. */
	memcpy(frag + r1, "\x15\x03\x03\x00\x02\x02\x28", 7);
	memcpy(frag + r1 + 7, buf + r1, len - r1);
	is_int(tls_server_hello_parse(frag, len + 7, &h), TLS_SH_ALERT,
	       "an alert inside the ServerHello's records is ALERT");
	is_int(tls_server_hello_parse(buf, 0, &h), TLS_SH_MORE,
	       "nothing yet: MORE");
}

/* The HRR message, re-framed as records of every size from 1 to 40. */
static void fragmented(void)
{
	static uint8_t buf[4096], frag[65536];
	size_t len =
	    corpus_load("tls_server_hello", "hrr_only", buf, sizeof(buf));
	size_t mlen = len - 5;
	bool all = true;
	for (size_t sz = 1; sz <= 40; sz++) {
		size_t o = 0;
		for (size_t i = 0; i < mlen; i += sz) {
			size_t part = mlen - i < sz ? mlen - i : sz;
			frag[o++] = 22, frag[o++] = 3, frag[o++] = 3;
			frag[o++] = 0, frag[o++] = (uint8_t)part;
			memcpy(frag + o, buf + 5 + i, part);
			o += part;
		}
		struct tls_server_hello h;
		if (tls_server_hello_parse(frag, o, &h) != TLS_SH_HRR ||
		    h.consumed != o || (sz == 7 && !prefixes_more(frag, o))) {
			tap_diag("record size %zu failed", sz);
			all = false;
		}
	}
	ok(all, "HRR re-framed into records of 1..40 bytes: all HRR");
}

int main(void)
{
	captured();
	refused();
	fragmented();
	return done_testing();
}
