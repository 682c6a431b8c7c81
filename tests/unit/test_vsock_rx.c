/* Host -> guest data path of the vsock multiplexer (vsock_to_guest.c)
 * against a fake guest RX ring posted the way Linux does (a 44-byte
 * header descriptor chained to a 4 KiB buffer), fed from a real unix
 * socket pair: several buffers are filled from one read, in order, within
 * the guest's credit, unused buffers are given back, and the SHUTDOWN for
 * EOF comes after the data. */
#include <endian.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../parse/vsock_pkt.h"
#include "../../vsock/vhost_user.h"
#include "../../vsock/vsock_conn.h"
#include "../../vsock/vsock_mux_int.h"
#include "tap.h"

#define NUM 128
#define GPA 0x100000ull
#define UVA 0x7f0000000000ull
#define BUFSZ 4096u
#define DESC_OFF 0
#define AVAIL_OFF 0x1000
#define USED_OFF 0x2000
#define HDR_OFF 0x4000 /* NUM / 2 headers of 64 bytes */
#define BUF_OFF 0x8000
#define MEMSZ (BUF_OFF + NUM / 2 * BUFSZ)

static uint8_t mem[MEMSZ] __attribute__((aligned(4096)));
static uint16_t avail_idx;
static struct vu_dev dev;
static struct vsock_mux m;

static void wr(size_t off, const void *p, size_t n) { memcpy(mem + off, p, n); }

static uint32_t rd32(size_t off)
{
	uint32_t v;
	memcpy(&v, mem + off, 4);
	return le32toh(v);
}

static uint16_t rd16(size_t off)
{
	uint16_t v;
	memcpy(&v, mem + off, 2);
	return le16toh(v);
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t f = htole16(flags), x = htole16(next);
	wr(DESC_OFF + 16 * i, &a, 8);
	wr(DESC_OFF + 16 * i + 8, &l, 4);
	wr(DESC_OFF + 16 * i + 12, &f, 2);
	wr(DESC_OFF + 16 * i + 14, &x, 2);
}

/* Buffer k: descriptor 2k (header) -> 2k+1 (data), both device-writable. */
static void post_buffers(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned k = avail_idx % (NUM / 2);
		set_desc(2 * k, GPA + HDR_OFF + 64 * k, VSOCK_HDR_LEN,
			 VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
			 (uint16_t)(2 * k + 1));
		set_desc(2 * k + 1, GPA + BUF_OFF + BUFSZ * k, BUFSZ,
			 VRING_DESC_F_WRITE, 0);
		uint16_t h = htole16((uint16_t)(2 * k));
		wr(AVAIL_OFF + 4 + 2 * (avail_idx % NUM), &h, 2);
		avail_idx++;
		uint16_t ai = htole16(avail_idx);
		wr(AVAIL_OFF + 2, &ai, 2);
	}
}

static void setup_ring(void)
{
	memset(mem, 0, sizeof(mem));
	avail_idx = 0;
	vu_dev_init(&dev, -1, 3);
	vmem_add_borrowed(&dev.mem, GPA, UVA, mem, MEMSZ);
	struct vu_queue *q = &dev.q[RXQ];
	q->vr.desc_uva = UVA + DESC_OFF;
	q->vr.avail_uva = UVA + AVAIL_OFF;
	q->vr.used_uva = UVA + USED_OFF;
	q->vr.addr_set = true;
	vring_set_num(&q->vr, NUM);
	vring_map(&q->vr, &dev.mem, true);
	q->started = true;
	vsock_mux_init(&m, &dev, -1, -1);
}

/* A connection to guest port 1234 whose unix side is sv[0]; sv[1] is ours. */
static struct vsock_conn *conn(int sv[2], uint32_t guest_buf)
{
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	int big = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	struct vsock_conn *c = vsock_conn_new(HOST_PORT_FIRST, 1234, sv[0]);
	c->state = CONN_ESTABLISHED;
	c->peer_buf_alloc = guest_buf;
	c->rx_ready = true;
	mux_hash_add(&m, c);
	mux_all_add(&m, c);
	mux_enqueue(&m, c);
	return c;
}

static uint8_t pattern(size_t i) { return (uint8_t)(i * 7 + i / 251); }

static void fill(uint8_t *p, size_t n, size_t from)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(from + i);
}

