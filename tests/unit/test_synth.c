/* Synthetic address pool: stable mappings both ways, .0/.255 skipped, LRU
 * recycling on a tiny pool, and a full /15 filled and re-read. */
#include <string.h>
#include <sys/socket.h>

#include "../../common/ipaddr.h"
#include "../../common/util.h"
#include "../../proxy/synth.h"
#include "tap.h"

static struct ip_addr ip(const char *s)
{
	struct ip_addr a;
	memset(&a, 0, sizeof(a));
	if (!ip_parse_strict(s, strlen(s), &a))
		ok(0, "test address %s parses", s);
	return a;
}

static const char *fmt(const struct ip_addr *a, char buf[IP_STR_MAX])
{
	ip_format(a, buf);
	return buf;
}

static void basics(void)
{
	struct ip_addr base = ip("198.18.0.0"), a, b, c;
	char buf[IP_STR_MAX];
	struct synth_pool *p = synth_new(&base, 15);
	ok(p != NULL, "default /15 pool");

	is_int(synth_assign(p, "example.com", &a), 0, "assign example.com");
	is_str(fmt(&a, buf), "198.18.0.1", "first address skips .0");
	is_int(synth_assign(p, "github.com", &b), 0, "assign github.com");
	is_str(fmt(&b, buf), "198.18.0.2", "second address");
	is_int(synth_assign(p, "EXAMPLE.com", &c), 0, "assign in other case");
	ok(ip_equal(&a, &c), "same name (case-insensitive) keeps its address");

	is_str(synth_lookup(p, &a), "example.com", "address back to name");
	is_str(synth_lookup(p, &b), "github.com", "second address back to name");
	struct ip_addr unused = ip("198.18.0.3"), outside = ip("198.20.0.1"),
		       v6 = ip("::ffff:198.18.0.1");
	ok(synth_lookup(p, &unused) == NULL, "unassigned pool address: NULL");
	ok(synth_lookup(p, &outside) == NULL, "outside the pool: NULL");
	ok(synth_lookup(p, &v6) == NULL, "IPv6 never maps");
	ok(synth_contains(p, &unused), "pool contains 198.18.0.3");
	struct ip_addr last = ip("198.19.255.255"), below = ip("198.17.255.255");
	ok(synth_contains(p, &last), "pool contains its last address");
	ok(!synth_contains(p, &outside), "pool does not contain 198.20.0.1");
	ok(!synth_contains(p, &below), "pool does not contain 198.17.255.255");
	ok(!synth_contains(p, &v6), "pool does not contain IPv6");

	/* The name is copied: the caller's buffer may change. */
	char name[] = "copy.example";
	is_int(synth_assign(p, name, &a), 0, "assign from a mutable buffer");
	name[0] = 'X';
	is_str(synth_lookup(p, &a), "copy.example", "the pool owns its copy");

	is_int(synth_assign(p, "", &a), -EINVAL, "empty name refused");
	char lng[300];
	memset(lng, 'a', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	is_int(synth_assign(p, lng, &a), -EINVAL, "over-long name refused");
	synth_free(p);

	struct ip_addr v6base = ip("2001:db8::");
	ok(synth_new(&v6base, 64) == NULL, "IPv6 pool refused");
	ok(synth_new(&base, 31) == NULL, "/31 pool refused");
	ok(synth_new(&base, 8) == NULL, "/8 pool refused (too large)");
	synth_free(NULL);
}

static void lru(void)
{
	struct ip_addr base = ip("10.9.8.0"), a[16], x, y;
	char names[16][32], buf[IP_STR_MAX];
	struct synth_pool *p = synth_new(&base, 28);
	ok(p != NULL, "/28 pool");
	/* 10.9.8.1 .. 10.9.8.15: 15 usable addresses. */
	for (int i = 0; i < 15; i++) {
		fmt_buf(names[i], sizeof(names[i]), "n%d.test", i);
		is_int(synth_assign(p, names[i], &a[i]), 0, "assign %s",
		       names[i]);
	}
	is_str(fmt(&a[0], buf), "10.9.8.1", "first of /28");
	is_str(fmt(&a[14], buf), "10.9.8.15", "last of /28");
	bool distinct = true;
	for (int i = 0; i < 15; i++)
		for (int j = i + 1; j < 15; j++)
			distinct &= !ip_equal(&a[i], &a[j]);
	ok(distinct, "15 names got 15 distinct addresses");

	/* Use n0 by lookup and n1 by assign: n2 is now least recently used. */
	is_str(synth_lookup(p, &a[0]), "n0.test", "lookup n0 (counts as use)");
	is_int(synth_assign(p, "n1.test", &x), 0, "re-assign n1");
	ok(ip_equal(&x, &a[1]), "n1 kept its address");

	is_int(synth_assign(p, "new.test", &x), 0, "assign to a full pool");
	ok(ip_equal(&x, &a[2]), "the LRU entry (n2) gave up its address");
	is_str(synth_lookup(p, &a[2]), "new.test", "its address now names new");
	is_str(synth_lookup(p, &a[0]), "n0.test", "n0 survived");
	is_str(synth_lookup(p, &a[1]), "n1.test", "n1 survived");
	is_int(synth_assign(p, "n2.test", &y), 0, "n2 comes back");
	ok(ip_equal(&y, &a[3]), "n2 takes the next LRU address (n3's)");
	ok(synth_lookup(p, &a[3]) && strcmp(synth_lookup(p, &a[3]), "n2.test") == 0,
	   "n3's address now names n2");

	/* Churn: many more names than addresses, all distinct and in range. */
	bool inrange = true;
	for (int i = 0; i < 1000; i++) {
		char nm[32];
		fmt_buf(nm, sizeof(nm), "churn%d.test", i);
		if (synth_assign(p, nm, &x) < 0 || !synth_contains(p, &x) ||
		    x.b[3] == 0 || x.b[3] == 255)
			inrange = false;
		const char *back = synth_lookup(p, &x);
		if (!back || strcmp(back, nm) != 0)
			inrange = false;
	}
	ok(inrange, "1000 names through a /28 all map both ways");
	synth_free(p);
}

static void full15(void)
{
	struct ip_addr base = ip("198.18.0.0"), a;
	struct synth_pool *p = synth_new(&base, 15);
	/* 131072 offsets minus 512 x.x.x.0 and 512 x.x.x.255. */
	const int usable = 131072 - 1024;
	bool good = true;
	for (int i = 0; i < usable && good; i++) {
		char nm[32];
		fmt_buf(nm, sizeof(nm), "h%d.example", i);
		good = synth_assign(p, nm, &a) == 0 && a.b[3] != 0 &&
		       a.b[3] != 255;
	}
	ok(good, "%d names fill the /15 without .0 or .255", usable);
	struct ip_addr first = ip("198.18.0.1"), lastu = ip("198.19.255.254");
	is_str(synth_lookup(p, &first), "h0.example", "first slot");
	char want[32];
	fmt_buf(want, sizeof(want), "h%d.example", usable - 1);
	is_str(synth_lookup(p, &lastu), want, "last usable slot");
	bool stable = true;
	for (int i = 0; i < usable; i += 997) {
		char nm[32];
		struct ip_addr again;
		fmt_buf(nm, sizeof(nm), "h%d.example", i);
		const char *back;
		stable &= synth_assign(p, nm, &again) == 0 &&
			  (back = synth_lookup(p, &again)) != NULL &&
			  strcmp(back, nm) == 0;
	}
	ok(stable, "names keep their addresses in a full pool");
	synth_free(p);
}

int main(void)
{
	basics();
	lru();
	full15();
	return done_testing();
}
