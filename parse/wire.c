#include "wire.h"

#include <errno.h>
#include <string.h>

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

enum wire_status wire_header_parse(const uint8_t *buf, size_t len,
				   struct wire_header *out)
{
	if (len < WIRE_HEADER_LEN)
		return WIRE_INCOMPLETE;
	if (memcmp(buf, WIRE_MAGIC, 4) != 0)
		return WIRE_BAD_MAGIC;
	if (buf[4] != WIRE_VERSION)
		return WIRE_BAD_VERSION;
	uint8_t kind = buf[5];
	if (kind != WIRE_TCP && kind != WIRE_DNS && kind != WIRE_CONTROL)
		return WIRE_BAD_KIND;
	uint8_t family = buf[6];
	if (family != 0 && family != 4 && family != 6)
		return WIRE_BAD_FAMILY;
	if (buf[7] != 0 || buf[10] != 0 || buf[11] != 0)
		return WIRE_BAD_RESERVED;
	uint16_t port = (uint16_t)(buf[8] << 8 | buf[9]);
	const uint8_t *addr = buf + 12;
	if (family == 0 && !all_zero(addr, 16))
		return WIRE_BAD_RESERVED;
	if (family == 4 && !all_zero(addr + 4, 12))
		return WIRE_BAD_RESERVED;
	if ((family == 0) != (port == 0))
		return WIRE_BAD_PORT;
	/* A TCP stream must say where it was going; DNS and control must not. */
	if ((kind == WIRE_TCP) != (family != 0))
		return WIRE_BAD_FAMILY;

	memset(out, 0, sizeof(*out));
	out->version = buf[4];
	out->kind = kind;
	out->family = family;
	out->port = port;
	memcpy(out->addr, addr, 16);
	return WIRE_OK;
}

int wire_header_encode(const struct wire_header *h,
		       uint8_t out[WIRE_HEADER_LEN])
{
	memset(out, 0, WIRE_HEADER_LEN);
	memcpy(out, WIRE_MAGIC, 4);
	out[4] = WIRE_VERSION;
	out[5] = h->kind;
	out[6] = h->family;
	out[8] = (uint8_t)(h->port >> 8);
	out[9] = (uint8_t)h->port;
	if (h->family == 4)
		memcpy(out + 12, h->addr, 4);
	else if (h->family == 6)
		memcpy(out + 12, h->addr, 16);
	struct wire_header check;
	return wire_header_parse(out, WIRE_HEADER_LEN, &check) == WIRE_OK
		       ? 0
		       : -EINVAL;
}

const char *wire_status_str(enum wire_status s)
{
	switch (s) {
	case WIRE_OK: return "ok";
	case WIRE_INCOMPLETE: return "truncated wire header";
	case WIRE_BAD_MAGIC: return "bad wire header magic";
	case WIRE_BAD_VERSION: return "unsupported wire header version";
	case WIRE_BAD_KIND: return "unknown wire header kind";
	case WIRE_BAD_FAMILY: return "bad address family in wire header";
	case WIRE_BAD_RESERVED: return "non-zero reserved bits in wire header";
	case WIRE_BAD_PORT: return "bad port in wire header";
	}
	return "unknown wire status";
}
