/* Group commit (see audit_queue.h). A ring of AUDIT_QUEUE_MAX rendered
 * bodies: producers fill slots at tail under the lock; the writer reads
 * the slots between head and tail without it (producers never touch a
 * slot before head passes it) and advances head when they are written. */
#include "audit_queue.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "../common/util.h"

struct slot {
	size_t len;
	bool recovery; /* the gap record: clears the failed state */
	char body[AUDIT_BODY_MAX + 2];
};

struct audit_queue {
	struct audit *a; /* not owned */
	void (*on_fail)(void *arg, int err);
	void *arg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work;    /* writer: something queued, or stop */
	pthread_cond_t written; /* head moved: room, or a ticket done */
	uint64_t head, tail;    /* tickets: head..tail-1 are queued */
	bool stop;
	bool idle;        /* the writer waits on work: a put must wake it */
	bool gathering;   /* the writer waits for a batch to fill */
	unsigned waiters; /* in audit_queue_wait: no gathering for them */
	atomic_bool failed;
	/* The last failure: tickets fail_lo..fail_hi-1 were lost. */
	uint64_t fail_lo, fail_hi;
	struct audit_queue_gap gap;
	struct slot *ring;  /* owned: AUDIT_QUEUE_MAX slots */
	char *buf;          /* owned: the writer's batch buffer */
};

#define BUF_SIZE ((size_t)AUDIT_BATCH_MAX * AUDIT_LINE_MAX)

static struct slot *slot_of(struct audit_queue *q, uint64_t t)
{
	return &q->ring[t % AUDIT_QUEUE_MAX];
}

/* Under the lock: the batch at head was not written (done of its records
 * were). The rest of it and everything queued behind it are lost. */
static bool fail_locked(struct audit_queue *q, size_t done)
{
	bool first = !atomic_load(&q->failed);
	if (first) {
		clock_gettime(CLOCK_REALTIME, &q->gap.since);
		q->gap.since_ms = mono_ms();
		q->gap.lost = 0;
	}
	q->fail_lo = q->head + done;
	q->fail_hi = q->tail;
	q->gap.lost += q->tail - q->head - done;
	q->head = q->tail;
	atomic_store(&q->failed, true);
	return first;
}

/* Under the lock, with something queued: let more records join the batch
 * for up to AUDIT_GATHER_US, unless the batch is full, someone waits for
 * a record to be in the file, or the queue stops. A burst then costs one
 * wake-up and one write per few records instead of per record; a lone
 * record waits that long, which is in the crash-loss bound
 * (audit_queue.h). */
static void gather_locked(struct audit_queue *q)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += AUDIT_GATHER_US * 1000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	q->gathering = true;
	while (!q->stop && !q->waiters &&
	       q->tail - q->head < AUDIT_BATCH_MAX &&
	       !atomic_load(&q->failed))
		if (pthread_cond_timedwait(&q->work, &q->mu, &until) ==
		    ETIMEDOUT)
			break;
	q->gathering = false;
}

static void *writer(void *arg)
{
	struct audit_queue *q = arg;
	struct audit_body b[AUDIT_BATCH_MAX];
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->head == q->tail && !q->stop) {
			q->idle = true;
			pthread_cond_wait(&q->work, &q->mu);
			q->idle = false;
		}
		if (q->head == q->tail)
			break;
		gather_locked(q);
		size_t n = q->tail - q->head;
		if (n > AUDIT_BATCH_MAX)
			n = AUDIT_BATCH_MAX;
		bool recovery = false;
		for (size_t i = 0; i < n; i++) {
			struct slot *s = slot_of(q, q->head + i);
			b[i].text = s->body;
			b[i].len = s->len;
			recovery |= s->recovery;
		}
		pthread_mutex_unlock(&q->mu);
		size_t done = 0;
		int e = audit_write_bodies(q->a, b, n, q->buf, BUF_SIZE, &done);
		pthread_mutex_lock(&q->mu);
		if (e == 0) {
			q->head += n;
			if (recovery)
				atomic_store(&q->failed, false);
		} else if (fail_locked(q, done) && q->on_fail) {
			q->on_fail(q->arg, e);
		}
		pthread_cond_broadcast(&q->written);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

