/* How a named sandbox was made, remembered (remembered.h). */
#include "remembered.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/util.h"
#include "../parse/inbound.h"
#include "cmds.h"
#include "sandboxes.h"
#include "trust.h"

/* ---- the rows ------------------------------------------------------- */

static int get_uint(unsigned v, struct strv *out)
{
	if (v)
		strv_addf(out, "%u", v);
	return out->failed ? -ENOMEM : 0;
}

static int parse_uint(const char *s, unsigned min, unsigned max,
		      unsigned *out)
{
	unsigned long v = 0;
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return -EINVAL;
	}
	if (v < min)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int get_memory(const struct remembered_ctx *c, struct strv *out,
		      char *err, size_t errsz)
{
	(void)err, (void)errsz;
	return get_uint(c->o->memory_mb, out);
}

static int out_of_range(const char *key, char *err, size_t errsz)
{
	fmt_buf(err, errsz, "%s: a value sandbox-launch would refuse", key);
	return -EINVAL;
}

/* The ranges are launch_opts.c's: the record is a file a user can edit. */
static int apply_memory(struct remembered_ctx *c, const struct strv *rec,
			char *err, size_t errsz)
{
	if (rec->n != 1 ||
	    parse_uint(rec->v[0], 128, 65536, &c->o->memory_mb))
		return out_of_range("memory", err, errsz);
	return 0;
}

static int get_cpus(const struct remembered_ctx *c, struct strv *out,
		    char *err, size_t errsz)
{
	(void)err, (void)errsz;
	return get_uint(c->o->cpus, out);
}

static int apply_cpus(struct remembered_ctx *c, const struct strv *rec,
		      char *err, size_t errsz)
{
	if (rec->n != 1 || parse_uint(rec->v[0], 1, 64, &c->o->cpus))
		return out_of_range("cpus", err, errsz);
	return 0;
}

/* A policy file is recorded as "sha256:HEX PATH": reused only while its
 * bytes are the ones its sandbox was made with. A file the guest could
 * write (one in the workspace), or anyone else, cannot widen a later
 * run that does not name it: that run stops and says so. */
#define POLICY_HASH_PREFIX 72 /* "sha256:" + 64 hex + " " */
#define POLICY_MAX_BYTES (16u << 20)

static int file_sha256(const char *path, char out[65])
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int e = read_file(path, POLICY_MAX_BYTES, &text, &len);
	if (!e)
		trust_sha256_hex(text, len, out);
	return e;
}

static const char *show_policy(const char *value)
{
	return strlen(value) > POLICY_HASH_PREFIX ? value + POLICY_HASH_PREFIX
						  : value;
}

/* --policy files, absolute: the record must not depend on where the
 * next run starts. A file that is not there is an error now, not a
 * record that every later run would trip over. */
static int get_policies(const struct remembered_ctx *c, struct strv *out,
			char *err, size_t errsz)
{
	const struct launch_opts *o = c->o;
	for (size_t i = o->n_policies - c->n_cli_policies; i < o->n_policies;
	     i++) {
		char abs[PATH_MAX], sha[65];
		int e = realpath(o->policies[i], abs) ? 0 : -errno;
		e = e ? e : file_sha256(abs, sha);
		if (e) {
			fmt_buf(err, errsz, "--policy %s: %s", o->policies[i],
				strerror(-e));
			return e;
		}
		strv_addf(out, "sha256:%s %s", sha, abs);
	}
	return out->failed ? -ENOMEM : 0;
}

/* The same files in the same order, whatever their bytes: a file given
 * again is this sandbox's as it is now (its new hash is recorded). */
static bool same_policies(const struct strv *a, const struct strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(show_policy(a->v[i]), show_policy(b->v[i])))
			return false;
	return true;
}

/* The recorded files' strings live as long as the run (o points at them). */
static struct strv kept;

/* The bytes of each recorded file as hashed, in record order: the run
 * gets these, never the file read again (pin_policies), so a rewrite
 * after the check (the file is in the workspace, the guest writes it)
 * cannot reach the proxy. Owned; live as long as the run. */
static struct {
	char *bytes;
	size_t len;
} pinned[SANDBOX_MAX_LIST];
static size_t n_pinned;

