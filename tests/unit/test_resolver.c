/* The c-ares resolver against a real dnsmasq on 127.0.0.1: answers, TTLs,
 * NXDOMAIN/NODATA, asynchronous callbacks, cancellation (also from inside
 * another callback), resolver_free with queries in flight, many concurrent
 * lookups, and a server that never answers. alarm() keeps it from hanging. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "../../common/ipaddr.h"
#include "../../common/util.h"
#include "../../proxy/resolver.h"
#include "tap.h"

static struct event_base *base;
static char server[64];
static pid_t dnsmasq_pid = -1;
static char tmpdir[] = "/tmp/test_resolver.XXXXXX";

struct result {
	int calls;
	enum resolve_status st;
	char addrs[RESOLVE_MAX_ADDRS][IP_STR_MAX];
	size_t n;
	uint32_t ttl;
	struct resolver_query *cancel_me; /* cancel this from the callback */
	struct resolver *free_me;         /* free this from the callback */
};

static int pending;

static void cb(void *arg, enum resolve_status st, const struct ip_addr *addrs,
	       size_t n, uint32_t ttl)
{
	struct result *r = arg;
	r->calls++;
	r->st = st;
	r->n = n;
	r->ttl = ttl;
	for (size_t i = 0; i < n && i < RESOLVE_MAX_ADDRS; i++)
		ip_format(&addrs[i], r->addrs[i]);
	if (r->cancel_me)
		resolver_cancel(r->cancel_me);
	if (r->free_me)
		resolver_free(r->free_me);
	pending--;
	if (pending <= 0)
		event_base_loopbreak(base);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(base);
}

/* Run the loop until `pending` callbacks have come in or secs pass. A
 * private timer rather than event_base_loopexit, whose timer would outlive
 * an early break and cut the next run short. */
