# `make install` / `make uninstall`: the programs, their man pages, the
# presets and agent descriptors, and the guest kernel + initramfs, laid
# out where the programs find them with no environment set
# (common/datadir.h):
#
#   $(PREFIX)/bin/sandbox-{launch,proxy,policy,audit,vsock}
#   $(PREFIX)/share/sandbox/policies/   presets, agents/, examples/
#   $(PREFIX)/share/sandbox/guest/      vmlinux, initramfs.cpio, kernel-version
#   $(PREFIX)/share/sandbox/images/     NAME.img + NAME.json, when make image ran
#                                       (not the e2e tests' test.img)
#   $(PREFIX)/share/man/man1/*.1
#
# PREFIX=~/.local needs no root. DESTDIR stages into another root (packages).
# Install builds the programs if needed but never the guest: `make guest`
# needs apt-get download and takes a while, so it is asked for by name.
PREFIX ?= /usr/local
INST_BIN := $(DESTDIR)$(PREFIX)/bin
INST_DATA := $(DESTDIR)$(PREFIX)/share/sandbox
INST_MAN := $(DESTDIR)$(PREFIX)/share/man/man1

MAN_BUILD := $(BUILD)/man
MAN_PAGES := $(addprefix $(MAN_BUILD)/,$(addsuffix .1,$(PROGRAMS)))
GUEST_FILES := build/guest/vmlinux build/guest/initramfs.cpio build/guest/kernel-version

# name: one-line summary, and the subcommands whose --help joins the page.
man_summary_sandbox-launch := run a command or a coding agent in a microVM sandbox
man_subs_sandbox-launch := list exec stop rm prune reset policy
man_summary_sandbox-proxy := the sandbox egress proxy: policy by DNS name, TLS SNI and HTTP Host
man_summary_sandbox-policy := check, explain and diff sandbox network policy files
man_summary_sandbox-audit := verify, summarise and review sandbox audit logs
man_subs_sandbox-audit := verify summary denied follow suggest report
man_summary_sandbox-vsock := the vhost-user-vsock back-end between QEMU and sandbox-proxy

.PHONY: install uninstall man

man: $(MAN_PAGES)

$(MAN_BUILD)/%.1: $(BUILD)/bin/% mk/man.sh
	@mkdir -p $(dir $@)
	sh mk/man.sh $< $* "$(man_summary_$*)" $(man_subs_$*) >$@.tmp && mv $@.tmp $@

install: $(BINS) $(MAN_PAGES)
	@for f in $(GUEST_FILES); do test -f $$f || { \
		echo "install: $$f missing: run 'make guest' first" >&2; exit 1; }; done
	install -d $(INST_BIN) $(INST_MAN) $(INST_DATA)/guest $(INST_DATA)/policies
	install -m 0755 $(BINS) $(INST_BIN)/
	install -m 0644 $(MAN_PAGES) $(INST_MAN)/
	install -m 0644 $(GUEST_FILES) $(INST_DATA)/guest/
	rm -f $(INST_DATA)/guest/initramfs.cpio.gz # an older install's
	cp -R policies/. $(INST_DATA)/policies/
	@imgs=$$(ls build/images/*.img 2>/dev/null | grep -v '/test\.img$$' || true); \
	if [ -n "$$imgs" ]; then \
		install -d $(INST_DATA)/images && \
		for i in $$imgs; do \
			install -m 0644 $$i $(INST_DATA)/images/ && \
			{ j=$${i%.img}.json; ! test -f $$j || install -m 0644 $$j $(INST_DATA)/images/; }; \
		done; \
	fi
	@echo "installed in $(DESTDIR)$(PREFIX); make sure $(PREFIX)/bin is on PATH"

# Only what install puts there; folders are removed when left empty.
uninstall:
	rm -f $(addprefix $(INST_BIN)/,$(PROGRAMS))
	rm -f $(addprefix $(INST_MAN)/,$(addsuffix .1,$(PROGRAMS)))
	rm -rf $(INST_DATA)
	-rmdir $(INST_MAN) $(DESTDIR)$(PREFIX)/share/man $(DESTDIR)$(PREFIX)/share $(INST_BIN) 2>/dev/null

# tests/e2e/test_install.py installs as an ordinary user, who cannot write
# the build tree: everything install needs is built first.
e2e-deps: man
