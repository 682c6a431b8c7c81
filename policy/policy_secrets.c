/* `secrets:` in policy files (policy.h, docs/secrets.md): which host
 * variable's value may be sent to which exact hosts. The hosts are
 * checked here as strictly as allow rules and more: an exact name (no
 * wildcard, no address), never a public suffix, since the sandbox CA's
 * name constraint permits the whole subtree under a secret host. */
#include "policy_internal.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "../common/util.h"

static bool var_ok(const char *s, size_t n)
{
	if (n == 0 || n >= 128 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

bool policy_secret_var_reserved(const char *var, size_t len)
{
	static const char *const exact[] = {"PATH", "HOME", "SHELL", "TERM",
					    "TMPDIR", "USER", "LOGNAME",
					    "PWD", "LANG"};
	static const char *const prefix[] = {"LC_", "LD_", "XDG_",
					     "SANDBOX_"};
	for (size_t i = 0; i < ARRAY_SIZE(exact); i++)
		if (strlen(exact[i]) == len && !memcmp(exact[i], var, len))
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(prefix); i++)
		if (len >= strlen(prefix[i]) &&
		    !memcmp(prefix[i], var, strlen(prefix[i])))
			return true;
	return false;
}

int policy_builder_add_secret(struct policy_builder *b, const char *var,
			      size_t varlen, const char *host, size_t hostlen,
			      const char *file, unsigned line, unsigned col,
			      struct policy_errors *errs)
{
	if (!var_ok(var, varlen)) {
		policy_err(b, errs, file, line, col,
			   "env: '%.*s' is not a variable name (letters, "
			   "digits and '_', not starting with a digit)",
			   (int)(varlen > 100 ? 100 : varlen), var);
		return -EINVAL;
	}
	if (policy_secret_var_reserved(var, varlen)) {
		policy_err(b, errs, file, line, col,
			   "env: %.*s cannot be a secret (the launcher or the "
			   "loader reads it)",
			   (int)varlen, var);
		return -EINVAL;
	}
	char name[256], buf[200];
	const char *why = policy_ca_host_check(b, host, hostlen,
					       "a secret host", name,
					       sizeof(name), buf, sizeof(buf));
	if (why) {
		policy_err(b, errs, file, line, col, "secret host '%.*s': %s",
			   (int)(hostlen > 100 ? 100 : hostlen), host, why);
		return -EINVAL;
	}
	struct policy_secret *s = NULL;
	for (size_t i = 0; i < b->n_secrets && !s; i++)
		if (strlen(b->secrets[i].var) == varlen &&
		    !memcmp(b->secrets[i].var, var, varlen))
			s = &b->secrets[i];
	if (!s) {
		if (b->n_secrets == POLICY_SECRETS_MAX) {
			policy_err(b, errs, file, line, col,
				   "more than %d secrets", POLICY_SECRETS_MAX);
			return -E2BIG;
		}
		s = &b->secrets[b->n_secrets];
		memset(s, 0, sizeof(*s));
		s->var = arena_strndup(&b->arena, var, varlen);
		s->file = arena_strndup(&b->arena, file, strlen(file));
		if (!s->var || !s->file)
			return -ENOMEM;
		s->line = line;
		s->col = col;
		b->n_secrets++;
	}
	for (size_t i = 0; i < s->nhosts; i++)
		if (!strcmp(s->hosts[i].name, name))
			return 0;
	if (s->nhosts == POLICY_SECRET_HOSTS_MAX) {
		policy_err(b, errs, file, line, col,
			   "secret %s: more than %d hosts", s->var,
			   POLICY_SECRET_HOSTS_MAX);
		return -E2BIG;
	}
	struct policy_secret_host *h = &s->hosts[s->nhosts];
	h->name = arena_strndup(&b->arena, name, strlen(name));
	h->file = arena_strndup(&b->arena, file, strlen(file));
	if (!h->name || !h->file)
		return -ENOMEM;
	h->line = line;
	h->col = col;
	s->nhosts++;
	return 0;
}

static bool tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Why header cannot be set by the proxy, or NULL. */
static const char *header_why(const char *h)
{
	static const char *const framing[] = {
		"host", "content-length", "transfer-encoding", "connection",
		"keep-alive", "proxy-connection", "te", "trailer", "upgrade",
		"expect"};
	size_t n = strlen(h);
	if (n == 0 || n > 64)
		return "a header name is 1 to 64 characters";
	for (size_t i = 0; i < n; i++)
		if (!tchar(h[i]))
			return "not an HTTP header name (letters, digits and "
			       "!#$%&'*+-.^_`|~, no ':' or spaces)";
	for (size_t i = 0; i < ARRAY_SIZE(framing); i++)
		if (!strcasecmp(h, framing[i]))
			return "a framing or hop-by-hop header cannot carry "
			       "a secret";
	return NULL;
}

/* Why format is not a header value with exactly one {value}, or NULL. */
static const char *format_why(const char *f)
{
	size_t n = strlen(f);
	if (n > 256)
		return "longer than 256 characters";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)f[i] < 0x20 || (unsigned char)f[i] > 0x7e)
			return "only printable ASCII and spaces are allowed";
	const char *v = strstr(f, "{value}");
	if (!v)
		return "it needs {value} where the secret goes";
	if (strstr(v + 7, "{value}"))
		return "{value} may appear once";
	for (const char *p = f; *p; p++)
		if ((*p == '{' || *p == '}') && !(p >= v && p < v + 7))
			return "'{' and '}' are allowed only in {value}";
	if (f[0] == ' ' || f[n - 1] == ' ')
		return "no leading or trailing space (HTTP drops it)";
	return NULL;
}

int policy_builder_secret_header(struct policy_builder *b, const char *var,
				 const char *header, const char *format,
				 const char *file, unsigned line, unsigned col,
				 struct policy_errors *errs)
{
	const char *why = header_why(header);
	if (why) {
		policy_err(b, errs, file, line, col, "secret %s: header '%.*s': %s",
			   var, (int)(strlen(header) > 64 ? 64 : strlen(header)),
			   header, why);
		return -EINVAL;
	}
	if (!format)
		format = "{value}";
	why = format_why(format);
	if (why) {
		policy_err(b, errs, file, line, col,
			   "secret %s: format: %s (e.g. \"Bearer {value}\")",
			   var, why);
		return -EINVAL;
	}
	struct policy_secret *s = NULL;
	for (size_t i = 0; i < b->n_secrets && !s; i++)
		if (!strcmp(b->secrets[i].var, var))
			s = &b->secrets[i];
	if (!s)
		return -EINVAL;
	if (s->header) {
		if (strcasecmp(s->header, header) != 0 ||
		    strcmp(s->format, format) != 0) {
			policy_err(b, errs, file, line, col,
				   "secret %s: header or format differs from "
				   "%s:%u (one header per secret)",
				   var, s->header_file, s->header_line);
			return -EINVAL;
		}
		return 0;
	}
	s->header = arena_strndup(&b->arena, header, strlen(header));
	s->format = arena_strndup(&b->arena, format, strlen(format));
	s->header_file = arena_strndup(&b->arena, file, strlen(file));
	if (!s->header || !s->format || !s->header_file)
		return -ENOMEM;
	s->header_line = line;
	s->header_col = col;
	return 0;
}

const struct policy_secret *policy_secrets(const struct policy *p,
					   size_t *n)
{
	*n = p ? p->n_secrets : 0;
	return p ? p->secrets : NULL;
}
