/* Filters common to every view. --host reuses the policy engine: each
 * pattern becomes a deny rule of a private policy, so "*.x", "**.x" and
 * plain names mean exactly what they mean in a policy file. */
#include <string.h>
#include <time.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "../policy/policy.h"
#include "review.h"

void filter_init(struct filter *f)
{
	memset(f, 0, sizeof(*f));
	f->since = INT64_MIN;
	f->until = INT64_MAX;
}

void filter_free(struct filter *f)
{
	policy_free(f->host);
	f->host = NULL;
}

static char **host_patterns;
static size_t n_host_patterns;

int filter_add_host(struct filter *f, const char *pattern, char *err,
		    size_t errsz)
{
	/* Rebuild from all patterns so far: a policy is immutable. */
	char **v = realloc(host_patterns,
			   (n_host_patterns + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	host_patterns = v;
	host_patterns[n_host_patterns++] = (char *)pattern;
	struct policy_builder *b = policy_builder_new(NULL);
	struct policy_errors errs = {0};
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < n_host_patterns; i++)
		policy_builder_add_rule(b, false, host_patterns[i], "--host",
					&errs);
	struct policy *p = policy_builder_finish(b, &errs);
	if (!p) {
		fmt_buf(err, errsz, "--host %s: %s", pattern,
			errs.count ? errs.msgs[0] : "out of memory");
		policy_errors_free(&errs);
		return -EINVAL;
	}
	policy_errors_free(&errs);
	policy_free(f->host);
	f->host = p;
	return 0;
}

bool filter_match(const struct filter *f, const struct rec *r)
{
	if (f->sandbox && (!r->sandbox || strcmp(f->sandbox, r->sandbox)))
		return false;
	if (f->decision && (!r->decision || strcmp(f->decision, r->decision)))
		return false;
	if ((f->since != INT64_MIN || f->until != INT64_MAX) &&
	    (r->time_ms == INT64_MIN || r->time_ms < f->since ||
	     r->time_ms >= f->until))
		return false;
	if (f->host) {
		char name[256];
		if (!r->host ||
		    policy_normalize_name(r->host, strlen(r->host), name,
					  sizeof(name)) < 0)
			return false;
		struct policy_verdict v = policy_decide_name(f->host, name, 0);
		if (!v.rule.file) /* no rule matched: the default */
			return false;
	}
	return true;
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int parse_when(const char *s, int64_t now, int64_t *ms)
{
	size_t n = strlen(s);
	if (rfc3339_parse(s, n, ms) == 0)
		return 0;
	long long secs;
	if (duration_parse(s, &secs))
		return -EINVAL;
	*ms = now - (int64_t)secs * 1000;
	return 0;
}

void put_json_str(FILE *f, const char *s)
{
	term_put_json_str(f, s);
}

void put_html(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fputs("\xef\xbf\xbd", f);
			else
				fputc(*p, f);
		}
	}
}

void put_time(FILE *f, int64_t ms)
{
	char t[32];
	if (ms == INT64_MIN || ms == INT64_MAX) {
		fputs("-", f);
		return;
	}
	rfc3339_format(ms, t);
	fputs(t, f);
}
