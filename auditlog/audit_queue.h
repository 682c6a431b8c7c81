/* Group commit: the audit log written by one thread, off the event loop.
 *
 * A decision is rendered (audit_body) where it is made and put in this
 * queue before it takes effect; one writer thread takes everything queued
 * (at most AUDIT_BATCH_MAX records), chains it in queue order and appends
 * it with one write(2) under one file lock (audit_write_bodies), while the
 * next batch gathers. Woken by a record, the writer lets others join for
 * up to AUDIT_GATHER_US before it writes (not when the batch is full or
 * someone waits in audit_queue_wait), so a burst costs a wake-up and a
 * write per batch rather than per record.
 *
 * Bounds: at most AUDIT_QUEUE_MAX records wait; a put on a full queue
 * blocks until the writer has made room, so a SIGKILL or a crash loses at
 * most AUDIT_QUEUE_MAX records, those decided in the last AUDIT_GATHER_US
 * plus one write's time (docs/audit-log.md, "Durability").
 *
 * Failure: a batch that cannot be written switches the queue to failed;
 * that batch and everything queued behind it are lost (counted), every
 * put is refused at once (counted) until audit_queue_recover() writes a
 * record about the gap. The callers stop deciding while failed
 * (fail closed: proxy/record.c). */
#ifndef AUDITLOG_AUDIT_QUEUE_H
#define AUDITLOG_AUDIT_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "audit.h"

#define AUDIT_QUEUE_MAX 512
#define AUDIT_BATCH_MAX 256
#define AUDIT_GATHER_US 1000

struct audit_queue;

/* Start the writer thread on a (not owned; do not write to a directly
 * until audit_queue_stop). on_fail, when not NULL, is called from the
 * writer thread once when the queue becomes failed, with the error. */
struct audit_queue *audit_queue_start(struct audit *a,
				      void (*on_fail)(void *arg, int err),
				      void *arg, int *err);
/* Write everything queued, stop the thread and free the queue. */
void audit_queue_stop(struct audit_queue *q);

/* Render r now and queue it. 0: queued (written soon, in order). Negative
 * errno: not queued (-EIO while failed, or r cannot be rendered). *seq,
 * when not NULL, receives the ticket for audit_queue_wait. */
int audit_queue_put(struct audit_queue *q, const struct audit_record *r,
		    uint64_t *seq);
/* Wait until the record with ticket seq is in the file (0) or was lost
 * to a failed write (-EIO). */
int audit_queue_wait(struct audit_queue *q, uint64_t seq);
/* put and wait: the record is in the file when this returns 0. */
int audit_queue_write(struct audit_queue *q, const struct audit_record *r);

/* Lock-free: has a write failed, with no recovery since? */
bool audit_queue_failed(const struct audit_queue *q);

struct audit_queue_gap {
	struct timespec since; /* wall clock of the failure */
	uint64_t since_ms;     /* monotonic, the same moment */
	uint64_t lost;         /* records lost or refused since */
};
/* While failed: what the gap record should say. false when not failed. */
bool audit_queue_gap(struct audit_queue *q, struct audit_queue_gap *g);
/* While failed: write r (the gap record made from g) past the refusal and
 * wait for it. 0: written, the queue takes records again and the lost
 * count restarts after g->lost. Negative errno: still failed. */
int audit_queue_recover(struct audit_queue *q, const struct audit_record *r,
			const struct audit_queue_gap *g);

#endif
