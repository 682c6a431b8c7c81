# The examples in docs/audit-log.md are records from a real run.
#
#   make audit-examples   start dnsmasq, two origins and sandbox-proxy on
#                         loopback, make allowed, denied and refused
#                         connections and DNS queries, and write the records
#                         between the markers in docs/audit-log.md (a run on
#                         an unchanged tree leaves the file as it is)
#   make check-audit-doc  every "reason" the docs show is one the code writes
#                         (pure text, no build; part of `make test`)
.PHONY: audit-examples check-audit-doc

audit-examples: tests-build
	SANDBOX_BUILD=$(abspath $(BUILD)) SANDBOX_SRC=$(CURDIR) \
		/usr/bin/python3 tests/tools/audit_examples.py docs/audit-log.md

check-audit-doc:
	@/usr/bin/python3 tests/check_audit_doc.py $(CURDIR)

test: check-audit-doc
