#include "config.h"

#include <getopt.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/util.h"
#include "../parse/inbound.h"

const char config_usage[] =
	"usage: sandbox-proxy [OPTIONS]\n"
	"  --policy FILE          policy file (repeatable, merged in order)\n"
	"  --allow SPEC           allow rule (repeatable)\n"
	"  --deny SPEC            deny rule (repeatable)\n"
	"  --presets DIR          where 'extends:' finds presets\n"
	"  --audit FILE           JSON Lines audit log ('-' = stderr, default)\n"
	"  --audit-max-bytes N    rotate the audit log at N bytes (0: never)\n"
	"  --audit-keep K         rotated audit files kept (10); never this run's\n"
	"                         own: when its records fill K+1 files, new work\n"
	"                         is refused for the rest of the run\n"
	"  --sandbox NAME         sandbox name in audit records (default)\n"
	"  --resolver HOST:PORT   upstream DNS server (default: system)\n"
	"  --listen unix:PATH|tcp:HOST:PORT      transparent listener\n"
	"  --http-proxy unix:PATH|tcp:HOST:PORT  explicit HTTP proxy\n"
	"  --control unix:PATH    runtime control socket (0600): allow/deny/\n"
	"                         remove/cut/resume/status (docs/policy.md)\n"
	"  --publish [HOST_IP:]HOST_PORT:GUEST_PORT  listen on the host and\n"
	"                         carry each connection to the guest's\n"
	"                         loopback (repeatable; no HOST_IP: 127.0.0.1\n"
	"                         and ::1); needs --guest-connect\n"
	"  --guest-connect PATH   the vsock bridge's host-to-guest socket\n"
	"  --host-port PORT       the guest may reach the host's loopback on\n"
	"                         PORT as host.sandbox.internal (repeatable)\n"
	"  --secrets-fd N         read secrets (VAR PLACEHOLDER VALUE HOSTS\n"
	"                         lines) from inherited descriptor N until EOF;\n"
	"                         TLS to their hosts is intercepted\n"
	"                         (docs/secrets.md)\n"
	"  --ca-out FILE          write the interception CA certificate (never\n"
	"                         its key) to FILE\n"
	"  --upstream-ca FILE     also trust FILE (PEM) for intercepted upstreams\n"
	"  --synthetic-pool CIDR  synthetic address pool (198.18.0.0/15)\n"
	"  --max-conns N          concurrent connections (4096)\n"
	"  --record-rate N        audit records a second the whole proxy\n"
	"                         writes for new work (10000); past it new\n"
	"                         connections and DNS wait for the next\n"
	"                         second. Bounds how fast a guest grows the\n"
	"                         log; rotation bounds its size on disk\n"
	"  --workers N            event loops, one thread each (default: the\n"
	"                         online CPUs, at most 64); connections\n"
	"                         spread over them, policy, DNS cache and\n"
	"                         synthetic addresses are shared. 1 with\n"
	"                         --secrets-fd (interception runs on one)\n"
	"  --handshake-timeout S  (10)  --connect-timeout S (10)\n"
	"  --idle-timeout S       (300) --drain-timeout S   (10)\n"
	"  --check                load the policy, print ok or the errors\n"
	"  --ready-fd N           write \"ready\" to descriptor N once serving\n"
	"  --verbose, --help, --version\n";

enum {
	OPT_POLICY = 256,
	OPT_ALLOW,
	OPT_DENY,
	OPT_PRESETS,
	OPT_AUDIT,
	OPT_SANDBOX,
	OPT_AUDIT_MAX,
	OPT_AUDIT_KEEP,
	OPT_RESOLVER,
	OPT_LISTEN,
	OPT_HTTP_PROXY,
	OPT_POOL,
	OPT_MAX_CONNS,
	OPT_HS_TIMEOUT,
	OPT_CONN_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_DRAIN_TIMEOUT,
	OPT_CHECK,
	OPT_VERBOSE,
	OPT_HELP,
	OPT_VERSION,
	OPT_CONTROL,
	OPT_READY_FD,
	OPT_PUBLISH,
	OPT_GUEST_CONNECT,
	OPT_HOST_PORT,
	OPT_SECRETS_FD,
	OPT_CA_OUT,
	OPT_UPSTREAM_CA,
	OPT_RECORD_RATE,
	OPT_WORKERS,
};

