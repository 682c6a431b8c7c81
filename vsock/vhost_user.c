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

/* All len bytes of a message: EOF inside one is a protocol error. */
static int read_msg_part(int fd, void *buf, size_t len)
{
	ssize_t n = read_full(fd, buf, len);
	if (n < 0)
		return (int)n;
	return (size_t)n < len ? -EPROTO : 0;
}

void vu_msg_close_fds(struct vu_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

int vu_msg_recv(int sock, struct vu_msg *m, const char **why)
{
	*why = "bad vhost-user message framing";
	union {
		char buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {m->buf, VU_HDR_SIZE};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	m->nfds = 0;
	m->len = 0;
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
	if (mh.msg_flags & MSG_CTRUNC) {
		r = -EPROTO; /* more fds than any message may carry */
		*why = "vhost-user message with more than 8 fds";
	}
	if (r == 0 && (size_t)n < VU_HDR_SIZE)
		r = read_msg_part(sock, m->buf + n, VU_HDR_SIZE - (size_t)n);
	uint32_t request, flags, size = 0;
	if (r == 0) {
		switch (vu_hdr_parse(m->buf, VU_HDR_SIZE, &request, &flags, &size)) {
		case VU_PARSE_OK:
			break;
		case VU_PARSE_TOO_BIG:
			r = -EMSGSIZE;
			*why = "vhost-user message framing: payload size above 4096";
			break;
		default:
			r = -EPROTO;
			*why = "vhost-user message framing: header flags not version 1, "
			       "or REPLY/reserved bits set";
			break;
		}
	}
	if (r == 0)
		r = read_msg_part(sock, m->buf + VU_HDR_SIZE, size);
	if (r < 0) {
		vu_msg_close_fds(m);
		return r;
	}
	m->len = VU_HDR_SIZE + size;
	return 0;
}

int vu_msg_send(int sock, uint32_t request, uint32_t flags, const void *payload,
		uint32_t size)
{
	uint8_t buf[VU_HDR_SIZE + VU_MAX_PAYLOAD];
	if (size > VU_MAX_PAYLOAD || (size && !payload))
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

static int reply_u64(struct vu_dev *d, const struct vu_parsed *m, uint64_t v)
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

/* The parser checked count, fds, sizes and overlap; here only mmap. */
static int set_mem_table(struct vu_dev *d, const struct vu_parsed *p,
			 const int *fds, const char **why)
{
	struct vmem fresh = {0};
	for (uint32_t i = 0; i < p->u.mem.n; i++) {
		const struct vu_region_desc *rd = &p->u.mem.r[i];
		size_t len = (size_t)(rd->size + rd->mmap_offset);
		/* A mapping beyond the end of its file would SIGBUS us on
		 * first touch instead of failing here. */
		off_t end = lseek(fds[rd->fd_index], 0, SEEK_END);
		if (end < 0 || (uint64_t)end < len) {
			vmem_clear(&fresh);
			*why = "SET_MEM_TABLE region extends beyond its fd's end";
			return -EPROTO;
		}
		void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			       fds[rd->fd_index], 0);
		if (m == MAP_FAILED) {
			int e = -errno;
			vmem_clear(&fresh);
			*why = "mmap of a guest memory region failed";
			return e;
		}
		fresh.r[fresh.n++] = (struct vmem_region){
			.gpa = rd->gpa, .size = rd->size, .uva = rd->uva,
			.host = (uint8_t *)m + rd->mmap_offset, .map = m,
			.map_len = len};
	}
	vmem_clear(&d->mem);
	d->mem = fresh;
	remap_rings(d);
	for (unsigned i = 0; i < VU_NUM_QUEUES; i++)
		changed(d, i);
	return 0;
}

/* Takes the fd (m->fds[0]) unless NOFD. */
static void set_vring_fd(struct vu_dev *d, const struct vu_parsed *p,
			 struct vu_msg *m)
{
	int fd = -1;
	if (!p->u.vring_fd.nofd) {
		fd = m->fds[0];
		m->fds[0] = -1; /* ours now */
	}
	unsigned idx = p->u.vring_fd.index;
	struct vu_queue *q = &d->q[idx];
	switch (p->request) {
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
}

static int get_config(struct vu_dev *d, const struct vu_parsed *p)
{
	/* The vsock config space is the guest CID, le64 at offset 0; the
	 * rest of the 256 bytes reads as zero. */
	uint8_t out[12 + VU_CONFIG_SPACE] = {0};
	uint8_t space[VU_CONFIG_SPACE] = {0};
	uint64_t cid = htole64(d->guest_cid);
	memcpy(space, &cid, sizeof(cid));
	uint32_t hdr[3] = {p->u.config.offset, p->u.config.size,
			   p->u.config.flags};
	memcpy(out, hdr, 12);
	/* offset + size <= 256: checked by the parser */
	memcpy(out + 12, space + p->u.config.offset, p->u.config.size);
	return vu_msg_send(d->sock, p->request, VU_FLAG_VERSION | VU_FLAG_REPLY,
			   out, 12 + p->u.config.size);
}

static int handle(struct vu_dev *d, const struct vu_parsed *p, struct vu_msg *m,
		  const char **why, bool *replied)
{
	unsigned idx;
	uint32_t st[2];
	switch (p->request) {
	case VU_GET_FEATURES:
		*replied = true;
		return reply_u64(d, p, vu_offered_features());
	case VU_SET_FEATURES:
		d->features = p->u.u64;
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
		return reply_u64(d, p, vu_offered_protocol_features());
	case VU_SET_PROTOCOL_FEATURES:
		d->protocol_features = p->u.u64 & vu_offered_protocol_features();
		/* Bit 30 was offered, so rings start disabled until ENABLE. */
		for (unsigned i = 0; i < VU_NUM_QUEUES; i++)
			d->q[i].enabled = false;
		return 0;
	case VU_GET_QUEUE_NUM:
		*replied = true;
		return reply_u64(d, p, VU_NUM_QUEUES);
	case VU_SET_OWNER:
	case VU_RESET_OWNER:
		return 0;
	case VU_SET_MEM_TABLE:
		return set_mem_table(d, p, m->fds, why);
	case VU_SET_VRING_NUM:
		if (vring_set_num(&d->q[p->u.state.index].vr, p->u.state.num) < 0) {
			*why = "vring size not a power of two up to 32768";
			return -EPROTO;
		}
		return 0;
	case VU_SET_VRING_BASE:
		idx = p->u.state.index;
		d->q[idx].vr.last_avail_idx = (uint16_t)p->u.state.num;
		d->q[idx].vr.used_idx = (uint16_t)p->u.state.num;
		vring_reset_signal(&d->q[idx].vr);
		return 0;
	case VU_SET_VRING_ADDR: {
		struct vring *vr = &d->q[p->u.addr.index].vr;
		vr->desc_uva = p->u.addr.desc;
		vr->used_uva = p->u.addr.used;
		vr->avail_uva = p->u.addr.avail;
		vr->addr_set = true;
		vr->broken = false;
		vr->why = NULL;
		if (vring_map(vr, &d->mem, true) < 0)
			vring_break(vr, "ring addresses outside guest memory or misaligned");
		return 0;
	}
	case VU_GET_VRING_BASE:
		idx = p->u.state.index;
		d->q[idx].started = false;
		close_fd(&d->q[idx].kick_fd);
		changed(d, idx); /* drop the kick fd from epoll, forget RX work */
		st[0] = idx;
		st[1] = d->q[idx].vr.last_avail_idx;
		*replied = true;
		return vu_msg_send(d->sock, p->request,
				   VU_FLAG_VERSION | VU_FLAG_REPLY, st, 8);
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		set_vring_fd(d, p, m);
		return 0;
	case VU_SET_VRING_ENABLE:
		d->q[p->u.state.index].enabled = p->u.state.num != 0;
		/* A kick may have come before enable (rust-vmm/vhost #247). */
		changed(d, p->u.state.index);
		return 0;
	case VU_GET_CONFIG:
		*replied = true;
		return get_config(d, p);
	case VU_SET_CONFIG:
		return 0; /* the CID is read-only */
	default:
		*why = "unsupported vhost-user request";
		return -EOPNOTSUPP;
	}
}

int vu_dev_handle_one(struct vu_dev *d, const char **why)
{
	struct vu_msg m;
	*why = "";
	int r = vu_msg_recv(d->sock, &m, why);
	if (r < 0) {
		if (r == -ECONNRESET)
			*why = "front-end closed the connection";
		return r;
	}
	struct vu_parsed p;
	bool replied = false;
	enum vu_parse_status st = vu_msg_parse(m.buf, m.len, m.fds, m.nfds, &p, why);
	if (st != VU_PARSE_OK) {
		fprintf(stderr, "sandbox-vsock: vhost-user %s (%u): %s\n",
			vu_request_name(p.request), p.request, *why);
		r = st == VU_PARSE_UNSUPPORTED ? -EOPNOTSUPP : -EPROTO;
	} else {
		r = handle(d, &p, &m, why, &replied);
	}
	vu_msg_close_fds(&m);
	if (d->verbose)
		fprintf(stderr, "sandbox-vsock: vhost-user %s size %u -> %d\n",
			vu_request_name(p.request), p.size, r);
	/* REPLY_ACK: a request with NEED_REPLY and no reply of its own gets
	 * a u64 status, or QEMU waits forever. */
	if (!replied && p.need_reply &&
	    (d->protocol_features & (1ull << VU_PROTOCOL_F_REPLY_ACK))) {
		int s = reply_u64(d, &p, r < 0 ? 1 : 0);
		if (s < 0 && r == 0) {
			*why = "cannot write to the front-end";
			r = s;
		}
	}
	return r;
}
