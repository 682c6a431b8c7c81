# `make bench-vm`: the VM path (tests/bench/vm_bench.py, one TCG guest boot):
# workspace sharing 9p (mapped-xattr, as the launcher uses) vs virtiofs on
# git status / find / tar -xf / rm -rf of a few thousand files, with a host
# baseline; guest-to-host download over vsock + sandbox-proxy vs QEMU
# user-mode networking. Results: build/bench/vm.txt and vm.json.
# `make bench` runs it and bench-launch (mk/launch.mk) too.
.PHONY: bench-vm

bench: bench-vm bench-launch

bench-vm:
	$(MAKE) BUILD=build SAN=0 build/bin/sandbox-proxy build/bin/sandbox-vsock
	$(MAKE) guest
	SANDBOX_BUILD=$(abspath build) SANDBOX_SRC=$(CURDIR) \
		timeout 480 /usr/bin/python3 tests/bench/vm_bench.py
