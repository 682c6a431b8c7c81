/* sandbox-launch's command line. No I/O: errors go to the caller's buffer. */
#include "launch.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "../parse/inbound.h"

const char launch_usage[] =
	"usage: sandbox-launch [run] [OPTIONS] AGENT [ARGS...]\n"
	"       sandbox-launch [run] [OPTIONS] [--] COMMAND [ARGS...]\n"
	"       sandbox-launch list|exec|stop|rm|prune|reset|policy|port|runs ...\n"
	"\n"
	"AGENT is claude, codex, gemini, copilot or kiro (policies/agents/): its\n"
	"command, its preset merged into the policy, its API-key variables passed\n"
	"in. Named sandboxes are managed with (each has --help):\n"
	"  list [--json]            what exists, running or not, with counts\n"
	"  exec NAME [--] CMD...    another command in a running sandbox\n"
	"  stop NAME | rm NAME | prune | reset NAME   lifecycle\n"
	"  policy NAME allow|deny|remove|cut|resume|status [SPEC]   live policy\n"
	"  port NAME add|rm SPEC | port NAME list   published ports, this run only\n"
	"  runs [--json] | runs prune --older-than AGE   past runs' logs and audit\n"
	"\n"
	"Run COMMAND in a QEMU microvm guest with the workspace (default: the\n"
	"current directory) mounted read-write at the same path. The guest's only\n"
	"network is the egress proxy, under the given policy; every connection and\n"
	"DNS query is written to the audit log. Exits with COMMAND's status\n"
	"(128+N when a signal N ended it, 125 when the sandbox itself failed).\n"
	"\n"
	"Policy (merged in this order: an agent's preset, ~/.config/sandbox/policy.yaml,\n"
	"--policy files, the workspace's .sandbox/policy.yaml, --allow/--deny;\n"
	"see docs/policy.md):\n"
	"  --policy FILE        a policy file (repeatable)\n"
	"  --allow PATTERN      allow a host pattern, host:PORT or CIDR[:PORT] (repeatable)\n"
	"  --deny PATTERN       deny one (repeatable)\n"
	"  --resolver HOST:PORT upstream DNS server for the proxy (default: system)\n"
	"  --audit FILE         audit log (default: the run directory's audit.jsonl)\n"
	"  --audit-max-bytes N  rotate the audit log at N bytes (default 16777216;\n"
	"                       0: never, else at least 8192)\n"
	"  --audit-keep K       rotated audit files kept (default 8; 0-1000); a run\n"
	"                       never rotates its own records away: when they fill\n"
	"                       all K+1 files, new work stops for the rest of the run\n"
	"  --trust              approve the workspace's .sandbox/policy.yaml without\n"
	"                       asking, even where it widens the policy\n"
	"  --no-repo-policy     ignore the workspace's .sandbox/policy.yaml\n"
	"\n"
	"Guest:\n"
	"  --workspace DIR      directory shared read-write (default: current dir)\n"
	"  --memory MB          guest memory (default 1024)\n"
	"  --cpus N             virtual CPUs (default 1 under TCG, 2 under KVM)\n"
	"  --env NAME[=VALUE]   pass a variable; NAME alone copies the host's value\n"
	"  --secret VAR@HOST[,HOST...]\n"
	"                       keep VAR's value on the host: the guest gets a\n"
	"                       random placeholder of the same shape, and the\n"
	"                       proxy puts the value in its place in request\n"
	"                       headers to HOST over TLS only (repeatable;\n"
	"                       docs/secrets.md). A policy file's secrets:\n"
	"                       list does the same; --secret wins for a VAR\n"
	"  --upstream-ca FILE   also trust FILE (PEM) for the secret hosts and\n"
	"                       the policy's inspected hosts (inspect: true,\n"
	"                       or every host with inspect: all)\n"
	"  --root               run COMMAND as root in the guest (uid 0); the host\n"
	"                       still sees only files of the invoking user and the\n"
	"                       proxy stays the only way out (docs/launcher.md)\n"
	"  --name NAME          sandbox name: hostname and audit records (default sandbox)\n"
	"                       A named sandbox (--name, 'run', or an agent) keeps its\n"
	"                       writable layer; run without COMMAND ('sandbox-launch run',\n"
	"                       'run NAME', '--name NAME') it runs its recorded command\n"
	"                       or agent again, in its recorded workspace. It\n"
	"                       remembers the --image, --memory, --cpus and --policy\n"
	"                       files it was made with: later runs reuse them, and\n"
	"                       refuse others until 'reset NAME' (see 'list')\n"
	"  --image NAME|PATH    root filesystem image instead of the host's /usr\n"
	"                       (NAME: NAME.img in the images directory, see\n"
	"                       docs/images.md)\n"
	"  -p, --publish [HOST_IP:]HOST_PORT:GUEST_PORT   publish a port of the\n"
	"                       guest's loopback on the host (repeatable); without\n"
	"                       HOST_IP on 127.0.0.1 and ::1 only. Any other HOST_IP\n"
	"                       (0.0.0.0, a LAN address) exposes the guest's server\n"
	"                       to the network. Every connection is audited\n"
	"                       ('inbound'); 'sandbox-launch port NAME' changes the\n"
	"                       set while it runs\n"
	"  --host-port PORT     the guest may reach the host's 127.0.0.1:PORT (::1 as\n"
	"                       fallback) as host.sandbox.internal:PORT; any other\n"
	"                       host port stays refused (repeatable; audited)\n"
	"  --boot-timeout S     give up when the guest is not up after S seconds (120)\n"
	"  --docker             start dockerd in the guest (as guest root) before\n"
	"                       COMMAND; containers go through the proxy too\n"
	"                       (docs/docker.md)\n"
	"  --disk-size SIZE     Docker's per-run data disk, sparse ext4: MB, or NG\n"
	"                       (default 16G; a named sandbox keeps Docker's data\n"
	"                       on its own disk instead)\n"
	"  --registry-mirror URL  a registry mirror for the guest's dockerd\n"
	"\n"
	"  --verbose            say what is started, and where the logs are\n"
	"  --timings            print the boot timeline: each host and guest step\n"
	"                       with its milliseconds\n"
	"  --help, --version\n"
	"\n"
	"Files: presets, the guest kernel and images are found in the build tree\n"
	"(<bin>/../guest, <bin>/../images, <bin>/../../policies), else where make\n"
	"install put them (<bin>/../share/sandbox/{guest,images,policies}), else\n"
	"/usr/share/sandbox/.\n"
	"Environment: SANDBOX_GUEST_DIR, SANDBOX_IMAGES_DIR and SANDBOX_PRESETS\n"
	"override those; SANDBOX_QEMU (QEMU binary), XDG_RUNTIME_DIR, XDG_STATE_HOME.\n"
	"\n"
	"Examples:\n"
	"  sandbox-launch -- sh -c 'echo hi; exit 3'\n"
	"  sandbox-launch --policy .sandbox.yaml claude\n"
	"  sandbox-launch --allow github.com --allow '**.githubusercontent.com' -- git pull\n"
	"  echo hi | sandbox-launch -- cat\n"
	"  sandbox-launch --env ANTHROPIC_API_KEY --verbose -- bash\n";

