/* The runtime control socket (control.h). It lives on worker 0 (worker.h):
 * a command runs to completion inside one callback; the swap itself is
 * made under the policy lock every worker takes its references under
 * (shared.c), so no worker sees it half-done. */
#include "policy_socket.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "../common/unix_listen.h"
#include "../common/util.h"
#include "../auditlog/audit.h"
#include "conn.h"
#include "inbound.h"
#include "proxy.h"

#define CONTROL_MAX_LINE 1024
#define CONTROL_MAX_CLIENTS 16
#define CONTROL_MAX_RULES 4096
#define RUNTIME_ORIGIN "runtime"
#define CUT_ORIGIN "cut"

struct runtime_rule {
	bool allow;
	char *spec; /* owned */
};

struct control_client {
	struct control *ctl;
	struct control_client *next;
	struct bufferevent *bev; /* owned */
	bool closing;            /* EOF or error seen: free once flushed */
};

struct control {
	struct proxy *px;
	control_build_fn build;
	int fd;
	struct event *ev; /* owned */
	char path[108];
	struct control_client *clients; /* owned list */
	size_t n_clients;
	struct runtime_rule *rules; /* owned */
	size_t n_rules;
	bool cut;
};

void control_add_rules(const struct control *c, struct policy_builder *b,
		       struct policy_errors *errs)
{
	for (size_t i = 0; c && i < c->n_rules; i++)
		policy_builder_add_rule(b, c->rules[i].allow, c->rules[i].spec,
					RUNTIME_ORIGIN, errs);
}

bool control_is_cut(const struct control *c)
{
	return c && c->cut;
}

struct policy *control_cut_policy(const char *presets_dir)
{
	struct policy_builder *b = policy_builder_new(presets_dir);
	if (!b)
		return NULL;
	/* Everything is denied by default anyway; the named any-port rules
	 * make every refusal while cut (DNS, any name or address on any port)
	 * say "cut" in the audit log instead of "default". */
	static const char *const all[] = {"**:any", "*:any", "0.0.0.0/0:any",
					  "::/0:any"};
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		policy_builder_add_rule(b, false, all[i], CUT_ORIGIN, NULL);
	return policy_builder_finish(b, NULL);
}

int control_swap_policy(struct proxy *px, struct policy *p)
{
	struct policy_ref *ref = calloc(1, sizeof(*ref));
	if (!ref) {
		policy_free(p);
		return -ENOMEM;
	}
	ref->policy = p;
	atomic_init(&ref->refs, 1);
	/* Every worker takes its next connection's reference under the
	 * same lock (shared.c). */
	proxy_policy_set(px, ref);
	/* A DNS stream decides with the policy it was accepted under and
	 * the guest keeps one open for all UDP queries; an idle one is
	 * closed (the guest reopens it) so the change reaches DNS too. */
	conn_close_idle_dns(px, "policy changed");
	return 0;
}

/* Rebuild from the sources and the runtime rules; swap unless cut.
 * Returns 0 or -EINVAL with the first error in why. */