static int apply_policies(struct remembered_ctx *c, const struct strv *rec,
			  char *err, size_t errsz)
{
	struct launch_opts *o = c->o;
	for (size_t i = 0; i < rec->n; i++) {
		const char *v = rec->v[i], *path = show_policy(v);
		char sha[65];
		if (strncmp(v, "sha256:", 7) || path == v || path[-1] != ' ' ||
		    path[0] != '/')
			return out_of_range("policy", err, errsz);
		if (n_pinned == ARRAY_SIZE(pinned))
			return out_of_range("policy", err, errsz);
		_cleanup_free_ char *text = NULL;
		size_t len;
		int e = read_file(path, POLICY_MAX_BYTES, &text, &len);
		if (e) {
			fmt_buf(err, errsz, "its --policy %s: %s", path,
				strerror(-e));
			return e;
		}
		trust_sha256_hex(text, len, sha);
		if (strncmp(v + 7, sha, 64)) {
			fmt_buf(err, errsz,
				"its --policy %s has changed since it was "
				"recorded (sha256 %.12s..., now %.12s...): give "
				"--policy %s to use it as it is now",
				path, v + 7, sha, path);
			return -ESTALE;
		}
		pinned[n_pinned].bytes = steal_ptr(&text);
		pinned[n_pinned++].len = len;
	}
	const char **p = realloc(o->policies,
				 (o->n_policies + rec->n) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	o->policies = p;
	for (size_t i = 0; i < rec->n; i++) {
		strv_add(&kept, show_policy(rec->v[i]));
		if (kept.failed)
			return -ENOMEM;
		p[o->n_policies++] = kept.v[kept.n - 1];
		c->n_cli_policies++;
	}
	return 0;
}

/* ---- repeatable lists: published ports, host ports ---- */

/* The recorded strings live as long as the run (o points at them). */
static struct strv kept_lists;

static int get_list(const char *const *v, size_t n, struct strv *out)
{
	for (size_t i = 0; i < n; i++)
		strv_add(out, v[i]);
	return out->failed ? -ENOMEM : 0;
}

/* The same values in any order: `-p 1:1 -p 2:2` is `-p 2:2 -p 1:1`. */
static bool same_set(const struct strv *a, const struct strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		bool found = false;
		for (size_t k = 0; k < b->n && !found; k++)
			found = !strcmp(a->v[i], b->v[k]);
		if (!found)
			return false;
	}
	return true;
}

static int apply_list(const struct strv *rec, const char ***v, size_t *n)
{
	const char **p = calloc(rec->n, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < rec->n; i++) {
		strv_add(&kept_lists, rec->v[i]);
		if (kept_lists.failed) {
			free(p);
			return -ENOMEM;
		}
		p[i] = kept_lists.v[kept_lists.n - 1];
	}
	free(*v);
	*v = p;
	*n = rec->n;
	return 0;
}

static int get_publish(const struct remembered_ctx *c, struct strv *out,
		       char *err, size_t errsz)
{
	(void)err, (void)errsz;
	return get_list(c->o->publish, c->o->n_publish, out);
}

static int apply_publish(struct remembered_ctx *c, const struct strv *rec,
			 char *err, size_t errsz)
{
	for (size_t i = 0; i < rec->n; i++) {
		struct publish_spec ps;
		const char *why;
		if (publish_spec_parse(rec->v[i], &ps, &why) < 0)
			return out_of_range("publish", err, errsz);
	}
	return apply_list(rec, &c->o->publish, &c->o->n_publish);
}

static int get_host_ports(const struct remembered_ctx *c, struct strv *out,
			  char *err, size_t errsz)
{
	(void)err, (void)errsz;
	return get_list(c->o->host_ports, c->o->n_host_ports, out);
}

static int apply_host_ports(struct remembered_ctx *c, const struct strv *rec,
			    char *err, size_t errsz)
{
	for (size_t i = 0; i < rec->n; i++) {
		unsigned port;
		if (parse_uint(rec->v[i], 1, 65535, &port))
			return out_of_range("host_port", err, errsz);
	}
	return apply_list(rec, &c->o->host_ports, &c->o->n_host_ports);
}

/* ---- Docker: on or not, and its registry mirror ---- */

static int get_docker(const struct remembered_ctx *c, struct strv *out,
		      char *err, size_t errsz)
{
	(void)err, (void)errsz;
	if (c->o->docker)
		strv_add(out, "on");
	return out->failed ? -ENOMEM : 0;
}

