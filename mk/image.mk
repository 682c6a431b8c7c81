# Root filesystem images for `sandbox-launch --image NAME` (docs/images.md).
#
#   make image              -> build/images/agents.img + agents.json
#   make image IMAGE=test   -> the tiny image the e2e tests boot
#
# Rebuilt only when images/NAME/* or images/build.sh change. The agents
# image needs root (debootstrap, chroot) and several minutes; it is not part
# of `make test`.
IMAGE ?= agents
IMAGES_DIR := build/images

.PHONY: image

image: $(IMAGES_DIR)/$(IMAGE).img

$(IMAGES_DIR)/%.img: images/%/image.conf $$(wildcard images/%/*) images/build.sh
	sh images/build.sh $* $(IMAGES_DIR)

# The e2e tests boot the test image.
e2e: $(IMAGES_DIR)/test.img
