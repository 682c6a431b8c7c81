/* One event loop of sandbox-proxy (--workers N; docs/design.md, "Threads
 * in sandbox-proxy"). A worker owns its event_base, its c-ares channel,
 * its connections and its share of every listener; it runs on its own
 * thread (worker 0 on the main thread, which also owns the control
 * socket, published ports, signals and the audit recovery). Everything
 * else is the shared struct proxy: immutable after start, atomic, or
 * behind one of its mutexes.
 *
 * Nothing of a worker is touched from another thread: the others reach
 * it only through worker_call_all() and worker_post(), which run a
 * function on the worker's own loop. */
#ifndef PROXY_WORKER_H
#define PROXY_WORKER_H

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include "proxy.h"

struct event;
struct event_base;
struct resolver;
struct conn;

/* Streams waiting in one worker's hand-off queue at most; past that
 * worker 0 keeps the stream itself. */
#define WORKER_HANDOFF_MAX 64

struct worker {
	struct proxy *px;
	unsigned idx;
	pthread_t thread;           /* idx > 0 */
	struct event_base *base;    /* owned */
	struct resolver *resolver;  /* owned: this loop's c-ares channel */
	struct event *tick;         /* owned: 1 s; aggregates, budget */
	/* owned by the connection module (conn.h): this loop's live
	 * connections and closed ones awaiting their deferred free;
	 * n_conns counts the live (px->n_conns counts all loops'). */
	LIST_HEAD(, conn) conns;
	size_t n_conns;
	/* Streams accepted on worker 0's unix listeners and handed here
	 * (worker_handoff): descriptor and origin, under handoff_lock;
	 * handoff_ev (owned, on base) takes them. */
	pthread_mutex_t handoff_lock;
	struct event *handoff_ev;
	int handoff_fd[WORKER_HANDOFF_MAX];
	unsigned char handoff_origin[WORKER_HANDOFF_MAX];
	unsigned n_handoff;
};

/* Create the n workers (bases, resolvers, ticks; px->base becomes worker
 * 0's). Returns 0 or a negative errno with err set. */
int workers_init(struct proxy *px, unsigned n, char *err, size_t errsz);
/* Start the threads of workers 1..n-1; their loops run until
 * workers_stop(). */
int workers_start(struct proxy *px);
/* From worker 0: make every loop return (its own included). */
void workers_stop(struct proxy *px);
/* After worker 0's loop returned: wait for the other threads. */
void workers_join(struct proxy *px);
/* Free what workers_init made (after workers_join). */
void workers_free(struct proxy *px);

/* From worker 0 only: run fn(w, arg) on every worker's own loop, worker
 * 0's at once, and return when all have run. After workers_stop() the
 * other loops are not asked (their threads are ending; what is left is
 * closed by conn_shutdown() after the join). */
void worker_call_all(struct proxy *px,
		     void (*fn)(struct worker *w, void *arg), void *arg);

/* From any worker: run fn(-1, EV_TIMEOUT, px) on worker 0's loop soon
 * (not waiting). 0 or -1 (no memory). */
int worker_post0(struct proxy *px, event_callback_fn fn);

/* From worker 0 (a unix listener's accept): give the accepted stream fd
 * to the next worker in turn, whose loop calls conn_accept() with it. A
 * unix socket cannot be bound once per worker, and one evconnlistener
 * per worker on the shared socket lets whichever loop wakes first take
 * a whole burst; handing each stream on spreads them. */
void worker_handoff(struct proxy *px, int fd, int origin);

/* --workers default: the online CPUs, capped at PROXY_MAX_WORKERS. */
unsigned workers_default(void);

#endif