static int apply_docker(struct remembered_ctx *c, const struct strv *rec,
			char *err, size_t errsz)
{
	if (rec->n != 1 || strcmp(rec->v[0], "on"))
		return out_of_range("docker", err, errsz);
	c->o->docker = true;
	return 0;
}

static const char *show_docker(const char *value)
{
	(void)value;
	return ""; /* the option takes no value: "--docker" */
}

static int get_mirror(const struct remembered_ctx *c, struct strv *out,
		      char *err, size_t errsz)
{
	(void)err, (void)errsz;
	if (c->o->registry_mirror)
		strv_add(out, c->o->registry_mirror);
	return out->failed ? -ENOMEM : 0;
}

static int apply_mirror(struct remembered_ctx *c, const struct strv *rec,
			char *err, size_t errsz)
{
	if (rec->n != 1 || !launch_mirror_valid(rec->v[0]))
		return out_of_range("registry_mirror", err, errsz);
	strv_add(&kept_lists, rec->v[0]);
	if (kept_lists.failed)
		return -ENOMEM;
	c->o->registry_mirror = kept_lists.v[kept_lists.n - 1];
	return 0;
}

/* To remember another option, add its row here (a key, the option, a get
 * and an apply; docs/launcher.md lists them). Keys are words: [a-z_]. */
const struct remembered_setting remembered_table[] = {
	{"memory", "--memory", get_memory, NULL, apply_memory, NULL},
	{"cpus", "--cpus", get_cpus, NULL, apply_cpus, NULL},
	{"policy", "--policy", get_policies, same_policies, apply_policies,
	 show_policy},
	{"publish", "--publish", get_publish, same_set, apply_publish, NULL},
	{"host_port", "--host-port", get_host_ports, same_set,
	 apply_host_ports, NULL},
	{"docker", "--docker", get_docker, NULL, apply_docker, show_docker},
	{"registry_mirror", "--registry-mirror", get_mirror, NULL, apply_mirror,
	 NULL},
};
const size_t remembered_count = ARRAY_SIZE(remembered_table);

_Static_assert(ARRAY_SIZE(remembered_table) <= REMEMBERED_MAX,
	       "raise REMEMBERED_MAX");

/* ---- the record ----------------------------------------------------- */

void remembered_free(struct remembered *r)
{
	for (size_t i = 0; i < REMEMBERED_MAX; i++)
		strv_free(&r->val[i]);
	memset(r, 0, sizeof(*r));
}

static int row_of(const char *key, size_t len)
{
	for (size_t i = 0; i < remembered_count; i++)
		if (strlen(remembered_table[i].key) == len &&
		    !memcmp(remembered_table[i].key, key, len))
			return (int)i;
	return -1;
}

int remembered_parse(const char *text, struct remembered *r, char *err,
		     size_t errsz)
{
	memset(r, 0, sizeof(*r));
	unsigned line = 0;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		line++;
		if (len && p[0] != '#') {
			size_t klen = strcspn(p, " \n");
			int i = row_of(p, klen);
			if (i < 0) {
				fmt_buf(err, errsz,
					"line %u: unknown setting '%.*s'", line,
					(int)(klen < 40 ? klen : 40), p);
				goto bad;
			}
			r->known[i] = true;
			if (klen < len) {
				char *v = strndup(p + klen + 1, len - klen - 1);
				if (!v) {
					remembered_free(r);
					return -ENOMEM;
				}
				strv_add(&r->val[i], v);
				free(v);
				if (r->val[i].failed) {
					remembered_free(r);
					return -ENOMEM;
				}
			}
		}
		p += len + (nl != NULL);
	}
	return 0;
bad:
	remembered_free(r);
	return -EINVAL;
}

int remembered_format(const struct remembered *r, char **out)
{
	size_t size = 128;
	for (size_t i = 0; i < remembered_count; i++) {
		size += strlen(remembered_table[i].key) + 2;
		for (size_t k = 0; k < r->val[i].n; k++) {
			if (strchr(r->val[i].v[k], '\n'))
				return -EINVAL;
			size += strlen(remembered_table[i].key) +
				strlen(r->val[i].v[k]) + 2;
		}
	}
	char *buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	size_t n = 0;
	int e = fmt_append(buf, size, &n,
			   "# how sandbox-launch made this sandbox; "
			   "reset forgets it\n");
	for (size_t i = 0; !e && i < remembered_count; i++) {
		const char *key = remembered_table[i].key;
		if (!r->known[i])
			continue;
		if (!r->val[i].n)
			e = fmt_append(buf, size, &n, "%s\n", key);
		for (size_t k = 0; !e && k < r->val[i].n; k++)
			e = fmt_append(buf, size, &n, "%s %s\n", key,
				       r->val[i].v[k]);
	}
	if (e) {
		free(buf);
		return e;
	}
	*out = buf;
	return 0;
}

