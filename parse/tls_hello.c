/* ClientHello parsing (RFC 8446 4.1.2, RFC 5246 6.2.1, RFC 6066 3).
 *
 * The handshake message is first copied out of its records into a stack
 * buffer (bounded by TLS_HELLO_MAX), so the hello parser works on one
 * contiguous message no matter how the client fragmented it. The input is
 * re-parsed from byte 0 on every call: the caller simply appends what it
 * read and calls again until the status is no longer INCOMPLETE. */
#include <string.h>

#include "tls_hello.h"

#define REC_HDR 5
#define HS_HDR 4
#define REC_MAX 16384 /* TLSPlaintext.length limit (RFC 8446 5.1) */
#define CT_CCS 20
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPDATA 23
#define CT_HEARTBEAT 24
#define HS_CLIENT_HELLO 1
#define EXT_SERVER_NAME 0
#define EXT_ECH 0xfe0d
#define EXT_ESNI 0xffce
#define SNI_HOST_NAME 0
#define SNI_MAX 253

/* A bounds-checked cursor over the reassembled message. */
struct rd {
	const uint8_t *p;
	size_t len, off;
};

static bool rd_u8(struct rd *r, uint8_t *v)
{
	if (r->len - r->off < 1)
		return false;
	*v = r->p[r->off++];
	return true;
}

static bool rd_u16(struct rd *r, uint16_t *v)
{
	if (r->len - r->off < 2)
		return false;
	*v = (uint16_t)(r->p[r->off] << 8 | r->p[r->off + 1]);
	r->off += 2;
	return true;
}

static bool rd_skip(struct rd *r, size_t n)
{
	if (r->len - r->off < n)
		return false;
	r->off += n;
	return true;
}

static enum tls_hello_status bad(struct tls_hello *out, const char *why)
{
	out->why = why;
	return TLS_HELLO_MALFORMED;
}

static enum tls_hello_status parse_sni(const uint8_t *p, size_t n,
				       struct tls_hello *out)
{
	struct rd r = {p, n, 0};
	uint16_t list_len, name_len;
	uint8_t type;

	if (n == 0)
		return bad(out, "empty server_name extension");
	if (!rd_u16(&r, &list_len) || list_len != n - 2)
		return bad(out, "server_name list length does not match extension");
	if (!rd_u8(&r, &type) || !rd_u16(&r, &name_len))
		return bad(out, "server_name entry truncated");
	/* RFC 6066 forbids a second name of the same type, and no other type
	 * is defined; a second entry is where parsers disagree, so refuse. */
	if (type != SNI_HOST_NAME)
		return bad(out, "server_name entry is not host_name");
	if (name_len > r.len - r.off)
		return bad(out, "server_name host_name overruns the list");
	if (r.len - r.off != name_len)
		return bad(out, "server_name has more than one entry");
	if (name_len == 0)
		return bad(out, "server_name host_name is empty");
	if (name_len > SNI_MAX)
		return bad(out, "server_name host_name longer than 253 bytes");
	for (size_t i = 0; i < name_len; i++) {
		uint8_t c = p[r.off + i];
		if (c == 0)
			return bad(out, "server_name contains NUL");
		if (c <= 0x20 || c >= 0x7f)
			return bad(out, "server_name contains a space, control "
					"or non-ASCII byte");
	}
	memcpy(out->sni, p + r.off, name_len);
	out->sni[name_len] = '\0';
	out->sni_len = name_len;
	out->has_sni = true;
	return TLS_HELLO_OK;
}

static enum tls_hello_status parse_extensions(struct rd *r,
					      struct tls_hello *out)
{
	/* One bit per extension type: duplicates of any type are refused
	 * (RFC 8446 4.2), and a bitmap keeps that linear. */
	uint8_t seen[65536 / 8];
	uint16_t block_len;

	memset(seen, 0, sizeof(seen));
	if (!rd_u16(r, &block_len))
		return bad(out, "extensions length truncated");
	if (block_len != r->len - r->off)
		return bad(out, "extensions length does not match the message");
	while (r->off < r->len) {
		uint16_t type, elen;
		if (!rd_u16(r, &type) || !rd_u16(r, &elen))
			return bad(out, "extension header truncated");
		if (elen > r->len - r->off)
			return bad(out, "extension overruns the extensions block");
		if (seen[type >> 3] & (1u << (type & 7)))
			return bad(out, "duplicate extension");
		seen[type >> 3] |= (uint8_t)(1u << (type & 7));
		const uint8_t *data = r->p + r->off;
		r->off += elen;
		if (type == EXT_SERVER_NAME) {
			enum tls_hello_status st = parse_sni(data, elen, out);
			if (st != TLS_HELLO_OK)
				return st;
		} else if (type == EXT_ECH || type == EXT_ESNI) {
			out->has_ech = true;
		}
	}
	return TLS_HELLO_OK;
}

static enum tls_hello_status parse_client_hello(const uint8_t *msg, size_t n,
						struct tls_hello *out)
{
	struct rd r = {msg, n, 0};
	uint8_t sid_len, comp_len;
	uint16_t cs_len;

