/* Network capture: the guest has no network card, only a dummy eth0 with a
 * default route (so programs see a network), and nftables rules that turn
 * every TCP connection into a connection to the transparent forwarder and
 * every UDP 53 datagram into one to the DNS forwarder. Everything else
 * (other UDP, ICMP, IPv6 beyond loopback) is dropped. The forwarders are
 * the only way out, and they only speak vsock to the host proxy. */
#include "guest.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../common/util.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* The rule behind every chain: only traffic whose route leaves through
 * eth0 (the default route, "the outside") is captured; traffic between the
 * guest and its own bridges (Docker's networks, later) stays inside the VM,
 * which has no network card anyway. DNS to any address, TCP or UDP, goes
 * to the DNS forwarder first: Docker gives containers public resolvers
 * (8.8.8.8) when the guest's own is on loopback. */
static const char ruleset[] =
	"flush ruleset\n"
	"table ip sandbox_nat {\n"
	"  chain output {\n"
	"    type nat hook output priority -100; policy accept;\n"
	"    oifname \"lo\" return\n"
	"    ip daddr 127.0.0.0/8 return\n"
	"    meta l4proto { tcp, udp } th dport 53 dnat to " FWD_DNS_ADDR ":53\n"
	"    oifname != \"eth0\" return\n"
	"    meta l4proto tcp redirect to :" STR(FWD_TCP_PORT) "\n"
	"  }\n"
	/* Forwarded traffic: containers on a bridge. Their TCP is redirected
	 * to the bridge's own address, where the forwarder listens too. */
	"  chain prerouting {\n"
	"    type nat hook prerouting priority -100; policy accept;\n"
	"    iifname \"lo\" return\n"
	"    meta l4proto { tcp, udp } th dport 53 dnat to " FWD_DNS_ADDR ":53\n"
	"    fib daddr oifname != \"eth0\" return\n"
	"    meta l4proto tcp redirect to :" STR(FWD_TCP_PORT) "\n"
	"  }\n"
	"}\n"
	"table inet sandbox_filter {\n"
	"  chain output {\n"
	"    type filter hook output priority 0; policy drop;\n"
	"    oifname \"lo\" accept\n"
	"    meta nfproto ipv6 drop\n"
	/* Redirected connections: NAT ran first, so the address is local. */
	"    ip daddr 127.0.0.0/8 accept\n"
	/* To the guest's own bridges (and replies to containers). */
	"    oifname != \"eth0\" accept\n"
	"  }\n"
	"  chain input {\n"
	"    type filter hook input priority 0; policy accept;\n"
	"    iifname != \"lo\" meta nfproto ipv6 drop\n"
	"  }\n"
	/* Between the guest's bridges only; nothing is routed out of eth0
	 * (what would go there was redirected above, the rest is dropped). */
	"  chain forward {\n"
	"    type filter hook forward priority 0; policy drop;\n"
	"    meta nfproto ipv6 drop\n"
	"    oifname \"eth0\" drop\n"
	"    iifname \"eth0\" drop\n"
	"    accept\n"
	"  }\n"
	"}\n";

static int write_proc(const char *path, const char *value)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return write_all(fd, value, strlen(value));
}

static int run(const char *const argv[], const char **what)
{
	int r = run_wait(argv);
	if (r != 0) {
		*what = argv[0];
		return r < 0 ? r : -EIO;
	}
	return 0;
}

int netcap_setup(const char **what)
{
	int r;
	/* No IPv6 on eth0 at all; ::1 on lo stays for local programs. dnat
	 * to 127.0.0.53 from a non-loopback interface needs route_localnet. */
	if ((r = write_proc("/proc/sys/net/ipv6/conf/default/disable_ipv6",
			    "1")) ||
	    (r = write_proc("/proc/sys/net/ipv4/conf/all/route_localnet", "1"))) {
		*what = "sysctl";
		return r;
	}
	const char *const cmds[][12] = {
		{"/usr/sbin/ip", "link", "set", "lo", "up", NULL},
		{"/usr/sbin/ip", "link", "add", "eth0", "type", "dummy", NULL},
		{"/usr/sbin/ip", "addr", "add", GUEST_ADDR "/24", "dev", "eth0",
		 NULL},
		{"/usr/sbin/ip", "link", "set", "eth0", "up", NULL},
		{"/usr/sbin/ip", "route", "add", "default", "via", GUEST_GATEWAY,
		 "dev", "eth0", NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if ((r = run(cmds[i], what)))
			return r;

	const char *rules = "/run/sandbox-nft.rules";
	{
		_cleanup_close_ int fd =
			open(rules, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write_all(fd, ruleset, sizeof(ruleset) - 1)) {
			*what = rules;
			return -EIO;
		}
	}
	const char *const nft[] = {"/usr/sbin/nft", "-f", rules, NULL};
	if ((r = run(nft, what)))
		return r;
	unlink(rules);
	return 0;
}
