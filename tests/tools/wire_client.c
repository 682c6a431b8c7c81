/* wire_client: a small client that speaks the guest side of the wire
 * protocol (parse/wire.h) to sandbox-proxy's transparent listener, for the
 * integration tests. It stands in for the guest forwarder so that ordinary
 * tools (curl, openssl s_client, python sockets) can use the transparent
 * path from the host.
 *
 * It never connects to the destination it is given: --dest only goes into
 * the header, exactly as the guest forwarder would claim it.
 *
 * Exit codes: 0 success, 1 failure (connect, timeout, malformed reply),
 * 2 usage error, 3 timed out waiting for the peer (header mode).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../parse/wire.h"
#include "lib/bench_common.h"
#include "lib/dns_text.h"

static const char usage_text[] =
	"usage:\n"
	"  wire_client dns     --proxy ADDR [--timeout S] NAME [TYPE]\n"
	"      Send one DNS query (TYPE: A, AAAA, HTTPS, SVCB, TXT, MX, CNAME,\n"
	"      PTR, ANY or a number; default A) over a DNS-kind stream. Prints\n"
	"      \"rcode NAME\" then one line per answer (\"A 198.18.0.1\",\n"
	"      \"AAAA ::1\", \"CNAME x.test\", \"TYPE65 <n> bytes\").\n"
	"  wire_client forward --proxy ADDR --listen IP:PORT --dest IP:PORT\n"
	"      Guest-forwarder stand-in: every TCP connection accepted on\n"
	"      --listen becomes one stream to the proxy with a TCP wire header\n"
	"      carrying --dest; bytes are relayed both ways with half-close.\n"
	"      PORT 0 picks a free port. Prints \"listening IP:PORT\" once ready\n"
	"      and runs until killed.\n"
	"  wire_client raw     --proxy ADDR --dest IP:PORT [--timeout S]\n"
	"      One stream with a TCP header for --dest; stdin to the proxy,\n"
	"      the proxy's bytes to stdout, half-close in both directions.\n"
	"      --timeout is an idle limit (default 10 s).\n"
	"  wire_client header  --proxy ADDR --hex BYTES [--hold] [--timeout S]\n"
	"      Send arbitrary bytes (hex; spaces and colons ignored) as the\n"
	"      start of a stream, half-close unless --hold, then wait for the\n"
	"      proxy to close. Prints \"closed after N bytes\" (exit 0) or\n"
	"      \"timeout\" (exit 3).\n"
	"\n"
	"ADDR is unix:PATH, tcp:HOST:PORT or tcp:[V6]:PORT. --dest is an IPv4\n"
	"address or [IPv6] with a port. Default --timeout is 5 s (dns, header).\n"
	"--src IP:PORT (forward, raw) adds the header's source extension, as\n"
	"the guest's forwarder does for the connection it accepted;\n"
	"--container NAME and --container-id HEX (with --src) add the\n"
	"container extension, as the forwarder does for a Docker container.\n";

static void usage_error(const char *fmt, const char *arg)
	__attribute__((noreturn, format(printf, 1, 0)));

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "wire_client: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage_text);
	exit(2);
}

struct opts {
	const char *mode;
	const char *proxy;
	const char *listen;
	const char *dest;
	const char *src;
	const char *ctr_name, *ctr_id;
	const char *hex;
	const char *name;
	const char *type;
	bool hold;
	double timeout;
};

/* Split "HOST:PORT" or "[V6]:PORT" in place. */
static int split_host_port(char *s, char **host, char **port)
{
	char *colon;
	if (s[0] == '[') {
		char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		*end = '\0';
		*host = s + 1;
		*port = end + 2;
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	*host = s;
	*port = colon + 1;
	return **port ? 0 : -EINVAL;
}

static int parse_port(const char *s, uint16_t *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 0 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static int connect_proxy(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		const char *path = spec + 5;
		if (strlen(path) >= sizeof(sun.sun_path)) {
			fprintf(stderr, "wire_client: socket path too long: %s\n", path);
			return -ENAMETOOLONG;
		}
		memcpy(sun.sun_path, path, strlen(path) + 1);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			int e = errno;
			fprintf(stderr, "wire_client: connect %s: %s\n", spec,
				strerror(e));
			close(fd);
			return -e;
		}
		return fd;
	}
	if (strncmp(spec, "tcp:", 4) != 0) {
		fprintf(stderr, "wire_client: --proxy must be unix:PATH or tcp:HOST:PORT, got %s\n",
			spec);
		return -EINVAL;
	}
	_cleanup_free_ char *copy = strdup(spec + 4);
	char *host, *port;
	if (!copy)
		return -ENOMEM;
	if (split_host_port(copy, &host, &port) < 0) {
		fprintf(stderr, "wire_client: bad --proxy address %s\n", spec);
		return -EINVAL;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	int r = getaddrinfo(host, port, &hints, &ai);
	if (r) {
		fprintf(stderr, "wire_client: bad --proxy address %s: %s\n", spec,
			gai_strerror(r));
		return -EINVAL;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		int e = errno;
		fprintf(stderr, "wire_client: connect %s: %s\n", spec, strerror(e));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -e;
	}
	freeaddrinfo(ai);
	return fd;
}

static int parse_dest(const char *spec, struct wire_header *h)
{
	_cleanup_free_ char *copy = strdup(spec);
	char *host, *port;
	if (!copy)
		return -ENOMEM;
	if (split_host_port(copy, &host, &port) < 0 ||
	    parse_port(port, &h->port) < 0)
		return -EINVAL;
	if (inet_pton(AF_INET, host, h->addr) == 1)
		h->family = 4;
	else if (inet_pton(AF_INET6, host, h->addr) == 1)
		h->family = 6;
	else
		return -EINVAL;
	h->kind = WIRE_TCP;
	return 0;
}

/* Wait until fd is readable (or writable); -ETIMEDOUT when it is not
 * within timeout seconds. */
static int wait_fd(int fd, short events, double timeout)
{
	struct pollfd p = {.fd = fd, .events = events};
	int ms = timeout < 0 ? -1 : (int)(timeout * 1000);
	for (;;) {
		int n = poll(&p, 1, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		return n == 0 ? -ETIMEDOUT : 0;
	}
}

/* Read exactly len bytes within the deadline. */
static int read_by_deadline(int fd, uint8_t *buf, size_t len, double deadline)
{
	size_t got = 0;
	while (got < len) {
		int r = wait_fd(fd, POLLIN, deadline - bench_now());
		if (r < 0)
			return r;
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

/* Relay between a local endpoint (in_fd/out_fd, possibly the same socket)
 * and the proxy stream, propagating EOF as a half-close each way. Returns
 * 0 when both directions ended, -ETIMEDOUT after idle seconds without
 * traffic (idle < 0: no limit). */
static int relay(int in_fd, int out_fd, int sock, double idle)
{
	bool up_open = true, down_open = true;
	uint8_t buf[65536];
	while (up_open || down_open) {
		struct pollfd p[2];
		int n = 0, iup = -1, idown = -1;
		if (up_open) {
			p[n] = (struct pollfd){.fd = in_fd, .events = POLLIN};
			iup = n++;
		}
		if (down_open) {
			p[n] = (struct pollfd){.fd = sock, .events = POLLIN};
			idown = n++;
		}
		int r = poll(p, (nfds_t)n, idle < 0 ? -1 : (int)(idle * 1000));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		if (iup >= 0 && p[iup].revents) {
			ssize_t k = read(in_fd, buf, sizeof(buf));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				up_open = false;
				shutdown(sock, SHUT_WR);
			} else if (write_all(sock, buf, (size_t)k) < 0) {
				/* The proxy closed on us: stop both ways. */
				return -EPIPE;
			}
		}
		if (idown >= 0 && p[idown].revents) {
			ssize_t k = read(sock, buf, sizeof(buf));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				down_open = false;
				if (out_fd == in_fd)
					shutdown(out_fd, SHUT_WR);
				else
					close(out_fd);
				if (k < 0)
					return -errno;
			} else if (write_all(out_fd, buf, (size_t)k) < 0) {
				return -EPIPE;
			}
		}
	}
	return 0;
}

static int open_stream(const char *proxy, const struct wire_header *h)
{
	uint8_t hdr[WIRE_HEADER_MAX];
	int hlen = wire_header_encode(h, hdr);
	if (hlen < 0) {
		fprintf(stderr, "wire_client: cannot encode wire header\n");
		return -EINVAL;
	}
	int fd = connect_proxy(proxy);
	if (fd < 0)
		return fd;
	if (write_all(fd, hdr, (size_t)hlen) < 0) {
		int e = errno;
		fprintf(stderr, "wire_client: writing header: %s\n", strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

/* --- dns mode ------------------------------------------------------------ */

static int do_dns(const struct opts *o)
{
	uint16_t qtype = 1;
	if (o->type && dns_text_type(o->type, &qtype) < 0)
		usage_error("unknown DNS type %s", o->type);
	uint8_t q[DNS_TEXT_QUERY_MAX];
	size_t qlen;
	uint16_t id = (uint16_t)(getpid() ^ (uint16_t)time(NULL));
	if (dns_text_query(o->name, qtype, id, q, sizeof(q), &qlen) < 0)
		usage_error("bad DNS name %s", o->name);

	struct wire_header h = {.kind = WIRE_DNS, .family = 0, .port = 0};
	_cleanup_close_ int fd = open_stream(o->proxy, &h);
	if (fd < 0)
		return 1;
	if (write_all(fd, q, qlen) < 0) {
		fprintf(stderr, "wire_client: sending query: %s\n", strerror(errno));
		return 1;
	}
	double deadline = bench_now() + o->timeout;
	uint8_t lenbuf[2];
	int r = read_by_deadline(fd, lenbuf, 2, deadline);
	if (r < 0) {
		fprintf(stderr, "wire_client: no DNS reply: %s\n",
			r == -ECONNRESET ? "stream closed" : strerror(-r));
		return 1;
	}
	size_t rlen = (size_t)lenbuf[0] << 8 | lenbuf[1];
	_cleanup_free_ uint8_t *resp = malloc(rlen ? rlen : 1);
	if (!resp)
		return 1;
	r = read_by_deadline(fd, resp, rlen, deadline);
	if (r < 0) {
		fprintf(stderr, "wire_client: truncated DNS reply: %s\n",
			r == -ECONNRESET ? "stream closed" : strerror(-r));
		return 1;
	}
	return dns_text_print_response(resp, rlen, id) < 0 ? 1 : 0;
}

/* --- forward mode -------------------------------------------------------- */

static int listen_on(const char *spec, char *bound, size_t boundsz)
{
	_cleanup_free_ char *copy = strdup(spec);
	char *host, *port;
	if (!copy || split_host_port(copy, &host, &port) < 0)
		return -EINVAL;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV |
					     AI_PASSIVE};
	struct addrinfo *ai;
	if (getaddrinfo(host, port, &hints, &ai))
		return -EINVAL;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0)
		goto fail;
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];
	uint16_t p;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		p = ntohs(s4->sin_port);
		fmt_buf(bound, boundsz, "%s:%u", ip, p);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		p = ntohs(s6->sin6_port);
		fmt_buf(bound, boundsz, "[%s]:%u", ip, p);
	}
	return fd;
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return -e;
}

static int do_forward(const struct opts *o, const struct wire_header *h)
{
	char bound[80];
	_cleanup_close_ int lfd = listen_on(o->listen, bound, sizeof(bound));
	if (lfd < 0) {
		fprintf(stderr, "wire_client: cannot listen on %s: %s\n",
			o->listen, strerror(-lfd));
		return 1;
	}
	/* Children are reaped by the kernel; one child per connection keeps
	 * the relay loop trivial and isolates one stream's failure. */
	struct sigaction sa = {.sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT};
	sigaction(SIGCHLD, &sa, NULL);
	printf("listening %s\n", bound);
	fflush(stdout);
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "wire_client: accept: %s\n", strerror(errno));
			return 1;
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			int s = open_stream(o->proxy, h);
			if (s < 0)
				_exit(1);
			int r = relay(c, c, s, -1);
			_exit(r < 0 ? 1 : 0);
		}
		if (pid < 0)
			fprintf(stderr, "wire_client: fork: %s\n", strerror(errno));
		close(c);
	}
}

