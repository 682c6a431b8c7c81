/* Device side of a split virtqueue; see vring.h for the trust model. */
#include "vring.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* Layout offsets (virtio 1.x §2.7): desc 16*num; avail flags, idx,
 * ring[num], used_event; used flags, idx, ring[num]{id,len}, avail_event. */
#define DESC_SIZE 16u
#define AVAIL_RING_OFF 4u
#define USED_RING_OFF 4u

static bool range_in(uint64_t start, uint64_t size, uint64_t addr, uint64_t len)
{
	/* Written so that no addition can overflow. */
	return addr >= start && addr - start <= size && len <= size - (addr - start);
}

void *vmem_gpa(const struct vmem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct vmem_region *r = &m->r[i];
		if (range_in(r->gpa, r->size, gpa, len))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

void *vmem_uva(const struct vmem *m, uint64_t uva, uint64_t len)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct vmem_region *r = &m->r[i];
		if (range_in(r->uva, r->size, uva, len))
			return r->host + (uva - r->uva);
	}
	return NULL;
}

int vmem_add_borrowed(struct vmem *m, uint64_t gpa, uint64_t uva, void *host,
		      uint64_t size)
{
	if (m->n >= VMEM_MAX_REGIONS || !host || size == 0)
		return -EINVAL;
	m->r[m->n++] = (struct vmem_region){
		.gpa = gpa, .size = size, .uva = uva, .host = host};
	return 0;
}

void vmem_clear(struct vmem *m)
{
	for (unsigned i = 0; i < m->n; i++)
		if (m->r[i].map)
			munmap(m->r[i].map, m->r[i].map_len);
	memset(m, 0, sizeof(*m));
}

static inline uint16_t ld16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p,
				       __ATOMIC_RELAXED));
}

static inline void st16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), __ATOMIC_RELAXED);
}

static inline void st32(uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)(void *)p, htole32(v), __ATOMIC_RELAXED);
}

int vring_set_num(struct vring *vr, unsigned num)
{
	if (num == 0 || num > VRING_MAX_NUM || (num & (num - 1)))
		return -EINVAL;
	vr->num = (uint16_t)num; /* 32768 fits */
	return 0;
}

void vring_break(struct vring *vr, const char *why)
{
	if (!vr->broken) {
		vr->broken = true;
		vr->why = why;
	}
}

int vring_map(struct vring *vr, const struct vmem *m, bool read_used_idx)
{
	if (!vr->addr_set || vr->num == 0)
		return -EINVAL;
	uint64_t n = vr->num;
	vr->desc = vmem_uva(m, vr->desc_uva, DESC_SIZE * n);
	vr->avail = vmem_uva(m, vr->avail_uva, 6 + 2 * n);
	vr->used = vmem_uva(m, vr->used_uva, 6 + 8 * n);
	if (!vr->desc || !vr->avail || !vr->used) {
		vr->desc = vr->avail = vr->used = NULL;
		return -EFAULT;
	}
	/* Natural alignment (spec 2.7), also what our atomic accesses need. */
	if (((uintptr_t)vr->desc & 15) || ((uintptr_t)vr->avail & 1) ||
	    ((uintptr_t)vr->used & 3)) {
		vr->desc = vr->avail = vr->used = NULL;
		return -EINVAL;
	}
	if (read_used_idx)
		vr->used_idx = ld16(vr->used + 2);
	return 0;
}

bool vring_ready(const struct vring *vr)
{
	return vr->desc && !vr->broken;
}

unsigned vring_avail_count(struct vring *vr)
{
	if (!vring_ready(vr))
		return 0;
	uint16_t avail_idx = ld16(vr->avail + 2);
	uint16_t n = (uint16_t)(avail_idx - vr->last_avail_idx);
	if (n > vr->num) {
		vring_break(vr, "avail idx moved by more than the queue size");
		return 0;
	}
	return n;
}

static enum vring_pop_status broken(struct vring *vr, const char *why)
{
	vring_break(vr, why);
	return VRING_POP_BROKEN;
}

