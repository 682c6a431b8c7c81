/* How a named sandbox was made, remembered (launcher/remembered.h): the
 * settings file's text both ways, and a run's options against a record
 * in a private directory: taken when not given, refused when they
 * differ, recorded when new. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../launcher/remembered.h"
#include "tap.h"

static int row(const char *key)
{
	for (size_t i = 0; i < remembered_count; i++)
		if (!strcmp(remembered_table[i].key, key))
			return (int)i;
	return -1;
}

static void test_text(void)
{
	struct remembered r;
	char err[256] = "";
	const char *text = "# comment\nmemory 512\ncpus\n"
			   "policy /a b.yaml\npolicy /c.yaml\n";
	is_int(remembered_parse(text, &r, err, sizeof(err)), 0, "parses");
	int m = row("memory"), c = row("cpus"), p = row("policy");
	ok(m >= 0 && c >= 0 && p >= 0, "memory, cpus and policy are rows");
	ok(r.known[m] && r.val[m].n == 1 && !strcmp(r.val[m].v[0], "512"),
	   "memory 512");
	ok(r.known[c] && r.val[c].n == 0, "cpus: the default");
	ok(r.known[p] && r.val[p].n == 2 &&
		   !strcmp(r.val[p].v[0], "/a b.yaml") &&
		   !strcmp(r.val[p].v[1], "/c.yaml"),
	   "two policy files, in order, a space kept");
	char *out = NULL;
	is_int(remembered_format(&r, &out), 0, "formats");
	ok(out && strstr(out, "memory 512\ncpus\npolicy /a b.yaml\n"
			      "policy /c.yaml\n"),
	   "the same lines back: %s", out ? out : "");
	free(out);
	remembered_free(&r);

	is_int(remembered_parse("memory 1\nswap 2\n", &r, err, sizeof(err)),
	       -EINVAL, "an unknown setting is an error");
	is_str(err, "line 2: unknown setting 'swap'", "... naming the line");
	is_int(remembered_parse("memoryx 1\n", &r, err, sizeof(err)), -EINVAL,
	       "a key is matched whole, never by prefix");

	struct remembered nl = {0};
	nl.known[p] = true;
	strv_add(&nl.val[p], "/a\nmemory 99999");
	ok(remembered_format(&nl, &out) == -EINVAL,
	   "a value with a newline cannot be written (it would forge a line)");
	remembered_free(&nl);
}

struct run {
	struct launch_opts o;
	struct remembered_ctx c;
	const char *pol[4];
};

static void run_init(struct run *r, unsigned mem, unsigned cpus,
		     const char *policy)
{
	memset(r, 0, sizeof(*r));
	r->o.memory_mb = mem;
	r->o.cpus = cpus;
	/* An agent's preset first: not the sandbox's own. */
	r->pol[0] = "/etc/hostname";
	if (policy)
		r->pol[1] = policy;
	r->o.policies = malloc(sizeof(r->pol));
	memcpy(r->o.policies, r->pol, sizeof(r->pol));
	r->o.n_policies = policy ? 2 : 1;
	r->c.o = &r->o;
	r->c.n_cli_policies = policy ? 1 : 0;
}