struct audit_queue *audit_queue_start(struct audit *a,
				      void (*on_fail)(void *arg, int err),
				      void *arg, int *err)
{
	struct audit_queue *q = calloc(1, sizeof(*q));
	if (!q) {
		*err = -ENOMEM;
		return NULL;
	}
	q->a = a;
	q->on_fail = on_fail;
	q->arg = arg;
	atomic_init(&q->failed, false);
	q->ring = calloc(AUDIT_QUEUE_MAX, sizeof(*q->ring));
	q->buf = malloc(BUF_SIZE);
	if (!q->ring || !q->buf) {
		*err = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&q->mu, NULL);
	/* The gathering deadline is on the monotonic clock. */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->work, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&q->written, NULL);
	/* Signals go to the event loop's thread (libevent's handlers), never
	 * to the writer in the middle of a batch. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&q->thread, NULL, writer, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		*err = -e;
		pthread_mutex_destroy(&q->mu);
		pthread_cond_destroy(&q->work);
		pthread_cond_destroy(&q->written);
		goto fail;
	}
	return q;
fail:
	free(q->ring);
	free(q->buf);
	free(q);
	return NULL;
}

void audit_queue_stop(struct audit_queue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->written);
	free(q->ring);
	free(q->buf);
	free(q);
}

static int put(struct audit_queue *q, const struct audit_record *r,
	       bool recovery, uint64_t *seq)
{
	char body[AUDIT_BODY_MAX + 2];
	struct timespec ts;
	if (!recovery && atomic_load(&q->failed)) {
		pthread_mutex_lock(&q->mu);
		q->gap.lost++;
		pthread_mutex_unlock(&q->mu);
		return -EIO;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ssize_t len = audit_body(q->a, r, &ts, body, sizeof(body));
	if (len < 0)
		return (int)len;
	pthread_mutex_lock(&q->mu);
	/* A full queue holds the decision back until there is room: the
	 * bound on what a crash can lose. */
	while (q->tail - q->head >= AUDIT_QUEUE_MAX &&
	       (recovery || !atomic_load(&q->failed)))
		pthread_cond_wait(&q->written, &q->mu);
	if (!recovery && atomic_load(&q->failed)) {
		q->gap.lost++;
		pthread_mutex_unlock(&q->mu);
		return -EIO;
	}
	struct slot *s = slot_of(q, q->tail);
	memcpy(s->body, body, (size_t)len);
	s->len = (size_t)len;
	s->recovery = recovery;
	if (seq)
		*seq = q->tail;
	q->tail++;
	/* A busy or gathering writer comes back for what queued meanwhile:
	 * no wake-up (a futex call) per record under load. One put wakes an
	 * idle writer (it clears idle), or a gathering one when the batch is
	 * full; after the unlock, so the writer does not wake into a held
	 * mutex. */
	bool wake = q->idle ||
		    (q->gathering && q->tail - q->head >= AUDIT_BATCH_MAX);
	q->idle = false;
	pthread_mutex_unlock(&q->mu);
	if (wake)
		pthread_cond_signal(&q->work);
	return 0;
}

int audit_queue_put(struct audit_queue *q, const struct audit_record *r,
		    uint64_t *seq)
{
	return put(q, r, false, seq);
}

int audit_queue_wait(struct audit_queue *q, uint64_t seq)
{
	pthread_mutex_lock(&q->mu);
	q->waiters++;
	if (q->gathering)
		pthread_cond_signal(&q->work);
	while (q->head <= seq)
		pthread_cond_wait(&q->written, &q->mu);
	q->waiters--;
	bool lost = seq >= q->fail_lo && seq < q->fail_hi;
	pthread_mutex_unlock(&q->mu);
	return lost ? -EIO : 0;
}

int audit_queue_write(struct audit_queue *q, const struct audit_record *r)
{
	uint64_t seq;
	int e = put(q, r, false, &seq);
	return e < 0 ? e : audit_queue_wait(q, seq);
}

bool audit_queue_failed(const struct audit_queue *q)
{
	return atomic_load(&q->failed);
}

bool audit_queue_gap(struct audit_queue *q, struct audit_queue_gap *g)
{
	pthread_mutex_lock(&q->mu);
	bool failed = atomic_load(&q->failed);
	if (failed)
		*g = q->gap;
	pthread_mutex_unlock(&q->mu);
	return failed;
}

int audit_queue_recover(struct audit_queue *q, const struct audit_record *r,
			const struct audit_queue_gap *g)
{
	uint64_t seq;
	int e = put(q, r, true, &seq);
	if (e == 0)
		e = audit_queue_wait(q, seq);
	pthread_mutex_lock(&q->mu);
	if (e == 0) /* refusals since g was taken stay counted */
		q->gap.lost -= g->lost < q->gap.lost ? g->lost : q->gap.lost;
	pthread_mutex_unlock(&q->mu);
	return e;
}
