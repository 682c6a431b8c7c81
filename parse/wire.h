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
 *   7      1    flags    0, or WIRE_FLAG_SRC (the source extension follows)
 *   8      2    port     original destination port (0 when family is 0)
 *   10     2    reserved must be 0
 *   12     16   addr     IPv4 in the first 4 bytes (rest 0) or IPv6; all 0 if family 0
 *   28          payload begins (no flags)
 *
 * With WIRE_FLAG_SRC, a source extension of 20 bytes follows at 28:
 *   28     1    sfamily  4 or 6
 *   29     1    reserved must be 0
 *   30     2    sport    the source port of the connection the guest accepted
 *   32     16   saddr    as addr
 *   48          payload begins
 *
 * The source is where the guest's forwarder says the connection came
 * from: a container's bridge address, or a local address for the guest's
 * own (and --network host) traffic. It is the guest's claim, recorded in
 * the audit log ("src") and never used for a decision: a hostile guest
 * can only mislabel its own traffic. Headers without the flag (the
 * original 28 bytes) stay valid.
 *
 * With WIRE_FLAG_CTR (only together with WIRE_FLAG_SRC), the container
 * extension follows at 48: which Docker container the guest says had the
 * source address (guest/docker_watch.c):
 *   48     1    idlen    0..WIRE_CTR_FIELD_MAX
 *   49     1    namelen  0..WIRE_CTR_FIELD_MAX (not both 0)
 *   50     idlen        id: lowercase hex digits (Docker's id or its prefix)
 *   50+idlen namelen    name: [A-Za-z0-9][A-Za-z0-9_.-]* (Docker's own
 *                       name rule, so nothing in it needs escaping)
 *   50+idlen+namelen    payload begins
 * Also the guest's claim: recorded ("container", "container_id"), never
 * used for a decision.
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
#define WIRE_HEADER_LEN 28 /* without the source extension */
#define WIRE_SRC_LEN 20
#define WIRE_CTR_FIELD_MAX 64
#define WIRE_CTR_MAX (2 + 2 * WIRE_CTR_FIELD_MAX)
#define WIRE_HEADER_MAX (WIRE_HEADER_LEN + WIRE_SRC_LEN + WIRE_CTR_MAX)
#define WIRE_FLAG_SRC 0x01
#define WIRE_FLAG_CTR 0x02

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
	/* Source extension: src_family 0 when absent (flag clear). */
	uint8_t src_family; /* 0, 4 or 6 */
	uint16_t src_port;  /* host order */
	uint8_t src_addr[16];
	/* Container extension (needs the source): both "" when absent. */
	char ctr_id[WIRE_CTR_FIELD_MAX + 1];
	char ctr_name[WIRE_CTR_FIELD_MAX + 1];
	size_t len; /* parse: bytes the header took (28 up to WIRE_HEADER_MAX) */
};

enum wire_status {
	WIRE_OK = 0,
	WIRE_INCOMPLETE, /* fewer bytes so far than the header takes */
	WIRE_BAD_MAGIC,
	WIRE_BAD_VERSION,
	WIRE_BAD_KIND,
	WIRE_BAD_FAMILY,
	WIRE_BAD_RESERVED, /* flags or reserved bytes not zero, or addr padding set */
	WIRE_BAD_PORT,     /* port 0 with an address, or a port without one */
	WIRE_BAD_SRC,      /* source extension on a non-TCP stream, bad family */
	WIRE_BAD_CTR,      /* container extension without a source, empty,
			    * too long, or a character outside its set */
};

/* Pure parser: reads at most WIRE_HEADER_MAX bytes of buf; out->len says
 * how many the header took (the payload begins there). */
enum wire_status wire_header_parse(const uint8_t *buf, size_t len,
				   struct wire_header *out);

/* Encode into out[WIRE_HEADER_MAX], with the source extension when
 * h->src_family is not 0, and the container extension when ctr_id or
 * ctr_name is not empty. Returns the length written or -EINVAL for a bad
 * header. */
int wire_header_encode(const struct wire_header *h,
		       uint8_t out[WIRE_HEADER_MAX]);

const char *wire_status_str(enum wire_status s);

/* The container extension's character rules, for writers that want to
 * check a value before they send it: 1 if s (n bytes) is a valid id or
 * name (n may be 0: absent). */
int wire_ctr_id_ok(const char *s, size_t n);
int wire_ctr_name_ok(const char *s, size_t n);

#endif
