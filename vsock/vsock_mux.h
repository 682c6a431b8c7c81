/* The vsock device model: routes packets between the guest's virtqueues and
 * host unix sockets ("hybrid vsock", as Firecracker does it).
 *
 *   guest connect to CID 2 port P  ->  a socket from the connector
 *                                      (DIR/vsock_P, P listed), else RST
 *   client on --listen: "CONNECT P\n" ->  REQUEST to guest port P,
 *                                        "OK <local port>\n" on RESPONSE
 *
 * Nothing else on the host is reachable: this process cannot connect() or
 * open anything (seccomp); the connector (vsock_connector.c) hands it a
 * connected socket for the listed ports and refuses every other.
 */
#ifndef LAUNCHER_VSOCK_MUX_H
#define LAUNCHER_VSOCK_MUX_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "vhost_user.h"
#include "vsock_conn.h"

#define VSOCK_MUX_MAX_CONNS 1024
#define VSOCK_MUX_HASH 1024
#define VSOCK_MUX_RSTQ 256

struct vsock_mux {
	int epfd;	 /* owned */
	int listen_fd;	 /* host->guest listener (not owned), -1 if none */
	struct vu_dev *dev;
	int connector_fd; /* not owned: vsock_connector_connect() asks it */
	bool verbose;

	struct vsock_conn *hash[VSOCK_MUX_HASH];
	LIST_HEAD(, vsock_conn) all; /* owned, every connection */
	unsigned nconns;
	struct vsock_conn *q_head, *q_tail; /* connections with RX work */

	/* RSTs for flows we have no connection for (guest src/dst ports). */
	struct {
		uint32_t host_port, guest_port;
	} rstq[VSOCK_MUX_RSTQ];
	unsigned rst_head, rst_n;

	uint32_t next_local_port;
	int kick_reg[VU_NUM_QUEUES];
	bool scan[VU_NUM_QUEUES];
	uint64_t now_ms;

	/* counters for --verbose and tests */
	uint64_t bytes_to_host, bytes_to_guest;
	/* packets each way, interrupts sent, kicks read, loop wake-ups:
	 * what batching is measured by */
	uint64_t pkts_to_host, pkts_to_guest, calls[VU_NUM_QUEUES],
		kicks[VU_NUM_QUEUES], wakeups;
};

int vsock_mux_init(struct vsock_mux *m, struct vu_dev *dev, int connector_fd,
		   int listen_fd);
void vsock_mux_destroy(struct vsock_mux *m);

/* Run until the front-end disconnects (returns 0) or a fatal vhost-user
 * error (negative; *why set). */
int vsock_mux_run(struct vsock_mux *m, const char **why);

/* Pieces of the loop, exposed for tests and the fuzz harness. */
void vsock_mux_process_tx(struct vsock_mux *m);
void vsock_mux_process_rx(struct vsock_mux *m);
struct vsock_conn *vsock_mux_lookup(struct vsock_mux *m, uint32_t local_port,
				    uint32_t peer_port);

#endif
