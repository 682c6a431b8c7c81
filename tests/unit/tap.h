/* A tiny TAP producer for unit tests: ok(cond, fmt...), done_testing(). */
#ifndef TESTS_TAP_H
#define TESTS_TAP_H

#include <stdbool.h>

bool ok_at(bool cond, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define ok(cond, ...) ok_at((cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                 \
	tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__,   \
		   __VA_ARGS__)
bool tap_is_int(long long got, long long want, const char *file, int line,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define is_str(got, want, ...)                                                 \
	tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)
bool tap_is_str(const char *got, const char *want, const char *file, int line,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
bool tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the plan and returns the process exit status (0 when all passed). */
int done_testing(void);

#endif