static const struct option options[] = {
	{"policy", required_argument, NULL, OPT_POLICY},
	{"allow", required_argument, NULL, OPT_ALLOW},
	{"deny", required_argument, NULL, OPT_DENY},
	{"presets", required_argument, NULL, OPT_PRESETS},
	{"audit", required_argument, NULL, OPT_AUDIT},
	{"sandbox", required_argument, NULL, OPT_SANDBOX},
	{"audit-max-bytes", required_argument, NULL, OPT_AUDIT_MAX},
	{"audit-keep", required_argument, NULL, OPT_AUDIT_KEEP},
	{"resolver", required_argument, NULL, OPT_RESOLVER},
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"http-proxy", required_argument, NULL, OPT_HTTP_PROXY},
	{"synthetic-pool", required_argument, NULL, OPT_POOL},
	{"max-conns", required_argument, NULL, OPT_MAX_CONNS},
	{"handshake-timeout", required_argument, NULL, OPT_HS_TIMEOUT},
	{"connect-timeout", required_argument, NULL, OPT_CONN_TIMEOUT},
	{"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
	{"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
	{"check", no_argument, NULL, OPT_CHECK},
	{"verbose", no_argument, NULL, OPT_VERBOSE},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{"control", required_argument, NULL, OPT_CONTROL},
	{"ready-fd", required_argument, NULL, OPT_READY_FD},
	{"publish", required_argument, NULL, OPT_PUBLISH},
	{"guest-connect", required_argument, NULL, OPT_GUEST_CONNECT},
	{"host-port", required_argument, NULL, OPT_HOST_PORT},
	{"secrets-fd", required_argument, NULL, OPT_SECRETS_FD},
	{"ca-out", required_argument, NULL, OPT_CA_OUT},
	{"upstream-ca", required_argument, NULL, OPT_UPSTREAM_CA},
	{"record-rate", required_argument, NULL, OPT_RECORD_RATE},
	{"workers", required_argument, NULL, OPT_WORKERS},
	{NULL, 0, NULL, 0},
};

int config_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	unsigned long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > max)
			return -EINVAL;
	}
	if (v < min)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

int listen_spec_parse(const char *s, struct listen_spec *out)
{
	memset(out, 0, sizeof(*out));
	out->spec = s;
	if (strncmp(s, "unix:", 5) == 0) {
		size_t n = strlen(s + 5);
		if (n == 0 || n >= sizeof(out->path))
			return -EINVAL;
		out->type = LISTEN_UNIX;
		memcpy(out->path, s + 5, n + 1);
		return 0;
	}
	if (strncmp(s, "tcp:", 4) != 0)
		return -EINVAL;
	const char *h = s + 4, *colon;
	size_t hlen;
	if (*h == '[') {
		const char *close = strchr(h, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h++;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(h, ':');
		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - h);
		if (memchr(h, ':', hlen)) /* bare IPv6 needs brackets */
			return -EINVAL;
	}
	if (hlen == 0 || hlen >= sizeof(out->host))
		return -EINVAL;
	unsigned port;
	if (config_parse_uint(colon + 1, 0, 65535, &port) < 0)
		return -EINVAL;
	out->type = LISTEN_TCP;
	memcpy(out->host, h, hlen);
	out->host[hlen] = '\0';
	out->port = (uint16_t)port;
	return 0;
}

static int parse_pool(const char *s, struct ip_addr *base, unsigned *plen)
{
	const char *slash = strchr(s, '/');
	if (!slash)
		return -EINVAL;
	if (!ip_parse_strict(s, (size_t)(slash - s), base) ||
	    base->family != AF_INET)
		return -EINVAL;
	/* A pool smaller than /24 would recycle addresses under load; larger
	 * than /8 makes no sense for one sandbox. */
	if (config_parse_uint(slash + 1, 8, 24, plen) < 0)
		return -EINVAL;
	struct ip_addr probe = *base;
	if (!ip_in_prefix(&probe, base, *plen))
		return -EINVAL;
	/* host bits must be zero */
	uint32_t v = (uint32_t)base->b[0] << 24 | (uint32_t)base->b[1] << 16 |
		     (uint32_t)base->b[2] << 8 | base->b[3];
	if (v & (0xffffffffu >> *plen))
		return -EINVAL;
	return 0;
}