static int rebuild(struct control *ctl, char *why, size_t whysz)
{
	struct policy_errors errs = {0};
	struct policy *p = ctl->build(ctl->px, &errs);
	if (!p) {
		fmt_buf(why, whysz, "%s",
			errs.count ? errs.msgs[0] : "out of memory");
		policy_errors_free(&errs);
		return -EINVAL;
	}
	policy_errors_free(&errs);
	if (ctl->cut) {
		policy_free(p); /* validated; applied on resume */
		return 0;
	}
	if (control_swap_policy(ctl->px, p) < 0) {
		fmt_buf(why, whysz, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void reply(struct control_client *cl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void reply(struct control_client *cl, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\n", 1);
}

/* A SPEC is one word of printable ASCII; the policy parser decides the
 * rest. Control characters would forge lines in replies and logs. */
static bool spec_ok(const char *s)
{
	if (!*s || strlen(s) > 300)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return false;
	return true;
}

static void cmd_add(struct control_client *cl, bool allow, const char *spec)
{
	struct control *ctl = cl->ctl;
	const char *verb = allow ? "allow" : "deny";
	if (!spec_ok(spec)) {
		reply(cl, "error %s needs one SPEC (HOST, HOST:PORTS, CIDR or "
			  "CIDR:PORTS)", verb);
		return;
	}
	if (ctl->n_rules >= CONTROL_MAX_RULES) {
		reply(cl, "error too many runtime rules (%d)", CONTROL_MAX_RULES);
		return;
	}
	struct runtime_rule *n =
		realloc(ctl->rules, (ctl->n_rules + 1) * sizeof(*n));
	char *copy = strdup(spec);
	if (n)
		ctl->rules = n;
	if (!n || !copy) {
		free(copy);
		reply(cl, "error out of memory");
		return;
	}
	ctl->rules[ctl->n_rules++] = (struct runtime_rule){allow, copy};
	char why[600];
	if (rebuild(ctl, why, sizeof(why)) < 0) {
		free(ctl->rules[--ctl->n_rules].spec);
		reply(cl, "error %s %s: %s (policy unchanged)", verb, spec, why);
		return;
	}
	char reason[400];
	fmt_buf(reason, sizeof(reason), "runtime %s %s%s", verb, spec,
		ctl->cut ? " (egress is cut: applies on resume)" : "");
	if (proxy_audit_policy(ctl->px, verb, reason) < 0 && allow) {
		/* A widening nobody can read about does not stay. */
		free(ctl->rules[--ctl->n_rules].spec);
		rebuild(ctl, why, sizeof(why));
		reply(cl, "error audit log unwritable; policy unchanged");
		return;
	}
	reply(cl, "ok %s %s%s", verb, spec,
	      ctl->cut ? " (egress is cut: applies on resume)" : "");
}

static void cmd_remove(struct control_client *cl, const char *arg)
{
	struct control *ctl = cl->ctl;
	int kind = -1; /* -1 both, 1 allow, 0 deny */
	if (!strncmp(arg, "allow ", 6))
		kind = 1, arg += 6;
	else if (!strncmp(arg, "deny ", 5))
		kind = 0, arg += 5;
	if (!spec_ok(arg)) {
		reply(cl, "error remove needs [allow|deny] SPEC");
		return;
	}
	size_t kept = 0, removed = 0;
	struct runtime_rule *gone = calloc(ctl->n_rules + 1, sizeof(*gone));
	if (!gone) {
		reply(cl, "error out of memory");
		return;
	}
	for (size_t i = 0; i < ctl->n_rules; i++) {
		struct runtime_rule r = ctl->rules[i];
		if (!strcmp(r.spec, arg) && (kind < 0 || kind == r.allow))
			gone[removed++] = r;
		else
			ctl->rules[kept++] = r;
	}
	if (!removed) {
		free(gone);
		reply(cl, "error no runtime rule %s", arg);
		return;
	}
	ctl->n_rules = kept;
	char why[600];
	if (rebuild(ctl, why, sizeof(why)) < 0) {
		/* Put them back: the policy in force still has them. */
		for (size_t i = 0; i < removed; i++)
			ctl->rules[ctl->n_rules++] = gone[i];
		free(gone);
		reply(cl, "error remove %s: %s (policy unchanged)", arg, why);
		return;
	}
	char reason[400];
	fmt_buf(reason, sizeof(reason), "runtime remove %s (%zu rule%s)", arg,
		removed, removed == 1 ? "" : "s");
	if (proxy_audit_policy(ctl->px, "deny", reason) < 0) {
		/* Removing a deny rule widens: not without a record. */
		for (size_t i = 0; i < removed; i++)
			ctl->rules[ctl->n_rules++] = gone[i];
		free(gone);
		rebuild(ctl, why, sizeof(why));
		reply(cl, "error audit log unwritable; policy unchanged");
		return;
	}
	for (size_t i = 0; i < removed; i++)
		free(gone[i].spec);
	free(gone);
	reply(cl, "ok removed %zu rule%s %s", removed, removed == 1 ? "" : "s",
	      arg);
}

static void cmd_cut(struct control_client *cl)
{
	struct control *ctl = cl->ctl;
	struct proxy *px = ctl->px;
	if (ctl->cut) {
		reply(cl, "ok already cut");
		return;
	}
	struct policy *p = control_cut_policy(px->presets_dir);
	if (!p || control_swap_policy(px, p) < 0) {
		reply(cl, "error out of memory; egress not cut");
		return;
	}
	ctl->cut = true;
	size_t n = conn_close_all(px, "egress cut from the host");
	char reason[200];
	fmt_buf(reason, sizeof(reason),
		"cut: all egress denied, %zu connection%s closed", n,
		n == 1 ? "" : "s");
	proxy_audit_policy(ctl->px, "deny", reason);
	reply(cl, "ok cut: %zu connection%s closed", n, n == 1 ? "" : "s");
}

static void cmd_resume(struct control_client *cl)
{
	struct control *ctl = cl->ctl;
	if (!ctl->cut) {
		reply(cl, "ok not cut");
		return;
	}
	ctl->cut = false;
	char why[600];
	if (rebuild(ctl, why, sizeof(why)) < 0) {
		ctl->cut = true;
		reply(cl, "error cannot rebuild the policy: %s; egress stays cut",
		      why);
		return;
	}
	if (proxy_audit_policy(ctl->px, "allow",
			       "resumed: policy rebuilt from its sources "
			       "and runtime rules") < 0) {
		/* Egress does not resume without a record of it. */
		struct policy *p = control_cut_policy(ctl->px->presets_dir);
		if (p && control_swap_policy(ctl->px, p) == 0) /* frees p on error */
			ctl->cut = true;
		reply(cl, "error audit log unwritable; egress %s",
		      ctl->cut ? "stays cut" : "NOT cut (out of memory)");
		return;
	}
	reply(cl, "ok resumed");
}

static void cmd_status(struct control_client *cl)
{
	struct control *ctl = cl->ctl;
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	evbuffer_add_printf(out, "ok egress=%s rules=%zu",
			    ctl->cut ? "cut" : "open", ctl->n_rules);
	for (size_t i = 0; i < ctl->n_rules; i++)
		evbuffer_add_printf(out, "%s%s %s", i ? "; " : ": ",
				    ctl->rules[i].allow ? "allow" : "deny",
				    ctl->rules[i].spec);
	evbuffer_add(out, "\n", 1);
}

static void run_command(struct control_client *cl, char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = '\0';
	char *arg = strchr(line, ' ');
	if (arg)
		*arg++ = '\0';
	else
		arg = line + n;
	while (*arg == ' ')
		arg++;
	/* A change is a decision: none while the audit log cannot be
	 * written (record.c), except cutting egress, which only narrows. */
	if (strcmp(line, "status") && strcmp(line, "cut") &&
	    !proxy_may_act(cl->ctl->px))
		reply(cl, "error audit log unwritable; policy unchanged");
	else if (!strcmp(line, "allow") || !strcmp(line, "deny"))
		cmd_add(cl, line[0] == 'a', arg);
	else if (!strcmp(line, "remove"))
		cmd_remove(cl, arg);
	else if (!strcmp(line, "port")) /* published ports: inbound.h */
		inbound_control(cl->ctl->px, arg, bufferevent_get_output(cl->bev));
	else if (*arg)
		reply(cl, "error '%s' takes no argument", line);
	else if (!strcmp(line, "cut"))
		cmd_cut(cl);
	else if (!strcmp(line, "resume"))
		cmd_resume(cl);
	else if (!strcmp(line, "status"))
		cmd_status(cl);
	else
		reply(cl, "error unknown command (allow, deny, remove, cut, "
			  "resume, status)");
}

static void client_free(struct control_client *cl)
{
	struct control *ctl = cl->ctl;
	for (struct control_client **pp = &ctl->clients; *pp;
	     pp = &(*pp)->next)
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	ctl->n_clients--;
	bufferevent_free(cl->bev);
	free(cl);
}

static void client_read(struct bufferevent *bev, void *arg)
{
	struct control_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	while (!cl->closing &&
	       (line = evbuffer_readln(in, NULL, EVBUFFER_EOL_LF))) {
		if (strlen(line) > CONTROL_MAX_LINE)
			reply(cl, "error line too long");
		else
			run_command(cl, line);
		free(line);
	}
	if (evbuffer_get_length(in) > CONTROL_MAX_LINE) {
		reply(cl, "error line too long");
		cl->closing = true;
		bufferevent_disable(bev, EV_READ);
	}
	if (cl->closing &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		client_free(cl);
}

static void client_written(struct bufferevent *bev, void *arg)
{
	struct control_client *cl = arg;
	(void)bev;
	if (cl->closing)
		client_free(cl);
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
	struct control_client *cl = arg;
	if (what & BEV_EVENT_ERROR) {
		client_free(cl);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		cl->closing = true;
		bufferevent_disable(bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			client_free(cl);
	}
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct control *ctl = arg;
	(void)what;
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (ctl->n_clients >= CONTROL_MAX_CLIENTS) {
		close(fd);
		return;
	}
	struct control_client *cl = calloc(1, sizeof(*cl));
	struct bufferevent *bev =
		cl ? bufferevent_socket_new(ctl->px->base, fd,
					    BEV_OPT_CLOSE_ON_FREE)
		   : NULL;
	if (!bev) {
		free(cl);
		close(fd);
		return;
	}
	cl->ctl = ctl;
	cl->bev = bev;
	cl->next = ctl->clients;
	ctl->clients = cl;
	ctl->n_clients++;
	bufferevent_setcb(bev, client_read, client_written, client_event, cl);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

struct control *control_open(struct proxy *px, const char *path,
			     control_build_fn build, char *err, size_t errsz)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(sun.sun_path)) {
		fmt_buf(err, errsz, "--control unix:%s: path too long", path);
		return NULL;
	}
	/* 0600 from the start: whoever connects can change the policy. */
	_cleanup_close_ int fd = unix_listen_0600(path, 16, SOCK_NONBLOCK);
	if (fd == -EEXIST) {
		fmt_buf(err, errsz, "--control %s exists and is not a socket",
			path);
		return NULL;
	}
	if (fd < 0) {
		errno = -fd;
		goto fail;
	}
	struct control *ctl = calloc(1, sizeof(*ctl));
	if (!ctl) {
		errno = ENOMEM;
		goto fail;
	}
	ctl->px = px;
	ctl->build = build;
	memcpy(ctl->path, path, len + 1);
	ctl->ev = event_new(px->base, fd, EV_READ | EV_PERSIST, on_accept, ctl);
	if (!ctl->ev || event_add(ctl->ev, NULL) < 0) {
		if (ctl->ev)
			event_free(ctl->ev);
		free(ctl);
		errno = ENOMEM;
		goto fail;
	}
	ctl->fd = take_fd(&fd);
	return ctl;
fail:
	fmt_buf(err, errsz, "--control unix:%s: %s", path, strerror(errno));
	return NULL;
}

void control_close(struct control *c)
{
	if (!c)
		return;
	while (c->clients)
		client_free(c->clients);
	event_free(c->ev);
	close(c->fd);
	unlink(c->path);
	for (size_t i = 0; i < c->n_rules; i++)
		free(c->rules[i].spec);
	free(c->rules);
	free(c);
}
