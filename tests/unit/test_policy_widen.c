/* Property test of the widening check: random BASE and repository
 * policies over a small world of names, addresses and ports; the check's
 * verdict must equal brute force (every name of up to four labels over the
 * rules' labels plus one more, every IPv4 and IPv6 address in and around
 * the rules' prefixes, every port any rule lists plus one none lists and
 * "any port"; files and rules sometimes in report mode; allow rules
 * sometimes with a protocols: set, where adding a protocol BASE does not
 * let through at a port is widening too),
 * and every rule that brute force sees widening must be listed.
 * The seed is printed; TEST_SEED=N repeats a run. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../../common/ipaddr.h"
#include "../../common/util.h"
#include "../../policy/policy.h"
#include "tap.h"

#define TRIALS 250

static unsigned long long rng;

static unsigned rnd(unsigned n)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (unsigned)((rng >> 33) % n);
}

static const char *const labels[] = {"a", "b", "c"};
static const char *const world_labels[] = {"a", "b", "c", "d"};
static const unsigned rule_ports[] = {22, 80, 443};
static const unsigned world_ports[] = {0, 22, 80, 443, 8080};

static void rand_name(char *out, size_t outsz, unsigned depth)
{
	size_t n = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < depth; i++)
		fmt_append(out, outsz, &n, "%s%s", i ? "." : "",
			   labels[rnd(3)]);
}

/* One random rule as YAML (a list item). */
static void rand_rule(char *buf, size_t bufsz, size_t *len, bool allow)
{
	char host[64];
	unsigned kind = rnd(4);
	if (kind == 3 && rnd(3) == 0) {
		/* IPv6: the same sweep on 128-bit values */
		unsigned plen = 124 + rnd(5);
		unsigned a = rnd(32) & ~((1u << (128 - plen)) - 1);
		if (rnd(6) == 0)
			plen = 120, a = 0;
		fmt_append(buf, bufsz, len, "  - cidr: \"2001:db8::%x/%u\"\n",
			   a, plen);
	} else if (kind == 3) {
		unsigned plen = 28 + rnd(5);
		unsigned a = rnd(32) & ~((1u << (32 - plen)) - 1);
		if (rnd(6) == 0)
			plen = 24, a = 0;
		fmt_append(buf, bufsz, len, "  - cidr: 10.0.0.%u/%u\n", a,
			   plen);
	} else {
		/* An allow wildcard over one label is refused (a whole TLD). */
		rand_name(host, sizeof(host), kind > 0 && allow ? 2 : 1 + rnd(2));
		/* "*" and "**" alone only in denies (an allow of them is
		 * refused as over-broad). */
		bool bare = kind > 0 && !allow && rnd(8) == 0;
		fmt_append(buf, bufsz, len, "  - host: \"%s%s\"\n",
			   kind == 0 ? "" : kind == 1 ? (bare ? "*" : "*.")
						      : (bare ? "**" : "**."),
			   bare ? "" : host);
	}
	switch (rnd(4)) {
	case 0:
		break; /* default 80, 443 */
	case 1:
		fmt_append(buf, bufsz, len, "    ports: any\n");
		break;
	default:
		fmt_append(buf, bufsz, len, "    ports: [%u", rule_ports[rnd(3)]);
		if (rnd(2))
			fmt_append(buf, bufsz, len, ", %u", rule_ports[rnd(3)]);
		fmt_append(buf, bufsz, len, "]\n");
	}
	if (!allow && rnd(8) == 0)
		fmt_append(buf, bufsz, len, "    mode: report\n");
	/* protocols: sometimes, a non-empty subset of tls, http, tcp. */
	if (allow && rnd(3) == 0) {
		static const char *const protos[] = {"tls", "http", "tcp"};
		unsigned set = 1 + rnd(7);
		const char *sep = "";
		fmt_append(buf, bufsz, len, "    protocols: [");
		for (unsigned b = 0; b < 3; b++)
			if (set & (1u << b)) {
				fmt_append(buf, bufsz, len, "%s%s", sep, protos[b]);
				sep = ", ";
			}
		fmt_append(buf, bufsz, len, "]\n");
	}
}

