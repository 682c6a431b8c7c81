/* The connection module's private header: only its own files include it
 * (conn_lifecycle.c, conn_dispatch.c, conn_refuse.c, conn_target.c,
 * first_flight.c, tls_watch.c, conn_decide.c, upstream_connect.c, relay.c,
 * http_proxy.c, dns_stream.c; `make check-includes` enforces that).
 *
 * One client connection and its state machine.
 *
 * Transparent (guest) connections:
 *   READ_HEADER -> DNS                                (WIRE_DNS)
 *   READ_HEADER -> PEEK -> RESOLVE -> CONNECT -> RELAY (WIRE_TCP, client
 *                                                       bytes already there)
 *   READ_HEADER -> RESOLVE -> CONNECT -> WAIT_FIRST -> RELAY
 *                      (WIRE_TCP, client silent so far: decided by name and
 *                       port at once, upstream opened while waiting, so a
 *                       server-speaks-first protocol gets its greeting
 *                       without delay)
 * Explicit HTTP proxy connections:
 *   PROXY_HEAD -> RESOLVE -> CONNECT -> WAIT_FIRST -> RELAY  (CONNECT)
 *   PROXY_HEAD -> RESOLVE -> CONNECT -> RELAY          (absolute-form GET)
 * Any state -> FLUSH (a deny/error response is being written, or, for a
 * refused client that has not spoken yet, briefly waited for so that the
 * refusal can speak its protocol) -> CLOSED. A later request on a relayed
 * HTTP connection is refused without a response: RELAY goes on with the
 * client unread until the upstream's answers are out, then FLUSH waits
 * for the client's end.
 *
 * How the files work together: every libevent or resolver callback hands
 * what happened to one dispatcher, conn_run() (conn_dispatch.c). A step
 * does its part and returns what happens next (enum conn_next); only the
 * dispatcher calls the next step, so no step calls into another file's
 * step. conn_close() is the one close path: it writes the close record,
 * logs the reason once, releases the sockets and marks the connection
 * CLOSED; struct conn itself is freed by a deferred event, so a
 * connection never disappears under a function that is still using it.
 */
#ifndef PROXY_CONN_INTERNAL_H
#define PROXY_CONN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/ipaddr.h"
#include "../policy/policy.h"
#include "conn.h"
#include "http_check.h"
#include "proxy.h"
#include "resolver.h"
#include "shared.h"
#include "worker.h"

struct bufferevent;
struct evbuffer;
struct event;
struct proto;
struct dns_stream;
struct tls_watch;
struct peek_info;

enum conn_state {
	CS_READ_HEADER, /* transparent: waiting for the 28-byte wire header */
	CS_DNS,         /* transparent WIRE_DNS: serving queries (dns_stream.c) */
	CS_PROXY_HEAD,  /* explicit proxy: waiting for the request head */
	CS_PEEK,        /* checking the client's first bytes (TLS/HTTP/other)
			   before any upstream exists */
	CS_WAIT_FIRST,  /* upstream connected, client not checked yet: the
			   client's first bytes are peeked and checked like in
			   PEEK before any is forwarded; if the upstream speaks
			   first the stream is opaque and RELAY late-peeks */
	CS_RESOLVE,     /* c-ares lookup of an allowed name in flight */
	CS_CONNECT,     /* non-blocking connect to a checked address */
	CS_RELAY,       /* splicing both directions (relay.c) */
	CS_FLUSH,       /* writing a final response to the client, then close;
			   or, after a later request was refused in RELAY and
			   the earlier answers relayed, waiting for the
			   client's end (relay_refuse_request) */
	CS_CLOSED,      /* closed and recorded; freed by a deferred event */
};

