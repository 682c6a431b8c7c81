/* Loading and keeping the secret table (secrets.h). */
#include "secrets.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../common/util.h"

#define SECRETS_INPUT_MAX (SECRET_MAX * (3 * SECRET_LEN_MAX + 4096))

struct secrets {
	struct secret s[SECRET_MAX];
	const char *hosts[SECRET_MAX][SECRET_HOSTS_MAX];
	struct secret_table t;
	size_t size;
	char *text; /* owned: the input, split in place into the strings */
};

static bool printable(const char *p)
{
	for (; *p; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return false;
	return true;
}

static bool var_ok(const char *p)
{
	if (!*p || (*p >= '0' && *p <= '9'))
		return false;
	for (; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

static bool host_ok(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > 253 || p[0] == '.' || p[n - 1] == '.')
		return false;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '.'))
			return false;
	return true;
}

static bool tchar(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* "HEADER FORMAT" after the hosts: the header the proxy sets and its
 * value with exactly one {value}, split in place into pre and post. The
 * policy loader checked both already (policy_secrets.c); this is the
 * same check again, at the trust boundary. */
static int parse_header(struct secret *e, char *rest, unsigned no,
			const char *var, char *err, size_t errsz)
{
	char *sp = strchr(rest, ' ');
	if (!sp)
		goto bad;
	*sp = '\0';
	char *fmt = sp + 1;
	size_t hl = strlen(rest);
	bool ok = hl > 0 && hl <= 64;
	for (const char *p = rest; ok && *p; p++)
		ok = tchar((unsigned char)*p);
	for (const char *p = fmt; ok && *p; p++)
		ok = (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f;
	char *v = ok ? strstr(fmt, "{value}") : NULL;
	if (!v || strlen(fmt) > 256)
		goto bad;
	*v = '\0';
	char *post = v + 7;
	if (strpbrk(fmt, "{}") || strpbrk(post, "{}") || fmt[0] == ' ' ||
	    (*post && post[strlen(post) - 1] == ' '))
		goto bad;
	e->header = rest;
	e->fmt_pre = (const uint8_t *)fmt;
	e->pre_len = strlen(fmt);
	e->fmt_post = (const uint8_t *)post;
	e->post_len = strlen(post);
	return 0;
bad:
	fmt_buf(err, errsz,
		"secrets line %u (%s): want HEADER FORMAT after the hosts (a "
		"header name, a format with exactly one {value})",
		no, var);
	return -EINVAL;
}

static bool name_ci_eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

static int parse_line(struct secrets *s, char *line, unsigned no, char *err,
		      size_t errsz)
{
	/* Up to four space-separated fields; what follows (a header name
	 * and a format, which may hold spaces) is kept whole. */
	char *rest = line;
	for (int f = 0; f < 4 && rest; f++) {
		rest = strchr(rest, ' ');
		if (rest)
			rest++;
	}
	if (rest)
		rest[-1] = '\0';
	char *save = NULL;
	char *var = strtok_r(line, " ", &save);
	char *ph = strtok_r(NULL, " ", &save);
	char *val = strtok_r(NULL, " ", &save);
	char *hosts = strtok_r(NULL, " ", &save);
	if (!var || !ph || !val || !hosts || strtok_r(NULL, " ", &save)) {
		fmt_buf(err, errsz, "secrets line %u: want VAR PLACEHOLDER "
				    "VALUE HOSTS", no);
		return -EINVAL;
	}
	if (!var_ok(var)) {
		fmt_buf(err, errsz, "secrets line %u: bad variable name", no);
		return -EINVAL;
	}
	if (s->t.n == SECRET_MAX) {
		fmt_buf(err, errsz, "secrets line %u: more than %d secrets",
			no, SECRET_MAX);
		return -EINVAL;
	}
	size_t pl = strlen(ph), vl = strlen(val);
	if (!printable(ph) || !printable(val) || pl < SECRET_PH_MIN ||
	    pl > SECRET_LEN_MAX || vl > SECRET_LEN_MAX ||
	    strcmp(ph, val) == 0 || strstr(val, ph)) {
		fmt_buf(err, errsz,
			"secrets line %u (%s): placeholder or value is not "
			"1..%d printable characters, or the placeholder is "
			"shorter than %d or part of the value",
			no, var, SECRET_LEN_MAX, SECRET_PH_MIN);
		return -EINVAL;
	}
	struct secret *e = &s->s[s->t.n];
	size_t nh = 0;
	char *hs = NULL;
	for (char *h = strtok_r(hosts, ",", &hs); h;
	     h = strtok_r(NULL, ",", &hs)) {
		for (char *q = h; *q; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q - 'A' + 'a');
		if (!host_ok(h) || nh == SECRET_HOSTS_MAX) {
			fmt_buf(err, errsz,
				"secrets line %u (%s): bad host or more than "
				"%d hosts",
				no, var, SECRET_HOSTS_MAX);
			return -EINVAL;
		}
		s->hosts[s->t.n][nh++] = h;
	}
	for (size_t i = 0; i < s->t.n; i++)
		if (strcmp(s->s[i].var, var) == 0 ||
		    memmem(s->s[i].ph, s->s[i].ph_len, ph, pl) ||
		    memmem(ph, pl, s->s[i].ph, s->s[i].ph_len)) {
			fmt_buf(err, errsz,
				"secrets line %u (%s): variable or "
				"placeholder repeated",
				no, var);
			return -EINVAL;
		}
	*e = (struct secret){.var = var,
			     .ph = (const uint8_t *)ph,
			     .ph_len = pl,
			     .value = (const uint8_t *)val,
			     .value_len = vl,
			     .hosts = s->hosts[s->t.n],
			     .n_hosts = nh};
	if (rest && parse_header(e, rest, no, var, err, errsz) < 0)
		return -EINVAL;
	/* Two secrets setting one header on one host: which value? */
	for (size_t i = 0; e->header && i < s->t.n; i++) {
		if (!s->s[i].header || !name_ci_eq(s->s[i].header, e->header))
			continue;
		for (size_t j = 0; j < nh; j++)
			if (secret_host_listed(&s->s[i], e->hosts[j])) {
				fmt_buf(err, errsz,
					"secrets line %u (%s): %s sets header "
					"%s on %s already",
					no, var, s->s[i].var, e->header,
					e->hosts[j]);
				return -EINVAL;
			}
	}
	s->t.n++;
	return 0;
}

int secrets_load_fd(int fd, struct secrets **out, char *err, size_t errsz)
{
	*out = NULL;
	struct secrets *s = calloc(1, sizeof(*s));
	char *text = s ? calloc(1, SECRETS_INPUT_MAX + 1) : NULL;
	if (!text) {
		free(s);
		close(fd);
		fmt_buf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	s->text = text;
	s->size = SECRETS_INPUT_MAX + 1;
	s->t.s = s->s;
	/* Best effort: keep the values out of swap and core dumps. */
	(void)mlock(text, s->size);
	(void)madvise(text, s->size, MADV_DONTDUMP);
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, text + len, SECRETS_INPUT_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fmt_buf(err, errsz, "reading the secrets: %s",
				strerror(errno));
			goto bad;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == SECRETS_INPUT_MAX) {
			fmt_buf(err, errsz, "secrets input too large");
			goto bad;
		}
	}
	close(fd);
	fd = -1;
	text[len] = '\0';
	if (memchr(text, '\0', len)) {
		fmt_buf(err, errsz, "secrets input holds a NUL byte");
		goto bad;
	}
	unsigned no = 0;
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		no++;
		if (parse_line(s, l, no, err, errsz) < 0)
			goto bad;
	}
	*out = s;
	return 0;
bad:
	if (fd >= 0)
		close(fd);
	secrets_free(s);
	return -EINVAL;
}