enum {
	OPT_POLICY = 256,
	OPT_ALLOW,
	OPT_DENY,
	OPT_WORKSPACE,
	OPT_RESOLVER,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_ENV,
	OPT_ROOT,
	OPT_SECRET,
	OPT_UPSTREAM_CA,
	OPT_AUDIT,
	OPT_AUDIT_MAX,
	OPT_AUDIT_KEEP,
	OPT_NAME,
	OPT_IMAGE,
	OPT_BOOT_TIMEOUT,
	OPT_TRUST,
	OPT_NO_REPO_POLICY,
	OPT_VERBOSE,
	OPT_TIMINGS,
	OPT_DOCKER,
	OPT_DISK_SIZE,
	OPT_REGISTRY_MIRROR,
	OPT_HELP,
	OPT_VERSION,
	OPT_PUBLISH = 'p',
	OPT_HOST_PORT = 300,
};

static const struct option long_opts[] = {
	{"policy", required_argument, NULL, OPT_POLICY},
	{"allow", required_argument, NULL, OPT_ALLOW},
	{"deny", required_argument, NULL, OPT_DENY},
	{"workspace", required_argument, NULL, OPT_WORKSPACE},
	{"resolver", required_argument, NULL, OPT_RESOLVER},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"env", required_argument, NULL, OPT_ENV},
	{"publish", required_argument, NULL, OPT_PUBLISH},
	{"host-port", required_argument, NULL, OPT_HOST_PORT},
	{"root", no_argument, NULL, OPT_ROOT},
	{"secret", required_argument, NULL, OPT_SECRET},
	{"upstream-ca", required_argument, NULL, OPT_UPSTREAM_CA},
	{"audit", required_argument, NULL, OPT_AUDIT},
	{"audit-max-bytes", required_argument, NULL, OPT_AUDIT_MAX},
	{"audit-keep", required_argument, NULL, OPT_AUDIT_KEEP},
	{"name", required_argument, NULL, OPT_NAME},
	{"image", required_argument, NULL, OPT_IMAGE},
	{"boot-timeout", required_argument, NULL, OPT_BOOT_TIMEOUT},
	{"trust", no_argument, NULL, OPT_TRUST},
	{"no-repo-policy", no_argument, NULL, OPT_NO_REPO_POLICY},
	{"verbose", no_argument, NULL, OPT_VERBOSE},
	{"timings", no_argument, NULL, OPT_TIMINGS},
	{"docker", no_argument, NULL, OPT_DOCKER},
	{"disk-size", required_argument, NULL, OPT_DISK_SIZE},
	{"registry-mirror", required_argument, NULL, OPT_REGISTRY_MIRROR},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{0},
};

