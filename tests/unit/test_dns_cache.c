/* The upstream DNS cache: TTL expiry on the caller's clock, replacement,
 * LRU eviction at the bound, drop, and inputs that must store nothing. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "../../common/ipaddr.h"
#include "../../common/util.h"
#include "../../proxy/dns_cache.h"
#include "tap.h"

static struct ip_addr v4(const char *s)
{
	struct ip_addr a = {.family = AF_INET};
	inet_pton(AF_INET, s, a.b);
	return a;
}

static struct ip_addr v6(const char *s)
{
	struct ip_addr a = {.family = AF_INET6};
	inet_pton(AF_INET6, s, a.b);
	return a;
}

static void test_ttl(void)
{
	struct dns_cache *dc = dns_cache_new(8);
	struct ip_addr in[2] = {v4("192.0.2.1"), v6("2001:db8::1")};
	struct ip_addr out[16];
	ok(dc != NULL, "cache created");
	dns_cache_put(dc, "a.example", in, 2, 30, 1000);
	is_int((long)dns_cache_get(dc, "a.example", 1000, out, 16), 2,
	       "fresh entry: both answers");
	ok(ip_equal(&out[0], &in[0]) && ip_equal(&out[1], &in[1]),
	   "answers come back in order");
	is_int((long)dns_cache_get(dc, "a.example", 30999, out, 16), 2,
	       "still fresh 1 ms before the TTL runs out");
	is_int((long)dns_cache_get(dc, "a.example", 31000, out, 16), 0,
	       "expired exactly at TTL");
	is_int((long)dns_cache_count(dc), 0, "expired entry dropped");
	is_int((long)dns_cache_get(dc, "b.example", 1000, out, 16), 0,
	       "unknown name: miss");
	dns_cache_put(dc, "a.example", in, 2, 1, 5000);
	is_int((long)dns_cache_get(dc, "a.example", 5999, out, 1), 1,
	       "max limits what is copied");
	is_int((long)dns_cache_get(dc, "a.example", 6000, out, 16), 0,
	       "ttl 1 s honoured");
	dns_cache_free(dc);
}

static void test_replace_and_drop(void)
{
	struct dns_cache *dc = dns_cache_new(8);
	struct ip_addr a = v4("192.0.2.1"), b = v4("192.0.2.2");
	struct ip_addr out[16];
	dns_cache_put(dc, "x.example", &a, 1, 60, 0);
	dns_cache_put(dc, "x.example", &b, 1, 60, 0);
	is_int((long)dns_cache_count(dc), 1, "same name replaces");
	ok(dns_cache_get(dc, "x.example", 1, out, 16) == 1 &&
		   ip_equal(&out[0], &b),
	   "newest answer wins");
	dns_cache_put(dc, "x.example", &b, 0, 60, 0);
	is_int((long)dns_cache_get(dc, "x.example", 1, out, 16), 0,
	       "an empty answer stores nothing and drops the old one");
	dns_cache_put(dc, "y.example", &a, 1, 0, 0);
	is_int((long)dns_cache_get(dc, "y.example", 0, out, 16), 0,
	       "ttl 0 stores nothing");
	dns_cache_put(dc, "z.example", &a, 1, 60, 0);
	dns_cache_drop(dc, "z.example");
	is_int((long)dns_cache_get(dc, "z.example", 1, out, 16), 0,
	       "dropped entry is gone");
	dns_cache_drop(dc, "never.example");
	is_int((long)dns_cache_count(dc), 0, "dropping an absent name is harmless");
	dns_cache_free(dc);
}

static void test_lru(void)
{
	struct dns_cache *dc = dns_cache_new(3);
	struct ip_addr a = v4("192.0.2.1");
	struct ip_addr out[16];
	dns_cache_put(dc, "1.example", &a, 1, 60, 0);
	dns_cache_put(dc, "2.example", &a, 1, 60, 0);
	dns_cache_put(dc, "3.example", &a, 1, 60, 0);
	ok(dns_cache_get(dc, "1.example", 1, out, 16) == 1, "1 used: now newest");
	dns_cache_put(dc, "4.example", &a, 1, 60, 0);
	is_int((long)dns_cache_count(dc), 3, "bounded at max_entries");
	is_int((long)dns_cache_get(dc, "2.example", 1, out, 16), 0,
	       "least recently used (2) evicted");
	ok(dns_cache_get(dc, "1.example", 1, out, 16) == 1 &&
		   dns_cache_get(dc, "3.example", 1, out, 16) == 1 &&
		   dns_cache_get(dc, "4.example", 1, out, 16) == 1,
	   "the others stay");
	/* Many names through a small cache: stays bounded, never crashes. */
	char name[32];
	for (int i = 0; i < 1000; i++) {
		fmt_buf(name, sizeof(name), "n%d.example", i);
		dns_cache_put(dc, name, &a, 1, 60, 0);
	}
	is_int((long)dns_cache_count(dc), 3, "still bounded after 1000 names");
	ok(dns_cache_get(dc, "n999.example", 1, out, 16) == 1,
	   "the newest survives");
	dns_cache_free(dc);
	ok(dns_cache_new(0) == NULL, "max_entries 0 refused");
	ok(dns_cache_get(NULL, "a", 0, out, 16) == 0, "NULL cache: miss");
}

int main(void)
{
	test_ttl();
	test_replace_and_drop();
	test_lru();
	return done_testing();
}
