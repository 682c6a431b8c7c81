/* One client connection and its state machine.
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
 * refusal can speak its protocol) -> closed.
 * Every path ends in conn_close(), which frees everything and writes the
 * close audit record exactly once.
 */
#ifndef PROXY_CONN_H
#define PROXY_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/ipaddr.h"
#include "../policy/policy.h"
#include "http_check.h"
#include "proxy.h"
#include "resolver.h"

struct bufferevent;
struct event;
struct proto;
struct dns_stream;

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
	CS_FLUSH,       /* writing a final response to the client, then close */
};

enum conn_origin { ORIGIN_TRANSPARENT, ORIGIN_HTTP_PROXY };

/* What a response to the client means, for proto deny_response(). */
enum deny_kind {
	DENY_POLICY,    /* the policy (or a protocol check) refused it: 403 */
	DENY_MALFORMED, /* the request was malformed: 400 */
	DENY_UPSTREAM,  /* allowed, but the upstream was unreachable: 502 */
};

struct conn {
	struct proxy *px;
	LIST_ENTRY(conn) link; /* px->conns */
	uint64_t id;
	enum conn_state state;
	enum conn_origin origin;
	struct policy_ref *pol; /* reference held: decisions use this policy */

	struct bufferevent *client;   /* owned */
	struct bufferevent *upstream; /* owned, NULL until CONNECT */
	struct event *timer;          /* owned: phase deadlines, idle checks */
	uint64_t start_ms, phase_start_ms, last_active_ms;

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
	struct conn_aux *aux; /* owned; NULL while relaying (see conn_aux) */

	uint64_t bytes_up, bytes_down;
	bool peek_started; /* the client's first byte was seen */
	/* The upstream was decided and opened before the client's first
	 * bytes were checked (WAIT_FIRST follows the connect instead of
	 * RELAY); cleared once they pass or the stream turns opaque. */
	bool early_upstream;
	/* The upstream spoke first (server-speaks-first): the client's first
	 * bytes, whenever they come, are still peeked and checked before any
	 * is forwarded (relay.c, conn_late_peek). */
	bool late_peek;

