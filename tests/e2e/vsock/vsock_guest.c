/* Guest-side helper for tests/e2e/test_vsock_bridge.py (static, runs in the VM).
 *
 *   vsock_guest echo PORT MSG     connect to CID 2:PORT, send MSG, half-close,
 *                                 print "REPLY <bytes received>"
 *   vsock_guest send PORT BYTES   send BYTES of pattern data, half-close, read
 *                                 the reply; print "SENT n sum ms" and "REPLY ..."
 *   vsock_guest recv PORT         read to EOF; print "RECV n sum"
 *   vsock_guest refused PORT      print "REFUSED <errno name>" or "CONNECTED"
 *   vsock_guest listen PORT       accept one connection, echo it upper-cased
 *                                 until EOF, print "SERVED n"
 * Every output line starts with "VSK " so the test can pick it out of the
 * console. The checksum is a 32-bit FNV-1a, so the host can compare it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static uint32_t fnv(uint32_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)((i * 2654435761u) >> 13);
}

static int dial(unsigned port)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = 2,
				 .svm_port = port};
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return fd;
}

static void read_all(int fd, const char *tag)
{
	uint8_t buf[65536];
	uint64_t n = 0;
	uint32_t h = 2166136261u;
	char first[64] = "";
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0) {
			printf("VSK %s ERROR %s\n", tag, strerror(errno));
			return;
		}
		if (r == 0)
			break;
		if (n == 0)
			snprintf(first, sizeof(first), "%.*s", (int)(r < 40 ? r : 40), buf);
		h = fnv(h, buf, (size_t)r);
		n += (uint64_t)r;
	}
	for (char *p = first; *p; p++)
		if (*p < 32 || *p > 126)
			*p = '.';
	printf("VSK %s %llu %08x %s\n", tag, (unsigned long long)n, h, first);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 3) {
		fprintf(stderr, "usage: vsock_guest echo|send|recv|refused|listen PORT [ARG]\n");
		return 2;
	}
	unsigned port = (unsigned)strtoul(argv[2], NULL, 10);
	const char *mode = argv[1];
	if (!strcmp(mode, "refused")) {
		int fd = dial(port);
		if (fd >= 0)
			printf("VSK CONNECTED\n");
		else
			printf("VSK REFUSED %s\n", strerror(-fd));
		return 0;
	}
	if (!strcmp(mode, "listen")) {
		int ls = socket(AF_VSOCK, SOCK_STREAM, 0);
		struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
					 .svm_cid = VMADDR_CID_ANY, .svm_port = port};
		if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(ls, 4) < 0) {
			perror("listen");
			return 1;
		}
		printf("VSK LISTENING %u\n", port);
		int fd = accept(ls, NULL, NULL);
		if (fd < 0) {
			perror("accept");
			return 1;
		}
		char buf[4096];
		uint64_t n = 0;
		ssize_t r;
		while ((r = read(fd, buf, sizeof(buf))) > 0) {
			for (ssize_t i = 0; i < r; i++)
				if (buf[i] >= 'a' && buf[i] <= 'z')
					buf[i] -= 32;
			if (write(fd, buf, (size_t)r) != r)
				break;
			n += (uint64_t)r;
		}
		close(fd);
		printf("VSK SERVED %llu\n", (unsigned long long)n);
		return 0;
	}
	int fd = dial(port);
	if (fd < 0) {
		printf("VSK CONNECT-FAILED %s\n", strerror(-fd));
		return 1;
	}
	if (!strcmp(mode, "echo") && argc > 3) {
		if (write(fd, argv[3], strlen(argv[3])) < 0)
			perror("write");
		shutdown(fd, SHUT_WR);
		read_all(fd, "REPLY");
	} else if (!strcmp(mode, "send") && argc > 3) {
		uint64_t total = strtoull(argv[3], NULL, 10), off = 0;
		uint8_t buf[65536];
		uint32_t h = 2166136261u;
		double t0 = now();
		while (off < total) {
			size_t n = total - off < sizeof(buf) ? total - off : sizeof(buf);
			for (size_t i = 0; i < n; i++)
				buf[i] = pattern(off + i);
			h = fnv(h, buf, n);
			size_t w = 0;
			while (w < n) {
				ssize_t r = write(fd, buf + w, n - w);
				if (r < 0) {
					printf("VSK SEND-ERROR %s\n", strerror(errno));
					return 1;
				}
				w += (size_t)r;
			}
			off += n;
		}
		shutdown(fd, SHUT_WR);
		read_all(fd, "REPLY");
		printf("VSK SENT %llu %08x %.0f\n", (unsigned long long)total, h,
		       (now() - t0) * 1000);
	} else if (!strcmp(mode, "recv")) {
		shutdown(fd, SHUT_WR);
		read_all(fd, "RECV");
	} else {
		fprintf(stderr, "bad mode\n");
		return 2;
	}
	close(fd);
	return 0;
}
