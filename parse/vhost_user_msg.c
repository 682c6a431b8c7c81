/* vhost-user request parser: see vhost_user_msg.h. Sizes are those QEMU
 * 7.2 sends (observed, /work notes "vhost-user-vsock"): u64 and vring
 * state payloads are 8 bytes, SET_VRING_ADDR 40, SET_MEM_TABLE 8 + 32 per
 * region, GET_CONFIG/SET_CONFIG 12 + the config size, GET_* without
 * arguments 0. Anything else is refused rather than guessed at. */
#include "vhost_user_msg.h"

#include <string.h>

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4); /* host order, as the protocol says */
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

const char *vu_request_name(uint32_t request)
{
	switch (request) {
	case VU_GET_FEATURES: return "GET_FEATURES";
	case VU_SET_FEATURES: return "SET_FEATURES";
	case VU_SET_OWNER: return "SET_OWNER";
	case VU_RESET_OWNER: return "RESET_OWNER";
	case VU_SET_MEM_TABLE: return "SET_MEM_TABLE";
	case VU_SET_LOG_BASE: return "SET_LOG_BASE";
	case VU_SET_LOG_FD: return "SET_LOG_FD";
	case VU_SET_VRING_NUM: return "SET_VRING_NUM";
	case VU_SET_VRING_ADDR: return "SET_VRING_ADDR";
	case VU_SET_VRING_BASE: return "SET_VRING_BASE";
	case VU_GET_VRING_BASE: return "GET_VRING_BASE";
	case VU_SET_VRING_KICK: return "SET_VRING_KICK";
	case VU_SET_VRING_CALL: return "SET_VRING_CALL";
	case VU_SET_VRING_ERR: return "SET_VRING_ERR";
	case VU_GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
	case VU_SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
	case VU_GET_QUEUE_NUM: return "GET_QUEUE_NUM";
	case VU_SET_VRING_ENABLE: return "SET_VRING_ENABLE";
	case VU_GET_CONFIG: return "GET_CONFIG";
	case VU_SET_CONFIG: return "SET_CONFIG";
	default: return "unknown";
	}
}

enum vu_parse_status vu_hdr_parse(const uint8_t *buf, size_t len,
				  uint32_t *request, uint32_t *flags,
				  uint32_t *size)
{
	if (len < VU_HDR_SIZE)
		return VU_PARSE_SHORT;
	*request = rd32(buf);
	*flags = rd32(buf + 4);
	*size = rd32(buf + 8);
	/* Version 1, and of the other bits only NEED_REPLY: a request never
	 * carries REPLY, and reserved bits must be zero. */
	if ((*flags & VU_FLAG_VERSION_MASK) != VU_FLAG_VERSION ||
	    (*flags & ~(VU_FLAG_VERSION_MASK | VU_FLAG_NEED_REPLY)))
		return VU_PARSE_BAD_HEADER;
	if (*size > VU_MAX_PAYLOAD)
		return VU_PARSE_TOO_BIG;
	return VU_PARSE_OK;
}

#define FAIL(st, msg)                                                          \
	do {                                                                   \
		*why = (msg);                                                  \
		return (st);                                                   \
	} while (0)

static enum vu_parse_status vring_state(const uint8_t *p, struct vu_parsed *out,
					const char **why)
{
	out->u.state.index = rd32(p);
	out->u.state.num = rd32(p + 4);
	if (out->u.state.index >= VU_NUM_QUEUES)
		FAIL(VU_PARSE_BAD_INDEX, "vring index is not 0 or 1");
	switch (out->request) {
	case VU_SET_VRING_NUM:
		/* Split rings: a power of two up to 32768 (virtio 1.2 2.7). */
		if (out->u.state.num == 0 || out->u.state.num > 32768 ||
		    (out->u.state.num & (out->u.state.num - 1)))
			FAIL(VU_PARSE_BAD_VALUE,
			     "vring size is not a power of two up to 32768");
		break;
	case VU_SET_VRING_BASE:
		/* A split ring's avail index is 16 bits (no packed rings). */
		if (out->u.state.num > 0xffff)
			FAIL(VU_PARSE_BAD_VALUE, "vring base above 65535");
		break;
	case VU_SET_VRING_ENABLE:
		if (out->u.state.num > 1)
			FAIL(VU_PARSE_BAD_VALUE, "vring enable is not 0 or 1");
		break;
	default:
		break;
	}
	return VU_PARSE_OK;
}

