# libFuzzer harnesses: tests/fuzz/fuzz_NAME.c with a seed corpus in
# tests/fuzz/corpus/NAME/. Each harness also replays files given on its
# command line (libFuzzer does that), which is how `fuzz-replay` runs the
# corpus as a regression test inside `make test`.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_CC ?= clang-14
FUZZ_SECONDS ?= 20
FUZZ_BUILD := build/fuzz

.PHONY: fuzz fuzz-build fuzz-replay fuzz-bins

fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) SAN=0 CC=$(FUZZ_CC) \
		CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -Wno-unused-command-line-argument" \
		fuzz-bins

fuzz-bins: $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_NAMES))

# Harnesses of parse/ link libparse.a and libcommon.a alone, with no
# libevent, OpenSSL, c-ares or libyaml: the linker proves those parsers pure.
FUZZ_PARSE_ONLY := boot_timing cmd_channel dns_msg http_req inbound secret_subst tls_hello tls_server_hello vhost_user vring wire
fuzz_libs = $(if $(filter $(1),$(FUZZ_PARSE_ONLY)),$(BUILD)/libparse.a $(BUILD)/libcommon.a,$(LINK_LIBS) $(PKG_LIBS))
# (A variable: a % written in the prerequisites would be taken for the stem.)
fuzz_deps = $(filter %.a,$(call fuzz_libs,$(1)))

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(call fuzz_deps,$$*)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(call fuzz_libs,$*)

# Run every harness over its checked-in corpus once (fast, deterministic).
fuzz-replay: fuzz-build
	@set -e; for n in $(FUZZ_NAMES); do \
		echo "fuzz-replay: $$n"; \
		$(FUZZ_BUILD)/fuzz/fuzz_$$n -runs=0 tests/fuzz/corpus/$$n >$(FUZZ_BUILD)/replay_$$n.log 2>&1 \
			|| { tail -40 $(FUZZ_BUILD)/replay_$$n.log; exit 1; }; \
	done; echo "fuzz-replay: ok ($(words $(FUZZ_NAMES)) harnesses)"

# Mutate for FUZZ_SECONDS per harness; new inputs go to build/fuzz/work/NAME.
fuzz: fuzz-build
	@set -e; for n in $(FUZZ_NAMES); do \
		mkdir -p $(FUZZ_BUILD)/work/$$n; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		$(FUZZ_BUILD)/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/work/$$n- \
			$(FUZZ_BUILD)/work/$$n tests/fuzz/corpus/$$n 2>&1 | tail -12; \
	done
