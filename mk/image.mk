# Root filesystem images for `sandbox-launch --image NAME` (docs/images.md).
#
#   make image              -> build/images/agents.img + agents.json
#   make image IMAGE=test   -> the tiny image the e2e tests boot
#
# Rebuilt only when images/NAME/* or images/build.sh change. The agents
# image needs root (debootstrap, chroot), the Debian mirror and the npm
# registry, and several minutes; `make e2e` (so `make test`) builds it once
# for tests/e2e/test_docker_agents.py and reuses it while images/agents/*
# are unchanged.
IMAGE ?= agents
IMAGES_DIR := build/images

.PHONY: image

image: $(IMAGES_DIR)/$(IMAGE).img

$(IMAGES_DIR)/%.img: images/%/image.conf $$(wildcard images/%/*) images/build.sh
	sh images/build.sh $* $(IMAGES_DIR)

# The e2e tests boot the test image, and Docker's the agents image.
e2e-deps: $(IMAGES_DIR)/test.img $(IMAGES_DIR)/agents.img
