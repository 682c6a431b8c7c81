/* The shared context of a running sandbox-proxy. Everything mutable lives
 * here, in a worker (worker.h: one per event loop) or in a connection
 * hanging off one; there are no other globals. What more than one thread
 * touches is said at each member: immutable once the workers start,
 * atomic, or behind one of the mutexes below (docs/design.md, "Threads in
 * sandbox-proxy"). The audit writer thread (auditlog/audit_queue.c)
 * shares nothing with this struct but its queue. */
#ifndef PROXY_PROXY_H
#define PROXY_PROXY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include "../common/ipaddr.h"
#include "../policy/policy.h"
#include "config.h"

struct event_base;
struct event;
struct audit;
struct audit_record;
struct audit_queue;
struct resolver;
struct dns_cache;
struct synth_pool;
struct listener;
struct conn;
struct control;
struct inbound;
struct secrets;
struct intercept;
struct worker;

/* A loaded policy shared by reference: a connection keeps the policy it was
 * decided under (and the rule strings its verdict points into) even after a
 * SIGHUP swapped in a new one. The count is atomic so that references may
 * be taken and dropped from more than one thread (docs/design.md, "Threads
 * in sandbox-proxy"); the policy itself is never written after it is
 * built. */
struct policy_ref {
	struct policy *policy; /* owned, read-only once shared */
	atomic_uint refs;
};

struct policy_ref *policy_ref_get(struct policy_ref *r);
void policy_ref_put(struct policy_ref *r);

/* A local address:port some listener accepts on; connecting there would
 * loop a connection back into the proxy. */
struct self_addr {
	struct ip_addr addr;
	uint16_t port;
	bool wildcard; /* bound to 0.0.0.0 / :: : every local address */
};

#define PROXY_MAX_SELF 32
/* How long a connection the proxy ends gives its last bytes to leave and
 * the client to end its side (what the client still sends is read and
 * dropped, so that closing cannot reset the connection under an answer
 * it has not read): a refusal's FLUSH (conn_refuse.c) and an intercepted
 * session ended after a later request was refused (intercept.c). */
#define PROXY_LINGER_MS 3000

struct proxy {
	struct event_base *base; /* worker 0's: control, inbound, signals */
	const struct proxy_config *cfg;
	const char *presets_dir;

	/* current; one reference held here. Swapped (worker 0) and read
	 * with a reference taken (any worker) under policy_lock, so no
	 * connection takes a reference to a policy being freed:
	 * proxy_policy_get(). */
	struct policy_ref *policy;
	pthread_mutex_t policy_lock;
	struct audit *audit;       /* owned */
	/* owned, shared by every worker behind shared_lock (dns_stream.c,
	 * conn_target.c, upstream_connect.c): a name keeps one synthetic
	 * address whichever worker answered the query and whichever
	 * accepts the connection. */
	struct dns_cache *dns_cache; /* owned: answers for allowed names */
	struct synth_pool *synth;  /* owned */
	pthread_mutex_t shared_lock;
	/* Worker 0 only: */
	struct control *control;  /* owned, NULL without --control */
	struct inbound *inbound;  /* owned: published ports (inbound.h) */
	/* Secrets and TLS interception for their hosts (docs/secrets.md);
	 * both NULL without --secrets-fd. With them the proxy runs one
	 * worker (the sessions live on px->base). */
	struct secrets *secrets;   /* owned */
	struct intercept *icpt;    /* owned */

	/* The event loops (worker.h); workers[0] runs on the main thread. */
	struct worker *workers; /* owned array */
	unsigned n_workers;

	/* Built before the workers start, read-only after: */
	struct listener *listeners; /* owned list */
	struct self_addr self[PROXY_MAX_SELF];
	size_t n_self;
	struct ip_addr local_addrs[PROXY_MAX_SELF]; /* getifaddrs() at start */
	size_t n_local;

	/* Live connections of all workers, against --max-conns. */
	_Atomic size_t n_conns;
	_Atomic uint64_t next_conn_id;

