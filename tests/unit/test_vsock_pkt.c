/* virtio-vsock header parsing and writing. */
#include <string.h>

#include "../../parse/vsock_pkt.h"
#include "tap.h"

static void mk(uint8_t *buf, uint64_t src, uint64_t dst, uint16_t type,
	       uint16_t op, uint32_t len)
{
	struct vsock_hdr h = {.src_cid = src, .dst_cid = dst, .src_port = 1234,
			      .dst_port = 1080, .len = len, .type = type,
			      .op = op, .flags = 3, .buf_alloc = 262144,
			      .fwd_cnt = 77};
	vsock_pkt_write(buf, &h);
}

int main(void)
{
	uint8_t buf[VSOCK_HDR_LEN + 16];
	struct vsock_hdr h;
	const char *why;

	mk(buf, 3, 2, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	is_int(vsock_pkt_parse(buf, VSOCK_HDR_LEN, 3, &h, &why), VSOCK_PKT_OK, "request parses");
	is_int(h.src_port, 1234, "src port");
	is_int(h.dst_port, 1080, "dst port");
	is_int(h.buf_alloc, 262144, "buf_alloc");
	is_int(h.fwd_cnt, 77, "fwd_cnt");
	is_int(h.flags, 3, "flags");
	/* byte layout: len at offset 24, op at 30, little-endian */
	mk(buf, 3, 2, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 0x0a0b);
	is_int(buf[24], 0x0b, "len little-endian at offset 24");
	is_int(buf[30], VSOCK_OP_RW, "op at offset 30");

	is_int(vsock_pkt_parse(buf, 43, 3, &h, &why), VSOCK_PKT_SHORT, "short header");
	mk(buf, 3, 2, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 16);
	is_int(vsock_pkt_parse(buf, sizeof(buf), 3, &h, &why), VSOCK_PKT_OK, "RW with payload present");
	is_int(vsock_pkt_parse(buf, sizeof(buf) - 1, 3, &h, &why), VSOCK_PKT_BAD_LEN, "len beyond buffer");
	ok(strstr(why, "beyond") != NULL, "why names the problem: %s", why);
	mk(buf, 3, 2, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 100000);
	is_int(vsock_pkt_parse(buf, sizeof(buf), 3, &h, &why), VSOCK_PKT_BAD_LEN, "len above 64 KiB");
	mk(buf, 3, 2, VSOCK_TYPE_STREAM, VSOCK_OP_SHUTDOWN, 4);
	is_int(vsock_pkt_parse(buf, sizeof(buf), 3, &h, &why), VSOCK_PKT_BAD_LEN, "payload on SHUTDOWN");
	mk(buf, 4, 2, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	is_int(vsock_pkt_parse(buf, sizeof(buf), 3, &h, &why), VSOCK_PKT_BAD_CID, "spoofed source CID");
	is_int(h.src_port, 1234, "fields still decoded for the RST");
	mk(buf, 3, 7, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0);
	is_int(vsock_pkt_parse(buf, sizeof(buf), 3, &h, &why), VSOCK_PKT_BAD_CID, "destination not the host");
	mk(buf, 3, 2, 2, VSOCK_OP_REQUEST, 0);
	is_int(vsock_pkt_parse(buf, sizeof(buf), 3, &h, &why), VSOCK_PKT_BAD_TYPE, "SEQPACKET refused");
	mk(buf, 3, 2, VSOCK_TYPE_STREAM, 0, 0);
	is_int(vsock_pkt_parse(buf, sizeof(buf), 3, &h, &why), VSOCK_PKT_BAD_OP, "op INVALID");
	mk(buf, 3, 2, VSOCK_TYPE_STREAM, 8, 0);
	is_int(vsock_pkt_parse(buf, sizeof(buf), 3, &h, &why), VSOCK_PKT_BAD_OP, "op 8");
	is_str(vsock_op_name(VSOCK_OP_CREDIT_UPDATE), "CREDIT_UPDATE", "op names");
	is_str(vsock_op_name(99), "?", "unknown op name");
	return done_testing();
}
