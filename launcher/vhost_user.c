/* vhost-user back-end: message framing and front-end protocol state. */
#include "vhost_user.h"

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/util.h"

#define VRING_NOFD_MASK 0x100u
#define VRING_IDX_MASK 0xffu

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPROTO; /* EOF inside a message */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void vu_msg_close_fds(struct vu_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

int vu_msg_recv(int sock, struct vu_msg *m)
{
	uint8_t hdr[VU_HDR_SIZE];
	union {
		char buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {hdr, sizeof(hdr)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	m->nfds = 0;
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (m->nfds < VU_MAX_FDS)
				m->fds[m->nfds++] = fd;
			else
				close(fd);
		}
	}
	int r = 0;
	if (mh.msg_flags & MSG_CTRUNC)
		r = -EPROTO; /* more fds than any message may carry */
	if (r == 0 && (size_t)n < sizeof(hdr))
		r = read_full(sock, hdr + n, sizeof(hdr) - (size_t)n);
	if (r == 0) {
		memcpy(&m->request, hdr, 4);
		memcpy(&m->flags, hdr + 4, 4);
		memcpy(&m->size, hdr + 8, 4);
		if (m->size > VU_MAX_PAYLOAD)
			r = -EMSGSIZE;
		else if ((m->flags & 0x3u) != VU_FLAG_VERSION)
			r = -EPROTO;
	}
	if (r == 0)
		r = read_full(sock, m->payload, m->size);
	if (r < 0)
		vu_msg_close_fds(m);
	return r;
}

int vu_msg_send(int sock, uint32_t request, uint32_t flags, const void *payload,
		uint32_t size)
{
	uint8_t buf[VU_HDR_SIZE + VU_MAX_PAYLOAD];
	if (size > VU_MAX_PAYLOAD)
		return -EMSGSIZE;
	memcpy(buf, &request, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	if (size)
		memcpy(buf + VU_HDR_SIZE, payload, size);
	return write_all(sock, buf, VU_HDR_SIZE + size);
}

uint64_t vu_offered_features(void)
{
	/* No INDIRECT_DESC: one less guest-controlled table to walk. */
	return (1ull << VIRTIO_F_VERSION_1) |
	       (1ull << VHOST_USER_F_PROTOCOL_FEATURES) |
	       (1ull << VIRTIO_RING_F_EVENT_IDX);
}

uint64_t vu_offered_protocol_features(void)
{
	/* CONFIG is mandatory for vhost-user-vsock in QEMU 7.2 (GET_CONFIG
	 * carries the CID); REPLY_ACK lets QEMU learn of failures. */
	return (1ull << VU_PROTOCOL_F_CONFIG) | (1ull << VU_PROTOCOL_F_REPLY_ACK);
}

void vu_dev_init(struct vu_dev *d, int sock, uint64_t guest_cid)
{
	memset(d, 0, sizeof(*d));
	d->sock = sock;
	d->guest_cid = guest_cid;
	for (unsigned i = 0; i < VU_NUM_QUEUES; i++) {
		d->q[i].kick_fd = d->q[i].call_fd = d->q[i].err_fd = -1;
		/* Without PROTOCOL_FEATURES negotiated, rings start enabled. */
		d->q[i].enabled = true;
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void vu_dev_destroy(struct vu_dev *d)
{
	for (unsigned i = 0; i < VU_NUM_QUEUES; i++) {
		close_fd(&d->q[i].kick_fd);
		close_fd(&d->q[i].call_fd);
		close_fd(&d->q[i].err_fd);
	}
	vmem_clear(&d->mem);
	close_fd(&d->sock);
}

bool vu_queue_live(const struct vu_queue *q)
{
	return q->started && q->enabled && vring_ready(&q->vr);
}

bool vu_queue_notify(struct vu_queue *q)
{
	if (q->call_fd < 0 || !vring_need_call(&q->vr))
		return false;
	uint64_t one = 1;
	/* EAGAIN means the counter is saturated: the guest will be told. */
	if (write(q->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return false;
	return true;
}

static uint64_t get_u64(const struct vu_msg *m)
{
	uint64_t v;
	memcpy(&v, m->payload, 8);
	return v;
}

static int reply_u64(struct vu_dev *d, const struct vu_msg *m, uint64_t v)
{
	return vu_msg_send(d->sock, m->request, VU_FLAG_VERSION | VU_FLAG_REPLY,
			   &v, sizeof(v));
}

static void changed(struct vu_dev *d, unsigned idx)
{
	if (d->on_queue)
		d->on_queue(d->opaque, idx);
}

static void remap_rings(struct vu_dev *d)
{
	for (unsigned i = 0; i < VU_NUM_QUEUES; i++) {
		struct vring *vr = &d->q[i].vr;
		vr->desc = vr->avail = vr->used = NULL;
		if (vr->addr_set && vring_map(vr, &d->mem, false) < 0)
			vring_break(vr, "ring not inside the new memory table");
	}
}

static int set_mem_table(struct vu_dev *d, struct vu_msg *m, const char **why)
{
	uint32_t nregions;
	if (m->size < 8) {
		*why = "SET_MEM_TABLE too short";
		return -EPROTO;
	}
	memcpy(&nregions, m->payload, 4);
	if (nregions == 0 || nregions > VMEM_MAX_REGIONS ||
	    m->size < 8 + 32 * nregions || m->nfds != nregions) {
		*why = "SET_MEM_TABLE region count, size and fds disagree";
		return -EPROTO;
	}
	struct vmem fresh = {0};
	for (uint32_t i = 0; i < nregions; i++) {
		uint64_t f[4]; /* gpa, size, uva, mmap_offset */
		memcpy(f, m->payload + 8 + 32 * i, sizeof(f));
		if (f[1] == 0 || f[1] > (1ull << 40) || f[3] > (1ull << 40)) {
			vmem_clear(&fresh);
			*why = "SET_MEM_TABLE region size or offset absurd";
			return -EPROTO;
		}
		size_t len = (size_t)(f[1] + f[3]);
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			       m->fds[i], 0);
		if (p == MAP_FAILED) {
			int e = -errno;
			vmem_clear(&fresh);
			*why = "mmap of a guest memory region failed";
			return e;
		}
		fresh.r[fresh.n++] = (struct vmem_region){
			.gpa = f[0], .size = f[1], .uva = f[2],
			.host = (uint8_t *)p + f[3], .map = p, .map_len = len};
	}
	vmem_clear(&d->mem);
	d->mem = fresh;
	remap_rings(d);
	for (unsigned i = 0; i < VU_NUM_QUEUES; i++)
		changed(d, i);
	return 0;
}

static int vring_index(const struct vu_msg *m, uint32_t *idx, const char **why)
{
	if (m->size < 4) {
		*why = "vring message too short";
		return -EPROTO;
	}
	uint32_t v;
	memcpy(&v, m->payload, 4);
	*idx = v & VRING_IDX_MASK;
	if (*idx >= VU_NUM_QUEUES) {
		*why = "vring index out of range";
		return -EPROTO;
	}
	return 0;
}

static int set_vring_fd(struct vu_dev *d, struct vu_msg *m, const char **why)
{
	uint32_t idx;
	if (m->size < 8 || vring_index(m, &idx, why) < 0) {
		*why = "vring fd message malformed";
		return -EPROTO;
	}
	bool nofd = get_u64(m) & VRING_NOFD_MASK;
	if (!nofd && m->nfds != 1) {
		*why = "vring fd message without exactly one fd";
		return -EPROTO;
	}
	int fd = nofd ? -1 : m->fds[0];
	if (!nofd)
		m->nfds = 0; /* ours now */
	struct vu_queue *q = &d->q[idx];
	switch (m->request) {
	case VU_SET_VRING_KICK:
		close_fd(&q->kick_fd);
		q->kick_fd = fd;
		/* Polling mode (NOFD) is not supported: we need kicks. */
		q->started = fd >= 0;
		vring_reset_signal(&q->vr);
		if (q->vr.addr_set && !q->vr.desc && !q->vr.broken &&
		    vring_map(&q->vr, &d->mem, false) < 0)
			vring_break(&q->vr, "ring outside guest memory");
		changed(d, idx);
		break;
	case VU_SET_VRING_CALL:
		close_fd(&q->call_fd);
		q->call_fd = fd;
		break;
	default:
		close_fd(&q->err_fd);
		q->err_fd = fd;
		break;
	}
	return 0;
}

static int handle(struct vu_dev *d, struct vu_msg *m, const char **why,
		  bool *replied)
{
	uint32_t idx;
	uint32_t st[2];
	switch (m->request) {
	case VU_GET_FEATURES:
		*replied = true;
		return reply_u64(d, m, vu_offered_features());
	case VU_SET_FEATURES:
		if (m->size < 8)
			goto short_msg;
		d->features = get_u64(m);
		if (!(d->features & (1ull << VIRTIO_F_VERSION_1))) {
			*why = "front-end did not accept VERSION_1 (use virtio-mmio.force-legacy=false)";
			return -EPROTO;
		}
		for (unsigned i = 0; i < VU_NUM_QUEUES; i++) {
			d->q[i].vr.event_idx =
				d->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
			/* Never disable a ring here (rust-vmm/vhost #210);
			 * with bit 30 SET_VRING_ENABLE decides. */
			if (!(d->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)))
				d->q[i].enabled = true;
		}
		return 0;
	case VU_GET_PROTOCOL_FEATURES:
		*replied = true;
		return reply_u64(d, m, vu_offered_protocol_features());
	case VU_SET_PROTOCOL_FEATURES:
		if (m->size < 8)
			goto short_msg;
		d->protocol_features = get_u64(m) & vu_offered_protocol_features();
		/* Bit 30 was offered, so rings start disabled until ENABLE. */
		for (unsigned i = 0; i < VU_NUM_QUEUES; i++)
			d->q[i].enabled = false;
		return 0;
	case VU_GET_QUEUE_NUM:
		*replied = true;
		return reply_u64(d, m, VU_NUM_QUEUES);
	case VU_SET_OWNER:
	case VU_RESET_OWNER:
		return 0;
	case VU_SET_MEM_TABLE:
		return set_mem_table(d, m, why);
	case VU_SET_VRING_NUM:
		if (m->size < 8 || vring_index(m, &idx, why) < 0)
			goto short_msg;
		memcpy(st, m->payload, 8);
		if (vring_set_num(&d->q[idx].vr, st[1]) < 0) {
			*why = "vring size not a power of two up to 32768";
			return -EPROTO;
		}
		return 0;
	case VU_SET_VRING_BASE:
		if (m->size < 8 || vring_index(m, &idx, why) < 0)
			goto short_msg;
		memcpy(st, m->payload, 8);
		d->q[idx].vr.last_avail_idx = (uint16_t)st[1];
		d->q[idx].vr.used_idx = (uint16_t)st[1];
		vring_reset_signal(&d->q[idx].vr);
		return 0;
	case VU_SET_VRING_ADDR: {
		if (m->size < 40 || vring_index(m, &idx, why) < 0)
			goto short_msg;
		uint64_t a[3]; /* desc, used, avail */
		memcpy(a, m->payload + 8, sizeof(a));
		struct vring *vr = &d->q[idx].vr;
		vr->desc_uva = a[0];
		vr->used_uva = a[1];
		vr->avail_uva = a[2];
		vr->addr_set = true;
		vr->broken = false;
		vr->why = NULL;
		if (vring_map(vr, &d->mem, true) < 0)
			vring_break(vr, "ring addresses outside guest memory or misaligned");
		return 0;
	}
	case VU_GET_VRING_BASE:
		if (m->size < 8 || vring_index(m, &idx, why) < 0)
			goto short_msg;
		d->q[idx].started = false;
		close_fd(&d->q[idx].kick_fd);
		changed(d, idx); /* drop the kick fd from epoll, forget RX work */
		st[0] = idx;
		st[1] = d->q[idx].vr.last_avail_idx;
		*replied = true;
		return vu_msg_send(d->sock, m->request,
				   VU_FLAG_VERSION | VU_FLAG_REPLY, st, 8);
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		return set_vring_fd(d, m, why);
	case VU_SET_VRING_ENABLE:
		if (m->size < 8 || vring_index(m, &idx, why) < 0)
			goto short_msg;
		memcpy(st, m->payload, 8);
		d->q[idx].enabled = st[1] != 0;
		/* A kick may have come before enable (rust-vmm/vhost #247). */
		changed(d, idx);
		return 0;
	case VU_GET_CONFIG: {
		uint32_t cfg[3]; /* offset, size, flags */
		if (m->size < 12)
			goto short_msg;
		memcpy(cfg, m->payload, 12);
		if (cfg[1] > 256 || m->size != 12 + cfg[1]) {
			*why = "GET_CONFIG size mismatch";
			return -EPROTO;
		}
		uint8_t out[12 + 256] = {0};
		memcpy(out, cfg, 12);
		uint64_t cid = htole64(d->guest_cid);
		for (uint32_t i = 0; i < cfg[1]; i++)
			if (cfg[0] < 8 && i < 8 - cfg[0])
				out[12 + i] = ((uint8_t *)&cid)[cfg[0] + i];
		*replied = true;
		return vu_msg_send(d->sock, m->request,
				   VU_FLAG_VERSION | VU_FLAG_REPLY, out,
				   12 + cfg[1]);
	}
	case VU_SET_CONFIG:
		return 0; /* the CID is read-only */
	default:
		*why = "unsupported vhost-user request";
		return -EOPNOTSUPP;
	}
short_msg:
	*why = "vhost-user message too short or bad vring index";
	return -EPROTO;
}

int vu_dev_handle_one(struct vu_dev *d, const char **why)
{
	struct vu_msg m;
	*why = "";
	int r = vu_msg_recv(d->sock, &m);
	if (r < 0) {
		*why = r == -ECONNRESET ? "front-end closed the connection"
					: "bad vhost-user message framing";
		return r;
	}
	bool replied = false;
	r = handle(d, &m, why, &replied);
	vu_msg_close_fds(&m);
	if (d->verbose)
		fprintf(stderr, "sandbox-vsock: vhost-user request %u size %u -> %d\n",
			m.request, m.size, r);
	/* REPLY_ACK: a request with NEED_REPLY and no reply of its own gets
	 * a u64 status, or QEMU waits forever. */
	if (!replied && (m.flags & VU_FLAG_NEED_REPLY) &&
	    (d->protocol_features & (1ull << VU_PROTOCOL_F_REPLY_ACK))) {
		int s = reply_u64(d, &m, r < 0 ? 1 : 0);
		if (s < 0 && r == 0) {
			*why = "cannot write to the front-end";
			r = s;
		}
	}
	return r;
}
