# Performance benchmark (included by the top Makefile).
#
#   make bench                  the full run: 1 GiB + 4 GiB objects, ~10-15 min
#   make bench BENCH_ARGS=--quick   a smoke run with small objects (figures not comparable)
#
# Starts its own local stack (SeaweedFS + functions, loopback only) in a
# temporary directory, measures the references and our functions side by
# side, and writes bench-results/summary.json and bench-results/results.md.
# See docs/performance.md.

BENCH_ARGS ?=

.PHONY: bench

bench: $(STAMP)
	$(PY) -m bench --out bench-results $(BENCH_ARGS)
