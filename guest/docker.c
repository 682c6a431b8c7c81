/* Docker in the guest (sandbox.docker=on, docs/docker.md).
 *
 * Three steps, each called once from init_main.c:
 *   docker_modules  the bridge/veth/xtables modules (load-order-docker)
 *   docker_storage  /var/lib/docker on a real ext4 block device: the named
 *                   sandbox's writable-layer disk (/rw/docker), else the
 *                   per-run disk with serial DOCKER_DISK_SERIAL. Never the
 *                   workspace share or an overlay (overlay2 cannot stack
 *                   on overlayfs, and vfs would copy every layer).
 *   docker_start    cgroup2, /etc/docker/daemon.json, dockerd (which
 *                   starts its own containerd) as guest root, and a wait
 *                   until the API answers; the socket's group is the
 *                   command user's, so `docker` works for that user.
 *
 * Containers need nothing of their own for the policy: netcap.c captures
 * forwarded traffic (bridges) in prerouting as it captures the guest's own
 * in output, and the VM has no network card either way.
 */
#include "guest.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"

#define DOCKER_SOCK "/run/docker.sock"
#define DOCKER_LOG "/var/log/dockerd.log"
/* Under TCG dockerd takes 10-30 s to answer; KVM about 1 s. */
#define DOCKER_START_MS 240000
#define DISK_WAIT_MS 3000

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int docker_modules(const struct boot_config *cfg, const char **what)
{
	if (!cfg->docker)
		return 0;
	return modules_load_list("/lib/modules", "load-order-docker", true,
				 what);
}

static int mkdir_p(char *path, mode_t mode)
{
	for (char *c = path + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		int r = mkdir(path, mode) < 0 && errno != EEXIST ? -errno : 0;
		*c = '/';
		if (r)
			return r;
	}
	return mkdir(path, mode) < 0 && errno != EEXIST ? -errno : 0;
}

/* The per-run disk's /dev node, found while /sys and /dev are still where
 * virtio_disk_by_serial() looks (root_build() moves them). */
static char docker_dev[64];

int docker_disk_find(const struct boot_config *cfg, const char **what)
{
	if (!cfg->docker || cfg->upper_disk)
		return 0;
	int r;
	for (int waited = 0;; waited += 10) {
		r = virtio_disk_by_serial(DOCKER_DISK_SERIAL, docker_dev,
					  sizeof(docker_dev));
		if (r == 0 && access(docker_dev, F_OK) == 0)
			return 0;
		if (waited >= DISK_WAIT_MS) {
			*what = "Docker data disk: no virtio disk with serial "
				DOCKER_DISK_SERIAL;
			return r ? r : -ENOENT;
		}
		sleep_ms(10);
	}
}

int docker_storage(const struct boot_config *cfg, const char **what)
{
	if (!cfg->docker)
		return 0;
	static char at[] = NEWROOT "/var/lib/docker";
	int r = mkdir_p(at, 0710);
	if (r) {
		*what = "mkdir " NEWROOT "/var/lib/docker";
		return r;
	}
	if (cfg->upper_disk) {
		/* On the disk itself, beside the overlay layers: kept across
		 * stop and run, gone with rm and reset. */
		if (mkdir("/rw/docker", 0710) < 0 && errno != EEXIST) {
			*what = "/rw/docker";
			return -errno;
		}
		if (mount("/rw/docker", at, NULL, MS_BIND, NULL) < 0) {
			*what = "bind /rw/docker";
			return -errno;
		}
		return 0;
	}
	char path[sizeof(NEWROOT) + sizeof(docker_dev)];
	if (fmt_buf(path, sizeof(path), "%s%s", NEWROOT, docker_dev))
		return -ENAMETOOLONG;
	if (mount(path, at, "ext4", MS_NOSUID | MS_NODEV, NULL) < 0) {
		*what = "Docker data disk: mount ext4";
		return -errno;
	}
	return 0;
}

/* A unix socket accepts a connection: the daemon behind it listens. */
static int sock_connects(const char *path)
{
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (fmt_buf(sa.sun_path, sizeof(sa.sun_path), "%s", path))
		return -ENAMETOOLONG;
	return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
}

/* dockerd's API answers GET /_ping with 200 once the daemon is set up. */
static int docker_ping(const char *path)
{
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (fmt_buf(sa.sun_path, sizeof(sa.sun_path), "%s", path))
		return -ENAMETOOLONG;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	static const char req[] = "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
	if (write_all(fd, req, sizeof(req) - 1))
		return -EIO;
	struct timeval tv = {.tv_sec = 30};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	return !strncmp(buf, "HTTP/1.0 200", 12) || !strncmp(buf, "HTTP/1.1 200", 12)
		       ? 0
		       : -EIO;
}

static int write_daemon_json(const struct boot_config *cfg)
{
	char json[1024];
	/* overlay2 named explicitly: dockerd then fails instead of falling
	 * back to vfs. The mirror was checked by docker_param() (no quotes
	 * or backslashes). */
	if (fmt_buf(json, sizeof(json),
		    "{\n  \"storage-driver\": \"overlay2\",\n"
		    "  \"data-root\": \"/var/lib/docker\",\n"
		    "  \"registry-mirrors\": [%s%s%s]\n}\n",
		    cfg->docker_mirror[0] ? "\"" : "", cfg->docker_mirror,
		    cfg->docker_mirror[0] ? "\"" : ""))
		return -ENAMETOOLONG;
	if (mkdir("/etc/docker", 0755) < 0 && errno != EEXIST)
		return -errno;
	_cleanup_close_ int fd = open("/etc/docker/daemon.json",
				      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				      0644);
	if (fd < 0)
		return -errno;
	return write_all(fd, json, strlen(json));
}

