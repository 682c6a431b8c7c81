/* The guest's interfaces over rtnetlink, by sandbox-init itself (no
 * /usr/sbin/ip from the 9p /usr at boot). What it does is exactly
 *   ip link set lo up
 *   ip link add eth0 type dummy
 *   ip addr add GUEST_ADDR/24 dev eth0
 *   ip link set eth0 up
 *   ip route add default via GUEST_GATEWAY dev eth0
 * (tests/integration/test_nft_batch.py runs both in fresh network
 * namespaces and compares `ip -d link`, `ip addr` and `ip route`). */
#include "netif.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../common/util.h"
#include "guest.h"

struct rtreq {
	uint8_t buf[512];
	size_t len;
	int overflow;
};

static void rt_put(struct rtreq *q, const void *p, size_t n)
{
	size_t pad = NLMSG_ALIGN(n);
	if (q->overflow || q->len + pad > sizeof(q->buf)) {
		q->overflow = 1; /* fixed messages: never; refused below */
		return;
	}
	memset(q->buf + q->len, 0, pad);
	memcpy(q->buf + q->len, p, n);
	q->len += pad;
}

static void rt_begin(struct rtreq *q, uint16_t type, uint16_t flags,
		     const void *hdr, size_t hlen)
{
	struct nlmsghdr h = {.nlmsg_type = type,
			     .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags,
			     .nlmsg_seq = 1};
	q->len = 0;
	q->overflow = 0;
	rt_put(q, &h, sizeof(h));
	rt_put(q, hdr, hlen);
}

static void rt_attr(struct rtreq *q, uint16_t type, const void *p, size_t n)
{
	struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + n),
			   .nla_type = type};
	rt_put(q, &a, sizeof(a));
	if (n)
		rt_put(q, p, n);
}

/* Send one request and read its acknowledgement. */
static int rt_call(int fd, struct rtreq *q)
{
	if (q->overflow)
		return -EOVERFLOW;
	((struct nlmsghdr *)q->buf)->nlmsg_len = (uint32_t)q->len;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	if (sendto(fd, q->buf, q->len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) != (ssize_t)q->len)
		return -errno;
	uint8_t r[1024];
	for (;;) {
		ssize_t n = recv(fd, r, sizeof(r), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		size_t left = (size_t)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)r;
		     NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
				return -EPROTO;
			const struct nlmsgerr *e = NLMSG_DATA(h);
			return e->error <= 0 ? e->error : -EPROTO;
		}
	}
}

static int link_up(int fd, int index)
{
	struct rtreq q;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index,
				.ifi_flags = IFF_UP, .ifi_change = IFF_UP};
	rt_begin(&q, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	return rt_call(fd, &q);
}

static int dummy_add(int fd, const char *name)
{
	struct rtreq q;
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	rt_begin(&q, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
	rt_attr(&q, IFLA_IFNAME, name, strlen(name) + 1);
	size_t nest = q.len;
	rt_attr(&q, IFLA_LINKINFO | NLA_F_NESTED, NULL, 0);
	rt_attr(&q, IFLA_INFO_KIND, "dummy", strlen("dummy"));
	((struct nlattr *)(q.buf + nest))->nla_len = (uint16_t)(q.len - nest);
	return rt_call(fd, &q);
}

static int addr_add(int fd, int index, struct in_addr a, uint8_t prefix)
{
	struct rtreq q;
	struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = prefix,
				.ifa_index = (uint32_t)index};
	rt_begin(&q, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
	rt_attr(&q, IFA_LOCAL, &a, sizeof(a));
	rt_attr(&q, IFA_ADDRESS, &a, sizeof(a));
	return rt_call(fd, &q);
}

static int default_route(int fd, int index, struct in_addr gw)
{
	struct rtreq q;
	struct rtmsg rtm = {.rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN,
			    .rtm_protocol = RTPROT_BOOT,
			    .rtm_scope = RT_SCOPE_UNIVERSE,
			    .rtm_type = RTN_UNICAST};
	uint32_t oif = (uint32_t)index;
	rt_begin(&q, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof(rtm));
	rt_attr(&q, RTA_GATEWAY, &gw, sizeof(gw));
	rt_attr(&q, RTA_OIF, &oif, sizeof(oif));
	return rt_call(fd, &q);
}

int netif_setup(const char **why)
{
	struct in_addr addr, gw;
	if (inet_pton(AF_INET, GUEST_ADDR, &addr) != 1 ||
	    inet_pton(AF_INET, GUEST_GATEWAY, &gw) != 1) {
		*why = "interfaces: bad built-in address";
		return -EINVAL;
	}
	_cleanup_close_ int fd =
		socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0) {
		*why = "interfaces: netlink socket";
		return -errno;
	}
	struct timeval tv = {.tv_sec = 10};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		*why = "interfaces: netlink socket";
		return -errno;
	}
	int r, eth0;
	*why = "ip link set lo up";
	int lo = (int)if_nametoindex("lo");
	if (lo == 0)
		return -ENODEV;
	if ((r = link_up(fd, lo)))
		return r;
	*why = "ip link add eth0 type dummy";
	if ((r = dummy_add(fd, "eth0")))
		return r;
	if ((eth0 = (int)if_nametoindex("eth0")) == 0)
		return -ENODEV;
	*why = "ip addr add " GUEST_ADDR "/24 dev eth0";
	if ((r = addr_add(fd, eth0, addr, 24)))
		return r;
	*why = "ip link set eth0 up";
	if ((r = link_up(fd, eth0)))
		return r;
	*why = "ip route add default via " GUEST_GATEWAY " dev eth0";
	if ((r = default_route(fd, eth0, gw)))
		return r;
	return 0;
}
