/* The interception CA (proxy/intercept_ca.c): leaves for names up to the
 * DNS limit under a permitted name, none for a name outside. */
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "../../proxy/intercept_ca.h"
#include "tap.h"

static int leaf_ok(struct icpt_ca *ca, SSL_CTX *ctx, const char *name)
{
	SSL *ssl = SSL_new(ctx);
	int r = icpt_ca_use_leaf(ca, ssl, name);
	int match = 0;
	if (r == 0) {
		X509 *x = SSL_get_certificate(ssl);
		match = x && X509_check_host(x, name, 0, 0, NULL) == 1;
	}
	SSL_free(ssl);
	return r == 0 && match;
}

int main(void)
{
	const char *hosts[] = {"example.com"};
	char err[200];
	struct icpt_ca *ca = icpt_ca_new(hosts, 1, err, sizeof(err));
	ok(ca != NULL, "CA made: %s", ca ? "" : err);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	ok(leaf_ok(ca, ctx, "api.example.com"), "short name");
	/* 4 labels of 60 + example.com: 252 characters. */
	char deep[300] = "";
	for (int i = 0; i < 4; i++) {
		size_t l = strlen(deep);
		memset(deep + l, 'a' + i, 60);
		deep[l + 60] = '.';
		deep[l + 61] = '\0';
	}
	memcpy(deep + strlen(deep), "example.com", sizeof("example.com"));
	ok(strlen(deep) > 64 && leaf_ok(ca, ctx, deep),
	   "a name longer than a CN may be (%zu) still gets a leaf",
	   strlen(deep));
	SSL_CTX_free(ctx);
	icpt_ca_free(ca);
	return done_testing();
}
