/* The inbound header (parse/inbound.h): host -> guest, names a guest
 * loopback port. */
#include "inbound.h"

#include <errno.h>
#include <string.h>

enum inbound_status inbound_header_parse(const uint8_t *buf, size_t len,
					 uint16_t *port)
{
	if (len < INBOUND_HEADER_LEN)
		return INBOUND_INCOMPLETE;
	if (memcmp(buf, INBOUND_MAGIC, 4) != 0)
		return INBOUND_BAD_MAGIC;
	if (buf[4] != INBOUND_VERSION)
		return INBOUND_BAD_VERSION;
	if (buf[5] != 0)
		return INBOUND_BAD_RESERVED;
	uint16_t p = (uint16_t)(buf[6] << 8 | buf[7]);
	if (p == 0)
		return INBOUND_BAD_PORT;
	*port = p;
	return INBOUND_OK;
}

int inbound_header_encode(uint16_t port, uint8_t out[INBOUND_HEADER_LEN])
{
	if (port == 0)
		return -EINVAL;
	memcpy(out, INBOUND_MAGIC, 4);
	out[4] = INBOUND_VERSION;
	out[5] = 0;
	out[6] = (uint8_t)(port >> 8);
	out[7] = (uint8_t)port;
	return 0;
}

const char *inbound_status_str(enum inbound_status s)
{
	switch (s) {
	case INBOUND_OK: return "ok";
	case INBOUND_INCOMPLETE: return "truncated inbound header";
	case INBOUND_BAD_MAGIC: return "bad inbound header magic";
	case INBOUND_BAD_VERSION: return "unsupported inbound header version";
	case INBOUND_BAD_RESERVED: return "inbound header reserved byte not 0";
	case INBOUND_BAD_PORT: return "inbound header port 0";
	}
	return "unknown inbound header status";
}
