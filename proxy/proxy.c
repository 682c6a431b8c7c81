/* Small services of the proxy context: shared policy references, the
 * self-connection check, drain bookkeeping. The fail-closed audit path is
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
#include "listener.h"

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

void proxy_conn_gone(struct proxy *px)
{
	listeners_fd_freed(px);
	if (px->draining && px->n_conns == 0)
		event_base_loopexit(px->base, NULL);
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
