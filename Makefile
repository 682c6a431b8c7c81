# Build, test, fuzz and benchmark everything.
#
#   make          build every program into build/bin/
#   make deps     install the Debian packages building and running need
#   make test-deps  ... and those the tests and benchmarks need (idempotent)
#   make install  PREFIX=/usr/local (or ~/.local), DESTDIR: see mk/install.mk
#   make test     test-deps + sanitizer build + unit, fuzz-corpus replay,
#                 integration and end-to-end tests
#   make fuzz     run every libFuzzer harness for FUZZ_SECONDS each
#   make bench    run the benchmarks (prints tables with ratios)
#
# Sources are picked up by directory, so adding a module needs no edit here:
#   <dir>/*.c for each of LIBDIRS (layout: docs/design.md) -> one library each
#   <dir>/main.c                                     -> programs (PROGRAM_TABLE)
#   tests/unit/test_*.c                              -> TAP unit tests
#   tests/tools/*.c                                  -> test helper programs
# Extra rules live in mk/*.mk (fuzzing, guest image, benchmarks).

CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif
# SAN=1: ASan+UBSan (the test build); SAN=thread: ThreadSanitizer, for the
# proxy's threads (build/tsan; docs/design.md, "Threads in sandbox-proxy").
SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build/san
else ifeq ($(SAN),thread)
BUILD ?= build/tsan
else
BUILD ?= build
endif

PKGS := libevent libevent_openssl libevent_pthreads openssl libcares yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes \
	-Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral -Wvla \
	-Wimplicit-fallthrough
CFLAGS_BASE := -std=gnu11 -g -D_GNU_SOURCE $(WARN) -fstack-protector-strong \
	-fno-strict-aliasing -MMD -MP $(PKG_CFLAGS)
ifeq ($(SAN),1)
CFLAGS_BASE += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
LDFLAGS_BASE := -fsanitize=address,undefined
else ifeq ($(SAN),thread)
# -Wno-tsan: parse/vring.c's fences order accesses to guest memory, shared
# with another process, which ThreadSanitizer does not model anyway.
CFLAGS_BASE += -O1 -fno-omit-frame-pointer -fsanitize=thread -Wno-tsan
LDFLAGS_BASE := -fsanitize=thread
else
CFLAGS_BASE += -O2 -D_FORTIFY_SOURCE=2
LDFLAGS_BASE :=
endif
ALL_CFLAGS = $(CFLAGS_BASE) $(CFLAGS)
ALL_LDFLAGS = $(LDFLAGS_BASE) $(LDFLAGS)

OBJ := $(BUILD)/obj

# Keep libraries and objects that pattern rules made (no rebuild churn).
.SECONDARY:

.SECONDEXPANSION:

