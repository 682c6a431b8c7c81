/* The per-sandbox CA and its leaf certificates (intercept_ca.h). */
#include "intercept_ca.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "../common/util.h"

#define CA_LEAVES_MAX 64
/* Secret, inspected and inspect: all's names, ~270 bytes each at most. */
#define CA_CONSTRAINTS_MAX (512 * 272)

struct leaf {
	char name[256];
	X509 *cert; /* owned */
};

struct icpt_ca {
	EVP_PKEY *key;      /* owned: the CA key, memory only */
	X509 *cert;         /* owned */
	EVP_PKEY *leaf_key; /* owned: one key for every leaf */
	struct leaf leaves[CA_LEAVES_MAX];
	size_t n_leaves;
};

static EVP_PKEY *new_key(void)
{
	return EVP_EC_gen("P-256");
}

static int random_serial(X509 *x)
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[0] &= 0x7f; /* positive */
	BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
	ASN1_INTEGER *s = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	int r = s && X509_set_serialNumber(x, s) == 1 ? 0 : -1;
	ASN1_INTEGER_free(s);
	BN_free(bn);
	return r;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!e)
		return -1;
	int r = X509_add_ext(x, e, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(e);
	return r;
}

/* A certificate shell: version 3, serial, validity, subject CN. */
static X509 *shell(const char *cn, EVP_PKEY *pub, long days)
{
	X509 *x = X509_new();
	if (!x)
		return NULL;
	X509_NAME *nm = X509_get_subject_name(x);
	if (X509_set_version(x, 2) != 1 || random_serial(x) < 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L) ||
	    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8,
				       (const unsigned char *)cn, -1, -1,
				       0) != 1 ||
	    X509_set_pubkey(x, pub) != 1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

struct icpt_ca *icpt_ca_new(const char *const *hosts, size_t n, char *err,
			    size_t errsz)
{
	_cleanup_free_ char *nc = NULL;
	size_t len = 0;
	if (n == 0) {
		fmt_buf(err, errsz, "no secret hosts: no CA is needed");
		return NULL;
	}
	if (!(nc = malloc(CA_CONSTRAINTS_MAX))) {
		fmt_buf(err, errsz, "out of memory");
		return NULL;
	}
	int bad = fmt_append(nc, CA_CONSTRAINTS_MAX, &len, "critical");
	for (size_t i = 0; i < n; i++)
		bad |= fmt_append(nc, CA_CONSTRAINTS_MAX, &len, ",permitted;DNS:%s",
				  hosts[i]);
	/* No address may be vouched for: a certificate for an IP literal
	 * would bypass the DNS constraints. */
	bad |= fmt_append(nc, CA_CONSTRAINTS_MAX, &len,
			  ",excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::");
	if (bad) {
		fmt_buf(err, errsz, "too many secret hosts for the CA");
		return NULL;
	}
	struct icpt_ca *ca = calloc(1, sizeof(*ca));
	if (!ca)
		goto fail;
	ca->key = new_key();
	ca->leaf_key = new_key();
	if (!ca->key || !ca->leaf_key)
		goto fail;
	ca->cert = shell("sandbox interception CA (this sandbox only)",
			 ca->key, 825);
	if (!ca->cert ||
	    X509_set_issuer_name(ca->cert,
				 X509_get_subject_name(ca->cert)) != 1 ||
	    add_ext(ca->cert, ca->cert, NID_basic_constraints,
		    "critical,CA:TRUE,pathlen:0") < 0 ||
	    add_ext(ca->cert, ca->cert, NID_key_usage,
		    "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash") <
		    0 ||
	    add_ext(ca->cert, ca->cert, NID_name_constraints, nc) < 0 ||
	    X509_sign(ca->cert, ca->key, EVP_sha256()) <= 0)
		goto fail;
	return ca;
fail:
	fmt_buf(err, errsz, "cannot make the interception CA");
	icpt_ca_free(ca);
	return NULL;
}

void icpt_ca_free(struct icpt_ca *ca)
{
	if (!ca)
		return;
	for (size_t i = 0; i < ca->n_leaves; i++)
		X509_free(ca->leaves[i].cert);
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	EVP_PKEY_free(ca->leaf_key);
	free(ca);
}

int icpt_ca_write_cert(const struct icpt_ca *ca, const char *path)
{
	char tmp[4096];
	if (fmt_buf(tmp, sizeof(tmp), "%s.tmp", path) < 0)
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		int e = -errno;
		close(fd);
		return e;
	}
	int ok = PEM_write_X509(f, ca->cert) == 1;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

static X509 *mint(struct icpt_ca *ca, const char *name)
{
	char san[300];
	if (fmt_buf(san, sizeof(san), "DNS:%s", name) < 0)
		return NULL;
	/* X.509 caps a CN at 64 characters and clients read the SAN, so a
	 * longer name (a deep one under inspect: all's wildcard) gets a
	 * fixed CN instead of no certificate. */
	X509 *x = shell(strlen(name) <= 64 ? name : "sandbox interception leaf",
			ca->leaf_key, 90);
	if (!x ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
	    add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE") <
		    0 ||
	    add_ext(x, ca->cert, NID_key_usage,
		    "critical,digitalSignature") < 0 ||
	    add_ext(x, ca->cert, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(x, ca->cert, NID_authority_key_identifier, "keyid") < 0 ||
	    add_ext(x, ca->cert, NID_subject_alt_name, san) < 0 ||
	    X509_sign(x, ca->key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int icpt_ca_use_leaf(struct icpt_ca *ca, SSL *ssl, const char *name)
{
	X509 *cert = NULL, *fresh = NULL;
	for (size_t i = 0; i < ca->n_leaves && !cert; i++)
		if (strcmp(ca->leaves[i].name, name) == 0)
			cert = ca->leaves[i].cert;
	if (!cert) {
		cert = mint(ca, name);
		if (!cert)
			return -EINVAL;
		if (ca->n_leaves < CA_LEAVES_MAX) {
			struct leaf *l = &ca->leaves[ca->n_leaves++];
			fmt_buf(l->name, sizeof(l->name), "%s", name);
			l->cert = cert;
		} else {
			fresh = cert; /* not cached: ssl holds its own ref */
		}
	}
	int ok = SSL_use_certificate(ssl, cert) == 1 &&
		 SSL_use_PrivateKey(ssl, ca->leaf_key) == 1;
	X509_free(fresh);
	return ok ? 0 : -EINVAL;
}