static enum vu_parse_status vring_fd(const uint8_t *p, size_t nfds,
				     const int *fds, struct vu_parsed *out,
				     const char **why)
{
	uint64_t v = rd64(p);
	if (v & ~(uint64_t)(VU_VRING_IDX_MASK | VU_VRING_NOFD_MASK))
		FAIL(VU_PARSE_BAD_INDEX, "vring fd message has reserved bits set");
	out->u.vring_fd.index = (uint32_t)(v & VU_VRING_IDX_MASK);
	out->u.vring_fd.nofd = v & VU_VRING_NOFD_MASK;
	if (out->u.vring_fd.index >= VU_NUM_QUEUES)
		FAIL(VU_PARSE_BAD_INDEX, "vring index is not 0 or 1");
	if (nfds != (out->u.vring_fd.nofd ? 0u : 1u))
		FAIL(VU_PARSE_BAD_FDS,
		     "vring fd message needs exactly one fd (none with NOFD)");
	if (nfds && fds[0] < 0)
		FAIL(VU_PARSE_BAD_FDS, "negative fd");
	return VU_PARSE_OK;
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen; /* ends checked not to wrap */
}

static enum vu_parse_status mem_table(const uint8_t *p, uint32_t size,
				      const int *fds, size_t nfds,
				      struct vu_parsed *out, const char **why)
{
	if (size < 8)
		FAIL(VU_PARSE_BAD_SIZE, "SET_MEM_TABLE shorter than its count");
	uint32_t n = rd32(p);
	if (n == 0 || n > VU_MAX_REGIONS)
		FAIL(VU_PARSE_BAD_REGION, "SET_MEM_TABLE region count not 1 to 8");
	if (size != 8 + 32 * n)
		FAIL(VU_PARSE_BAD_SIZE, "SET_MEM_TABLE size is not 8 + 32 per region");
	if (nfds != n)
		FAIL(VU_PARSE_BAD_FDS, "SET_MEM_TABLE needs one fd per region");
	out->u.mem.n = n;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = p + 8 + 32 * i;
		struct vu_region_desc *r = &out->u.mem.r[i];
		r->gpa = rd64(e);
		r->size = rd64(e + 8);
		r->uva = rd64(e + 16);
		r->mmap_offset = rd64(e + 24);
		r->fd_index = i;
		if (fds[i] < 0)
			FAIL(VU_PARSE_BAD_FDS, "negative fd");
		if (r->size == 0 || r->size > VU_MAX_REGION_BYTES ||
		    r->mmap_offset > VU_MAX_REGION_BYTES)
			FAIL(VU_PARSE_BAD_REGION,
			     "memory region size zero or offset/size above 1 TiB");
		if (r->gpa > UINT64_MAX - r->size || r->uva > UINT64_MAX - r->size)
			FAIL(VU_PARSE_BAD_REGION, "memory region end wraps around");
		/* Two regions for one address would make translation depend
		 * on table order; QEMU never sends that. */
		for (uint32_t j = 0; j < i; j++) {
			const struct vu_region_desc *o = &out->u.mem.r[j];
			if (overlap(r->gpa, r->size, o->gpa, o->size) ||
			    overlap(r->uva, r->size, o->uva, o->size))
				FAIL(VU_PARSE_BAD_REGION, "memory regions overlap");
		}
	}
	return VU_PARSE_OK;
}

static enum vu_parse_status config(const uint8_t *p, uint32_t size,
				   struct vu_parsed *out, const char **why)
{
	if (size < 12)
		FAIL(VU_PARSE_BAD_SIZE, "config message shorter than 12 bytes");
	out->u.config.offset = rd32(p);
	out->u.config.size = rd32(p + 4);
	out->u.config.flags = rd32(p + 8);
	if (out->u.config.size > VU_CONFIG_SPACE ||
	    out->u.config.offset > VU_CONFIG_SPACE - out->u.config.size)
		FAIL(VU_PARSE_BAD_CONFIG, "config range outside the 256-byte space");
	if (size != 12 + out->u.config.size)
		FAIL(VU_PARSE_BAD_SIZE, "config message size is not 12 + its size");
	return VU_PARSE_OK;
}

