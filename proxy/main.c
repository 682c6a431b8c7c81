/* sandbox-proxy: the host-side egress proxy of one sandbox.
 *
 * Set-up (policy, audit log, resolver, listeners) may fail and exit; after
 * "ready" the proxy never exits because of a peer: a misbehaving connection
 * is closed and logged. SIGHUP builds a new policy from the same sources
 * and swaps it in (connections keep the policy they were decided under);
 * SIGTERM/SIGINT stop accepting and drain for up to --drain-timeout. */
#include <event2/event.h>
#include <event2/thread.h>
#include <ifaddrs.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "../common/ready_fd.h"
#include "../common/util.h"
#include "../auditlog/audit.h"
#include "config.h"
#include "conn.h"
#include "policy_socket.h"
#include "dns_cache.h"
#include "fdlimit.h"
#include "inbound.h"
#include "listener.h"
#include "proxy.h"
#include "resolver.h"
#include "synth.h"
#include "intercept.h"
#include "secrets.h"
#include "worker.h"

#define VERSION "0.1.0"
/* Names whose answers are kept (see dns_cache.h); under 1 MiB when full. */
#define DNS_CACHE_MAX 1024

/* --presets, else the shared default (policy_default_preset_dir). */
static const char *find_presets(const struct proxy_config *cfg, char *buf,
				size_t bufsz)
{
	if (cfg->presets_dir)
		return cfg->presets_dir;
	return policy_default_preset_dir(buf, bufsz);
}

/* Build a fresh policy from every configured source, and the runtime
 * rules of the control socket (none at start). */
static struct policy *build_policy(struct proxy *px,
				   struct policy_errors *errs)
{
	const struct proxy_config *cfg = px->cfg;
	struct policy_builder *b = policy_builder_new(px->presets_dir);
	if (!b)
		return NULL;
	for (size_t i = 0; i < cfg->n_policy_files; i++)
		policy_builder_add_file(b, cfg->policy_files[i], errs);
	for (size_t i = 0; i < cfg->n_rules; i++)
		policy_builder_add_rule(b, cfg->rules[i].allow,
					cfg->rules[i].spec,
					cfg->rules[i].allow ? "--allow"
							    : "--deny",
					errs);
	for (size_t i = 0; i < cfg->n_host_ports; i++)
		policy_builder_add_host_port(b, cfg->host_ports[i],
					     "--host-port", 0, 0, errs);
	control_add_rules(px->control, b, errs);
	return policy_builder_finish(b, errs);
}

static void print_errors(const struct policy_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		fprintf(stderr, "%s\n", errs->msgs[i]);
	if (errs->count == 0)
		fprintf(stderr, "sandbox-proxy: cannot build the policy "
				"(out of memory)\n");
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct proxy *px = arg;
	(void)sig;
	(void)what;
	if (!proxy_may_act(px)) {
		/* A reload is a decision; it waits for a writable log. */
		fprintf(stderr, "sandbox-proxy: reload refused: the audit log "
				"cannot be written; keeping the previous "
				"policy\n");
		return;
	}
	struct policy_errors errs = {0};
	struct policy *p = build_policy(px, &errs);
	if (!p) {
		fprintf(stderr, "sandbox-proxy: reload failed; keeping the "
				"previous policy:\n");
		print_errors(&errs);
		char reason[600];
		fmt_buf(reason, sizeof(reason),
			"reload failed, previous policy kept: %s",
			errs.count ? errs.msgs[0] : "out of memory");
		proxy_audit_policy(px, "deny", reason);
		policy_errors_free(&errs);
		return;
	}
	policy_errors_free(&errs);
	if (control_is_cut(px->control)) {
		/* The sources are valid; they apply when egress resumes. */
		policy_free(p);
		fprintf(stderr, "sandbox-proxy: policy reloaded (egress is "
				"cut until resume)\n");
		proxy_audit_policy(px, "deny", "reloaded; egress stays cut");
		return;
	}
	/* On record before it takes effect: a reload may widen. */
	if (proxy_audit_policy(px, "allow", "reloaded") < 0) {
		policy_free(p);
		fprintf(stderr, "sandbox-proxy: reload refused: the audit log "
				"cannot be written; keeping the previous "
				"policy\n");
		return;
	}
	/* Swapped under the policy lock (shared.c); live connections on
	 * every worker hold their own reference to the old policy. */
	if (control_swap_policy(px, p) < 0) {
		proxy_audit_policy(px, "deny",
			     "reload failed, previous policy kept: out of memory");
		return;
	}
	fprintf(stderr, "sandbox-proxy: policy reloaded\n");
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct proxy *px = arg;
	(void)what;
	if (px->draining)
		return;
	fprintf(stderr, "sandbox-proxy: %s: draining %zu connection(s)\n",
		strsignal(sig), conn_count(px));
	proxy_drain(px);
}

