/* Host services by port (policy.h, POLICY_HOST_INTERNAL): the set of host
 * loopback ports a policy opens, and the one name that reaches them. */
#include "policy_internal.h"

#include <errno.h>
#include <string.h>

#include "../common/util.h"

int policy_builder_add_host_port(struct policy_builder *b, uint16_t port,
				 const char *origin, unsigned line,
				 unsigned col, struct policy_errors *errs)
{
	if (port == 0) {
		policy_err(b, errs, origin, line, col,
			   "host port must be a number 1-65535");
		return -EINVAL;
	}
	for (size_t i = 0; i < b->n_host_ports; i++)
		if (b->host_ports[i].port == port)
			return 0;
	if (b->n_host_ports >= POLICY_HOST_PORTS_MAX) {
		policy_err(b, errs, origin, line, col,
			   "more than %d host ports", POLICY_HOST_PORTS_MAX);
		return -E2BIG;
	}
	const char *f = origin ? arena_strndup(&b->arena, origin,
					       strlen(origin))
			       : NULL;
	b->host_ports[b->n_host_ports++] =
		(struct host_port){.port = port, .file = f, .line = line,
				   .col = col};
	return 0;
}

static const struct host_port *find(const struct policy *p, uint16_t port)
{
	for (size_t i = 0; p && i < p->n_host_ports; i++)
		if (p->host_ports[i].port == port)
			return &p->host_ports[i];
	return NULL;
}

bool policy_host_port_open(const struct policy *p, uint16_t port)
{
	return port != 0 && find(p, port) != NULL;
}

const uint16_t *policy_host_ports(const struct policy *p, uint16_t *buf,
				  size_t bufn, size_t *n)
{
	*n = 0;
	for (size_t i = 0; p && i < p->n_host_ports && *n < bufn; i++)
		buf[(*n)++] = p->host_ports[i].port;
	return buf;
}

bool policy_host_internal_decide(const struct policy *p, const char *name,
				 uint16_t port, struct policy_verdict *v)
{
	if (strcmp(name, POLICY_HOST_INTERNAL) != 0)
		return false;
	memset(v, 0, sizeof(*v));
	/* A lookup (port 0) is answered when some port is open. */
	const struct host_port *h = port ? find(p, port)
			    : p->n_host_ports ? &p->host_ports[0] : NULL;
	if (!h) {
		v->decision = DECISION_DENY;
		v->rule.file = "default";
		v->rule.pattern = POLICY_HOST_INTERNAL " on a port not in host_ports";
		return true;
	}
	v->decision = DECISION_ALLOW;
	v->rule.file = h->file ? h->file : "--host-port";
	v->rule.line = h->line;
	v->rule.col = h->col;
	v->rule.pattern = POLICY_HOST_INTERNAL;
	v->rule.allow = true;
	v->rule.protocols = POLICY_PROTO_ALL;
	return true;
}
