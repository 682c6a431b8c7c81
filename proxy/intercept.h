/* TLS interception for secret hosts (docs/secrets.md).
 *
 * Only a connection the policy already allowed, to a name that is one of
 * a secret's hosts or inspected (inspect: true, or every allowed name
 * under inspect: all), is intercepted; every other connection is spliced
 * by the relay and never decrypted. The hook is one call at the
 * dispatcher's RELAY step (intercept_conn.c), when the upstream is
 * connected and the first flight checked: the session takes the
 * connected upstream socket, and the connection gets one end of a
 * socketpair as its "upstream" and relays to it exactly as to a server
 * (so every check of the splice path still runs on the guest's bytes:
 * SNI, first-flight, watermarks, idle time), and this module holds the
 * other end: it terminates the guest's TLS with a leaf
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
/* inspect: all's names at most (POLICY_CA_NAMES_MAX). */
#define ICPT_ALL_MAX 256

/* Make the engine: the CA for the secrets' hosts, the inspected hosts
 * and, under inspect: all, the allowed names (certificate written to
 * ca_out when not NULL) and the TLS contexts. sec may be NULL (inspection
 * only). inspect: normalised exact names, intercepted without a secret,
 * each request head recorded (a `request` record: method, host, path
 * without its query). all: inspect: all, every allowed TLS connection by
 * name intercepted and its requests recorded; all_names: the policy's
 * allowed names at start (exact names and wildcard suffixes,
 * policy_ca_names()), which join the CA's name constraints, so a name
 * allowed later (a reload) cannot be signed and its TLS is refused, never
 * spliced. upstream_ca: an extra PEM bundle trusted for upstream servers
 * (NULL: the host trust store only). Returns NULL with err. */
struct intercept *intercept_new(const struct secrets *sec,
				const char *const *inspect, size_t n_inspect,
				bool all, const char *const *all_names,
				size_t n_all, const char *upstream_ca,
				const char *ca_out, char *err, size_t errsz);
/* Closes every session still open. */
void intercept_free(struct intercept *ic);

/* What to do with an allowed TLS connection to name (normalised; NULL
 * for a connection by address). */
enum icpt_want {
	ICPT_SPLICE,  /* not ours: the relay splices it */
	ICPT_TAKE,    /* intercept it */
	ICPT_REFUSE,  /* inspect: all, and the CA cannot sign it: why */
};
enum icpt_want intercept_wants(const struct intercept *ic, const char *name,
			       char *why, size_t whysz);
/* Is name a secret's host or an inspected (inspect: true) one? */
bool intercept_named(const struct intercept *ic, const char *name);
/* Are name's requests recorded (an inspected host, or inspect: all)? */
bool intercept_records(const struct intercept *ic, const char *name);

/* Start a session for connection conn_id to name:port at addr (already
 * allowed, resolved, classified and connected: upstream_fd, which the
 * session owns from this call on, even on failure). Returns the
 * connection's end of the socketpair (non-blocking, close-on-exec) or a
 * negative errno. */
int intercept_start(struct proxy *px, uint64_t conn_id, const char *name,
		    uint16_t port, const char *addr, int upstream_fd);

/* A `request` record for one checked request head (method, host, port,
 * path without its query; never a header value). proto: "https" on an
 * intercepted connection, "http" in clear. 0, or negative when the head
 * is not a request or the record could not be written (then it must not
 * be forwarded). */
int intercept_record_request(struct proxy *px, uint64_t conn_id,
			     const char *name, uint16_t port,
			     const char *proto, bool intercepted,
			     const uint8_t *head, size_t len);

#endif
