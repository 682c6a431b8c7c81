/* One request/response on the proxy's control socket (policy_socket_client.h). */
#include "policy_socket_client.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "launch.h"
#include "sandboxes.h"

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

int proxy_control_command(const char *cmd, const char *name,
			  const char *line, const char *not_running)
{
	char dir[PATH_MAX];
	struct sandbox_meta m;
	if (!launch_name_valid(name) ||
	    sandbox_dir(name, dir, sizeof(dir), false) ||
	    sandbox_meta_read(dir, &m)) {
		fprintf(stderr, "sandbox-launch %s: no sandbox named %s "
				"(sandbox-launch list shows them)\n",
			cmd, name);
		return 2;
	}
	if (!sandbox_running(dir)) {
		fprintf(stderr, "sandbox-launch %s: sandbox %s is not running "
				"(%s)\n",
			cmd, name, not_running);
		return 2;
	}
	if (!m.proxy_control[0]) {
		fprintf(stderr, "sandbox-launch %s: sandbox %s has no control "
				"socket recorded (started by an older "
				"sandbox-launch?)\n",
			cmd, name);
		return 2;
	}
	char reply[4096];
	int r = proxy_control_send(m.proxy_control, line, reply, sizeof(reply));
	if (r == 0) {
		printf("%s\n", reply);
		return 0;
	}
	fprintf(stderr, "sandbox-launch %s: %s: %s\n", cmd, name,
		reply[0] ? reply : strerror(-r));
	return r == -EPROTO ? 1 : 2;
}
