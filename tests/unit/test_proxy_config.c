/* sandbox-proxy option parsing: defaults, repeatable options, listener
 * specs, and errors that name the offending option. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>

#include "../../proxy/config.h"
#include "tap.h"

static int parse(struct proxy_config *cfg, char *err, size_t errsz, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	va_start(ap, errsz);
	argv[argc++] = "sandbox-proxy";
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	return config_parse(argc, argv, cfg, err, errsz);
}

int main(void)
{
	struct proxy_config cfg;
	char err[256];

	is_int(parse(&cfg, err, sizeof(err), NULL), 0, "no options");
	is_str(cfg.audit_path, "-", "audit defaults to stderr");
	is_str(cfg.sandbox, "default", "sandbox name default");
	is_int(cfg.max_conns, 4096, "max-conns default");
	is_int(cfg.record_rate, PROXY_RECORD_RATE_DEFAULT, "record-rate default");
	is_int(cfg.handshake_timeout, 10, "handshake default");
	is_int(cfg.idle_timeout, 300, "idle default");
	is_int(cfg.synth_prefix, 15, "pool 198.18.0.0/15");
	is_int(cfg.synth_base.b[0], 198, "pool base");
	config_free(&cfg);

	is_int(parse(&cfg, err, sizeof(err), "--policy", "a.yaml", "--policy",
		     "b.yaml", "--allow", "x.test", "--deny", "*.y.test",
		     "--listen", "tcp:127.0.0.1:0", "--http-proxy",
		     "unix:/tmp/p.sock", "--listen=tcp:[::1]:53",
		     "--max-conns", "7", "--drain-timeout", "0", "--check",
		     NULL),
	       0, "full command line");
	is_int(cfg.n_policy_files, 2, "two policy files");
	is_str(cfg.policy_files[1], "b.yaml", "in order");
	is_int(cfg.n_rules, 2, "two rules");
	ok(cfg.rules[0].allow && !cfg.rules[1].allow, "allow then deny");
	is_int(cfg.n_listens, 3, "three listeners");
	ok(cfg.listens[0].type == LISTEN_TCP && !cfg.listens[0].http_proxy,
	   "transparent tcp");
	is_str(cfg.listens[0].host, "127.0.0.1", "tcp host");
	ok(cfg.listens[1].type == LISTEN_UNIX && cfg.listens[1].http_proxy,
	   "http proxy on unix");
	is_str(cfg.listens[1].path, "/tmp/p.sock", "unix path");
	is_str(cfg.listens[2].host, "::1", "brackets removed");
	is_int(cfg.listens[2].port, 53, "v6 port");
	is_int(cfg.max_conns, 7, "max-conns");
	is_int(cfg.drain_timeout, 0, "drain 0 allowed");
	ok(cfg.check, "--check");
	config_free(&cfg);

	is_int(parse(&cfg, err, sizeof(err), "--bogus", NULL), -EINVAL,
	       "unknown option refused");
	ok(strstr(err, "--bogus") != NULL, "error names it: %s", err);
	is_int(parse(&cfg, err, sizeof(err), "--max-conns", "0", NULL),
	       -EINVAL, "max-conns 0 refused");
	ok(strstr(err, "--max-conns") != NULL, "error names option: %s", err);
	is_int(parse(&cfg, err, sizeof(err), "--record-rate", "0", NULL),
	       -EINVAL, "record-rate 0 refused (it would stop all new work)");
	ok(strstr(err, "--record-rate") != NULL, "error names option: %s", err);
	is_int(parse(&cfg, err, sizeof(err), "--record-rate", "500", NULL), 0,
	       "record-rate 500");
	is_int(cfg.record_rate, 500, "record-rate parsed");
	config_free(&cfg);
	is_int(parse(&cfg, err, sizeof(err), NULL), 0, "no options");
	is_int(cfg.workers, 0, "workers default: decided by main (CPUs)");
	config_free(&cfg);
	is_int(parse(&cfg, err, sizeof(err), "--workers", "3", NULL), 0,
	       "--workers 3");
	is_int(cfg.workers, 3, "workers parsed");
	config_free(&cfg);
	is_int(parse(&cfg, err, sizeof(err), "--workers", "0", NULL), -EINVAL,
	       "--workers 0 refused");
	ok(strstr(err, "--workers") != NULL, "error names option: %s", err);
	is_int(parse(&cfg, err, sizeof(err), "--workers", "65", NULL), -EINVAL,
	       "--workers above PROXY_MAX_WORKERS refused");
	is_int(parse(&cfg, err, sizeof(err), "--idle-timeout", "5s", NULL),
	       -EINVAL, "unit suffix refused");
	is_int(parse(&cfg, err, sizeof(err), "--listen", "127.0.0.1:80",
		     NULL),
	       -EINVAL, "listener without scheme refused");
	ok(strstr(err, "--listen") != NULL, "error: %s", err);
	is_int(parse(&cfg, err, sizeof(err), "--listen", "tcp:::1:80", NULL),
	       -EINVAL, "bare IPv6 refused");
	is_int(parse(&cfg, err, sizeof(err), "--listen", "tcp:h:65536", NULL),
	       -EINVAL, "port out of range");
	is_int(parse(&cfg, err, sizeof(err), "--listen", "unix:", NULL),
	       -EINVAL, "empty unix path");
	is_int(parse(&cfg, err, sizeof(err), "--synthetic-pool",
		     "198.18.0.1/15", NULL),
	       -EINVAL, "pool with host bits refused");
	is_int(parse(&cfg, err, sizeof(err), "--synthetic-pool", "10.0.0.0/4",
		     NULL),
	       -EINVAL, "pool too large refused");
	is_int(parse(&cfg, err, sizeof(err), "--synthetic-pool",
		     "10.64.0.0/10", NULL),
	       0, "other pool accepted");
	is_int(cfg.synth_prefix, 10, "pool prefix");
	config_free(&cfg);
	is_int(parse(&cfg, err, sizeof(err), "stray", NULL), -EINVAL,
	       "stray argument refused");
	is_int(parse(&cfg, err, sizeof(err), "--policy", NULL), -EINVAL,
	       "missing value refused");
	ok(strstr(err, "missing value") != NULL, "error: %s", err);

	unsigned u;
	is_int(config_parse_uint("4294967296", 0, 4294967295u, &u), -EINVAL,
	       "overflow refused");
	return done_testing();
}
