/* The QEMU command line for one sandbox (pure: config in, argv out).
 *
 * - microvm with ACPI: Debian's kernel finds virtio-mmio devices only
 *   through ACPI (no CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES).
 * - Guest RAM is a shared memfd: the vhost-user bridge maps it.
 * - virtio-mmio.force-legacy=false: vhost-user-vsock needs virtio 1.0.
 * - Under TCG, tsc_early_khz/lpj: without them about one boot in three
 *   hangs after "tsc: Marking TSC unstable".
 * - 9p shares (guest/mounts.c): host /usr read-only (QEMU refuses writes,
 *   whatever the guest remounts), the workspace with mapped-xattr so that
 *   guest-made owners, modes, setuid bits and device nodes stay in xattrs
 *   and the host sees plain files of the invoking user; or, where the
 *   launcher could start virtiofsd (launcher/virtiofs.h), the workspace
 *   over virtiofs.
 * - -no-reboot plus panic=-1: a guest panic ends QEMU instead of looping.
 * - cryptomgr.notests: the kernel's self-tests of its crypto algorithms
 *   took 0.3-0.9 s of a TCG boot; the guest's TLS is user space, and
 *   nothing the host trusts rests on the guest kernel's crypto.
 * - initcall_blacklist=jent_mod_init: Linux 6.12 (bookworm-backports) has
 *   the jitter entropy RNG built in, and its start-up health test took
 *   0.27 s of a TCG boot (a module in 6.1, never loaded). Only the crypto
 *   API's DRBG seeds from it, and goes on without it outside FIPS mode;
 *   the guest's getrandom() does not use it.
 * - --image: a read-only virtio-blk disk replaces the host /usr share.
 */
#include "launch.h"

#include <string.h>

#include "../common/util.h"
#include "image.h"

/* The TCG guest's CPU: QEMU's "max" without ERMS and FSRM, so the guest
 * kernel copies with `rep movsq` or plain moves, not `rep movsb`. */
#define TCG_CPU "max,erms=off,fsrm=off"

const char *qemu_workspace_problem(const char *p)
{
	static const char *const reserved[] = {"/usr", "/etc", "/proc", "/sys",
					       "/dev", "/bin", "/sbin", "/lib",
					       "/lib64", "/lib32"};
	if (p[0] != '/' || p[1] == '\0')
		return "must be an absolute path other than /";
	if (strlen(p) > 2048)
		return "path is too long";
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == '"' || *c == 0x7f)
			return "path contains a space, quote or control "
			       "character, which the kernel command line "
			       "cannot carry";
	for (size_t i = 0; i < ARRAY_SIZE(reserved); i++) {
		size_t l = strlen(reserved[i]);
		if (!strncmp(p, reserved[i], l) && (p[l] == '/' || !p[l]))
			return "is inside a directory the guest builds itself "
			       "(/usr, /etc, /proc, /sys, /dev, /bin, /sbin, /lib)";
	}
	return NULL;
}

/* QEMU option values separate with ',' and escape it as ",,". */
static char *qemu_escape(const char *s)
{
	size_t n = strlen(s), commas = 0;
	for (size_t i = 0; i < n; i++)
		commas += s[i] == ',';
	char *out = malloc(n + commas + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		*o++ = s[i];
		if (s[i] == ',')
			*o++ = ',';
	}
	*o = '\0';
	return out;
}

/* The root image (--image): QEMU opens it read-only, so the guest cannot
 * change it even as root; the serial is how sandbox-init finds it among
 * other disks. Shared locks let several sandboxes use one image. */
static int root_image_args(const char *path, struct strv *a)
{
	_cleanup_free_ char *img = qemu_escape(path);
	if (!img)
		return -ENOMEM;
	strv_add(a, "-drive");
	strv_addf(a, "file=%s,if=none,format=raw,readonly=on,id=rootimg", img);
	strv_add(a, "-device");
	strv_add(a, "virtio-blk-device,drive=rootimg,serial=" ROOTIMG_SERIAL);
	return 0;
}