/* What a step says happens next; the dispatcher (conn_run) acts on it. */
enum conn_next {
	CONN_NEXT_WAIT,       /* nothing until the next event */
	CONN_NEXT_PEEK,       /* start checking the client's first bytes */
	CONN_NEXT_DECIDE,     /* decide the target, then resolve or connect */
	CONN_NEXT_RESOLVE,    /* resolve the allowed name (or use the cache) */
	CONN_NEXT_LITERAL,    /* connect to the allowed address literal */
	CONN_NEXT_CONNECT,    /* connect to the next checked address */
	CONN_NEXT_CONNECTED,  /* the upstream connect completed */
	CONN_NEXT_ESTABLISHED, /* explicit proxy: answer the client, go on */
	CONN_NEXT_WAIT_FIRST, /* upstream open, client unchecked: wait */
	CONN_NEXT_RELAY,      /* first flight checked: splice both ways */
	CONN_NEXT_DNS,        /* serve the guest's DNS stream */
	CONN_NEXT_DENY,       /* refuse: kind and reason are in c->aux */
	CONN_NEXT_CLOSE,      /* closed already (conn_end): stop */
};

/* What a response to the client means, for proto deny_response(). */
enum deny_kind {
	DENY_POLICY,    /* the policy (or a protocol check) refused it: 403 */
	DENY_MALFORMED, /* the request was malformed: 400 */
	DENY_UPSTREAM,  /* allowed, but the upstream was unreachable: 502 */
};

struct conn {
	struct proxy *px;
	struct worker *w; /* the event loop it lives on; never changes */
	LIST_ENTRY(conn) link; /* w->conns, until the deferred free */
	uint64_t id;
	enum conn_state state;
	enum conn_origin origin;
	struct policy_ref *pol; /* reference held: decisions use this policy */

	struct bufferevent *client;   /* owned */
	struct bufferevent *upstream; /* owned, NULL until CONNECT */
	/* owned: phase deadlines and idle checks; once CLOSED, made active
	 * to free the connection on the next loop turn */
	struct event *timer;
	uint64_t start_ms, phase_start_ms, last_active_ms;

	/* Dispatcher: a step is running (a callback that libevent runs
	 * from inside it, such as a connect that fails at once, leaves its
	 * next step in queued instead of running it there). */
	bool running;
	enum conn_next queued;

	/* What the connection stands for. name is normalised; when the target
	 * is an IP literal, literal is set and name holds its text until a
	 * peeked SNI/Host provides a name (then name_from_peek is set). */
	char name[256];
	bool literal;
	struct ip_addr literal_addr;
	bool name_from_peek;
	uint16_t port;
	bool is_connect;         /* explicit proxy CONNECT tunnel */
	bool synthetic_unknown;  /* dst was in the pool but unassigned */
	const struct proto *proto; /* peeked protocol; NULL before */
	char sni[256];

	/* The decision (rule strings point into pol). */
	bool decided;
	enum policy_decision decision;
	struct policy_rule_ref rule;
	bool rule_absent; /* refused by a protocol check, not by a rule */
	bool connect_audited;
	/* POLICY_PROTO_* the allowing verdict(s) let through (the
	 * intersection when an address and a name were both decided);
	 * valid when protocols_set. Not enforced for would-deny. */
	uint8_t protocols;
	bool protocols_set;
	bool policy_denied; /* the verdict itself denied: 403 names the rule */

	/* Resolution and connect. */
	struct resolver_query *rq;
	char addr_str[IP_STR_MAX]; /* address connected to */
	/* The wire header's source, "ip:port": the guest's claim of which
	 * of its sockets (which container) made the connection. Recorded
	 * as "src", never used for a decision. Empty: not given. */
	char src_str[IP_STR_MAX + 8];
	/* The wire header's container extension (name, id): the guest's
	 * claim too, recorded as "container", "container_id". "": absent. */
	char ctr_name[65], ctr_id[65];
	struct conn_aux *aux; /* owned; NULL while relaying (see conn_aux) */

