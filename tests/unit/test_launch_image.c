/* sandbox-launch --image: option parsing, NAME/PATH resolution and the
 * QEMU arguments for a root image. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../launcher/image.h"
#include "../../launcher/launch.h"
#include "tap.h"

static bool has(const struct strv *a, const char *s)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->v[i], s))
			return true;
	return false;
}

static const char *after(const struct strv *a, const char *opt)
{
	for (size_t i = 0; i + 1 < a->n; i++)
		if (!strcmp(a->v[i], opt))
			return a->v[i + 1];
	return "";
}

/* A file of size bytes with the ext4 magic, or without it. */
static void make_file(const char *path, bool ext4)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char block[4096] = {0};
	if (ext4) {
		block[1024 + 56] = 0x53;
		block[1024 + 57] = (char)0xef;
	}
	if (fd < 0 || write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
		abort();
	close(fd);
}

int main(void)
{
	char dir[] = "/tmp/test_launch_image.XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char good[256], bad[256], out[4096], err[512], want[4096];
	snprintf(good, sizeof(good), "%s/good.img", dir);
	snprintf(bad, sizeof(bad), "%s/bad.img", dir);
	make_file(good, true);
	make_file(bad, false);

	ok(image_arg_is_path("./x") && image_arg_is_path("x.img") &&
		   image_arg_is_path("/a/b"),
	   "paths: a slash or .img");
	ok(!image_arg_is_path("agents") && !image_arg_is_path("img"),
	   "names otherwise");

	is_int(image_resolve("good", dir, out, sizeof(out), err, sizeof(err)), 0,
	       "NAME resolves in the images dir");
	ok(realpath(good, want) && !strcmp(out, want), "to an absolute path");
	is_int(image_resolve(good, "/nonexistent", out, sizeof(out), err,
			     sizeof(err)),
	       0, "PATH used as is");
	is_int(image_resolve("agents", dir, out, sizeof(out), err, sizeof(err)),
	       -ENOENT, "missing agents image");
	ok(!strncmp(err, "image 'agents' not built: run make image (", 42),
	   "says to run make image: %s", err);
	is_int(image_resolve("other", dir, out, sizeof(out), err, sizeof(err)),
	       -ENOENT, "missing named image");
	ok(strstr(err, "run make image IMAGE=other") != NULL, "with its name");
	is_int(image_resolve("bad", dir, out, sizeof(out), err, sizeof(err)),
	       -EINVAL, "not ext4");
	ok(strstr(err, "is not an ext4 filesystem image") != NULL, "%s", err);
	is_int(image_resolve(dir, dir, out, sizeof(out), err, sizeof(err)),
	       -EINVAL, "a directory");
	ok(strstr(err, "not a regular file") != NULL, "%s", err);
	is_int(image_resolve("/nonexistent/x.img", dir, out, sizeof(out), err,
			     sizeof(err)),
	       -ENOENT, "missing PATH");
	is_str(err, "image /nonexistent/x.img: No such file or directory",
	       "names the path");
	ok(image_resolve("a b", dir, out, sizeof(out), err, sizeof(err)) ==
			   -EINVAL &&
		   strstr(err, "--image a b") != NULL,
	   "bad NAME");

	struct launch_opts o;
	char *argv[] = {"sandbox-launch", "--image", "agents", "--", "true", NULL};
	is_int(launch_opts_parse(5, argv, &o, err, sizeof(err)), LAUNCH_OPTS_OK,
	       "--image parses");
	is_str(o.image, "agents", "--image value");
	launch_opts_free(&o);
	char *argv2[] = {"sandbox-launch", "--image", "", "--", "true", NULL};
	is_int(launch_opts_parse(5, argv2, &o, err, sizeof(err)),
	       LAUNCH_OPTS_USAGE, "--image '' refused");
	launch_opts_free(&o);

	struct qemu_config qc = {
		.qemu = "qemu-system-x86_64", .kernel = "/g/vmlinuz",
		.initrd = "/g/initramfs.cpio", .workspace = "/home/u/ws",
		.vhost_sock = "/run/s/vhost.sock", .console_log = "/r/console.log",
		.hostname = "box", .accel = ACCEL_TCG, .memory_mb = 512, .cpus = 1,
		.uid = 1001, .gid = 1002, .root_image = "/i/a,b.img",
	};
	struct strv a = {0};
	is_int(qemu_cmd_build(&qc, &a), 0, "command line with an image");
	is_str(after(&a, "-drive"),
	       "file=/i/a,,b.img,if=none,format=raw,readonly=on,id=rootimg",
	       "read-only drive, comma escaped");
	ok(has(&a, "virtio-blk-device,drive=rootimg,serial=" ROOTIMG_SERIAL),
	   "virtio-blk with the serial init looks for");
	ok(strstr(after(&a, "-append"), " sandbox.root=image ") != NULL,
	   "sandbox.root=image on the kernel command line");
	ok(!has(&a, "virtio-9p-device,fsdev=usr,mount_tag=hostusr"),
	   "host /usr not shared");
	strv_free(&a);
	qc.root_image = NULL;
	is_int(qemu_cmd_build(&qc, &a), 0, "command line without");
	ok(has(&a, "virtio-9p-device,fsdev=usr,mount_tag=hostusr") &&
		   !strstr(after(&a, "-append"), "sandbox.root"),
	   "host /usr shared, no sandbox.root");
	strv_free(&a);

	unlink(good);
	unlink(bad);
	rmdir(dir);
	done_testing();
}