enum vring_pop_status vring_pop(struct vring *vr, const struct vmem *m,
				struct vring_elem *e)
{
	if (vr->broken)
		return VRING_POP_BROKEN;
	if (vring_avail_count(vr) == 0)
		return vr->broken ? VRING_POP_BROKEN : VRING_POP_EMPTY;
	/* Read ring entries only after seeing idx (pairs with the driver's
	 * write barrier before it bumps idx). */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);

	unsigned slot = vr->last_avail_idx & (vr->num - 1);
	uint16_t head = ld16(vr->avail + AVAIL_RING_OFF + 2 * slot);
	if (head >= vr->num)
		return broken(vr, "avail ring names a descriptor beyond the queue");

	e->head = head;
	e->n_out = e->n_in = 0;
	e->out_bytes = e->in_bytes = 0;
	uint64_t total = 0;
	uint16_t i = head;
	for (unsigned count = 0;; count++) {
		if (count >= vr->num)
			return broken(vr, "descriptor chain loops");
		if (e->n_out + e->n_in >= VRING_MAX_SEGS)
			return broken(vr, "descriptor chain too long");
		/* Copy first: the guest may rewrite it while we look. */
		uint8_t d[DESC_SIZE];
		memcpy(d, vr->desc + DESC_SIZE * i, DESC_SIZE);
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
		memcpy(&addr, d, 8);
		memcpy(&len, d + 8, 4);
		memcpy(&flags, d + 12, 2);
		memcpy(&next, d + 14, 2);
		addr = le64toh(addr);
		len = le32toh(len);
		flags = le16toh(flags);
		next = le16toh(next);

		if (flags & VRING_DESC_F_INDIRECT)
			return broken(vr, "indirect descriptor (not negotiated)");
		total += len;
		if (total > VRING_MAX_CHAIN_BYTES)
			return broken(vr, "descriptor chain longer than 1 MiB");
		uint8_t *p = vmem_gpa(m, addr, len);
		if (!p)
			return broken(vr, "descriptor outside guest memory");
		if (len) {
			if (flags & VRING_DESC_F_WRITE) {
				e->seg[e->n_out + e->n_in++] =
					(struct vring_seg){p, len};
				e->in_bytes += len;
			} else {
				if (e->n_in)
					return broken(vr, "readable descriptor after a writable one");
				e->seg[e->n_out++] = (struct vring_seg){p, len};
				e->out_bytes += len;
			}
		}
		if (!(flags & VRING_DESC_F_NEXT))
			break;
		if (next >= vr->num)
			return broken(vr, "descriptor next beyond the queue");
		i = next;
	}
	vr->last_avail_idx++;
	return VRING_POP_OK;
}

void vring_unpop(struct vring *vr)
{
	vr->last_avail_idx--;
}

void vring_push(struct vring *vr, uint16_t head, uint32_t len)
{
	if (!vring_ready(vr))
		return;
	unsigned slot = vr->used_idx & (vr->num - 1);
	uint8_t *elem = vr->used + USED_RING_OFF + 8 * slot;
	st32(elem, head);
	st32(elem + 4, len);
	/* The element must be visible before the index that publishes it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	vr->used_idx++;
	st16(vr->used + 2, vr->used_idx);
}

static inline bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

bool vring_need_call(struct vring *vr)
{
	if (!vring_ready(vr))
		return false;
	/* Order our used->idx store before reading the driver's flags. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vr->event_idx)
		return !(ld16(vr->avail) & VRING_AVAIL_F_NO_INTERRUPT);
	uint16_t old = vr->signalled_used;
	bool valid = vr->signalled_used_valid;
	uint16_t used_event = ld16(vr->avail + AVAIL_RING_OFF + 2u * vr->num);
	vr->signalled_used = vr->used_idx;
	vr->signalled_used_valid = true;
	if (!valid)
		return true;
	if (old == vr->used_idx)
		return false; /* nothing new since the last call */
	return need_event(used_event, vr->used_idx, old);
}

bool vring_rearm(struct vring *vr)
{
	if (!vring_ready(vr))
		return false;
	if (vr->event_idx)
		st16(vr->used + USED_RING_OFF + 8u * vr->num, vr->last_avail_idx);
	else
		st16(vr->used, 0); /* clear VRING_USED_F_NO_NOTIFY */
	/* Publish avail_event before re-reading avail->idx, or a kick that
	 * raced with us would be lost for good. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vring_avail_count(vr) > 0;
}

void vring_reset_signal(struct vring *vr)
{
	vr->signalled_used_valid = false;
}

size_t vring_elem_read(const struct vring_elem *e, size_t off, void *dst,
		       size_t len)
{
	size_t done = 0;
	for (unsigned i = 0; i < e->n_out && done < len; i++) {
		const struct vring_seg *s = &e->seg[i];
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		size_t n = s->len - off;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)dst + done, s->base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t vring_elem_write(const struct vring_elem *e, size_t off,
			const void *src, size_t len)
{
	size_t done = 0;
	for (unsigned i = e->n_out; i < e->n_out + e->n_in && done < len; i++) {
		const struct vring_seg *s = &e->seg[i];
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		size_t n = s->len - off;
		if (n > len - done)
			n = len - done;
		memcpy(s->base + off, (const uint8_t *)src + done, n);
		done += n;
		off = 0;
	}
	return done;
}