static int mount_cgroup2(void)
{
	struct stat st;
	if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0)
		return 0;
	if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2",
		  MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -errno;
	return 0;
}

/* The last bytes of a daemon's log on the console, for a failed start. */
static void log_tail(const char *log)
{
	_cleanup_close_ int fd = open(log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	lseek(fd, end > 1500 ? end - 1500 : 0, SEEK_SET);
	char buf[1501];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return;
	buf[n] = '\0';
	log_msg("%s (end):\n%s", log, buf);
}

/* The daemons, in start order. Each is ready when ready(sock) is 0.
 * containerd is started here rather than by dockerd: dockerd gives its own
 * containerd a fixed time to start, which TCG overruns. The socket's group
 * is the command user's (--group GID), so `docker` works for that user,
 * which makes it guest root, as the docker group always does; the guest's
 * root is no more trusted than its user (docs/docker.md). */
struct daemon {
	const char *argv[8];
	const char *log, *sock;
	int (*ready)(const char *sock);
};

static pid_t spawn_daemon(const struct daemon *d)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;
	int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 ||
	    dup2(fd, 2) < 0)
		_exit(126);
	setsid();
	static char *const envp[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
		"/sbin:/bin",
		"HOME=/root", NULL};
	execve(d->argv[0], (char *const *)d->argv, envp);
	_exit(127);
}

static int start_one(const struct daemon *d, const char **what)
{
	if (access(d->argv[0], X_OK) < 0) {
		*what = "--docker: dockerd or containerd is not in this root "
			"(install docker.io, or use an image that has it)";
		return -ENOENT;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = spawn_daemon(d);
	if (pid < 0) {
		*what = d->argv[0];
		return (int)pid;
	}
	for (int waited = 0;; waited += 100) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			log_tail(d->log);
			*what = "the daemon exited at start (its log is above; "
				"Docker's storage must be overlay2, vfs is refused)";
			return -EIO;
		}
		if (d->ready(d->sock) == 0)
			break;
		if (waited >= DOCKER_START_MS) {
			log_tail(d->log);
			kill(pid, SIGKILL);
			*what = "the daemon did not answer in time";
			return -ETIMEDOUT;
		}
		sleep_ms(100);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_msg("docker: %s answers on %s after %ld ms", d->argv[0], d->sock,
		(long)((t1.tv_sec - t0.tv_sec) * 1000 +
		       (t1.tv_nsec - t0.tv_nsec) / 1000000));
	return 0;
}

int docker_start(const struct boot_config *cfg, const char **what)
{
	if (!cfg->docker)
		return 0;
	int r;
	if ((r = mount_cgroup2())) {
		*what = "mount cgroup2 at /sys/fs/cgroup";
		return r;
	}
	/* Debian's /var/run; without it dockerd makes a root-only directory
	 * there and clients find no socket at the usual path. */
	if (symlink("/run", "/var/run") < 0 && errno != EEXIST) {
		*what = "/var/run";
		return -errno;
	}
	if ((r = write_daemon_json(cfg))) {
		*what = "/etc/docker/daemon.json";
		return r;
	}
	static char group[16];
	fmt_buf(group, sizeof(group), "%u", (unsigned)cfg->gid);
	const struct daemon daemons[] = {
		{{"/usr/bin/containerd", NULL},
		 "/var/log/containerd.log",
		 "/run/containerd/containerd.sock",
		 sock_connects},
		{{"/usr/sbin/dockerd", "--host", "unix://" DOCKER_SOCK,
		  "--containerd", "/run/containerd/containerd.sock", "--group",
		  group, NULL},
		 DOCKER_LOG,
		 DOCKER_SOCK,
		 docker_ping},
	};
	for (size_t i = 0; i < ARRAY_SIZE(daemons); i++)
		if ((r = start_one(&daemons[i], what)))
			return r;
	/* Records name containers (docker_watch.c); without the watcher
	 * they still carry the source address. */
	if ((r = docker_watch_start()))
		log_msg("docker: container names watcher: %s", strerror(-r));
	return 0;
}

int docker_param(struct boot_config *cfg, const char *key, const char *v,
		 const char **why)
{
	if (!strcmp(key, "docker")) {
		if (strcmp(v, "on") && strcmp(v, "off")) {
			*why = "sandbox.docker must be on or off";
			return -EINVAL;
		}
		cfg->docker = !strcmp(v, "on");
		return 0;
	}
	if (!strcmp(key, "docker_mirror")) {
		/* Goes into daemon.json inside a JSON string: only URL
		 * characters that need no escaping. */
		size_t n = strlen(v);
		int ok = n < sizeof(cfg->docker_mirror) &&
			 (!strncmp(v, "http://", 7) || !strncmp(v, "https://", 8));
		for (size_t i = 0; ok && i < n; i++)
			ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789.-_:/~%", v[i]) != NULL;
		if (!ok) {
			*why = "sandbox.docker_mirror must be an http(s) URL of "
			       "[A-Za-z0-9.-_:/~%], under 256 bytes";
			return -EINVAL;
		}
		memcpy(cfg->docker_mirror, v, n + 1);
		return 0;
	}
	*why = "unknown sandbox.* parameter";
	return -EINVAL;
}
