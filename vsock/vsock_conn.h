/* One vsock stream between a guest port and a host unix socket, as a state
 * machine with credit flow control and half-close (virtio spec 5.10.6.3-6).
 *
 * Counters are free-running u32s, compared with wrap-around arithmetic:
 *   guest -> host: rx_cnt (payload bytes the guest sent us), fwd_cnt (bytes
 *     we wrote to the unix socket). The guest may have at most buf_alloc
 *     bytes in flight; anything between rx_cnt and fwd_cnt sits in buf,
 *     which is therefore bounded by buf_alloc.
 *   host -> guest: tx_cnt (bytes we sent), peer_buf_alloc/peer_fwd_cnt
 *     (taken from every guest packet). We never send more than
 *     peer_buf_alloc - (tx_cnt - peer_fwd_cnt).
 */
#ifndef LAUNCHER_VSOCK_CONN_H
#define LAUNCHER_VSOCK_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "../parse/vsock_pkt.h"

#define VSOCK_CONN_BUF_ALLOC (256u * 1024)
#define VSOCK_CONN_TIMEOUT_MS 2000
/* How long the guest's credit may stay exhausted before we ask for an
 * update (see vsock_conn_credit_check). */
#define VSOCK_CREDIT_REQUEST_DELAY_MS 50
#define VSOCK_CONNECT_LINE_MAX 32

enum vsock_conn_state {
	CONN_HOST_CONNECT, /* host client on --listen; reading "CONNECT <port>\n" */
	CONN_LOCAL_INIT,   /* REQUEST sent to the guest, awaiting RESPONSE */
	CONN_ESTABLISHED,  /* data both ways; half-closes tracked in flags */
	CONN_CLOSING,	   /* guest is done both ways: flush to unix, then RST */
	CONN_DEAD,	   /* unix side closed; freed once no RST is pending */
};

/* Control packets waiting for an RX buffer. */
#define CONN_TX_REQUEST (1u << 0)
#define CONN_TX_RESPONSE (1u << 1)
#define CONN_TX_CREDIT_UPDATE (1u << 2)
#define CONN_TX_CREDIT_REQUEST (1u << 3)
#define CONN_TX_SHUTDOWN (1u << 4)
#define CONN_TX_RST (1u << 5)

struct vsock_conn {
	uint32_t local_port; /* host side (our port in packets) */
	uint32_t peer_port;  /* guest side */
	int fd;		     /* owned unix socket, -1 once closed */
	enum vsock_conn_state state;
	unsigned pending;	  /* CONN_TX_* */
	uint32_t shutdown_flags; /* for the pending SHUTDOWN */

	/* guest -> host */
	uint8_t *buf; /* owned ring of buf_alloc bytes, allocated on demand */
	uint32_t buf_head, buf_used, buf_alloc;
	uint32_t rx_cnt, fwd_cnt, last_fwd_sent;
	/* Bytes we owe the unix peer that are not guest payload ("OK n\n"). */
	uint32_t buf_extra;

	/* host -> guest */
	uint32_t tx_cnt, peer_buf_alloc, peer_fwd_cnt;
	bool credit_requested;
	uint64_t credit_wait_ms; /* when to ask for credit; 0: not waiting */

	bool peer_shut_send; /* guest will send no more */
	bool peer_shut_rcv;  /* guest will receive no more */
	bool local_eof;	     /* unix peer sent EOF (we told the guest) */
	bool shut_wr_done;   /* shutdown(SHUT_WR) done on the unix socket */
	bool rx_ready;	     /* unix socket readable, waiting for an RX buffer */

	uint64_t deadline_ms; /* 0: none */
	const char *close_reason;

	/* CONNECT line being read (host-initiated only). */
	char line[VSOCK_CONNECT_LINE_MAX + 1];

	/* Owned by the multiplexer. */
	struct vsock_conn *hnext;	      /* port hash chain */
	LIST_ENTRY(vsock_conn) all_link;     /* list of all connections */
	struct vsock_conn *qnext;	      /* RX work queue */
	bool queued, hashed;
	uint32_t events; /* registered with epoll; 0 = not registered */
};

struct vsock_conn *vsock_conn_new(uint32_t local_port, uint32_t peer_port,
				  int fd);
void vsock_conn_free(struct vsock_conn *c);

/* Credit the guest currently gives us (0 if it reports nonsense). */
uint32_t vsock_conn_peer_credit(const struct vsock_conn *c);
/* Room the guest may still fill in our buffer, as we last told it. */
uint32_t vsock_conn_guest_view_free(const struct vsock_conn *c);

/* Fill a header for a packet to the guest and record that the guest now
 * knows our fwd_cnt. */
void vsock_conn_fill_hdr(struct vsock_conn *c, struct vsock_hdr *h,
			 uint64_t guest_cid, uint16_t op);

/* Result of handing the state machine one guest packet. */
enum vsock_conn_action {
	CONN_ACT_NONE,
	CONN_ACT_RESET,	 /* protocol violation or unix error: RST and drop */
	CONN_ACT_CLOSED, /* guest RST: drop silently */
};

/* A guest packet for this connection; payload (hdr->len bytes) is in iov.
 * Updates credit, writes data to the unix socket (buffering what does not
 * fit), applies SHUTDOWN flags. *why explains RESET. */
enum vsock_conn_action vsock_conn_from_guest(struct vsock_conn *c,
					     const struct vsock_hdr *h,
					     const struct iovec *iov,
					     unsigned iovcnt, const char **why);

/* Write buffered bytes to the unix socket; does shutdown(SHUT_WR) once the
 * guest has stopped sending and all is flushed. 0 or -errno. */
int vsock_conn_flush(struct vsock_conn *c);

/* The unix peer sent EOF: tell the guest (SHUTDOWN SEND, or RST when the
 * guest was already done sending). */
void vsock_conn_local_eof(struct vsock_conn *c);

/* Bytes just sent to the guest in an RW packet. */
void vsock_conn_sent(struct vsock_conn *c, uint32_t n);

/* Call whenever the guest's credit may have changed and we have data for
 * it. Returns true (and queues CONN_TX_CREDIT_REQUEST) when the credit
 * has been exhausted since VSOCK_CREDIT_REQUEST_DELAY_MS before now_ms
 * and we have not asked yet. */
bool vsock_conn_credit_check(struct vsock_conn *c, uint64_t now_ms);

/* Should we tell the guest about freed buffer space now? */
bool vsock_conn_want_credit_update(const struct vsock_conn *c);

/* Both directions finished and flushed: time to RST and drop. */
bool vsock_conn_finished(const struct vsock_conn *c);

/* Kill: schedule RST (if send_rst) and close the unix side. */
void vsock_conn_kill(struct vsock_conn *c, bool send_rst, const char *why);

/* Parse "CONNECT <port>\n" (keyword any case). Returns 1 with *port and
 * *consumed (through '\n'), 0 if more bytes are needed, -EINVAL if it can
 * never be valid. Pure. */
int vsock_connect_line_parse(const char *buf, size_t len, uint32_t *port,
			     size_t *consumed);

/* Append bytes owed to the unix peer that are not guest payload. */
int vsock_conn_queue_local(struct vsock_conn *c, const void *data, size_t len);

#endif
