/* ClientHello parser: real captured hellos (tests/fuzz/capture_corpus.py),
 * every prefix, re-fragmentation, and each way a hello can be malformed. */
#include <string.h>

#include "../../common/util.h"
#include "../../parse/tls_hello.h"
#include "corpus.h"
#include "tap.h"

/* Split the handshake payload of the records in `in` into records of at
 * most `size` bytes each. */
static size_t refragment(const uint8_t *in, size_t len, size_t size,
			 uint8_t *out, size_t outsz)
{
	uint8_t hs[TLS_HELLO_MAX + 4];
	size_t n = 0, o = 0;
	for (size_t off = 0; off + 5 <= len;) {
		size_t rl = (size_t)in[off + 3] << 8 | in[off + 4];
		memcpy(hs + n, in + off + 5, rl);
		n += rl;
		off += 5 + rl;
	}
	for (size_t i = 0; i < n; i += size) {
		size_t part = n - i < size ? n - i : size;
		if (o + 5 + part > outsz)
			return 0;
		out[o++] = 22, out[o++] = 3, out[o++] = 1;
		out[o++] = (uint8_t)(part >> 8), out[o++] = (uint8_t)part;
		memcpy(out + o, hs + i, part);
		o += part;
	}
	return o;
}

static bool every_prefix_incomplete(const uint8_t *b, size_t len)
{
	struct tls_hello h;
	for (size_t i = 0; i < len; i++) {
		enum tls_hello_status st = tls_hello_parse(b, i, &h);
		if (st != TLS_HELLO_INCOMPLETE) {
			tap_diag("prefix %zu of %zu: status %d (%s)", i, len,
				 st, h.why ? h.why : "");
			return false;
		}
	}
	return tls_hello_parse(b, len, &h) == TLS_HELLO_OK;
}

static void captured(void)
{
	static const struct {
		const char *file, *sni;
		uint16_t version;
	} cases[] = {
		{"openssl_tls13", "x", 0x0303},
		{"openssl_tls12", "x", 0x0303},
		{"openssl_ffdhe8192", "x", 0x0303},
		{"openssl_nosni", NULL, 0x0303},
		{"curl", "example.test", 0x0303},
		{"curl_tls12", "www.example.org", 0x0303},
		{"frag_ffdhe8192_100", "x", 0x0303},
		{"frag_curl_1", "example.test", 0x0303},
	};
	static uint8_t buf[65536], frag[65536 * 4];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len =
		    corpus_load("tls_hello", cases[i].file, buf, sizeof(buf));
		struct tls_hello h;
		is_int(tls_hello_parse(buf, len, &h), TLS_HELLO_OK, "%s parses",
		       cases[i].file);
		is_int(h.version, cases[i].version, "%s legacy_version",
		       cases[i].file);
		ok(!h.has_ech, "%s has no ECH", cases[i].file);
		is_int(h.consumed, len, "%s: consumed is every record",
		       cases[i].file);
		if (cases[i].sni) {
			ok(h.has_sni, "%s has SNI", cases[i].file);
			is_str(h.sni, cases[i].sni, "%s SNI", cases[i].file);
			is_int(h.sni_len, strlen(cases[i].sni), "%s sni_len",
			       cases[i].file);
		} else {
			ok(!h.has_sni && h.sni_len == 0, "%s has no SNI",
			   cases[i].file);
		}
		ok(every_prefix_incomplete(buf, len),
		   "%s: every prefix is INCOMPLETE, the whole is OK",
		   cases[i].file);
	}

	/* The big TLS 1.3 hello (1 KiB ffdhe8192 key share) cut into records
	 * of every size from 1 to 40 bytes, and a few larger. */
	size_t len =
	    corpus_load("tls_hello", "openssl_ffdhe8192", buf, sizeof(buf));
	ok(len > 1100, "ffdhe8192 hello carries a big key share (%zu)", len);
	bool all = true;
	for (size_t sz = 1; sz <= 1200; sz = sz < 40 ? sz + 1 : sz * 2) {
		size_t fl = refragment(buf, len, sz, frag, sizeof(frag));
		struct tls_hello h;
		if (fl == 0 || tls_hello_parse(frag, fl, &h) != TLS_HELLO_OK ||
		    strcmp(h.sni, "x") != 0) {
			tap_diag("fragment size %zu failed", sz);
			all = false;
		}
	}
	ok(all, "re-fragmented into records of 1..40, 80.. bytes: all parse");
	size_t fl = refragment(buf, len, 7, frag, sizeof(frag));
	ok(every_prefix_incomplete(frag, fl),
	   "7-byte records: every prefix INCOMPLETE (header split across records)");

	/* A change_cipher_spec record after the hello (TLS 1.3 middlebox
	 * compatibility) is not part of the hello and is ignored. */
	memcpy(buf + len, "\x14\x03\x03\x00\x01\x01", 6);
	struct tls_hello h;
	is_int(tls_hello_parse(buf, len + 6, &h), TLS_HELLO_OK,
	       "bytes after the hello's last record are ignored");
	is_int(h.consumed, len, "... and not consumed");
	is_int(tls_hello_parse(buf, len + 2, &h), TLS_HELLO_OK,
	       "a partial record after the hello is ignored");
}

