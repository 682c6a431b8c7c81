/* The audit log writer. Each record is rendered into a line of at most
 * AUDIT_LINE_MAX bytes; whole lines are handed to a single write(2) per
 * batch (audit_write_bodies; one line for audit_write) on an O_APPEND
 * descriptor: Linux appends such a write to a regular file as a unit, so two
 * processes never leave half a record or two records on one line (a write
 * cut short by a full disk or a SIGKILL leaves a torn last line, which the
 * next writer ends, see sync_chain). Rendering, escaping and the chain's fields are in audit_render.c.
 *
 * Tamper evidence (the format: audit_render.c): the chain state lives in
 * the file, not in this process:
 * each write takes a POSIX write lock on the file and re-reads the last
 * line when the file changed size behind our back (another writer, a
 * restart after a crash, a rotation by another process).
 *
 * Cost: a batch is lock, stat(path), write, unlock. The stat both detects
 * a rotation (the path names another inode than the one we hold open; our
 * open descriptor keeps that inode number from being reused) and, when it
 * does not, gives the size of our file under the lock, so no fstat is
 * needed; the last line is re-read only when that size is not what this
 * writer left. */
#include "audit.h"

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/util.h"

struct audit {
	int fd;
	bool own_fd;
	char *sandbox;       /* owned */
	char *path;          /* owned; NULL for stderr */
	uint64_t max_bytes;  /* 0: no rotation */
	unsigned keep;
	off_t known_size;    /* file size after our last write; -1 unknown */
	dev_t dev;           /* identity of the file fd is open on */
	ino_t ino;
	char last[65];       /* hash of the file's last record */
	/* The cap (docs/audit-log.md, "Rotation"): the first file this
	 * writer wrote a record into, held open so that its inode number
	 * stays its own. Rotation never deletes it: when that is the only way
	 * on, the log is capped for the rest of this writer's life. */
	bool run_known;      /* set with the first record written */
	int run_fd;          /* -1: not held (a failed dup) */
	dev_t run_dev;
	ino_t run_ino;
	bool capped;
	bool closing;        /* audit_close: the last record may pass the cap */
};

static int open_log(const char *path)
{
	return open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY,
		    0600);
}

/* Adopt fd as the log descriptor and remember which file it is. */
static int set_fd(struct audit *a, int fd, struct stat *st)
{
	if (a->fd != fd)
		close(a->fd);
	a->fd = fd;
	if (fstat(fd, st) < 0) {
		a->dev = 0;
		a->ino = 0;
		return -errno;
	}
	a->dev = st->st_dev;
	a->ino = st->st_ino;
	return 0;
}

struct audit *audit_open(const char *path, const char *sandbox, int *err)
{
	if (!path || !*path) {
		*err = -EINVAL;
		return NULL;
	}
	struct audit *a = calloc(1, sizeof(*a));
	if (!a) {
		*err = -ENOMEM;
		return NULL;
	}
	a->known_size = -1;
	a->run_fd = -1;
	memcpy(a->last, AUDIT_GENESIS, 65);
	if (sandbox && !(a->sandbox = strdup(sandbox))) {
		free(a);
		*err = -ENOMEM;
		return NULL;
	}
	if (strcmp(path, "-") == 0) {
		a->fd = STDERR_FILENO;
	} else {
		a->fd = open_log(path);
		if (a->fd < 0 || !(a->path = strdup(path))) {
			*err = a->fd < 0 ? -errno : -ENOMEM;
			if (a->fd >= 0)
				close(a->fd);
			free(a->sandbox);
			free(a);
			return NULL;
		}
		a->own_fd = true;
		struct stat st;
		/* A failure leaves no identity: the first write reopens. */
		set_fd(a, a->fd, &st);
	}
	return a;
}

void audit_set_rotation(struct audit *a, uint64_t max_bytes, unsigned keep)
{
	if (a) {
		a->max_bytes = max_bytes;
		a->keep = keep;
	}
}

void audit_close(struct audit *a)
{
	if (!a)
		return;
	struct audit_record r;
	audit_record_init(&r);
	r.event = "log";
	r.reason = "closed";
	a->closing = true;
	audit_write(a, &r);
	if (a->own_fd)
		close(a->fd);
	if (a->run_fd >= 0)
		close(a->run_fd);
	free(a->sandbox);
	free(a->path);
	free(a);
}

