/* sandbox-launch runs [--json] [--name NAME]
 * sandbox-launch runs prune --older-than AGE [--name NAME] [--dry-run]
 *
 * The kept run directories (state_dir.c, run_dir_create): listed, and
 * removed on request. Every run leaves one, with its audit log, so they
 * pile up; nothing removes one unasked. prune never removes a run whose
 * launcher still runs, nor the latest run of a named sandbox (list's
 * allowed and denied counts are read from it).
 *
 * A run's launcher runs when its pid (the directory's last field) exists
 * and that process started no later than the directory was last changed:
 * a pid reused by a later process then reads as stopped, and a live
 * launcher never does (it made the directory after it started). */
#include "cmds.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/termsafe.h"
#include "../common/util.h"

static const char runs_usage[] =
	"usage: sandbox-launch runs [--json] [--name NAME]\n"
	"       sandbox-launch runs prune --older-than AGE [--name NAME] "
	"[--dry-run]\n"
	"\n"
	"Every run keeps a directory under $XDG_STATE_HOME/sandbox/runs\n"
	"(default ~/.local/state/sandbox/runs): its audit log (audit.jsonl),\n"
	"the guest's console log, the QEMU, proxy and virtiofsd logs and the\n"
	"policy it was given. runs lists them, oldest first: when it started,\n"
	"the sandbox's name (unnamed runs are \"sandbox\"), running or stopped,\n"
	"its size on disk and its path. --json prints one JSON array.\n"
	"\n"
	"prune removes the runs that started more than AGE ago: a number and\n"
	"a unit, s, m, h, d or w (30d, 12h; 0d: every run it may remove).\n"
	"It never removes a run whose launcher still runs, nor the latest run\n"
	"of a named sandbox ('list' reads its audit log; 'rm NAME' first).\n"
	"--name limits either to one sandbox's runs; --dry-run (-n) only says\n"
	"what would go. Audit logs go with their runs: keep the ones to review.\n"
	"\n"
	"Example: sandbox-launch runs prune --older-than 30d --dry-run\n";

struct run_entry {
	char id[NAME_MAX + 1]; /* YYYYMMDD-HHMMSS-NAME-PID */
	char name[33];
	time_t started;
	pid_t pid;
};

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* A directory name run_dir_create made; anything else is not a run and
 * is never touched. */
static bool run_entry_parse(const char *id, struct run_entry *r)
{
	size_t len = strlen(id);
	const char *dash = strrchr(id, '-');
	if (len < 19 || len >= sizeof(r->id) || !digits(id, 8) ||
	    id[8] != '-' || !digits(id + 9, 6) || id[15] != '-' ||
	    dash <= id + 15 || !dash[1] || !digits(dash + 1, strlen(dash + 1)) ||
	    strlen(dash + 1) > 9)
		return false;
	size_t nlen = (size_t)(dash - (id + 16));
	if (nlen == 0 || nlen >= sizeof(r->name))
		return false;
	memcpy(r->name, id + 16, nlen);
	r->name[nlen] = '\0';
	if (!launch_name_valid(r->name))
		return false;
	struct tm tm = {
		.tm_year = num(id, 4) - 1900,
		.tm_mon = num(id + 4, 2) - 1,
		.tm_mday = num(id + 6, 2),
		.tm_hour = num(id + 9, 2),
		.tm_min = num(id + 11, 2),
		.tm_sec = num(id + 13, 2),
		.tm_isdst = -1,
	};
	r->started = mktime(&tm);
	r->pid = (pid_t)atoi(dash + 1);
	memcpy(r->id, id, len + 1);
	return r->started != (time_t)-1 && r->pid > 0;
}

/* When process pid started (Unix seconds, rounded down), 0 when there is
 * no such process, -1 when that cannot be told. */
static long long process_start(pid_t pid)
{
	char path[64], buf[1024];
	fmt_buf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the command's closing parenthesis: state is field 3,
	 * starttime (clock ticks after boot) field 22. */
	char *p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	unsigned long long ticks;
	if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
		return -1;
	static long long btime = -1;
	if (btime < 0) {
		_cleanup_fclose_ FILE *s = fopen("/proc/stat", "re");
		char line[256];
		while (s && fgets(line, sizeof(line), s))
			if (sscanf(line, "btime %lld", &btime) == 1)
				break;
	}
	long hz = sysconf(_SC_CLK_TCK);
	if (btime < 0 || hz <= 0)
		return -1;
	return btime + (long long)(ticks / (unsigned long long)hz);
}

