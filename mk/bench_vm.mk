# `make bench-vm`: the VM path (tests/bench/vm_bench.py, one TCG guest boot):
# workspace sharing 9p (mapped-xattr, as the launcher uses) vs virtiofs on
# git status / find / tar -xf / rm -rf of a few thousand files, with a host
# baseline; guest-to-host download over vsock + sandbox-proxy vs QEMU
# user-mode networking. Results: build/bench/vm.txt and vm.json.
# Then tests/bench/ws_bench.py: the launcher's own workspace share as an
# ordinary user, virtiofs and 9p, 5,000 files against the guest's tmpfs in
# the same boot, and the 9p host /usr (build/bench/ws.txt, ws.json).
# Then tests/bench/vsock_dl.py: the download alone, vsock and user-net
# rounds alternating in one boot, under TCG and, where a probe shows KVM
# runs a guest, under KVM too (else one line says why not); vsock.txt.
# `make bench` runs it and bench-launch (mk/launch.mk) too.
.PHONY: bench-vm

bench: bench-vm bench-launch

bench-vm:
	$(MAKE) BUILD=build SAN=0 build/bin/sandbox-proxy build/bin/sandbox-vsock \
		build/bin/sandbox-launch
	$(MAKE) guest
	SANDBOX_BUILD=$(abspath build) SANDBOX_SRC=$(CURDIR) \
		timeout 480 /usr/bin/python3 tests/bench/vm_bench.py
	SANDBOX_BUILD=$(abspath build) SANDBOX_SRC=$(CURDIR) \
		timeout 3600 /usr/bin/python3 tests/bench/ws_bench.py
	SANDBOX_BUILD=$(abspath build) SANDBOX_SRC=$(CURDIR) BENCH_ACCEL=both \
		BENCH_VM_BYTES=$$((128 << 20)) BENCH_VM_TIMEOUT=900 \
		timeout 2000 /usr/bin/python3 tests/bench/vsock_dl.py