	uint64_t bytes_up, bytes_down;
	bool peek_started; /* the client's first byte was seen */
	/* The upstream was decided and opened before the client's first
	 * bytes were checked (WAIT_FIRST follows the connect instead of
	 * RELAY); cleared once they pass or the stream turns opaque. */
	bool early_upstream;
	/* The upstream spoke first (server-speaks-first): the client's first
	 * bytes, whenever they come, are still peeked and checked before any
	 * is forwarded (relay.c, first_flight_late). */
	bool late_peek;
	/* owned: a TLS stream's server flight is followed until it is past
	 * its plaintext part (tls_watch.c); NULL otherwise */
	struct tls_watch *tlsw;

	/* Relay. */
	bool up_eof, down_eof;   /* client / upstream sent EOF */
	bool up_shut, down_shut; /* shutdown(SHUT_WR) done on upstream / client */
	bool up_paused, down_paused;
	struct http_checker hc; /* per-request checks of client->server HTTP */
	uint8_t *hc_out;        /* owned: rewritten heads (explicit proxy) */
	const char *eof_first;  /* which side closed first, for the record */
	/* A later request was refused (relay_refuse_request): nothing more
	 * is read from the client, the upstream got SHUT_WR, its answers are
	 * relayed until it closes (then FLUSH's linger) or --drain-timeout;
	 * c->aux->reason is the refusal's, the close record's reason. */
	bool refused_later;

	struct dns_stream *dns; /* owned, CS_DNS */
	bool flushed; /* FLUSH: response written, SHUT_WR done */
};

/* State only the set-up phase and a refusal need. It is allocated at
 * accept and freed when the relay starts, so an idle tunnel costs only
 * struct conn; a refusal during the relay allocates it again. */
struct conn_aux {
	struct ip_addr addrs[RESOLVE_MAX_ADDRS];
	size_t n_addrs, next_addr;
	bool from_cache; /* addrs came from px->dns_cache */
	char unusable[200]; /* why the first unusable answer was refused */
	char connect_err[120];
	char hint[512];   /* other refusals: what the user could change */
	char reason[512]; /* why a FLUSH ends: the close reason */
	char seen[128];   /* what a stream that is not TLS/HTTP began with */
	enum deny_kind deny_kind;
	/* FLUSH: refused before the client spoke; its first bytes (or a
	 * short grace timeout) decide the refusal's protocol. */
	bool deny_waiting;
};

/* ---- the dispatcher (conn_dispatch.c) ---- */

/* Run next and whatever follows it until a step waits for an event or
 * the connection is closed. Every callback ends here. */
void conn_run(struct conn *c, enum conn_next next);
/* The bufferevent callbacks of an upstream socket. */
void conn_setup_upstream(struct conn *c, struct bufferevent *bev);
/* The client's bufferevent callbacks and the timer, at accept. */
void conn_setup_client(struct conn *c);
struct event *conn_timer_new(struct conn *c);

/* ---- lifecycle (conn_lifecycle.c) ---- */

/* The one close path: audit "close" (bytes, duration, reason) and log it
 * once, release sockets, resolver queries and the policy reference, mark
 * c CLOSED and schedule its free. A second call does nothing. c stays
 * valid until the current callback returns. */
void conn_close(struct conn *c, const char *reason);
/* The deferred free of a CLOSED connection (its timer's last firing). */
void conn_free(struct conn *c);
/* conn_close(), as a step's answer: return conn_end(c, why). */
enum conn_next conn_end(struct conn *c, const char *reason);
/* c->aux, allocated if needed; NULL when out of memory. */
struct conn_aux *conn_aux(struct conn *c);
/* Set the refusal hint (what the user could change); dropped when out of
 * memory, since it is advice, not the verdict. */
