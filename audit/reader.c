/* Streaming line reader and the record loop shared by the views. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/util.h"
#include "review.h"

#define CHUNK (1 << 20)

int lr_open(struct line_reader *lr, const char *path)
{
	memset(lr, 0, sizeof(*lr));
	lr->path = path;
	if (strcmp(path, "-") == 0) {
		lr->fd = STDIN_FILENO;
	} else {
		lr->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (lr->fd < 0)
			return -errno;
	}
	lr->cap = CHUNK + LINE_MAX_BYTES;
	lr->buf = malloc(lr->cap);
	if (!lr->buf) {
		if (lr->fd != STDIN_FILENO)
			close(lr->fd);
		return -ENOMEM;
	}
	return 0;
}

void lr_close(struct line_reader *lr)
{
	if (lr->fd > STDIN_FILENO)
		close(lr->fd);
	lr->fd = -1;
	free(lr->buf);
	lr->buf = NULL;
}

void lr_rearm(struct line_reader *lr)
{
	lr->eof = false;
}

int lr_next(struct line_reader *lr, const char **line, size_t *len,
	    bool *torn)
{
	*torn = false;
	for (;;) {
		char *nl = memchr(lr->buf + lr->start, '\n',
				  lr->end - lr->start);
		if (nl) {
			*line = lr->buf + lr->start;
			*len = (size_t)(nl - *line);
			lr->start = (size_t)(nl - lr->buf) + 1;
			lr->lineno++;
			return 1;
		}
		if (lr->eof) {
			if (lr->end == lr->start)
				return 0;
			*line = lr->buf + lr->start;
			*len = lr->end - lr->start;
			lr->start = lr->end;
			lr->lineno++;
			*torn = true;
			return 1;
		}
		if (lr->end - lr->start >= LINE_MAX_BYTES)
			return -E2BIG;
		if (lr->start > 0 && lr->end + CHUNK > lr->cap) {
			memmove(lr->buf, lr->buf + lr->start,
				lr->end - lr->start);
			lr->end -= lr->start;
			lr->start = 0;
		}
		ssize_t n = read(lr->fd, lr->buf + lr->end, lr->cap - lr->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			lr->eof = true;
		lr->end += (size_t)n;
	}
}

static bool exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

void free_strv(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Is some FILE.N of base named on the command line too? Then the user
 * gave the set explicitly and base is not expanded. */
static bool named_rotated(const char *base, const char *const *files,
			  size_t n)
{
	size_t bl = strlen(base);
	for (size_t i = 0; i < n; i++) {
		const char *f = files[i];
		if (strncmp(f, base, bl) != 0 || f[bl] != '.' || !f[bl + 1])
			continue;
		const char *d = f + bl + 1;
		while (*d >= '0' && *d <= '9')
			d++;
		if (!*d)
			return true;
	}
	return false;
}

char **expand_rotated(const char *const *files, size_t n, size_t *out_n)
{
	size_t cap = 16, k = 0;
	char **v = malloc(cap * sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned last = 0;
		char p[4096];
		while (strcmp(files[i], "-") != 0 && last < 100000 &&
		       !named_rotated(files[i], files, n) &&
		       fmt_buf(p, sizeof(p), "%s.%u", files[i], last + 1) ==
			       0 &&
		       exists(p))
			last++;
		/* oldest first: FILE.last ... FILE.1, then FILE (j == 0) */
		for (unsigned j = last + 1; j-- > 0;) {
			if (k + 1 >= cap) {
				char **nv = realloc(v, 2 * cap * sizeof(*v));
				if (!nv)
					goto nomem;
				v = nv, cap *= 2;
			}
			if (j == 0)
				v[k] = strdup(files[i]);
			else if (fmt_buf(p, sizeof(p), "%s.%u", files[i], j) ==
				 0)
				v[k] = strdup(p);
			else
				v[k] = NULL;
			if (!v[k])
				goto nomem;
			k++;
		}
	}
	*out_n = k;
	return v;
nomem:
	free_strv(v, k);
	return NULL;
}

long for_each_record(const struct opts *o, rec_fn fn, void *ctx)
{
	size_t nf;
	char **files = expand_rotated(o->files, o->nfiles, &nf);
	if (!files)
		return -ENOMEM;
	char *scratch = malloc(LINE_MAX_BYTES + 1);
	long bad = 0;
	int e = scratch ? 0 : -ENOMEM;
	for (size_t i = 0; e == 0 && i < nf; i++) {
		struct line_reader lr;
		e = lr_open(&lr, files[i]);
		if (e < 0) {
			fprintf(stderr, "sandbox-audit: %s: %s\n", files[i],
				strerror(-e));
			break;
		}
		const char *line, *why;
		size_t len;
		bool torn;
		int r;
		while ((r = lr_next(&lr, &line, &len, &torn)) > 0) {
			struct rec rec;
			if (len == 0)
				continue;
			if (torn) {
				fprintf(stderr,
					"sandbox-audit: %s:%lu: incomplete last "
					"line (interrupted write), skipped\n",
					files[i], lr.lineno);
				continue;
			}
			if (rec_parse(line, len, &rec, scratch,
				      LINE_MAX_BYTES + 1, &why) != REC_OK) {
				fprintf(stderr,
					"sandbox-audit: %s:%lu: malformed "
					"record: %s\n",
					files[i], lr.lineno, why);
				bad++;
				continue;
			}
			if (!filter_match(&o->filter, &rec))
				continue;
			if ((e = fn(ctx, &rec, line, len, files[i],
				    lr.lineno)) < 0)
				break;
		}
		if (r < 0) {
			fprintf(stderr, "sandbox-audit: %s:%lu: %s\n",
				files[i], lr.lineno + 1,
				r == -E2BIG ? "line longer than 1 MiB"
					    : strerror(-r));
			e = r;
		}
		lr_close(&lr);
	}
	free(scratch);
	free_strv(files, nf);
	return e < 0 ? e : bad;
}