/* --- synthetic hellos ---------------------------------------------------- */

struct hb {
	uint8_t b[TLS_HELLO_MAX + 64];
	size_t n;
};

static void add(struct hb *h, const void *p, size_t n)
{
	if (n == 0)
		return;
	memcpy(h->b + h->n, p, n);
	h->n += n;
}

static void add16(struct hb *h, unsigned v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	add(h, x, 2);
}

/* A ClientHello body with the given extensions block contents. */
static void body(struct hb *h, const void *ext, size_t ext_len, bool block)
{
	static const uint8_t random[32];
	h->n = 0;
	add16(h, 0x0303);
	add(h, random, 32);
	add(h, "\x00", 1);             /* session id */
	add(h, "\x00\x02\x13\x01", 4); /* one cipher suite */
	add(h, "\x01\x00", 2);         /* null compression */
	if (block) {
		add16(h, (unsigned)ext_len);
		add(h, ext, ext_len);
	}
}

/* Wrap a body into a handshake message in one record. */
static size_t wrap(const struct hb *bd, uint8_t *out)
{
	size_t n = bd->n + 4;
	memcpy(out, "\x16\x03\x01", 3);
	out[3] = (uint8_t)(n >> 8), out[4] = (uint8_t)n;
	out[5] = 1;
	out[6] = (uint8_t)(bd->n >> 16), out[7] = (uint8_t)(bd->n >> 8);
	out[8] = (uint8_t)bd->n;
	memcpy(out + 9, bd->b, bd->n);
	return n + 5;
}

/* Build a server_name extension carrying `list` as its data. */
static size_t sni_ext(uint8_t *e, const char *name, size_t nlen)
{
	size_t n = 0;
	e[n++] = 0, e[n++] = 0; /* type server_name */
	e[n++] = (uint8_t)((nlen + 5) >> 8), e[n++] = (uint8_t)(nlen + 5);
	e[n++] = (uint8_t)((nlen + 3) >> 8), e[n++] = (uint8_t)(nlen + 3);
	e[n++] = 0;
	e[n++] = (uint8_t)(nlen >> 8), e[n++] = (uint8_t)nlen;
	memcpy(e + n, name, nlen);
	return n + nlen;
}

static enum tls_hello_status run_ext(const void *ext, size_t len,
				     struct tls_hello *h)
{
	static struct hb bd;
	static uint8_t rec[TLS_HELLO_MAX + 128];
	body(&bd, ext, len, true);
	return tls_hello_parse(rec, wrap(&bd, rec), h);
}

static void expect_ext(const void *ext, size_t len, const char *why,
		       const char *what)
{
	struct tls_hello h;
	is_int(run_ext(ext, len, &h), TLS_HELLO_MALFORMED, "%s: MALFORMED", what);
	is_str(h.why, why, "%s: why", what);
}

