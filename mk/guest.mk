# The guest: sandbox-init (static) and the kernel + initramfs built from
# Debian packages by guest/build-image.sh.
#
#   make guest   -> build/guest/vmlinuz, vmlinux, initramfs.cpio, kernel-version
#
# Rebuilt only when an input changes: the guest sources, the build script,
# the kernel package version linux-image-amd64 points at (recorded in
# build/guest/kernel-pkg, rewritten only when it differs), or the host's
# alternatives (build/guest/alternatives, likewise).
#
# GUEST_KERNEL_SUITE: the Debian suite whose linux-image-amd64 the guest
# boots. bookworm resolves it from the host's apt cache; any other suite
# from a private apt configuration in build/guest/apt-SUITE
# (guest/kernel-apt.sh), its lists fetched when missing or more than a
# day old; `make guest-refresh` fetches them now.
GUEST_KERNEL_SUITE ?= bookworm-backports
GUEST_DIR := build/guest
GUEST_CC ?= gcc
GUEST_SRCS := $(wildcard guest/*.c) common/util.c parse/wire.c parse/cmd_channel.c parse/inbound.c
GUEST_HDRS := $(wildcard guest/*.h) common/util.h parse/wire.h parse/cmd_channel.h parse/inbound.h
GUEST_CFLAGS := -std=gnu11 -O2 -g0 -D_GNU_SOURCE $(WARN) -static \
	-fstack-protector-strong -fno-strict-aliasing

.PHONY: guest guest-init guest-refresh FORCE_KPKG

guest: $(GUEST_DIR)/vmlinuz $(GUEST_DIR)/vmlinux $(GUEST_DIR)/initramfs.cpio \
	$(GUEST_DIR)/kernel-version

guest-init: $(GUEST_DIR)/sandbox-init

$(GUEST_DIR)/sandbox-init: $(GUEST_SRCS) $(GUEST_HDRS) mk/guest.mk
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -o $@ $(GUEST_SRCS)

$(GUEST_DIR)/kernel-pkg: FORCE_KPKG
	@mkdir -p $(dir $@)
	@sh guest/kernel-pkg.sh $(GUEST_KERNEL_SUITE) $(GUEST_DIR)/apt-$(GUEST_KERNEL_SUITE) >$@.new && \
		{ cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@; }

# The host's /etc/alternatives links into /usr (guest/alternatives.sh),
# checked on every make like the kernel package.
$(GUEST_DIR)/alternatives: FORCE_KPKG
	@mkdir -p $(dir $@)
	@sh guest/alternatives.sh >$@.new && \
		{ cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@; }

$(GUEST_DIR)/initramfs.cpio: $(GUEST_DIR)/sandbox-init $(GUEST_DIR)/kernel-pkg \
		$(GUEST_DIR)/alternatives guest/build-image.sh guest/alternatives.sh \
		guest/kernel-elf.sh guest/module-unsign.sh guest/kernel-apt.sh
	sh guest/build-image.sh $(GUEST_DIR) $(GUEST_DIR)/sandbox-init

$(GUEST_DIR)/vmlinuz $(GUEST_DIR)/vmlinux $(GUEST_DIR)/kernel-version: $(GUEST_DIR)/initramfs.cpio
	@test -f $@

guest-refresh:
	rm -f $(GUEST_DIR)/apt-$(GUEST_KERNEL_SUITE)/updated
	$(MAKE) guest

# The end-to-end tests boot this image.
e2e-deps: guest
