/* Address classification against the IANA IPv4 and IPv6 special-purpose
 * address registries, with embedded IPv4 unwrapped (v4-mapped, v4-compatible,
 * NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32)
 * and cloud metadata addresses named. Pure. */
#ifndef PROXY_IPCLASS_H
#define PROXY_IPCLASS_H

#include <stdbool.h>

#include "../common/ipaddr.h"

enum ip_class {
	IPC_GLOBAL = 0,    /* ordinary global unicast: reachable by name */
	IPC_UNSPECIFIED,   /* 0.0.0.0/8, :: */
	IPC_LOOPBACK,      /* 127/8, ::1 */
	IPC_PRIVATE,       /* 10/8, 172.16/12, 192.168/16, fc00::/7 */
	IPC_SHARED,        /* 100.64/10 (CGNAT) */
	IPC_LINK_LOCAL,    /* 169.254/16, fe80::/10 */
	IPC_METADATA,      /* 169.254.169.254, 169.254.170.2, 100.100.100.200,
			      fd00:ec2::254, 192.0.0.192 ... (checked first) */
	IPC_MULTICAST,     /* 224/4, ff00::/8 */
	IPC_BROADCAST,     /* 255.255.255.255 */
	IPC_DOCUMENTATION, /* 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20 */
	IPC_BENCHMARK,     /* 198.18/15, 2001:2::/48 */
	IPC_RESERVED,      /* 240/4, 192.0.0/24, 100::/64, other special-purpose */
	IPC_TRANSLATED,    /* an IPv6 embedding whose IPv4 part is not global */
};

struct ip_classification {
	enum ip_class cls;
	bool embedded;          /* the verdict came from an embedded IPv4 */
	struct ip_addr inner;   /* the embedded IPv4 when embedded */
};

void ipclass_classify(const struct ip_addr *a, struct ip_classification *out);

/* Convenience: true only for IPC_GLOBAL. */
bool ipclass_is_global(const struct ip_addr *a);

const char *ipclass_name(enum ip_class c); /* "loopback", "metadata", ... */

#endif
