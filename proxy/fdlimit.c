/* The descriptor limit (see fdlimit.h). */
#include "fdlimit.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

static uint64_t lim(rlim_t v)
{
	return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

int fdlimit_raise(struct fdlimit *out)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	out->soft_before = lim(rl.rlim_cur);
	out->hard = lim(rl.rlim_max);
	out->soft = out->soft_before;
	if (rl.rlim_cur == rl.rlim_max)
		return 0;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	out->soft = out->hard;
	return 0;
}

uint64_t fdlimit_tunnels(uint64_t n)
{
	if (n == UINT64_MAX)
		return UINT64_MAX;
	return n > FDLIMIT_RESERVE ? (n - FDLIMIT_RESERVE) / FDLIMIT_PER_TUNNEL
				   : 0;
}

static void say_tunnels(FILE *f, uint64_t n)
{
	if (n == UINT64_MAX)
		fputs("unlimited", f);
	else
		fprintf(f, "%llu descriptors, about %llu tunnels",
			(unsigned long long)n,
			(unsigned long long)fdlimit_tunnels(n));
}

void fdlimit_setup(unsigned max_conns)
{
	struct fdlimit fl;
	int e = fdlimit_raise(&fl);
	if (e < 0)
		fprintf(stderr, "sandbox-proxy: cannot raise the descriptor "
				"limit: %s\n", strerror(-e));
	fputs("sandbox-proxy: descriptor limit: ", stderr);
	say_tunnels(stderr, fl.soft);
	if (fl.soft != fl.soft_before)
		fprintf(stderr, " (soft limit raised from %llu)",
			(unsigned long long)fl.soft_before);
	fputc('\n', stderr);
	if (fdlimit_tunnels(fl.soft) < max_conns)
		fprintf(stderr, "sandbox-proxy: --max-conns %u is more than "
				"the descriptor limit allows; connections "
				"beyond it wait in the backlog\n",
			max_conns);
}

void fdlimit_help(FILE *f)
{
	struct rlimit rl;
	fprintf(f, "Descriptors: the soft RLIMIT_NOFILE is raised to the hard "
		   "limit at start; each\ntunnel holds %d (guest and "
		   "upstream), %d are kept aside; when accept runs out,\n"
		   "the listeners pause until a connection ends. Raise the "
		   "hard limit with\nulimit -Hn or LimitNOFILE=. Hard limit "
		   "here: ",
		FDLIMIT_PER_TUNNEL, FDLIMIT_RESERVE);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		say_tunnels(f, lim(rl.rlim_max));
	else
		fputs("unknown", f);
	fputs(".\n", f);
}