static void test_use(void)
{
	char dir[] = "/tmp/test-remembered-XXXXXX", err[4096] = "";
	if (!mkdtemp(dir)) {
		ok(false, "mkdtemp: %s", strerror(errno));
		return;
	}
	struct run r;
	FILE *f;
	run_init(&r, 512, 0, "/etc/passwd");
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), 0,
	       "the first run records: %s", err);
	free(r.o.policies);

	run_init(&r, 0, 0, NULL);
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), 0,
	       "a run without options: %s", err);
	is_int(r.o.memory_mb, 512, "takes the recorded memory");
	is_int(r.o.cpus, 0, "and the recorded default cpus");
	ok(r.o.n_policies == 2 && r.c.n_cli_policies == 1 &&
		   !strcmp(r.o.policies[1], "/etc/passwd") &&
		   !strcmp(r.o.policies[0], "/etc/hostname"),
	   "and the recorded policy file, after the preset");
	free(r.o.policies);

	run_init(&r, 512, 0, "/etc/passwd");
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), 0,
	       "the same options again are fine");
	free(r.o.policies);

	run_init(&r, 2048, 4, "/etc/group");
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), -EEXIST,
	       "other options are refused");
	ok(strstr(err, "--memory 2048 (it was made with --memory 512)") &&
		   strstr(err, "--cpus 4 (it was made with the default "
			       "--cpus)") &&
		   strstr(err, "--policy /etc/group (it was made with "
			       "--policy /etc/passwd)") &&
		   strstr(err, "sandbox-launch reset box") &&
		   strstr(err, "sandbox-launch rm box"),
	   "naming each and the way out: %s", err);
	free(r.o.policies);

	char path[PATH_MAX];
	fmt_buf(path, sizeof(path), "%s/" REMEMBERED_FILE, dir);
	f = fopen(path, "w");
	fputs("memory 12\n", f);
	fclose(f);
	run_init(&r, 0, 0, NULL);
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), -EINVAL,
	       "a recorded value out of range is refused");
	ok(strstr(err, "memory") && strstr(err, REMEMBERED_FILE),
	   "naming the file and the setting: %s", err);
	is_int(r.o.memory_mb, 0, "and not taken");
	free(r.o.policies);

	remembered_forget(dir);
	run_init(&r, 0, 0, "/nonexistent/p.yaml");
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), -ENOENT,
	       "a --policy file that is not there is not recorded");
	ok(strstr(err, "/nonexistent/p.yaml") != NULL, "named: %s", err);
	free(r.o.policies);

	is_int(remembered_read(dir, &(struct remembered){0}, err, sizeof(err)),
	       -ENOENT, "... and nothing was recorded");
	is_int(remembered_forget(dir), 0, "forgotten (reset)");
	run_init(&r, 2048, 0, NULL);
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), 0,
	       "after reset, a run records anew: %s", err);
	free(r.o.policies);
	struct remembered rec;
	is_int(remembered_read(dir, &rec, err, sizeof(err)), 0, "read back");
	int m = row("memory");
	ok(rec.val[m].n == 1 && !strcmp(rec.val[m].v[0], "2048"),
	   "memory 2048 recorded");
	remembered_free(&rec);
	is_int(remembered_forget(dir), 0, "forgotten");
	is_int(remembered_forget(dir), 0, "forgetting twice is fine");

	/* A policy file is pinned by its bytes. */
	char pol[PATH_MAX];
	fmt_buf(pol, sizeof(pol), "%s/p.yaml", dir);
	f = fopen(pol, "w");
	fputs("version: 1\ndeny:\n  - a.example\n", f);
	fclose(f);
	run_init(&r, 0, 0, pol);
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), 0,
	       "a policy file recorded: %s", err);
	free(r.o.policies);
	f = fopen(pol, "w");
	fputs("version: 1\nallow:\n  - host: \"**\"\n", f);
	fclose(f);
	run_init(&r, 0, 0, NULL);
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), -ESTALE,
	       "rewritten since, it is not reused by a run that does not "
	       "name it");
	ok(strstr(err, "has changed since it was recorded") &&
		   strstr(err, pol) && strstr(err, "reset box"),
	   "... saying so and the ways out: %s", err);
	is_int(r.o.n_policies, 1, "... and not taken");
	free(r.o.policies);
	run_init(&r, 0, 0, pol);
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), 0,
	       "naming it again takes it as it is now: %s", err);
	free(r.o.policies);
	run_init(&r, 0, 0, NULL);
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), 0,
	       "and later runs reuse it: %s", err);
	ok(r.o.n_policies == 2 && !strcmp(r.o.policies[1], pol),
	   "the path, without its hash");
	free(r.o.policies);
	unlink(pol);
	remembered_forget(dir);
	rmdir(dir);
}

/* Published ports and host ports: a later run without them takes the
 * recorded ones, in any order the same list is fine, another is refused. */
static void test_ports(void)
{
	char dir[] = "/tmp/test-remembered-XXXXXX", err[4096] = "";
	if (!mkdtemp(dir)) {
		ok(false, "mkdtemp: %s", strerror(errno));
		return;
	}
	struct run r;
	const char *pub[] = {"8080:80", "127.0.0.1:9000:9000"};
	const char *hp[] = {"5432"};
	run_init(&r, 0, 0, NULL);
	r.o.publish = malloc(sizeof(pub));
	memcpy(r.o.publish, pub, sizeof(pub));
	r.o.n_publish = 2;
	r.o.host_ports = malloc(sizeof(hp));
	memcpy(r.o.host_ports, hp, sizeof(hp));
	r.o.n_host_ports = 1;
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), 0,
	       "a run with -p and --host-port records: %s", err);
	free(r.o.policies);
	free(r.o.publish);
	free(r.o.host_ports);

	run_init(&r, 0, 0, NULL);
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), 0,
	       "a run without them: %s", err);
	ok(r.o.n_publish == 2 && !strcmp(r.o.publish[0], "8080:80") &&
		   !strcmp(r.o.publish[1], "127.0.0.1:9000:9000"),
	   "takes the recorded published ports");
	ok(r.o.n_host_ports == 1 && !strcmp(r.o.host_ports[0], "5432"),
	   "and the recorded host port");
	free(r.o.policies);
	free(r.o.publish);
	free(r.o.host_ports);

	const char *swapped[] = {"127.0.0.1:9000:9000", "8080:80"};
	run_init(&r, 0, 0, NULL);
	r.o.publish = malloc(sizeof(swapped));
	memcpy(r.o.publish, swapped, sizeof(swapped));
	r.o.n_publish = 2;
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), 0,
	       "the same ports in another order are fine: %s", err);
	free(r.o.policies);
	free(r.o.publish);
	free(r.o.host_ports);

	const char *other[] = {"8081:80"};
	run_init(&r, 0, 0, NULL);
	r.o.publish = malloc(sizeof(other));
	memcpy(r.o.publish, other, sizeof(other));
	r.o.n_publish = 1;
	is_int(remembered_use(dir, "box", &r.c, err, sizeof(err)), -EEXIST,
	       "another published port is refused");
	ok(strstr(err, "--publish 8081:80 (it was made with --publish ") &&
		   strstr(err, "--publish 8080:80") &&
		   strstr(err, "--publish 127.0.0.1:9000:9000") &&
		   strstr(err, "sandbox-launch reset box"),
	   "naming both and the way out: %s", err);
	free(r.o.policies);
	free(r.o.publish);
	free(r.o.host_ports);
	remembered_forget(dir);
	rmdir(dir);
}

int main(void)
{
	test_text();
	test_use();
	test_ports();
	return done_testing();
}