/* Check used entries [from, to): RW packets whose payloads continue the
 * pattern at *pos. Returns how many were well-formed. */
static unsigned check_used(unsigned from, unsigned to, size_t *pos)
{
	unsigned good = 0;
	for (unsigned u = from; u < to; u++) {
		uint32_t id = rd32(USED_OFF + 4 + 8 * (u % NUM));
		uint32_t len = rd32(USED_OFF + 8 + 8 * (u % NUM));
		unsigned k = id / 2;
		uint32_t plen = rd32(HDR_OFF + 64 * k + 24);
		uint16_t op = rd16(HDR_OFF + 64 * k + 30);
		if (op != VSOCK_OP_RW || plen + VSOCK_HDR_LEN != len ||
		    plen > BUFSZ)
			continue;
		uint8_t want[BUFSZ];
		fill(want, plen, *pos);
		if (memcmp(mem + BUF_OFF + BUFSZ * k, want, plen) == 0)
			good++;
		*pos += plen;
	}
	return good;
}

int main(void)
{
	static uint8_t data[256 * 1024];
	fill(data, sizeof(data), 0);
	int sv[2];

	/* 10000 bytes, 10 buffers: three packets, the rest given back. */
	setup_ring();
	post_buffers(10);
	struct vsock_conn *c = conn(sv, 256 * 1024);
	is_int(write(sv[1], data, 10000), 10000, "10000 bytes written");
	vsock_mux_process_rx(&m);
	is_int(rd16(USED_OFF + 2), 3, "three buffers used");
	is_int(rd32(USED_OFF + 8), VSOCK_HDR_LEN + BUFSZ, "first one full");
	is_int(rd32(USED_OFF + 8 + 16), VSOCK_HDR_LEN + 10000 - 2 * BUFSZ,
	       "last one holds the rest");
	size_t pos = 0;
	is_int(check_used(0, 3, &pos), 3, "payloads in order, headers right");
	is_int(pos, 10000, "every byte delivered once");
	is_int(dev.q[RXQ].vr.last_avail_idx, 3, "the seven unused buffers given back");
	is_int(c->tx_cnt, 10000, "sent bytes counted");

	/* The guest's credit bounds a batch: 5000 bytes of room. */
	c->peer_fwd_cnt = c->tx_cnt;
	c->peer_buf_alloc = 5000;
	is_int(write(sv[1], data + 10000, 9000), 9000, "9000 more written");
	c->rx_ready = true;
	mux_enqueue(&m, c);
	vsock_mux_process_rx(&m);
	is_int(rd16(USED_OFF + 2), 5, "two more buffers used");
	is_int(check_used(3, 5, &pos), 2, "in order within the credit");
	is_int(pos, 15000, "no byte beyond the credit");
	is_int(dev.q[RXQ].vr.last_avail_idx, 5, "the rest given back");

	/* Credit renewed: the rest, over more buffers than one read takes,
	 * then EOF becomes a SHUTDOWN after the data. */
	c->peer_fwd_cnt = c->tx_cnt;
	c->peer_buf_alloc = 1u << 20;
	post_buffers(50);
	size_t more = 4000 + 45 * BUFSZ;
	is_int(write(sv[1], data + 19000, more), (long)more, "184 KiB more written");
	close(sv[1]);
	c->rx_ready = true;
	mux_enqueue(&m, c);
	vsock_mux_process_rx(&m);
	vsock_mux_process_rx(&m);
	unsigned used = rd16(USED_OFF + 2);
	/* 4000 left from before + 45 buffers' worth: at least 46 RW, then
	 * one SHUTDOWN. */
	ok(used >= 5 + 46 + 1 && used <= 5 + 50, "data packets and a SHUTDOWN (%u)",
	   used - 5);
	is_int(check_used(5, used - 1, &pos), used - 6, "every payload in order");
	is_int(pos, 19000 + more, "every byte delivered once, none after EOF");
	uint32_t last = rd32(USED_OFF + 4 + 8 * ((used - 1) % NUM)) / 2;
	is_int(rd16(HDR_OFF + 64 * last + 30), VSOCK_OP_SHUTDOWN, "SHUTDOWN last");

	vsock_mux_destroy(&m);
	return done_testing();
}
