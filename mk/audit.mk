# `make bench-audit`: sandbox-audit verify and summary on a generated log of
# AUDIT_BENCH_RECORDS records (1,000,000), in records/s, next to `wc -l` and
# `jq -c . | wc -l` on the same file in the same run. Release binaries.
# Result: build/bench/audit.txt. `make bench` runs it too.
.PHONY: bench-audit

AUDIT_BENCH_RECORDS ?= 1000000
AUDIT_BENCH_LOG := build/bench/audit-bench.jsonl

bench: bench-audit

bench-audit:
	$(MAKE) BUILD=$(BENCH_BUILD) SAN=0 $(BENCH_BUILD)/bin/sandbox-audit
	@mkdir -p build/bench
	@set -e; n=$(AUDIT_BENCH_RECORDS); log=$(AUDIT_BENCH_LOG); bin=$(BENCH_BUILD)/bin/sandbox-audit; \
	t() { s=$$(date +%s.%N); "$$@" >/dev/null; e=$$(date +%s.%N); echo "$$s $$e"; }; \
	rate() { awk -v s="$$1" -v e="$$2" -v n="$$3" 'BEGIN { d = e - s; printf "%8.2f s  %12.0f records/s", d, n / d }'; }; \
	echo "=== sandbox-audit on $$n records ($$log)" | tee build/bench/audit.txt; \
	set -- $$(t $$bin generate --records $$n -o $$log.tmp); mv $$log.tmp $$log; \
	recs=$$(wc -l <$$log); \
	printf '%-34s %s\n' "generate (proxy writer, chained)" "$$(rate $$1 $$2 $$recs)" | tee -a build/bench/audit.txt; \
	printf '%-34s %s\n' "file size" "$$(du -h $$log | cut -f1)" | tee -a build/bench/audit.txt; \
	set -- $$(t wc -l $$log); printf '%-34s %s\n' "baseline: wc -l" "$$(rate $$1 $$2 $$recs)" | tee -a build/bench/audit.txt; \
	set -- $$(t sh -c "jq -c . $$log | wc -l"); printf '%-34s %s\n' "baseline: jq -c . | wc -l" "$$(rate $$1 $$2 $$recs)" | tee -a build/bench/audit.txt; \
	set -- $$(t $$bin verify $$log); printf '%-34s %s\n' "sandbox-audit verify" "$$(rate $$1 $$2 $$recs)" | tee -a build/bench/audit.txt; \
	set -- $$(t $$bin summary $$log); printf '%-34s %s\n' "sandbox-audit summary" "$$(rate $$1 $$2 $$recs)" | tee -a build/bench/audit.txt; \
	set -- $$(t $$bin summary --json --host '**.example.com' --since 2026-01-01T03:00:00Z $$log); printf '%-34s %s\n' "sandbox-audit summary (filters)" "$$(rate $$1 $$2 $$recs)" | tee -a build/bench/audit.txt; \
	set -- $$(t $$bin denied --json $$log); printf '%-34s %s\n' "sandbox-audit denied --json" "$$(rate $$1 $$2 $$recs)" | tee -a build/bench/audit.txt; \
	rm -f $$log