	/* Relay. */
	bool up_eof, down_eof;   /* client / upstream sent EOF */
	bool up_shut, down_shut; /* shutdown(SHUT_WR) done on upstream / client */
	bool up_paused, down_paused;
	struct http_checker hc; /* per-request checks of client->server HTTP */
	uint8_t *hc_out;        /* owned: rewritten heads (explicit proxy) */
	const char *eof_first;  /* which side closed first, for the record */

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

/* c->aux, allocated if needed; NULL when out of memory. */
struct conn_aux *conn_aux(struct conn *c);
/* Set the refusal hint (what the user could change); dropped when out of
 * memory, since it is advice, not the verdict. */
void conn_hint(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Accept a new client on fd (takes ownership of fd). */
void conn_accept(struct proxy *px, int fd, enum conn_origin origin);

/* The one close path: audit "close" (bytes, duration, reason), free all. */
void conn_close(struct conn *c, const char *reason);

/* Refuse: audit the connect record as deny (if not written yet), send the
 * protocol's refusal (403 page, TLS alert, nothing), then close. reason is
 * copied. */
void conn_deny(struct conn *c, enum deny_kind kind, const char *reason);

/* Write the connect audit record (once) for the current decision. */
int conn_audit_connect(struct conn *c, const char *reason);
/* Write the "resolve" record: the proxy is about to act on the allowed
 * c->name (send it to the upstream resolver, or connect to a cached answer
 * or an address literal; reason says which when it is not a lookup), so it
 * is on record before anything depending on it leaves the host. Negative
 * when the log cannot be written: do not act. */
int conn_audit_resolve(struct conn *c, const char *reason);

/* Arm the phase timer to fire after ms milliseconds. */
void conn_set_timer(struct conn *c, uint64_t ms);

/* Steps of the state machine, in the order a connection takes them. */
void conn_read_header(struct conn *c);    /* peek.c */
void conn_start_peek(struct conn *c);     /* peek.c */
void conn_peek_timeout(struct conn *c);   /* peek.c */
/* Upstream connected before the client spoke: wait for either side. */
void conn_wait_first(struct conn *c);     /* peek.c */
/* WAIT_FIRST: the upstream sent bytes (EV_READ) or an event (what). */
void conn_upstream_first(struct conn *c, short what, int err); /* peek.c */
/* Relay: check the client's first flight after the fallback. Returns 1
 * when the bytes may be forwarded, 0 to wait for more, -1 when the
 * connection was refused (c may be gone). */
int conn_late_peek(struct conn *c);        /* peek.c */
void conn_upstream_connected(struct conn *c); /* upstream.c */
void conn_setup_upstream(struct conn *c, struct bufferevent *bev);
void conn_connect_next(struct conn *c);
void conn_resolve(struct conn *c);
/* Connect to the allowed address literal c->literal_addr (recorded first). */
void conn_connect_literal(struct conn *c);
void conn_peek_step(struct conn *c);       /* client bytes arrived */
void conn_decide_and_resolve(struct conn *c);
void conn_start_relay(struct conn *c);     /* relay.c */
void relay_client_read(struct conn *c);    /* relay.c */
/* false when the connection was closed (c is gone) */
bool relay_upstream_read(struct conn *c);  /* relay.c */
void relay_client_written(struct conn *c); /* relay.c */
void relay_upstream_written(struct conn *c);
void relay_eof(struct conn *c, bool from_client);

/* Secrets (intercept_conn.c, docs/secrets.md). conn_intercept: called
 * where c would connect to the checked address a; true when c was handed
 * to TLS interception (or refused), false to connect as usual.
 * conn_head_secrets_ok: a request head seen in clear (plain HTTP, the
 * explicit proxy) carries no placeholder; false when c was refused. */
bool conn_intercept(struct conn *c, const struct ip_addr *a);
bool conn_head_secrets_ok(struct conn *c, const uint8_t *head, size_t len);

/* Explicit proxy front (http_proxy.c). */
void http_proxy_read(struct conn *c);
void http_proxy_connected(struct conn *c); /* upstream connect succeeded */

/* DNS streams (dns_stream.c). */
void dns_stream_start(struct conn *c);
void dns_stream_read(struct conn *c);
void dns_stream_eof(struct conn *c);
void dns_stream_free(struct dns_stream *s);
/* Once a second (record.c): write ended aggregates, resume a stream that
 * waited for its budget or for the log. */
void dns_stream_tick(struct conn *c);
/* Write every pending aggregate (the stream is closing). */
void dns_stream_flush(struct conn *c);
bool dns_stream_idle(const struct conn *c); /* no query in flight */

/* Policy helpers shared by the fronts: decide c->name (or c->literal
 * address) for c->port, fill c->decision/rule; on DENY refuse the
 * connection (403 naming the rule) and return false. */
bool conn_decide(struct conn *c);
/* A stream is established as TLS or HTTP/1 (c->proto), or is opaque
 * (proto_tcp): refuse it unless the allowing rule's protocols include
 * what it is (docs/policy.md "protocols"). Returns false when c was
 * refused. No-op until decided, and for would-deny (report mode). */
bool conn_check_protocol(struct conn *c);
/* Set the target from host text (name or literal); false + reason when
 * it is neither a valid name nor a strict address. */
bool conn_set_target(struct conn *c, const char *host, size_t len,
		     uint16_t port, char *why, size_t whysz);

/* Is c for a name (so a TLS client must send SNI and an HTTP request a
 * Host naming it), rather than an address a cidr: rule allowed? */
bool conn_by_name(const struct conn *c);

/* Does host text (from SNI or Host) name the same thing as c->name? */
bool conn_same_name(const struct conn *c, const char *host, size_t len);

#endif
