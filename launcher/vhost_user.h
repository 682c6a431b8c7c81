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

#include "vring.h"

#define VU_HDR_SIZE 12
#define VU_MAX_PAYLOAD 4096
#define VU_MAX_FDS 8
#define VU_NUM_QUEUES 2

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
#define VU_FLAG_REPLY 0x4u
#define VU_FLAG_NEED_REPLY 0x8u

#define VIRTIO_F_VERSION_1 32
#define VIRTIO_RING_F_EVENT_IDX 29
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VU_PROTOCOL_F_MQ 0
#define VU_PROTOCOL_F_REPLY_ACK 3
#define VU_PROTOCOL_F_CONFIG 9

struct vu_msg {
	uint32_t request, flags, size;
	uint8_t payload[VU_MAX_PAYLOAD];
	int fds[VU_MAX_FDS];
	unsigned nfds;
};

/* Read one message: header with any SCM_RIGHTS fds, then exactly size
 * payload bytes. Returns 0, -ECONNRESET on orderly EOF, or -errno/-EPROTO.
 * On success the caller owns m->fds. */
int vu_msg_recv(int sock, struct vu_msg *m);
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
