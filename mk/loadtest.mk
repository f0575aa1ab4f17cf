# Locust benchmarks (included by the top Makefile). See docs/loadtest.md.
#
#   make loadtest                   local stack, default scenario: ~90 s on the
#                                   functions + ~90 s through the fresh-process
#                                   baseline; report + comparison in
#                                   loadtest/results/<timestamp>/ (path printed)
#   make loadtest LOADTEST_ARGS='--scenario smoke'          a few seconds
#   make loadtest LOADTEST_ARGS='--set shape.step_duration=60s --users 6'
#   make loadtest-smoke             the smoke scenario with the baseline
#   make loadtest-compare A=dir B=dir   two runs side by side
#
# Against Knative (needs a cluster; see docs/loadtest.md):
#   $(VENV)/bin/dynafed-fn loadtest run --target knative --scenario knative \
#       --ingress http://<ingress-ip> --domain <domain> --stores-file stores.json

VENV ?= .venv
PY ?= $(VENV)/bin/python
LOADTEST_ARGS ?=

.PHONY: loadtest loadtest-smoke loadtest-compare

loadtest: $(STAMP)
	$(PY) -m loadtest run $(LOADTEST_ARGS)

loadtest-smoke: $(STAMP)
	$(PY) -m loadtest run --scenario smoke --baseline $(LOADTEST_ARGS)

loadtest-compare: $(STAMP)
	@test -n '$(A)' -a -n '$(B)' || { echo 'usage: make loadtest-compare A=<results dir> B=<results dir>'; exit 2; }
	$(PY) -m loadtest compare '$(A)' '$(B)'
