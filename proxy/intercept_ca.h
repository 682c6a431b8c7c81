/* The per-sandbox interception CA (docs/secrets.md). Made at proxy start
 * in memory only; its key never leaves this process and dies with it.
 * The CA certificate carries X.509 name constraints: permitted DNS
 * subtrees are exactly the secret hosts, every IPv4 and IPv6 address is
 * excluded, and pathlen is 0, so even a leaked key can vouch for nothing
 * but the hosts whose secrets the proxy already holds. */
#ifndef PROXY_INTERCEPT_CA_H
#define PROXY_INTERCEPT_CA_H

#include <stddef.h>

#include <openssl/ssl.h>

struct icpt_ca;

/* hosts: lower-case names. Returns NULL with err on failure. */
struct icpt_ca *icpt_ca_new(const char *const *hosts, size_t n, char *err,
			    size_t errsz);
void icpt_ca_free(struct icpt_ca *ca);

/* Write the CA certificate (never the key) as PEM to path (mode 0644,
 * replaced atomically). Returns 0 or a negative errno. */
int icpt_ca_write_cert(const struct icpt_ca *ca, const char *path);

/* Put a leaf certificate for name (minted on first use, then cached) and
 * its key on ssl. Returns 0, or -EINVAL for a name the CA may not sign. */
int icpt_ca_use_leaf(struct icpt_ca *ca, SSL *ssl, const char *name);

#endif
