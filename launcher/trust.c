/* Repository policy trust: read once, hash, diff, approve, copy (trust.h). */
#include "trust.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "../policy/policy.h"

void trust_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != 32) {
		/* Fail closed: a hash no approval can have. */
		memset(out, 'x', 64);
		out[64] = '\0';
		return;
	}
	for (unsigned i = 0; i < 32; i++)
		fmt_buf(out + 2 * i, 3, "%02x", md[i]);
}

int trust_read_repo_policy(const char *workspace, char **data, size_t *len,
			   char *err, size_t errsz)
{
	*data = NULL;
	*len = 0;
	_cleanup_close_ int wfd =
		open(workspace, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (wfd < 0) {
		int e = errno;
		fmt_buf(err, errsz, "workspace %s: %s", workspace, strerror(e));
		return -e;
	}
	/* O_NOFOLLOW on each component: a symlink could point the host at
	 * any file it can read (outside the workspace), or at one the agent
	 * controls later. */
	_cleanup_close_ int sfd = openat(
		wfd, ".sandbox", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0) {
		int e = errno;
		if (e == ENOENT)
			return 0;
		if (e == ELOOP || e == ENOTDIR) {
			struct stat st;
			bool link = fstatat(wfd, ".sandbox", &st,
					    AT_SYMLINK_NOFOLLOW) == 0 &&
				    S_ISLNK(st.st_mode);
			fmt_buf(err, errsz,
				"%s/.sandbox is %s; refusing the repository "
				"policy",
				workspace,
				link ? "a symbolic link" : "not a directory");
			return link ? -ELOOP : -EINVAL;
		}
		fmt_buf(err, errsz, "%s/.sandbox: %s", workspace, strerror(e));
		return -e;
	}
	_cleanup_close_ int fd =
		openat(sfd, "policy.yaml",
		       O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return 0;
		fmt_buf(err, errsz, "%s/" TRUST_REPO_POLICY " %s", workspace,
			e == ELOOP ? "is a symbolic link; refusing it (a "
				     "repository policy must be a regular file "
				     "inside the workspace)"
				   : strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		fmt_buf(err, errsz, "%s/" TRUST_REPO_POLICY " is not a regular "
				    "file; refusing it",
			workspace);
		return -EINVAL;
	}
	if (st.st_size > TRUST_MAX_BYTES) {
		fmt_buf(err, errsz, "%s/" TRUST_REPO_POLICY " is larger than "
				    "1 MiB; refusing it",
			workspace);
		return -EFBIG;
	}
	/* Read to EOF rather than trusting st_size: the file may grow under
	 * us; whatever we end up with is what gets hashed and used. */
	size_t cap = (size_t)st.st_size + 1, n = 0;
	_cleanup_free_ char *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap > TRUST_MAX_BYTES) {
				fmt_buf(err, errsz,
					"%s/" TRUST_REPO_POLICY " is larger "
					"than 1 MiB; refusing it",
					workspace);
				return -EFBIG;
			}
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb)
				return -ENOMEM;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read_retry(fd, buf + n, cap - n);
		if (r < 0) {
			int e = (int)-r;
			fmt_buf(err, errsz, "%s/" TRUST_REPO_POLICY ": %s",
				workspace, strerror(e));
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*data = steal_ptr(&buf);
	*len = n;
	return 0;
}

int trust_dir_path(const char *o_dir, char *out, size_t outsz)
{
	if (o_dir)
		return fmt_buf(out, outsz, "%s", o_dir);
	const char *xdg = getenv("XDG_CONFIG_HOME");
	if (xdg && xdg[0] == '/')
		return fmt_buf(out, outsz, "%s/sandbox/trusted", xdg);
	const char *home = getenv("HOME");
	if (!home || home[0] != '/')
		return -ENOENT;
	return fmt_buf(out, outsz, "%s/.config/sandbox/trusted", home);
}

static bool is_hash(const char *h)
{
	if (strlen(h) != 64)
		return false;
	for (const char *p = h; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* The effect of a diff, one key per widening (policy_widening_key). */
struct effect {
	char **keys; /* owned */
	size_t n;
};

static void effect_free(struct effect *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->keys[i]);
	free(e->keys);
	e->keys = NULL;
	e->n = 0;
}

static int effect_of(const struct policy_diff *d, struct effect *e)
{
	e->n = 0;
	e->keys = calloc(d->count + 1, sizeof(*e->keys));
	if (!e->keys)
		return -ENOMEM;
	for (size_t i = 0; i < d->count; i++) {
		if (!(e->keys[i] = policy_widening_key(&d->items[i]))) {
			effect_free(e);
			return -ENOMEM;
		}
		e->n++;
	}
	return 0;
}

/* Is every widening of the effect among the "widening KEY" lines of the
 * approval text? Sets *which to the first that is not (or -1). */
static bool covers(const char *text, const struct effect *e, ssize_t *which)
{
	*which = -1;
	for (size_t i = 0; i < e->n; i++) {
		/* An undecided check says nothing about the effect: what was
		 * approved before cannot cover it, so it is asked each time. */
		if (!strncmp(e->keys[i], "undecided", 9)) {
			*which = (ssize_t)i;
			return false;
		}
		bool found = false;
		size_t kl = strlen(e->keys[i]);
		for (const char *l = text; l && *l && !found;) {
			const char *nl = strchr(l, '\n');
			size_t n = nl ? (size_t)(nl - l) : strlen(l);
			found = n == 10 + kl && !memcmp(l, "widening: ", 10) &&
				!memcmp(l + 10, e->keys[i], kl);
			l = nl ? nl + 1 : NULL;
		}
		if (!found) {
			*which = (ssize_t)i;
			return false;
		}
	}
	return true;
}

int trust_approval_state(const char *dir, const char *sha256,
			 const struct policy_diff *d)
{
	char path[PATH_MAX];
	struct stat st;
	if (!is_hash(sha256) ||
	    fmt_buf(path, sizeof(path), "%s/%s", dir, sha256) ||
	    lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return TRUST_NOT_APPROVED;
	_cleanup_free_ char *text = NULL;
	if (read_file(path, 4u << 20, &text, NULL) < 0)
		return TRUST_NOT_APPROVED;
	struct effect e;
	if (effect_of(d, &e) < 0)
		return -ENOMEM;
	ssize_t which;
	bool ok = covers(text, &e, &which);
	effect_free(&e);
	return ok ? TRUST_APPROVED : TRUST_APPROVED_NARROWER;
}

bool trust_is_approved(const char *dir, const char *sha256,
		       const struct policy_diff *d)
{
	return trust_approval_state(dir, sha256, d) == TRUST_APPROVED;
}

/* mkdir -p with mode 0700 for the parts we create. */
static int mkdirs(const char *path)
{
	char p[PATH_MAX];
	if (fmt_buf(p, sizeof(p), "%s", path) < 0)
		return -ENAMETOOLONG;
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0700) < 0 && errno != EEXIST)
				return -errno;
			*s = c;
			if (!c)
				break;
		}
	}
	return 0;
}

