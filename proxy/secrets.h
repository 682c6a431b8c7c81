/* The table of secrets (docs/secrets.md): the real values the launcher
 * handed over on an inherited descriptor, their placeholders and hosts.
 * The values live only here, in memory locked against swap where the
 * limit allows and wiped when freed; nothing writes them out. */
#ifndef PROXY_SECRETS_H
#define PROXY_SECRETS_H

#include <stddef.h>
#include <stdio.h>

#include "../parse/secret_subst.h"

struct secrets;

/* Read the table from fd until EOF, then close fd. One secret a line:
 *   VAR PLACEHOLDER VALUE HOST[,HOST...]
 * (printable ASCII tokens). Returns 0 or -EINVAL with err saying which
 * line and what is wrong (never the value). */
int secrets_load_fd(int fd, struct secrets **out, char *err, size_t errsz);
void secrets_free(struct secrets *s);

/* One line per secret on f, for the proxy's log: its variable, hosts
 * and the header it sets, never the value or the placeholder. */
void secrets_describe(const struct secrets *s, FILE *f);
/* The table for secret_subst_head(); NULL s gives NULL. */
const struct secret_table *secrets_table(const struct secrets *s);
/* Every host of every secret (for the CA's name constraints). */
size_t secrets_hosts(const struct secrets *s, const char **out, size_t max);

#endif
