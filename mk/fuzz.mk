# Longer, replayable fuzzing (included by the top Makefile; `make test` runs the
# same fuzz tests with their own example counts and the fixed default seed).
#
#   make fuzz                                   fuzz tier, 1000 examples per test, seed 13013
#   make fuzz FUZZ_SEED=$$RANDOM                a new seed (printed in the report header)
#   make fuzz FUZZ_SEED=4242 FUZZ_EXAMPLES=5000 replay seed 4242, more examples
#
# The seed drives Hypothesis (tests/seeding.py: hypothesis.core.global_force_seed)
# and Python's random, per test; every failure report names it.

FUZZ_SEED ?= 13013
FUZZ_EXAMPLES ?= 1000

.PHONY: fuzz
fuzz: $(STAMP)
	FUZZ_SEED=$(FUZZ_SEED) FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -m fuzz tests/fuzz $(PYTEST_ARGS)
