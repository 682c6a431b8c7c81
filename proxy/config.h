/* sandbox-proxy's command line, parsed into one immutable struct.
 * Parsing is pure (no sockets, no files) so that tests can drive it. */
#ifndef PROXY_CONFIG_H
#define PROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/ipaddr.h"

/* 3 records per tunnel at most (resolve, connect, close): about 3300 new
 * tunnels a second, over twice what one proxy measured on loopback
 * (docs/design.md, "The record budget"). */
#define PROXY_RECORD_RATE_DEFAULT 10000

/* At most this many event loops (--workers, worker.h), whatever the CPU
 * count says: each costs a thread, a c-ares channel and a socket per TCP
 * listener, and past the core count more loops only contend. */
#define PROXY_MAX_WORKERS 64

enum listen_type { LISTEN_UNIX, LISTEN_TCP };

struct listen_spec {
	/* 3 records per tunnel at most (resolve, connect, close): about 3300 new
 * tunnels a second, over twice what one proxy measured on loopback
 * (docs/design.md, "The record budget"). */
#define PROXY_RECORD_RATE_DEFAULT 10000

enum listen_type type;
	bool http_proxy; /* explicit HTTP proxy; else transparent (wire header) */
	const char *spec; /* as given, e.g. "tcp:127.0.0.1:0" (argv, not owned) */
	char host[256];   /* tcp: host without brackets */
	uint16_t port;    /* tcp */
	char path[108];   /* unix: sun_path */
};

struct cli_rule {
	bool allow;
	const char *spec; /* argv, not owned */
};

struct proxy_config {
	const char **policy_files; /* owned array of argv strings */
	size_t n_policy_files;
	struct cli_rule *rules; /* owned */
	size_t n_rules;
	struct listen_spec *listens; /* owned */
	size_t n_listens;
	const char *presets_dir; /* NULL: decided by main() */
	const char *audit_path;  /* "-" = stderr */
	const char *sandbox;
	unsigned audit_max_bytes; /* rotate the audit log above this; 0: never */
	unsigned audit_keep;      /* rotated audit files kept */
	const char *resolver; /* NULL: system configuration */
	const char *control_path; /* --control unix:PATH, NULL: none (argv) */
	const char *ready_fd; /* --ready-fd N as given (argv), NULL: none */
	/* Published ports (inbound.h): --publish SPEC (argv strings) and
	 * the bridge's host-to-guest socket, --guest-connect PATH. */
	const char **publishes; /* owned array */
	size_t n_publishes;
	const char *guest_connect;
	/* --host-port P: host loopback ports the guest reaches as
	 * host.sandbox.internal (policy.h, POLICY_HOST_INTERNAL). */
	uint16_t *host_ports; /* owned */
	size_t n_host_ports;
	/* Secrets (docs/secrets.md): the descriptor the launcher writes
	 * them to (-1: none), where the CA certificate goes, and extra
	 * trust for intercepted upstreams (argv, not owned). */
	int secrets_fd;
	const char *ca_out;
	const char *upstream_ca;
	struct ip_addr synth_base;
	unsigned synth_prefix;
	unsigned max_conns;
	/* --record-rate: records a second for new work, proxy-wide
	 * (proxy.h, proxy_budget_ok; docs/audit-log.md "The bound"). */
	unsigned record_rate;
	/* --workers: event loops (worker.h); 0: the online CPUs. */
	unsigned workers;
	unsigned handshake_timeout, connect_timeout, idle_timeout,
		drain_timeout; /* seconds */
	bool check, verbose, help, version;
};

/* Parse argv. On error returns -EINVAL and writes "what is wrong" to err.
 * Unknown options and stray arguments are errors. */
int config_parse(int argc, char **argv, struct proxy_config *cfg, char *err,
		 size_t errsz);
void config_free(struct proxy_config *cfg);

/* "unix:PATH" or "tcp:HOST:PORT" / "tcp:[V6]:PORT". Returns 0 or -EINVAL. */
int listen_spec_parse(const char *s, struct listen_spec *out);

/* A positive integer option value; returns 0 or -EINVAL. */
int config_parse_uint(const char *s, unsigned min, unsigned max,
		      unsigned *out);

extern const char config_usage[];

#endif