/* --- raw mode ------------------------------------------------------------ */

static int do_raw(const struct opts *o, const struct wire_header *h)
{
	_cleanup_close_ int s = open_stream(o->proxy, h);
	if (s < 0)
		return 1;
	int r = relay(STDIN_FILENO, STDOUT_FILENO, s, o->timeout);
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "wire_client: idle for %.1f s, giving up\n",
			o->timeout);
		return 1;
	}
	if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
		fprintf(stderr, "wire_client: relay: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}

/* --- header mode --------------------------------------------------------- */

static int parse_hex(const char *s, uint8_t *out, size_t outsz, size_t *len)
{
	size_t n = 0;
	int hi = -1;
	for (; *s; s++) {
		if (*s == ' ' || *s == ':' || *s == '\t')
			continue;
		if (!isxdigit((unsigned char)*s))
			return -EINVAL;
		int v = isdigit((unsigned char)*s) ? *s - '0'
						   : (tolower((unsigned char)*s) - 'a' + 10);
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n >= outsz)
			return -E2BIG;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0)
		return -EINVAL;
	*len = n;
	return 0;
}

static int do_header(const struct opts *o)
{
	uint8_t bytes[4096];
	size_t n;
	if (parse_hex(o->hex, bytes, sizeof(bytes), &n) < 0)
		usage_error("bad --hex value %s (pairs of hex digits, at most 4096 bytes)",
			    o->hex);
	_cleanup_close_ int fd = connect_proxy(o->proxy);
	if (fd < 0)
		return 1;
	/* The proxy may close on the first bad byte; a failed write is then
	 * part of the expected outcome, not an error. */
	if (write_all(fd, bytes, n) < 0 && errno != EPIPE && errno != ECONNRESET) {
		fprintf(stderr, "wire_client: write: %s\n", strerror(errno));
		return 1;
	}
	if (!o->hold)
		shutdown(fd, SHUT_WR);
	double deadline = bench_now() + o->timeout;
	size_t got = 0;
	uint8_t buf[4096];
	for (;;) {
		int r = wait_fd(fd, POLLIN, deadline - bench_now());
		if (r == -ETIMEDOUT) {
			printf("timeout\n");
			return 3;
		}
		if (r < 0)
			return 1;
		ssize_t k = read(fd, buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	printf("closed after %zu bytes\n", got);
	return 0;
}

/* --- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct opts o = {.timeout = -1};
	const char *positional[2] = {NULL, NULL};
	size_t npos = 0;

	program_name = "wire_client";
	/* A peer that closes early shows up as EPIPE, not a fatal signal. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		usage_error("%s", "missing mode");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	o.mode = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(a, "--hold")) {
			o.hold = true;
			continue;
		} else if (!strcmp(a, "--proxy")) {
			slot = &o.proxy;
		} else if (!strcmp(a, "--listen")) {
			slot = &o.listen;
		} else if (!strcmp(a, "--dest")) {
			slot = &o.dest;
		} else if (!strcmp(a, "--src")) {
			slot = &o.src;
		} else if (!strcmp(a, "--container")) {
			slot = &o.ctr_name;
		} else if (!strcmp(a, "--container-id")) {
			slot = &o.ctr_id;
		} else if (!strcmp(a, "--hex")) {
			slot = &o.hex;
		} else if (!strcmp(a, "--timeout")) {
			if (i + 1 >= argc)
				usage_error("%s needs a value", a);
			char *end;
			o.timeout = strtod(argv[++i], &end);
			if (*end || o.timeout <= 0)
				usage_error("bad --timeout %s", argv[i]);
			continue;
		} else if (a[0] == '-' && a[1] == '-') {
			usage_error("unknown option %s", a);
		} else {
			if (npos >= ARRAY_SIZE(positional))
				usage_error("unexpected argument %s", a);
			positional[npos++] = a;
			continue;
		}
		if (i + 1 >= argc)
			usage_error("%s needs a value", a);
		*slot = argv[++i];
	}
	if (!o.proxy)
		usage_error("%s", "--proxy is required");

	struct wire_header h = {0};
	bool want_dest = !strcmp(o.mode, "forward") || !strcmp(o.mode, "raw");
	if (want_dest) {
		if (!o.dest)
			usage_error("%s mode needs --dest IP:PORT", o.mode);
		if (parse_dest(o.dest, &h) < 0)
			usage_error("bad --dest %s (want IPv4:PORT or [IPv6]:PORT)",
				    o.dest);
	}
	if (o.src) {
		struct wire_header s = {0};
		if (parse_dest(o.src, &s) < 0 || !s.port)
			usage_error("bad --src %s (want IPv4:PORT or [IPv6]:PORT)",
				    o.src);
		h.src_family = s.family;
		h.src_port = s.port;
		memcpy(h.src_addr, s.addr, sizeof(h.src_addr));
	}
	if ((o.ctr_name && fmt_buf(h.ctr_name, sizeof(h.ctr_name), "%s",
				   o.ctr_name)) ||
	    (o.ctr_id && fmt_buf(h.ctr_id, sizeof(h.ctr_id), "%s", o.ctr_id)))
		usage_error("%s", "--container or --container-id too long");
	if (!strcmp(o.mode, "dns")) {
		if (npos < 1)
			usage_error("%s", "dns mode needs a NAME");
		o.name = positional[0];
		o.type = positional[1];
		if (o.timeout < 0)
			o.timeout = 5;
		return do_dns(&o);
	}
	if (npos)
		usage_error("unexpected argument %s", positional[0]);
	if (!strcmp(o.mode, "forward")) {
		if (!o.listen)
			usage_error("%s", "forward mode needs --listen IP:PORT");
		return do_forward(&o, &h);
	}
	if (!strcmp(o.mode, "raw")) {
		if (o.timeout < 0)
			o.timeout = 10;
		return do_raw(&o, &h);
	}
	if (!strcmp(o.mode, "header")) {
		if (!o.hex)
			usage_error("%s", "header mode needs --hex BYTES");
		if (o.timeout < 0)
			o.timeout = 5;
		return do_header(&o);
	}
	usage_error("unknown mode %s", o.mode);
}