static bool run_running(const struct run_entry *r, const struct stat *st)
{
	long long start = process_start(r->pid);
	if (start == 0)
		return false;
	if (start < 0)
		return true; /* cannot tell: treated as running, kept */
	long long changed = (long long)st->st_mtime;
	if (changed < (long long)r->started)
		changed = (long long)r->started;
	/* btime and the stamp are whole seconds: a second's slack. */
	return start <= changed + 1;
}

/* Bytes on disk under dfd/name, symbolic links not followed. */
static unsigned long long tree_bytes(int dfd, const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	unsigned long long total = (unsigned long long)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode))
		return total;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					   O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return total;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			total += tree_bytes(dirfd(d), e->d_name);
	closedir(d);
	return total;
}

static void human(unsigned long long b, char *out, size_t n)
{
	static const char unit[] = "KMGT";
	double v = (double)b;
	if (b < 1024) {
		fmt_buf(out, n, "%lluB", b);
		return;
	}
	size_t u = 0;
	for (v /= 1024; v >= 1024 && u + 1 < sizeof(unit) - 1; u++)
		v /= 1024;
	fmt_buf(out, n, v < 10 ? "%.1f%c" : "%.0f%c", v, unit[u]);
}

/* The ids of the run directories named sandboxes point at (their latest
 * runs), malloc'd, into *ids: their count, or -1 when the registry could
 * not be read whole (prune then removes nothing). */
static ssize_t latest_runs(char (**ids)[NAME_MAX + 1])
{
	char base[PATH_MAX];
	*ids = NULL;
	if (sandboxes_base(base, sizeof(base), false))
		return 0;
	DIR *d = opendir(base);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	size_t n = 0, cap = 0;
	struct dirent *e;
	ssize_t r = 0;
	while (r == 0 && (e = readdir(d))) {
		char dir[PATH_MAX];
		struct sandbox_meta m;
		if (e->d_name[0] == '.' ||
		    fmt_buf(dir, sizeof(dir), "%s/%s", base, e->d_name) ||
		    sandbox_meta_read(dir, &m) || !m.run_dir[0])
			continue;
		const char *slash = strrchr(m.run_dir, '/');
		const char *id = slash ? slash + 1 : m.run_dir;
		if (strlen(id) > NAME_MAX)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			void *p = realloc(*ids, cap * sizeof(**ids));
			if (!p) {
				r = -1;
				break;
			}
			*ids = p;
		}
		memcpy((*ids)[n++], id, strlen(id) + 1);
	}
	closedir(d);
	return r ? r : (ssize_t)n;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

struct runs_opts {
	bool json, prune, dry;
	const char *name;
	long long older_than; /* seconds; prune only */
};

static int runs_args(int argc, char **argv, struct runs_opts *o)
{
	*o = (struct runs_opts){.older_than = -1};
	int i = 1;
	if (i < argc && !strcmp(argv[i], "prune")) {
		o->prune = true;
		i++;
	}
	const char *cmd = o->prune ? "runs prune" : "runs";
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(runs_usage, stdout);
			return 0;
		} else if (!o->prune && !strcmp(a, "--json")) {
			o->json = true;
		} else if (o->prune &&
			   (!strcmp(a, "--dry-run") || !strcmp(a, "-n"))) {
			o->dry = true;
		} else if (!strcmp(a, "--name") && i + 1 < argc) {
			o->name = argv[++i];
			if (!launch_name_valid(o->name)) {
				fprintf(stderr, "sandbox-launch %s: --name: not "
						"a sandbox name: ", cmd);
				term_fputs(o->name, stderr, false);
				fputc('\n', stderr);
				return 2;
			}
		} else if (o->prune && !strcmp(a, "--older-than") &&
			   i + 1 < argc) {
			if (duration_parse(argv[++i], &o->older_than)) {
				fprintf(stderr, "sandbox-launch runs prune: "
						"--older-than: not an age: ");
				term_fputs(argv[i], stderr, false);
				fputs(" (a number and s, m, h, d or w: 30d)\n",
				      stderr);
				return 2;
			}
		} else {
			fprintf(stderr, "sandbox-launch %s: unknown or "
					"incomplete argument ", cmd);
			term_fputs(a, stderr, false);
			fputs(" (try --help)\n", stderr);
			return 2;
		}
	}
	if (o->prune && o->older_than < 0) {
		fputs("sandbox-launch runs prune: --older-than AGE is required "
		      "(which runs to remove: 30d, 12h; try --help)\n",
		      stderr);
		return 2;
	}
	return -1;
}

