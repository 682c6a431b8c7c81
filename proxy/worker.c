/* The event loops of sandbox-proxy (worker.h) and the two ways one
 * reaches another: worker_call_all() (worker 0 runs a function on every
 * loop and waits) and worker_post0() (any worker asks worker 0 to run a
 * function soon). Both use event_base_once() on the target's base, which
 * is thread-safe because main.c calls evthread_use_pthreads() before any
 * base exists when there is more than one worker.
 *
 * No deadlock: only worker 0 ever waits for another worker, and a worker
 * never waits for worker 0 (it only posts). Worker 0 stops asking once it
 * has called workers_stop(), after which a loop may already have ended. */
#include "worker.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/util.h"
#include "conn.h"
#include "resolver.h"

unsigned workers_default(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > PROXY_MAX_WORKERS)
		n = PROXY_MAX_WORKERS;
	return (unsigned)n;
}

/* On the receiving worker's loop: take what worker 0 handed over. */
static void handoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	int fds[WORKER_HANDOFF_MAX];
	unsigned char origin[WORKER_HANDOFF_MAX];
	(void)fd;
	(void)what;
	pthread_mutex_lock(&w->handoff_lock);
	unsigned n = w->n_handoff;
	memcpy(fds, w->handoff_fd, n * sizeof(fds[0]));
	memcpy(origin, w->handoff_origin, n);
	w->n_handoff = 0;
	pthread_mutex_unlock(&w->handoff_lock);
	for (unsigned i = 0; i < n; i++)
		conn_accept(w, fds[i], (enum conn_origin)origin[i]);
}

void worker_handoff(struct proxy *px, int fd, int origin)
{
	struct worker *w = &px->workers[px->handoff_next++ % px->n_workers];
	if (w->idx != 0 && !px->stopping) {
		pthread_mutex_lock(&w->handoff_lock);
		bool room = w->n_handoff < WORKER_HANDOFF_MAX;
		if (room) {
			w->handoff_fd[w->n_handoff] = fd;
			w->handoff_origin[w->n_handoff] = (unsigned char)origin;
			w->n_handoff++;
		}
		pthread_mutex_unlock(&w->handoff_lock);
		if (room) {
			/* Thread-safe with libevent's locks on. */
			event_active(w->handoff_ev, EV_READ, 0);
			return;
		}
	}
	conn_accept(&px->workers[0], fd, (enum conn_origin)origin);
}

/* epoll's change list: an event deleted and added again within one loop
 * turn (a bufferevent's read paused and resumed, a write event added for
 * a reply and removed once it is out) costs one epoll_ctl, or none,
 * instead of one per change. Safe here: no descriptor is dup()ed while
 * registered (libevent's documented caveat). */
static struct event_base *base_new(void)
{
	struct event_config *cfg = event_config_new();
	if (!cfg)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	struct event_base *b = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return b;
}

int workers_init(struct proxy *px, unsigned n, char *err, size_t errsz)
{
	px->workers = calloc(n, sizeof(*px->workers));
	if (!px->workers) {
		fmt_buf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	px->n_workers = n;
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &px->workers[i];
		w->px = px;
		w->idx = i;
		LIST_INIT(&w->conns);
		pthread_mutex_init(&w->handoff_lock, NULL);
		w->base = base_new();
		if (!w->base) {
			fmt_buf(err, errsz, "cannot create event loop %u", i);
			return -ENOMEM;
		}
		int e = 0;
		w->resolver = resolver_new(w->base, px->cfg->resolver, &e);
		if (!w->resolver) {
			fmt_buf(err, errsz, "--resolver %s: %s",
				px->cfg->resolver ? px->cfg->resolver
						  : "(system)",
				strerror(-e));
			return e ? e : -EINVAL;
		}
		w->handoff_ev = event_new(w->base, -1, 0, handoff_cb, w);
		if (!w->handoff_ev || proxy_record_start(w) < 0) {
			fmt_buf(err, errsz, "cannot start the tick");
			return -ENOMEM;
		}
	}
	px->base = px->workers[0].base;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

int workers_start(struct proxy *px)
{
	for (unsigned i = 1; i < px->n_workers; i++) {
		struct worker *w = &px->workers[i];
		int e = pthread_create(&w->thread, NULL, worker_main, w);
		if (e) {
			for (unsigned j = 1; j < i; j++) {
				event_base_loopexit(px->workers[j].base, NULL);
				pthread_join(px->workers[j].thread, NULL);
			}
			return -e;
		}
	}
	return 0;
}

void workers_stop(struct proxy *px)
{
	px->stopping = true;
	for (unsigned i = 0; i < px->n_workers; i++)
		event_base_loopexit(px->workers[i].base, NULL);
}

void workers_join(struct proxy *px)
{
	for (unsigned i = 1; i < px->n_workers; i++)
		pthread_join(px->workers[i].thread, NULL);
}

void workers_free(struct proxy *px)
{
	if (!px->workers)
		return;
	for (unsigned i = 0; i < px->n_workers; i++) {
		struct worker *w = &px->workers[i];
		proxy_record_stop(w);
		/* Handed over after the loops ended: never accepted. */
		for (unsigned j = 0; j < w->n_handoff; j++)
			close(w->handoff_fd[j]);
		if (w->handoff_ev)
			event_free(w->handoff_ev);
		pthread_mutex_destroy(&w->handoff_lock);
		resolver_free(w->resolver);
		if (w->base)
			event_base_free(w->base);
	}
	free(px->workers);
	px->workers = NULL;
	px->base = NULL;
}

struct call {
	void (*fn)(struct worker *w, void *arg);
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned left;
};

struct call_slot {
	struct call *call;
	struct worker *w;
};

static void call_cb(evutil_socket_t fd, short what, void *arg)
{
	struct call_slot *s = arg;
	struct call *c = s->call;
	(void)fd;
	(void)what;
	c->fn(s->w, c->arg);
	pthread_mutex_lock(&c->mu);
	if (--c->left == 0)
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void worker_call_all(struct proxy *px,
		     void (*fn)(struct worker *w, void *arg), void *arg)
{
	fn(&px->workers[0], arg);
	if (px->n_workers < 2 || px->stopping)
		return;
	struct call c = {.fn = fn, .arg = arg};
	struct call_slot slot[PROXY_MAX_WORKERS];
	struct timeval now = {0, 0};
	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	pthread_mutex_lock(&c.mu);
	for (unsigned i = 1; i < px->n_workers; i++) {
		slot[i].call = &c;
		slot[i].w = &px->workers[i];
		/* Fails only without memory; that worker is then skipped
		 * (its connections close at shutdown at the latest). */
		if (event_base_once(slot[i].w->base, -1, EV_TIMEOUT, call_cb,
				    &slot[i], &now) == 0)
			c.left++;
	}
	while (c.left)
		pthread_cond_wait(&c.cv, &c.mu);
	pthread_mutex_unlock(&c.mu);
	pthread_cond_destroy(&c.cv);
	pthread_mutex_destroy(&c.mu);
}

int worker_post0(struct proxy *px, event_callback_fn fn)
{
	struct timeval now = {0, 0};
	return event_base_once(px->base, -1, EV_TIMEOUT, fn, px, &now);
}