	if (!rd_u16(&r, &out->version))
		return bad(out, "ClientHello truncated before legacy_version");
	if (out->version >> 8 != 3)
		return bad(out, "ClientHello legacy_version is not 3.x");
	if (!rd_skip(&r, 32))
		return bad(out, "ClientHello truncated in random");
	if (!rd_u8(&r, &sid_len))
		return bad(out, "ClientHello truncated before session id");
	if (sid_len > 32)
		return bad(out, "session id longer than 32 bytes");
	if (!rd_skip(&r, sid_len))
		return bad(out, "ClientHello truncated in session id");
	if (!rd_u16(&r, &cs_len))
		return bad(out, "ClientHello truncated before cipher suites");
	if (cs_len < 2 || cs_len % 2)
		return bad(out, "cipher suites length is zero or odd");
	if (!rd_skip(&r, cs_len))
		return bad(out, "ClientHello truncated in cipher suites");
	if (!rd_u8(&r, &comp_len))
		return bad(out, "ClientHello truncated before compression methods");
	if (comp_len < 1)
		return bad(out, "no compression methods");
	if (!rd_skip(&r, comp_len))
		return bad(out, "ClientHello truncated in compression methods");
	/* TLS 1.2 and earlier may omit the extensions block altogether. */
	if (r.off == r.len)
		return TLS_HELLO_OK;
	return parse_extensions(&r, out);
}

enum tls_first tls_first_bytes(const uint8_t *buf, size_t len)
{
	if (len == 0)
		return TLS_FIRST_MORE;
	/* SSLv2 CLIENT-HELLO: 2-byte length with the high bit set, message
	 * type 1, version 0.2 or 3.x. */
	if (buf[0] & 0x80) {
		if (len >= 3 && buf[2] != 1)
			return TLS_FIRST_OTHER;
		if (len >= 4 && buf[3] != 0 && buf[3] != 3)
			return TLS_FIRST_OTHER;
		if (len >= 5 && buf[3] == 0 && buf[4] != 2)
			return TLS_FIRST_OTHER;
		return len >= 5 ? TLS_FIRST_SSLV2 : TLS_FIRST_MORE;
	}
	if (buf[0] < CT_CCS || buf[0] > CT_HEARTBEAT)
		return TLS_FIRST_OTHER;
	if (len < 2)
		return TLS_FIRST_MORE;
	if (buf[1] != 3)
		return TLS_FIRST_OTHER;
	return buf[0] == CT_HANDSHAKE ? TLS_FIRST_HANDSHAKE
				      : TLS_FIRST_NOT_HANDSHAKE;
}

enum tls_hello_status tls_hello_parse(const uint8_t *buf, size_t len,
				      struct tls_hello *out)
{
	uint8_t msg[HS_HDR + TLS_HELLO_MAX];
	size_t have = 0; /* handshake bytes gathered into msg */
	size_t need = 0; /* HS_HDR + body length, once the header is known */
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return TLS_HELLO_INCOMPLETE;
	switch (tls_first_bytes(buf, len)) {
	case TLS_FIRST_MORE:
		return TLS_HELLO_INCOMPLETE;
	case TLS_FIRST_OTHER:
		out->why = "first bytes are not a TLS record";
		return TLS_HELLO_NOT_TLS;
	case TLS_FIRST_SSLV2:
		return bad(out, "SSLv2-format ClientHello");
	case TLS_FIRST_NOT_HANDSHAKE:
		/* A server that drops a warning alert (or CCS, or an empty
		 * application record) would go on to a hello we never saw
		 * first: only handshake records may come first. */
		return bad(out, buf[0] == CT_ALERT ? "TLS alert record before the ClientHello"
				: buf[0] == CT_CCS ? "TLS change_cipher_spec record before the ClientHello"
				: buf[0] == CT_APPDATA ? "TLS application_data record before the ClientHello"
				: "TLS heartbeat record before the ClientHello");
	case TLS_FIRST_HANDSHAKE:
		break;
	}

	while (need == 0 || have < need) {
		if (len - off < REC_HDR) {
			/* Judge a partial header by what is there already. */
			if (len - off >= 1 && buf[off] != CT_HANDSHAKE)
				return bad(out, "non-handshake record before "
						"the ClientHello ended");
			if (len - off >= 2 && buf[off + 1] != 3)
				return bad(out, "record version is not 3.x");
			return TLS_HELLO_INCOMPLETE;
		}
		const uint8_t *h = buf + off;
		size_t rec_len = (size_t)h[3] << 8 | h[4];
		if (h[0] != CT_HANDSHAKE)
			return bad(out, "non-handshake record before the "
					"ClientHello ended");
		if (h[1] != 3)
			return bad(out, "record version is not 3.x");
		if (rec_len == 0)
			return bad(out, "zero-length handshake record");
		if (rec_len > REC_MAX)
			return bad(out, "record longer than 2^14 bytes");
		off += REC_HDR;

		size_t avail = len - off < rec_len ? len - off : rec_len;
		for (size_t i = 0; i < avail; i++) {
			if (need != 0 && have == need)
				/* The hello ended inside this record: anything
				 * more would be a second handshake message,
				 * which a client's first flight never has. */
				return bad(out, "data after the ClientHello "
						"in its record");
			msg[have++] = buf[off + i];
			if (have == 1 && msg[0] != HS_CLIENT_HELLO)
				return bad(out, "handshake message is not a "
						"ClientHello");
			if (have == HS_HDR) {
				size_t body = (size_t)msg[1] << 16 |
					      (size_t)msg[2] << 8 | msg[3];
				if (body > TLS_HELLO_MAX) {
					out->why = "ClientHello larger than "
						   "TLS_HELLO_MAX";
					return TLS_HELLO_TOO_LARGE;
				}
				need = HS_HDR + body;
			}
		}
		if (avail < rec_len)
			return TLS_HELLO_INCOMPLETE;
		off += rec_len;
	}
	out->consumed = off;
	return parse_client_hello(msg + HS_HDR, need - HS_HDR, out);
}
