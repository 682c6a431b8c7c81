/* TLS interception for secret hosts (docs/secrets.md).
 *
 * Only a connection the policy already allowed, to a name that is one of
 * a secret's hosts, is intercepted; every other connection is spliced by
 * the relay and never decrypted. The hook is one call at the point where
 * the connection would open its upstream socket: instead, the connection
 * gets one end of a socketpair as its "upstream" and relays to it exactly
 * as to a server (so every check of the splice path still runs on the
 * guest's bytes: SNI, first-flight, watermarks, idle time), and this
 * module holds the other end: it terminates the guest's TLS with a leaf
 * of the per-sandbox CA, walks the request heads with the same HTTP
 * checker as plain HTTP, replaces placeholders in them (refusing any for
 * a host not on the secret's list), and re-encrypts to the address the
 * connection resolved and checked, verifying the server against the host
 * trust store plus --upstream-ca.
 *
 * It runs in the proxy's event loop on the connection's event base; all
 * state is per session. */
#ifndef PROXY_INTERCEPT_H
#define PROXY_INTERCEPT_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/ipaddr.h"

struct proxy;
struct secrets;
struct intercept;

/* Inspected hosts (policy `inspect: true`) at most. */
#define ICPT_INSPECT_MAX 64

/* Make the engine: the CA for the secrets' hosts and the inspected hosts
 * (certificate written to ca_out when not NULL) and the TLS contexts.
 * sec may be NULL (inspection only). inspect: normalised exact names,
 * intercepted without a secret, each request head recorded (a `request`
 * record: method, host, path without its query). upstream_ca: an extra
 * PEM bundle trusted for upstream servers (NULL: the host trust store
 * only). Returns NULL with err. */
struct intercept *intercept_new(const struct secrets *sec,
				const char *const *inspect, size_t n_inspect,
				const char *upstream_ca, const char *ca_out,
				char *err, size_t errsz);
/* Closes every session still open. */
void intercept_free(struct intercept *ic);

/* Is name (normalised) a host interception applies to? */
bool intercept_wanted(const struct intercept *ic, const char *name);

/* Start a session for connection conn_id to name:port at addr (already
 * allowed, resolved and classified). Returns the connection's end of the
 * socketpair (non-blocking, close-on-exec) or a negative errno. */
int intercept_start(struct proxy *px, uint64_t conn_id, const char *name,
		    uint16_t port, const struct ip_addr *addr);

#endif