static double run(double secs)
{
	struct timespec t0, t1;
	struct timeval tv = {(time_t)secs,
			     (suseconds_t)((secs - (double)(time_t)secs) * 1e6)};
	struct event *deadline = evtimer_new(base, on_deadline, NULL);
	evtimer_add(deadline, &tv);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	event_base_dispatch(base);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	event_free(deadline);
	return (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/* Let the loop run for secs whatever happens (late callbacks show up). */
static void drain(double secs)
{
	pending = 1 << 30;
	run(secs);
}

/* A raw UDP query until dnsmasq answers: it takes a moment to bind. */
static bool dnsmasq_ready(int port)
{
	static const uint8_t q[] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
				    4, 'n', 'a', 'm', 'e', 4, 't', 'e', 's',
				    't', 0, 0, 1, 0, 1};
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {0, 100000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < 50; i++) {
		uint8_t buf[512];
		if (waitpid(dnsmasq_pid, NULL, WNOHANG) == dnsmasq_pid) {
			dnsmasq_pid = -1; /* it died, e.g. port taken */
			return false;
		}
		sendto(fd, q, sizeof(q), 0, (struct sockaddr *)&sin, sizeof(sin));
		if (recv(fd, buf, sizeof(buf), 0) > 0)
			return true;
	}
	return false;
}

/* A port free for both TCP and UDP (dnsmasq binds both): loopback is
 * shared with benchmarks that use up ephemeral TCP ports. */
static int free_port(void)
{
	for (int tries = 0; tries < 20; tries++) {
		struct sockaddr_in sin = {.sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(sin);
		_cleanup_close_ int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		_cleanup_close_ int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (bind(t, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    getsockname(t, (struct sockaddr *)&sin, &len) < 0)
			continue;
		if (bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			return ntohs(sin.sin_port);
	}
	return -1;
}

static bool start_dnsmasq_on(int port)
{
	char portarg[32], pidarg[128];
	fmt_buf(portarg, sizeof(portarg), "--port=%d", port);
	fmt_buf(pidarg, sizeof(pidarg), "--pid-file=%s/pid", tmpdir);
	fmt_buf(server, sizeof(server), "127.0.0.1:%d", port);
	dnsmasq_pid = fork();
	if (dnsmasq_pid == 0) {
		char *argv[] = {
			"dnsmasq", "--no-daemon", portarg,
			"--listen-address=127.0.0.1", "--bind-interfaces",
			"--no-resolv", "--no-hosts", "--conf-file=/dev/null",
			pidarg, "--user=root", "--local-ttl=600",
			"--address=/name.test/127.0.0.5",
			"--host-record=both.test,127.0.0.6,::6,42",
			"--host-record=multi.test,127.0.0.7",
			"--host-record=multi.test,127.0.0.8",
			"--address=/v6only.test/fd00::7",
			"--local=/nx.test/", "--local=/nodata.test/",
			"--txt-record=nodata.test,hello",
			"--log-facility=/dev/null", NULL};
		char logf[160];
		fmt_buf(logf, sizeof(logf), "%s/dnsmasq.log", tmpdir);
		int lfd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (lfd >= 0)
			dup2(lfd, STDERR_FILENO);
		execvp("dnsmasq", argv);
		_exit(127);
	}
	return dnsmasq_pid > 0 && dnsmasq_ready(port);
}

static bool start_dnsmasq(void)
{
	for (int i = 0; i < 5; i++) {
		int port = free_port();
		if (port > 0 && start_dnsmasq_on(port))
			return true;
		if (dnsmasq_pid > 0) {
			kill(dnsmasq_pid, SIGTERM);
			waitpid(dnsmasq_pid, NULL, 0);
			dnsmasq_pid = -1;
		}
	}
	return false;
}

static void stop_dnsmasq(void)
{
	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, NULL, 0);
	}
}

static void answers(struct resolver *r)
{
	struct result a = {0}, b = {0}, c = {0}, d = {0}, e = {0}, f = {0};
	pending = 6;
	ok(resolver_lookup(r, "name.test", cb, &a) != NULL, "lookup name.test");
	ok(a.calls == 0, "callback not called from inside resolver_lookup");
	resolver_lookup(r, "both.test", cb, &b);
	resolver_lookup(r, "v6only.test", cb, &c);
	resolver_lookup(r, "nx.test", cb, &d);
	resolver_lookup(r, "nodata.test", cb, &e);
	resolver_lookup(r, "MULTI.test.", cb, &f);
	run(20);

	is_int(a.calls, 1, "name.test: one callback");
	is_str(resolve_status_str(a.st), "ok", "name.test resolves");
	ok(a.n == 1 && strcmp(a.addrs[0], "127.0.0.5") == 0,
	   "name.test A 127.0.0.5 (n=%zu %s)", a.n, a.addrs[0]);
	is_int(a.ttl, 300, "local TTL 600 capped at 300");

	is_str(resolve_status_str(b.st), "ok", "both.test resolves");
	ok(b.n == 2 && strcmp(b.addrs[0], "127.0.0.6") == 0 &&
		   strcmp(b.addrs[1], "::6") == 0,
	   "both.test: IPv4 first, then IPv6 (%s %s)", b.addrs[0], b.addrs[1]);
	is_int(b.ttl, 42, "both.test: TTL from the records");

	is_str(resolve_status_str(c.st), "ok", "AAAA-only name resolves");
	ok(c.n == 1 && strcmp(c.addrs[0], "fd00::7") == 0,
	   "v6only.test AAAA fd00::7 (%s)", c.addrs[0]);

	is_str(resolve_status_str(d.st), "nxdomain", "nx.test is NXDOMAIN");
	is_int(d.n, 0, "no addresses for NXDOMAIN");
	is_str(resolve_status_str(e.st), "nodata",
	       "nodata.test (TXT only) is NODATA");

	is_str(resolve_status_str(f.st), "ok", "multi.test resolves");
	ok(f.n == 2 && strcmp(f.addrs[0], f.addrs[1]) != 0,
	   "multi.test: both A records (%zu)", f.n);
}

static void literal(struct resolver *r)
{
	/* c-ares answers a literal inside ares_getaddrinfo; we still defer. */
	struct result a = {0};
	pending = 1;
	resolver_lookup(r, "127.0.0.9", cb, &a);
	ok(a.calls == 0, "synchronous c-ares completion is deferred");
	run(5);
	ok(a.calls == 1 && a.st == RESOLVE_OK && a.n == 1 &&
		   strcmp(a.addrs[0], "127.0.0.9") == 0,
	   "literal delivered from the loop");
}

static void cancel(struct resolver *r)
{
	struct result a = {0}, b = {0}, c = {0}, d = {0};
	pending = 1;
	struct resolver_query *qa = resolver_lookup(r, "name.test", cb, &a);
	resolver_lookup(r, "both.test", cb, &b);
	resolver_cancel(qa);
	run(10);
	drain(0.3);
	is_int(a.calls, 0, "cancelled query: no callback");
	is_int(b.calls, 1, "the other query still completes");

	/* Two queries answered in the same round; the first to be delivered
	 * cancels the other, which is then already READY. */
	struct resolver_query *qc, *qd;
	pending = 1;
	qc = resolver_lookup(r, "name.test", cb, &c);
	qd = resolver_lookup(r, "name.test", cb, &d);
	c.cancel_me = qd;
	d.cancel_me = qc;
	run(10);
	drain(0.3);
	is_int(c.calls + d.calls, 1,
	       "cancel from inside a callback stops the other one");

	/* Cancelling a query from inside its own callback is harmless. */
	struct result e = {0};
	pending = 1;
	e.cancel_me = resolver_lookup(r, "name.test", cb, &e);
	run(10);
	is_int(e.calls, 1, "self-cancel inside the callback is a no-op");

	/* Cancel the deferred delivery of a synchronous completion. */
	struct result f = {0};
	resolver_cancel(resolver_lookup(r, "127.0.0.1", cb, &f));
	drain(0.2);
	is_int(f.calls, 0, "cancel before delivery of a ready result");
	resolver_cancel(NULL);
}

static void many(struct resolver *r)
{
	enum { N = 300 };
	static struct result res[N];
	static struct resolver_query *qs[N];
	static const char *names[] = {"name.test", "both.test", "nx.test",
				      "v6only.test"};
	memset(res, 0, sizeof(res));
	for (int i = 0; i < N; i++)
		qs[i] = resolver_lookup(r, names[i % 4], cb, &res[i]);
	/* Every tenth is cancelled: some in flight, most still queued. */
	pending = N - N / 10;
	for (int i = 9; i < N; i += 10)
		resolver_cancel(qs[i]);
	double took = run(30);
	drain(0.3);
	int good = 0, cancelled_quiet = 0;
	for (int i = 0; i < N; i++) {
		bool want_nx = i % 4 == 2;
		if (i % 10 == 9) {
			cancelled_quiet += res[i].calls == 0;
			continue;
		}
		if (res[i].calls == 1 &&
		    res[i].st == (want_nx ? RESOLVE_NXDOMAIN : RESOLVE_OK))
			good++;
		else
			tap_diag("lookup %d (%s): %d calls, %s", i, names[i % 4],
				 res[i].calls, resolve_status_str(res[i].st));
	}
	is_int(good, N - N / 10, "%d concurrent lookups all answered right (%.2fs)",
	       N - N / 10, took);
	is_int(cancelled_quiet, N / 10, "cancelled ones (queued or in flight) stay quiet");
}

static void free_with_pending(void)
{
	int err = 0;
	struct resolver *r = resolver_new(base, server, &err);
	struct result a = {0}, b = {0};
	resolver_lookup(r, "name.test", cb, &a);
	resolver_lookup(r, "127.0.0.1", cb, &b); /* ready, not delivered */
	resolver_free(r);
	drain(0.5);
	ok(a.calls == 0 && b.calls == 0, "resolver_free: no callbacks");

	/* resolver_free from inside a callback, with more queries queued. */
	struct result c = {0}, d = {0}, e = {0};
	r = resolver_new(base, server, &err);
	c.free_me = r;
	pending = 1;
	resolver_lookup(r, "127.0.0.2", cb, &c);
	resolver_lookup(r, "127.0.0.3", cb, &d);
	resolver_lookup(r, "name.test", cb, &e);
	run(5);
	drain(0.5);
	ok(c.calls + d.calls == 1 && e.calls == 0,
	   "free inside a callback cancels the rest (%d %d %d)", c.calls,
	   d.calls, e.calls);
}

static void silent_server(void)
{
	/* Bound but never read: queries vanish, as with a dead resolver. */
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ok(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		   getsockname(fd, (struct sockaddr *)&sin, &len) == 0,
	   "bind a silent UDP socket");
	char srv[64];
	fmt_buf(srv, sizeof(srv), "127.0.0.1:%d", ntohs(sin.sin_port));
	int err = 0;
	struct resolver *r = resolver_new(base, srv, &err);
	struct result a = {0};
	pending = 1;
	resolver_lookup(r, "name.test", cb, &a);
	double took = run(20);
	ok(a.calls == 1 && a.st == RESOLVE_FAIL, "silent server: RESOLVE_FAIL (%s)",
	   resolve_status_str(a.st));
	ok(took >= 2.0 && took < 10.0, "gave up within bounds (%.1fs)", took);
	resolver_free(r);
}

static void bad_servers(void)
{
	static const char *bad[] = {
		"127.0.0.1",     "localhost:53", "[127.0.0.1]:53", "::1:53",
		"127.0.0.1:0",   "127.0.0.1:65536", "127.1:53", "127.0.0.1:5x",
		"[::1]53",       "[::1]:",       "",            "1.2.3.4:53,5.6.7.8:53",
		"127.0.0.1:+53", "[::1]:123456"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int err = 0;
		struct resolver *r = resolver_new(base, bad[i], &err);
		ok(r == NULL && err == -EINVAL, "server \"%s\" refused", bad[i]);
		resolver_free(r);
	}
	int err = 0;
	struct resolver *r = resolver_new(base, "[::1]:53", &err);
	ok(r != NULL, "[::1]:53 accepted");
	resolver_free(r);
	r = resolver_new(base, NULL, &err);
	ok(r != NULL, "NULL server: system configuration");
	resolver_free(r);
}

int main(void)
{
	alarm(120);
	if (!mkdtemp(tmpdir))
		return 1;
	base = event_base_new();
	if (!ok(start_dnsmasq(), "dnsmasq answers on %s", server)) {
		stop_dnsmasq();
		return done_testing();
	}
	int err = 0;
	struct resolver *r = resolver_new(base, server, &err);
	ok(r != NULL, "resolver_new(%s)", server);
	if (r) {
		answers(r);
		literal(r);
		cancel(r);
		many(r);
		resolver_free(r);
	}
	free_with_pending();
	silent_server();
	bad_servers();
	stop_dnsmasq();
	event_base_free(base);
	char pidfile[160];
	fmt_buf(pidfile, sizeof(pidfile), "%s/pid", tmpdir);
	unlink(pidfile);
	fmt_buf(pidfile, sizeof(pidfile), "%s/dnsmasq.log", tmpdir);
	unlink(pidfile);
	rmdir(tmpdir);
	return done_testing();
}
