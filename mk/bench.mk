# Performance benchmark (included by the top Makefile).
#
#   make bench                  the full run: 1 GiB + 4 GiB objects, ~9 min at load 2-5,
#                               ~18 min at load average 6-13 on a 2-core machine
#   make bench BENCH_ARGS=--quick   a smoke run with small objects (figures not comparable)
#   make bench BENCH_ARGS="--runs 3 --copy-runs 2 --big-mib 1024"   a shorter full-size run
#
# Starts its own local stack (SeaweedFS + functions, loopback only) in a
# temporary directory, measures the references and our functions side by
# side with the CPU seconds of every process, and writes
# bench-results/summary.json and bench-results/results.md (targets with
# PASS / FAIL / inconclusive (machine load)). See docs/performance.md.
# Knative sizing from a run: python -m bench.sizing --snapshot bench-results/summary.json --apply

BENCH_ARGS ?=

.PHONY: bench

bench: $(STAMP)
	$(PY) -m bench --out bench-results $(BENCH_ARGS)
