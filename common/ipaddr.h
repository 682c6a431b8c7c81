/* IP addresses as the policy, the classifier and the proxy share them. */
#ifndef COMMON_IPADDR_H
#define COMMON_IPADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ip_addr {
	int family;     /* AF_INET or AF_INET6 */
	uint8_t b[16];  /* network order; IPv4 uses b[0..3], rest zero */
};

#define IP_STR_MAX 46 /* INET6_ADDRSTRLEN */

/* Strict literal parsing: only dotted-quad with four decimal parts and no
 * leading zeros ("127.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1" are NOT
 * addresses), or an IPv6 literal (inet_pton forms; brackets not accepted,
 * no zone ids). Returns true and fills out when s[0..len) is such a literal. */
bool ip_parse_strict(const char *s, size_t len, struct ip_addr *out);

/* True when s "looks numeric" (only digits, dots, x/X, hex digits) but is
 * not a strict literal: such names are refused rather than resolved. */
bool ip_looks_numeric(const char *s, size_t len);

/* RFC 5952 text for IPv6, dotted quad for IPv4. */
void ip_format(const struct ip_addr *a, char out[IP_STR_MAX]);

/* CIDR containment: does prefix/prefix_len contain a? Families must match. */
bool ip_in_prefix(const struct ip_addr *a, const struct ip_addr *prefix,
		  unsigned prefix_len);

bool ip_equal(const struct ip_addr *a, const struct ip_addr *b);

/* Fill a sockaddr_storage from addr+port; returns the sockaddr length. */
struct sockaddr_storage;
size_t ip_to_sockaddr(const struct ip_addr *a, uint16_t port,
		      struct sockaddr_storage *ss);
/* Returns 0 or -EAFNOSUPPORT. */
int ip_from_sockaddr(const struct sockaddr_storage *ss, struct ip_addr *a,
		     uint16_t *port);

#endif
