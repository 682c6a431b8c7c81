/* The vhost-user request parser: QEMU 7.2's real messages parse, and every
 * size, index, fd count, region and config range is checked. */
#include <string.h>

#include "../../parse/vhost_user_msg.h"
#include "tap.h"

static uint8_t buf[VU_HDR_SIZE + VU_MAX_PAYLOAD + 16];
static size_t len;

static void put32(size_t off, uint32_t v)
{
	memcpy(buf + off, &v, 4);
}

static void put64(size_t off, uint64_t v)
{
	memcpy(buf + off, &v, 8);
}

static void hdr(uint32_t req, uint32_t flags, uint32_t size)
{
	memset(buf, 0, sizeof(buf));
	put32(0, req);
	put32(4, flags);
	put32(8, size);
	len = VU_HDR_SIZE + size;
}

static void region(unsigned i, uint64_t gpa, uint64_t size, uint64_t uva,
		   uint64_t off)
{
	size_t o = VU_HDR_SIZE + 8 + 32 * i;
	put64(o, gpa);
	put64(o + 8, size);
	put64(o + 16, uva);
	put64(o + 24, off);
}

static struct vu_parsed p;
static const char *why;
static int fds[16] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22};

static enum vu_parse_status parse(size_t nfds)
{
	return vu_msg_parse(buf, len, fds, nfds, &p, &why);
}

static void mem_table_qemu(void)
{
	/* As QEMU 7.2 sent it for a 256 MiB microvm guest. */
	hdr(VU_SET_MEM_TABLE, 0x9, 8 + 32 * 2);
	put32(VU_HDR_SIZE, 2);
	region(0, 0, 0xf0000, 0x7f2fe3fff000, 0);
	region(1, 0x100000, 0xff00000, 0x7f2fe40ff000, 0x100000);
}

