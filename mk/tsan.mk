# `make tsan`: the proxy and the test tools built with ThreadSanitizer
# (SAN=thread, build/tsan) and the integration tests that drive the
# proxy's threads (its event loops, --workers, and the audit writer;
# docs/design.md, "Threads in sandbox-proxy"). The proxy runs one worker
# per CPU unless a test says otherwise; test_workers.py runs four. A ThreadSanitizer warning on the proxy's
# stderr fails the test that started it (tests/integration/sbxtest).
.PHONY: tsan

TSAN_BUILD := build/tsan
TSAN_TESTS ?= tests/integration/test_wire_path.py \
	tests/integration/test_explicit_proxy.py \
	tests/integration/test_dns_cache.py \
	tests/integration/test_control_socket.py \
	tests/integration/test_workers.py \
	tests/integration/test_lifecycle.py

tsan:
	$(MAKE) SAN=thread BUILD=$(TSAN_BUILD) $(TSAN_BUILD)/bin/sandbox-proxy \
		$(patsubst $(BUILD)/%,$(TSAN_BUILD)/%,$(TOOL_BINS))
	SANDBOX_BUILD=$(abspath $(TSAN_BUILD)) SANDBOX_SRC=$(CURDIR) \
		$(PYTEST) $(TSAN_TESTS)
