/* Fuzz the device side of a split virtqueue: the input becomes guest memory
 * (descriptor table, avail ring, buffers) in a region at a random-ish guest
 * address; the harness pops every chain, writes into writable segments and
 * pushes used entries, exactly as the bridge does. Any out-of-region access
 * is caught by ASan because the region is an exact-size heap copy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../parse/vring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	/* header: log2(num) (0..5), event_idx, last_avail_idx seed */
	unsigned num = 1u << (data[0] % 6);
	bool event_idx = data[1] & 1;
	uint16_t start = data[2];
	data += 4;
	size -= 4;
	size_t memsz = 16 * num + 6 + 2 * num + 6 + 8 * num + 64;
	if (size > memsz)
		memsz = size;
	memsz = (memsz + 15) & ~(size_t)15;
	uint8_t *mem = aligned_alloc(16, memsz);
	if (!mem)
		return 0;
	memset(mem, 0, memsz);
	memcpy(mem, data, size);

	const uint64_t gpa = 0x10000, uva = 0x7f0000000000ull;
	struct vmem vm = {0};
	vmem_add_borrowed(&vm, gpa, uva, mem, memsz);
	struct vring vr = {0};
	vring_set_num(&vr, num);
	vr.desc_uva = uva;
	vr.avail_uva = uva + 16 * num;
	vr.used_uva = (uva + 16 * num + 6 + 2 * num + 3) & ~3ull;
	vr.addr_set = true;
	vr.event_idx = event_idx;
	if (vring_map(&vr, &vm, false) == 0) {
		vr.last_avail_idx = start;
		struct vring_elem e;
		for (unsigned i = 0; i < 2 * num + 2; i++) {
			enum vring_pop_status st = vring_pop(&vr, &vm, &e);
			if (st != VRING_POP_OK) {
				vring_rearm(&vr);
				break;
			}
			uint8_t hdr[44];
			vring_elem_read(&e, 0, hdr, sizeof(hdr));
			size_t w = vring_elem_write(&e, 3, data, size < 100 ? size : 100);
			vring_push(&vr, e.head, (uint32_t)w);
			vring_need_call(&vr);
		}
	}
	free(mem);
	return 0;
}
