/* Split virtqueue device side against a fake guest memory region, with
 * descriptors posted the way a driver would. */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../parse/vring.h"
#include "tap.h"

#define NUM 8
#define GPA 0x100000ull
#define UVA 0x7f0000000000ull
#define MEMSZ 65536

static uint8_t mem[MEMSZ] __attribute__((aligned(4096)));
static struct vmem vm;
/* Layout in guest memory: desc at 0, avail at 0x1000, used at 0x2000,
 * buffers from 0x4000. */
#define DESC_OFF 0
#define AVAIL_OFF 0x1000
#define USED_OFF 0x2000
#define BUF_OFF 0x4000

static uint16_t avail_idx;

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = mem + DESC_OFF + 16 * i;
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t f = htole16(flags), n = htole16(next);
	memcpy(d, &a, 8);
	memcpy(d + 8, &l, 4);
	memcpy(d + 12, &f, 2);
	memcpy(d + 14, &n, 2);
}

static void post(uint16_t head)
{
	uint16_t h = htole16(head);
	memcpy(mem + AVAIL_OFF + 4 + 2 * (avail_idx % NUM), &h, 2);
	avail_idx++;
	uint16_t i = htole16(avail_idx);
	memcpy(mem + AVAIL_OFF + 2, &i, 2);
}

static uint16_t rd16(size_t off)
{
	uint16_t v;
	memcpy(&v, mem + off, 2);
	return le16toh(v);
}

static uint32_t rd32(size_t off)
{
	uint32_t v;
	memcpy(&v, mem + off, 4);
	return le32toh(v);
}

static void wr16(size_t off, uint16_t v)
{
	v = htole16(v);
	memcpy(mem + off, &v, 2);
}

static void setup(struct vring *vr, bool event_idx)
{
	memset(mem, 0, sizeof(mem));
	memset(vr, 0, sizeof(*vr));
	avail_idx = 0;
	vr->desc_uva = UVA + DESC_OFF;
	vr->avail_uva = UVA + AVAIL_OFF;
	vr->used_uva = UVA + USED_OFF;
	vr->addr_set = true;
	vr->event_idx = event_idx;
	vring_set_num(vr, NUM);
	vring_map(vr, &vm, true);
}

