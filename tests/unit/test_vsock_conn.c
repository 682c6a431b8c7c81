/* Connection state machine over a real socketpair: credit accounting in
 * both directions, buffering under back-pressure, half-close, RST. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../vsock/vsock_conn.h"
#include "tap.h"

static struct vsock_conn *mkconn(int *peer)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
	*peer = sv[1];
	int small = 4096; /* so that back-pressure shows up quickly */
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	struct vsock_conn *c = vsock_conn_new(1080, 5555, sv[0]);
	c->state = CONN_ESTABLISHED;
	c->peer_buf_alloc = 1000;
	return c;
}

static struct vsock_hdr pkt(uint16_t op, uint32_t len, uint32_t flags)
{
	return (struct vsock_hdr){.src_cid = 3, .dst_cid = 2, .src_port = 5555,
				  .dst_port = 1080, .len = len, .type = 1,
				  .op = op, .flags = flags, .buf_alloc = 1000,
				  .fwd_cnt = 0};
}

int main(void)
{
	int peer;
	const char *why;
	struct vsock_conn *c = mkconn(&peer);

	/* host -> guest credit */
	is_int(vsock_conn_peer_credit(c), 1000, "full credit at start");
	vsock_conn_sent(c, 600);
	is_int(vsock_conn_peer_credit(c), 400, "credit shrinks as we send");
	struct vsock_hdr h = pkt(VSOCK_OP_CREDIT_UPDATE, 0, 0);
	h.fwd_cnt = 500;
	is_int(vsock_conn_from_guest(c, &h, NULL, 0, &why), CONN_ACT_NONE, "credit update accepted");
	is_int(vsock_conn_peer_credit(c), 900, "credit grows with the guest's fwd_cnt");
	h.fwd_cnt = 0xffff0000u; /* nonsense: more consumed than sent */
	vsock_conn_from_guest(c, &h, NULL, 0, &why);
	is_int(vsock_conn_peer_credit(c), 0, "bogus fwd_cnt gives no credit");
	h.fwd_cnt = 600;
	vsock_conn_from_guest(c, &h, NULL, 0, &why);
	/* u32 wrap-around */
	c->tx_cnt = 0xfffffff0u;
	c->peer_fwd_cnt = 0xffffff00u;
	is_int(vsock_conn_peer_credit(c), 1000 - 0xf0, "credit across u32 wrap");
	c->tx_cnt = 600;
	c->peer_fwd_cnt = 600;

	/* credit exhausted: ask once, and only after a delay */
	c->pending = 0;
	ok(!vsock_conn_credit_check(c, 5000), "credit left: nothing to ask");
	vsock_conn_sent(c, 1000);
	is_int(vsock_conn_peer_credit(c), 0, "credit exhausted");
	ok(!vsock_conn_credit_check(c, 5000), "no request the moment credit runs out");
	ok(!vsock_conn_credit_check(c, 5000 + VSOCK_CREDIT_REQUEST_DELAY_MS - 1),
	   "no request before the delay");
	ok(!(c->pending & CONN_TX_CREDIT_REQUEST), "nothing queued yet");
	ok(vsock_conn_credit_check(c, 5000 + VSOCK_CREDIT_REQUEST_DELAY_MS),
	   "request once the delay passed");
	ok(c->pending & CONN_TX_CREDIT_REQUEST, "CREDIT_REQUEST queued");
	c->pending = 0;
	ok(!vsock_conn_credit_check(c, 99999), "asked once, not again");
	h = pkt(VSOCK_OP_CREDIT_UPDATE, 0, 0);
	h.fwd_cnt = 600; /* the guest answers but has consumed nothing */
	vsock_conn_from_guest(c, &h, NULL, 0, &why);
	ok(!vsock_conn_credit_check(c, 100000), "after an answer the delay starts again");
	ok(vsock_conn_credit_check(c, 100000 + VSOCK_CREDIT_REQUEST_DELAY_MS),
	   "and asks again after it");
	h.fwd_cnt = 1600; /* it consumed everything */
	vsock_conn_from_guest(c, &h, NULL, 0, &why);
	ok(!vsock_conn_credit_check(c, 200000), "credit back: no request");
	is_int((int)c->credit_wait_ms, 0, "credit back: wait cleared");
	c->tx_cnt = 600;
	c->peer_fwd_cnt = 600;
	c->pending = 0;

	/* guest -> host data goes straight through */
	struct vsock_hdr rw = pkt(VSOCK_OP_RW, 5, 0);
	struct iovec iov = {(void *)"hello", 5};
	is_int(vsock_conn_from_guest(c, &rw, &iov, 1, &why), CONN_ACT_NONE, "RW accepted");
	char buf[300000];
	is_int(read(peer, buf, sizeof(buf)), 5, "bytes reach the unix socket");
	is_int(c->fwd_cnt, 5, "fwd_cnt counts written bytes");
	is_int(c->rx_cnt, 5, "rx_cnt counts received bytes");
	struct vsock_hdr out;
	vsock_conn_fill_hdr(c, &out, 3, VSOCK_OP_CREDIT_UPDATE);
	is_int(out.fwd_cnt, 5, "header carries fwd_cnt");
	is_int(out.buf_alloc, VSOCK_CONN_BUF_ALLOC, "header carries our buf_alloc");
	is_int(out.src_cid, 2, "from the host CID");
	is_int(out.dst_port, 5555, "to the guest port");

	/* back-pressure: fill the socket, data is buffered, fwd_cnt lags */
	static uint8_t big[65536];
	memset(big, 'x', sizeof(big));
	uint32_t sent = 0;
	for (int i = 0; i < 3; i++) {
		struct vsock_hdr b = pkt(VSOCK_OP_RW, sizeof(big), 0);
		struct iovec bi = {big, sizeof(big)};
		is_int(vsock_conn_from_guest(c, &b, &bi, 1, &why), CONN_ACT_NONE, "64 KiB RW %d", i);
		sent += sizeof(big);
	}
	ok(c->buf_used > 0, "excess is buffered (%u bytes)", c->buf_used);
	is_int(c->fwd_cnt + c->buf_used, 5 + sent, "fwd_cnt + buffered = received");
	ok(vsock_conn_want_credit_update(c) || c->fwd_cnt == c->last_fwd_sent,
	   "credit update wanted only when fwd_cnt moved");
	/* the guest ignores credit: more than buf_alloc in flight */
	c->last_fwd_sent = c->fwd_cnt;
	uint32_t room = vsock_conn_guest_view_free(c);
	static uint8_t huge[VSOCK_CONN_BUF_ALLOC];
	struct vsock_hdr over = pkt(VSOCK_OP_RW, room + 1, 0);
	struct iovec oi = {huge, room + 1};
	is_int(vsock_conn_from_guest(c, &over, &oi, 1, &why), CONN_ACT_RESET, "credit overrun resets");
	ok(strstr(why, "credit") != NULL, "why: %s", why);

	/* drain: flush delivers everything, fwd_cnt catches up */
	size_t total = 0;
	int flush_err = 0;
	for (int spins = 0; spins < 1000 && c->buf_used; spins++) {
		ssize_t r = read(peer, buf, sizeof(buf));
		if (r > 0)
			total += (size_t)r;
		flush_err |= vsock_conn_flush(c);
	}
	is_int(flush_err, 0, "flushes succeed");
	ssize_t r;
	while ((r = read(peer, buf, sizeof(buf))) > 0)
		total += (size_t)r;
	is_int(total, sent, "all buffered bytes delivered in order");
	is_int(c->fwd_cnt, 5 + sent, "fwd_cnt equals everything delivered");
	ok(vsock_conn_want_credit_update(c), "credit update due after draining");
	vsock_conn_free(c);

	/* half-close: guest SHUTDOWN SEND -> EOF on the unix side, but the
	 * unix side can still send */
	c = mkconn(&peer);
	struct vsock_hdr sd = pkt(VSOCK_OP_SHUTDOWN, 0, VSOCK_SHUTDOWN_SEND);
	is_int(vsock_conn_from_guest(c, &sd, NULL, 0, &why), CONN_ACT_NONE, "SHUTDOWN SEND accepted");
	is_int(read(peer, buf, 10), 0, "unix side sees EOF");
	ok(c->shut_wr_done, "shutdown(SHUT_WR) done");
	is_int(write(peer, "back", 4), 4, "unix side can still write");
	is_int(read(c->fd, buf, 10), 4, "and we can read it");
	ok(!vsock_conn_finished(c), "not finished while the host side is open");
	struct vsock_hdr late = pkt(VSOCK_OP_RW, 1, 0);
	struct iovec li = {(void *)"z", 1};
	is_int(vsock_conn_from_guest(c, &late, &li, 1, &why), CONN_ACT_RESET, "data after SHUTDOWN SEND resets");
	vsock_conn_free(c);

	/* unix EOF -> SHUTDOWN SEND to the guest; both done -> finished */
	c = mkconn(&peer);
	vsock_conn_local_eof(c);
	ok(c->pending & CONN_TX_SHUTDOWN, "SHUTDOWN queued for the guest");
	is_int(c->shutdown_flags, VSOCK_SHUTDOWN_SEND, "with SEND only");
	c->pending &= ~CONN_TX_SHUTDOWN; /* sent */
	ok(!vsock_conn_finished(c), "guest may still send");
	is_int(vsock_conn_from_guest(c, &rw, &iov, 1, &why), CONN_ACT_NONE, "guest still sends after our EOF");
	vsock_conn_from_guest(c, &sd, NULL, 0, &why);
	ok(vsock_conn_finished(c), "finished once both sides sent EOF");
	vsock_conn_free(c);

	/* guest close(): SHUTDOWN RCV|SEND -> closing, finished after flush */
	c = mkconn(&peer);
	struct vsock_hdr both = pkt(VSOCK_OP_SHUTDOWN, 0, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV);
	vsock_conn_from_guest(c, &both, NULL, 0, &why);
	is_int(c->state, CONN_CLOSING, "full shutdown -> CLOSING");
	ok(vsock_conn_finished(c), "finished: nothing left to flush");
	vsock_conn_free(c);

	/* RST and protocol errors */
	c = mkconn(&peer);
	struct vsock_hdr rst = pkt(VSOCK_OP_RST, 0, 0);
	is_int(vsock_conn_from_guest(c, &rst, NULL, 0, &why), CONN_ACT_CLOSED, "guest RST closes");
	struct vsock_hdr req = pkt(VSOCK_OP_REQUEST, 0, 0);
	is_int(vsock_conn_from_guest(c, &req, NULL, 0, &why), CONN_ACT_RESET, "REQUEST on open conn resets");
	struct vsock_hdr cr = pkt(VSOCK_OP_CREDIT_REQUEST, 0, 0);
	vsock_conn_from_guest(c, &cr, NULL, 0, &why);
	ok(c->pending & CONN_TX_CREDIT_UPDATE, "CREDIT_REQUEST answered by CREDIT_UPDATE");
	vsock_conn_kill(c, true, "test");
	is_int(c->pending, CONN_TX_RST, "kill leaves only the RST pending");
	is_int(c->fd, -1, "kill closes the unix side");
	is_int(read(peer, buf, 1), 0, "peer sees EOF");
	vsock_conn_free(c);

	/* host-initiated: RESPONSE in LOCAL_INIT establishes */
	c = mkconn(&peer);
	c->state = CONN_LOCAL_INIT;
	struct vsock_hdr resp = pkt(VSOCK_OP_RESPONSE, 0, 0);
	is_int(vsock_conn_from_guest(c, &resp, NULL, 0, &why), CONN_ACT_NONE, "RESPONSE accepted");
	is_int(c->state, CONN_ESTABLISHED, "established");
	is_int(vsock_conn_queue_local(c, "OK 7\n", 5), 0, "OK line queued");
	is_int(vsock_conn_flush(c), 0, "flushed");
	is_int(read(peer, buf, 10), 5, "OK line arrives");
	is_int(c->fwd_cnt, 0, "OK line is not guest payload");
	is_int(vsock_conn_from_guest(c, &resp, NULL, 0, &why), CONN_ACT_RESET, "second RESPONSE resets");
	vsock_conn_free(c);

	/* CONNECT line */
	uint32_t port;
	size_t used;
	is_int(vsock_connect_line_parse("CONNECT 1024\nrest", 17, &port, &used), 1, "CONNECT parsed");
	is_int(port, 1024, "port");
	is_int(used, 13, "stops at the newline");
	is_int(vsock_connect_line_parse("connect 5\r\n", 11, &port, &used), 1, "lower case, CRLF");
	is_int(vsock_connect_line_parse("CONNECT 10", 10, &port, &used), 0, "needs more");
	is_int(vsock_connect_line_parse("CONNEXT 1\n", 10, &port, &used), -EINVAL, "bad keyword");
	is_int(vsock_connect_line_parse("CONNECT \n", 9, &port, &used), -EINVAL, "no port");
	is_int(vsock_connect_line_parse("CONNECT 1x\n", 11, &port, &used), -EINVAL, "junk in port");
	is_int(vsock_connect_line_parse("CONNECT 4294967296\n", 19, &port, &used), -EINVAL, "port beyond u32");
	is_int(vsock_connect_line_parse("CONNECT 00000000000000000000000001", 34, &port, &used), -EINVAL, "too long without newline");
	return done_testing();
}