bool launch_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

bool launch_env_valid(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s && *s != '='; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int push(void *arrp, size_t *n, size_t elem)
{
	void **arr = arrp;
	void *p = realloc(*arr, (*n + 1) * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	return 0;
}

enum launch_opts_status launch_opts_parse(int argc, char **argv,
					  struct launch_opts *o, char *err,
					  size_t errsz)
{
	memset(o, 0, sizeof(*o));
	o->name = "sandbox";
	o->boot_timeout = 120;
	o->audit_max_bytes = LAUNCH_AUDIT_MAX_BYTES;
	o->audit_keep = LAUNCH_AUDIT_KEEP;
	err[0] = '\0';
	optind = 0; /* glibc: full re-initialisation, so tests can call again */
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+p:", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_POLICY:
			if (push(&o->policies, &o->n_policies, sizeof(char *)))
				return LAUNCH_OPTS_NOMEM;
			o->policies[o->n_policies++] = optarg;
			break;
		case OPT_ALLOW:
		case OPT_DENY:
			if (!*optarg) {
				fmt_buf(err, errsz, "--%s needs a pattern",
					c == OPT_ALLOW ? "allow" : "deny");
				return LAUNCH_OPTS_USAGE;
			}
			if (push(&o->rules, &o->n_rules, sizeof(*o->rules)))
				return LAUNCH_OPTS_NOMEM;
			o->rules[o->n_rules++] = (struct launch_rule){
				.allow = c == OPT_ALLOW, .spec = optarg};
			break;
		case OPT_ENV:
			if (!launch_env_valid(optarg)) {
				fmt_buf(err, errsz,
					"--env %s: expected NAME or NAME=VALUE "
					"(NAME: letters, digits, _)",
					optarg);
				return LAUNCH_OPTS_USAGE;
			}
			if (push(&o->env, &o->n_env, sizeof(char *)))
				return LAUNCH_OPTS_NOMEM;
			o->env[o->n_env++] = optarg;
			break;
		case OPT_PUBLISH: {
			struct publish_spec ps;
			const char *why = NULL;
			if (publish_spec_parse(optarg, &ps, &why) < 0) {
				fmt_buf(err, errsz, "--publish %s: %s", optarg,
					why);
				return LAUNCH_OPTS_USAGE;
			}
			if (push(&o->publish, &o->n_publish, sizeof(char *)))
				return LAUNCH_OPTS_NOMEM;
			o->publish[o->n_publish++] = optarg;
			break;
		}
		case OPT_HOST_PORT: {
			unsigned long v = 0;
			const char *s = optarg;
			bool ok = *s && *s != '0' && strlen(s) <= 5;
			for (; ok && *s; s++) {
				ok = *s >= '0' && *s <= '9';
				v = v * 10 + (unsigned long)(*s - '0');
			}
			if (!ok || v == 0 || v > 65535) {
				fmt_buf(err, errsz, "--host-port %s: expected a "
					"port number 1-65535", optarg);
				return LAUNCH_OPTS_USAGE;
			}
			if (push(&o->host_ports, &o->n_host_ports,
				 sizeof(char *)))
				return LAUNCH_OPTS_NOMEM;
			o->host_ports[o->n_host_ports++] = optarg;
			break;
		}
		case OPT_ROOT:
			o->root = true;
			break;
		case OPT_SECRET:
			if (!launch_secret_valid(optarg)) {
				fmt_buf(err, errsz,
					"--secret %s: expected VAR@HOST[,HOST...] "
					"(VAR: letters, digits, _; HOST: a DNS "
					"name)",
					optarg);
				return LAUNCH_OPTS_USAGE;
			}
			if (push(&o->secrets, &o->n_secrets, sizeof(char *)))
				return LAUNCH_OPTS_NOMEM;
			o->secrets[o->n_secrets++] = optarg;
			break;
		case OPT_UPSTREAM_CA:
			o->upstream_ca = optarg;
			break;
		case OPT_WORKSPACE:
			o->workspace = optarg;
			break;
		case OPT_RESOLVER:
			o->resolver = optarg;
			break;
		case OPT_AUDIT:
			o->audit = optarg;
			break;
		case OPT_AUDIT_MAX:
			if (parse_uint(optarg, 0, UINT_MAX, &o->audit_max_bytes) ||
			    (o->audit_max_bytes && o->audit_max_bytes < 8192)) {
				fmt_buf(err, errsz,
					"--audit-max-bytes %s: 0 (never rotate) "
					"or a number of bytes, at least 8192",
					optarg);
				return LAUNCH_OPTS_USAGE;
			}
			break;
		case OPT_AUDIT_KEEP:
			if (parse_uint(optarg, 0, 1000, &o->audit_keep)) {
				fmt_buf(err, errsz,
					"--audit-keep %s: a number from 0 to 1000",
					optarg);
				return LAUNCH_OPTS_USAGE;
			}
			break;
		case OPT_NAME:
			if (!launch_name_valid(optarg)) {
				fmt_buf(err, errsz,
					"--name %s: use 1-32 of A-Z a-z 0-9 - _",
					optarg);
				return LAUNCH_OPTS_USAGE;
			}
			o->name = optarg;
			break;
		case OPT_IMAGE:
			if (!*optarg) {
				fmt_buf(err, errsz, "--image needs a NAME or a PATH");
				return LAUNCH_OPTS_USAGE;
			}
			o->image = optarg;
			break;
		case OPT_MEMORY:
			if (parse_uint(optarg, 128, 65536, &o->memory_mb)) {
				fmt_buf(err, errsz,
					"--memory %s: a number of MB, 128..65536",
					optarg);
				return LAUNCH_OPTS_USAGE;
			}
			break;
		case OPT_CPUS:
			if (parse_uint(optarg, 1, 64, &o->cpus)) {
				fmt_buf(err, errsz, "--cpus %s: a number 1..64",
					optarg);
				return LAUNCH_OPTS_USAGE;
			}
			break;
		case OPT_BOOT_TIMEOUT:
			if (parse_uint(optarg, 1, 3600, &o->boot_timeout)) {
				fmt_buf(err, errsz,
					"--boot-timeout %s: seconds, 1..3600",
					optarg);
				return LAUNCH_OPTS_USAGE;
			}
			break;
		case OPT_TRUST:
			o->trust = true;
			break;
		case OPT_NO_REPO_POLICY:
			o->no_repo_policy = true;
			break;
		case OPT_VERBOSE:
			o->verbose = true;
			break;
		case OPT_TIMINGS:
			o->timings = true;
			break;
		case OPT_HELP:
			o->help = true;
			return LAUNCH_OPTS_OK;
		case OPT_DOCKER:
			o->docker = true;
			break;
		case OPT_DISK_SIZE:
			if (launch_disk_size_parse(optarg, &o->disk_size_mb)) {
				fmt_buf(err, errsz,
					"--disk-size %s: MB (e.g. 4096) or "
					"GB with G (e.g. 16G), 1G..1024G",
					optarg);
				return LAUNCH_OPTS_USAGE;
			}
			break;
		case OPT_REGISTRY_MIRROR:
			if (!launch_mirror_valid(optarg)) {
				fmt_buf(err, errsz,
					"--registry-mirror %s: an http:// or "
					"https:// URL of A-Z a-z 0-9 . - _ : / "
					"~ %%, under 256 bytes",
					optarg);
				return LAUNCH_OPTS_USAGE;
			}
			o->registry_mirror = optarg;
			break;
		case OPT_VERSION:
			o->version = true;
			return LAUNCH_OPTS_OK;
		case ':':
			fmt_buf(err, errsz, "%s needs a value", argv[optind - 1]);
			return LAUNCH_OPTS_USAGE;
		default:
			if (optopt >= OPT_POLICY)
				fmt_buf(err, errsz, "%s needs a value",
					argv[optind - 1]);
			else
				fmt_buf(err, errsz, "unknown option %s",
					argv[optind - 1]);
			return LAUNCH_OPTS_USAGE;
		}
	}
	if (optind >= argc) {
		fmt_buf(err, errsz, "no command given (try --help)");
		o->no_command = true;
		return LAUNCH_OPTS_USAGE;
	}
	o->cmd = argv + optind;
	o->cmd_argc = argc - optind;
	if (o->cmd_argc > 1024) {
		fmt_buf(err, errsz, "too many arguments (at most 1024)");
		return LAUNCH_OPTS_USAGE;
	}
	return LAUNCH_OPTS_OK;
}

void launch_opts_free(struct launch_opts *o)
{
	free(o->policies);
	free(o->rules);
	free(o->env);
	free(o->publish);
	free(o->host_ports);
	o->host_ports = NULL;
	o->n_host_ports = 0;
	o->publish = NULL;
	o->n_publish = 0;
	free(o->secrets);
	o->secrets = NULL;
	o->policies = NULL;
	o->rules = NULL;
	o->env = NULL;
}
