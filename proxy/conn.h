/* The proxy's connection module, as the rest of the proxy sees it: the
 * listeners hand it accepted streams; control, signals and the 1 s tick
 * close or poke all of them at once. Everything else about a connection
 * (its state machine, struct conn) is private to the module
 * (conn_internal.h). A connection lives on the worker that accepted it
 * (worker.h) and is only touched on that worker's loop; the functions
 * taking px reach the other workers' connections through
 * worker_call_all() and are called from worker 0 only, never from inside
 * a connection's own callback.
 */
#ifndef PROXY_CONN_H
#define PROXY_CONN_H

#include <stddef.h>

#include "proxy.h"

struct worker;

/* Which listener a stream came from. */
enum conn_origin {
	ORIGIN_TRANSPARENT, /* the guest's streams: wire header first */
	ORIGIN_HTTP_PROXY,  /* an explicit HTTP proxy (CONNECT, absolute GET) */
};

/* Accept a new client on fd, a non-blocking socket (takes ownership). Refused at once (and
 * counted) while the audit log cannot be written, while draining, or at
 * --max-conns. */
void conn_accept(struct worker *w, int fd, enum conn_origin origin);

/* Live connections (closed ones awaiting their deferred free excluded). */
size_t conn_count(struct proxy *px);

/* Close every live connection with reason; returns how many. */
size_t conn_close_all(struct proxy *px, const char *reason);

/* Close every DNS stream with no query in flight (a policy change or a
 * drain: the guest reopens one when it needs it); returns how many. */
size_t conn_close_idle_dns(struct proxy *px, const char *reason);

/* Once a second on each worker (record.c): its DNS streams write ended
 * aggregates and resume when they waited for their budget or the log. */
void conn_tick(struct worker *w);

/* After every event loop ended (threads joined): close everything left
 * on every worker and free it all, including connections whose deferred
 * free had not run yet. */
void conn_shutdown(struct proxy *px, const char *reason);

#endif