static void collect_local_addrs(struct proxy *px)
{
	struct ifaddrs *ifs;
	if (getifaddrs(&ifs) < 0)
		return;
	for (struct ifaddrs *i = ifs; i && px->n_local < PROXY_MAX_SELF;
	     i = i->ifa_next) {
		uint16_t port;
		if (i->ifa_addr && (i->ifa_addr->sa_family == AF_INET ||
				    i->ifa_addr->sa_family == AF_INET6) &&
		    ip_from_sockaddr((struct sockaddr_storage *)i->ifa_addr,
				     &px->local_addrs[px->n_local],
				     &port) == 0)
			px->n_local++;
	}
	freeifaddrs(ifs);
}

static int run(struct proxy_config *cfg)
{
	char presets_buf[PATH_MAX];
	struct proxy px = {.cfg = cfg};
	int ready_fd = -1;
	if (cfg->ready_fd && !cfg->check &&
	    ready_fd_parse(cfg->ready_fd, &ready_fd) < 0)
		die("--ready-fd %s: not an open descriptor above 2",
		    cfg->ready_fd);
	px.presets_dir = find_presets(cfg, presets_buf, sizeof(presets_buf));

	struct policy_errors errs = {0};
	struct policy *p = build_policy(&px, &errs);
	if (!p) {
		print_errors(&errs);
		policy_errors_free(&errs);
		return 1;
	}
	policy_errors_free(&errs);
	if (cfg->check) {
		policy_free(p);
		printf("ok\n");
		return 0;
	}
	if (cfg->n_listens == 0) {
		policy_free(p);
		fprintf(stderr, "sandbox-proxy: nothing to do: give --listen "
				"or --http-proxy\n");
		return 2;
	}
	px.policy = calloc(1, sizeof(*px.policy));
	if (!px.policy)
		die("out of memory");
	px.policy->policy = p;
	atomic_init(&px.policy->refs, 1);

	int err = 0;
	px.audit = audit_open(cfg->audit_path, cfg->sandbox, &err);
	if (!px.audit)
		die("--audit %s: %s", cfg->audit_path, strerror(-err));
	audit_set_rotation(px.audit, cfg->audit_max_bytes, cfg->audit_keep);
	if ((err = proxy_audit_open(&px)) < 0)
		die("--audit %s: cannot start the writer: %s", cfg->audit_path,
		    strerror(-err));
	pthread_mutex_init(&px.policy_lock, NULL);
	pthread_mutex_init(&px.shared_lock, NULL);
	px.dns_cache = dns_cache_new(DNS_CACHE_MAX);
	if (!px.dns_cache)
		die("cannot create the DNS cache");
	px.synth = synth_new(&cfg->synth_base, cfg->synth_prefix);
	if (!px.synth)
		die("cannot create the synthetic address pool");
	collect_local_addrs(&px);
	fdlimit_setup(cfg->max_conns);
	if (cfg->secrets_fd >= 0) {
		char msg[400];
		if (secrets_load_fd(cfg->secrets_fd, &px.secrets, msg,
				    sizeof(msg)) < 0)
			die("--secrets-fd %d: %s", cfg->secrets_fd, msg);
		secrets_describe(px.secrets, stderr);
	}
	/* Interception exists when a secret or an inspected host needs it.
	 * The inspected hosts are the starting policy's: the CA's name
	 * constraints are fixed now, so a reload cannot widen them. */
	size_t n_insp = 0, n_all = 0;
	const struct policy_inspect *insp = policy_inspected(p, &n_insp);
	const struct policy_inspect *all_at = NULL;
	bool all = policy_inspects_all(p, &all_at);
	const char *const *all_names = policy_ca_names(p, &n_all);
	if (secrets_table(px.secrets) || n_insp || all) {
		char msg[400];
		const char *names[ICPT_INSPECT_MAX];
		if (n_insp > ICPT_INSPECT_MAX)
			die("more than %d inspected hosts", ICPT_INSPECT_MAX);
		for (size_t i = 0; i < n_insp; i++) {
			names[i] = insp[i].name;
			fprintf(stderr, "sandbox-proxy: inspect %s (%s:%u)\n",
				insp[i].name, insp[i].file, insp[i].line);
		}
		if (all)
			fprintf(stderr, "sandbox-proxy: inspect all: %zu "
					"names (%s:%u)\n",
				n_all, all_at->file, all_at->line);
		px.icpt = intercept_new(px.secrets, names, n_insp, all,
					all_names, n_all, cfg->upstream_ca,
					cfg->ca_out, msg, sizeof(msg));
		if (!px.icpt)
			die("%s", msg);
	}
	unsigned n_workers = cfg->workers ? cfg->workers : workers_default();
	if (px.icpt && n_workers > 1) {
		/* The interception sessions and their certificate cache live
		 * on one loop (intercept.c). */
		if (cfg->workers > 1)
			fprintf(stderr, "sandbox-proxy: --workers %u: one "
					"worker with TLS interception\n",
				cfg->workers);
		n_workers = 1;
	}
	/* Before any base exists: event_base_once() and loopexit from
	 * another thread (worker.c) need libevent's locks. */
	if (n_workers > 1 && evthread_use_pthreads() < 0)
		die("cannot enable libevent's threads");
	{
		char msg[400];
		if (workers_init(&px, n_workers, msg, sizeof(msg)) < 0)
			die("%s", msg);
	}

	signal(SIGPIPE, SIG_IGN);
	px.sig_hup = evsignal_new(px.base, SIGHUP, on_sighup, &px);
	px.sig_term = evsignal_new(px.base, SIGTERM, on_sigterm, &px);
	px.sig_int = evsignal_new(px.base, SIGINT, on_sigterm, &px);
	if (!px.sig_hup || !px.sig_term || !px.sig_int ||
	    evsignal_add(px.sig_hup, NULL) < 0 ||
	    evsignal_add(px.sig_term, NULL) < 0 ||
	    evsignal_add(px.sig_int, NULL) < 0)
		die("cannot install signal handlers");

	for (size_t i = 0; i < cfg->n_listens; i++) {
		char msg[400];
		if (listener_open(&px, &cfg->listens[i], msg, sizeof(msg)) <
		    0) {
			listeners_close(&px);
			die("%s", msg);
		}
	}
	for (size_t i = 0; i < cfg->n_publishes; i++) {
		char msg[400];
		if (inbound_add(&px, cfg->publishes[i], msg, sizeof(msg)) < 0) {
			inbound_close_all(&px);
			listeners_close(&px);
			die("%s", msg);
		}
	}
	if (cfg->control_path) {
		char msg[400];
		px.control = control_open(&px, cfg->control_path, build_policy,
					  msg, sizeof(msg));
		if (!px.control) {
			listeners_close(&px);
			die("%s", msg);
		}
		fprintf(stderr, "sandbox-proxy: control socket unix:%s\n",
			cfg->control_path);
	}
	if (proxy_audit_policy(&px, "allow", "loaded") < 0) {
		listeners_close(&px);
		die("--audit %s: cannot write the audit log", cfg->audit_path);
	}
	if ((err = workers_start(&px)) < 0) {
		listeners_close(&px);
		die("cannot start the workers: %s", strerror(-err));
	}
	fprintf(stderr, "sandbox-proxy: ready (%u worker%s)\n", px.n_workers,
		px.n_workers == 1 ? "" : "s");
	fflush(stderr);
	/* The launcher waits on this pipe; if it is gone, nobody waits. */
	if (ready_fd_send(ready_fd) < 0 && cfg->verbose)
		fprintf(stderr, "sandbox-proxy: --ready-fd: nobody listens\n");

	event_base_dispatch(px.base);
	workers_stop(&px); /* if worker 0's loop ended another way */
	workers_join(&px);

	listeners_close(&px);
	inbound_close_all(&px);
	control_close(px.control);
	px.control = NULL;
	conn_shutdown(&px, "proxy shutting down");
	if (px.drain_timer)
		event_free(px.drain_timer);
	event_free(px.sig_hup);
	event_free(px.sig_term);
	event_free(px.sig_int);
	intercept_free(px.icpt);
	secrets_free(px.secrets);
	dns_cache_free(px.dns_cache);
	synth_free(px.synth);
	policy_ref_put(px.policy);
	proxy_audit_close(&px);
	audit_close(px.audit);
	workers_free(&px);
	pthread_mutex_destroy(&px.policy_lock);
	pthread_mutex_destroy(&px.shared_lock);
	fprintf(stderr, "sandbox-proxy: exiting\n");
	return 0;
}

int main(int argc, char **argv)
{
	program_name = "sandbox-proxy";
	struct proxy_config cfg;
	char err[400];
	if (config_parse(argc, argv, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandbox-proxy: %s\n%s", err, config_usage);
		return 2;
	}
	int rc;
	if (cfg.help) {
		fputs(config_usage, stdout);
		fdlimit_help(stdout);
		rc = 0;
	} else if (cfg.version) {
		printf("sandbox-proxy " VERSION "\n");
		rc = 0;
	} else {
		rc = run(&cfg);
	}
	config_free(&cfg);
	return rc;
}
