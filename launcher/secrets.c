/* --secret: placeholders for the guest, values for the proxy (secrets.h). */
#include "secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "../common/util.h"
#include "../policy/policy.h"
#include "agents.h"
#include "launch.h"

#define LSECRET_MAX 32
#define LSECRET_LEN_MAX 1024
#define LSECRET_HOSTS_MAX 16

struct lsecret {
	char var[128];
	char hosts[1024]; /* comma-separated, lower-case */
	char *value;      /* owned; wiped when written to the proxy */
	char ph[LSECRET_LEN_MAX + SECRET_RANDOM_MIN + 1];
	bool from_policy; /* a policy file's secrets: (policy_secrets.c) */
	char header[65];  /* policy header: the proxy sets, or "" */
	char format[257]; /* its value, with one {value} */
};

static struct lsecret secrets[LSECRET_MAX];
static size_t n_secrets;
/* The policy inspects a host (inspect: true) or all (inspect: all): the
 * proxy makes the CA and the guest trusts it, with or without a secret. */
static bool inspecting;

void launcher_secrets_set_inspecting(bool on)
{
	inspecting = on;
}

static bool is_var(const char *s, size_t n)
{
	if (n == 0 || n >= 128 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static bool is_host(const char *s, size_t n)
{
	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' ||
	    s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.') ||
		    (s[i] == '.' && s[i + 1] == '.'))
			return false;
	return true;
}

bool launch_secret_valid(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || !is_var(s, (size_t)(at - s)))
		return false;
	const char *h = at + 1;
	size_t nh = 0;
	for (;;) {
		const char *c = strchr(h, ',');
		size_t n = c ? (size_t)(c - h) : strlen(h);
		if (!is_host(h, n) || ++nh > LSECRET_HOSTS_MAX)
			return false;
		if (!c)
			return strlen(at + 1) < 1024;
		h = c + 1;
	}
}