int main(void)
{
	/* ---- real messages ---- */
	hdr(VU_GET_FEATURES, 0x1, 0);
	is_int(parse(0), VU_PARSE_OK, "GET_FEATURES");
	hdr(VU_SET_FEATURES, 0x1, 8);
	put64(VU_HDR_SIZE, 0x160000000ull);
	is_int(parse(0), VU_PARSE_OK, "SET_FEATURES");
	ok(p.u.u64 == 0x160000000ull, "SET_FEATURES value");
	mem_table_qemu();
	is_int(parse(2), VU_PARSE_OK, "SET_MEM_TABLE with two regions");
	ok(p.need_reply, "NEED_REPLY seen");
	is_int(p.u.mem.n, 2, "two regions");
	ok(p.u.mem.r[1].gpa == 0x100000 && p.u.mem.r[1].mmap_offset == 0x100000 &&
		   p.u.mem.r[1].fd_index == 1,
	   "region 1 fields");
	hdr(VU_SET_VRING_ADDR, 0x1, 40);
	put32(VU_HDR_SIZE, 1);
	put64(VU_HDR_SIZE + 8, 0x7f2fe4103000ull);
	put64(VU_HDR_SIZE + 16, 0x7f2fe4105000ull);
	put64(VU_HDR_SIZE + 24, 0x7f2fe4103800ull);
	is_int(parse(0), VU_PARSE_OK, "SET_VRING_ADDR");
	ok(p.u.addr.index == 1 && p.u.addr.desc == 0x7f2fe4103000ull &&
		   p.u.addr.used == 0x7f2fe4105000ull &&
		   p.u.addr.avail == 0x7f2fe4103800ull,
	   "addresses in desc, used, avail order");
	hdr(VU_SET_VRING_KICK, 0x1, 8);
	put64(VU_HDR_SIZE, 1);
	is_int(parse(1), VU_PARSE_OK, "SET_VRING_KICK with its fd");
	ok(p.u.vring_fd.index == 1 && !p.u.vring_fd.nofd, "kick index 1");
	put64(VU_HDR_SIZE, 0x101);
	is_int(parse(0), VU_PARSE_OK, "SET_VRING_KICK NOFD, no fd");
	ok(p.u.vring_fd.nofd, "NOFD seen");
	hdr(VU_GET_CONFIG, 0x1, 20);
	put32(VU_HDR_SIZE + 4, 8);
	is_int(parse(0), VU_PARSE_OK, "GET_CONFIG offset 0 size 8");

	/* ---- framing ---- */
	hdr(VU_GET_FEATURES, 0x1, 0);
	is_int(vu_msg_parse(buf, 11, fds, 0, &p, &why), VU_PARSE_SHORT, "11 bytes");
	ok(why[0], "short says why");
	hdr(VU_SET_FEATURES, 0x1, 8);
	len--;
	is_int(parse(0), VU_PARSE_SHORT, "payload one byte short");
	len += 2;
	is_int(parse(0), VU_PARSE_TRAILING, "one byte after the payload");
	hdr(VU_GET_FEATURES, 0x2, 0);
	is_int(parse(0), VU_PARSE_BAD_HEADER, "version 2");
	hdr(VU_GET_FEATURES, 0x5, 0);
	is_int(parse(0), VU_PARSE_BAD_HEADER, "REPLY set on a request");
	hdr(VU_GET_FEATURES, 0x11, 0);
	is_int(parse(0), VU_PARSE_BAD_HEADER, "reserved flag bit");
	hdr(VU_SET_FEATURES, 0x1, VU_MAX_PAYLOAD + 1);
	is_int(parse(0), VU_PARSE_TOO_BIG, "payload above 4096");
	hdr(99, 0x1, 0);
	is_int(parse(0), VU_PARSE_UNSUPPORTED, "unknown request");
	hdr(VU_SET_LOG_BASE, 0x1, 8);
	is_int(parse(0), VU_PARSE_UNSUPPORTED, "dirty log not supported");

	/* ---- sizes ---- */
	hdr(VU_SET_FEATURES, 0x1, 4);
	is_int(parse(0), VU_PARSE_BAD_SIZE, "u64 request with 4 bytes");
	hdr(VU_SET_FEATURES, 0x1, 16);
	is_int(parse(0), VU_PARSE_BAD_SIZE, "u64 request with 16 bytes");
	hdr(VU_GET_FEATURES, 0x1, 8);
	is_int(parse(0), VU_PARSE_BAD_SIZE, "GET_FEATURES with a payload");
	hdr(VU_SET_VRING_ADDR, 0x1, 32);
	is_int(parse(0), VU_PARSE_BAD_SIZE, "SET_VRING_ADDR of 32 bytes");

	/* ---- vring indexes and values ---- */
	hdr(VU_SET_VRING_NUM, 0x1, 8);
	put32(VU_HDR_SIZE, 2);
	put32(VU_HDR_SIZE + 4, 128);
	is_int(parse(0), VU_PARSE_BAD_INDEX, "vring 2 (only 0 and 1)");
	put32(VU_HDR_SIZE, 0x100); /* the fd-message mask means nothing here */
	is_int(parse(0), VU_PARSE_BAD_INDEX, "index 256 is not index 0");
	put32(VU_HDR_SIZE, 0);
	put32(VU_HDR_SIZE + 4, 100);
	is_int(parse(0), VU_PARSE_BAD_VALUE, "ring size not a power of two");
	put32(VU_HDR_SIZE + 4, 65536);
	is_int(parse(0), VU_PARSE_BAD_VALUE, "ring size 65536");
	hdr(VU_SET_VRING_BASE, 0x1, 8);
	put32(VU_HDR_SIZE + 4, 0x10000);
	is_int(parse(0), VU_PARSE_BAD_VALUE, "base above 16 bits");
	hdr(VU_SET_VRING_ENABLE, 0x1, 8);
	put32(VU_HDR_SIZE + 4, 2);
	is_int(parse(0), VU_PARSE_BAD_VALUE, "enable 2");
	hdr(VU_SET_VRING_ADDR, 0x1, 40);
	put32(VU_HDR_SIZE + 4, 1);
	is_int(parse(0), VU_PARSE_BAD_VALUE, "VHOST_VRING_F_LOG not offered");
	put32(VU_HDR_SIZE + 4, 0);
	put32(VU_HDR_SIZE, 7);
	is_int(parse(0), VU_PARSE_BAD_INDEX, "SET_VRING_ADDR index 7");

	/* ---- fds ---- */
	hdr(VU_SET_VRING_CALL, 0x1, 8);
	is_int(parse(0), VU_PARSE_BAD_FDS, "CALL without its fd");
	is_int(parse(2), VU_PARSE_BAD_FDS, "CALL with two fds");
	put64(VU_HDR_SIZE, 0x100);
	is_int(parse(1), VU_PARSE_BAD_FDS, "NOFD with an fd");
	put64(VU_HDR_SIZE, 0x200);
	is_int(parse(1), VU_PARSE_BAD_INDEX, "reserved bit 9 in a vring fd message");
	put64(VU_HDR_SIZE, 0x1ull << 32);
	is_int(parse(1), VU_PARSE_BAD_INDEX, "high bits in a vring fd message");
	put64(VU_HDR_SIZE, 2);
	is_int(parse(1), VU_PARSE_BAD_INDEX, "CALL for vring 2");
	hdr(VU_SET_FEATURES, 0x1, 8);
	is_int(parse(1), VU_PARSE_BAD_FDS, "an fd on SET_FEATURES");
	is_int(vu_msg_parse(buf, len, fds, 9, &p, &why), VU_PARSE_BAD_FDS, "nine fds");
	hdr(VU_SET_VRING_KICK, 0x1, 8);
	int neg = -1;
	is_int(vu_msg_parse(buf, len, &neg, 1, &p, &why), VU_PARSE_BAD_FDS, "fd -1");

	/* ---- memory table ---- */
	mem_table_qemu();
	is_int(parse(1), VU_PARSE_BAD_FDS, "two regions, one fd");
	is_int(parse(3), VU_PARSE_BAD_FDS, "two regions, three fds");
	int fdneg[2] = {5, -1};
	is_int(vu_msg_parse(buf, len, fdneg, 2, &p, &why), VU_PARSE_BAD_FDS,
	       "a region with fd -1");
	put32(VU_HDR_SIZE, 3);
	is_int(parse(3), VU_PARSE_BAD_SIZE, "count 3 but two regions of bytes");
	put32(VU_HDR_SIZE, 0);
	is_int(parse(0), VU_PARSE_BAD_REGION, "zero regions");
	put32(VU_HDR_SIZE, 9);
	is_int(parse(2), VU_PARSE_BAD_REGION, "nine regions");
	mem_table_qemu();
	region(1, 0x100000, 0, 0x7f2fe40ff000, 0x100000);
	is_int(parse(2), VU_PARSE_BAD_REGION, "region of size 0");
	ok(strstr(why, "size") != NULL, "why names the size: %s", why);
	mem_table_qemu();
	region(1, 0xfffffffffff00000ull, 0x200000, 0x7f2fe40ff000, 0);
	is_int(parse(2), VU_PARSE_BAD_REGION, "gpa + size wraps");
	mem_table_qemu();
	region(1, 0x100000, 0x200000, 0xffffffffffffff00ull, 0);
	is_int(parse(2), VU_PARSE_BAD_REGION, "uva + size wraps");
	mem_table_qemu();
	region(1, 0x100000, (1ull << 40) + 1, 0x7f2fe40ff000, 0);
	is_int(parse(2), VU_PARSE_BAD_REGION, "region above 1 TiB");
	mem_table_qemu();
	region(1, 0x100000, 0x1000, 0x7f2fe40ff000, 1ull << 41);
	is_int(parse(2), VU_PARSE_BAD_REGION, "mmap offset above 1 TiB");
	mem_table_qemu();
	region(1, 0x80000, 0x100000, 0x7f2fe40ff000, 0);
	is_int(parse(2), VU_PARSE_BAD_REGION, "guest ranges overlap");
	mem_table_qemu();
	region(1, 0x100000, 0x100000, 0x7f2fe3fff800, 0);
	is_int(parse(2), VU_PARSE_BAD_REGION, "front-end ranges overlap");

	/* ---- config ---- */
	hdr(VU_GET_CONFIG, 0x1, 12);
	put32(VU_HDR_SIZE + 4, 8);
	is_int(parse(0), VU_PARSE_BAD_SIZE, "GET_CONFIG without room for its size");
	hdr(VU_GET_CONFIG, 0x1, 20);
	put32(VU_HDR_SIZE, 252);
	put32(VU_HDR_SIZE + 4, 8);
	is_int(parse(0), VU_PARSE_BAD_CONFIG, "offset 252 + 8 beyond the space");
	hdr(VU_GET_CONFIG, 0x1, 12);
	put32(VU_HDR_SIZE, 0xffffffffu);
	put32(VU_HDR_SIZE + 4, 0);
	is_int(parse(0), VU_PARSE_BAD_CONFIG, "offset 2^32-1, size 0");
	hdr(VU_GET_CONFIG, 0x1, 12 + 257);
	put32(VU_HDR_SIZE + 4, 257);
	is_int(parse(0), VU_PARSE_BAD_CONFIG, "size 257");
	hdr(VU_SET_CONFIG, 0x1, 12 + 8);
	put32(VU_HDR_SIZE + 4, 8);
	is_int(parse(0), VU_PARSE_OK, "SET_CONFIG in range");

	is_str(vu_request_name(VU_SET_MEM_TABLE), "SET_MEM_TABLE", "request names");
	return done_testing();
}