static int file_path(const char *dir, const char *name, char *out)
{
	return fmt_buf(out, PATH_MAX, "%s/%s", dir, name);
}

int remembered_read(const char *dir, struct remembered *r, char *err,
		    size_t errsz)
{
	memset(r, 0, sizeof(*r));
	char path[PATH_MAX];
	if (file_path(dir, REMEMBERED_FILE, path))
		return -ENAMETOOLONG;
	_cleanup_free_ char *text = NULL;
	int e = read_file(path, 1u << 20, &text, NULL);
	if (e == -ENOENT)
		return e;
	if (e) {
		fmt_buf(err, errsz, "%s: %s", path, strerror(-e));
		return e;
	}
	char why[256];
	e = remembered_parse(text, r, why, sizeof(why));
	if (e)
		fmt_buf(err, errsz, "%s: %s", path,
			e == -EINVAL ? why : strerror(-e));
	return e;
}

static int record_write(const char *dir, const struct remembered *r,
			char *err, size_t errsz)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	if (file_path(dir, REMEMBERED_FILE ".tmp", tmp) ||
	    file_path(dir, REMEMBERED_FILE, path))
		return -ENAMETOOLONG;
	_cleanup_free_ char *text = NULL;
	int e = remembered_format(r, &text);
	if (e == -EINVAL) {
		fmt_buf(err, errsz, "cannot remember a value with a newline "
				    "in it: rename the file");
		return e;
	}
	_cleanup_close_ int fd = -1;
	if (!e) {
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		e = fd < 0 ? -errno : 0;
	}
	e = e ? e : write_all(fd, text, strlen(text));
	if (!e && rename(tmp, path) < 0)
		e = -errno;
	if (e) {
		fmt_buf(err, errsz, "%s: %s", path, strerror(-e));
		unlink(tmp);
	}
	return e;
}

static bool same_strings(const struct strv *a, const struct strv *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return true;
}

const char *remembered_show(size_t row, const char *value)
{
	const struct remembered_setting *s = &remembered_table[row];
	return s->show ? s->show(value) : value;
}

static void describe(char *buf, size_t size, size_t *n, size_t row,
		     const struct strv *v)
{
	const char *option = remembered_table[row].option;
	if (!v->n)
		fmt_append(buf, size, n, "the default %s", option);
	for (size_t i = 0; i < v->n; i++)
		fmt_append(buf, size, n, "%s%s %s", i ? " " : "", option,
			   remembered_show(row, v->v[i]));
}

int remembered_use(const char *dir, const char *name,
		   struct remembered_ctx *c, char *err, size_t errsz)
{
	struct remembered rec;
	int e = remembered_read(dir, &rec, err, errsz);
	if (e && e != -ENOENT)
		return e;
	char diff[2048] = "";
	size_t dl = 0;
	bool changed = false;
	for (size_t i = 0; i < remembered_count; i++) {
		const struct remembered_setting *s = &remembered_table[i];
		struct strv mine = {0};
		e = s->get(c, &mine, err, errsz);
		if (e) {
			strv_free(&mine);
			goto out;
		}
		if (!rec.known[i]) {
			/* New, or made before this setting was remembered:
			 * this run says how. */
			strv_free(&rec.val[i]);
			rec.val[i] = mine;
			rec.known[i] = changed = true;
			continue;
		}
		bool agree = s->same ? s->same(&mine, &rec.val[i])
				     : same_strings(&mine, &rec.val[i]);
		if (!mine.n && rec.val[i].n) {
			char why[PATH_MAX + 256];
			e = s->apply(c, &rec.val[i], why, sizeof(why));
			if (e == -EINVAL)
				fmt_buf(err, errsz, "%s/" REMEMBERED_FILE ": %s",
					dir, why);
			else if (e)
				fmt_buf(err, errsz,
					"sandbox %s: %s.\n  Or start it anew: "
					"sandbox-launch reset %s",
					name, e == -ENOMEM ? "out of memory" : why,
					name);
			if (e) {
				strv_free(&mine);
				goto out;
			}
		} else if (mine.n && !agree) {
			fmt_append(diff, sizeof(diff), &dl, "\n  ");
			describe(diff, sizeof(diff), &dl, i, &mine);
			fmt_append(diff, sizeof(diff), &dl,
				   " (it was made with ");
			describe(diff, sizeof(diff), &dl, i, &rec.val[i]);
			fmt_append(diff, sizeof(diff), &dl, ")");
		} else if (mine.n && !same_strings(&mine, &rec.val[i])) {
			/* Agreeing, but not byte for byte (a policy file
			 * given again with new bytes): this run's now. */
			strv_free(&rec.val[i]);
			rec.val[i] = mine;
			changed = true;
			continue;
		}
		strv_free(&mine);
	}
	if (dl) {
		fmt_buf(err, errsz,
			"sandbox %s was made with other settings than this "
			"run gives:%s\n"
			"  Run it without these options to use what it was "
			"made with, or start it anew: sandbox-launch reset %s "
			"(forgets its settings and its writable layer) or "
			"sandbox-launch rm %s",
			name, diff, name, name);
		e = -EEXIST;
		goto out;
	}
	e = changed ? record_write(dir, &rec, err, errsz) : 0;
out:
	remembered_free(&rec);
	return e;
}