static void rand_policy(char *buf, size_t bufsz, unsigned nrules)
{
	size_t len = 0;
	fmt_append(buf, bufsz, &len, "version: 1\n");
	if (rnd(12) == 0)
		fmt_append(buf, bufsz, &len, "mode: report\n");
	unsigned na = rnd(nrules + 1), nd = nrules - na;
	if (na) {
		fmt_append(buf, bufsz, &len, "allow:\n");
		for (unsigned i = 0; i < na; i++)
			rand_rule(buf, bufsz, &len, true);
	}
	if (nd) {
		fmt_append(buf, bufsz, &len, "deny:\n");
		for (unsigned i = 0; i < nd; i++)
			rand_rule(buf, bufsz, &len, false);
	}
}

static struct policy *load(const char *path, const char *repo)
{
	struct policy_errors errs = {0};
	struct policy_builder *b = policy_builder_new(NULL);
	if (path)
		policy_builder_add_file(b, path, &errs);
	if (repo)
		policy_builder_add_buffer(b, "repo.yaml", repo, strlen(repo),
					  &errs);
	struct policy *p = policy_builder_finish(b, &errs);
	policy_errors_free(&errs);
	return p;
}

static bool lets_through(struct policy_verdict v)
{
	return v.decision != DECISION_DENY;
}

/* The streams a verdict lets through, as the proxy applies it
 * (proxy/conn_decide.c, first_flight.c): an allow's protocols, where tcp
 * means any; every protocol for a would-deny; none for a deny. */
static uint8_t passes(struct policy_verdict v)
{
	if (v.decision == DECISION_DENY)
		return 0;
	if (v.decision == DECISION_WOULD_DENY)
		return POLICY_PROTO_ALL;
	return v.rule.protocols & POLICY_PROTO_TCP ? POLICY_PROTO_ALL
						   : v.rule.protocols;
}

static bool listed_protocols(const struct policy_diff *d, uint8_t fresh)
{
	for (size_t i = 0; i < d->count; i++)
		if (d->items[i].protocols & fresh)
			return true;
	return false;
}

struct world {
	char names[400][16];
	size_t nnames;
	struct ip_addr addrs[80];
	size_t naddrs;
};

static void make_world(struct world *w)
{
	size_t n = 0;
	/* depths 1..4 over four labels: 4 + 16 + 64 + 256 names */
	for (unsigned depth = 1; depth <= 4; depth++) {
		unsigned count = 1;
		for (unsigned i = 0; i < depth; i++)
			count *= 4;
		for (unsigned k = 0; k < count; k++) {
			size_t len = 0;
			unsigned v = k;
			w->names[n][0] = '\0';
			for (unsigned i = 0; i < depth; i++, v /= 4)
				fmt_append(w->names[n], sizeof(w->names[n]), &len,
					   "%s%s", i ? "." : "",
					   world_labels[v % 4]);
			n++;
		}
	}
	w->nnames = n;
	w->naddrs = 0;
	for (unsigned a = 0; a < 36; a++) {
		char s[32];
		fmt_buf(s, sizeof(s), a < 34 ? "10.0.0.%u" : "10.0.%u.0",
			a < 34 ? a : a - 33);
		ip_parse_strict(s, strlen(s), &w->addrs[w->naddrs++]);
	}
	ip_parse_strict("11.0.0.1", 8, &w->addrs[w->naddrs++]);
	for (unsigned a = 0; a < 36; a++) {
		char s6[48];
		if (a < 34)
			fmt_buf(s6, sizeof(s6), "2001:db8::%x", a);
		else
			fmt_buf(s6, sizeof(s6), "2001:db8::%x00", a - 33);
		ip_parse_strict(s6, strlen(s6), &w->addrs[w->naddrs++]);
	}
	ip_parse_strict("2001:db9::1", 11, &w->addrs[w->naddrs++]);
}

static bool listed(const struct policy_diff *d, const struct policy_rule_ref *r)
{
	for (size_t i = 0; i < d->count; i++)
		if (d->items[i].file && !strcmp(d->items[i].file, r->file) &&
		    d->items[i].line == r->line && d->items[i].col == r->col)
			return true;
	return false;
}

/* Brute force: does comb let through something base does not? Also checks
 * that each rule behind such a case is in d. */