static void sni_cases(void)
{
	uint8_t e[1024];
	struct tls_hello h;
	char name[300];

	size_t n = sni_ext(e, "a.example", 9);
	is_int(run_ext(e, n, &h), TLS_HELLO_OK, "minimal SNI hello");
	is_str(h.sni, "a.example", "SNI value");

	memset(name, 'a', sizeof(name));
	n = sni_ext(e, name, 253);
	is_int(run_ext(e, n, &h), TLS_HELLO_OK, "253-byte SNI is accepted");
	is_int(h.sni_len, 253, "253-byte SNI length");
	n = sni_ext(e, name, 254);
	expect_ext(e, n, "server_name host_name longer than 253 bytes", "254-byte SNI");
	n = sni_ext(e, name, 0);
	expect_ext(e, n, "server_name host_name is empty", "empty host_name");
	n = sni_ext(e, "a\0b", 3);
	expect_ext(e, n, "server_name contains NUL", "NUL in SNI");
	n = sni_ext(e, "a b", 3);
	expect_ext(e, n, "server_name contains a space, control or non-ASCII byte",
		   "space in SNI");
	n = sni_ext(e, "a\xc3\xa9", 3);
	expect_ext(e, n, "server_name contains a space, control or non-ASCII byte",
		   "UTF-8 in SNI");
	n = sni_ext(e, "a\x7f", 2);
	expect_ext(e, n, "server_name contains a space, control or non-ASCII byte",
		   "DEL in SNI");

	n = sni_ext(e, "ab", 2);
	e[6] = 1; /* name_type */
	expect_ext(e, n, "server_name entry is not host_name", "name_type 1");

	/* Two host_name entries: the smuggling case (which one is checked?) */
	static const uint8_t two[] = {0, 0, 0, 12, 0, 10, 0, 0, 2, 'a', 'b',
				      0, 0, 1, 'c'};
	uint8_t twofix[sizeof(two)];
	memcpy(twofix, two, sizeof(two));
	twofix[3] = 11, twofix[5] = 9;
	expect_ext(twofix, sizeof(twofix), "server_name has more than one entry",
		   "two server_name entries");

	static const uint8_t empty[] = {0, 0, 0, 0};
	expect_ext(empty, sizeof(empty), "empty server_name extension",
		   "zero-length server_name");
	static const uint8_t listlen[] = {0, 0, 0, 6, 0, 9, 0, 0, 1, 'a'};
	expect_ext(listlen, sizeof(listlen),
		   "server_name list length does not match extension",
		   "list length mismatch");
	static const uint8_t shorthdr[] = {0, 0, 0, 4, 0, 2, 0, 0};
	expect_ext(shorthdr, sizeof(shorthdr), "server_name entry truncated",
		   "entry header truncated");
	static const uint8_t overrun[] = {0, 0, 0, 6, 0, 4, 0, 0, 9, 'a'};
	expect_ext(overrun, sizeof(overrun),
		   "server_name host_name overruns the list", "name overruns");

	/* Duplicate server_name extensions. */
	n = sni_ext(e, "a", 1);
	size_t m = sni_ext(e + n, "b", 1);
	expect_ext(e, n + m, "duplicate extension", "two server_name extensions");
}

static void ext_cases(void)
{
	struct tls_hello h;
	static const uint8_t ech[] = {0xfe, 0x0d, 0, 1, 0};
	is_int(run_ext(ech, sizeof(ech), &h), TLS_HELLO_OK, "ECH hello parses");
	ok(h.has_ech, "ECH 0xfe0d sets has_ech");
	static const uint8_t esni[] = {0xff, 0xce, 0, 0};
	is_int(run_ext(esni, sizeof(esni), &h), TLS_HELLO_OK, "ESNI hello parses");
	ok(h.has_ech, "ESNI 0xffce sets has_ech");
	static const uint8_t dup[] = {0, 23, 0, 0, 0, 23, 0, 0};
	expect_ext(dup, sizeof(dup), "duplicate extension", "duplicate ext 23");
	static const uint8_t dup_ech[] = {0xfe, 0x0d, 0, 0, 0xfe, 0x0d, 0, 0};
	expect_ext(dup_ech, sizeof(dup_ech), "duplicate extension", "duplicate ECH");
	static const uint8_t trunc[] = {0, 23, 0};
	expect_ext(trunc, sizeof(trunc), "extension header truncated",
		   "extension header truncated");
	static const uint8_t over[] = {0, 23, 0, 9, 1};
	expect_ext(over, sizeof(over), "extension overruns the extensions block",
		   "extension overruns");
	is_int(run_ext("", 0, &h), TLS_HELLO_OK, "empty extensions block is fine");

	/* Extensions block length must match exactly. */
	static struct hb bd;
	static uint8_t rec[TLS_HELLO_MAX + 128];
	body(&bd, ech, sizeof(ech), true);
	bd.b[bd.n - sizeof(ech) - 1]--; /* block length one short */
	is_int(tls_hello_parse(rec, wrap(&bd, rec), &h), TLS_HELLO_MALFORMED,
	       "short extensions length");
	is_str(h.why, "extensions length does not match the message", "why");
	body(&bd, ech, sizeof(ech), true);
	bd.n--; /* message ends before the block */
	is_int(tls_hello_parse(rec, wrap(&bd, rec), &h), TLS_HELLO_MALFORMED,
	       "extensions length longer than the message");
	is_str(h.why, "extensions length does not match the message", "why");
	body(&bd, NULL, 0, false);
	add(&bd, "\x00", 1);
	is_int(tls_hello_parse(rec, wrap(&bd, rec), &h), TLS_HELLO_MALFORMED,
	       "one stray byte where extensions start");
	is_str(h.why, "extensions length truncated", "why");
	body(&bd, NULL, 0, false);
	is_int(tls_hello_parse(rec, wrap(&bd, rec), &h), TLS_HELLO_OK,
	       "a hello without extensions (TLS 1.2 allows it)");
	ok(!h.has_sni, "... and no SNI");
}