/* audit: the run's audit log, NULL when it has none. */
static void list_one(const struct run_entry *r, const char *path,
		     bool running, unsigned long long bytes, bool json,
		     bool first, const char *audit)
{
	if (json) {
		printf("%s\n  {\"path\": ", first ? "" : ",");
		term_put_json_str(stdout, path);
		printf(", \"name\": \"%s\", \"started\": %lld, \"pid\": %d, "
		       "\"running\": %s, \"bytes\": %llu, \"audit\": ",
		       r->name, (long long)r->started, (int)r->pid,
		       running ? "true" : "false", bytes);
		if (audit)
			term_put_json_str(stdout, audit);
		else
			fputs("null", stdout);
		fputc('}', stdout);
		return;
	}
	char when[32] = "?", size[16];
	struct tm tm;
	if (localtime_r(&r->started, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	human(bytes, size, sizeof(size));
	printf("%-19s  %-24s %-8s %6s  ", when, r->name,
	       running ? "running" : "stopped", size);
	term_fputs(path, stdout, false);
	fputc('\n', stdout);
}

int cmd_runs(int argc, char **argv)
{
	struct runs_opts o;
	int rc = runs_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	rc = 0;
	_cleanup_free_ char(*latest)[NAME_MAX + 1] = NULL;
	ssize_t n_latest = o.prune ? latest_runs(&latest) : 0;
	if (n_latest < 0) {
		fputs("sandbox-launch runs prune: the named sandboxes' registry "
		      "cannot be read: nothing removed\n",
		      stderr);
		return 1;
	}
	char base[PATH_MAX];
	if (run_base(base, sizeof(base), false)) {
		fputs("sandbox-launch runs: no run directory: neither "
		      "XDG_STATE_HOME nor HOME is an absolute path\n",
		      stderr);
		return 1;
	}
	struct dirent **ents = NULL;
	int n = scandir(base, &ents, NULL, by_name);
	if (n < 0 && errno != ENOENT) {
		fprintf(stderr, "sandbox-launch runs: %s: %s\n", base,
			strerror(errno));
		return 1;
	}
	int bfd = n < 0 ? -1 : open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (n >= 0 && bfd < 0) {
		fprintf(stderr, "sandbox-launch runs: %s: %s\n", base,
			strerror(errno));
		rc = 1;
	}
	time_t now = time(NULL);
	unsigned long long freed = 0;
	size_t removed = 0, kept = 0;
	bool first = true;
	if (!o.prune && o.json)
		fputs("[", stdout);
	else if (!o.prune)
		printf("%-19s  %-24s %-8s %6s  %s\n", "STARTED", "NAME", "STATE",
		       "SIZE", "PATH");
	for (int i = 0; i < n && bfd >= 0; i++) {
		struct run_entry r;
		struct stat st;
		char path[PATH_MAX];
		if (!run_entry_parse(ents[i]->d_name, &r) ||
		    (o.name && strcmp(o.name, r.name)) ||
		    fstatat(bfd, r.id, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) ||
		    fmt_buf(path, sizeof(path), "%s/%s", base, r.id))
			continue;
		if (!o.prune) {
			struct stat a;
			char audit[PATH_MAX + 16];
			bool has_audit =
				!fmt_buf(audit, sizeof(audit), "%s/audit.jsonl",
					 path) &&
				lstat(audit, &a) == 0;
			list_one(&r, path, run_running(&r, &st),
				 tree_bytes(bfd, r.id), o.json, first,
				 has_audit ? audit : NULL);
			first = false;
			continue;
		}
		if ((long long)(now - r.started) < o.older_than)
			continue;
		const char *why =
			run_running(&r, &st) ? "its launcher runs" : NULL;
		for (ssize_t k = 0; !why && k < n_latest; k++)
			if (!strcmp(latest[k], r.id))
				why = "the latest run of a named sandbox";
		if (why) {
			printf("%s: kept: %s\n", r.id, why);
			kept++;
			continue;
		}
		unsigned long long bytes = tree_bytes(bfd, r.id);
		char size[16];
		human(bytes, size, sizeof(size));
		if (o.dry) {
			printf("%s: would be removed (%s)\n", r.id, size);
		} else {
			int e = sandbox_remove(path);
			if (e) {
				fprintf(stderr, "sandbox-launch runs prune: "
						"%s: %s\n",
					path, strerror(-e));
				rc = 1;
				continue;
			}
			printf("%s: removed (%s)\n", r.id, size);
		}
		freed += bytes;
		removed++;
	}
	if (bfd >= 0)
		close(bfd);
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	if (!o.prune) {
		if (o.json)
			fputs(first ? "]\n" : "\n]\n", stdout);
		return rc;
	}
	char size[16];
	human(freed, size, sizeof(size));
	printf("%s %zu run%s (%s); kept %zu\n",
	       o.dry ? "would remove" : "removed", removed,
	       removed == 1 ? "" : "s", size, kept);
	return rc;
}
