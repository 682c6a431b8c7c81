/* ServerHello / HelloRetryRequest parsing (RFC 8446 4.1.3, 4.1.4, 4.2.1;
 * RFC 5246 7.4.1.3).
 *
 * Like tls_hello.c, the message is gathered out of its records into a
 * stack buffer (bounded by TLS_SERVER_HELLO_MAX) and the input is parsed
 * again from byte 0 on every call. */
#include <string.h>

#include "tls_server_hello.h"

#define REC_HDR 5
#define HS_HDR 4
#define REC_MAX 16384 /* TLSPlaintext.length limit (RFC 8446 5.1) */
#define CT_CCS 20
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define HS_SERVER_HELLO 2
#define EXT_SUPPORTED_VERSIONS 43

/* SHA-256("HelloRetryRequest"): the random of every HelloRetryRequest,
 * which is otherwise a ServerHello (RFC 8446 4.1.3). */
static const uint8_t hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c,
	0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb,
	0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

static enum tls_sh_status bad(struct tls_server_hello *out, const char *why)
{
	out->why = why;
	return TLS_SH_MALFORMED;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The extensions of a ServerHello: only supported_versions matters here,
 * but the block must be well formed and free of duplicates. */
static enum tls_sh_status parse_extensions(const uint8_t *p, size_t n,
					   struct tls_server_hello *out)
{
	bool seen_sv = false;
	uint16_t types[64];
	size_t ntypes = 0, off = 0;

	if (n < 2 || be16(p) != n - 2)
		return bad(out, "ServerHello extensions length does not match "
				"the message");
	off = 2;
	while (off < n) {
		if (n - off < 4)
			return bad(out, "ServerHello extension header truncated");
		uint16_t type = be16(p + off), elen = be16(p + off + 2);
		off += 4;
		if (elen > n - off)
			return bad(out, "ServerHello extension overruns the "
					"block");
		/* A server answers only what was offered: a few dozen
		 * extensions at most, so a linear duplicate check is fine. */
		if (ntypes == sizeof(types) / sizeof(types[0]))
			return bad(out, "ServerHello has too many extensions");
		for (size_t i = 0; i < ntypes; i++)
			if (types[i] == type)
				return bad(out, "duplicate ServerHello "
						"extension");
		types[ntypes++] = type;
		if (type == EXT_SUPPORTED_VERSIONS) {
			if (elen != 2)
				return bad(out, "ServerHello supported_versions "
						"is not one version");
			out->version = be16(p + off);
			seen_sv = true;
		}
		off += elen;
	}
	if (seen_sv && out->version >> 8 != 3)
		return bad(out, "ServerHello selected_version is not 3.x");
	return TLS_SH_SERVER_HELLO;
}

static enum tls_sh_status parse_server_hello(const uint8_t *m, size_t n,
					     struct tls_server_hello *out)
{
	size_t off = 0;

	if (n < 2 + 32 + 1)
		return bad(out, "ServerHello truncated before session id");
	out->version = be16(m);
	if (out->version >> 8 != 3)
		return bad(out, "ServerHello legacy_version is not 3.x");
	bool hrr = memcmp(m + 2, hrr_random, sizeof(hrr_random)) == 0;
	off = 2 + 32;
	size_t sid = m[off++];
	if (sid > 32)
		return bad(out, "ServerHello session id longer than 32 bytes");
	if (n - off < sid + 2 + 1)
		return bad(out, "ServerHello truncated before extensions");
	off += sid + 2 + 1; /* session id, cipher suite, compression */
	enum tls_sh_status st = TLS_SH_SERVER_HELLO;
	/* TLS 1.2 and earlier may omit the extensions block altogether. */
	if (off < n)
		st = parse_extensions(m + off, n - off, out);
	if (st != TLS_SH_SERVER_HELLO)
		return st;
	/* The random alone decides: a "ServerHello" that carries it is a
	 * retry whatever else it says, so the watch goes on. */
	return hrr ? TLS_SH_HRR : TLS_SH_SERVER_HELLO;
}

enum tls_sh_status tls_server_hello_parse(const uint8_t *buf, size_t len,
					  struct tls_server_hello *out)
{
	uint8_t msg[HS_HDR + TLS_SERVER_HELLO_MAX];
	size_t have = 0; /* handshake bytes gathered into msg */
	size_t need = 0; /* HS_HDR + body length, once the header is known */
	size_t off = 0;
	unsigned ccs = 0;

	memset(out, 0, sizeof(*out));
	while (need == 0 || have < need) {
		if (len - off < REC_HDR) {
			/* Judge a partial header by what is there already. */
			if (len - off >= 1 && buf[off] != CT_HANDSHAKE &&
			    buf[off] != CT_CCS && buf[off] != CT_ALERT)
				return bad(out, "server's first flight is not "
						"TLS handshake records");
			if (len - off >= 2 && buf[off + 1] != 3)
				return bad(out, "server record version is not "
						"3.x");
			return TLS_SH_MORE;
		}
		const uint8_t *h = buf + off;
		size_t rec_len = (size_t)h[3] << 8 | h[4];
		if (h[0] != CT_HANDSHAKE && h[0] != CT_CCS && h[0] != CT_ALERT)
			return bad(out, "server's first flight is not TLS "
					"handshake records");
		if (h[1] != 3)
			return bad(out, "server record version is not 3.x");
		if (rec_len > REC_MAX)
			return bad(out, "server record longer than 2^14 bytes");
		if (h[0] == CT_ALERT) {
			/* Whatever the level: the handshake is over for the
			 * proxy, which lets nothing more reach the server. */
			out->consumed = off + REC_HDR;
			return TLS_SH_ALERT;
		}
		if (h[0] == CT_CCS) {
			/* RFC 8446 5.1: no other record inside a handshake
			 * message; D.4: one CCS, before or after the hello. */
			if (have > 0)
				return bad(out, "change_cipher_spec inside the "
						"ServerHello");
			if (++ccs > 1)
				return bad(out, "more than one "
						"change_cipher_spec before "
						"the ServerHello");
			if (rec_len != 1)
				return bad(out, "change_cipher_spec record is "
						"not one byte");
			if (len - off < REC_HDR + 1)
				return TLS_SH_MORE;
			if (h[REC_HDR] != 1)
				return bad(out, "change_cipher_spec value is "
						"not 1");
			off += REC_HDR + 1;
			continue;
		}
		if (rec_len == 0)
			return bad(out, "zero-length server handshake record");
		off += REC_HDR;
		size_t avail = len - off < rec_len ? len - off : rec_len;
		for (size_t i = 0; i < avail; i++) {
			if (need != 0 && have == need) {
				out->more_in_record = true;
				break;
			}
			msg[have++] = buf[off + i];
			if (have == 1 && msg[0] != HS_SERVER_HELLO)
				return bad(out, "server's first handshake "
						"message is not a ServerHello");
			if (have == HS_HDR) {
				size_t body = (size_t)msg[1] << 16 |
					      (size_t)msg[2] << 8 | msg[3];
				if (body > TLS_SERVER_HELLO_MAX)
					return bad(out, "ServerHello larger "
							"than "
							"TLS_SERVER_HELLO_MAX");
				need = HS_HDR + body;
			}
		}
		if (avail < rec_len && (need == 0 || have < need))
			return TLS_SH_MORE;
		if (avail < rec_len) {
			/* The message ended; the rest of its record may still
			 * be arriving: consumed is through the record's end,
			 * known from its header. */
			out->more_in_record = true;
		}
		off += rec_len;
	}
	out->consumed = off;
	return parse_server_hello(msg + HS_HDR, need - HS_HDR, out);
}
