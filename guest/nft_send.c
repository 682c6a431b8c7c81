/* Load the capture batch (nft_batch.c) into the kernel over
 * NETLINK_NETFILTER: one sendto, then every acknowledgement. The kernel
 * applies a batch whole or not at all; any error fails the load. */
#include "nft_batch.h"

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../common/util.h"

int nft_capture_load(const char **why)
{
	static uint8_t batch[NFT_BATCH_MAX];
	unsigned nacks = 0;
	const uint32_t seq0 = 1;
	size_t len = nft_capture_batch(batch, sizeof(batch), seq0, &nacks);
	if (len == 0) {
		*why = "nftables batch: does not fit its buffer";
		return -EOVERFLOW;
	}
	_cleanup_close_ int fd =
		socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0) {
		*why = "nftables: netlink socket";
		return -errno;
	}
	/* Never wait forever on a kernel that does not answer. */
	struct timeval tv = {.tv_sec = 10};
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    sendto(fd, batch, len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) != (ssize_t)len) {
		*why = "nftables: sending the batch";
		return -errno;
	}
	static uint8_t rbuf[8192];
	unsigned acked = 0;
	while (acked < nacks) {
		ssize_t n = recv(fd, rbuf, sizeof(rbuf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*why = "nftables: reading the acknowledgements";
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		size_t left = (size_t)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf;
		     NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
				*why = "nftables: short acknowledgement";
				return -EPROTO;
			}
			const struct nlmsgerr *e = NLMSG_DATA(h);
			if (e->error) {
				*why = "nftables: the kernel refused the rules";
				return e->error < 0 ? e->error : -EPROTO;
			}
			acked++;
		}
	}
	return 0;
}
