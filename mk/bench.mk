# `make bench`: the egress-proxy benchmark (tests/bench/proxy_bench.py) and,
# when the policy engineer's tool is built, the policy-engine benchmark.
# Always measures release binaries, whatever BUILD/SAN the caller uses.
# Results: build/bench/proxy.txt and proxy.json (see tests/bench/README.md).
.PHONY: bench bench-proxy bench-policy bench-secrets

BENCH_BUILD := build

bench:
	$(MAKE) BUILD=$(BENCH_BUILD) SAN=0 all tests-build
	$(MAKE) BUILD=$(BENCH_BUILD) SAN=0 bench-proxy bench-policy bench-secrets

# Interception cost: intercepted vs spliced HTTPS and vs Squid ssl_bump bump
# (squid-openssl, mk/deps.sh; docs/secrets.md, tests/bench/README.md).
bench-secrets:
	SANDBOX_BUILD=$(abspath $(BENCH_BUILD)) /usr/bin/python3 tests/bench/secrets_bench.py

bench-proxy:
	SANDBOX_BUILD=$(abspath $(BENCH_BUILD)) /usr/bin/python3 tests/bench/proxy_bench.py

bench-policy:
	@if [ -x $(BENCH_BUILD)/tools/policy_bench ]; then \
		echo "=== policy engine ($(BENCH_BUILD)/tools/policy_bench)"; \
		mkdir -p build/bench; \
		$(BENCH_BUILD)/tools/policy_bench >build/bench/policy.txt; rc=$$?; \
		cat build/bench/policy.txt; exit $$rc; \
	else \
		echo "bench: $(BENCH_BUILD)/tools/policy_bench not built, policy benchmark skipped"; \
	fi
