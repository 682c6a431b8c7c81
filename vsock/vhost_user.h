/* The back-end side of the vhost-user protocol (QEMU docs/interop/
 * vhost-user.rst) for a device with two vrings (vsock rx=0, tx=1).
 *
 * Trust: the front-end is QEMU, which we started, but its messages are
 * still size-checked before use; a malformed message ends the session
 * (the bridge then exits, as QEMU 7.2 cannot reconnect anyway).
 */
#ifndef LAUNCHER_VHOST_USER_H
#define LAUNCHER_VHOST_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../parse/vhost_user_msg.h"
#include "../parse/vring.h"

#define VIRTIO_F_VERSION_1 32
#define VIRTIO_RING_F_EVENT_IDX 29
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VU_PROTOCOL_F_MQ 0
#define VU_PROTOCOL_F_REPLY_ACK 3
#define VU_PROTOCOL_F_CONFIG 9

/* One message as read from the socket: the raw bytes (header + payload)
 * and the fds that came with it, before vu_msg_parse() has looked at it. */
struct vu_msg {
	uint8_t buf[VU_HDR_SIZE + VU_MAX_PAYLOAD];
	size_t len;
	int fds[VU_MAX_FDS]; /* owned until taken (set to -1) */
	unsigned nfds;
};

/* Read one message: header with any SCM_RIGHTS fds, then exactly the
 * payload size the header gives (at most VU_MAX_PAYLOAD). Returns 0,
 * -ECONNRESET on orderly EOF, or -errno/-EPROTO/-EMSGSIZE with *why set.
 * Framing only: the caller parses. On success the caller owns m->fds. */
int vu_msg_recv(int sock, struct vu_msg *m, const char **why);
/* Send a message (no fds). */
int vu_msg_send(int sock, uint32_t request, uint32_t flags, const void *payload,
		uint32_t size);
void vu_msg_close_fds(struct vu_msg *m);

struct vu_queue {
	struct vring vr;
	int kick_fd, call_fd, err_fd; /* owned, -1 if none */
	bool started;		      /* has a kick fd; stopped by GET_VRING_BASE */
	bool enabled;
};

struct vu_dev;
/* Tells the device model a queue changed (started, stopped, enabled,
 * memory remapped): re-register its kick fd and rescan it. */
typedef void (*vu_queue_cb)(void *opaque, unsigned idx);

struct vu_dev {
	int sock; /* owned connection to the front-end */
	uint64_t guest_cid;
	uint64_t features;	 /* acked by SET_FEATURES */
	uint64_t protocol_features; /* acked */
	struct vmem mem;
	struct vu_queue q[VU_NUM_QUEUES];
	vu_queue_cb on_queue;
	void *opaque;
	bool verbose;
};

void vu_dev_init(struct vu_dev *d, int sock, uint64_t guest_cid);
void vu_dev_destroy(struct vu_dev *d);
uint64_t vu_offered_features(void);
uint64_t vu_offered_protocol_features(void);

/* Read and handle one message. 0, or negative on EOF/fatal protocol error
 * (*why says which). */
int vu_dev_handle_one(struct vu_dev *d, const char **why);

/* Ready for processing: started, enabled and mapped. */
bool vu_queue_live(const struct vu_queue *q);
/* Signal the call fd if the ring wants an interrupt. */
bool vu_queue_notify(struct vu_queue *q);

#endif