int remembered_forget(const char *dir)
{
	char path[PATH_MAX];
	if (file_path(dir, REMEMBERED_FILE, path))
		return -ENAMETOOLONG;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int remembered_json(const struct remembered *r, char *buf, size_t size,
		    size_t *len)
{
	int e = fmt_append(buf, size, len, "{");
	bool first = true;
	for (size_t i = 0; !e && i < remembered_count; i++) {
		if (!r->known[i])
			continue;
		e = fmt_append(buf, size, len, "%s\"%s\": [", first ? "" : ", ",
			       remembered_table[i].key);
		for (size_t k = 0; !e && k < r->val[i].n; k++) {
			e = fmt_append(buf, size, len, k ? ", " : "");
			e = e ? e : json_append_str(buf, size, len,
						    remembered_show(i, r->val[i].v[k]));
		}
		e = e ? e : fmt_append(buf, size, len, "]");
		first = false;
	}
	return e ? e : fmt_append(buf, size, len, "}");
}

/* Write the pinned bytes into the sandbox's own directory (0700, not
 * shared with the guest) and give the run those copies instead of the
 * recorded paths from index first of o->policies on. */
static int pin_policies(const char *dir, struct launch_opts *o, size_t first,
			char *err, size_t errsz)
{
	for (size_t i = 0; i < n_pinned && first + i < o->n_policies; i++) {
		char copy[PATH_MAX];
		if (fmt_buf(copy, sizeof(copy), "%s/policy.%zu.yaml", dir, i))
			return -ENAMETOOLONG;
		_cleanup_close_ int fd =
			open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
					   O_CLOEXEC,
			     0600);
		int e = fd < 0 ? -errno
			       : write_all(fd, pinned[i].bytes, pinned[i].len);
		if (e) {
			fmt_buf(err, errsz, "its --policy %s: copy to %s: %s",
				o->policies[first + i], copy, strerror(-e));
			return e;
		}
		strv_add(&kept, copy);
		if (kept.failed)
			return -ENOMEM;
		o->policies[first + i] = kept.v[kept.n - 1];
	}
	return 0;
}

int remembered_for_run(struct run_registry *rg, struct remembered_ctx *c,
		       char *err, size_t errsz)
{
	size_t before = c->o->n_policies;
	int e = remembered_use(rg->dir, rg->meta.name, c, err, errsz);
	for (size_t i = before; !e && i < c->o->n_policies; i++) {
		/* Taken from the record: listed as the sandbox's own in its
		 * meta.json, for list and for a join's comparison. */
		if (rg->meta.n_policies == SANDBOX_MAX_LIST) {
			fmt_buf(err, errsz, "sandbox %s: more than %d policy "
					    "files", rg->meta.name,
				SANDBOX_MAX_LIST);
			return -E2BIG;
		}
		fmt_buf(rg->meta.policies[rg->meta.n_policies++],
			sizeof(rg->meta.policies[0]), "%s",
			c->o->policies[i]);
	}
	/* meta.json names the files as recorded; the run reads the copies. */
	return e ? e : pin_policies(rg->dir, c->o, before, err, errsz);
}
