#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tests_run, tests_failed;

static bool report(bool cond, const char *file, int line, const char *fmt,
		   va_list ap)
{
	tests_run++;
	if (!cond)
		tests_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tests_run);
	vprintf(fmt, ap);
	printf("\n");
	if (!cond)
		printf("#   Failed at %s:%d\n", file, line);
	fflush(stdout);
	return cond;
}

bool ok_at(bool cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool r = report(cond, file, line, fmt, ap);
	va_end(ap);
	return r;
}

bool tap_is_str(const char *got, const char *want, const char *file, int line,
		const char *fmt, ...)
{
	bool cond = (got == NULL && want == NULL) ||
		    (got && want && strcmp(got, want) == 0);
	va_list ap;
	va_start(ap, fmt);
	bool r = report(cond, file, line, fmt, ap);
	va_end(ap);
	if (!cond)
		tap_diag("  got \"%s\", want \"%s\"", got ? got : "(null)",
			 want ? want : "(null)");
	return r;
}

bool tap_is_int(long long got, long long want, const char *file, int line,
		const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool r = report(got == want, file, line, fmt, ap);
	va_end(ap);
	if (!r)
		tap_diag("  got %lld, want %lld", got, want);
	return r;
}

bool tap_diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	return false;
}

int done_testing(void)
{
	printf("1..%d\n", tests_run);
	return tests_failed ? 1 : 0;
}
