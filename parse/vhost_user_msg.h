/* vhost-user request parser (QEMU docs/interop/vhost-user.rst), pure: no
 * I/O, no allocation, no global state. The bridge's socket code reads a
 * header, its SCM_RIGHTS fds and the payload, and hands the bytes here;
 * only a message this returns VU_PARSE_OK for is acted on.
 *
 * Everything is checked before use: header version and flag bits, payload
 * size (exact, per request), vring indexes, the fd count each request
 * carries (and which fd goes with what), memory regions (count, non-zero
 * sizes, no overflowing end, no overlap), config ranges.
 */
#ifndef LAUNCHER_VHOST_USER_MSG_H
#define LAUNCHER_VHOST_USER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VU_HDR_SIZE 12
#define VU_MAX_PAYLOAD 4096
#define VU_MAX_FDS 8
#define VU_NUM_QUEUES 2
#define VU_MAX_REGIONS 8
/* Largest region or mmap offset accepted: 1 TiB, far above any guest we
 * start, small enough that gpa/uva/offset + size cannot wrap. */
#define VU_MAX_REGION_BYTES (1ull << 40)
#define VU_CONFIG_SPACE 256 /* VhostUserConfig.region[] */

enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
};

#define VU_FLAG_VERSION 0x1u
#define VU_FLAG_VERSION_MASK 0x3u
#define VU_FLAG_REPLY 0x4u
#define VU_FLAG_NEED_REPLY 0x8u
#define VU_VRING_IDX_MASK 0xffu
#define VU_VRING_NOFD_MASK 0x100u

enum vu_parse_status {
	VU_PARSE_OK,
	VU_PARSE_SHORT,	      /* fewer bytes than the header announces */
	VU_PARSE_TRAILING,    /* more bytes than the header announces */
	VU_PARSE_BAD_HEADER,  /* version, REPLY or reserved flag bits */
	VU_PARSE_TOO_BIG,     /* size above VU_MAX_PAYLOAD */
	VU_PARSE_BAD_SIZE,    /* payload size wrong for this request */
	VU_PARSE_BAD_INDEX,   /* vring index not 0 or 1, or stray bits */
	VU_PARSE_BAD_FDS,     /* fd count wrong for this request, or fd < 0 */
	VU_PARSE_BAD_VALUE,   /* a field out of range (num, base, enable) */
	VU_PARSE_BAD_REGION,  /* memory table entry unusable */
	VU_PARSE_BAD_CONFIG,  /* config offset/size outside the space */
	VU_PARSE_UNSUPPORTED, /* a request this back-end does not serve */
};

struct vu_region_desc {
	uint64_t gpa, size, uva, mmap_offset;
	unsigned fd_index; /* into the fds given to the parser */
};

/* One request, checked. Which member is set follows from request. */
struct vu_parsed {
	uint32_t request, flags, size;
	bool need_reply;
	union {
		uint64_t u64; /* SET_FEATURES, SET_PROTOCOL_FEATURES */
		struct {      /* SET_VRING_NUM/BASE/ENABLE, GET_VRING_BASE */
			uint32_t index, num;
		} state;
		struct { /* SET_VRING_ADDR (QEMU virtual addresses) */
			uint32_t index, flags;
			uint64_t desc, used, avail;
		} addr;
		struct { /* SET_VRING_KICK/CALL/ERR */
			uint32_t index;
			bool nofd; /* else the fd is fds[0] */
		} vring_fd;
		struct { /* SET_MEM_TABLE: region i comes with fds[i] */
			uint32_t n;
			struct vu_region_desc r[VU_MAX_REGIONS];
		} mem;
		struct { /* GET_CONFIG, SET_CONFIG */
			uint32_t offset, size, flags;
		} config;
	} u;
};

/* The header alone (12 bytes): what the socket code needs to know how much
 * payload to read. VU_PARSE_OK or BAD_HEADER / TOO_BIG / SHORT. */
enum vu_parse_status vu_hdr_parse(const uint8_t *buf, size_t len,
				  uint32_t *request, uint32_t *flags,
				  uint32_t *size);

/* A whole message (header + payload, exactly) with the fds that came with
 * it. On anything but VU_PARSE_OK, *why says what was wrong. fds are only
 * compared with -1, never used. */
enum vu_parse_status vu_msg_parse(const uint8_t *buf, size_t len,
				  const int *fds, size_t nfds,
				  struct vu_parsed *out, const char **why);

const char *vu_request_name(uint32_t request);

#endif