int qemu_cmd_build(const struct qemu_config *c, struct strv *a)
{
	int r;
	if (qemu_workspace_problem(c->workspace) || !c->memory_mb || !c->cpus)
		return -EINVAL;
	_cleanup_free_ char *ws = qemu_escape(c->workspace);
	_cleanup_free_ char *vs = qemu_escape(c->vhost_sock);
	_cleanup_free_ char *con = qemu_escape(c->console_log);
	_cleanup_free_ char *kernel = qemu_escape(c->kernel);
	_cleanup_free_ char *initrd = qemu_escape(c->initrd);
	if (!ws || !vs || !con || !kernel || !initrd)
		return -ENOMEM;
	bool host_pkg = !c->root_image && c->host_etc && c->host_dpkg;

	strv_add(a, c->qemu);
	strv_add(a, "-M");
	strv_add(a, "microvm,acpi=on,rtc=on,pit=on,pic=on,memory-backend=mem");
	strv_add(a, "-accel");
	strv_add(a, c->accel == ACCEL_KVM ? "kvm" : "tcg");
	strv_add(a, "-cpu");
	/* TCG runs `rep movsb` one byte per loop (5-12x slower than `rep
	 * movsq`, tests/bench/tcg_copy.c); with ERMS/FSRM advertised the
	 * guest kernel copies with it. */
	strv_add(a, c->accel == ACCEL_KVM ? "host" : TCG_CPU);
	strv_add(a, "-m");
	strv_addf(a, "%uM", c->memory_mb);
	strv_add(a, "-smp");
	strv_addf(a, "%u", c->cpus);
	strv_add(a, "-object");
	strv_addf(a, "memory-backend-memfd,id=mem,size=%uM,share=on",
		  c->memory_mb);
	strv_add(a, "-global");
	strv_add(a, "virtio-mmio.force-legacy=false");
	strv_add(a, "-nodefaults");
	strv_add(a, "-no-user-config");
	strv_add(a, "-no-reboot");
	strv_add(a, "-display");
	strv_add(a, "none");
	strv_add(a, "-chardev");
	strv_addf(a, "file,id=con,path=%s", con);
	strv_add(a, "-serial");
	strv_add(a, "chardev:con");
	strv_add(a, "-kernel");
	strv_add(a, kernel);
	strv_add(a, "-initrd");
	strv_add(a, initrd);
	strv_add(a, "-append");
	strv_addf(a,
		  "console=ttyS0 quiet panic=-1 cryptomgr.notests "
		  "initcall_blacklist=jent_mod_init%s%s "
		  "sandbox.workspace=%s "
		  "sandbox.uid=%u sandbox.gid=%u sandbox.hostname=%s%s%s%s%s%s%s",
		  c->accel == ACCEL_TCG ? " tsc_early_khz=2000000 lpj=4000000"
					: "",
		  c->root_image ? " sandbox.root=image" : "",
		  c->workspace, c->uid, c->gid, c->hostname,
		  c->upper_disk ? " sandbox.upper=disk" : "",
		  host_pkg ? " sandbox.hostpkg=on" : "",
		  c->virtiofs_sock ? " sandbox.wsfs=virtiofs" : "",
		  c->docker ? " sandbox.docker=on" : "",
		  c->docker && c->registry_mirror ? " sandbox.docker_mirror="
						  : "",
		  c->docker && c->registry_mirror ? c->registry_mirror : "");
	if (c->root_image) {
		if ((r = root_image_args(c->root_image, a)))
			return r;
	} else {
		strv_add(a, "-fsdev");
		strv_add(a, "local,id=usr,path=/usr,security_model=none,"
			    "readonly=on");
		strv_add(a, "-device");
		strv_add(a, "virtio-9p-device,fsdev=usr,mount_tag=hostusr");
	}
	if (host_pkg) {
		/* Read-only like /usr: QEMU refuses writes, whatever the
		 * guest mounts. */
		_cleanup_free_ char *etc = qemu_escape(c->host_etc);
		_cleanup_free_ char *dpkg = qemu_escape(c->host_dpkg);
		if (!etc || !dpkg)
			return -ENOMEM;
		strv_add(a, "-fsdev");
		strv_addf(a, "local,id=etc,path=%s,security_model=none,"
			     "readonly=on", etc);
		strv_add(a, "-device");
		strv_add(a, "virtio-9p-device,fsdev=etc,mount_tag=hostetc");
		strv_add(a, "-fsdev");
		strv_addf(a, "local,id=dpkg,path=%s,security_model=none,"
			     "readonly=on", dpkg);
		strv_add(a, "-device");
		strv_add(a, "virtio-9p-device,fsdev=dpkg,mount_tag=hostdpkg");
	}
	if (c->virtiofs_sock) {
		_cleanup_free_ char *fs = qemu_escape(c->virtiofs_sock);
		if (!fs)
			return -ENOMEM;
		strv_add(a, "-chardev");
		strv_addf(a, "socket,id=wsfs,path=%s", fs);
		strv_add(a, "-device");
		strv_add(a, "vhost-user-fs-device,chardev=wsfs,tag=workspace");
	} else {
		strv_add(a, "-fsdev");
		strv_addf(a, "local,id=ws,path=%s,security_model=mapped-xattr",
			  ws);
		strv_add(a, "-device");
		strv_add(a, "virtio-9p-device,fsdev=ws,mount_tag=workspace");
	}
	if (c->upper_disk) {
		/* A named sandbox's writable layer (sandbox.upper=disk). */
		_cleanup_free_ char *up = qemu_escape(c->upper_disk);
		if (!up)
			return -ENOMEM;
		strv_add(a, "-drive");
		strv_addf(a, "file=%s,if=none,format=raw,id=upper,"
			     "discard=unmap",
			  up);
		strv_add(a, "-device");
		strv_add(a, "virtio-blk-device,drive=upper,serial=sandbox-upper");
	}
	if (c->docker && c->docker_disk) {
		/* Docker's per-run data root (guest/docker.c). */
		_cleanup_free_ char *dd = qemu_escape(c->docker_disk);
		if (!dd)
			return -ENOMEM;
		strv_add(a, "-drive");
		strv_addf(a, "file=%s,if=none,format=raw,id=docker,"
			     "discard=unmap",
			  dd);
		strv_add(a, "-device");
		strv_add(a, "virtio-blk-device,drive=docker,"
			    "serial=sandbox-docker");
	}
	strv_add(a, "-chardev");
	strv_addf(a, "socket,id=vs,path=%s", vs);
	strv_add(a, "-device");
	strv_add(a, "vhost-user-vsock-device,chardev=vs");
	return a->failed ? -ENOMEM : 0;
}
