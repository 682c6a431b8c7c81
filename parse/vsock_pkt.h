/* virtio-vsock packet header (virtio spec 5.10.6, 44 bytes, little-endian):
 * a pure parser for what the guest sends and a writer for what we send. */
#ifndef LAUNCHER_VSOCK_PKT_H
#define LAUNCHER_VSOCK_PKT_H

#include <stddef.h>
#include <stdint.h>

#define VSOCK_HDR_LEN 44
#define VSOCK_HOST_CID 2
#define VSOCK_TYPE_STREAM 1
/* Largest payload a Linux guest puts in one packet (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
#define VSOCK_MAX_PAYLOAD (64u * 1024)

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

/* SHUTDOWN flags, from the sender's point of view. */
#define VSOCK_SHUTDOWN_RCV 1u  /* sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2u /* sender will send no more */

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len; /* payload bytes after the header */
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

enum vsock_pkt_status {
	VSOCK_PKT_OK,
	VSOCK_PKT_SHORT,   /* fewer than 44 bytes: nothing usable */
	VSOCK_PKT_BAD_CID, /* src is not the guest or dst is not the host */
	VSOCK_PKT_BAD_TYPE,
	VSOCK_PKT_BAD_OP,
	VSOCK_PKT_BAD_LEN, /* len beyond the bytes present, too big, or on a non-RW op */
};

/* Parse the header in buf[0..len) where len counts the header and all payload
 * bytes present. On any status but SHORT, *out holds the decoded fields (so
 * the caller can reset the flow). *why is a static explanation. */
enum vsock_pkt_status vsock_pkt_parse(const uint8_t *buf, size_t len,
				      uint64_t guest_cid, struct vsock_hdr *out,
				      const char **why);

void vsock_pkt_write(uint8_t out[VSOCK_HDR_LEN], const struct vsock_hdr *h);

const char *vsock_op_name(unsigned op);

#endif
