/* Small helpers shared by every program: ownership macros and safe formatting.
 *
 * Error convention (the whole project follows it):
 *   - A fallible function returns 0 on success or a negative errno value
 *     (-EINVAL, -ENOMEM, ...), or NULL for constructors. It never prints.
 *   - Callers add context on the way up; only main() or a connection's
 *     close path turns an error into a message.
 *   - Parsers of untrusted bytes return a named status enum instead and write
 *     a static "why" string; they never allocate, print or touch globals.
 *   - die() exists only for the set-up phase of the launcher and guest init.
 */
#ifndef COMMON_UTIL_H
#define COMMON_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void cleanup_freep(void *p)
{
	free(*(void **)p);
}

static inline void cleanup_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void cleanup_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_free_ __attribute__((cleanup(cleanup_freep)))
#define _cleanup_close_ __attribute__((cleanup(cleanup_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(cleanup_fclosep)))

/* Hand ownership of a cleanup-managed pointer or fd to someone else. */
#define steal_ptr(pp)                                                          \
	({                                                                     \
		__typeof__(*(pp)) _stolen = *(pp);                             \
		*(pp) = NULL;                                                  \
		_stolen;                                                       \
	})

static inline int take_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

/* snprintf that reports truncation: returns 0, or -ENAMETOOLONG when the
 * result did not fit (the buffer then holds a truncated, terminated string). */
int fmt_buf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Append to a buffer at *len, same truncation rule as fmt_buf. */
int fmt_append(char *buf, size_t size, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A duration as the command lines write it: digits and one unit, s, m, h,
 * d or w ("30d", "12h"), 2-12 characters. 0 with *seconds set, or
 * -EINVAL. */
int duration_parse(const char *s, long long *seconds);

/* Read a whole file (up to max bytes) into a NUL-terminated malloc'd buffer. */
int read_file(const char *path, size_t max, char **out, size_t *out_len);

/* The EINTR-safe I/O loops, one each for every program:
 * read_retry: one read(2), retried while a signal interrupts it; returns
 *   the byte count (0 at EOF) or a negative errno.
 * read_full: reads until len bytes or EOF; returns the byte count (less
 *   than len only at EOF) or a negative errno.
 * write_retry: one write(2), retried on EINTR; the count or -errno.
 * write_all: all of buf, retrying on EINTR and short writes; 0 or -errno. */
ssize_t read_retry(int fd, void *buf, size_t len);
ssize_t read_full(int fd, void *buf, size_t len);
ssize_t write_retry(int fd, const void *buf, size_t len);
int write_all(int fd, const void *buf, size_t len);

/* Print "prog: message" to stderr and exit(1). Set-up phases only. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
extern const char *program_name;

#endif