# --- libraries --------------------------------------------------------------
lib_srcs = $(filter-out $(1)/main.c $(1)/%_main.c,$(wildcard $(1)/*.c))
lib_objs = $(patsubst %.c,$(OBJ)/%.o,$(call lib_srcs,$(1)))

LIBDIRS := common parse auditlog policy proxy vsock launcher audit
LIBS := $(foreach d,$(LIBDIRS),$(if $(call lib_srcs,$(d)),$(BUILD)/lib$(d).a))
# Link order: most dependent first.
LINK_LIBS := $(filter $(BUILD)/libaudit.a,$(LIBS)) \
	$(filter $(BUILD)/liblauncher.a,$(LIBS)) \
	$(filter $(BUILD)/libvsock.a,$(LIBS)) \
	$(filter $(BUILD)/libproxy.a,$(LIBS)) \
	$(filter $(BUILD)/libauditlog.a,$(LIBS)) \
	$(filter $(BUILD)/libpolicy.a,$(LIBS)) \
	$(filter $(BUILD)/libparse.a,$(LIBS)) \
	$(filter $(BUILD)/libcommon.a,$(LIBS))

$(BUILD)/lib%.a: $$(call lib_objs,$$*)
	@mkdir -p $(dir $@)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)ar rcs $@ $^

# V=1 shows full command lines.
ifeq ($(V),1)
Q :=
else
Q := @
endif

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# --- programs ---------------------------------------------------------------
# name:main-source pairs; a program is built when its main source exists.
PROGRAM_TABLE := sandbox-proxy:proxy/main.c \
	sandbox-policy:policy/main.c \
	sandbox-launch:launcher/main.c \
	sandbox-vsock:vsock/main.c \
	sandbox-audit:audit/main.c
PROGRAMS := $(foreach p,$(PROGRAM_TABLE),$(if $(wildcard $(word 2,$(subst :, ,$(p)))),$(word 1,$(subst :, ,$(p)))))
BINS := $(addprefix $(BUILD)/bin/,$(PROGRAMS))
main_of = $(word 2,$(subst :, ,$(filter $(1):%,$(PROGRAM_TABLE))))

$(BUILD)/bin/%: $(OBJ)/$$(basename $$(call main_of,$$*)).o $(LINK_LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LINK_LIBS) $(PKG_LIBS) $(LDLIBS)

# --- tests and tools --------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/test/%,$(UNIT_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

# What every unit test links: the TAP producer, the policy-file helpers and
# the fuzz-corpus loader.
UNIT_COMMON := $(OBJ)/tests/unit/tap.o $(OBJ)/tests/unit/policy_files.o \
	       $(OBJ)/tests/unit/corpus.o

$(BUILD)/test/%: $(OBJ)/tests/unit/%.o $(UNIT_COMMON) $(LINK_LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(UNIT_COMMON) $(LINK_LIBS) $(PKG_LIBS) $(LDLIBS)

# LD_PRELOAD shims that make libevent behave as other versions do, for
# the integration tests (tests/preload/, no sanitizers: loaded into them).
PRELOAD_SRCS := $(wildcard tests/preload/*.c)
PRELOAD_SOS := $(patsubst tests/preload/%.c,$(BUILD)/tools/%.so,$(PRELOAD_SRCS))

$(BUILD)/tools/%.so: tests/preload/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  SO      $@")
	$(Q)$(CC) -std=gnu11 -g -D_GNU_SOURCE $(WARN) $(PKG_CFLAGS) -fPIC -shared \
		-o $@ $< -ldl

# Sources several tools share (tests/tools/lib/), linked into each tool.
TOOL_LIB_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(wildcard tests/tools/lib/*.c))

$(BUILD)/tools/%: $(OBJ)/tests/tools/%.o $(TOOL_LIB_OBJS) $(LINK_LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(TOOL_LIB_OBJS) $(LINK_LIBS) $(PKG_LIBS) $(LDLIBS)

# --- top-level targets ------------------------------------------------------
.PHONY: all deps test-deps test unit integration e2e e2e-deps check-banned check-includes clean tests-build format

all: $(BINS)

tests-build: all $(UNIT_BINS) $(TOOL_BINS) $(PRELOAD_SOS)

deps:
	sh mk/deps.sh run

test-deps:
	sh mk/deps.sh test

# The whole suite, as CI runs it. Each stage is its own make invocation so
# that `make unit` etc. can be run alone. Builds (the sanitizer build, the
# fuzzers, and what the e2e tests boot: the release build, the guest, the
# man pages, the test and agents images) run TEST_JOBS at a time; the tests
# themselves run one stage at a time, so no stage's load skews another's.
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test: test-deps
	$(MAKE) check-banned
	$(MAKE) check-includes
	$(MAKE) -j$(TEST_JOBS) SAN=1 tests-build
	$(MAKE) SAN=1 unit
	$(MAKE) -j$(TEST_JOBS) fuzz-replay
	$(MAKE) SAN=1 integration
	$(MAKE) -j$(TEST_JOBS) e2e-deps
	$(MAKE) e2e

unit: tests-build
	prove --exec '' $(UNIT_BINS)

PYTEST := /usr/bin/python3 -m pytest -q -p no:cacheprovider
integration: tests-build
	SANDBOX_BUILD=$(abspath $(BUILD)) SANDBOX_SRC=$(CURDIR) \
		$(PYTEST) tests/integration

# e2e-deps: everything the e2e tests need built (the mk/*.mk files add the
# guest, the man pages and the images), without running them.
e2e-deps: tests-build
e2e: e2e-deps
	SANDBOX_BUILD=$(abspath $(BUILD)) SANDBOX_SRC=$(CURDIR) \
		$(PYTEST) --durations=12 tests/e2e

# No sprintf, strcpy, strcat, gets anywhere in our C.
check-banned:
	@if grep -nE '(^|[^a-z_])(sprintf|vsprintf|strcpy|strcat|gets)[[:space:]]*\(' \
		$$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]'); then \
		echo "check-banned: use snprintf/fmt_buf/memcpy with explicit sizes" >&2; exit 1; \
	else echo "check-banned: ok"; fi

# Every #include follows the folder graph written in docs/design.md.
check-includes:
	@/usr/bin/python3 tests/check_includes.py $(CURDIR)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include mk/*.mk
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
