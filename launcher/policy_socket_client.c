/* One request/response on the proxy's control socket (policy_socket_client.h). */
#include "policy_socket_client.h"

#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "../common/clock.h"
#include "../common/util.h"

#define REPLY_TIMEOUT_MS 10000

int proxy_control_send(const char *sock, const char *line, char *reply,
		       size_t replysz)
{
	if (replysz)
		reply[0] = '\0';
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(sock) >= sizeof(sun.sun_path) || strchr(line, '\n')) {
		fmt_buf(reply, replysz, "bad socket path or command");
		return -EINVAL;
	}
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;
		fmt_buf(reply, replysz, "%s: %s (is the sandbox running?)",
			sock, strerror(e));
		return -e;
	}
	if (write_all(fd, line, strlen(line)) < 0 || write_all(fd, "\n", 1) < 0) {
		int e = errno;
		fmt_buf(reply, replysz, "%s: %s", sock, strerror(e));
		return -e;
	}
	char buf[4096];
	size_t n = 0;
	long long deadline = (long long)mono_ms() + REPLY_TIMEOUT_MS;
	while (!memchr(buf, '\n', n)) {
		long long left = deadline - (long long)mono_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			fmt_buf(reply, replysz, "%s: no reply", sock);
			return -ETIMEDOUT;
		}
		if (n == sizeof(buf) - 1)
			break; /* a reply this long is cut, not an error */
		ssize_t r = read_retry(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0) {
			fmt_buf(reply, replysz, "%s: closed without a reply",
				sock);
			return r < 0 ? (int)r : -ECONNRESET;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fmt_buf(reply, replysz, "%s", buf);
	if (!strncmp(buf, "ok", 2) && (buf[2] == ' ' || buf[2] == '\0'))
		return 0;
	return -EPROTO;
}