/* Write data to dir/name through a temporary file and rename(2), so a
 * reader never sees half a file. */
static int write_atomic(const char *dir, const char *name, const void *data,
			size_t len, char *path_out, size_t path_sz)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	if (fmt_buf(path, sizeof(path), "%s/%s", dir, name) < 0 ||
	    fmt_buf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, name,
		    (long)getpid()) < 0)
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(
		tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int r = write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	if (path_out)
		fmt_buf(path_out, path_sz, "%s", path);
	return 0;
}

int trust_record(const char *dir, const char *sha256, const char *workspace,
		 const struct policy_diff *d)
{
	if (!is_hash(sha256))
		return -EINVAL;
	int r = mkdirs(dir);
	if (r < 0)
		return r;
	char when[64] = "unknown";
	time_t now = time(NULL);
	struct tm tm;
	if (gmtime_r(&now, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	struct effect e;
	if ((r = effect_of(d, &e)) < 0)
		return r;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		effect_free(&e);
		return -ENOMEM;
	}
	/* The approval is of the effect that was shown: each widening, as
	 * policy_widening_key words it. A later run with the same bytes is
	 * approved only while its widenings are all among these. */
	fprintf(f, "sha256 %s\nworkspace %s\napproved %s\n", sha256,
		workspace, when);
	/* What was approved before for these bytes (another agent's preset,
	 * an earlier policy) stays approved: the union. */
	_cleanup_free_ char *old = NULL;
	char path[PATH_MAX];
	if (fmt_buf(path, sizeof(path), "%s/%s", dir, sha256) == 0 &&
	    read_file(path, 4u << 20, &old, NULL) == 0) {
		for (const char *l = old; *l;) {
			const char *nl = strchr(l, '\n');
			size_t n = nl ? (size_t)(nl - l) : strlen(l);
			bool dup = false;
			for (size_t i = 0; i < e.n && !dup; i++)
				dup = n == 10 + strlen(e.keys[i]) &&
				      !memcmp(l + 10, e.keys[i], n - 10);
			if (n > 10 && !memcmp(l, "widening: ", 10) && !dup)
				fprintf(f, "%.*s\n", (int)n, l);
			l = nl ? nl + 1 : l + n;
		}
	}
	for (size_t i = 0; i < e.n; i++)
		fprintf(f, "widening: %s\n", e.keys[i]);
	effect_free(&e);
	if (fclose(f) != 0 || !buf) {
		free(buf);
		return -ENOMEM;
	}
	r = write_atomic(dir, sha256, buf, len, NULL, 0);
	free(buf);
	return r;
}

/* Has the launcher's signalfd something to say? (Not read: the launcher
 * reads it and tears down.) */
static bool signal_pending(void *arg)
{
	const int *fd = arg;
	struct pollfd p = {.fd = *fd, .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

/* Show the diff and ask; default No. Returns 1 (yes), 0 (no) or -EINTR
 * when a signal came while waiting for the answer. */
static int ask(const struct trust_opts *o, const char *shown,
	       const char *sha, const struct policy_diff *d, bool again)
{
	FILE *out = o->tty_out;
	fputs("The repository policy ", out);
	term_fputs(shown, out, false);
	fprintf(out, " (sha256 %.16s...)\n", sha);
	if (again)
		fputs("was approved before, but against your policy as it is "
		      "now it widens more than what you approved (your policy, "
		      "the presets or the agent changed). It now widens:\n",
		      out);
	else
		fputs("widens this sandbox's network access beyond your "
		      "policy:\n",
		      out);
	policy_diff_print(out, d, false);
	fprintf(out, "Trust this file? Your answer is remembered for these "
		     "exact contents and this effect. [y/N] ");
	fflush(out);
	struct pollfd p[2] = {{.fd = fileno(o->tty_in), .events = POLLIN},
			      {.fd = o->sigfd ? *o->sigfd : -1,
			       .events = POLLIN}};
	for (;;) {
		int n = poll(p, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 0;
		if (p[1].revents & POLLIN) {
			fputc('\n', out);
			return -EINTR;
		}
		if (p[0].revents)
			break;
	}
	char line[64];
	if (!fgets(line, sizeof(line), o->tty_in))
		return 0;
	line[strcspn(line, "\r\n")] = '\0';
	return !strcasecmp(line, "y") || !strcasecmp(line, "yes");
}

int trust_check_repo_policy(const struct trust_opts *o,
			    struct trust_result *res, char *err, size_t errsz)
{
	memset(res, 0, sizeof(*res));
	err[0] = '\0';
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = trust_read_repo_policy(o->workspace, &data, &len, err, errsz);
	if (r < 0 || !data)
		return r;
	res->present = true;
	trust_sha256_hex(data, len, res->sha256);

	char shown[PATH_MAX];
	fmt_buf(shown, sizeof(shown), "%s/" TRUST_REPO_POLICY, o->workspace);
	struct policy_errors errs = {0};
	struct policy_diff d;
	r = policy_diff_compute_ex(o->base_files, o->n_base, o->preset_dir,
				   shown, data, len,
				   o->sigfd ? signal_pending : NULL,
				   (void *)o->sigfd, &d, &errs);
	if (r == -EINTR) {
		policy_errors_free(&errs);
		fmt_buf(err, errsz, "interrupted");
		return r;
	}
	if (r < 0) {
		fmt_buf(err, errsz, "%s%s",
			errs.count ? errs.msgs[0] : "cannot check the repository "
						    "policy: ",
			errs.count ? (errs.count > 1 ? " (and more errors)" : "")
				   : strerror(-r));
		policy_errors_free(&errs);
		return r == -E2BIG ? -EFBIG : r;
	}
	policy_errors_free(&errs);
	res->widens = d.count > 0;

	if (res->widens) {
		char dir[PATH_MAX];
		r = trust_dir_path(o->trust_dir, dir, sizeof(dir));
		if (r < 0) {
			fmt_buf(err, errsz, "cannot find the trust store: set "
					    "XDG_CONFIG_HOME or HOME");
			policy_diff_free(&d);
			return r;
		}
		int state = trust_approval_state(dir, res->sha256, &d);
		if (state < 0) {
			policy_diff_free(&d);
			fmt_buf(err, errsz, "out of memory");
			return state;
		}
		bool ok = state == TRUST_APPROVED;
		bool again = state == TRUST_APPROVED_NARROWER;
		int yes = 0;
		if (!ok && !o->assume_yes && o->tty_in && o->tty_out)
			yes = ask(o, shown, res->sha256, &d, again);
		if (yes == -EINTR) {
			policy_diff_free(&d);
			fmt_buf(err, errsz, "interrupted");
			return -EINTR;
		}
		if (!ok && (o->assume_yes || yes == 1)) {
			r = trust_record(dir, res->sha256, o->workspace, &d);
			if (r < 0) {
				fmt_buf(err, errsz, "cannot record the approval "
						    "in %s: %s",
					dir, strerror(-r));
				policy_diff_free(&d);
				return r;
			}
			ok = res->approved_now = true;
		}
		if (!ok) {
			fmt_buf(err, errsz,
				"%s widens the network policy (%zu change%s)%s "
				"and is not trusted; review it with "
				"`sandbox-policy diff YOUR-POLICY -- %s`, then "
				"approve it with --trust or on a terminal",
				shown, d.count, d.count == 1 ? "" : "s",
				again ? " more than you approved before (your "
					"policy changed)"
				      : "",
				shown);
			policy_diff_free(&d);
			return -EACCES;
		}
	}
	policy_diff_free(&d);
	r = write_atomic(o->run_dir, "repo-policy.yaml", data, len,
			 res->copy_path, sizeof(res->copy_path));
	if (r < 0) {
		fmt_buf(err, errsz, "cannot copy the repository policy into %s: %s",
			o->run_dir, strerror(-r));
		return r;
	}
	return 0;
}