int main(void)
{
	vmem_add_borrowed(&vm, GPA, UVA, mem, MEMSZ);
	struct vring vr;
	struct vring_elem e;

	/* memory table */
	ok(vmem_gpa(&vm, GPA, MEMSZ) == mem, "whole region translates");
	ok(vmem_gpa(&vm, GPA + 1, MEMSZ) == NULL, "range one past the end rejected");
	ok(vmem_gpa(&vm, GPA - 1, 2) == NULL, "range starting before rejected");
	ok(vmem_gpa(&vm, UINT64_MAX - 2, 8) == NULL, "wrapping range rejected");
	ok(vmem_uva(&vm, UVA + 16, 16) == mem + 16, "uva translates");
	is_int(vring_set_num(&vr, 6), -EINVAL, "non power of two size rejected");
	is_int(vring_set_num(&vr, 65536), -EINVAL, "oversized ring rejected");

	/* a two-descriptor chain: readable header, writable buffer */
	setup(&vr, true);
	ok(vring_ready(&vr), "ring mapped");
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_EMPTY, "empty ring pops nothing");
	memcpy(mem + BUF_OFF, "hello", 5);
	set_desc(0, GPA + BUF_OFF, 5, VRING_DESC_F_NEXT, 3);
	set_desc(3, GPA + BUF_OFF + 0x100, 64, VRING_DESC_F_WRITE, 0);
	post(0);
	is_int(vring_avail_count(&vr), 1, "one chain available");
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_OK, "chain popped");
	is_int(e.head, 0, "head id");
	is_int(e.n_out, 1, "one readable segment");
	is_int(e.n_in, 1, "one writable segment");
	is_int(e.out_bytes, 5, "readable bytes");
	is_int(e.in_bytes, 64, "writable bytes");
	char buf[8] = {0};
	is_int(vring_elem_read(&e, 1, buf, 8), 4, "read from offset stops at end");
	is_str(buf, "ello", "bytes read");
	is_int(vring_elem_write(&e, 60, "abcdefgh", 8), 4, "write clipped at buffer end");
	ok(!memcmp(mem + BUF_OFF + 0x100 + 60, "abcd", 4), "bytes written");

	/* used ring and interrupts with EVENT_IDX */
	wr16(AVAIL_OFF + 4 + 2 * NUM, 0); /* used_event = 0 */
	vring_push(&vr, e.head, 42);
	is_int(rd16(USED_OFF + 2), 1, "used idx published");
	is_int(rd32(USED_OFF + 4), 0, "used elem id");
	is_int(rd32(USED_OFF + 8), 42, "used elem len");
	ok(vring_need_call(&vr), "first interrupt always sent");
	ok(!vring_need_call(&vr), "no interrupt without new used entries");
	/* driver asks to be told only when used idx passes 3 */
	wr16(AVAIL_OFF + 4 + 2 * NUM, 3);
	for (int i = 0; i < 2; i++) {
		set_desc(1, GPA + BUF_OFF, 4, 0, 0);
		post(1);
		is_int(vring_pop(&vr, &vm, &e), VRING_POP_OK, "pop %d", i);
		vring_push(&vr, e.head, 0);
		ok(!vring_need_call(&vr), "used_event 3 suppresses call at used idx %d", 2 + i);
	}
	set_desc(1, GPA + BUF_OFF, 4, 0, 0);
	post(1);
	vring_pop(&vr, &vm, &e);
	vring_push(&vr, e.head, 0);
	ok(vring_need_call(&vr), "call once used idx crosses used_event");

	/* kick suppression: avail_event follows last_avail_idx */
	ok(!vring_rearm(&vr), "nothing pending after rearm");
	is_int(rd16(USED_OFF + 4 + 8 * NUM), 4, "avail_event = last_avail_idx");
	post(1);
	ok(vring_rearm(&vr), "rearm notices an entry that raced in");

	/* without EVENT_IDX: NO_INTERRUPT flag */
	setup(&vr, false);
	set_desc(0, GPA + BUF_OFF, 4, 0, 0);
	post(0);
	vring_pop(&vr, &vm, &e);
	vring_push(&vr, e.head, 0);
	wr16(AVAIL_OFF, VRING_AVAIL_F_NO_INTERRUPT);
	ok(!vring_need_call(&vr), "NO_INTERRUPT honoured");
	wr16(AVAIL_OFF, 0);
	ok(vring_need_call(&vr), "interrupt without NO_INTERRUPT");

	/* unpop gives the chain back */
	setup(&vr, true);
	set_desc(2, GPA + BUF_OFF, 4, VRING_DESC_F_WRITE, 0);
	post(2);
	vring_pop(&vr, &vm, &e);
	vring_unpop(&vr);
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_OK, "unpopped chain pops again");
	is_int(e.head, 2, "same head");

	/* hostile rings */
	setup(&vr, true);
	set_desc(0, GPA + BUF_OFF, 4, VRING_DESC_F_NEXT, 1);
	set_desc(1, GPA + BUF_OFF, 4, VRING_DESC_F_NEXT, 0);
	post(0);
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_BROKEN, "looping chain rejected");
	is_str(vr.why, "descriptor chain loops", "reason given");
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_BROKEN, "broken ring stays stopped");

	setup(&vr, true);
	set_desc(0, GPA + MEMSZ - 4, 8, 0, 0);
	post(0);
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_BROKEN, "buffer crossing the region end rejected");
	is_str(vr.why, "descriptor outside guest memory", "reason given");

	setup(&vr, true);
	set_desc(0, 0x1000, 8, 0, 0);
	post(0);
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_BROKEN, "unmapped address rejected");

	setup(&vr, true);
	set_desc(0, GPA, 0xffffffffu, 0, 0);
	post(0);
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_BROKEN, "absurd length rejected");

	setup(&vr, true);
	post(NUM + 3);
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_BROKEN, "head beyond queue rejected");

	setup(&vr, true);
	set_desc(0, GPA + BUF_OFF, 4, VRING_DESC_F_NEXT, 200);
	post(0);
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_BROKEN, "next beyond queue rejected");

	setup(&vr, true);
	set_desc(0, GPA + BUF_OFF, 4, VRING_DESC_F_INDIRECT, 0);
	post(0);
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_BROKEN, "indirect (not offered) rejected");

	setup(&vr, true);
	set_desc(0, GPA + BUF_OFF, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(1, GPA + BUF_OFF, 4, 0, 0);
	post(0);
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_BROKEN, "readable after writable rejected");

	setup(&vr, true);
	wr16(AVAIL_OFF + 2, NUM + 1);
	is_int(vring_pop(&vr, &vm, &e), VRING_POP_BROKEN, "avail idx jump beyond size rejected");

	/* ring addresses must be inside memory */
	memset(&vr, 0, sizeof(vr));
	vring_set_num(&vr, NUM);
	vr.desc_uva = UVA + MEMSZ - 16;
	vr.avail_uva = UVA + AVAIL_OFF;
	vr.used_uva = UVA + USED_OFF;
	vr.addr_set = true;
	is_int(vring_map(&vr, &vm, true), -EFAULT, "desc table past region end rejected");
	vr.desc_uva = UVA + 8;
	is_int(vring_map(&vr, &vm, true), -EINVAL, "misaligned desc table rejected");
	return done_testing();
}
