/* The sandbox's interception CA in the guest's trust (docs/secrets.md).
 *
 * When the sandbox has secrets, the launcher puts the CA certificate
 * (never its key) in the command's SPEC as SANDBOX_CA_DER=<base64 DER>.
 * sandbox-init takes that entry out of the command's environment, writes
 * the certificate as /etc/ssl/certs/sandbox-ca.pem (what
 * NODE_EXTRA_CA_CERTS names) and appends it once to the system bundle
 * /etc/ssl/certs/ca-certificates.crt (what SSL_CERT_FILE and the other
 * variables name). The CA is name-constrained to the secret hosts, so
 * trusting it lets it vouch for nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/util.h"
#include "../parse/cmd_channel.h"
#include "guest.h"

#define CA_VAR "SANDBOX_CA_DER="
#define CA_B64_MAX 12000
#define CA_PEM "/etc/ssl/certs/sandbox-ca.pem"
#define CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

static bool b64_ok(const char *s, size_t n)
{
	if (n == 0 || n > CA_B64_MAX || n % 4)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		      (c == '=' && i >= n - 2)))
			return false;
	}
	return true;
}

static int write_pem(const char *b64, size_t n, char *pem, size_t size,
		     size_t *len)
{
	*len = 0;
	int r = fmt_append(pem, size, len, "-----BEGIN CERTIFICATE-----\n");
	for (size_t i = 0; i < n && !r; i += 64)
		r = fmt_append(pem, size, len, "%.*s\n",
			       (int)(n - i < 64 ? n - i : 64), b64 + i);
	return r ? r : fmt_append(pem, size, len,
				  "-----END CERTIFICATE-----\n");
}

static int install(const char *pem, size_t len)
{
	int fd = open(CA_PEM, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
				      O_NOFOLLOW,
		      0644);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, pem, len);
	close(fd);
	if (r < 0)
		return r;
	char *bundle = NULL;
	size_t blen = 0;
	if (read_file(CA_BUNDLE, 64u << 20, &bundle, &blen) == 0 &&
	    strstr(bundle, pem)) {
		free(bundle);
		return 0; /* this CA is in already (a second command) */
	}
	free(bundle);
	fd = open(CA_BUNDLE, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
				     O_NOFOLLOW,
		  0644);
	if (fd < 0)
		return -errno;
	r = write_all(fd, pem, len);
	close(fd);
	return r;
}

int guest_ca_take(struct control_spec *spec, const char **what)
{
	size_t at = spec->envc;
	for (size_t i = 0; i < spec->envc; i++)
		if (strncmp(spec->env[i], CA_VAR, strlen(CA_VAR)) == 0)
			at = i;
	if (at == spec->envc)
		return 0;
	const char *b64 = spec->env[at] + strlen(CA_VAR);
	/* Out of the command's environment, whatever happens next. */
	memmove(&spec->env[at], &spec->env[at + 1],
		(spec->envc - at) * sizeof(spec->env[0]));
	spec->envc--;
	size_t n = strlen(b64);
	*what = "the sandbox CA";
	if (!b64_ok(b64, n))
		return -EINVAL;
	static char pem[CA_B64_MAX + CA_B64_MAX / 64 + 128];
	size_t len;
	if (write_pem(b64, n, pem, sizeof(pem), &len) < 0)
		return -ENOSPC;
	return install(pem, len);
}
