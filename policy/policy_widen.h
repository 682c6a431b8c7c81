/* The widening scan's state, shared by policy_widen.c (deciding a point)
 * and policy_widen_points.c (choosing the points). Not for other files. */
#ifndef POLICY_POLICY_WIDEN_H
#define POLICY_POLICY_WIDEN_H

#include "policy_internal.h"

/* Per point, the ports that matter are those the matching rules list:
 * every other port is decided alike and one of them ("other") stands for
 * all. Slot 0 is port 0 (a DNS question: every rule matches it), slots
 * 1..nq the listed ports, slot nq+1 "other". */
struct scan {
	const struct policy *base, *comb, *repo;
	widen_hit_fn hit;
	void *harg;
	bool (*stop)(void *);
	void *sarg;
	unsigned tick;
	int err;
	uint64_t work; /* ports and slots visited, against WORK_MAX */
	uint32_t *slot;   /* owned, 65536: port -> slot, 0 when not listed */
	size_t nq;        /* slots 1..nq: classes of listed ports */
	uint32_t *cls;    /* owned, 65536: port -> class while refining */
	uint16_t *listed; /* owned, 65536: the listed ports of this point */
	size_t nlisted;
	uint32_t round;
	uint32_t *cls_mem, *born, *split_round, *split_to; /* per class */
	size_t ccap;
	uint16_t *rep;     /* owned, 65538: a port of each slot */
	uint32_t *mstart, *mfill; /* owned, 65538: members[] of each slot */
	uint16_t *members; /* owned, 65536 */
	/* owned, 65538 each, per slot: */
	uint8_t *pass_b, *pass_c, *undec, *claimed, *lpass, *allow;
	/* what passes at each slot: POLICY_PROTO_* (POLICY_PROTO_ALL for a
	 * report-mode pass, as the proxy treats a would-deny), and the
	 * current level's union of allow rules' sets */
	uint8_t *proto_b, *proto_c, *lproto;
	uint32_t *by_b, *by_c;     /* the rule that decided, or RULE_NONE */
	uint32_t *claim_by, *allow_by; /* in the current level */
	struct widen_entry *widened; /* owned: handed to hit */
};

/* Decide one point in BASE and BASE+REPO and report where it widens. */
void widen_check_point(struct scan *s, const struct widen_point *pt);
/* True when the scan must end (an error, the work limit, a signal). */
bool widen_stopped(struct scan *s);
/* The points (policy_widen_points.c). */
void widen_scan_names(struct scan *s);
void widen_scan_family(struct scan *s, int family);

#endif
