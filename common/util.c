#include "util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

const char *program_name = "sandbox";

static int vfmt_at(char *buf, size_t size, size_t at, const char *fmt, va_list ap)
{
	if (at >= size)
		return -ENAMETOOLONG;
	int n = vsnprintf(buf + at, size - at, fmt, ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= size - at)
		return -ENAMETOOLONG;
	return n;
}

int fmt_buf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vfmt_at(buf, size, 0, fmt, ap);
	va_end(ap);
	return n < 0 ? n : 0;
}

int fmt_append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vfmt_at(buf, size, *len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return n;
	*len += (size_t)n;
	return 0;
}

int duration_parse(const char *s, long long *seconds)
{
	size_t n = strlen(s);
	if (n < 2 || n > 12)
		return -EINVAL;
	long long v = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	switch (s[n - 1]) {
	case 's': *seconds = v; return 0;
	case 'm': *seconds = v * 60; return 0;
	case 'h': *seconds = v * 3600; return 0;
	case 'd': *seconds = v * 86400; return 0;
	case 'w': *seconds = v * 7 * 86400; return 0;
	default: return -EINVAL;
	}
}

int read_file(const char *path, size_t max, char **out, size_t *out_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((size_t)st.st_size > max)
		return -EFBIG;
	_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	ssize_t n = read_full(fd, buf, (size_t)st.st_size);
	if (n < 0)
		return (int)n;
	size_t got = (size_t)n;
	buf[got] = '\0';
	*out = steal_ptr(&buf);
	if (out_len)
		*out_len = got;
	return 0;
}

ssize_t read_retry(int fd, void *buf, size_t len)
{
	ssize_t n;
	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

ssize_t read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read_retry(fd, p + got, len - got);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

ssize_t write_retry(int fd, const void *buf, size_t len)
{
	ssize_t n;
	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write_retry(fd, p, len);
		if (n < 0)
			return (int)n;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", program_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}