static int push(void **arr, size_t *n, size_t elem)
{
	void *p = realloc(*arr, (*n + 1) * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	(*n)++;
	return 0;
}

#define TIMEOUT_MAX 86400u

/* "--name" of a parsed option, or the offending argument itself. */
static const char *opt_name(int opt, char **argv, int argc, char *buf,
			    size_t bufsz)
{
	for (const struct option *o = options; o->name; o++)
		if (o->val == opt) {
			fmt_buf(buf, bufsz, "--%s", o->name);
			return buf;
		}
	return optind > 0 && optind <= argc ? argv[optind - 1] : "?";
}

int config_parse(int argc, char **argv, struct proxy_config *cfg, char *err,
		 size_t errsz)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->audit_path = "-";
	cfg->sandbox = "default";
	cfg->audit_keep = 10;
	cfg->max_conns = 4096;
	cfg->record_rate = PROXY_RECORD_RATE_DEFAULT;
	cfg->secrets_fd = -1;
	cfg->handshake_timeout = 10;
	cfg->connect_timeout = 10;
	cfg->idle_timeout = 300;
	cfg->drain_timeout = 10;
	const char *pool = "198.18.0.0/15";
	err[0] = '\0';

	optind = 0; /* GNU: full re-initialisation, so tests can call twice */
	opterr = 0;
	int opt, r = 0;
	while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		char namebuf[64];
		const char *name =
			opt_name(opt, argv, argc, namebuf, sizeof(namebuf));
		unsigned *u = NULL, umin = 1, umax = TIMEOUT_MAX;
		switch (opt) {
		case OPT_POLICY:
			if (push((void **)&cfg->policy_files,
				 &cfg->n_policy_files, sizeof(char *)) < 0)
				goto nomem;
			cfg->policy_files[cfg->n_policy_files - 1] = optarg;
			break;
		case OPT_ALLOW:
		case OPT_DENY:
			if (push((void **)&cfg->rules, &cfg->n_rules,
				 sizeof(*cfg->rules)) < 0)
				goto nomem;
			cfg->rules[cfg->n_rules - 1] = (struct cli_rule){
				.allow = opt == OPT_ALLOW, .spec = optarg};
			break;
		case OPT_PRESETS:
			cfg->presets_dir = optarg;
			break;
		case OPT_AUDIT:
			if (!*optarg)
				goto bad;
			cfg->audit_path = optarg;
			break;
		case OPT_SANDBOX:
			if (!*optarg)
				goto bad;
			cfg->sandbox = optarg;
			break;
		case OPT_AUDIT_MAX:
			/* 0 or room for at least two maximal records */
			u = &cfg->audit_max_bytes, umax = UINT_MAX;
			umin = strcmp(optarg, "0") == 0 ? 0 : 8192;
			break;
		case OPT_AUDIT_KEEP:
			u = &cfg->audit_keep, umin = 0, umax = 1000;
			break;
		case OPT_RESOLVER:
			if (!*optarg)
				goto bad;
			cfg->resolver = optarg;
			break;
		case OPT_LISTEN:
		case OPT_HTTP_PROXY: {
			struct listen_spec ls;
			if (listen_spec_parse(optarg, &ls) < 0) {
				fmt_buf(err, errsz,
					"%s %s: expected unix:PATH or "
					"tcp:HOST:PORT",
					opt == OPT_LISTEN ? "--listen"
							  : "--http-proxy",
					optarg);
				r = -EINVAL;
				goto out;
			}
			ls.http_proxy = opt == OPT_HTTP_PROXY;
			if (push((void **)&cfg->listens, &cfg->n_listens,
				 sizeof(ls)) < 0)
				goto nomem;
			cfg->listens[cfg->n_listens - 1] = ls;
			break;
		}
		case OPT_CONTROL: {
			size_t n = strlen(optarg);
			if (strncmp(optarg, "unix:", 5) != 0 || n == 5 ||
			    n - 5 >= 108) {
				fmt_buf(err, errsz,
					"--control %s: expected unix:PATH "
					"(under 108 bytes)",
					optarg);
				r = -EINVAL;
				goto out;
			}
			cfg->control_path = optarg + 5;
			break;
		}
		case OPT_PUBLISH: {
			/* Checked here so a bad spec stops the start with
			 * the reason; bound later (inbound.c). */
			struct publish_spec ps;
			const char *why = NULL;
			if (publish_spec_parse(optarg, &ps, &why) < 0) {
				fmt_buf(err, errsz, "--publish %s: %s", optarg,
					why);
				r = -EINVAL;
				goto out;
			}
			if (push((void **)&cfg->publishes, &cfg->n_publishes,
				 sizeof(*cfg->publishes)) < 0)
				goto nomem;
			cfg->publishes[cfg->n_publishes - 1] = optarg;
			break;
		}
		case OPT_HOST_PORT: {
			unsigned hp;
			if (config_parse_uint(optarg, 1, 65535, &hp) < 0) {
				fmt_buf(err, errsz, "--host-port %s: expected a "
					"port number 1-65535", optarg);
				r = -EINVAL;
				goto out;
			}
			if (push((void **)&cfg->host_ports, &cfg->n_host_ports,
				 sizeof(*cfg->host_ports)) < 0)
				goto nomem;
			cfg->host_ports[cfg->n_host_ports - 1] = (uint16_t)hp;
			break;
		}
		case OPT_GUEST_CONNECT: {
			if (strlen(optarg) >= 108) {
				fmt_buf(err, errsz, "--guest-connect %s: path "
					"over 107 bytes", optarg);
				r = -EINVAL;
				goto out;
			}
			cfg->guest_connect = optarg;
			break;
		}
		case OPT_POOL:
			pool = optarg;
			break;
		case OPT_SECRETS_FD: {
			unsigned fd;
			if (config_parse_uint(optarg, 3, INT_MAX, &fd) < 0) {
				fmt_buf(err, errsz,
					"--secrets-fd %s: expected a "
					"descriptor number of 3 or more",
					optarg);
				r = -EINVAL;
				goto out;
			}
			cfg->secrets_fd = (int)fd;
			break;
		}
		case OPT_CA_OUT:
			cfg->ca_out = optarg;
			break;
		case OPT_UPSTREAM_CA:
			cfg->upstream_ca = optarg;
			break;
		case OPT_MAX_CONNS:
			u = &cfg->max_conns, umax = 1000000;
			break;
		case OPT_RECORD_RATE:
			u = &cfg->record_rate, umax = 10000000;
			break;
		case OPT_WORKERS:
			u = &cfg->workers, umax = PROXY_MAX_WORKERS;
			break;
		case OPT_HS_TIMEOUT:
			u = &cfg->handshake_timeout;
			break;
		case OPT_CONN_TIMEOUT:
			u = &cfg->connect_timeout;
			break;
		case OPT_IDLE_TIMEOUT:
			u = &cfg->idle_timeout;
			break;
		case OPT_DRAIN_TIMEOUT:
			u = &cfg->drain_timeout, umin = 0;
			break;
		case OPT_CHECK:
			cfg->check = true;
			break;
		case OPT_READY_FD:
			cfg->ready_fd = optarg;
			break;
		case OPT_VERBOSE:
			cfg->verbose = true;
			break;
		case OPT_HELP:
			cfg->help = true;
			break;
		case OPT_VERSION:
			cfg->version = true;
			break;
		case ':':
			fmt_buf(err, errsz, "%s: missing value", name);
			r = -EINVAL;
			goto out;
		default:
			fmt_buf(err, errsz, "unknown option %s", name);
			r = -EINVAL;
			goto out;
		}
		if (u && config_parse_uint(optarg, umin, umax, u) < 0) {
			fmt_buf(err, errsz,
				"%s %s: expected a whole number from %u to %u",
				name, optarg, umin, umax);
			r = -EINVAL;
			goto out;
		}
		continue;
	bad:
		fmt_buf(err, errsz, "%s: empty value", name);
		r = -EINVAL;
		goto out;
	}
	if (optind < argc) {
		fmt_buf(err, errsz, "unexpected argument '%s'", argv[optind]);
		r = -EINVAL;
		goto out;
	}
	if (parse_pool(pool, &cfg->synth_base, &cfg->synth_prefix) < 0) {
		fmt_buf(err, errsz,
			"--synthetic-pool %s: expected an IPv4 CIDR "
			"(prefix /8../24, host bits zero)",
			pool);
		r = -EINVAL;
		goto out;
	}
out:
	if (r < 0)
		config_free(cfg);
	return r;
nomem:
	fmt_buf(err, errsz, "out of memory");
	config_free(cfg);
	return -ENOMEM;
}

void config_free(struct proxy_config *cfg)
{
	free(cfg->policy_files);
	free(cfg->rules);
	free(cfg->listens);
	free(cfg->publishes);
	free(cfg->host_ports);
	cfg->host_ports = NULL;
	cfg->n_host_ports = 0;
	cfg->publishes = NULL;
	cfg->n_publishes = 0;
	cfg->policy_files = NULL;
	cfg->rules = NULL;
	cfg->listens = NULL;
	cfg->n_policy_files = cfg->n_rules = cfg->n_listens = 0;
}
