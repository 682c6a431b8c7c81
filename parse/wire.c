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

/* The source extension at WIRE_HEADER_LEN (wire.h). Control streams come
 * from the launcher, not from a guest connection: no source there. */
static enum wire_status parse_src(const uint8_t *buf, size_t len,
				  uint8_t kind, struct wire_header *h)
{
	if (kind == WIRE_CONTROL)
		return WIRE_BAD_SRC;
	if (len < WIRE_HEADER_LEN + WIRE_SRC_LEN)
		return WIRE_INCOMPLETE;
	const uint8_t *x = buf + WIRE_HEADER_LEN;
	if (x[0] != 4 && x[0] != 6)
		return WIRE_BAD_SRC;
	if (x[1] != 0)
		return WIRE_BAD_RESERVED;
	uint16_t port = (uint16_t)(x[2] << 8 | x[3]);
	if (port == 0)
		return WIRE_BAD_PORT;
	if (x[0] == 4 && !all_zero(x + 8, 12))
		return WIRE_BAD_RESERVED;
	h->src_family = x[0];
	h->src_port = port;
	memcpy(h->src_addr, x + 4, 16);
	h->len = WIRE_HEADER_LEN + WIRE_SRC_LEN;
	return WIRE_OK;
}

int wire_ctr_id_ok(const char *s, size_t n)
{
	if (n > WIRE_CTR_FIELD_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z');
}

/* Docker's own rule for container names ([a-zA-Z0-9][a-zA-Z0-9_.-]+):
 * nothing a log reader or terminal could take for markup. */
int wire_ctr_name_ok(const char *s, size_t n)
{
	if (n > WIRE_CTR_FIELD_MAX || (n && !alnum(s[0])))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
			return 0;
	return 1;
}

/* The container extension right after the source extension (wire.h). */
static enum wire_status parse_ctr(const uint8_t *buf, size_t len,
				  struct wire_header *h)
{
	size_t at = WIRE_HEADER_LEN + WIRE_SRC_LEN;
	if (len < at + 2)
		return WIRE_INCOMPLETE;
	size_t il = buf[at], nl = buf[at + 1];
	if (il > WIRE_CTR_FIELD_MAX || nl > WIRE_CTR_FIELD_MAX ||
	    (il == 0 && nl == 0))
		return WIRE_BAD_CTR;
	if (len < at + 2 + il + nl)
		return WIRE_INCOMPLETE;
	const char *id = (const char *)buf + at + 2, *name = id + il;
	if (!wire_ctr_id_ok(id, il) || !wire_ctr_name_ok(name, nl))
		return WIRE_BAD_CTR;
	memcpy(h->ctr_id, id, il);
	h->ctr_id[il] = '\0';
	memcpy(h->ctr_name, name, nl);
	h->ctr_name[nl] = '\0';
	h->len = at + 2 + il + nl;
	return WIRE_OK;
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
	if ((buf[7] & ~(WIRE_FLAG_SRC | WIRE_FLAG_CTR)) != 0 || buf[10] != 0 ||
	    buf[11] != 0)
		return WIRE_BAD_RESERVED;
	if ((buf[7] & WIRE_FLAG_CTR) && !(buf[7] & WIRE_FLAG_SRC))
		return WIRE_BAD_CTR;
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

	struct wire_header h = {.version = buf[4],
				.kind = kind,
				.family = family,
				.port = port,
				.len = WIRE_HEADER_LEN};
	memcpy(h.addr, addr, 16);
	if (buf[7] & WIRE_FLAG_SRC) {
		enum wire_status st = parse_src(buf, len, kind, &h);
		if (st != WIRE_OK)
			return st;
	}
	if (buf[7] & WIRE_FLAG_CTR) {
		enum wire_status st = parse_ctr(buf, len, &h);
		if (st != WIRE_OK)
			return st;
	}
	*out = h;
	return WIRE_OK;
}

int wire_header_encode(const struct wire_header *h,
		       uint8_t out[WIRE_HEADER_MAX])
{
	memset(out, 0, WIRE_HEADER_MAX);
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
	if (h->src_family) {
		uint8_t *x = out + WIRE_HEADER_LEN;
		out[7] = WIRE_FLAG_SRC;
		x[0] = h->src_family;
		x[2] = (uint8_t)(h->src_port >> 8);
		x[3] = (uint8_t)h->src_port;
		if (h->src_family == 4)
			memcpy(x + 4, h->src_addr, 4);
		else if (h->src_family == 6)
			memcpy(x + 4, h->src_addr, 16);
		else
			return -EINVAL;
	}
	size_t il = strnlen(h->ctr_id, sizeof(h->ctr_id)),
	       nl = strnlen(h->ctr_name, sizeof(h->ctr_name));
	if (il > WIRE_CTR_FIELD_MAX || nl > WIRE_CTR_FIELD_MAX)
		return -EINVAL;
	if (il || nl) {
		uint8_t *x = out + WIRE_HEADER_LEN + WIRE_SRC_LEN;
		out[7] |= WIRE_FLAG_CTR;
		x[0] = (uint8_t)il;
		x[1] = (uint8_t)nl;
		memcpy(x + 2, h->ctr_id, il);
		memcpy(x + 2 + il, h->ctr_name, nl);
	}
	struct wire_header check;
	if (wire_header_parse(out, WIRE_HEADER_MAX, &check) != WIRE_OK)
		return -EINVAL;
	return (int)check.len;
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
	case WIRE_BAD_SRC: return "bad source extension in wire header";
	case WIRE_BAD_CTR: return "bad container extension in wire header";
	}
	return "unknown wire status";
}