/* The exact payload size of each fixed-size request, or -1. */
static long fixed_size(uint32_t request)
{
	switch (request) {
	case VU_GET_FEATURES:
	case VU_GET_PROTOCOL_FEATURES:
	case VU_GET_QUEUE_NUM:
	case VU_SET_OWNER:
	case VU_RESET_OWNER:
		return 0;
	case VU_SET_FEATURES:
	case VU_SET_PROTOCOL_FEATURES:
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		return 8;
	case VU_SET_VRING_ADDR:
		return 40;
	default:
		return -1;
	}
}

enum vu_parse_status vu_msg_parse(const uint8_t *buf, size_t len,
				  const int *fds, size_t nfds,
				  struct vu_parsed *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	*why = "";
	if (nfds > VU_MAX_FDS || (nfds && !fds))
		FAIL(VU_PARSE_BAD_FDS, "more fds than any message carries");
	enum vu_parse_status st =
		vu_hdr_parse(buf, len, &out->request, &out->flags, &out->size);
	if (st == VU_PARSE_SHORT)
		FAIL(st, "shorter than the 12-byte header");
	if (st == VU_PARSE_BAD_HEADER)
		FAIL(st, "header flags: not version 1, or REPLY/reserved bits set");
	if (st == VU_PARSE_TOO_BIG)
		FAIL(st, "payload size above 4096");
	if (len - VU_HDR_SIZE < out->size)
		FAIL(VU_PARSE_SHORT, "fewer payload bytes than the header says");
	if (len - VU_HDR_SIZE > out->size)
		FAIL(VU_PARSE_TRAILING, "more bytes than the header says");
	out->need_reply = out->flags & VU_FLAG_NEED_REPLY;
	const uint8_t *p = buf + VU_HDR_SIZE;
	uint32_t size = out->size;

	long want = fixed_size(out->request);
	if (want >= 0 && size != (uint32_t)want)
		FAIL(VU_PARSE_BAD_SIZE, "payload size wrong for this request");
	bool takes_fds = out->request == VU_SET_MEM_TABLE ||
			 out->request == VU_SET_VRING_KICK ||
			 out->request == VU_SET_VRING_CALL ||
			 out->request == VU_SET_VRING_ERR;
	if (!takes_fds && nfds)
		FAIL(VU_PARSE_BAD_FDS, "fds attached to a request that takes none");

	switch (out->request) {
	case VU_GET_FEATURES:
	case VU_GET_PROTOCOL_FEATURES:
	case VU_GET_QUEUE_NUM:
	case VU_SET_OWNER:
	case VU_RESET_OWNER:
		return VU_PARSE_OK;
	case VU_SET_FEATURES:
	case VU_SET_PROTOCOL_FEATURES:
		out->u.u64 = rd64(p);
		return VU_PARSE_OK;
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
		return vring_state(p, out, why);
	case VU_SET_VRING_ADDR:
		out->u.addr.index = rd32(p);
		out->u.addr.flags = rd32(p + 4);
		out->u.addr.desc = rd64(p + 8);
		out->u.addr.used = rd64(p + 16);
		out->u.addr.avail = rd64(p + 24);
		if (out->u.addr.index >= VU_NUM_QUEUES)
			FAIL(VU_PARSE_BAD_INDEX, "vring index is not 0 or 1");
		/* VHOST_VRING_F_LOG asks for dirty logging, never offered. */
		if (out->u.addr.flags)
			FAIL(VU_PARSE_BAD_VALUE, "vring address flags set (no logging)");
		return VU_PARSE_OK;
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		return vring_fd(p, nfds, fds, out, why);
	case VU_SET_MEM_TABLE:
		return mem_table(p, size, fds, nfds, out, why);
	case VU_GET_CONFIG:
	case VU_SET_CONFIG:
		return config(p, size, out, why);
	default:
		FAIL(VU_PARSE_UNSUPPORTED, "unsupported vhost-user request");
	}
}
