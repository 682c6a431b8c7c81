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
#include "netif.h"
#include "nft_batch.h"

/* The rules (nft_batch.c, where they are also given as nft(8) text): only
 * traffic whose route leaves through eth0 (the default route, "the
 * outside") is captured; traffic between the guest and its own bridges
 * (Docker's networks) stays inside the VM, which has no network card
 * anyway. DNS to any address, TCP or UDP, goes to the DNS forwarder first:
 * Docker gives containers public resolvers (8.8.8.8) when the guest's own
 * is on loopback. Containers' TCP (prerouting) is redirected to the
 * bridge's own address, where the forwarder listens too. The output
 * filter drops what is neither loopback, redirected, nor to a bridge;
 * nothing is forwarded out of eth0; IPv6 goes nowhere but lo.
 *
 * They are loaded as one netlink batch by sandbox-init itself: running
 * /usr/sbin/nft (dynamically linked, from the 9p /usr) cost about 1.7 s
 * of boot under TCG. */

static int write_proc(const char *path, const char *value)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return write_all(fd, value, strlen(value));
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
	const char *why = NULL;
	if ((r = netif_setup(&why))) {
		*what = why;
		return r;
	}
	if ((r = nft_capture_load(&why))) {
		*what = why;
		return r;
	}
	return 0;
}
