/* Placeholder substitution in request heads (secret_subst.h). */
#include "secret_subst.h"

#include <string.h>

static int lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static bool name_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (lower((unsigned char)*a) != lower((unsigned char)*b))
			return false;
	return *a == *b;
}

bool secret_host_listed(const struct secret *s, const char *host)
{
	for (size_t i = 0; i < s->n_hosts; i++)
		if (name_eq(s->hosts[i], host))
			return true;
	return false;
}

bool secret_table_has_host(const struct secret_table *t, const char *host)
{
	for (size_t i = 0; t && i < t->n; i++)
		if (secret_host_listed(&t->s[i], host))
			return true;
	return false;
}

struct sink {
	uint8_t *buf; /* NULL: only check */
	size_t size, len;
	bool full;
};

static void emit(struct sink *k, const uint8_t *p, size_t n)
{
	if (!k->buf)
		return;
	if (n > k->size - k->len) {
		k->full = true;
		return;
	}
	memcpy(k->buf + k->len, p, n);
	k->len += n;
}

/* Copy in[0..n) to k with every placeholder replaced. Returns SUBST_NONE,
 * SUBST_DONE or SUBST_FOREIGN. */
static enum subst_status subst_span(const struct secret_table *t,
				    const char *host, const uint8_t *in,
				    size_t n, struct sink *k, uint32_t *used,
				    size_t *which)
{
	enum subst_status st = SUBST_NONE;
	size_t i = 0, run = 0; /* in[run..i) is pending plain bytes */
	while (i < n) {
		const struct secret *hit = NULL;
		size_t j = 0;
		for (; j < t->n; j++) {
			const struct secret *s = &t->s[j];
			if (s->ph_len && n - i >= s->ph_len &&
			    in[i] == s->ph[0] &&
			    memcmp(in + i, s->ph, s->ph_len) == 0) {
				hit = s;
				break;
			}
		}
		if (!hit) {
			i++;
			continue;
		}
		if (!host || !secret_host_listed(hit, host)) {
			*which = j;
			return SUBST_FOREIGN;
		}
		emit(k, in + run, i - run);
		emit(k, hit->value, hit->value_len);
		*used |= (uint32_t)1 << (j & 31);
		st = SUBST_DONE;
		i += hit->ph_len;
		run = i;
	}
	emit(k, in + run, n - run);
	return st;
}

static bool prefix_ci(const uint8_t *p, size_t n, const char *pre)
{
	size_t m = strlen(pre);
	if (n < m)
		return false;
	for (size_t i = 0; i < m; i++)
		if (lower(p[i]) != pre[i])
			return false;
	return true;
}

/* The base64 token of "Authorization: Basic TOKEN" (or Proxy-), as
 * offsets into the line; false for any other line. */
static bool basic_token(const uint8_t *l, size_t n, size_t *tb, size_t *te)
{
	size_t i;
	if (prefix_ci(l, n, "authorization:"))
		i = 14;
	else if (prefix_ci(l, n, "proxy-authorization:"))
		i = 20;
	else
		return false;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (!prefix_ci(l + i, n - i, "basic") || n - i < 6 ||
	    (l[i + 5] != ' ' && l[i + 5] != '\t'))
		return false;
	i += 5;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	size_t b = i;
	while (i < n && l[i] != ' ' && l[i] != '\t')
		i++;
	size_t e = i;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (i != n || e == b)
		return false;
	*tb = b;
	*te = e;
	return true;
}

/* Decoded credentials can hold a placeholder and the value replacing it. */
#define BASIC_MAX (2 * SECRET_LEN_MAX + 1024)

static enum subst_status basic_line(const struct secret_table *t,
				    const char *host, const uint8_t *l,
				    size_t n, size_t tb, size_t te,
				    struct sink *k, uint32_t *used,
				    size_t *which)
{
	uint8_t dec[BASIC_MAX], rep[2 * BASIC_MAX], enc[4 * BASIC_MAX];
	long dn = secret_b64_decode(l + tb, te - tb, dec, sizeof(dec));
	if (dn < 0)
		return subst_span(t, host, l, n, k, used, which);
	struct sink r = {rep, sizeof(rep), 0, false};
	enum subst_status st =
		subst_span(t, host, dec, (size_t)dn, &r, used, which);
	if (st == SUBST_FOREIGN)
		return st;
	/* The raw token may hold a placeholder too (it is not Basic's
	 * business to be valid base64 of anything). */
	uint32_t u2 = 0;
	enum subst_status raw = subst_span(t, host, l, n, &(struct sink){0},
					   &u2, which);
	if (raw == SUBST_FOREIGN)
		return raw;
	if (st == SUBST_NONE)
		return subst_span(t, host, l, n, k, used, which);
	if (r.full)
		return SUBST_TOO_LARGE;
	size_t en = secret_b64_encode(rep, r.len, enc, sizeof(enc));
	if (!en)
		return SUBST_TOO_LARGE;
	emit(k, l, tb);
	emit(k, enc, en);
	emit(k, l + te, n - te);
	return SUBST_DONE;
}

