/* Published ports (sandbox-launch -p): the host side of inbound
 * connections. The proxy listens on each published host address:port;
 * every accepted connection is carried to the guest through the vsock
 * bridge's host-to-guest socket (--guest-connect PATH, the bridge's
 * --listen: "CONNECT 1081\n", then the inbound header naming the guest
 * port, parse/inbound.h), relayed both ways, and recorded in the audit
 * log when it ends ("event":"inbound": peer, host address and port, guest
 * port, bytes each way, duration, close reason).
 *
 * The proxy is the natural home: it owns the audit log and the host-only
 * control socket through which `sandbox-launch port NAME add|rm|list`
 * changes the set while the sandbox runs ("port add SPEC", "port rm
 * SPEC", "port list"). A spec without an address is published on
 * 127.0.0.1 and ::1 both.
 */
#ifndef PROXY_INBOUND_H
#define PROXY_INBOUND_H

#include <stddef.h>

struct proxy;
struct evbuffer;

/* Publish spec ([HOST_IP:]HOST_PORT:GUEST_PORT). 0, or a negative errno
 * with a sentence in err naming the spec and what went wrong (a port in
 * use: "127.0.0.1:8080 is in use"). Nothing is published on error. */
int inbound_add(struct proxy *px, const char *spec, char *err, size_t errsz);
/* Stop publishing spec (as given to inbound_add, any equivalent form);
 * open connections are left to end by themselves. -ENOENT if none. */
int inbound_remove(struct proxy *px, const char *spec, char *err,
		   size_t errsz);
/* One line per published spec, canonical form, "ok" first. */
void inbound_list(struct proxy *px, struct evbuffer *out);
/* The control socket's "port ..." command: one reply line to out. */
void inbound_control(struct proxy *px, const char *arg, struct evbuffer *out);
/* Close every listener and connection (shutdown). */
void inbound_close_all(struct proxy *px);

#endif
