/* tls_sink: the TLS backend server of the proxy benchmark.
 *
 * One epoll loop, non-blocking OpenSSL, many connections. After the
 * handshake the client sends one command byte:
 *   'e'            echo every byte until the client closes
 *   'b' + u64 BE   send that many bytes, then close_notify and close
 * Anything else closes the connection.
 *
 * Usage: tls_sink --cert FILE --key FILE [--port N]   (port 0 = any free one)
 * Prints "tls_sink: ready port N" on stdout once listening. Listens on
 * 127.0.0.1 only. Session tickets and the session cache are off so every
 * benchmark connection pays for a full handshake.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define ECHO_BUF 4096
#define SEND_CHUNK 65536

enum sink_state {
	S_HANDSHAKE, /* SSL_accept not finished */
	S_CMD,       /* waiting for the command byte */
	S_LEN,       /* 'b': collecting the 8-byte length */
	S_ECHO_READ, /* echo: waiting for bytes */
	S_ECHO_WRITE, /* echo: flushing buf[off..len) */
	S_SEND,      /* 'b': writing the remaining bytes */
	S_SHUTDOWN,  /* close_notify being sent */
};

struct sink_conn {
	int fd;
	SSL *ssl; /* owned */
	enum sink_state state;
	uint32_t events; /* current epoll interest */
	uint8_t lenbuf[8];
	size_t lenhave;
	uint64_t remaining;
	size_t last_chunk; /* SSL_write must be retried with the same length */
	size_t off, len;
	uint8_t *buf; /* owned; allocated on entering echo mode */
};

static int epfd;
static const uint8_t send_chunk[SEND_CHUNK];

static void conn_free(struct sink_conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	SSL_free(c->ssl);
	free(c->buf);
	free(c);
}

static void set_interest(struct sink_conn *c, uint32_t ev)
{
	if (ev == c->events)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = c};
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
	c->events = ev;
}

/* Returns 1 to keep going, 0 when blocked (interest set), -1 to close. */
static int would_block(struct sink_conn *c, int ret)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		set_interest(c, EPOLLIN);
		return 0;
	case SSL_ERROR_WANT_WRITE:
		set_interest(c, EPOLLOUT);
		return 0;
	default:
		ERR_clear_error();
		return -1;
	}
}

static int step(struct sink_conn *c)
{
	for (;;) {
		int r;
		size_t n;
		switch (c->state) {
		case S_HANDSHAKE:
			r = SSL_accept(c->ssl);
			if (r != 1)
				return would_block(c, r);
			c->state = S_CMD;
			break;
		case S_CMD: {
			uint8_t cmd;
			if (!SSL_read_ex(c->ssl, &cmd, 1, &n))
				return would_block(c, 0);
			if (cmd == 'e') {
				c->buf = malloc(ECHO_BUF);
				if (!c->buf)
					return -1;
				c->state = S_ECHO_READ;
			} else if (cmd == 'b') {
				c->state = S_LEN;
			} else {
				return -1;
			}
			break;
		}
		case S_LEN:
			if (!SSL_read_ex(c->ssl, c->lenbuf + c->lenhave,
					 8 - c->lenhave, &n))
				return would_block(c, 0);
			c->lenhave += n;
			if (c->lenhave < 8)
				break;
			c->remaining = 0;
			for (int i = 0; i < 8; i++)
				c->remaining = c->remaining << 8 | c->lenbuf[i];
			c->state = S_SEND;
			break;
		case S_ECHO_READ:
			if (!SSL_read_ex(c->ssl, c->buf, ECHO_BUF, &n))
				return would_block(c, 0);
			c->off = 0;
			c->len = n;
			c->state = S_ECHO_WRITE;
			break;
		case S_ECHO_WRITE:
			if (!SSL_write_ex(c->ssl, c->buf + c->off, c->len - c->off,
					  &n))
				return would_block(c, 0);
			c->off += n;
			if (c->off == c->len)
				c->state = S_ECHO_READ;
			break;
		case S_SEND:
			if (c->remaining == 0) {
				c->state = S_SHUTDOWN;
				break;
			}
			if (!c->last_chunk)
				c->last_chunk = c->remaining < SEND_CHUNK
							? (size_t)c->remaining
							: SEND_CHUNK;
			if (!SSL_write_ex(c->ssl, send_chunk, c->last_chunk, &n))
				return would_block(c, 0);
			c->remaining -= n;
			c->last_chunk = 0;
			break;
		case S_SHUTDOWN:
			r = SSL_shutdown(c->ssl);
			if (r < 0 && would_block(c, r) == 0)
				return 0;
			return -1; /* sent (or failed): done either way */
		}
	}
}

static void raise_nofile(void)
{
	struct rlimit rl = {.rlim_cur = 65536, .rlim_max = 65536};
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 &&
	    getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: tls_sink --cert FILE --key FILE [--port N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL;
	int port = 0;
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--cert"))
			cert = argv[++i];
		else if (!strcmp(argv[i], "--key"))
			key = argv[++i];
		else if (!strcmp(argv[i], "--port"))
			port = atoi(argv[++i]);
		else
			usage();
	}
	if (!cert || !key || port < 0 || port > 65535)
		usage();
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		fprintf(stderr, "tls_sink: cannot load %s / %s\n", cert, key);
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				      SSL_MODE_RELEASE_BUFFERS);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t slen = sizeof(sa);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &slen) < 0) {
		fprintf(stderr, "tls_sink: listen on 127.0.0.1:%d: %s\n", port,
			strerror(errno));
		return 1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le);
	printf("tls_sink: ready port %u\n", ntohs(sa.sin_port));
	fflush(stdout);

	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(epfd, evs, 256, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return 1;
		for (int i = 0; i < n; i++) {
			struct sink_conn *c = evs[i].data.ptr;
			if (c) {
				if (step(c) < 0)
					conn_free(c);
				continue;
			}
			for (int k = 0; k < 64; k++) {
				int fd = accept4(lfd, NULL, NULL,
						 SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (fd < 0)
					break;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
					   sizeof(one));
				c = calloc(1, sizeof(*c));
				SSL *ssl = c ? SSL_new(ctx) : NULL;
				if (!ssl) {
					free(c);
					close(fd);
					continue;
				}
				c->fd = fd;
				c->ssl = ssl;
				SSL_set_fd(ssl, fd);
				c->events = EPOLLIN;
				struct epoll_event e = {.events = EPOLLIN,
							.data.ptr = c};
				epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
			}
		}
	}
}