void conn_hint(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Arm the phase timer to fire after ms milliseconds. */
void conn_set_timer(struct conn *c, uint64_t ms);
/* Write the connect audit record (once) for the current decision. */
int conn_audit_connect(struct conn *c, const char *reason);
/* Write the "resolve" record: the proxy is about to act on the allowed
 * c->name (send it to the upstream resolver, or connect to a cached answer
 * or an address literal; reason says which when it is not a lookup), so it
 * is on record before anything depending on it leaves the host. Negative
 * when the log cannot be written: do not act. */
int conn_audit_resolve(struct conn *c, const char *reason);

/* ---- secrets (intercept_conn.c, docs/secrets.md) ---- */

/* The RELAY step's branch (conn_dispatch.c): CONN_NEXT_RELAY to relay,
 * spliced or, when interception took c, to the intercept module's
 * socketpair that replaced c->upstream; else c was refused. */
enum conn_next conn_intercept(struct conn *c);
/* A request head seen in clear (plain HTTP, the explicit proxy):
 * CONN_NEXT_RELAY when it may go on (no secret's placeholder in it, and
 * for an inspected host its `request` record queued: no record, no
 * request); else what c's step returns (refused, or closed on an audit
 * failure). */
enum conn_next conn_head_in_clear(struct conn *c, const uint8_t *head,
				  size_t len);

/* ---- refusals (conn_refuse.c) ---- */

/* Ask for a refusal: keeps kind and reason (copied) for the dispatcher
 * and returns CONN_NEXT_DENY (so: return conn_refuse(c, ...)). */
enum conn_next conn_refuse(struct conn *c, enum deny_kind kind,
			   const char *reason);
/* CONN_NEXT_DENY: audit the connect record as deny (if not written yet),
 * drop the upstream, send the protocol's refusal (403 page, TLS alert,
 * nothing), then close once it is out. */
enum conn_next refuse_start(struct conn *c);
/* A later request refused, its upstream's answers relayed and the
 * upstream gone: FLUSH with nothing more to write (half-close, read the
 * client to its EOF, close). */
enum conn_next refuse_linger(struct conn *c);
/* FLUSH: client bytes arrived, the output drained, the client's EOF. */
enum conn_next refuse_client_read(struct conn *c);
enum conn_next refuse_client_written(struct conn *c);
enum conn_next refuse_client_eof(struct conn *c);

/* ---- the target (conn_target.c) ---- */

/* READ_HEADER: the wire header names what a transparent stream is for. */
enum conn_next conn_read_header(struct conn *c);
/* Set the target from host text (name or literal); false + reason when
 * it is neither a valid name nor a strict address. */
bool conn_set_target(struct conn *c, const char *host, size_t len,
		     uint16_t port, char *why, size_t whysz);
/* Is c for a name (so a TLS client must send SNI and an HTTP request a
 * Host naming it), rather than an address a cidr: rule allowed? */
bool conn_by_name(const struct conn *c);

/* ---- the client's first flight (first_flight.c) ---- */

enum conn_next conn_start_peek(struct conn *c);    /* CONN_NEXT_PEEK */
enum conn_next conn_peek_step(struct conn *c);     /* client bytes came */
enum conn_next conn_peek_timeout(struct conn *c);
/* CONN_NEXT_WAIT_FIRST: upstream open before the client spoke. */
enum conn_next conn_wait_first(struct conn *c);
/* WAIT_FIRST: the upstream sent bytes (what 0) or an event (what). */
enum conn_next conn_upstream_first(struct conn *c, short what, int err);
/* Relay after the upstream spoke first: check the client's first flight
 * when it comes. FF_PASS: forward; FF_MORE: wait for more bytes;
 * FF_REFUSED: conn_refuse() was called, return CONN_NEXT_DENY. */
enum ff_result { FF_PASS, FF_MORE, FF_REFUSED };
enum ff_result first_flight_late(struct conn *c);
/* The ClientHello a client sends after a HelloRetryRequest (buf, len: its
 * records): the first hello's checks, and it must name the same server,
 * first_sni (NULL: the first had no SNI). false: conn_refuse() was
 * called, return CONN_NEXT_DENY. */
bool first_flight_retry(struct conn *c, const uint8_t *buf, size_t len,
			const char *first_sni);

/* ---- the TLS handshake watch (tls_watch.c) ---- */

/* A TLS stream's relay starts (its first ClientHello checked and at the
 * start of the client's input): follow the server's first flight. */
enum conn_next tls_watch_start(struct conn *c);
/* c->tlsw set, client bytes came: forward what may go, hold the rest. */
enum conn_next tls_watch_client(struct conn *c);
/* c->tlsw set, server bytes came: *pass true means relay them as usual
 * (the watch may have ended); false means the watch held or relayed
 * them itself. */
enum conn_next tls_watch_upstream(struct conn *c, bool *pass);
/* The timer fired while c->tlsw is set: in RETRY, the retry's deadline
 * (refused); otherwise CONN_NEXT_WAIT, the idle timer as usual. */
enum conn_next tls_watch_timer(struct conn *c);
void tls_watch_free(struct conn *c);

/* ---- the decision (conn_decide.c) ---- */

/* CONN_NEXT_DECIDE: decide the target (an address, then a name a client
 * named over it), then resolve the name or connect to the address. */
enum conn_next conn_decide_target(struct conn *c);
/* A stream is established as TLS or HTTP/1 (c->proto), or is opaque
 * (proto_tcp): refuse it unless the allowing rule's protocols include
 * what it is (docs/policy.md "protocols"). false: conn_refuse() was
 * called. No-op until decided, and for would-deny (report mode). */
bool conn_check_protocol(struct conn *c);

/* ---- resolution and connect (upstream_connect.c) ---- */

enum conn_next conn_resolve(struct conn *c);          /* CONN_NEXT_RESOLVE */
/* CONN_NEXT_LITERAL: connect to the allowed address literal
 * c->literal_addr (recorded first). */
enum conn_next conn_connect_literal(struct conn *c);
enum conn_next conn_connect_next(struct conn *c);     /* CONN_NEXT_CONNECT */
enum conn_next conn_upstream_connected(struct conn *c); /* ..._CONNECTED */

/* ---- relay (relay.c) ---- */

enum conn_next relay_start(struct conn *c);           /* CONN_NEXT_RELAY */
enum conn_next relay_client_read(struct conn *c);
enum conn_next relay_upstream_read(struct conn *c);
enum conn_next relay_client_written(struct conn *c);
enum conn_next relay_upstream_written(struct conn *c);
enum conn_next relay_eof(struct conn *c, bool from_client);
/* A request refused during the relay (the checker, or a placeholder in
 * clear); why names its number. Only the first on the connection
 * (nothing forwarded before it) is answered, with kind's status
 * (conn_refuse); a later one would have its status read as an earlier
 * request's answer, so the connection is ended instead once the earlier
 * answers are out. Returns what the calling step returns. */
enum conn_next relay_refuse_request(struct conn *c, enum deny_kind kind,
				    const char *why);
/* Move n bytes of in to the bufferevent to, or send p's n bytes to it:
 * straight to its socket when nothing is queued there (no loop turn
 * before they leave), what the socket does not take queued as usual. */
void conn_move(struct evbuffer *in, struct bufferevent *to, size_t n);
void conn_send(struct bufferevent *to, const void *p, size_t n);

/* ---- explicit proxy front (http_proxy.c) ---- */

enum conn_next http_proxy_read(struct conn *c);
enum conn_next http_proxy_established(struct conn *c);

/* ---- DNS streams (dns_stream.c) ---- */

enum conn_next dns_stream_start(struct conn *c);      /* CONN_NEXT_DNS */
enum conn_next dns_stream_read(struct conn *c);       /* also on drain */
enum conn_next dns_stream_eof(struct conn *c);
/* Once a second: write ended aggregates, resume a stream that waited for
 * its budget or for the log. */
enum conn_next dns_stream_tick(struct conn *c);
/* Write every pending aggregate (the stream is closing). */
void dns_stream_flush(struct conn *c);
void dns_stream_free(struct dns_stream *s);
bool dns_stream_idle(const struct conn *c); /* no query in flight */

#endif