static void body_cases(void)
{
	static struct hb bd;
	static uint8_t rec[TLS_HELLO_MAX + 128];
	struct tls_hello h;
	static const struct {
		size_t at;
		uint8_t val;
		const char *why;
	} pokes[] = {
		{0, 2, "ClientHello legacy_version is not 3.x"},
		{34, 33, "session id longer than 32 bytes"},
		{34, 32, "ClientHello truncated in session id"},
		{36, 0, "cipher suites length is zero or odd"},
		{36, 3, "cipher suites length is zero or odd"},
		{35, 1, "ClientHello truncated in cipher suites"},
		{39, 0, "no compression methods"},
		{39, 9, "ClientHello truncated in compression methods"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(pokes); i++) {
		body(&bd, NULL, 0, true);
		bd.b[pokes[i].at] = pokes[i].val;
		is_int(tls_hello_parse(rec, wrap(&bd, rec), &h),
		       TLS_HELLO_MALFORMED, "poke %zu: MALFORMED", i);
		is_str(h.why, pokes[i].why, "poke %zu: why", i);
	}
	static const struct {
		size_t n;
		const char *why;
	} cuts[] = {
		{1, "ClientHello truncated before legacy_version"},
		{20, "ClientHello truncated in random"},
		{34, "ClientHello truncated before session id"},
		{36, "ClientHello truncated before cipher suites"},
		{38, "ClientHello truncated in cipher suites"},
		{39, "ClientHello truncated before compression methods"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		body(&bd, NULL, 0, true);
		bd.n = cuts[i].n;
		is_int(tls_hello_parse(rec, wrap(&bd, rec), &h),
		       TLS_HELLO_MALFORMED, "cut at %zu: MALFORMED", cuts[i].n);
		is_str(h.why, cuts[i].why, "cut at %zu: why", cuts[i].n);
	}
}

static void record_cases(void)
{
	static struct hb bd;
	static uint8_t rec[TLS_HELLO_MAX + 256];
	struct tls_hello h;
	uint8_t e[64];

	is_int(tls_hello_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &h),
	       TLS_HELLO_NOT_TLS, "HTTP is NOT_TLS");
	is_int(tls_hello_parse((const uint8_t *)"\x80\x2e\x01\x03\x01", 5, &h),
	       TLS_HELLO_MALFORMED, "SSLv2-compatible hello is refused");
	is_str(h.why, "SSLv2-format ClientHello", "... saying so");
	is_int(tls_hello_parse((const uint8_t *)"\x80\x2e\x01\x00\x02", 5, &h),
	       TLS_HELLO_MALFORMED, "SSLv2 hello (version 0.2) is refused");
	is_int(tls_hello_parse((const uint8_t *)"\x80\x2e\x01", 3, &h),
	       TLS_HELLO_INCOMPLETE, "SSLv2 header start: INCOMPLETE");
	is_int(tls_hello_parse((const uint8_t *)"\x80\x2e\x05\x03\x01", 5, &h),
	       TLS_HELLO_NOT_TLS, "high bit, not a CLIENT-HELLO: NOT_TLS");
	/* Issue 8: only handshake records before the ClientHello. */
	static const struct {
		uint8_t ct;
		const char *why;
	} pre[] = {
		{20, "TLS change_cipher_spec record before the ClientHello"},
		{21, "TLS alert record before the ClientHello"},
		{23, "TLS application_data record before the ClientHello"},
		{24, "TLS heartbeat record before the ClientHello"},
	};
	for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++) {
		uint8_t a[7] = {pre[i].ct, 3, 1, 0, 2, 1, 0};
		is_int(tls_hello_parse(a, sizeof(a), &h), TLS_HELLO_MALFORMED,
		       "content type %u first: MALFORMED", pre[i].ct);
		is_str(h.why, pre[i].why, "content type %u: why", pre[i].ct);
		is_int(tls_hello_parse(a, 2, &h), TLS_HELLO_MALFORMED,
		       "content type %u: refused from its header", pre[i].ct);
		is_int(tls_first_bytes(a, 1), TLS_FIRST_MORE,
		       "content type %u alone: MORE", pre[i].ct);
		is_int(tls_first_bytes(a, 2), TLS_FIRST_NOT_HANDSHAKE,
		       "content type %u: not a handshake", pre[i].ct);
	}
	is_int(tls_hello_parse((const uint8_t *)"\x19\x03\x01", 3, &h),
	       TLS_HELLO_NOT_TLS, "unknown content type 25 is not TLS");
	is_int(tls_first_bytes((const uint8_t *)"\x16\x03", 2),
	       TLS_FIRST_HANDSHAKE, "handshake record header");
	is_int(tls_hello_parse((const uint8_t *)"\x16\x02", 2, &h),
	       TLS_HELLO_NOT_TLS, "record version 2.x is NOT_TLS");
	is_int(tls_hello_parse((const uint8_t *)"\x16", 1, &h),
	       TLS_HELLO_INCOMPLETE, "one handshake byte is INCOMPLETE");
	is_int(tls_hello_parse(rec, 0, &h), TLS_HELLO_INCOMPLETE,
	       "nothing yet is INCOMPLETE");

	body(&bd, e, sni_ext(e, "a.b", 3), true);
	size_t n = wrap(&bd, rec);

	rec[5] = 2;
	is_int(tls_hello_parse(rec, n, &h), TLS_HELLO_MALFORMED, "ServerHello type");
	is_str(h.why, "handshake message is not a ClientHello", "why");
	is_int(tls_hello_parse(rec, 6, &h), TLS_HELLO_MALFORMED,
	       "wrong handshake type is caught from its first byte");
	rec[5] = 1;

	rec[6] = 0, rec[7] = 0x40, rec[8] = 1; /* 16385 */
	is_int(tls_hello_parse(rec, 9, &h), TLS_HELLO_TOO_LARGE,
	       "handshake length over TLS_HELLO_MAX, caught from its header");
	ok(h.why != NULL, "TOO_LARGE has a why");
	rec[6] = 0, rec[7] = (uint8_t)(bd.n >> 8), rec[8] = (uint8_t)bd.n;

	uint8_t zero[] = {0x16, 3, 1, 0, 0};
	is_int(tls_hello_parse(zero, 5, &h), TLS_HELLO_MALFORMED,
	       "zero-length handshake record");
	is_str(h.why, "zero-length handshake record", "why");

	uint8_t huge[] = {0x16, 3, 1, 0x40, 1, 1};
	is_int(tls_hello_parse(huge, 6, &h), TLS_HELLO_MALFORMED,
	       "record longer than 2^14");
	is_str(h.why, "record longer than 2^14 bytes", "why");

	/* Extra bytes after the hello inside its record. */
	rec[4]++;
	rec[n] = 0;
	is_int(tls_hello_parse(rec, n + 1, &h), TLS_HELLO_MALFORMED,
	       "a byte after the hello in the same record");
	is_str(h.why, "data after the ClientHello in its record", "why");
	rec[4]--;

	/* Fragmented: a non-handshake record, a bad version and an empty
	 * record in the middle of the hello. */
	static uint8_t frag[TLS_HELLO_MAX * 2];
	size_t fl = refragment(rec, n, 10, frag, sizeof(frag));
	frag[15] = 23;
	is_int(tls_hello_parse(frag, fl, &h), TLS_HELLO_MALFORMED,
	       "application data record inside the hello");
	is_str(h.why, "non-handshake record before the ClientHello ended", "why");
	is_int(tls_hello_parse(frag, 16, &h), TLS_HELLO_MALFORMED,
	       "... caught from the record's first byte");
	frag[15] = 22, frag[16] = 4;
	is_int(tls_hello_parse(frag, 17, &h), TLS_HELLO_MALFORMED,
	       "record version 4.x inside the hello");
	is_str(h.why, "record version is not 3.x", "why");
	frag[16] = 3, frag[18] = 0, frag[19] = 0;
	is_int(tls_hello_parse(frag, 20, &h), TLS_HELLO_MALFORMED,
	       "zero-length record inside the hello");
	is_str(h.why, "zero-length handshake record", "why");
}

int main(void)
{
	captured();
	sni_cases();
	ext_cases();
	body_cases();
	record_cases();
	return done_testing();
}
