#include "vsock_pkt.h"

#include <endian.h>
#include <string.h>

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

enum vsock_pkt_status vsock_pkt_parse(const uint8_t *buf, size_t len,
				      uint64_t guest_cid, struct vsock_hdr *out,
				      const char **why)
{
	if (len < VSOCK_HDR_LEN) {
		*why = "packet shorter than the 44-byte header";
		return VSOCK_PKT_SHORT;
	}
	out->src_cid = get64(buf);
	out->dst_cid = get64(buf + 8);
	out->src_port = get32(buf + 16);
	out->dst_port = get32(buf + 20);
	out->len = get32(buf + 24);
	out->type = get16(buf + 28);
	out->op = get16(buf + 30);
	out->flags = get32(buf + 32);
	out->buf_alloc = get32(buf + 36);
	out->fwd_cnt = get32(buf + 40);

	/* A guest may only speak as itself, and only to the host: this is
	 * what keeps it from addressing anything but our port map. */
	if (out->src_cid != guest_cid) {
		*why = "source CID is not the guest's";
		return VSOCK_PKT_BAD_CID;
	}
	if (out->dst_cid != VSOCK_HOST_CID) {
		*why = "destination CID is not the host";
		return VSOCK_PKT_BAD_CID;
	}
	if (out->type != VSOCK_TYPE_STREAM) {
		*why = "socket type is not STREAM";
		return VSOCK_PKT_BAD_TYPE;
	}
	if (out->op < VSOCK_OP_REQUEST || out->op > VSOCK_OP_CREDIT_REQUEST) {
		*why = "unknown operation";
		return VSOCK_PKT_BAD_OP;
	}
	if (out->len > VSOCK_MAX_PAYLOAD) {
		*why = "payload length above 64 KiB";
		return VSOCK_PKT_BAD_LEN;
	}
	if (out->len > len - VSOCK_HDR_LEN) {
		*why = "payload length beyond the bytes in the buffer";
		return VSOCK_PKT_BAD_LEN;
	}
	if (out->len && out->op != VSOCK_OP_RW) {
		*why = "payload on a packet that is not RW";
		return VSOCK_PKT_BAD_LEN;
	}
	*why = "ok";
	return VSOCK_PKT_OK;
}

void vsock_pkt_write(uint8_t out[VSOCK_HDR_LEN], const struct vsock_hdr *h)
{
	put64(out, h->src_cid);
	put64(out + 8, h->dst_cid);
	put32(out + 16, h->src_port);
	put32(out + 20, h->dst_port);
	put32(out + 24, h->len);
	put16(out + 28, h->type);
	put16(out + 30, h->op);
	put32(out + 32, h->flags);
	put32(out + 36, h->buf_alloc);
	put32(out + 40, h->fwd_cnt);
}

const char *vsock_op_name(unsigned op)
{
	static const char *const names[] = {
		"INVALID", "REQUEST",	    "RESPONSE",	     "RST",
		"SHUTDOWN", "RW", "CREDIT_UPDATE", "CREDIT_REQUEST",
	};
	return op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}
