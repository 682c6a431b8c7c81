/* The wire header: the first bytes of every vsock stream from the guest.
 *
 * The guest forwarder writes it, the host proxy reads it. The guest is
 * hostile, so the proxy treats every field as a claim to check, never as a
 * fact: the original destination only tells it which name the guest meant
 * (through the synthetic address it was given) or which IP literal it asked
 * for (allowed only by a cidr: rule).
 *
 * Layout, fixed size, all integers big-endian (network order):
 *
 *   offset size field
 *   0      4    magic    "SBXW" (0x53 0x42 0x58 0x57)
 *   4      1    version  WIRE_VERSION (1)
 *   5      1    kind     enum wire_kind
 *   6      1    family   4 (IPv4), 6 (IPv6) or 0 (no destination: DNS, control)
 *   7      1    flags    must be 0 in version 1
 *   8      2    port     original destination port (0 when family is 0)
 *   10     2    reserved must be 0
 *   12     16   addr     IPv4 in the first 4 bytes (rest 0) or IPv6; all 0 if family 0
 *   28          payload begins
 *
 * Kinds:
 *   WIRE_TCP      a guest TCP connection; bytes follow as they were sent.
 *   WIRE_DNS      a stream of DNS messages, each prefixed with a 2-byte
 *                 big-endian length (RFC 1035 4.2.2, as DNS over TCP).
 *   WIRE_CONTROL  the launcher's control channel (not accepted by the proxy).
 */
#ifndef COMMON_WIRE_H
#define COMMON_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC "SBXW"
#define WIRE_VERSION 1
#define WIRE_HEADER_LEN 28

enum wire_kind {
	WIRE_TCP = 1,
	WIRE_DNS = 2,
	WIRE_CONTROL = 3,
};

struct wire_header {
	uint8_t version;
	uint8_t kind;   /* enum wire_kind */
	uint8_t family; /* 0, 4 or 6 */
	uint16_t port;  /* host order */
	uint8_t addr[16];
};

enum wire_status {
	WIRE_OK = 0,
	WIRE_INCOMPLETE, /* fewer than WIRE_HEADER_LEN bytes so far */
	WIRE_BAD_MAGIC,
	WIRE_BAD_VERSION,
	WIRE_BAD_KIND,
	WIRE_BAD_FAMILY,
	WIRE_BAD_RESERVED, /* flags or reserved bytes not zero, or addr padding set */
	WIRE_BAD_PORT,     /* port 0 with an address, or a port without one */
};

/* Pure parser: reads at most WIRE_HEADER_LEN bytes of buf. */
enum wire_status wire_header_parse(const uint8_t *buf, size_t len,
				   struct wire_header *out);

/* Encode into out[WIRE_HEADER_LEN]. Returns 0 or -EINVAL for a bad header. */
int wire_header_encode(const struct wire_header *h,
		       uint8_t out[WIRE_HEADER_LEN]);

const char *wire_status_str(enum wire_status s);

#endif
