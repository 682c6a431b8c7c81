/* sandbox-audit follow: like tail -F over one or more logs. A file that is
 * replaced (rotation) is read to its end, then the new file from its
 * start, so no record written around a rotation is missed. */
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/util.h"
#include "review.h"

static const char usage[] =
	"usage: sandbox-audit follow [FILTERS] [--json] [--from-start]\n"
	"                            [--interval SECONDS] FILE...\n"
	"  Print records as they are appended, surviving rotation (like\n"
	"  tail -F). Starts at the end unless --from-start. Stop with ^C.\n"
	"  FILTERS: --sandbox, --host, --decision, --since, --until (see\n"
	"  sandbox-audit summary --help). --json prints the records.\n";

struct followed {
	const char *path;
	struct line_reader lr;
	bool open;
	dev_t dev;
	ino_t ino;
};

static void try_open(struct followed *f, bool at_end)
{
	struct stat st;
	if (lr_open(&f->lr, f->path) < 0)
		return;
	if (fstat(f->lr.fd, &st) < 0) {
		lr_close(&f->lr);
		return;
	}
	f->dev = st.st_dev, f->ino = st.st_ino;
	if (at_end)
		lseek(f->lr.fd, 0, SEEK_END);
	f->open = true;
}

static void drain(struct followed *f, const struct opts *o, char *scratch)
{
	const char *line, *why;
	size_t len;
	bool torn;
	lr_rearm(&f->lr);
	for (;;) {
		/* Hold back a line without its newline: the writer may be in
		 * the middle of it (not with one write(2), but a copy may). */
		size_t save = f->lr.start;
		unsigned long save_no = f->lr.lineno;
		int r = lr_next(&f->lr, &line, &len, &torn);
		if (r <= 0)
			break;
		if (torn) {
			f->lr.start = save;
			f->lr.lineno = save_no;
			break;
		}
		struct rec rec;
		if (len == 0)
			continue;
		if (rec_parse(line, len, &rec, scratch, LINE_MAX_BYTES + 1,
			      &why) != REC_OK) {
			fprintf(stderr, "sandbox-audit: %s:%lu: malformed "
					"record: %s\n",
				f->path, f->lr.lineno, why);
			continue;
		}
		if (!filter_match(&o->filter, &rec))
			continue;
		if (o->json) {
			fwrite(line, 1, len, stdout);
			fputc('\n', stdout);
		} else {
			print_record_line(&rec);
		}
	}
	fflush(stdout);
}

/* Rotated, perhaps several times since the last look: our file is now
 * FILE.k; the files rotated after it, FILE.(k-1) ... FILE.1, are read
 * whole before the new FILE, so no record is skipped. */
static void catch_up(struct followed *f, const struct opts *o, char *scratch)
{
	char p[4096];
	unsigned k = 0;
	for (unsigned i = 1; i <= 1000; i++) {
		struct stat st;
		if (fmt_buf(p, sizeof(p), "%s.%u", f->path, i) < 0 ||
		    stat(p, &st) < 0)
			break;
		if (st.st_dev == f->dev && st.st_ino == f->ino) {
			k = i;
			break;
		}
	}
	for (unsigned i = k; i > 1; i--) {
		struct followed mid = {.path = p};
		if (fmt_buf(p, sizeof(p), "%s.%u", f->path, i - 1) < 0)
			return;
		try_open(&mid, false);
		if (!mid.open)
			continue;
		drain(&mid, o, scratch);
		lr_close(&mid.lr);
	}
}

int cmd_follow(int argc, char **argv)
{
	struct opts o;
	int rc = opts_parse(argc, argv,
			    O_FILTER | O_JSON | O_FROM_START | O_INTERVAL,
			    usage, &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (o.nfiles == 0) {
		fprintf(stderr, "sandbox-audit follow: no FILE given\n%s",
			usage);
		opts_free(&o);
		return 2;
	}
	struct followed *fs = calloc(o.nfiles, sizeof(*fs));
	char *scratch = malloc(LINE_MAX_BYTES + 1);
	if (!fs || !scratch)
		return 2;
	for (size_t i = 0; i < o.nfiles; i++) {
		fs[i].path = o.files[i];
		try_open(&fs[i], !o.from_start);
	}
	signal(SIGPIPE, SIG_DFL);
	struct timespec nap = {.tv_sec = (time_t)o.interval,
			       .tv_nsec = (long)((o.interval -
						  (double)(time_t)o.interval) *
						 1e9)};
	for (;;) {
		for (size_t i = 0; i < o.nfiles; i++) {
			struct followed *f = &fs[i];
			if (!f->open) {
				/* Appeared later: it is new, read it all. */
				try_open(f, false);
				if (!f->open)
					continue;
			}
			drain(f, &o, scratch);
			struct stat st;
			if (stat(f->path, &st) == 0 &&
			    (st.st_dev != f->dev || st.st_ino != f->ino)) {
				drain(f, &o, scratch);
				catch_up(f, &o, scratch);
				lr_close(&f->lr);
				f->open = false;
				try_open(f, false);
				if (f->open)
					drain(f, &o, scratch);
			}
		}
		nanosleep(&nap, NULL);
	}
}