enum subst_status secret_subst_head(const struct secret_table *t,
				    const char *host, const uint8_t *head,
				    size_t len, uint8_t *out, size_t outsz,
				    size_t *out_len, uint32_t *used,
				    size_t *which)
{
	struct sink k = {out, out ? outsz : 0, 0, false};
	enum subst_status all = SUBST_NONE;
	size_t pos = 0;
	*used = 0;
	*which = 0;
	*out_len = 0;
	if (!t || t->n == 0)
		return SUBST_NONE;
	while (pos < len) {
		size_t e = pos;
		while (e + 1 < len && !(head[e] == '\r' && head[e + 1] == '\n'))
			e++;
		if (e + 1 >= len)
			return SUBST_MALFORMED;
		const uint8_t *l = head + pos;
		size_t n = e - pos, tb, te;
		enum subst_status st =
			basic_token(l, n, &tb, &te)
				? basic_line(t, host, l, n, tb, te, &k, used,
					     which)
				: subst_span(t, host, l, n, &k, used, which);
		if (st == SUBST_FOREIGN || st == SUBST_TOO_LARGE)
			return st;
		if (st == SUBST_DONE)
			all = SUBST_DONE;
		emit(&k, (const uint8_t *)"\r\n", 2);
		pos = e + 2;
	}
	if (k.full)
		return SUBST_TOO_LARGE;
	*out_len = k.len;
	return all;
}

/* Is line l[0..n) a field named name (then blanks, then ':')? */
static bool field_named(const uint8_t *l, size_t n, const char *name)
{
	size_t m = strlen(name), i;
	if (n <= m)
		return false;
	for (i = 0; i < m; i++)
		if (lower(l[i]) != lower((unsigned char)name[i]))
			return false;
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	return i < n && l[i] == ':';
}

enum subst_status secret_set_headers(const struct secret_table *t,
				     const char *host, const uint8_t *head,
				     size_t len, uint8_t *out, size_t outsz,
				     size_t *out_len, uint32_t *used)
{
	uint32_t want = 0;
	*used = 0;
	*out_len = 0;
	for (size_t j = 0; t && host && j < t->n && j < 32; j++)
		if (t->s[j].header && secret_host_listed(&t->s[j], host))
			want |= (uint32_t)1 << j;
	if (!want)
		return SUBST_NONE;
	if (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0)
		return SUBST_MALFORMED;
	struct sink k = {out, outsz, 0, false};
	size_t pos = 0;
	bool first = true;
	/* Every line but the last (empty) one, minus the set headers'. */
	while (pos < len - 2) {
		size_t e = pos;
		while (e + 1 < len && !(head[e] == '\r' && head[e + 1] == '\n'))
			e++;
		if (e + 1 >= len)
			return SUBST_MALFORMED;
		bool drop = false;
		for (size_t j = 0; !first && j < t->n && j < 32 && !drop; j++)
			drop = (want & ((uint32_t)1 << j)) &&
			       field_named(head + pos, e - pos, t->s[j].header);
		if (!drop)
			emit(&k, head + pos, e + 2 - pos);
		first = false;
		pos = e + 2;
	}
	for (size_t j = 0; j < t->n && j < 32; j++) {
		if (!(want & ((uint32_t)1 << j)))
			continue;
		const struct secret *s = &t->s[j];
		emit(&k, (const uint8_t *)s->header, strlen(s->header));
		emit(&k, (const uint8_t *)": ", 2);
		emit(&k, s->fmt_pre, s->pre_len);
		emit(&k, s->value, s->value_len);
		emit(&k, s->fmt_post, s->post_len);
		emit(&k, (const uint8_t *)"\r\n", 2);
	}
	emit(&k, (const uint8_t *)"\r\n", 2);
	if (k.full)
		return SUBST_TOO_LARGE;
	*out_len = k.len;
	*used = want;
	return SUBST_DONE;
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t secret_b64_encode(const uint8_t *in, size_t len, uint8_t *out,
			 size_t outsz)
{
	size_t need = (len + 2) / 3 * 4;
	if (need > outsz)
		return 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = (uint8_t)b64[(v >> 18) & 63];
		out[o++] = (uint8_t)b64[(v >> 12) & 63];
		out[o++] = i + 1 < len ? (uint8_t)b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? (uint8_t)b64[v & 63] : '=';
	}
	return o;
}

static int b64_val(uint8_t ch)
{
	const char *p = ch ? strchr(b64, ch) : NULL;
	return p ? (int)(p - b64) : -1;
}

long secret_b64_decode(const uint8_t *in, size_t len, uint8_t *out,
		       size_t outsz)
{
	if (len % 4)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		for (int j = 0; j < 4; j++) {
			if (in[i + j] == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad)
				return -1;
			v[j] = b64_val(in[i + j]);
			if (v[j] < 0)
				return -1;
		}
		uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		size_t n = 3 - (size_t)pad;
		if (o + n > outsz)
			return -1;
		out[o++] = (uint8_t)(x >> 16);
		if (n > 1)
			out[o++] = (uint8_t)(x >> 8);
		if (n > 2)
			out[o++] = (uint8_t)x;
	}
	return (long)o;
}