	atomic_bool draining; /* SIGTERM seen: no new connections */
	bool stopping;        /* worker 0: workers_stop() was called */
	unsigned handoff_next; /* worker 0: worker_handoff()'s turn */
	/* The audit log's writer thread (record.c, auditlog/audit_queue.h).
	 * While the log cannot be written, every decision path refuses
	 * (fail closed); worker 0's tick retries once a second and, when a
	 * write works again, records the gap and resumes. */
	struct audit_queue *audit_q; /* owned */
	/* Records written in the current second, against cfg->record_rate
	 * (new work waits when it is spent): (second << 32) | count, one
	 * atomic word (record.c). */
	_Atomic uint64_t budget;
	struct event *drain_timer; /* worker 0 */
	struct event *sig_hup, *sig_term, *sig_int; /* worker 0 */
};

/* A new reference to the current policy (under policy_lock). */
struct policy_ref *proxy_policy_get(struct proxy *px);
/* Swap in ref (taking over its reference) and drop the old one. */
void proxy_policy_set(struct proxy *px, struct policy_ref *ref);

/* The one decide-and-record path (record.c). Every decision that lets
 * bytes depending on a guest-chosen name leave the host (a DNS answer or
 * upstream query, a connection, a request on an open connection) and
 * every control change is recorded here before it takes effect.
 *
 * proxy_audit: queue r for the writer thread. 0: it is on its way to the
 * log, in order, act on it. Negative errno: the log cannot be written: do
 * not act. The first failed write switches the proxy to fail-closed mode
 * (said once on stderr); while it lasts nothing is written and every
 * record is refused at once, until the tick writes a gap record and the
 * proxy resumes by itself. */
int proxy_audit(struct proxy *px, const struct audit_record *r);
/* The same, but 0 only once r is in the file: for policy changes, which
 * are undone when their record cannot be written. */
int proxy_audit_sync(struct proxy *px, const struct audit_record *r);
/* Start the writer thread on px->audit, and stop it (writing everything
 * queued) before px->audit is closed (main.c). */
int proxy_audit_open(struct proxy *px);
void proxy_audit_close(struct proxy *px);
/* A decision already on record (an open connection's next request):
 * may it take effect now? false while the log cannot be written. */
bool proxy_may_act(struct proxy *px);
/* proxy_audit through a stream's aggregator (audit_agg.h): a repeat of
 * a record written less than an interval ago is only counted. */
struct audit_agg;
int proxy_audit_stream(struct proxy *px, struct audit_agg *g,
		       const struct audit_record *r);
/* Write the aggregates whose interval has ended (force: all of them, the
 * stream is closing). Returns 0 or the first write error. */
int proxy_audit_flush(struct proxy *px, struct audit_agg *g, bool force);
/* Records a second the proxy writes for new work (DNS messages, new
 * connections) before that work waits for the next second, --record-rate
 * (config.h): with the per-stream budget (audit_agg.h), the bound on how
 * fast a guest can grow the log (docs/audit-log.md). */
bool proxy_budget_ok(struct proxy *px);
/* Milliseconds until the current budget second ends (at least 1): when a
 * listener paused for the budget may accept again. */
unsigned proxy_budget_wait_ms(struct proxy *px);
/* Start and stop a worker's 1 s tick (worker.c). */
int proxy_record_start(struct worker *w);
void proxy_record_stop(struct worker *w);

/* A "policy" event: the policy was loaded, reloaded, changed or cut.
 * Returns proxy_audit_sync()'s result. */
int proxy_audit_policy(struct proxy *px, const char *decision,
		       const char *reason);

/* Verbose diagnostics to stderr (only with --verbose). */
void proxy_log(struct proxy *px, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Is addr:port one of the proxy's own listening endpoints? */
bool proxy_is_self(const struct proxy *px, const struct ip_addr *a,
		   uint16_t port);

/* Called on w's loop when one of its connections ends (drain
 * bookkeeping, EMFILE back-off). */
void proxy_conn_gone(struct worker *w);
/* SIGTERM (worker 0): stop accepting on every worker, close idle DNS
 * streams, and end the loops once no connection is left. */
void proxy_drain(struct proxy *px);
/* Worker 0: the drain is over if no connection is left. */
void proxy_drain_check(struct proxy *px);

#endif
