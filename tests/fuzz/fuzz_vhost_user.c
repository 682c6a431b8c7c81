/* Fuzz the vhost-user request parser (parse/vhost_user_msg.c).
 *
 * Input: one control byte, then the message (header + payload).
 *   control & 0x0f: how many fds came with it (9-15 test the cap);
 *   control & 0x10: the last fd is -1.
 * The fds are made-up numbers: the parser never uses them. Whatever it
 * accepts must satisfy what the bridge relies on afterwards. */
#include <stdint.h>
#include <string.h>

#include "../../parse/vhost_user_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int fds[16];
	size_t nfds = data[0] & 0x0f;
	for (size_t i = 0; i < 16; i++)
		fds[i] = 100 + (int)i;
	if ((data[0] & 0x10) && nfds)
		fds[nfds - 1] = -1;
	struct vu_parsed p;
	const char *why = NULL;
	enum vu_parse_status st =
		vu_msg_parse(data + 1, size - 1, fds, nfds, &p, &why);
	if (!why)
		__builtin_trap(); /* always set */
	if (st != VU_PARSE_OK) {
		if (!why[0])
			__builtin_trap(); /* a refusal says why */
		return 0;
	}
	if (size - 1 != VU_HDR_SIZE + (size_t)p.size || p.size > VU_MAX_PAYLOAD)
		__builtin_trap();
	switch (p.request) {
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
		if (p.u.state.index >= VU_NUM_QUEUES || nfds)
			__builtin_trap();
		break;
	case VU_SET_VRING_ADDR:
		if (p.u.addr.index >= VU_NUM_QUEUES)
			__builtin_trap();
		break;
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		if (p.u.vring_fd.index >= VU_NUM_QUEUES ||
		    nfds != (p.u.vring_fd.nofd ? 0u : 1u) ||
		    (nfds && fds[0] < 0))
			__builtin_trap();
		break;
	case VU_SET_MEM_TABLE:
		if (p.u.mem.n == 0 || p.u.mem.n > VU_MAX_REGIONS || nfds != p.u.mem.n)
			__builtin_trap();
		for (uint32_t i = 0; i < p.u.mem.n; i++) {
			const struct vu_region_desc *r = &p.u.mem.r[i];
			if (r->fd_index >= nfds || fds[r->fd_index] < 0 ||
			    r->size == 0 || r->size > VU_MAX_REGION_BYTES ||
			    r->mmap_offset > VU_MAX_REGION_BYTES ||
			    r->gpa + r->size < r->gpa || r->uva + r->size < r->uva)
				__builtin_trap();
		}
		break;
	case VU_GET_CONFIG:
	case VU_SET_CONFIG:
		if (p.u.config.size > VU_CONFIG_SPACE ||
		    p.u.config.offset + p.u.config.size > VU_CONFIG_SPACE ||
		    p.size != 12 + p.u.config.size)
			__builtin_trap();
		break;
	default:
		if (nfds)
			__builtin_trap(); /* only fd-carrying requests take fds */
		break;
	}
	return 0;
}
