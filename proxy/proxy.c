/* Small services of the proxy context: shared policy references, the
 * self-connection check, the drain across workers. The fail-closed audit path is
 * record.c. */
#include "proxy.h"

#include <event2/event.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "../auditlog/audit.h"
#include "ipclass.h"
#include "conn.h"
#include "listener.h"
#include "worker.h"

struct policy_ref *policy_ref_get(struct policy_ref *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	return r;
}

void policy_ref_put(struct policy_ref *r)
{
	/* acq_rel: the last holder sees every other holder's reads done
	 * before it frees. */
	if (r && atomic_fetch_sub_explicit(&r->refs, 1,
					   memory_order_acq_rel) == 1) {
		policy_free(r->policy);
		free(r);
	}
}

void proxy_log(struct proxy *px, const char *fmt, ...)
{
	if (!px->cfg->verbose)
		return;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* Verbose lines may quote what a guest sent (names, reasons). */
	fputs("sandbox-proxy: ", stderr);
	term_fputs(buf, stderr, false);
	fputc('\n', stderr);
}

bool proxy_is_self(const struct proxy *px, const struct ip_addr *a,
		   uint16_t port)
{
	struct ip_classification cl;
	ipclass_classify(a, &cl);
	const struct ip_addr *plain = cl.embedded ? &cl.inner : a;
	for (size_t i = 0; i < px->n_self; i++) {
		const struct self_addr *s = &px->self[i];
		if (s->port != port)
			continue;
		if (ip_equal(plain, &s->addr) || cl.cls == IPC_UNSPECIFIED)
			return true;
		if (!s->wildcard)
			continue;
		if (cl.cls == IPC_LOOPBACK)
			return true;
		for (size_t j = 0; j < px->n_local; j++)
			if (ip_equal(plain, &px->local_addrs[j]))
				return true;
	}
	return false;
}

/* Only worker 0 ends the loops (worker.c: it may be waiting for the
 * others in worker_call_all, so no other worker may end them under it). */
static void drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	proxy_drain_check(arg);
}

void proxy_conn_gone(struct worker *w)
{
	struct proxy *px = w->px;
	listeners_fd_freed(w);
	if (!px->draining || px->n_conns != 0)
		return;
	if (w->idx == 0)
		proxy_drain_check(px);
	else
		worker_post0(px, drain_check_cb);
}

void proxy_drain_check(struct proxy *px)
{
	if (!px->stopping && px->n_conns == 0)
		workers_stop(px);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	(void)fd;
	(void)what;
	conn_close_all(px, "proxy shutting down (drain timeout)");
	workers_stop(px);
}

void proxy_drain(struct proxy *px)
{
	px->draining = true;
	listeners_drain(px);
	/* DNS streams idle by nature: nothing to wait for. */
	conn_close_idle_dns(px, "proxy shutting down");
	if (px->n_conns == 0) {
		proxy_drain_check(px);
		return;
	}
	struct timeval tv = {(time_t)px->cfg->drain_timeout, 0};
	px->drain_timer = evtimer_new(px->base, on_drain_timeout, px);
	if (px->drain_timer)
		evtimer_add(px->drain_timer, &tv);
	else
		on_drain_timeout(-1, 0, px);
}

int proxy_audit_policy(struct proxy *px, const char *decision,
		       const char *reason)
{
	struct audit_record r;
	audit_record_init(&r);
	r.event = "policy";
	r.decision = decision;
	r.reason = reason;
	return proxy_audit_sync(px, &r);
}
