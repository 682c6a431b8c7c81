/* LD_PRELOAD shim for tests/integration/test_conn_module.py:
 * bufferevent_socket_connect() as a libevent that reports a connect which
 * fails at once from inside the call, before returning (libevent after
 * Debian's 2.1.12 may; 2.1.12 defers the callback or returns -1). For the
 * IPv4 address in SBX_SYNC_FAIL_ADDR it connects nothing, runs the event
 * callback with BEV_EVENT_ERROR and errno ECONNREFUSED, then returns 0;
 * every other address goes to the real function. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef int (*connect_fn)(struct bufferevent *, const struct sockaddr *, int);

int bufferevent_socket_connect(struct bufferevent *bev,
			       const struct sockaddr *sa, int socklen)
{
	static connect_fn real;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "bufferevent_socket_connect");
	const char *fail = getenv("SBX_SYNC_FAIL_ADDR");
	struct in_addr want;
	if (fail && sa && sa->sa_family == AF_INET &&
	    inet_pton(AF_INET, fail, &want) == 1 &&
	    ((const struct sockaddr_in *)sa)->sin_addr.s_addr == want.s_addr) {
		bufferevent_event_cb eventcb = NULL;
		void *arg = NULL;
		bufferevent_getcb(bev, NULL, NULL, &eventcb, &arg);
		errno = ECONNREFUSED;
		if (eventcb)
			eventcb(bev, BEV_EVENT_ERROR, arg);
		return 0;
	}
	return real(bev, sa, socklen);
}
