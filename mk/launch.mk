# `make bench-launch`: the launcher's own overhead. Wall time of
# `sandbox-launch -- true` (proxy, bridge, QEMU, guest set-up, control
# channel, teardown) against a bare QEMU boot of the same kernel and
# initramfs that powers off as soon as sandbox-init starts (its command line
# lacks sandbox.workspace, so init stops at once). Both under TCG, same
# memory and machine. Uses hyperfine (mk/deps.sh); results in
# build/bench/launch.json and launch.txt. `make bench` may depend on it.
.PHONY: bench-launch

LAUNCH_BENCH_RUNS ?= 5
LAUNCH_BENCH_DIR := build/bench
LAUNCH_BENCH_GUEST := $(abspath build/guest)

bench-launch:
	$(MAKE) BUILD=build SAN=0 build/bin/sandbox-launch build/bin/sandbox-proxy build/bin/sandbox-vsock
	$(MAKE) guest
	@mkdir -p $(LAUNCH_BENCH_DIR)
	@command -v hyperfine >/dev/null || { echo "bench-launch: hyperfine missing: make test-deps" >&2; exit 1; }
	@ws=$$(mktemp -d /tmp/sbx-bench-ws-XXXXXX) && cd $$ws && \
	hyperfine --warmup 1 --runs $(LAUNCH_BENCH_RUNS) --style basic \
		--export-json $(abspath $(LAUNCH_BENCH_DIR))/launch.json \
		-n bare-qemu "qemu-system-x86_64 -M microvm,acpi=on,rtc=on,pit=on,pic=on,memory-backend=mem -accel tcg -cpu max -m 1024M -smp 1 -object memory-backend-memfd,id=mem,size=1024M,share=on -global virtio-mmio.force-legacy=false -nodefaults -no-user-config -no-reboot -display none -serial null -kernel $(LAUNCH_BENCH_GUEST)/vmlinux -initrd $(LAUNCH_BENCH_GUEST)/initramfs.cpio -append 'console=ttyS0 quiet panic=-1 cryptomgr.notests initcall_blacklist=jent_mod_init tsc_early_khz=2000000 lpj=4000000'" \
		-n sandbox-launch "$(abspath build/bin/sandbox-launch) -- true" \
		| tee $(abspath $(LAUNCH_BENCH_DIR))/launch.txt; \
	rc=$$?; cd /; rm -rf $$ws; [ $$rc = 0 ] || exit $$rc
	@/usr/bin/python3 -c 'import json,sys; r={x["command"]:x for x in json.load(open(sys.argv[1]))["results"]}; b=r["bare-qemu"]["median"]; l=r["sandbox-launch"]["median"]; print("bench-launch: median bare QEMU boot %.2f s, sandbox-launch -- true %.2f s, ratio %.2fx (overhead %.2f s)" % (b, l, l/b, l-b))' \
		$(LAUNCH_BENCH_DIR)/launch.json | tee -a $(LAUNCH_BENCH_DIR)/launch.txt