static bool brute(const struct world *w, const struct policy *base,
		  const struct policy *comb, const struct policy_diff *d,
		  bool *all_listed, char *example, size_t exsz)
{
	bool widens = false;
	for (size_t pi = 0; pi < ARRAY_SIZE(world_ports); pi++) {
		uint16_t port = (uint16_t)world_ports[pi];
		for (size_t i = 0; i < w->nnames + w->naddrs; i++) {
			struct policy_verdict vb, vc;
			if (i < w->nnames) {
				vb = policy_decide_name(base, w->names[i], port);
				vc = policy_decide_name(comb, w->names[i], port);
			} else {
				const struct ip_addr *a = &w->addrs[i - w->nnames];
				vb = policy_decide_addr(base, a, port);
				vc = policy_decide_addr(comb, a, port);
			}
			/* A name lookup (port 0) makes no stream: only the
			 * decision counts there. */
			uint8_t fresh = port == 0 ? 0
					: (uint8_t)(passes(vc) & ~passes(vb));
			bool more = lets_through(vb) && lets_through(vc) && fresh;
			if (!more && (lets_through(vb) || !lets_through(vc)))
				continue;
			if (!widens) {
				char a[IP_STR_MAX];
				if (i >= w->nnames)
					ip_format(&w->addrs[i - w->nnames], a);
				fmt_buf(example, exsz, "%s port %u",
					i < w->nnames ? w->names[i] : a, port);
			}
			widens = true;
			if (more ? !listed_protocols(d, fresh)
				 : vc.rule.file && !listed(d, &vc.rule))
				*all_listed = false;
		}
	}
	return widens;
}

int main(void)
{
	const char *env = getenv("TEST_SEED");
	unsigned long long seed = env ? strtoull(env, NULL, 10)
				      : (unsigned long long)time(NULL);
	rng = seed;
	tap_diag("seed %llu (repeat with TEST_SEED=%llu)", seed, seed);
	char dir[] = "/tmp/test_policy_widen.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char base_path[64];
	fmt_buf(base_path, sizeof(base_path), "%s/base.yaml", dir);
	static struct world w;
	make_world(&w);
	unsigned agree = 0, widened = 0, listed_ok = 0, trials = 0;
	for (unsigned t = 0; t < TRIALS; t++) {
		char base_text[8192], repo_text[8192];
		rand_policy(base_text, sizeof(base_text), 1 + rnd(6));
		rand_policy(repo_text, sizeof(repo_text), 1 + rnd(5));
		FILE *f = fopen(base_path, "w");
		if (!f)
			return 1;
		fputs(base_text, f);
		fclose(f);
		struct policy *base = load(base_path, NULL);
		struct policy *comb = load(base_path, repo_text);
		if (!base || !comb) {
			policy_free(base);
			policy_free(comb);
			continue; /* e.g. an allow refused as over-broad */
		}
		trials++;
		const char *const files[] = {base_path};
		struct policy_diff d;
		struct policy_errors errs = {0};
		int r = policy_diff_compute(files, 1, NULL, "repo.yaml",
					    repo_text, strlen(repo_text), &d,
					    &errs);
		policy_errors_free(&errs);
		bool all = true;
		char ex[64] = "";
		bool bf = brute(&w, base, comb, &d, &all, ex, sizeof(ex));
		bool check = r == 0 && d.count > 0;
		if (r == 0 && bf == check)
			agree++;
		else
			tap_diag("trial %u: check says %s (rc %d), brute force "
				 "%s%s%s\n--- base\n%s--- repo\n%s",
				 t, check ? "widens" : "no widening", r,
				 bf ? "widens at " : "no widening", ex, "",
				 base_text, repo_text);
		if (all)
			listed_ok++;
		else
			tap_diag("trial %u: a widening rule is missing from "
				 "the list\n--- base\n%s--- repo\n%s",
				 t, base_text, repo_text);
		widened += bf;
		policy_diff_free(&d);
		policy_free(base);
		policy_free(comb);
	}
	ok(trials > TRIALS / 2, "most random policies load (%u of %u)", trials,
	   TRIALS);
	ok(widened > trials / 10 && widened < trials,
	   "both outcomes occur (%u of %u widen)", widened, trials);
	is_int(agree, trials, "check agrees with brute force (seed %llu)", seed);
	is_int(listed_ok, trials, "every widening rule is listed (seed %llu)",
	       seed);
	char cmd[128];
	fmt_buf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return done_testing();
}
