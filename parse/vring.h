/* Split virtqueues (virtio 1.x, little-endian) seen from the device side,
 * and the guest memory table they live in.
 *
 * Trust: every byte of a ring and every descriptor is written by the guest,
 * which may be hostile and may change it while we read. So: descriptors are
 * copied before use, every guest range must lie inside one mapped region,
 * chains are bounded, and any inconsistency marks the ring broken (it is
 * then never touched again) with a static reason, instead of crashing.
 */
#ifndef LAUNCHER_VRING_H
#define LAUNCHER_VRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMEM_MAX_REGIONS 8

struct vmem_region {
	uint64_t gpa;  /* guest physical start */
	uint64_t size; /* bytes */
	uint64_t uva;  /* front-end (QEMU) virtual start */
	uint8_t *host; /* our pointer for gpa (mapping + mmap_offset) */
	void *map;     /* owned mmap, or NULL when host is borrowed */
	size_t map_len;
};

struct vmem {
	unsigned n;
	struct vmem_region r[VMEM_MAX_REGIONS];
};

/* Host pointer for [gpa, gpa+len) or NULL unless it lies in one region. */
void *vmem_gpa(const struct vmem *m, uint64_t gpa, uint64_t len);
/* Same for a front-end virtual address (ring addresses use these). */
void *vmem_uva(const struct vmem *m, uint64_t uva, uint64_t len);
/* Add a region the caller owns (tests, fuzzing); no mmap involved. */
int vmem_add_borrowed(struct vmem *m, uint64_t gpa, uint64_t uva, void *host,
		      uint64_t size);
/* Unmap owned regions and empty the table. */
void vmem_clear(struct vmem *m);

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

#define VRING_MAX_NUM 32768
/* Most segments we accept in one chain. Linux vsock uses 1-2 (up to ~18
 * with zerocopy frags); longer chains are treated as hostile. */
#define VRING_MAX_SEGS 64
/* Most bytes one chain may describe; vsock packets are <= 64 KiB + 44. */
#define VRING_MAX_CHAIN_BYTES (1u << 20)

struct vring_seg {
	uint8_t *base; /* inside guest memory */
	uint32_t len;
};

/* One popped descriptor chain: readable segments first, then writable. */
struct vring_elem {
	uint16_t head;
	unsigned n_out, n_in;
	uint32_t out_bytes, in_bytes;
	struct vring_seg seg[VRING_MAX_SEGS]; /* [0,n_out) out, then n_in in */
};

struct vring {
	uint16_t num; /* 0 until SET_VRING_NUM */
	uint64_t desc_uva, avail_uva, used_uva;
	bool addr_set;
	/* Pointers into guest memory, valid while the memory table is. */
	uint8_t *desc, *avail, *used;

	uint16_t last_avail_idx; /* next avail entry we will read */
	uint16_t used_idx;	 /* next used entry we will write */
	uint16_t signalled_used;
	bool signalled_used_valid;
	bool event_idx;

	bool broken;
	const char *why; /* static reason once broken */
};

enum vring_pop_status {
	VRING_POP_EMPTY,
	VRING_POP_OK,
	VRING_POP_BROKEN, /* ring now broken; see vr->why */
};

/* Set num (power of two, <= VRING_MAX_NUM) or return -EINVAL. */
int vring_set_num(struct vring *vr, unsigned num);
/* Translate desc/avail/used through m and check sizes and alignment; reads
 * used->idx as the starting used_idx when read_used_idx is set. */
int vring_map(struct vring *vr, const struct vmem *m, bool read_used_idx);
bool vring_ready(const struct vring *vr);
void vring_break(struct vring *vr, const char *why);

enum vring_pop_status vring_pop(struct vring *vr, const struct vmem *m,
				struct vring_elem *e);
/* Give back the last popped chain (it was not used). */
void vring_unpop(struct vring *vr);
/* Publish {head, len} in the used ring. */
void vring_push(struct vring *vr, uint16_t head, uint32_t len);
/* Should the driver be interrupted now? Applies EVENT_IDX (used_event) or
 * VRING_AVAIL_F_NO_INTERRUPT, and records what was signalled. */
bool vring_need_call(struct vring *vr);
/* Before idling: ask for a kick at the next avail entry (avail_event), then
 * re-check. Returns true if entries arrived meanwhile (process again). */
bool vring_rearm(struct vring *vr);
/* Entries available right now (0 if broken or not ready). */
unsigned vring_avail_count(struct vring *vr);
/* Forget the interrupt history, on (re)start and SET_VRING_BASE. */
void vring_reset_signal(struct vring *vr);

/* Copy up to len bytes from the readable segments, starting at off. */
size_t vring_elem_read(const struct vring_elem *e, size_t off, void *dst,
		       size_t len);
/* Copy into the writable segments at off; returns bytes copied. */
size_t vring_elem_write(const struct vring_elem *e, size_t off,
			const void *src, size_t len);

#endif
