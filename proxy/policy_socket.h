/* The proxy's runtime control socket (--control unix:PATH, mode 0600):
 * the host changes a running sandbox's policy without a restart.
 *
 * One command per line, one reply line each ("ok ..." or "error ..."):
 *   allow SPEC | deny SPEC   add a runtime rule (SPEC as --allow/--deny)
 *   remove [allow|deny] SPEC drop runtime rules with that SPEC
 *   cut                      kill switch: deny every new connection and
 *                            DNS query, close every open connection now
 *   resume                   undo cut: back to the sources + runtime rules
 *   status                   "ok egress=open|cut rules=N[: allow X; ...]"
 *
 * A change rebuilds the immutable policy from the same sources as SIGHUP
 * plus the runtime rules (origin "runtime") and swaps it in; a SPEC the
 * policy refuses is an error and changes nothing. Open connections keep the
 * policy they were decided under (except on cut); idle DNS streams are
 * closed so the guest's resolver reconnects under the new policy. Every
 * change is audited (event "policy"). The socket is the host's: the guest
 * has no path to it (it lives in the sandbox's state dir).
 */
#ifndef PROXY_CONTROL_H
#define PROXY_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "../policy/policy.h"

struct proxy;
struct control;

/* Builds the policy from every configured source; the control adds its
 * runtime rules through control_add_rules(). */
typedef struct policy *(*control_build_fn)(struct proxy *px,
					   struct policy_errors *errs);

/* Listen on path (unix socket, 0600). NULL + err on failure. */
struct control *control_open(struct proxy *px, const char *path,
			     control_build_fn build, char *err, size_t errsz);
void control_close(struct control *c); /* NULL is fine; unlinks the socket */

/* Add the runtime rules to b (nothing when c is NULL). */
void control_add_rules(const struct control *c, struct policy_builder *b,
		       struct policy_errors *errs);
bool control_is_cut(const struct control *c);

/* Swap p in as px's current policy (takes ownership; frees p when out of
 * memory and returns -ENOMEM), then close idle DNS streams so the guest's
 * next query is decided by p. The SIGHUP path uses it too. */
int control_swap_policy(struct proxy *px, struct policy *p);

/* The policy in force while cut: everything denied, by named rules. */
struct policy *control_cut_policy(const char *presets_dir);

#endif
