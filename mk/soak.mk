# The bounded soak (included by the top Makefile; NOT part of `make test`).
#
#   make soak                      ~3 min of mixed checksum/copy load with faults
#   make soak SOAK_SECONDS=600     longer
#
# Starts its own SeaweedFS, fault proxy, both functions and an event sink on
# loopback, injects S3 errors, cut connections, flipped bytes, worker kills and
# sink outages, then checks every answer and copy, open uploads, memory and
# file descriptors. Prints and writes a JSON summary ($(SOAK_OUT)); exits
# non-zero if an invariant broke. See docs/reliability.md.

SOAK_SECONDS ?= 180
SOAK_CLIENTS ?= 3
SOAK_OUT ?= soak-summary.json

soak: $(STAMP)
	$(PY) -m tests.soak --seconds $(SOAK_SECONDS) --clients $(SOAK_CLIENTS) --out $(SOAK_OUT)
