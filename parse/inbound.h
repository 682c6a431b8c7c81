/* Published ports (sandbox-launch -p): the two formats of the inbound path.
 *
 * 1. The publish spec "[HOST_IP:]HOST_PORT:GUEST_PORT" the user gives to
 *    -p, `sandbox-launch port NAME add` and the proxy's --publish and
 *    control socket. HOST_IP is an IPv4 literal or a bracketed IPv6
 *    literal; without it the port is published on loopback, 127.0.0.1
 *    and [::1] both.
 *
 * 2. The inbound header: the first bytes the host (sandbox-proxy) writes
 *    on a host-initiated vsock stream to the guest's inbound port. It names
 *    the guest loopback port to connect to and nothing else: the guest side
 *    connects only to its own 127.0.0.1 or ::1, whatever the header says.
 *
 *   offset size field
 *   0      4    magic    "SBXI"
 *   4      1    version  INBOUND_VERSION (1)
 *   5      1    reserved must be 0
 *   6      2    port     guest loopback port, big-endian, not 0
 *   8           payload begins (the host client's bytes)
 *
 * Both parsers are pure and fuzzed (tests/fuzz/fuzz_inbound.c).
 */
#ifndef PARSE_INBOUND_H
#define PARSE_INBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INBOUND_MAGIC "SBXI"
#define INBOUND_VERSION 1
#define INBOUND_HEADER_LEN 8
/* The guest's vsock port for published connections (host -> guest). */
#define INBOUND_VSOCK_PORT 1081

enum inbound_status {
	INBOUND_OK = 0,
	INBOUND_INCOMPLETE,
	INBOUND_BAD_MAGIC,
	INBOUND_BAD_VERSION,
	INBOUND_BAD_RESERVED,
	INBOUND_BAD_PORT,
};

/* Reads at most INBOUND_HEADER_LEN bytes of buf; *port in host order. */
enum inbound_status inbound_header_parse(const uint8_t *buf, size_t len,
					 uint16_t *port);
/* Returns 0, or -EINVAL for port 0. */
int inbound_header_encode(uint16_t port, uint8_t out[INBOUND_HEADER_LEN]);
const char *inbound_status_str(enum inbound_status s);

struct publish_spec {
	bool has_addr;   /* false: loopback, 127.0.0.1 and ::1 */
	int family;      /* AF_INET or AF_INET6 when has_addr */
	uint8_t addr[16];
	char addr_text[48]; /* canonical text of addr ("" without one) */
	uint16_t host_port; /* 1-65535 */
	uint16_t guest_port; /* 1-65535 */
};

/* Parse s (NUL-terminated). On error returns -EINVAL and sets *why to a
 * static text naming what is wrong. */
int publish_spec_parse(const char *s, struct publish_spec *out,
		       const char **why);
/* True when the spec binds only loopback addresses. */
bool publish_spec_is_loopback(const struct publish_spec *p);
/* Canonical form "ADDR:HP:GP" or "HP:GP" ("[v6]:HP:GP" for IPv6). */
int publish_spec_format(const struct publish_spec *p, char *buf,
			size_t size);

#endif
