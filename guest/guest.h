/* sandbox-init: PID 1 of the guest and its forwarders.
 *
 * Boot order (init_main.c): early mounts -> modules -> root filesystem ->
 * switch root -> /etc -> network capture -> forwarders -> control channel.
 * Each step is in its own file; set-up failures call fatal(), which prints
 * the reason on the console and powers the guest off (never hangs).
 */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Guest-side ports (loopback inside the guest; see docs/guest.md). */
#define FWD_TCP_PORT 10800   /* transparent TCP forwarder, all addresses */
#define FWD_PROXY_PORT 3128  /* explicit HTTP proxy forwarder, 127.0.0.1 */
#define FWD_DNS_ADDR "127.0.0.53"
/* Host-side vsock ports (CID 2). */
#define VSOCK_HOST_CID 2
#define VSOCK_PORT_TRANSPARENT 1080
#define VSOCK_PORT_HTTP_PROXY 3128

#define GUEST_ADDR "192.0.2.2"   /* RFC 5737 TEST-NET-1: never a real peer */
#define GUEST_GATEWAY "192.0.2.1"
#define NEWROOT "/newroot"

struct boot_config {
	char workspace[4096]; /* absolute path, same as on the host */
	uid_t uid;            /* the sandbox user */
	gid_t gid;
	char user[33];
	char hostname[65];
	int debug_shell;      /* sandbox.debug=shell */
	char debug_script[4096]; /* sandbox.debug=script:PATH */
	int root_image; /* sandbox.root=image: /usr from the image disk */
	int upper_disk; /* sandbox.upper=disk: the writable layer is a disk */
	/* sandbox.hostpkg=on (host root only): the host's /etc/apt (a copy
	 * without credentials) with its system accounts, and /var/lib/dpkg,
	 * are shared read-only (9p tags hostetc, hostdpkg) as the lower
	 * layers of /etc/apt and /var/lib/dpkg, so dpkg knows what the
	 * shared /usr holds. */
	int host_pkg;
	/* sandbox.wsfs=virtiofs: the workspace is a virtiofs share (tag
	 * "workspace", the launcher's virtiofsd); else 9p. */
	int ws_virtiofs;
	/* sandbox.docker=on: Docker's modules, data root and daemon
	 * (docker.c); sandbox.docker_mirror=URL: a registry mirror. */
	int docker;
	char docker_mirror[256];
};

/* console.c */
void console_setup(void);
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* timing.c: the guest's uptime at the end of a boot step, on the console */
void timing_mark(const char *step);
void fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void fatal_set_shell(int on);
void power_off(void) __attribute__((noreturn));
int run_wait(const char *const argv[]);

/* cmdline.c */
int cmdline_parse(const char *cmdline, struct boot_config *cfg,
		  const char **why);

/* modules.c: dir/load-order, or another list made by build-image.sh;
 * need_disk: also the disk-only modules (virtio_blk, ext4). */
int modules_load(const char *dir, bool need_disk, const char **failed);
int modules_load_list(const char *dir, const char *list_name, bool need_disk,
		      const char **failed);

/* mounts.c */
int mount_early(const char **what);
int root_build(const struct boot_config *cfg, const char **what);
int root_switch(const char **what);

/* rootimg.c: the root image disk (sandbox-launch --image). The launcher
 * gives it this virtio-blk serial (launcher/image.h, ROOTIMG_SERIAL). */
#define ROOTIMG_SERIAL "sandbox-rootimg"
/* /dev/vdX of the virtio disk whose serial is serial; -ENOENT if none. */
int virtio_disk_by_serial(const char *serial, char *dev, size_t size);
/* Where the image is mounted (read-only) while the root is built. */
#define ROOTIMG_DIR "/img"
/* Mount the image read-only at ROOTIMG_DIR; its /usr must exist. */
int rootimg_mount(const char **what);

/* Where the hostetc share (sandbox.hostpkg=on) is mounted while the root
 * is built: apt/ (the lower layer of /etc/apt), passwd and group (the
 * host's system accounts, launcher/host_pkg.h). */
#define HOST_ETC_LOWER "/lower/hostetc"
/* The lower layer of /etc over the host's /usr, shipped in the
 * initramfs: alternatives/, the host's links into /usr. */
#define ETC_LOWER "/lower/etc"

/* docker.c (sandbox.docker=on). The per-run data disk's virtio-blk serial
 * (launcher/docker_disk.c); a named sandbox keeps Docker's data on its
 * writable layer's disk instead. */
#define DOCKER_DISK_SERIAL "sandbox-docker"
int docker_modules(const struct boot_config *cfg, const char **what);
int docker_disk_find(const struct boot_config *cfg, const char **what);
int docker_storage(const struct boot_config *cfg, const char **what);
int docker_start(const struct boot_config *cfg, const char **what);
/* docker_watch.c: the watcher that maps container addresses to names
 * (started by docker_start), and the forwarder's lookup: 1 and the
 * container's short id and name when src is a known container address. */
struct in_addr;
int docker_watch_start(void);
int docker_container_of(const struct in_addr *src, char *id, size_t idsz,
			char *name, size_t namesz);
/* cmdline.c's hook for sandbox.docker and sandbox.docker_mirror. */
int docker_param(struct boot_config *cfg, const char *key, const char *v,
		 const char **why);

/* etc.c */
int etc_write(const struct boot_config *cfg, const char **what);

/* netcap.c */
int netcap_setup(const char **what);

/* relay.c */
int vsock_connect(unsigned int port);
int relay(int a, int b);
int listen_tcp(const char *addr, uint16_t port, int type);

/* fwd_*.c: each runs forever in its own process. */
void fwd_tcp_run(int lfd) __attribute__((noreturn));
void fwd_proxy_run(int lfd) __attribute__((noreturn));
void fwd_dns_run(int udp, int tcp) __attribute__((noreturn));
int forwarders_start(const char **what);
/* forwarders.c: name the process, drop to nobody, die with init. */
void forwarder_become(const char *name);
/* fwd_inbound.c: published ports, host -> guest loopback (vsock 1081). */
int fwd_inbound_start(const char **what);

/* trust_ca.c: take SANDBOX_CA_DER out of a command's environment and
 * install that CA in the guest's trust (docs/secrets.md). 0 when there
 * was none or it is installed; negative errno with *what otherwise. */
struct control_spec;
int guest_ca_take(struct control_spec *spec, const char **what);

/* session.c: serve commands on the control channel, side by side; returns
 * when the first (the sandbox's main command) is done. */
int session_serve(int lfd, const struct boot_config *cfg);

#endif
