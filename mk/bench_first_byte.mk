# `make bench-first-byte`: time to a server's banner for a silent client,
# directly and through sandbox-proxy (wire path and CONNECT), as ratios in
# one run (tests/bench/first_byte_bench.py). Release binaries. Result:
# build/bench/first_byte.txt. `make bench` runs it too.
.PHONY: bench-first-byte

bench: bench-first-byte

bench-first-byte:
	$(MAKE) BUILD=$(BENCH_BUILD) SAN=0 all tests-build
	SANDBOX_BUILD=$(abspath $(BENCH_BUILD)) /usr/bin/python3 tests/bench/first_byte_bench.py