static bool is_hex64(const char *s)
{
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* The hash of the last complete line in the size bytes of fd, or genesis
 * when that line carries none (an empty or pre-chain log). *partial is set
 * when the file ends in a line without its newline (a torn write). */
static int tail_hash(int fd, off_t size, char out[65], bool *partial)
{
	char buf[2 * AUDIT_LINE_MAX];
	*partial = false;
	memcpy(out, AUDIT_GENESIS, 65);
	if (size <= 0)
		return 0;
	off_t start = size > (off_t)sizeof(buf) ? size - (off_t)sizeof(buf) : 0;
	size_t want = (size_t)(size - start), got = 0;
	while (got < want) {
		ssize_t n = pread(fd, buf + got, want - got, start + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	size_t end = got;
	if (end == 0)
		return 0;
	if (buf[end - 1] != '\n') {
		*partial = true;
		while (end > 0 && buf[end - 1] != '\n')
			end--;
		if (end == 0)
			return 0;
	}
	end--; /* drop the newline */
	if (end >= AUDIT_HASH_TAIL &&
	    memcmp(buf + end - AUDIT_HASH_TAIL, ",\"hash\":\"", 9) == 0 &&
	    memcmp(buf + end - 2, "\"}", 2) == 0 &&
	    is_hex64(buf + end - AUDIT_HASH_TAIL + 9)) {
		memcpy(out, buf + end - AUDIT_HASH_TAIL + 9, 64);
		out[64] = '\0';
	}
	return 0;
}

static int lock_fd(int fd, short type)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET};
	while (fcntl(fd, F_SETLKW, &fl) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* Hold the write lock on the file currently at a->path, reopening it when
 * someone rotated or removed the file we had open; *size is its size. */
static int lock_current(struct audit *a, off_t *size)
{
	for (int tries = 0; tries < 16; tries++) {
		struct stat ps;
		int e = lock_fd(a->fd, F_WRLCK);
		if (e < 0)
			return e;
		if (a->ino && stat(a->path, &ps) == 0 &&
		    ps.st_dev == a->dev && ps.st_ino == a->ino) {
			*size = ps.st_size;
			return 0;
		}
		lock_fd(a->fd, F_UNLCK);
		int fd = open_log(a->path);
		if (fd < 0)
			return -errno;
		set_fd(a, fd, &ps);
		a->known_size = -1;
	}
	return -EAGAIN;
}

/* Where the chain stands: the last line of the file, or for an empty file
 * the last line of FILE.1 (so a file created by a rotation, or by a
 * restart after one, continues the chain). A torn last line from a crash
 * is terminated with a newline so that it stays a line of its own; the
 * chain continues from the last complete record. */
static int sync_chain(struct audit *a, off_t *size)
{
	bool partial;
	if (*size == a->known_size)
		return 0;
	int e;
	if (*size == 0) {
		char prev[PATH_MAX];
		memcpy(a->last, AUDIT_GENESIS, 65);
		if (fmt_buf(prev, sizeof(prev), "%s.1", a->path) == 0) {
			int pfd = open(prev, O_RDONLY | O_CLOEXEC | O_NOCTTY);
			if (pfd >= 0) {
				struct stat pst;
				if (fstat(pfd, &pst) == 0)
					tail_hash(pfd, pst.st_size, a->last,
						  &partial);
				close(pfd);
			}
		}
		a->known_size = 0;
		return 0;
	}
	e = tail_hash(a->fd, *size, a->last, &partial);
	if (e < 0)
		return e;
	if (partial) {
		e = write_all(a->fd, "\n", 1);
		if (e < 0)
			return e;
		*size += 1;
	}
	a->known_size = *size;
	return 0;
}

/* Would this rotation delete a file holding this writer's own records? The
 * file it deletes is FILE.<keep> (FILE itself when keep is 0); files move
 * up one index per rotation, so the first file of the run is the oldest of
 * the run's files, and it is the one to watch. */
static bool deletes_own(const struct audit *a)
{
	char victim[PATH_MAX];
	struct stat st;
	if (!a->run_known)
		return false;
	if (a->keep == 0
		    ? fmt_buf(victim, sizeof(victim), "%s", a->path) < 0
		    : fmt_buf(victim, sizeof(victim), "%s.%u", a->path,
			      a->keep) < 0)
		return true; /* cannot tell: keep the records */
	return stat(victim, &st) == 0 && st.st_dev == a->run_dev &&
	       st.st_ino == a->run_ino;
}

static int rotate(struct audit *a, off_t *size)
{
	char from[PATH_MAX], to[PATH_MAX];
	if (deletes_own(a))
		return AUDIT_E_CAP;
	if (a->keep == 0) {
		if (unlink(a->path) < 0 && errno != ENOENT)
			return -errno;
	} else {
		for (unsigned i = a->keep; i >= 1; i--) {
			if (fmt_buf(to, sizeof(to), "%s.%u", a->path, i) < 0)
				return -ENAMETOOLONG;
			if (i == 1)
				fmt_buf(from, sizeof(from), "%s", a->path);
			else
				fmt_buf(from, sizeof(from), "%s.%u", a->path,
					i - 1);
			if (rename(from, to) < 0 && errno != ENOENT)
				return -errno;
		}
	}
	int fd = open_log(a->path);
	if (fd < 0)
		return -errno;
	int e = lock_fd(fd, F_WRLCK);
	if (e < 0) {
		close(fd);
		return e;
	}
	/* Closing the old descriptor drops its lock: the new file is ours. */
	struct stat st;
	e = set_fd(a, fd, &st);
	if (e < 0) {
		a->known_size = -1;
		return e;
	}
	*size = st.st_size;
	/* Someone else may already have written to the new file. */
	if (st.st_size > 0) {
		bool partial;
		a->known_size = -1;
		return tail_hash(fd, st.st_size, a->last, &partial);
	}
	a->known_size = 0;
	return 0;
}

ssize_t audit_body(const struct audit *a, const struct audit_record *r,
		   const struct timespec *ts, char *buf, size_t size)
{
	if (!a)
		return -EINVAL;
	return audit_render_body(a->sandbox, r, ts, buf, size);
}

/* Lines chained in buf and not yet written (audit_write_bodies). */
struct pending {
	char *buf;
	size_t cap, used;
	size_t lines;      /* in buf */
	char prev[65];     /* hash of the last line in buf (or a->last) */
};

static int flush_pending(struct audit *a, struct pending *p, off_t *size,
			 size_t *done)
{
	if (!p->used)
		return 0;
	ssize_t n = write_retry(a->fd, p->buf, p->used);
	if (n != (ssize_t)p->used) {
		/* Only on a full disk or a file size limit (or a SIGKILL). The
		 * lines wholly written are in the file; a torn last one is
		 * ended with a newline by the next write (sync_chain), and the
		 * chain continues from the last whole record. */
		for (ssize_t i = 0; i < n; i++)
			*done += p->buf[i] == '\n';
		a->known_size = -1;
		return n < 0 ? (int)n : -EIO;
	}
	memcpy(a->last, p->prev, 65);
	if (!a->run_known && a->path) {
		/* The pin keeps the inode number from being reused by a new
		 * file. Without it (a failed dup) a reuse could only make the
		 * cap come early: it errs towards keeping records. */
		a->run_fd = fcntl(a->fd, F_DUPFD_CLOEXEC, 3);
		a->run_dev = a->dev;
		a->run_ino = a->ino;
		a->run_known = true;
	}
	if (a->known_size >= 0)
		a->known_size += (off_t)p->used;
	*size += (off_t)p->used;
	*done += p->lines;
	p->used = 0;
	p->lines = 0;
	return 0;
}

/* Chain body into p, writing what p holds first when it is full or when
 * the line would grow the file past the rotation size. */
static int add_line(struct audit *a, struct pending *p, off_t *size,
		    const struct audit_body *b, size_t *done)
{
	char hash[65];
	int e = 0;
	if (b->len > AUDIT_BODY_MAX)
		return -E2BIG;
	if (p->cap - p->used < AUDIT_LINE_MAX &&
	    (e = flush_pending(a, p, size, done)) < 0)
		return e;
	size_t len = b->len + AUDIT_CHAIN_EXTRA;
	uint64_t at = (uint64_t)*size + p->used;
	if (a->path && a->max_bytes && at > 0 && at + len > a->max_bytes &&
	    !a->capped) {
		if ((e = flush_pending(a, p, size, done)) < 0)
			return e;
		e = rotate(a, size);
		if (e == AUDIT_E_CAP) {
			/* The rest of this batch was decided already: it goes
			 * past the cap (at most one batch), then the cap's own
			 * record; the caller stops new work. */
			a->capped = true;
			e = 0;
		}
		if (e < 0)
			return e;
		/* rotate() found a non-empty new file: chain onto it. */
		if (a->known_size < 0 && (e = sync_chain(a, size)) < 0)
			return e;
		memcpy(p->prev, a->last, 65);
	}
	memcpy(p->buf + p->used, b->text, b->len);
	ssize_t n = audit_chain(p->buf + p->used, b->len, p->cap - p->used,
				p->prev, hash);
	if (n < 0)
		return (int)n;
	memcpy(p->prev, hash, 65);
	p->used += (size_t)n;
	p->lines++;
	/* stderr is often a pipe shared with diagnostics: there only a write
	 * of at most PIPE_BUF bytes is atomic, so one line per write. */
	if (!a->path)
		return flush_pending(a, p, size, done);
	return 0;
}

/* The log's own word on why it ends here (docs/audit-log.md, "Rotation"). */
static int add_cap_record(struct audit *a, struct pending *p, off_t *size,
			  size_t *done)
{
	char reason[300], body[AUDIT_BODY_MAX + 2];
	fmt_buf(reason, sizeof(reason),
		"%s: this run's records fill all %u file(s) of %llu bytes; "
		"rotating would delete its own first records, so new work is "
		"refused for the rest of the run (raise --audit-max-bytes or "
		"--audit-keep)",
		AUDIT_CAP_REASON, a->keep + 1,
		(unsigned long long)a->max_bytes);
	struct audit_record r;
	audit_record_init(&r);
	r.event = "log";
	r.decision = "deny";
	r.reason = reason;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ssize_t len = audit_render_body(a->sandbox, &r, &ts, body, sizeof(body));
	if (len < 0)
		return (int)len;
	struct audit_body cb = {body, (size_t)len};
	return add_line(a, p, size, &cb, done);
}

int audit_write_bodies(struct audit *a, const struct audit_body *b, size_t n,
		       char *buf, size_t cap, size_t *done)
{
	*done = 0;
	if (!a || !buf || cap < AUDIT_LINE_MAX)
		return -EINVAL;
	struct pending p = {.buf = buf, .cap = cap};
	off_t size = 0;
	int e = 0;
	if (a->capped && !a->closing)
		return AUDIT_E_CAP;
	bool was_capped = a->capped;
	if (a->path) {
		e = lock_current(a, &size);
		if (e < 0)
			return e;
		e = sync_chain(a, &size);
	}
	memcpy(p.prev, a->last, 65);
	for (size_t i = 0; e == 0 && i < n; i++)
		e = add_line(a, &p, &size, &b[i], done);
	if (e == 0 && a->capped && !was_capped && !a->closing)
		e = add_cap_record(a, &p, &size, done);
	if (e == 0)
		e = flush_pending(a, &p, &size, done);
	if (*done > n)
		*done = n; /* the cap's record is not one of the n */
	if (a->path)
		lock_fd(a->fd, F_UNLCK);
	if (e == 0 && a->capped && !was_capped)
		e = AUDIT_E_CAP;
	return e;
}

int audit_write_at(struct audit *a, const struct audit_record *r,
		   const struct timespec *ts)
{
	char body[AUDIT_LINE_MAX], line[AUDIT_LINE_MAX];
	if (!a || !r || !ts)
		return -EINVAL;
	ssize_t len = audit_body(a, r, ts, body, sizeof(body));
	if (len < 0)
		return (int)len;
	struct audit_body b = {body, (size_t)len};
	size_t done;
	return audit_write_bodies(a, &b, 1, line, sizeof(line), &done);
}

int audit_write(struct audit *a, const struct audit_record *r)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return audit_write_at(a, r, &ts);
}
