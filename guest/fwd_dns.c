/* DNS forwarder on 127.0.0.53:53.
 *
 * TCP clients: one DNS-kind vsock stream each; both sides already speak
 * length-prefixed messages, so the bytes are relayed as they are.
 * UDP clients: queries share one DNS-kind stream (reopened when it drops).
 * Each query gets a fresh ID on the stream so answers to clients that
 * picked the same ID cannot be confused; the answer gets the client's ID
 * back and goes to the client that asked. */
#include "guest.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "../parse/wire.h"

#define DNS_MAX 4096
#define PENDING_TTL 10 /* seconds an unanswered query keeps its slot */

void accept_loop(int lfd, void (*serve)(int)) __attribute__((noreturn));

struct pending {
	struct sockaddr_in from;
	uint16_t client_id;
	time_t at; /* 0: free */
};

static struct pending table[65536];
static uint16_t next_id;

static int dns_stream(void)
{
	struct wire_header h = {.version = WIRE_VERSION, .kind = WIRE_DNS};
	uint8_t hdr[WIRE_HEADER_MAX];
	int hlen = wire_header_encode(&h, hdr);
	if (hlen < 0)
		return -EINVAL;
	int v = vsock_connect(VSOCK_PORT_TRANSPARENT);
	if (v < 0)
		return v;
	if (write_all(v, hdr, (size_t)hlen) != 0) {
		close(v);
		return -EIO;
	}
	return v;
}

static void serve_tcp(int c)
{
	int v = dns_stream();
	if (v < 0)
		_exit(1);
	_exit(relay(c, v) ? 1 : 0);
}

static int take_slot(time_t now)
{
	for (int tries = 0; tries < 65536; tries++) {
		uint16_t id = next_id++;
		if (!table[id].at || now - table[id].at > PENDING_TTL)
			return id;
	}
	return -1;
}

static void udp_query(int udp, int *v, time_t now)
{
	uint8_t msg[2 + DNS_MAX];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(udp, msg + 2, DNS_MAX, 0, (struct sockaddr *)&from,
			     &fl);
	if (n < 12) /* shorter than a DNS header: not a query */
		return;
	int id = take_slot(now);
	if (id < 0)
		return;
	if (*v < 0 && (*v = dns_stream()) < 0)
		return; /* the client retries */
	table[id] = (struct pending){.from = from,
				     .client_id = (uint16_t)(msg[2] << 8 | msg[3]),
				     .at = now};
	msg[0] = (uint8_t)(n >> 8);
	msg[1] = (uint8_t)n;
	msg[2] = (uint8_t)(id >> 8);
	msg[3] = (uint8_t)id;
	if (write_all(*v, msg, (size_t)n + 2) != 0) {
		close(*v);
		*v = -1;
		table[id].at = 0;
	}
}

/* Answers arrive as a byte stream; buffer until whole messages are in. */
static uint8_t rbuf[2 * (2 + 65535)];
static size_t rlen;

static void udp_answers(int udp, int *v)
{
	ssize_t n = read(*v, rbuf + rlen, sizeof(rbuf) - rlen);
	if (n <= 0) {
		close(*v);
		*v = -1;
		rlen = 0;
		return;
	}
	rlen += (size_t)n;
	size_t off = 0;
	while (rlen - off >= 2) {
		size_t mlen = (size_t)rbuf[off] << 8 | rbuf[off + 1];
		if (rlen - off < 2 + mlen)
			break;
		uint8_t *m = rbuf + off + 2;
		if (mlen >= 12) {
			uint16_t id = (uint16_t)(m[0] << 8 | m[1]);
			struct pending *p = &table[id];
			if (p->at) {
				m[0] = (uint8_t)(p->client_id >> 8);
				m[1] = (uint8_t)p->client_id;
				sendto(udp, m, mlen, 0,
				       (struct sockaddr *)&p->from,
				       sizeof(p->from));
				p->at = 0;
			}
		}
		off += 2 + mlen;
	}
	memmove(rbuf, rbuf + off, rlen - off);
	rlen -= off;
}

void fwd_dns_run(int udp, int tcp)
{
	pid_t pid = fork();
	if (pid == 0) {
		close(udp);
		accept_loop(tcp, serve_tcp);
	}
	close(tcp);
	int v = -1;
	for (;;) {
		struct pollfd p[2] = {{.fd = udp, .events = POLLIN},
				      {.fd = v, .events = POLLIN}};
		if (poll(p, v >= 0 ? 2 : 1, -1) < 0)
			continue;
		time_t now = time(NULL);
		if (p[0].revents & POLLIN)
			udp_query(udp, &v, now);
		if (v >= 0 && p[1].revents)
			udp_answers(udp, &v);
	}
}