void secrets_free(struct secrets *s)
{
	if (!s)
		return;
	explicit_bzero(s->text, s->size);
	munlock(s->text, s->size);
	free(s->text);
	explicit_bzero(s, sizeof(*s));
	free(s);
}

const struct secret_table *secrets_table(const struct secrets *s)
{
	return s && s->t.n ? &s->t : NULL;
}

size_t secrets_hosts(const struct secrets *s, const char **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; s && i < s->t.n; i++)
		for (size_t j = 0; j < s->s[i].n_hosts; j++) {
			bool dup = false;
			for (size_t k = 0; k < n; k++)
				dup |= strcmp(out[k], s->s[i].hosts[j]) == 0;
			if (!dup && n < max)
				out[n++] = s->s[i].hosts[j];
		}
	return n;
}

void secrets_describe(const struct secrets *s, FILE *f)
{
	for (size_t i = 0; s && i < s->t.n; i++) {
		const struct secret *e = &s->s[i];
		fprintf(f, "sandbox-proxy: secret %s for", e->var);
		for (size_t j = 0; j < e->n_hosts; j++)
			fprintf(f, "%s%s", j ? "," : " ", e->hosts[j]);
		if (e->header)
			fprintf(f, "; sets header %s: %.*s{value}%.*s", e->header,
				(int)e->pre_len, (const char *)e->fmt_pre,
				(int)e->post_len, (const char *)e->fmt_post);
		fputc('\n', f);
	}
}