static const char lowers[] = "abcdefghijklmnopqrstuvwxyz";
static const char uppers[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
static const char digits[] = "0123456789";
static const char alnum[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

size_t secret_placeholder_make(const char *value, const uint8_t *rnd,
			       size_t rnd_len, char *out, size_t outsz)
{
	size_t n = strlen(value), keep = 0, r = 0, random = 0, o = 0;
	for (size_t i = 0; i < n / 2; i++)
		if (value[i] == '-' || value[i] == '_')
			keep = i + 1;
	if (n + SECRET_RANDOM_MIN + 1 > outsz ||
	    rnd_len < n + SECRET_RANDOM_MIN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = value[i];
		if (i < keep)
			out[o++] = ch;
		else if (ch >= 'a' && ch <= 'z')
			out[o++] = lowers[rnd[r++] % 26], random++;
		else if (ch >= 'A' && ch <= 'Z')
			out[o++] = uppers[rnd[r++] % 26], random++;
		else if (ch >= '0' && ch <= '9')
			out[o++] = digits[rnd[r++] % 10], random++;
		else
			out[o++] = ch;
	}
	while (random < SECRET_RANDOM_MIN)
		out[o++] = alnum[rnd[r++] % 62], random++;
	out[o] = '\0';
	return o;
}

const char *launcher_secret_placeholder(const char *name)
{
	for (size_t i = 0; i < n_secrets; i++)
		if (strcmp(secrets[i].var, name) == 0)
			return secrets[i].ph;
	return NULL;
}

bool launcher_secrets_any(void)
{
	return n_secrets > 0;
}

int agent_secrets(const struct agent *a, struct launch_opts *o)
{
	for (size_t i = 0; i < a->n_secrets; i++) {
		const char *spec = a->secrets[i];
		size_t vl = strcspn(spec, "@");
		char var[128];
		fmt_buf(var, sizeof(var), "%.*s", (int)vl, spec);
		const char *v = getenv(var);
		bool given = false;
		for (size_t j = 0; j < o->n_secrets; j++)
			given |= strncmp(o->secrets[j], spec, vl + 1) == 0;
		if (!v || !*v || given)
			continue;
		char *dup = strdup(spec);
		const char **arr = dup ? realloc(o->secrets, (o->n_secrets + 1) *
							      sizeof(*arr))
				       : NULL;
		if (!arr) {
			free(dup);
			return -1;
		}
		o->secrets = arr;
		o->secrets[o->n_secrets++] = dup;
	}
	return 0;
}

static int add_guest_var(struct launch_opts *o, const char *var)
{
	for (size_t i = 0; i < o->n_env; i++)
		if (strcmp(o->env[i], var) == 0)
			return 0;
	const char **v = realloc(o->env, (o->n_env + 1) * sizeof(*v));
	if (!v)
		return -1;
	o->env = v;
	o->env[o->n_env++] = var;
	return 0;
}

/* Read VAR's value, hide it, make its placeholder; label names the
 * option or file in errors. */
static int prepare_one(struct launch_opts *o, const char *label,
		       const char *var, const char *hosts, bool from_policy,
		       char *err, size_t errsz)
{
	if (n_secrets == LSECRET_MAX) {
		fmt_buf(err, errsz, "%s: more than %d secrets", label,
			LSECRET_MAX);
		return -1;
	}
	struct lsecret *s = &secrets[n_secrets];
	memset(s, 0, sizeof(*s));
	fmt_buf(s->var, sizeof(s->var), "%s", var);
	fmt_buf(s->hosts, sizeof(s->hosts), "%s", hosts);
	s->from_policy = from_policy;
	for (char *p = s->hosts; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (launcher_secret_placeholder(s->var)) {
		fmt_buf(err, errsz, "%s: %s given twice", label, s->var);
		return -1;
	}
	if (policy_secret_var_reserved(s->var, strlen(s->var))) {
		fmt_buf(err, errsz,
			"%s: %s cannot be a secret (the launcher or the "
			"loader reads it)",
			label, s->var);
		return -1;
	}
	/* The value is for the proxy alone: no child inherits it. */
	const char *v = getenv(s->var);
	if (!v || !*v) {
		fmt_buf(err, errsz, "%s: %s is not set in this environment",
			label, s->var);
		return -1;
	}
	bool ok = strlen(v) <= LSECRET_LEN_MAX;
	for (const char *p = v; ok && *p; p++)
		ok = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f;
	if (!ok) {
		fmt_buf(err, errsz,
			"%s: the value of %s must be 1 to %d printable "
			"characters without spaces",
			label, s->var, LSECRET_LEN_MAX);
		return -1;
	}
	uint8_t rnd[LSECRET_LEN_MAX + SECRET_RANDOM_MIN];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd) ||
	    !secret_placeholder_make(v, rnd, sizeof(rnd), s->ph,
				     sizeof(s->ph)) ||
	    strstr(v, s->ph)) {
		fmt_buf(err, errsz, "%s: cannot make a placeholder", label);
		return -1;
	}
	s->value = strdup(v);
	if (!s->value) {
		fmt_buf(err, errsz, "out of memory");
		return -1;
	}
	explicit_bzero(rnd, sizeof(rnd));
	/* Wipe it where the kernel shows it too (/proc/PID/environ reads
	 * the launcher's original environment block). */
	explicit_bzero((char *)v, strlen(v));
	unsetenv(s->var);
	n_secrets++;
	if (add_guest_var(o, s->var) < 0) {
		fmt_buf(err, errsz, "out of memory");
		return -1;
	}
	return 0;
}

int launcher_secrets_prepare(struct launch_opts *o, char *err, size_t errsz)
{
	for (size_t i = 0; i < o->n_secrets; i++) {
		const char *spec = o->secrets[i], *at = strchr(spec, '@');
		char label[1200], var[128];
		fmt_buf(label, sizeof(label), "--secret %s", spec);
		fmt_buf(var, sizeof(var), "%.*s", (int)(at - spec), spec);
		if (prepare_one(o, label, var, at + 1, false, err, errsz) < 0)
			return -1;
	}
	return 0;
}

int launcher_secret_from_policy(struct launch_opts *o, const char *var,
				const char *hosts, const char *origin,
				char *err, size_t errsz)
{
	for (size_t i = 0; i < n_secrets; i++) {
		struct lsecret *s = &secrets[i];
		if (strcmp(s->var, var) != 0)
			continue;
		if (!s->from_policy)
			return 1;
		/* Its hosts as the policy now lists them (a repository
		 * policy may add some, approved as widening). */
		if (fmt_buf(s->hosts, sizeof(s->hosts), "%s", hosts) < 0) {
			fmt_buf(err, errsz, "%s: too many hosts", origin);
			return -1;
		}
		return 0;
	}
	char label[1200];
	fmt_buf(label, sizeof(label), "%s: secret %s", origin, var);
	return prepare_one(o, label, var, hosts, true, err, errsz);
}

int launcher_secret_header(const char *var, const char *header,
			   const char *format)
{
	for (size_t i = 0; i < n_secrets; i++) {
		struct lsecret *s = &secrets[i];
		if (strcmp(s->var, var) != 0 || !s->from_policy)
			continue;
		if (fmt_buf(s->header, sizeof(s->header), "%s", header) < 0 ||
		    fmt_buf(s->format, sizeof(s->format), "%s",
			    format ? format : "{value}") < 0)
			return -1;
		return 0;
	}
	return -1;
}

int launcher_secrets_proxy_args(struct strv *a, const char *run,
				const char *upstream_ca, int child_fd, char *err,
				size_t errsz)
{
	if (!n_secrets) {
		/* Inspection alone: the CA and the upstreams' trust, no
		 * pipe. */
		if (inspecting) {
			strv_add(a, "--ca-out");
			strv_addf(a, "%s/sandbox-ca.pem", run);
			if (upstream_ca) {
				strv_add(a, "--upstream-ca");
				strv_add(a, upstream_ca);
			}
		}
		return -1;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		fmt_buf(err, errsz, "pipe: %s", strerror(errno));
		return -2;
	}
	/* Written before the proxy runs: the pipe is made big enough for
	 * the whole table, and non-blocking so that a table that does not
	 * fit fails the launch rather than hanging it. */
	(void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	int r = fcntl(p[1], F_SETFL, O_NONBLOCK) < 0 ? -1 : 0;
	for (size_t i = 0; i < n_secrets && !r; i++) {
		struct lsecret *s = &secrets[i];
		char line[4096];
		if (fmt_buf(line, sizeof(line), "%s %s %s %s%s%s%s%s\n",
			    s->var, s->ph, s->value, s->hosts,
			    *s->header ? " " : "", s->header,
			    *s->header ? " " : "", *s->header ? s->format : "") < 0 ||
		    write_all(p[1], line, strlen(line)) < 0)
			r = -1;
		explicit_bzero(line, sizeof(line));
		explicit_bzero(s->value, strlen(s->value));
		free(s->value);
		s->value = NULL;
	}
	close(p[1]);
	/* The proxy inherits the read end as child_fd (the supervisor's
	 * child_spawn_fds moves it there); ours stays close-on-exec so no
	 * other child (the bridge, QEMU) can inherit it. */
	int fd = p[0];
	if (r) {
		close(fd);
		fmt_buf(err, errsz, "cannot hand the secrets to the proxy");
		return -2;
	}
	strv_add(a, "--secrets-fd");
	strv_addf(a, "%d", child_fd);
	strv_add(a, "--ca-out");
	strv_addf(a, "%s/sandbox-ca.pem", run);
	if (upstream_ca) {
		strv_add(a, "--upstream-ca");
		strv_add(a, upstream_ca);
	}
	return fd;
}

int launcher_secrets_guest_env(struct strv *env, const char *run, char *err,
			       size_t errsz)
{
	if (!n_secrets && !inspecting)
		return 0;
	char path[4096];
	fmt_buf(path, sizeof(path), "%s/sandbox-ca.pem", run);
	FILE *f = fopen(path, "re");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	unsigned char *der = NULL;
	int n = x ? i2d_X509(x, &der) : -1;
	X509_free(x);
	if (n <= 0 || n > 8192) {
		OPENSSL_free(der);
		fmt_buf(err, errsz, "cannot read the sandbox CA from %s", path);
		return -1;
	}
	char b64[8192 * 4 / 3 + 8];
	int bn = EVP_EncodeBlock((unsigned char *)b64, der, n);
	OPENSSL_free(der);
	if (bn <= 0)
		return -1;
	/* sandbox-init installs it (guest/trust_ca.c) and drops it from
	 * the command's environment. */
	strv_addf(env, "SANDBOX_CA_DER=%s", b64);
	static const char *const bundle_vars[] = {
		"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
		"GIT_SSL_CAINFO", "CARGO_HTTP_CAINFO"};
	for (size_t i = 0; i < sizeof(bundle_vars) / sizeof(*bundle_vars);
	     i++)
		strv_addf(env, "%s=/etc/ssl/certs/ca-certificates.crt",
			  bundle_vars[i]);
	strv_add(env, "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/sandbox-ca.pem");
	return env->failed ? -1 : 0;
}

void launcher_notice(const char *msg)
{
	fprintf(stderr, "sandbox-launch: notice: %s\n", msg);
}
